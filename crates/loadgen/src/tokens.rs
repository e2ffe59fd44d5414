//! Who the driver acts as, and their access tokens: facility systems' users (SMART Backend
//! Services: an ES384 client assertion naming the acting user, exchanged at the token endpoint) and
//! patients (a challenge, then their password and their card's signature of it). A token is
//! obtained on first use and renewed before it expires, by whichever task needs it first while
//! the others wait for it; the token requests are traffic like any other and are recorded in
//! their own classes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use auth::{AccountId, ActingUser, CardKey, ClientKey};

use crate::http::{Connection, Request};
use crate::mix::Class;
use crate::stats::{Outcome, Recorder};

/// Where the outcomes of token requests go (none during setup).
pub type Sink = Mutex<Recorder>;

/// How long before its expiry a token is renewed.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(30);
/// Lifetime of the driver's client assertions (at most five minutes are accepted).
const ASSERTION_LIFETIME: Duration = Duration::from_secs(240);

/// How long the unmeasured phases wait out the server's rate limit (429) before giving up.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The server's token and challenge endpoints.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The token endpoint URL as the server announces it (the assertions' audience).
    pub token_url: String,
    /// Its path, requested on the driver's own connection to the server.
    pub token_path: String,
    /// The path of the challenge endpoint.
    pub challenge_path: String,
}

/// A facility's client system and its key.
#[derive(Debug)]
pub struct MemberClient {
    pub client_id: String,
    pub organisation: String,
    pub key: ClientKey,
}

/// A patient's account, as their app holds it: the account id, the password and the card.
#[derive(Debug)]
pub struct PatientLogin {
    pub account: AccountId,
    pub password: String,
    pub card: CardKey,
    /// The logical id of their `Patient`.
    pub patient: String,
}

/// Someone the driver acts as.
#[derive(Debug)]
pub enum Identity {
    /// A user of a facility system (an index into [`Tokens::clients`]), asking for `scope`.
    Member {
        client: usize,
        user: ActingUser,
        scope: &'static str,
    },
    /// A patient (an index into [`Tokens::patients`]).
    Patient { login: usize },
}

#[derive(Debug, Clone)]
struct Held {
    token: Arc<str>,
    renew_at: Instant,
}

/// Why no token could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoToken(pub Outcome);

/// Every identity's current token.
#[derive(Debug)]
pub struct Tokens {
    endpoints: Endpoints,
    pub clients: Vec<MemberClient>,
    pub patients: Vec<PatientLogin>,
    identities: Vec<Identity>,
    held: Vec<tokio::sync::Mutex<Option<Held>>>,
}

