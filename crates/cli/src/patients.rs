//! `tsunagu patient …` and `tsunagu card …`: patients' accounts (a password and a card each) in
//! the patient directory, a JSON file (`auth::JsonFilePatientDirectory`; docs/auth.md,
//! "Patients"), and software cards for demos and curl examples. A running server re-reads the
//! file when it changes, so a disabled account is refused on its next request.
//!
//! The password is read from `TSUNAGU_PATIENT_PASSWORD` or from one line on standard input, never
//! from the command line (where `ps` and shell history would show it), and never printed.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::{Context as _, anyhow, bail};
use auth::{
    AccountId, CardKey, CardPublicKey, JsonFilePatientDirectory, LOGIN_PURPOSE, OrganisationId,
    Password, PasswordHash, PatientAccount, PatientDirectory as _, card_message,
};
use clap::Subcommand;

/// The environment variable `patient add` reads the password from.
pub(crate) const PASSWORD_ENV: &str = "TSUNAGU_PATIENT_PASSWORD";

/// `tsunagu patient …`.
#[derive(Debug, Subcommand)]
pub(crate) enum PatientCommand {
    /// Register a patient's account with their card's public key. The password is read from
    /// TSUNAGU_PATIENT_PASSWORD, or else one line on standard input (not echoed on a terminal).
    Add {
        /// The account id the patient logs in with (1-64 of A-Z a-z 0-9 - . _ ~).
        #[arg(long)]
        account: String,
        /// The logical id of the patient's Patient resource (one enabled account per patient).
        #[arg(long)]
        patient: String,
        /// The card's public key: a PEM public key (`tsunagu card new` writes FILE.pub) or the
        /// base64url of its 32 bytes.
        #[arg(long, value_name = "FILE")]
        card_key: PathBuf,
    },
    /// List the accounts: account id, patient id, active or disabled.
    List,
    /// Disable an account: it logs in no more, and its tokens stop working on their next request.
    Disable {
        /// The account id.
        account: String,
    },
}

/// `tsunagu card …`.
#[derive(Debug, Subcommand)]
pub(crate) enum CardCommand {
    /// Make a demo card: an Ed25519 key pair, the private key (PKCS#8 PEM, mode 0600) to FILE and
    /// the public key (PEM) to FILE.pub. Existing files are never overwritten.
    New {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Sign a challenge with a demo card, as a card would: prints the base64url signature.
    Sign {
        /// The card's private key file (PKCS#8 PEM or DER).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// `login`, or `consent:<organisation id>` for a consent at that organisation's reception.
        #[arg(long, default_value = LOGIN_PURPOSE)]
        purpose: String,
        /// The challenge, as the server issued it (base64url: it may begin with `-`).
        #[arg(long, allow_hyphen_values = true)]
        challenge: String,
        /// The patient's account id.
        #[arg(long)]
        account: String,
    },
}

/// Runs a `patient` command on the directory file.
pub(crate) async fn patient(path: &Path, command: PatientCommand) -> anyhow::Result<()> {
    let directory =
        JsonFilePatientDirectory::open(path).context("cannot open the patient directory")?;
    match command {
        PatientCommand::Add {
            account,
            patient,
            card_key,
        } => {
            let account_id = AccountId::new(account)?;
            let card = read_card_public_key(&card_key)?;
            let password = read_password()?;
            let hash = PasswordHash::new(&password)?;
            let account = PatientAccount::new(account_id.clone(), patient, hash, card)?;
            directory.add_account(account).await?;
            println!("account {account_id} registered");
        }
        PatientCommand::List => {
            for account in directory.accounts().await? {
                println!(
                    "{}\t{}\t{}",
                    account.account_id(),
                    account.patient(),
                    if account.is_disabled() {
                        "disabled"
                    } else {
                        "active"
                    }
                );
            }
        }
        PatientCommand::Disable { account } => {
            let account_id = AccountId::new(account)?;
            directory
                .disable_account(&account_id, SystemTime::now())
                .await?;
            println!("account {account_id} disabled");
        }
    }
    Ok(())
}

/// Runs a `card` command.
pub(crate) fn card(command: CardCommand) -> anyhow::Result<()> {
    match command {
        CardCommand::New { out } => {
            let public_path = public_key_path(&out);
            if public_path.exists() {
                bail!("{} exists already", public_path.display());
            }
            let card = CardKey::generate()?;
            card.save(&out)
                .with_context(|| format!("cannot write {}", out.display()))?;
            let public = card.public_key();
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&public_path)
                .and_then(|mut file| file.write_all(public.to_pem().as_bytes()))
                .with_context(|| format!("cannot write {}", public_path.display()))?;
            println!(
                "card key written to {} (keep it private); public key in {}: {}",
                out.display(),
                public_path.display(),
                public.to_base64url()
            );
        }
        CardCommand::Sign {
            key,
            purpose,
            challenge,
            account,
        } => {
            check_purpose(&purpose)?;
            let account = AccountId::new(account)?;
            let card =
                CardKey::load(&key).with_context(|| format!("cannot read {}", key.display()))?;
            println!(
                "{}",
                card.sign(&card_message(&purpose, &challenge, &account))
            );
        }
    }
    Ok(())
}

/// `FILE.pub` beside `FILE`.
fn public_key_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".pub");
    PathBuf::from(name)
}

fn check_purpose(purpose: &str) -> anyhow::Result<()> {
    let valid = purpose == LOGIN_PURPOSE
        || purpose
            .strip_prefix("consent:")
            .is_some_and(|organisation| OrganisationId::new(organisation).is_ok());
    if !valid {
        bail!("the purpose is `login` or `consent:<organisation id>`");
    }
    Ok(())
}

fn read_card_public_key(path: &Path) -> anyhow::Result<CardPublicKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if text.contains("PRIVATE KEY") {
        bail!(
            "{} holds a private key: give the card's public key (FILE.pub of `tsunagu card new`)",
            path.display()
        );
    }
    Ok(CardPublicKey::parse(&text)?)
}

/// The new account's password: from [`PASSWORD_ENV`], or one line on standard input (asked
/// twice, without echo, on a terminal).
fn read_password() -> anyhow::Result<Password> {
    if let Some(value) = std::env::var_os(PASSWORD_ENV) {
        let text = value
            .into_string()
            .map_err(|_| anyhow!("{PASSWORD_ENV} is not valid UTF-8"))?;
        return Ok(Password::new(text)?);
    }
    if !std::io::stdin().is_terminal() {
        return Ok(Password::new(read_line()?)?);
    }
    let echo = EchoOff::new();
    if !echo.turned_off {
        bail!("cannot turn the terminal's echo off: set {PASSWORD_ENV} or pipe the password in");
    }
    eprint!("password: ");
    let first = read_line()?;
    eprint!("\nagain: ");
    let second = read_line()?;
    eprintln!();
    if first != second {
        bail!("the two passwords differ");
    }
    Ok(Password::new(first)?)
}

/// One line of standard input, without its line ending.
fn read_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    Ok(line.strip_suffix('\r').unwrap_or(line).to_owned())
}

/// Turns the terminal's echo off (with `stty`) until dropped.
struct EchoOff {
    turned_off: bool,
}

impl EchoOff {
    fn new() -> Self {
        EchoOff {
            turned_off: stty("-echo"),
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if self.turned_off {
            stty("echo");
        }
    }
}

fn stty(setting: &str) -> bool {
    Command::new("stty")
        .arg(setting)
        .stdin(Stdio::inherit())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}
