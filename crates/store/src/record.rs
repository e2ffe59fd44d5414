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
    /// The body serialised with `meta.versionId` and `meta.lastUpdated` set: what every backend
    /// stores for this version (the body itself is left as it is).
    ///
    /// An existing `meta` keeps its key order (existing keys are replaced in place, new ones
    /// appended); a missing `meta` is inserted right after `id`, where FHIR's JSON examples put it.
    ///
    /// # Errors
    /// `Invalid` when the body is not an object, its `resourceType` or `id` disagree with the write,
    /// or its `meta` is not an object (messages name the problem, never the values).
    pub fn stamp(&self, version: u64, now: Timestamp) -> Result<String, StoreError> {
        Ok(self.stamp_template()?.fill(version, now))
    }

    /// The body serialised once with holes where `meta.versionId` and `meta.lastUpdated` go:
    /// [`StampTemplate::fill`] then gives exactly what [`ResourceWrite::stamp`] gives, for the cost
    /// of a copy. Backends make it on the caller's task so that their single writer only fills it.
    ///
    /// # Errors
    /// As [`ResourceWrite::stamp`].
    pub fn stamp_template(&self) -> Result<StampTemplate, StoreError> {
        use serde_json::Value as Json;
        let Json::Object(body) = &self.body else {
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
        let meta = match body.get("meta") {
            Some(Json::Object(meta)) => Some(meta),
            Some(_) => {
                return Err(StoreError::Invalid(
                    "the resource's meta is not a JSON object".into(),
                ));
            }
            None => None,
        };
        // A missing `meta` goes right after `id` (or `resourceType`), where FHIR's examples put it.
        let insert_meta_at = if meta.is_none() {
            let position_of = |name: &str| body.keys().position(|key| key == name);
            Some(
                position_of("id")
                    .or_else(|| position_of("resourceType"))
                    .map_or(0, |index| index + 1),
            )
        } else {
            None
        };
        let mut template = TemplateWriter::default();
        template.text.push(b'{');
        let mut first = true;
        for (position, (key, value)) in body.iter().enumerate() {
            if insert_meta_at == Some(position) {
                template.key(&mut first, "meta")?;
                template.meta(None)?;
            }
            template.key(&mut first, key)?;
            match value {
                Json::Object(object) if key == "meta" => template.meta(Some(object))?,
                value => template.value(value)?,
            }
        }
        if insert_meta_at == Some(body.len()) {
            template.key(&mut first, "meta")?;
            template.meta(None)?;
        }
        template.text.push(b'}');
        let text = String::from_utf8(template.text).map_err(StoreError::internal)?;
        Ok(StampTemplate {
            text,
            version_at: template.version_at,
            updated_at: template.updated_at,
        })
    }
}

/// A resource body serialised with two holes: the values of `meta.versionId` and
/// `meta.lastUpdated` (see [`ResourceWrite::stamp_template`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StampTemplate {
    text: String,
    version_at: usize,
    updated_at: usize,
}

impl StampTemplate {
    /// The stored JSON of this body at `version`, written at `now`.
    pub fn fill(&self, version: u64, now: Timestamp) -> String {
        let version = version.to_string();
        let instant = now.to_fhir_instant();
        let mut holes = [
            (self.version_at, version.as_str()),
            (self.updated_at, instant.as_str()),
        ];
        holes.sort_by_key(|(at, _)| *at);
        let mut json = String::with_capacity(self.text.len() + version.len() + instant.len() + 4);
        let mut from = 0;
        for (at, value) in holes {
            json.push_str(&self.text[from..at]);
            // Digits, and an instant's digits and punctuation: nothing to escape.
            json.push('"');
            json.push_str(value);
            json.push('"');
            from = at;
        }
        json.push_str(&self.text[from..]);
        json
    }
}

/// Writes compact JSON exactly as `serde_json::to_string` would, leaving out the two values that
/// [`StampTemplate::fill`] puts in.
#[derive(Default)]
struct TemplateWriter {
    text: Vec<u8>,
    version_at: usize,
    updated_at: usize,
}

impl TemplateWriter {
    fn key(&mut self, first: &mut bool, key: &str) -> Result<(), StoreError> {
        if !std::mem::take(first) {
            self.text.push(b',');
        }
        serde_json::to_writer(&mut self.text, key).map_err(StoreError::internal)?;
        self.text.push(b':');
        Ok(())
    }

