//! Records going into and coming out of the store: writes, stored resources, history and search pages.

use crate::error::StoreError;
use crate::index::IndexEntry;
use crate::query::PageCursor;
use crate::time::Timestamp;

/// A resource as stored: the current or a historical version.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    pub resource_type: String,
    pub id: String,
    /// Starts at 1, one more per write of the same resource (deletes included).
    pub version: u64,
    pub last_updated: Timestamp,
    /// True for the version written by a delete; `json` is then empty.
    pub deleted: bool,
    /// The resource JSON exactly as stored, with `meta.versionId` and `meta.lastUpdated` stamped in.
    pub json: String,
}

/// A resource body ready to be written, with everything the store needs to index it.
#[derive(Debug, Clone)]
pub struct ResourceWrite {
    pub resource_type: String,
    /// The logical id; never empty. Assigned by the caller (server-assigned ids come from `app`).
    pub id: String,
    /// The resource JSON. Its `resourceType` and `id` agree with the fields above. The store sets
    /// `meta.versionId` and `meta.lastUpdated` (creating `meta` if absent) before serialising it.
    pub body: serde_json::Value,
    /// Search-index entries extracted from `body` (references already resolved).
    pub index: Vec<IndexEntry>,
    /// Ids of the patients whose compartment this resource belongs to (the Patient itself included).
    pub compartments: Vec<String>,
}

impl ResourceWrite {
    /// Sets `meta.versionId` and `meta.lastUpdated` in the body and serialises it: what every
    /// backend stores for this version.
    ///
    /// An existing `meta` keeps its key order (existing keys are replaced in place, new ones
    /// appended); a missing `meta` is inserted right after `id`, where FHIR's JSON examples put it.
    ///
    /// # Errors
    /// `Invalid` when the body is not an object, its `resourceType` or `id` disagree with the write,
    /// or its `meta` is not an object (messages name the problem, never the values).
    pub fn stamp(&mut self, version: u64, now: Timestamp) -> Result<String, StoreError> {
        use serde_json::Value as Json;
        let Json::Object(body) = &mut self.body else {
            return Err(StoreError::Invalid(
                "the resource body is not a JSON object".into(),
            ));
        };
        if let Some(Json::String(body_type)) = body.get("resourceType")
            && body_type != &self.resource_type
        {
            return Err(StoreError::Invalid(
                "the body's resourceType does not match the write".into(),
            ));
        }
        if let Some(Json::String(body_id)) = body.get("id")
            && body_id != &self.id
        {
            return Err(StoreError::Invalid(
                "the body's id does not match the write".into(),
            ));
        }
        let version_id = Json::String(version.to_string());
        let last_updated = Json::String(now.to_fhir_instant());
        match body.get_mut("meta") {
            Some(Json::Object(meta)) => {
                meta.insert("versionId".to_owned(), version_id);
                meta.insert("lastUpdated".to_owned(), last_updated);
            }
            Some(_) => {
                return Err(StoreError::Invalid(
                    "the resource's meta is not a JSON object".into(),
                ));
            }
            None => {
                let mut meta = serde_json::Map::with_capacity(2);
                meta.insert("versionId".to_owned(), version_id);
                meta.insert("lastUpdated".to_owned(), last_updated);
                let position_of = |name: &str| body.keys().position(|key| key == name);
                let at = position_of("id")
                    .or_else(|| position_of("resourceType"))
                    .map_or(0, |index| index + 1);
                body.shift_insert(at, "meta".to_owned(), Json::Object(meta));
            }
        }
        serde_json::to_string(&self.body).map_err(StoreError::internal)
    }
}

/// One operation of a [`crate::Store::write`] call.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Creates a new resource. If `if_none_exist` is given and matches one or more current resources
    /// of the same type at commit time, nothing is written and the outcome is
    /// [`WriteOutcome::Existing`] with the first match (the caller decides whether more than one
    /// match is an error). A create of an id that already exists and is not deleted is `Duplicate`.
    Create {
        write: ResourceWrite,
        if_none_exist: Option<Box<crate::query::SearchQuery>>,
    },
    /// Creates or replaces a resource (create-on-update). With `if_match`, the current version must
    /// be exactly that, else `VersionConflict`.
    Update {
        write: ResourceWrite,
        if_match: Option<u64>,
    },
    /// Soft-deletes a resource: a new version marked deleted. Deleting an absent or already
    /// deleted resource succeeds with [`WriteOutcome::NotFound`]. With `if_match`, as for update.
    Delete {
        resource_type: String,
        id: String,
        if_match: Option<u64>,
    },
}

/// The result of one [`WriteOp`], in the same order as the operations.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOutcome {
    /// A new resource (version 1, or the next version after a delete).
    Created(StoredResource),
    /// A new version of an existing resource.
    Updated(StoredResource),
    /// A delete that wrote a deleted marker at this version.
    Deleted {
        version: u64,
        last_updated: Timestamp,
    },
    /// A delete of something that was absent or already deleted: nothing written.
    NotFound,
    /// A conditional create that matched an existing resource: nothing written.
    Existing(StoredResource),
}

/// Which history to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryScope {
    System,
    Type(String),
    Instance { resource_type: String, id: String },
}

/// A history request. Entries come newest first.
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    pub scope: HistoryScope,
    /// Only versions written at or after this instant (`_since`).
    pub since: Option<Timestamp>,
    /// Only versions written before this instant (`_at` upper bound).
    pub before: Option<Timestamp>,
    /// Page size; backends cap it.
    pub count: u32,
    /// Position to continue from, as returned in [`HistoryPage::next`].
    pub cursor: Option<PageCursor>,
    /// Whether to count every entry in scope (costly on the system scope).
    pub with_total: bool,
}

/// How a history entry came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryMethod {
    Create,
    Update,
    Delete,
}

/// One version in a history listing.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub method: HistoryMethod,
    pub resource: StoredResource,
}

/// One page of history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    pub entries: Vec<HistoryEntry>,
    pub next: Option<PageCursor>,
    pub total: Option<u64>,
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchPage {
    /// The matches on this page, in the requested order.
    pub matches: Vec<StoredResource>,
    /// Resources added by `_include`/`_revinclude`, each once, none of them also in `matches`.
    pub included: Vec<StoredResource>,
    /// Number of matches over all pages, when [`crate::TotalMode::Accurate`] was asked for.
    pub total: Option<u64>,
    /// Cursor for the next page, when there is one.
    pub next: Option<PageCursor>,
    /// Cursor for the previous page, when this is not the first page.
    pub previous: Option<PageCursor>,
}