impl Tokens {
    pub fn new(endpoints: Endpoints) -> Tokens {
        Tokens {
            endpoints,
            clients: Vec::new(),
            patients: Vec::new(),
            identities: Vec::new(),
            held: Vec::new(),
        }
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Adds an identity; returns its index.
    pub fn add(&mut self, identity: Identity) -> usize {
        self.identities.push(identity);
        self.held.push(tokio::sync::Mutex::new(None));
        self.identities.len() - 1
    }

    /// The identity at `index`.
    pub fn identity(&self, index: usize) -> &Identity {
        &self.identities[index]
    }

    /// The patient login of a patient identity.
    pub fn login_of(&self, identity: usize) -> Option<&PatientLogin> {
        match &self.identities[identity] {
            Identity::Patient { login } => Some(&self.patients[*login]),
            Identity::Member { .. } => None,
        }
    }

    /// A valid token of `identity`, obtained on `connection` when there is none or it is about
    /// to expire.
    ///
    /// # Errors
    /// [`NoToken`] with the outcome of the token request that failed.
    pub async fn token(
        &self,
        identity: usize,
        connection: &mut Connection,
        sink: Option<&Sink>,
    ) -> Result<Arc<str>, NoToken> {
        let mut held = self.held[identity].lock().await;
        if let Some(current) = held.as_ref()
            && Instant::now() < current.renew_at
        {
            return Ok(current.token.clone());
        }
        let (token, expires_in) = match &self.identities[identity] {
            Identity::Member {
                client,
                user,
                scope,
            } => {
                self.member_token(*client, user, scope, connection, sink)
                    .await?
            }
            Identity::Patient { login } => self.patient_token(*login, connection, sink).await?,
        };
        let renew_in = expires_in
            .saturating_sub(RENEW_BEFORE_EXPIRY)
            .max(expires_in / 2);
        let token: Arc<str> = Arc::from(token);
        *held = Some(Held {
            token: token.clone(),
            renew_at: Instant::now() + renew_in,
        });
        Ok(token)
    }

    async fn member_token(
        &self,
        client: usize,
        user: &ActingUser,
        scope: &str,
        connection: &mut Connection,
        sink: Option<&Sink>,
    ) -> Result<(String, Duration), NoToken> {
        let client = &self.clients[client];
        let assertion = client
            .key
            .assertion(
                &client.client_id,
                &self.endpoints.token_url,
                user,
                SystemTime::now(),
                ASSERTION_LIFETIME,
            )
            .map_err(|_| NoToken(Outcome::Unexpected(0)))?;
        let request = Request::post_form(
            &self.endpoints.token_path,
            &auth::token_request(&assertion, scope),
        );
        let reply = exchange(connection, &request, Class::TokenMember, sink).await?;
        token_of(&reply)
    }

    async fn patient_token(
        &self,
        login: usize,
        connection: &mut Connection,
        sink: Option<&Sink>,
    ) -> Result<(String, Duration), NoToken> {
        let login = &self.patients[login];
        let challenge = self.challenge(connection, sink).await?;
        let signature = login.card.sign(&auth::card_message(
            auth::LOGIN_PURPOSE,
            &challenge,
            &login.account,
        ));
        let form = vec![
            ("grant_type".to_owned(), auth::PATIENT_GRANT_TYPE.to_owned()),
            ("username".to_owned(), login.account.as_str().to_owned()),
            ("password".to_owned(), login.password.clone()),
            ("challenge".to_owned(), challenge),
            ("card_signature".to_owned(), signature),
        ];
        let request = Request::post_form(&self.endpoints.token_path, &form);
        let reply = exchange(connection, &request, Class::TokenPatient, sink).await?;
        token_of(&reply)
    }

    /// A fresh challenge from the challenge endpoint (recorded as [`Class::TokenChallenge`]).
    ///
    /// # Errors
    /// [`NoToken`] when the endpoint did not answer one.
    pub async fn challenge(
        &self,
        connection: &mut Connection,
        sink: Option<&Sink>,
    ) -> Result<String, NoToken> {
        let request = Request::post_empty(&self.endpoints.challenge_path);
        let reply = exchange(connection, &request, Class::TokenChallenge, sink).await?;
        reply
            .json()
            .and_then(|body| body["challenge"].as_str().map(str::to_owned))
            .ok_or(NoToken(Outcome::Unexpected(reply.status)))
    }

    /// For the unmeasured phases (setup, sign-in): [`Tokens::token`], with a 429 (the server's
    /// rate limit) waited out a second at a time for up to [`PATIENCE`] rather than failed.
    ///
    /// # Errors
    /// As [`Tokens::token`].
    pub async fn token_patiently(
        &self,
        identity: usize,
        connection: &mut Connection,
    ) -> Result<Arc<str>, NoToken> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.token(identity, connection, None).await {
                Err(NoToken(Outcome::Unexpected(429))) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                other => return other,
            }
        }
    }

    /// [`Tokens::challenge`], with a 429 waited out as [`Tokens::token_patiently`] does.
    ///
    /// # Errors
    /// As [`Tokens::challenge`].
    pub async fn challenge_patiently(
        &self,
        connection: &mut Connection,
    ) -> Result<String, NoToken> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.challenge(connection, None).await {
                Err(NoToken(Outcome::Unexpected(429))) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                other => return other,
            }
        }
    }
}

/// Sends a token-path request, records it, and keeps only a 200.
async fn exchange(
    connection: &mut Connection,
    request: &Request,
    class: Class,
    sink: Option<&Sink>,
) -> Result<crate::http::Reply, NoToken> {
    let started = Instant::now();
    let result = connection.send(request).await;
    let outcome = match &result {
        Ok(reply) if class.expected().contains(&reply.status) => Outcome::Expected(reply.status),
        Ok(reply) => Outcome::Unexpected(reply.status),
        Err(failure) => Outcome::Failed(*failure),
    };
    if let Some(sink) = sink {
        sink.lock()
            .expect("the recorder lock")
            .record(class, started, Instant::now(), outcome);
    }
    match result {
        Ok(reply) if outcome.is_expected() => Ok(reply),
        _ => Err(NoToken(outcome)),
    }
}

/// The access token and its lifetime from a token response.
fn token_of(reply: &crate::http::Reply) -> Result<(String, Duration), NoToken> {
    let body = reply
        .json()
        .ok_or(NoToken(Outcome::Unexpected(reply.status)))?;
    let token = body["access_token"]
        .as_str()
        .ok_or(NoToken(Outcome::Unexpected(reply.status)))?;
    let expires_in = body["expires_in"].as_u64().unwrap_or(300);
    Ok((token.to_owned(), Duration::from_secs(expires_in)))
}