    fn value(&mut self, value: &serde_json::Value) -> Result<(), StoreError> {
        serde_json::to_writer(&mut self.text, value).map_err(StoreError::internal)
    }

    /// `meta`, with `versionId` and `lastUpdated` where they are (or appended, in that order).
    fn meta(
        &mut self,
        meta: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<(), StoreError> {
        self.text.push(b'{');
        let mut first = true;
        let (mut version, mut updated) = (false, false);
        for (key, value) in meta.into_iter().flatten() {
            self.key(&mut first, key)?;
            match key.as_str() {
                "versionId" => {
                    self.version_at = self.text.len();
                    version = true;
                }
                "lastUpdated" => {
                    self.updated_at = self.text.len();
                    updated = true;
                }
                _ => self.value(value)?,
            }
        }
        if !version {
            self.key(&mut first, "versionId")?;
            self.version_at = self.text.len();
        }
        if !updated {
            self.key(&mut first, "lastUpdated")?;
            self.updated_at = self.text.len();
        }
        self.text.push(b'}');
        Ok(())
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// What stamping meant before templates: set the two keys in the body, serialise it.
    fn stamped_in_place(body: &Value, version: u64, now: Timestamp) -> String {
        let mut body = body.clone();
        let object = body.as_object_mut().expect("an object");
        let values = [
            ("versionId", Value::String(version.to_string())),
            ("lastUpdated", Value::String(now.to_fhir_instant())),
        ];
        match object.get_mut("meta") {
            Some(Value::Object(meta)) => {
                for (key, value) in values {
                    meta.insert(key.to_owned(), value);
                }
            }
            _ => {
                let meta: serde_json::Map<String, Value> = values
                    .into_iter()
                    .map(|(key, value)| (key.to_owned(), value))
                    .collect();
                let position_of = |name: &str| object.keys().position(|key| key == name);
                let at = position_of("id")
                    .or_else(|| position_of("resourceType"))
                    .map_or(0, |index| index + 1);
                object.shift_insert(at, "meta".to_owned(), Value::Object(meta));
            }
        }
        serde_json::to_string(&body).expect("serialisable")
    }

    fn write(body: Value) -> ResourceWrite {
        ResourceWrite {
            resource_type: "Observation".into(),
            id: "o1".into(),
            body,
            index: Vec::new(),
            compartments: Vec::new(),
        }
    }

    #[test]
    fn a_filled_template_is_the_body_stamped_in_place() {
        let bodies = [
            json!({"resourceType": "Observation", "id": "o1", "status": "final"}),
            json!({"resourceType": "Observation", "status": "final"}),
            json!({"status": "final", "valueString": "\"quoted\" \u{3042}\n"}),
            json!({}),
            json!({"resourceType": "Observation", "id": "o1", "meta": {}}),
            json!({"resourceType": "Observation", "id": "o1",
                   "meta": {"lastUpdated": "x", "tag": [{"code": "a,b"}], "versionId": "9"},
                   "note": [{"text": "meta versionId lastUpdated"}]}),
            json!({"meta": {"profile": ["p"]}, "resourceType": "Observation",
                   "valueQuantity": {"value": 1.50, "unit": "mg/dL"}}),
            json!({"resourceType": "Observation", "id": "o1",
                   "meta": {"versionId": "1"}, "contained": [{"meta": {"versionId": "x"}}]}),
        ];
        let now = Timestamp(1_795_000_000_123_456);
        for body in bodies {
            let write = write(body.clone());
            let template = write.stamp_template().expect("a template");
            for version in [1, 42, u64::MAX] {
                assert_eq!(
                    template.fill(version, now),
                    stamped_in_place(&body, version, now),
                    "{body}"
                );
            }
            assert_eq!(
                write.stamp(3, now).expect("stamped"),
                stamped_in_place(&body, 3, now)
            );
        }
    }

    #[test]
    fn templates_refuse_what_stamping_refuses() {
        for body in [
            json!([1, 2]),
            json!({"resourceType": "Patient"}),
            json!({"resourceType": "Observation", "id": "other"}),
            json!({"resourceType": "Observation", "meta": "text"}),
        ] {
            assert!(matches!(
                write(body).stamp_template(),
                Err(StoreError::Invalid(_))
            ));
        }
    }
}
