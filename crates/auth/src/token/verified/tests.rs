//! The bound on kept tokens.

use std::sync::Arc;

use serde_json::Map;

use super::{CAPACITY, Key, Verified, VerifiedTokens};

fn key(n: usize) -> Key {
    VerifiedTokens::key(&format!("token-{n}"))
}

fn expiring(expires: i64) -> Arc<Verified> {
    Arc::new(Verified {
        claims: Map::new(),
        expires,
    })
}

#[test]
fn expired_tokens_make_room_first() {
    let tokens = VerifiedTokens::default();
    for n in 0..CAPACITY {
        // Half of them expired at 100.
        let expires = if n % 2 == 0 { 100 } else { 1_000 };
        tokens.insert(key(n), expiring(expires), 50);
    }
    assert_eq!(tokens.len(), CAPACITY);
    tokens.insert(key(CAPACITY), expiring(1_000), 200);
    assert_eq!(tokens.len(), CAPACITY / 2 + 1);
    assert!(tokens.get(&key(1)).is_some(), "a live token stays");
    assert!(tokens.get(&key(0)).is_none(), "an expired one went");
}

#[test]
fn the_kept_tokens_never_exceed_the_capacity() {
    let tokens = VerifiedTokens::default();
    for n in 0..=CAPACITY {
        tokens.insert(key(n), expiring(1_000), 50);
        assert!(tokens.len() <= CAPACITY);
    }
    assert!(tokens.get(&key(CAPACITY)).is_some(), "the newest is kept");
}
