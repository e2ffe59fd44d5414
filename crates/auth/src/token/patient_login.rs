//! Patients' two-factor login, their access tokens, and card signatures presented by facilities.
//!
//! A login ([`TokenService::patient_login`]) is a token request with
//! `grant_type=`[`PATIENT_GRANT_TYPE`], `username`, `password`, `challenge` (one issued by
//! [`TokenService::issue_challenge`]) and `card_signature` (the card's Ed25519 signature of
//! [`card_message`]`(`[`LOGIN_PURPOSE`]`, challenge, username)`). It runs:
//!
//! 1. the form: every parameter present, none twice;
//! 2. the challenge is consumed (live or not, it is gone);
//! 3. the name is not locked ([`MAX_FAILED_LOGINS`](crate::MAX_FAILED_LOGINS) failures →
//!    `patient_locked` for
//!    [`LOCKOUT_DURATION`](crate::LOCKOUT_DURATION));
//! 4. the challenge was live; the account exists and is enabled; the password matches its hash;
//!    the signature is its card's. All of these are checked (the password is hashed even for a
//!    name without an account, against a decoy hash, so that timing does not tell either), and
//!    any failure is the one reason `patient_login_failed`, counted against the name.
//!
//! The token is an ES256 JWT like a member's (same key, issuer, audience, `typ`, lifetime) whose
//! `sub` is the account id, with a `patient` claim (the Patient's logical id) and
//! `scope` = [`PATIENT_SCOPE`], and no `client_id`. [`TokenService::verify_bearer`] tells the two
//! kinds apart by the `patient` claim; [`TokenService::verify_access_token`] refuses patient
//! tokens, and a patient token is read only as a patient.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value, json};

use super::{Form, Principal, TokenService, at, unix};
use crate::error::AuthError;
use crate::patient::{
    AccountId, Challenge, LOGIN_PURPOSE, Password, PasswordHash, PatientDirectory, card_message,
};
use crate::scope::Permissions;

/// The `grant_type` of a patient's login (password and card signature).
pub const PATIENT_GRANT_TYPE: &str = "urn:tsunagu:params:oauth:grant-type:patient-card";

/// The `scope` of every patient token: read and search, of the patient's own compartment only.
/// Fixed: a patient cannot ask for more or less.
pub const PATIENT_SCOPE: &str = "patient/*.rs";

/// A patient making a FHIR request with their own token: what [`TokenService::verify_bearer`]
/// returns for a patient token. It reaches the compartment of `patient` only, and only reads and
/// searches it ([`PatientPrincipal::permissions`]). `Debug` does not show the patient id.
#[derive(Clone, PartialEq, Eq)]
pub struct PatientPrincipal {
    /// The account (the token's `sub`), still enabled when the token was verified.
    pub account_id: AccountId,
    /// The logical id of the patient's `Patient` resource: the only compartment the token
    /// reaches.
    pub patient: String,
    /// The access token's `jti`: correlates audit entries with the login.
    pub token_id: String,
    /// When the token expires.
    pub expires_at: SystemTime,
}

impl fmt::Debug for PatientPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatientPrincipal")
            .field("account_id", &self.account_id)
            .field("patient", &"[redacted]")
            .field("token_id", &self.token_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl PatientPrincipal {
    /// What the token allows in the patient's own compartment: read and search
    /// ([`PATIENT_SCOPE`]).
    pub fn permissions(&self) -> Permissions {
        Permissions::RS
    }
}

/// Who a bearer token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bearer {
    /// A facility's system acting for one of its users.
    Member(Principal),
    /// A patient, for their own compartment.
    Patient(PatientPrincipal),
}

/// A freshly issued patient access token. `Debug` never shows the token.
#[derive(Clone)]
pub struct PatientToken {
    token: String,
    expires_in: u64,
    /// Whom the token stands for (for the audit entry of the login).
    pub principal: PatientPrincipal,
}

impl fmt::Debug for PatientToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatientToken")
            .field("token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("principal", &self.principal)
            .finish()
    }
}

impl PatientToken {
    /// The bearer token. Never log it.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Its lifetime in seconds.
    pub fn expires_in(&self) -> u64 {
        self.expires_in
    }

    /// The token endpoint's success body: `access_token`, `token_type`, `expires_in`, `scope`
    /// ([`PATIENT_SCOPE`]) and `patient` (the Patient's logical id, as SMART's launch context
    /// names it). Serve it with `Cache-Control: no-store`.
    pub fn response_body(&self) -> Value {
        json!({
            "access_token": self.token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "scope": PATIENT_SCOPE,
            "patient": self.principal.patient,
        })
    }
}

/// The password the decoy hash is made of: hashed against when a name has no account, so that
/// such a login costs what a real one does. Nobody can log in with it (there is no account).
const DECOY_PASSWORD: &str = "tsunagu decoy password: no account has it";

