//! The use cases of tsunagu: create, read, update, patch, delete, search, history, transaction and
//! batch Bundles, the Patient compartment, and bulk creation for initial loads. This crate is the only caller of `store`; binaries only
//! construct a backend and hand it to [`App::new`].
//!
//! Every write goes through one path ([`App::prepare_write`]): the body is checked against the URL,
//! validated against the official R4 definitions, indexed by the official search parameters, and
//! assigned to the Patient compartments it belongs to, before the store sees it.

mod access;
mod bulk;
mod bundle;
mod consent;
mod emergency;
mod error;
mod history;
mod identity;
mod query;
mod references;
mod resources;
mod retention;
mod settings;
mod submission;
mod summary;
mod visibility;

use std::sync::Arc;

use ::search::Registry;
use store::Store;

pub use crate::access::Accesses;
pub use crate::bundle::{BundleEntryResult, BundleKind, BundleOutcome, parse_etag};
pub use crate::consent::{Member, OrganisationKind, Role, allowed_types};
pub use crate::emergency::{EMERGENCY_WINDOW_MINUTES, Review};
pub use crate::error::AppError;
pub use crate::history::{HistoryOutcome, HistoryRequest};
pub use crate::query::{SearchInput, SearchOutcome};
pub use crate::resources::{Preconditions, WriteResult};
pub use crate::retention::{RetentionPolicy, RetentionReport};
pub use crate::settings::Settings;
pub use crate::submission::{SubmissionOutcome, is_submission};
pub use crate::summary::SummaryKind;
pub use crate::visibility::Viewer;
pub use ::search::{SearchError, Summary};
pub use store::{
    HistoryEntry, HistoryMethod, HistoryScope, PageCursor, SearchPage, StoredResource, Timestamp,
};

/// The façade every entry point (HTTP handlers, CLI commands) calls.
#[derive(Clone)]
pub struct App {
    store: Arc<dyn Store>,
    registry: &'static Registry,
    settings: Arc<Settings>,
    /// Who the read paths answer for (see `visibility`).
    viewer: Viewer,
    /// Consent decisions made while answering for this viewer (a façade per request).
    consents: Arc<consent::ConsentCache>,
    /// The periods of patients' consents to organisations, kept across requests (one per `App::new`).
    grants: Arc<consent::ConsentGrants>,
    /// The patients this façade touched, for the request's audit entries.
    ledger: Arc<access::AccessLedger>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Builds the façade over a store chosen by the binary.
    pub fn new(store: Arc<dyn Store>, settings: Settings) -> Self {
        App {
            store,
            registry: Registry::r4(),
            settings: Arc::new(settings),
            viewer: Viewer::default(),
            consents: Arc::default(),
            grants: Arc::default(),
            ledger: Arc::default(),
        }
    }

    /// The same façade answering for `viewer`: every read path then shows what that viewer may see
    /// and nothing else (the JP-CLINS flags and submission states; see `visibility`). A new façade
    /// answers for an unidentified facility.
    pub fn for_viewer(&self, viewer: Viewer) -> App {
        App {
            viewer,
            consents: Arc::default(),
            ledger: Arc::default(),
            ..self.clone()
        }
    }

    /// Who this façade answers for.
    pub fn viewer(&self) -> &Viewer {
        &self.viewer
    }

    /// Whether the viewer may see a stored resource: the flags (`visibility`), and for a member of
    /// an organisation also its kind and role and the patient's consent (`consent`).
    ///
    /// # Errors
    /// `Unavailable` when a consent cannot be looked up.
    pub(crate) async fn permits(&self, resource: &StoredResource) -> Result<bool, AppError> {
        if !matches!(self.viewer, Viewer::Patient(_) | Viewer::Member(_)) {
            return Ok(self.visible(resource));
        }
        let marks = visibility::Marks::read(&resource.resource_type, &resource.id, &resource.json)
            .map_err(|error| AppError::Internal(Box::new(error)))?;
        let permitted = match &self.viewer {
            // A patient reads their own compartment, whatever id they put in the URL.
            Viewer::Patient(own) => {
                marks.patient.as_ref() == Some(own) && self.viewer.may_see_marked(&marks)
            }
            Viewer::Member(member) => self.member_permits(member, resource, &marks).await?,
            _ => unreachable!("only patients and members are decided here"),
        };
        if let Some(patient) = &marks.patient {
            self.record_access(patient, permitted);
        }
        Ok(permitted)
    }

