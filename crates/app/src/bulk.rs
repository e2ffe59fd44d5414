//! Bulk creation: the initial load of many new resources in one store call (`tsunagu import`),
//! through the store's fastest path for it (`Store::bulk_create`; COPY on PostgreSQL).
//!
//! Each resource passes the same gate as any other write ([`App::prepare_write`]: validation,
//! indexing, compartments) and is stored exactly as a create would store it. What a bulk call does
//! not do is a transaction Bundle's planning: references are stored as written. An initial load's
//! references are plain relative `Type/id` references to resources of the same load (or already
//! stored ones), which need no rewriting and are indexed as usual; `urn:uuid:` placeholders are not
//! resolved (there are no `fullUrl`s to resolve them against), and a resource holding a conditional
//! reference (`Patient?identifier=...`) is refused so that the caller can send it through a
//! transaction, which resolves it.

use fhir::IssueCode;
use serde_json::Value;
use store::StoredResource;

use crate::references::conditional_references;
use crate::{App, AppError, new_id};

impl App {
    /// Creates `resources` as new resources in one all-or-nothing store call. A resource keeps the
    /// id it has, or gets a new server-assigned one; it is stored at version 1, like a create.
    ///
    /// # Errors
    /// `Invalid` for the first resource that fails validation, has no `resourceType`, or holds a
    /// conditional reference (issues name the element or the resource's position, never values);
    /// `Conflict` when a resource with one of the ids exists (live or
    /// deleted) or two resources share a type and id, and then nothing is written; `Unavailable`.
    pub async fn bulk_create(
        &self,
        resources: Vec<Value>,
    ) -> Result<Vec<StoredResource>, AppError> {
        let mut writes = Vec::with_capacity(resources.len());
        for (index, resource) in resources.into_iter().enumerate() {
            let Some(resource_type) = resource
                .get("resourceType")
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                return Err(AppError::invalid(
                    IssueCode::Required,
                    Some("resourceType".into()),
                    format!("resource {index} of the bulk create has no resourceType"),
                ));
            };
            let mut conditional = Vec::new();
            conditional_references(&resource, &mut conditional);
            if !conditional.is_empty() {
                return Err(AppError::invalid(
                    IssueCode::NotSupported,
                    None,
                    format!(
                        "resource {index} of the bulk create holds a conditional reference, which \
                         only a transaction resolves"
                    ),
                ));
            }
            let id = resource
                .get("id")
                .and_then(Value::as_str)
                .map_or_else(new_id, str::to_owned);
            writes.push(self.prepare_write(&resource_type, &id, resource)?);
        }
        Ok(self.store.bulk_create(writes).await?)
    }
}