impl TokenService {
    /// Lets patients log in, with the accounts of `directory`.
    pub fn with_patients(mut self, directory: Arc<dyn PatientDirectory>) -> Self {
        self.patients = Some(directory);
        self
    }

    /// The patient directory, when patients may log in.
    pub fn patient_directory(&self) -> Option<&Arc<dyn PatientDirectory>> {
        self.patients.as_ref()
    }

    /// Issues a challenge for a card to sign (a login, or a consent at a reception), valid for
    /// [`crate::CHALLENGE_LIFETIME`] and good for one attempt. Held in this process's memory.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] when the system has no randomness.
    pub fn issue_challenge(&self, now: SystemTime) -> Result<Challenge, AuthError> {
        self.challenges.issue(now).map_err(AuthError::unavailable)
    }

    /// A patient's login (the decoded form of a token request, pairs in order) at time `now`
    /// (module doc).
    ///
    /// # Errors
    /// `request_malformed` (a parameter missing or repeated), `grant_type_unsupported` (another
    /// grant type, or no patient directory), `patient_locked`, `patient_login_failed` (every
    /// other refusal), or [`AuthError::Unavailable`] when the directory cannot answer.
    pub async fn patient_login(
        &self,
        form: &[(String, String)],
        now: SystemTime,
    ) -> Result<PatientToken, AuthError> {
        let form = Form(form);
        match form.single("grant_type")? {
            Some(PATIENT_GRANT_TYPE) => {}
            Some(_) => return Err(AuthError::UnsupportedGrantType),
            None => {
                return Err(AuthError::RequestMalformed {
                    parameter: "grant_type",
                });
            }
        }
        let required = |name: &'static str| -> Result<&str, AuthError> {
            form.single(name)?
                .ok_or(AuthError::RequestMalformed { parameter: name })
        };
        let username = required("username")?;
        let password = required("password")?;
        let challenge = required("challenge")?;
        let signature = required("card_signature")?;
        let directory = self
            .patients
            .as_ref()
            .ok_or(AuthError::UnsupportedGrantType)?;

