//! `tsunagu org …` and `tsunagu client …`: the registry of organisations and the facility systems
//! (SMART Backend Services clients) allowed to ask for tokens for them, kept in a JSON file
//! (`auth::JsonFileRegistry`; docs/auth.md). A running server re-reads the file when it changes, so
//! a revocation takes effect on the next token request.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use auth::{
    CARE_PROVIDER_NUMBER_SYSTEM, Client, ClientId, ClientKeys, INSTITUTION_NUMBER_SYSTEM,
    INSURER_NUMBER_SYSTEM, JsonFileRegistry, JwkSet, MunicipalityCode, OrgIdentifier, Organisation,
    OrganisationId, OrganisationKind, Prefecture, Registry as _,
};
use clap::Subcommand;

/// `tsunagu org …`.
#[derive(Debug, Subcommand)]
pub(crate) enum OrgCommand {
    /// Register an organisation.
    Add {
        /// The registry id (consents name `Organization/<id>`).
        #[arg(long)]
        id: String,
        /// hospital, clinic, pharmacy, public-health-centre, municipality, care-provider, insurer.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        name: String,
        /// Prefecture code (JIS X 0401), two digits.
        #[arg(long)]
        prefecture: String,
        /// The 10-digit medical institution number (hospitals, clinics, pharmacies).
        #[arg(long)]
        institution_number: Option<String>,
        /// The insurer number (insurers).
        #[arg(long)]
        insurer_number: Option<String>,
        /// The care provider number (care providers).
        #[arg(long)]
        care_provider_number: Option<String>,
        /// Municipality codes (JIS X 0402, six digits) the organisation covers; repeatable.
        #[arg(long = "municipality")]
        municipalities: Vec<String>,
    },
    /// List the registered organisations.
    List,
}

/// `tsunagu client …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ClientCommand {
    /// Register a facility system with its public keys (a JWK Set file).
    Add {
        /// The client id (`iss`/`sub` of its assertions).
        #[arg(long)]
        id: String,
        /// The organisation it acts for.
        #[arg(long)]
        org: String,
        /// A JWK Set (JSON) holding its public keys.
        #[arg(long)]
        jwks: PathBuf,
    },
    /// Revoke a client: its next token request, and its tokens already issued, are refused.
    Revoke { id: String },
    /// List the registered clients.
    List,
    /// Generate a client system's ES384 key pair: the private key (PKCS#8 PEM, mode 0600) in
    /// FILE, its public half as a JWK Set in `FILE.jwks.json`, what `client add --jwks` registers.
    /// Refuses to replace either file.
    Keygen {
        /// Where to write the private key.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The key's id in the JWK Set (assertions name it in their header).
        #[arg(long, default_value = "demo-1")]
        kid: String,
    },
    /// Sign a client assertion with a client's ES384 key (as `serve --demo` writes them) and
    /// print it, for trying the token endpoint by hand (README). Valid for four minutes.
    Assertion {
        /// The client id.
        #[arg(long)]
        client: String,
        /// The client's private key (PKCS#8 PEM, P-384).
        #[arg(long)]
        key: PathBuf,
        /// The key's id in the registered JWK Set.
        #[arg(long, default_value = "demo-1")]
        kid: String,
        /// The token endpoint, exactly as the server announces it.
        #[arg(long, default_value = "http://127.0.0.1:8080/auth/token")]
        audience: String,
        /// The acting user's id at the facility.
        #[arg(long, default_value = "demo-user-1")]
        user: String,
        /// The acting user's name.
        #[arg(long, default_value = "デモ 利用者")]
        name: String,
        /// doctor, dentist, nurse, pharmacist, clerk, administrator, public-health-officer, ...
        #[arg(long, default_value = "doctor")]
        role: String,
        /// TREAT, ETREAT, PUBHLTH, CAREMGT, COVERAGE, POPHLTH.
        #[arg(long, default_value = "TREAT")]
        purpose: String,
        /// The user holds the emergency privilege (hospital doctors only).
        #[arg(long)]
        emergency_privilege: bool,
    },
}

