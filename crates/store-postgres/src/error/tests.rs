//! The classifier: pool failures and dropped connections are retryable, everything else is a bug.

use std::time::Duration;

use deadpool_postgres::{PoolError, TimeoutType};
use store::StoreError;

use super::{DriverError, classify, is_transaction_conflict};

#[test]
fn pool_timeouts_and_a_closed_pool_are_unavailable() {
    for error in [
        PoolError::Timeout(TimeoutType::Wait),
        PoolError::Timeout(TimeoutType::Create),
        PoolError::Closed,
    ] {
        let classified = classify(DriverError::Pool(error));
        assert!(
            matches!(classified, StoreError::Unavailable(_)),
            "{classified:?}"
        );
        assert!(!is_transaction_conflict(&classified));
    }
    let misconfigured = classify(DriverError::Pool(PoolError::NoRuntimeSpecified));
    assert!(
        matches!(misconfigured, StoreError::Internal(_)),
        "{misconfigured:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user("nobody")
        .connect_timeout(Duration::from_secs(2));
    let error = config
        .connect(tokio_postgres::NoTls)
        .await
        .err()
        .expect("nothing listens there");
    let classified = classify(DriverError::Postgres(error));
    assert!(
        matches!(classified, StoreError::Unavailable(_)),
        "{classified:?}"
    );
}