        // Used now, whatever happens next.
        let challenge_live = self.challenges.take(challenge, now);
        let Ok(account_id) = AccountId::new(username) else {
            return Err(AuthError::PatientLoginFailed);
        };
        if self.lockout.is_locked(&account_id, now) {
            return Err(AuthError::PatientLocked);
        }
        if !challenge_live {
            self.lockout.failed(&account_id, now);
            return Err(AuthError::PatientLoginFailed);
        }
        let account = directory
            .account(&account_id)
            .await
            .map_err(AuthError::unavailable)?;
        // Both factors are checked whatever the other's outcome, and a missing account costs a
        // password hash too: neither the answer nor its timing says which one failed.
        let message = card_message(LOGIN_PURPOSE, challenge, &account_id);
        let accepted = match &account {
            Some(account) => {
                let password_ok = account.password().verify(password);
                let card_ok = account.card().verify(&message, signature);
                password_ok & card_ok & !account.is_disabled()
            }
            None => {
                let _ = self.decoy_hash()?.verify(password);
                false
            }
        };
        let account = match account {
            Some(account) if accepted => account,
            _ => {
                self.lockout.failed(&account_id, now);
                return Err(AuthError::PatientLoginFailed);
            }
        };
        self.lockout.succeeded(&account_id);
        self.issue_patient_token(account_id, account.patient().to_owned(), now)
    }

    /// Verifies a patient's card signature presented by a facility, e.g. for a consent given at
    /// its reception: the card of the account of the patient whose `Patient` has logical id
    /// `patient_id` signed [`card_message`]`(purpose, challenge, account)`, over a live challenge
    /// (which is consumed, whatever the outcome). Returns the account.
    ///
    /// `purpose` must be [`crate::consent_purpose`] of the organisation the *authenticated*
    /// facility belongs to (taken from its token, never from its request), so that a signature
    /// given at one facility is worthless at another. A `login` purpose is refused: a login
    /// signature is never a consent. Card signatures cannot be guessed, so failures here do not
    /// count towards the login lockout.
    ///
    /// # Errors
    /// `request_malformed` (`purpose` is not `consent:<organisation id>`),
    /// `card_signature_invalid` (every other refusal), or [`AuthError::Unavailable`] when the
    /// directory cannot answer.
    pub async fn verify_card_signature(
        &self,
        patient_id: &str,
        purpose: &str,
        challenge: &str,
        signature_b64url: &str,
        now: SystemTime,
    ) -> Result<AccountId, AuthError> {
        let consent_of = purpose
            .strip_prefix("consent:")
            .map(crate::model::OrganisationId::new);
        if !matches!(consent_of, Some(Ok(_))) {
            return Err(AuthError::RequestMalformed {
                parameter: "purpose",
            });
        }
        let challenge_live = self.challenges.take(challenge, now);
        let directory = self
            .patients
            .as_ref()
            .ok_or(AuthError::CardSignatureInvalid)?;
        if !challenge_live {
            return Err(AuthError::CardSignatureInvalid);
        }
        let account = directory
            .account_for_patient(patient_id)
            .await
            .map_err(AuthError::unavailable)?
            .filter(|account| !account.is_disabled())
            .ok_or(AuthError::CardSignatureInvalid)?;
        let message = card_message(purpose, challenge, account.account_id());
        if !account.card().verify(&message, signature_b64url) {
            return Err(AuthError::CardSignatureInvalid);
        }
        Ok(account.account_id().clone())
    }

    /// Verifies a bearer token of either kind at time `now`: a member's token as
    /// [`TokenService::verify_access_token`] does, a patient's (it has a `patient` claim) with the
    /// same signature, issuer, audience and expiry checks, and its account still enabled and still
    /// the patient's. Called on every FHIR request once patients can log in.
    ///
    /// # Errors
    /// `token_*` [`AuthError`]s (`token_account_disabled` for a disabled or removed patient
    /// account), or [`AuthError::Unavailable`] when the registry or the directory cannot answer.
    pub async fn verify_bearer(&self, bearer: &str, now: SystemTime) -> Result<Bearer, AuthError> {
        let verified = self.verify_signed(bearer, now)?;
        if is_patient_token(&verified.claims) {
            let principal = self
                .patient_principal(&verified.claims, verified.expires)
                .await?;
            Ok(Bearer::Patient(principal))
        } else {
            let principal = self
                .member_principal(&verified.claims, verified.expires)
                .await?;
            Ok(Bearer::Member(principal))
        }
    }

    fn issue_patient_token(
        &self,
        account_id: AccountId,
        patient: String,
        now: SystemTime,
    ) -> Result<PatientToken, AuthError> {
        let lifetime = self.settings.access_token_lifetime.as_secs();
        let issued_at = unix(now);
        let expires_at = issued_at + lifetime as i64;
        let token_id = super::new_token_id()?;
        let claims = json!({
            "iss": self.settings.issuer,
            "sub": account_id.as_str(),
            "aud": self.settings.audience,
            "iat": issued_at,
            "exp": expires_at,
            "jti": token_id,
            "scope": PATIENT_SCOPE,
            "patient": patient,
        });
        Ok(PatientToken {
            token: self.sign_token(&claims)?,
            expires_in: lifetime,
            principal: PatientPrincipal {
                account_id,
                patient,
                token_id,
                expires_at: at(expires_at),
            },
        })
    }

    /// The patient of a signed, timely token with a `patient` claim, whose account is still
    /// enabled and still the patient's.
    async fn patient_principal(
        &self,
        claims: &Map<String, Value>,
        expires: i64,
    ) -> Result<PatientPrincipal, AuthError> {
        let read = PatientClaims::read(claims).ok_or(AuthError::TokenMalformed)?;
        let directory = self
            .patients
            .as_ref()
            .ok_or(AuthError::TokenAccountDisabled)?;
        let account = directory
            .account(&read.account_id)
            .await
            .map_err(AuthError::unavailable)?;
        match account {
            Some(account) if !account.is_disabled() && account.patient() == read.patient => {}
            _ => return Err(AuthError::TokenAccountDisabled),
        }
        Ok(PatientPrincipal {
            account_id: read.account_id,
            patient: read.patient,
            token_id: read.token_id,
            expires_at: at(expires),
        })
    }

    /// The decoy hash (made on first use, at the default iteration count).
    fn decoy_hash(&self) -> Result<&PasswordHash, AuthError> {
        if let Some(hash) = self.decoy_hash.get() {
            return Ok(hash);
        }
        let password = Password::new(DECOY_PASSWORD).map_err(AuthError::unavailable)?;
        let hash = PasswordHash::new(&password).map_err(AuthError::unavailable)?;
        Ok(self.decoy_hash.get_or_init(|| hash))
    }
}

/// Whether a token's claims are a patient token's: it has a `patient` claim. Member tokens never
/// have one, and [`TokenService::verify_access_token`] refuses any token that does.
pub(super) fn is_patient_token(claims: &Map<String, Value>) -> bool {
    claims.contains_key("patient")
}

/// What our own patient token says, read back.
struct PatientClaims {
    account_id: AccountId,
    patient: String,
    token_id: String,
}

impl PatientClaims {
    fn read(claims: &Map<String, Value>) -> Option<PatientClaims> {
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        // A patient token names no client and no acting user: it is never half a member token.
        if claims.contains_key("client_id") || claims.contains_key("extensions") {
            return None;
        }
        if text("scope")? != PATIENT_SCOPE {
            return None;
        }
        let patient = text("patient")?;
        if !crate::patient::is_fhir_id(patient) {
            return None;
        }
        Some(PatientClaims {
            account_id: AccountId::new(text("sub")?).ok()?,
            patient: patient.to_owned(),
            token_id: text("jti")?.to_owned(),
        })
    }
}
