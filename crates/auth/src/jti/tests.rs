//! The replay cache: seen-before answers, expiry, and refusing (not forgetting) when full.

use std::time::{Duration, UNIX_EPOCH};

use super::*;

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

#[tokio::test]
async fn a_key_is_new_once_until_it_expires() {
    let cache = MemoryJtiCache::new(10);
    assert!(cache.first_use("a", at(100), at(0)).await.unwrap());
    assert!(!cache.first_use("a", at(200), at(50)).await.unwrap());
    assert!(!cache.first_use("a", at(100), at(99)).await.unwrap());
    // At its expiry it is dropped, and the key counts as new again.
    assert!(cache.first_use("a", at(300), at(100)).await.unwrap());
    assert!(cache.first_use("b", at(300), at(100)).await.unwrap());
    assert_eq!(cache.len(), 2);
}

#[tokio::test]
async fn a_full_cache_refuses_rather_than_forgets() {
    let cache = MemoryJtiCache::new(2);
    assert!(cache.first_use("a", at(100), at(0)).await.unwrap());
    assert!(cache.first_use("b", at(200), at(0)).await.unwrap());
    assert!(matches!(
        cache.first_use("c", at(200), at(10)).await,
        Err(JtiError::Full)
    ));
    // A replay is still recognised when full.
    assert!(!cache.first_use("a", at(100), at(10)).await.unwrap());
    // Once one expires there is room again.
    assert!(cache.first_use("c", at(300), at(100)).await.unwrap());
    assert_eq!(cache.len(), 2);
}
