//! Unit tests of URL parsing.

use std::path::PathBuf;

use super::path_of_url;

#[test]
fn parses_file_urls() {
    let path = |url: &str| path_of_url(url).ok();
    assert_eq!(path("sqlite://data/t.db"), Some(PathBuf::from("data/t.db")));
    assert_eq!(
        path("sqlite:///var/lib/t.db"),
        Some(PathBuf::from("/var/lib/t.db"))
    );
    assert_eq!(path("sqlite:t.db"), Some(PathBuf::from("t.db")));
    for refused in [
        "sqlite::memory:",
        "sqlite://",
        "postgres://x/y",
        "sqlite://t.db?mode=rwc",
    ] {
        assert!(path(refused).is_none(), "{refused}");
    }
}
