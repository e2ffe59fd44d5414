//! Unit tests of the command line: the PostgreSQL pool flags default to the store's own defaults,
//! map onto its options; a retention policy file overrides the defaults it names; values that
//! begin with `-` are values where they can.

use clap::Parser as _;

use crate::Cli;

#[cfg(feature = "postgres")]
#[test]
fn pool_flags_default_to_the_store_defaults() {
    let cli = Cli::try_parse_from(["tsunagu", "migrate"]).expect("parse");
    let options = cli.pool.options();
    let defaults = store_postgres::PostgresOptions::default();
    assert_eq!(options.max_connections, defaults.max_connections);
    assert_eq!(options.connect_timeout, defaults.connect_timeout);
    assert_eq!(options.wait_timeout, defaults.wait_timeout);
    assert_eq!(options.statement_timeout, defaults.statement_timeout);
    assert_eq!(options.write_retries, defaults.write_retries);
}

#[cfg(feature = "postgres")]
#[test]
fn pool_flags_map_onto_the_store_options_after_the_subcommand_too() {
    let cli = Cli::try_parse_from([
        "tsunagu",
        "--pg-max-connections",
        "4",
        "serve",
        "--pg-connect-timeout-ms",
        "1500",
        "--pg-wait-timeout-ms",
        "250",
        "--pg-statement-timeout-ms",
        "60000",
    ])
    .expect("parse");
    let options = cli.pool.options();
    use std::time::Duration;
    assert_eq!(options.max_connections, 4);
    assert_eq!(options.connect_timeout, Duration::from_millis(1500));
    assert_eq!(options.wait_timeout, Duration::from_millis(250));
    assert_eq!(options.statement_timeout, Duration::from_secs(60));
}

#[test]
fn a_pool_of_zero_connections_or_a_zero_timeout_is_refused() {
    for flag in [
        "--pg-max-connections",
        "--pg-connect-timeout-ms",
        "--pg-wait-timeout-ms",
        "--pg-statement-timeout-ms",
    ] {
        let parsed = Cli::try_parse_from(["tsunagu", flag, "0", "migrate"]);
        assert!(parsed.is_err(), "{flag} 0 was accepted");
    }
}

#[test]
fn a_retention_policy_file_overrides_only_what_it_names_and_refuses_unknown_fields() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("retention.json");
    assert_eq!(
        crate::retention_policy(None).expect("defaults"),
        app::RetentionPolicy::default()
    );
    std::fs::write(&path, r#"{"labs_days": 730, "lts_days": 3650}"#).expect("write");
    let policy = crate::retention_policy(Some(&path)).expect("policy");
    assert_eq!(policy.labs_days, 730);
    assert_eq!(policy.lts_days, Some(3650));
    assert_eq!(
        policy.diagnoses_days,
        app::RetentionPolicy::default().diagnoses_days
    );
    std::fs::write(&path, r#"{"lab_days": 730}"#).expect("write");
    assert!(
        crate::retention_policy(Some(&path)).is_err(),
        "a misspelt field is refused"
    );
}

#[test]
fn a_patient_password_is_never_taken_from_the_command_line() {
    let add = [
        "tsunagu",
        "patient",
        "add",
        "--account",
        "acct-1",
        "--patient",
        "patient-001",
        "--card-key",
        "card.pem.pub",
    ];
    for flag in ["--password", "--pass", "-p"] {
        let mut args = add.to_vec();
        args.extend([flag, "correct horse battery"]);
        assert!(Cli::try_parse_from(args).is_err(), "{flag} was accepted");
    }
    let mut args = add.to_vec();
    args.extend(["--directory", "elsewhere/patients.json"]);
    let cli = Cli::try_parse_from(args).expect("parse");
    match cli.command {
        crate::Command::Patient { directory, .. } => {
            assert_eq!(directory, std::path::Path::new("elsewhere/patients.json"));
        }
        _ => panic!("not a patient command"),
    }
}

/// A challenge is base64url, so one in 64 begins with `-`: it must still be the challenge.
#[test]
fn a_challenge_beginning_with_a_hyphen_is_a_challenge() {
    let cli = Cli::try_parse_from([
        "tsunagu",
        "card",
        "sign",
        "--key",
        "card.pem",
        "--challenge",
        "-mAbC_123",
        "--account",
        "demo-001",
    ])
    .expect("parse");
    let crate::Command::Card {
        action: crate::patients::CardCommand::Sign { challenge, .. },
    } = cli.command
    else {
        panic!("not card sign");
    };
    assert_eq!(challenge, "-mAbC_123");
}
