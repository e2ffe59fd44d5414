//! `tsunagu card …` and `tsunagu patient …` as an operator runs them: a demo card is made, a
//! patient registered with its public key and a password that never appears on the command line
//! or in any output, listed, signed for with `card sign`, logged in through the auth crate over
//! the same directory file, and disabled.

use std::io::Write as _;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::SystemTime;

use auth::{
    AuthSettings, CardPublicKey, JsonFilePatientDirectory, MemoryJtiCache, MemoryRegistry,
    PATIENT_GRANT_TYPE, ServiceKey, TokenService,
};

use crate::tsunagu;

const PASSWORD: &str = "correct horse battery";
const STDIN_PASSWORD: &str = "パスワードは八文字以上";

/// Runs `tsunagu` with `args`, the password in the environment (or not) and `stdin` piped in.
fn run(args: &[&str], password_env: Option<&str>, stdin: &str) -> Output {
    let mut command = tsunagu();
    command
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .env_remove("TSUNAGU_PATIENTS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match password_env {
        Some(password) => command.env("TSUNAGU_PATIENT_PASSWORD", password),
        None => command.env_remove("TSUNAGU_PATIENT_PASSWORD"),
    };
    let mut child = command.spawn().expect("run tsunagu");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().expect("wait for tsunagu")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test]
async fn demo_cards_and_patient_accounts_are_made_listed_used_and_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let directory = dir.path().join("patients.json");
    let card = dir.path().join("card.pem");
    let card_pub = dir.path().join("card.pem.pub");
    let other_card = dir.path().join("other.pem");

    // Demo cards: the private key owner-only, the public key beside it; never overwritten.
    let made = run(&["card", "new", "--out", path(&card)], None, "");
    assert!(made.status.success(), "{}", text(&made));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&card).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let public = CardPublicKey::parse(&std::fs::read_to_string(&card_pub).unwrap()).unwrap();
    let before = std::fs::read(&card).unwrap();
    let again = run(&["card", "new", "--out", path(&card)], None, "");
    assert!(!again.status.success());
    assert_eq!(std::fs::read(&card).unwrap(), before);
    let made = run(&["card", "new", "--out", path(&other_card)], None, "");
    assert!(made.status.success(), "{}", text(&made));

    // A patient with the password in the environment; another with it on standard input.
    let add = |account: &str, patient: &str, card: &Path, env: Option<&str>, stdin: &str| {
        run(
            &[
                "patient",
                "add",
                "--account",
                account,
                "--patient",
                patient,
                "--card-key",
                path(card),
                "--directory",
                path(&directory),
            ],
            env,
            stdin,
        )
    };
    let added = add("acct-1", "patient-001", &card_pub, Some(PASSWORD), "");
    assert!(added.status.success(), "{}", text(&added));
    let other_pub = dir.path().join("other.pem.pub");
    let added = add(
        "acct-2",
        "patient-002",
        &other_pub,
        None,
        &format!("{STDIN_PASSWORD}\n"),
    );
    assert!(added.status.success(), "{}", text(&added));
    // Refused: a short password (without repeating it), the private key instead of the public
    // one, a second account for a patient.
    let refused = add("acct-3", "patient-003", &card_pub, Some("short"), "");
    assert!(!refused.status.success());
    assert!(text(&refused).contains("password"), "{}", text(&refused));
    assert!(!text(&refused).contains("short"), "{}", text(&refused));
    let refused = add("acct-3", "patient-003", &card, Some(PASSWORD), "");
    assert!(!refused.status.success());
    assert!(text(&refused).contains("private key"), "{}", text(&refused));
    let refused = add("acct-3", "patient-001", &card_pub, Some(PASSWORD), "");
    assert!(!refused.status.success());

    let listed = run(
        &["patient", "list", "--directory", path(&directory)],
        None,
        "",
    );
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).trim(),
        "acct-1\tpatient-001\tactive\nacct-2\tpatient-002\tactive"
    );
    let file = std::fs::read_to_string(&directory).unwrap();
    for secret in [PASSWORD, STDIN_PASSWORD] {
        assert!(!file.contains(secret));
    }
    assert!(file.contains("pbkdf2-sha256$210000$"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&directory).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A login over the same file, the card's signature made by `card sign`.
    let service = TokenService::new(
        AuthSettings::new(
            "https://tsunagu.test",
            "https://tsunagu.test/auth/token",
            "https://tsunagu.test/fhir",
        ),
        Arc::new(MemoryRegistry::new()),
        Arc::new(MemoryJtiCache::default()),
        ServiceKey::generate().unwrap(),
    )
    .unwrap()
    .with_patients(Arc::new(
        JsonFilePatientDirectory::open(&directory).unwrap(),
    ));
    let sign = |key: &Path, account: &str, challenge: &str| {
        let signed = run(
            &[
                "card",
                "sign",
                "--key",
                path(key),
                "--purpose",
                "login",
                "--challenge",
                challenge,
                "--account",
                account,
            ],
            None,
            "",
        );
        assert!(signed.status.success(), "{}", text(&signed));
        String::from_utf8(signed.stdout).unwrap().trim().to_owned()
    };
    let form = |account: &str, password: &str, challenge: &str, signature: &str| {
        [
            ("grant_type", PATIENT_GRANT_TYPE),
            ("username", account),
            ("password", password),
            ("challenge", challenge),
            ("card_signature", signature),
        ]
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect::<Vec<_>>()
    };
    for (account, password, key) in [
        ("acct-1", PASSWORD, &card),
        ("acct-2", STDIN_PASSWORD, &other_card),
    ] {
        let challenge = service.issue_challenge(SystemTime::now()).unwrap().value;
        let signature = sign(key, account, &challenge);
        if account == "acct-1" {
            assert!(public.verify(
                &auth::card_message("login", &challenge, &auth::AccountId::new(account).unwrap()),
                &signature
            ));
        }
        let token = service
            .patient_login(
                &form(account, password, &challenge, &signature),
                SystemTime::now(),
            )
            .await
            .unwrap();
        assert_eq!(token.principal.account_id.as_str(), account);
    }
    let refused = run(
        &[
            "card",
            "sign",
            "--key",
            path(&card),
            "--purpose",
            "consent",
            "--challenge",
            "c",
            "--account",
            "acct-1",
        ],
        None,
        "",
    );
    assert!(!refused.status.success());

    // Disabled: listed so, and refused at once by the service reading the same file.
    let disabled = run(
        &[
            "patient",
            "disable",
            "acct-1",
            "--directory",
            path(&directory),
        ],
        None,
        "",
    );
    assert!(disabled.status.success(), "{}", text(&disabled));
    let listed = run(
        &["patient", "list", "--directory", path(&directory)],
        None,
        "",
    );
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("acct-1\tpatient-001\tdisabled"),
        "{}",
        text(&listed)
    );
    let challenge = service.issue_challenge(SystemTime::now()).unwrap().value;
    let signature = sign(&card, "acct-1", &challenge);
    assert_eq!(
        service
            .patient_login(
                &form("acct-1", PASSWORD, &challenge, &signature),
                SystemTime::now()
            )
            .await
            .unwrap_err()
            .reason(),
        "patient_login_failed"
    );
}