/// Runs an `org` command on the registry file.
pub(crate) async fn org(path: &Path, command: OrgCommand) -> anyhow::Result<()> {
    let registry = JsonFileRegistry::open(path).context("cannot open the registry")?;
    match command {
        OrgCommand::Add {
            id,
            kind,
            name,
            prefecture,
            institution_number,
            insurer_number,
            care_provider_number,
            municipalities,
        } => {
            let Some(kind) = OrganisationKind::from_code(&kind) else {
                bail!(
                    "unknown organisation kind (hospital, clinic, pharmacy, public-health-centre, municipality, care-provider, insurer)"
                );
            };
            let mut identifiers = Vec::new();
            for (system, value) in [
                (INSTITUTION_NUMBER_SYSTEM, institution_number),
                (INSURER_NUMBER_SYSTEM, insurer_number),
                (CARE_PROVIDER_NUMBER_SYSTEM, care_provider_number),
            ] {
                if let Some(value) = value {
                    identifiers.push(OrgIdentifier::new(system, &value)?);
                }
            }
            let municipalities = municipalities
                .iter()
                .map(MunicipalityCode::new)
                .collect::<Result<Vec<_>, _>>()?;
            let organisation = Organisation::new(
                OrganisationId::new(id)?,
                kind,
                name,
                identifiers,
                Prefecture::new(&prefecture)?,
                municipalities,
            )?;
            let id = organisation.id().as_str().to_owned();
            registry.add_organisation(organisation).await?;
            println!("organisation {id} registered");
        }
        OrgCommand::List => {
            for organisation in registry.organisations().await? {
                println!(
                    "{}\t{}\t{}",
                    organisation.id().as_str(),
                    organisation.kind().code(),
                    organisation.name()
                );
            }
        }
    }
    Ok(())
}

/// Runs a `client` command on the registry file (`keygen` does not touch it).
pub(crate) async fn client(path: &Path, command: ClientCommand) -> anyhow::Result<()> {
    if let ClientCommand::Keygen { out, kid } = &command {
        return keygen(out, kid);
    }
    let registry = JsonFileRegistry::open(path).context("cannot open the registry")?;
    match command {
        ClientCommand::Add { id, org, jwks } => {
            let text = std::fs::read_to_string(&jwks)
                .with_context(|| format!("cannot read {}", jwks.display()))?;
            let keys = JwkSet::parse(&text)?;
            let client = Client::new(
                ClientId::new(id)?,
                OrganisationId::new(org)?,
                ClientKeys::Jwks(keys),
            );
            let id = client.client_id().as_str().to_owned();
            registry.add_client(client).await?;
            println!("client {id} registered");
        }
        ClientCommand::Revoke { id } => {
            registry
                .revoke_client(&ClientId::new(id.clone())?, SystemTime::now())
                .await?;
            println!("client {id} revoked");
        }
        ClientCommand::List => {
            for client in registry.clients().await? {
                println!(
                    "{}\t{}\t{}",
                    client.client_id().as_str(),
                    client.organisation().as_str(),
                    if client.revoked_at().is_some() {
                        "revoked"
                    } else {
                        "active"
                    }
                );
            }
        }
        ClientCommand::Keygen { .. } => unreachable!("handled before the registry is opened"),
        ClientCommand::Assertion {
            client,
            key,
            kid,
            audience,
            user,
            name,
            role,
            purpose,
            emergency_privilege,
        } => {
            let client_id = ClientId::new(client)?;
            let Some(registered) = registry.client(&client_id).await? else {
                bail!("no such client in the registry");
            };
            let role = auth::Role::from_code(&role).context("unknown role")?;
            let purpose_of_use =
                auth::PurposeOfUse::from_code(&purpose).context("unknown purpose of use")?;
            let key = auth::ClientKey::load(&key, &kid)
                .with_context(|| format!("cannot read the client key {}", key.display()))?;
            let acting = auth::ActingUser {
                organisation: registered.organisation().as_str().to_owned(),
                id: user,
                name,
                role,
                purpose_of_use,
                emergency_privilege,
            };
            println!(
                "{}",
                key.assertion(
                    client_id.as_str(),
                    &audience,
                    &acting,
                    SystemTime::now(),
                    std::time::Duration::from_secs(240),
                )?
            );
        }
    }
    Ok(())
}

/// `tsunagu client keygen`: a new ES384 key in `out` (0600) and its JWK Set in `out.jwks.json`.
fn keygen(out: &Path, kid: &str) -> anyhow::Result<()> {
    let mut jwks_path = out.as_os_str().to_owned();
    jwks_path.push(".jwks.json");
    let jwks_path = PathBuf::from(jwks_path);
    for path in [out, jwks_path.as_path()] {
        if path.exists() {
            bail!(
                "{} exists: not replacing it (remove it first to make a new key)",
                path.display()
            );
        }
    }
    let key = auth::ClientKey::generate(kid).context("cannot generate a key")?;
    let jwks = key.jwks();
    // The set must be one `client add --jwks` accepts.
    JwkSet::parse(&jwks.to_string()).context("the generated JWK Set is not valid")?;
    key.save(out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    std::fs::write(&jwks_path, format!("{jwks:#}\n"))
        .with_context(|| format!("cannot write {}", jwks_path.display()))?;
    println!(
        "private key (keep it on the client system only): {}",
        out.display()
    );
    println!("public JWK Set (kid {kid}): {}", jwks_path.display());
    println!(
        "register it with: tsunagu client add --id CLIENT --org ORG --jwks {}",
        jwks_path.display()
    );
    Ok(())
}
