//! Arguments: durations and the command line.

use std::time::Duration;

use clap::Parser as _;

use super::{Args, parse_duration};

#[test]
fn durations_take_units() {
    assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
    assert!(parse_duration("soon").is_err());
    assert!(parse_duration("-1s").is_err());
}

#[test]
fn serve_arguments_follow_a_double_dash() {
    let args = Args::try_parse_from([
        "loadgen",
        "--spawn",
        "tsunagu",
        "--rate",
        "20",
        "--",
        "--demo",
        "--rate-limit",
        "100000",
    ])
    .unwrap();
    assert_eq!(args.rate, Some(20.0));
    assert_eq!(args.serve_args, ["--demo", "--rate-limit", "100000"]);
    assert!(Args::try_parse_from(["loadgen", "--rate", "5", "--connections", "3"]).is_err());
}