    /// The member's half of [`App::permits`].
    async fn member_permits(
        &self,
        member: &Member,
        resource: &StoredResource,
        marks: &visibility::Marks,
    ) -> Result<bool, AppError> {
        if !member
            .visible_types()
            .contains(&resource.resource_type.as_str())
        {
            return Ok(false);
        }
        if !self.viewer.may_see_marked(marks) {
            return Ok(false);
        }
        let own = member
            .institution
            .as_deref()
            .is_some_and(|institution| marks.has_tag(visibility::SUBMITTER_SYSTEM, institution));
        if own {
            return Ok(true);
        }
        let Some(patient) = &marks.patient else {
            // Not a patient's data (directory data).
            return Ok(true);
        };
        if resource.resource_type == "Patient" && consent::linked(marks, member) {
            return Ok(true);
        }
        self.consented(patient, &member.organisation, now()).await
    }

    /// Whether the viewer may see a stored resource under the flags (deleted markers carry no
    /// body: shown). Members are decided by [`App::permits`].
    pub(crate) fn visible(&self, resource: &StoredResource) -> bool {
        // Only tagged resources can be hidden: skip the parse for the rest.
        if self.viewer == Viewer::Service || !resource.json.contains("\"tag\"") {
            return true;
        }
        serde_json::from_str::<serde_json::Value>(&resource.json)
            .map(|body| self.viewer.may_see(&body))
            .unwrap_or(false)
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The search parameter registry (for the CapabilityStatement).
    pub fn registry(&self) -> &'static Registry {
        self.registry
    }

    /// Whether the store answers, for readiness probes.
    ///
    /// # Errors
    /// `Unavailable` when the store does not answer.
    pub async fn ping(&self) -> Result<(), AppError> {
        Ok(self.store.ping().await?)
    }

    /// Resource types that currently hold data, for export.
    ///
    /// # Errors
    /// `Unavailable`, `Internal`.
    pub async fn resource_types_in_use(&self) -> Result<Vec<String>, AppError> {
        Ok(self.store.resource_types().await?)
    }

    /// One chunk of the current resources of a type, for export. `after` is the position returned
    /// with the previous chunk.
    ///
    /// # Errors
    /// `Unavailable`, `Internal`.
    pub async fn export_chunk(
        &self,
        resource_type: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<StoredResource>, Option<i64>), AppError> {
        Ok(self.store.scan(resource_type, after, limit).await?)
    }
}

/// The wall clock's time, for use cases that take `now` (summaries, retention).
pub fn now() -> Timestamp {
    use store::Clock as _;
    store::SystemClock.now()
}

/// The end of a FHIR date or dateTime (`2027-03-31`, `2027-03-31T23:59:59+09:00`): the last
/// microsecond it covers. `None` when it is not one.
pub fn parse_fhir_end(text: &str) -> Option<Timestamp> {
    ::search::parse_date_range(text).map(|range| Timestamp(range.high))
}

/// A fresh server-assigned logical id.
///
/// A UUIDv7: 48 bits of the creation time in milliseconds, then 74 random bits. Time-ordered ids
/// put each new resource (and each reference to a new Patient, and its compartment rows) at the
/// end of the store's id and reference indexes instead of on a random page of each: importing
/// 10,000 people went from 5,100-5,300 to 6,450 resources/s (SQLite). The time they carry is
/// the creation time `meta.lastUpdated` of the first version shows to whoever may read the
/// resource; the random part keeps them unguessable.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    /// What the store's index locality rests on: ids made one after another sort in that order.
    #[test]
    fn new_ids_sort_in_the_order_they_were_made() {
        let ids: Vec<String> = (0..2_000).map(|_| super::new_id()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(ids.iter().all(|id| id.len() == 36));
    }
}
