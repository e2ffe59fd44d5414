//! Who is asking, what they may attempt, and the record of every answer (docs/security.md).
//!
//! With a [`Security`] in the [`crate::AppState`], every `/fhir` request but the two discovery
//! documents (`metadata`, `.well-known/smart-configuration`) goes through [`guard`]:
//!
//! 1. the bearer token is verified (`auth`): none or a bad one is a 401 with `WWW-Authenticate`;
//! 2. the client's rate limit (429 with `Retry-After`);
//! 3. the token's SMART scopes against the interaction (403);
//! 4. the handler runs on a façade answering for the caller (`app::Viewer`): consent, roles,
//!    flags and the patient's compartment are decided there, in one place;
//! 5. one audit entry per patient the façade touched (or one for the request when it touched
//!    none) is committed to the tamper-evident log **before** the response leaves; if that fails,
//!    the response is replaced by a 503 without data;
//! 6. the unusual-access watch counts the patients a user read.
//!
//! The token endpoint (`POST /auth/token`) records every issuance and refusal the same way.

mod abuse;
mod alerts;
mod guard;
mod routes;

use std::sync::Arc;
use std::time::Duration;

pub use abuse::AbuseSettings;
pub use alerts::{Alert, AlertSink, FileAlerts};
pub(crate) use guard::{Caller, RequestApp, guard};
pub(crate) use routes::{
    access_history, challenge, consent_create, emergency_access, smart_configuration, token,
};

/// How long a request waits for its audit entries before it is answered 503.
pub const AUDIT_TIMEOUT: Duration = Duration::from_secs(2);

/// Authentication, authorisation limits, audit and alerts: everything the guard needs.
#[derive(Debug)]
pub struct Security {
    pub(crate) tokens: Arc<auth::TokenService>,
    pub(crate) audit: Arc<audit::AuditLog>,
    pub(crate) alerts: Arc<dyn AlertSink>,
    pub(crate) limiter: abuse::RateLimiter,
    pub(crate) watch: abuse::AccessWatch,
    pub(crate) settings: AbuseSettings,
}

impl Security {
    /// The security layer over a token service, an audit log and an alert sink.
    pub fn new(
        tokens: Arc<auth::TokenService>,
        audit: Arc<audit::AuditLog>,
        alerts: Arc<dyn AlertSink>,
        settings: AbuseSettings,
    ) -> Self {
        Security {
            tokens,
            audit,
            alerts,
            limiter: abuse::RateLimiter::new(&settings),
            watch: abuse::AccessWatch::new(&settings),
            settings,
        }
    }

    /// The token service.
    pub fn tokens(&self) -> &Arc<auth::TokenService> {
        &self.tokens
    }

    /// The audit log.
    pub fn audit(&self) -> &Arc<audit::AuditLog> {
        &self.audit
    }

    /// Appends records, all at once (they share group commits), within [`AUDIT_TIMEOUT`]: on
    /// the request's own task, without a task per record.
    ///
    /// # Errors
    /// When any record could not be committed in time.
    pub(crate) async fn record(&self, records: Vec<audit::AuditRecord>) -> Result<(), ()> {
        match tokio::time::timeout(AUDIT_TIMEOUT, self.audit.append_all(&records)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => {
                tracing::error!(%error, "audit append failed");
                Err(())
            }
            Err(_) => {
                tracing::error!("audit append timed out");
                Err(())
            }
        }
    }
}
