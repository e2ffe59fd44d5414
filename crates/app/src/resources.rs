//! Instance-level use cases: create, read, vread, update, patch, delete, and their conditional forms.

use fhir::IssueCode;
use serde_json::{Map, Value};
use store::{ResourceWrite, StoredResource, WriteOp, WriteOutcome};

use crate::{App, AppError, new_id};

/// Version preconditions a client may attach to a write.
#[derive(Debug, Clone, Default)]
pub struct Preconditions {
    /// `If-Match: W/"n"`: the current version must be `n`.
    pub if_match: Option<u64>,
}

/// The result of a write.
#[derive(Debug, Clone)]
pub struct WriteResult {
    /// The resource as stored (for a conditional create that matched: the existing one).
    pub resource: StoredResource,
    /// True when a new resource came into being (201), false for an update or a matched
    /// conditional create (200).
    pub created: bool,
}

impl App {
    /// `POST [type]`: creates a resource with a server-assigned id. With `if_none_exist` (the
    /// `If-None-Exist` header or the query of `POST [type]?params`), an existing single match is
    /// returned instead, and more than one match fails.
    ///
    /// # Errors
    /// `Invalid` for a malformed resource, `PreconditionFailed` for several matches, `Unavailable`.
    pub async fn create(
        &self,
        resource_type: &str,
        body: Value,
        if_none_exist: Option<&[(String, String)]>,
    ) -> Result<WriteResult, AppError> {
        if resource_type == "Bundle" && crate::is_submission(&body) {
            return self.submit(body).await.and_then(submission_result);
        }
        self.guard_direct_write()?;
        let if_none_exist = match if_none_exist {
            Some(params) => {
                let condition = self.match_condition(resource_type, params).await?;
                if let Some(existing) = condition.matched {
                    let resource = self.read(resource_type, &existing).await?;
                    return Ok(WriteResult {
                        resource,
                        created: false,
                    });
                }
                Some(Box::new(condition.query))
            }
            None => None,
        };
        let write = self.prepare_write(resource_type, &new_id(), body)?;
        let outcome = self
            .write_one(WriteOp::Create {
                write,
                if_none_exist,
            })
            .await?;
        write_result(outcome)
    }

    /// `GET [type]/[id]`: the current version.
    ///
    /// # Errors
    /// `NotFound`, `Gone` when deleted, `Unavailable`.
    pub async fn read(&self, resource_type: &str, id: &str) -> Result<StoredResource, AppError> {
        check_type(resource_type)?;
        match self.store.read(resource_type, id).await? {
            None => Err(AppError::NotFound),
            Some(resource) if !resource.deleted && !self.permits(&resource).await? => {
                Err(AppError::NotFound)
            }
            Some(resource) if resource.deleted => Err(AppError::Gone {
                version: resource.version,
                last_updated: resource.last_updated,
            }),
            Some(resource) => Ok(resource),
        }
    }

    /// `GET [type]/[id]/_history/[vid]`: one version.
    ///
    /// # Errors
    /// `NotFound`, `Gone` for the version written by a delete, `Unavailable`.
    pub async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version: u64,
    ) -> Result<StoredResource, AppError> {
        check_type(resource_type)?;
        match self.store.vread(resource_type, id, version).await? {
            None => Err(AppError::NotFound),
            Some(resource) if !resource.deleted && !self.permits(&resource).await? => {
                Err(AppError::NotFound)
            }
            Some(resource) if resource.deleted => Err(AppError::Gone {
                version: resource.version,
                last_updated: resource.last_updated,
            }),
            Some(resource) => Ok(resource),
        }
    }

    /// `PUT [type]/[id]`: replaces the resource, or creates it with the client's id.
    ///
    /// # Errors
    /// `Invalid` (including a body id that differs from the URL), `PreconditionFailed`, `Unavailable`.
    pub async fn update(
        &self,
        resource_type: &str,
        id: &str,
        body: Value,
        preconditions: &Preconditions,
    ) -> Result<WriteResult, AppError> {
        self.guard_direct_write()?;
        match body.get("id") {
            Some(Value::String(body_id)) if body_id == id => {}
            Some(_) => {
                return Err(AppError::invalid(
                    IssueCode::Invalid,
                    Some(format!("{resource_type}.id")),
                    "the resource id does not match the id in the URL",
                ));
            }
            None => {
                return Err(AppError::invalid(
                    IssueCode::Required,
                    Some(format!("{resource_type}.id")),
                    "an update needs the resource id in the body, equal to the id in the URL",
                ));
            }
        }
        let write = self.prepare_write(resource_type, id, body)?;
        let outcome = self
            .write_one(WriteOp::Update {
                write,
                if_match: preconditions.if_match,
            })
            .await?;
        write_result(outcome)
    }

    /// `PUT [type]?params`: updates the single match, creates when there is none (with the body's id
    /// if it has one, else a new id), fails on several.
    ///
    /// # Errors
    /// `PreconditionFailed` for several matches, as [`App::update`] otherwise.
    pub async fn conditional_update(
        &self,
        resource_type: &str,
        params: &[(String, String)],
        mut body: Value,
        preconditions: &Preconditions,
    ) -> Result<WriteResult, AppError> {
        if resource_type == "Bundle" && crate::is_submission(&body) {
            let named = crate::submission::identifier_param(params);
            let carried = body.pointer("/identifier/value").and_then(Value::as_str);
            if named.is_none() || named.as_deref() != carried {
                return Err(AppError::invalid(
                    IssueCode::Invalid,
                    Some("Bundle.identifier".into()),
                    "the URL must name the Bundle's own identifier (identifier=system|value)",
                ));
            }
            return self.submit(body).await.and_then(submission_result);
        }
        self.guard_direct_write()?;
        let matched = self.match_condition(resource_type, params).await?.matched;
        let id = conditional_update_id(matched, &body);
        if let Some(body_id) = body.get("id").and_then(Value::as_str)
            && body_id != id
        {
            return Err(AppError::invalid(
                IssueCode::Invalid,
                Some(format!("{resource_type}.id")),
                "the resource id does not match the resource found by the condition",
            ));
        }
        if let Value::Object(object) = &mut body {
            object.insert("id".into(), Value::String(id.clone()));
        }
        self.update(resource_type, &id, body, preconditions).await
    }

    /// `PATCH [type]/[id]` with a JSON Patch document. The patch applies to the current version and
    /// the result is written only if nobody changed the resource meanwhile.
    ///
    /// # Errors
    /// `NotFound`/`Gone`, `Invalid` for a bad patch or a patched resource that is no longer valid,
    /// `PreconditionFailed`, `Unavailable`.
    pub async fn patch(
        &self,
        resource_type: &str,
        id: &str,
        patch: &Value,
        preconditions: &Preconditions,
    ) -> Result<WriteResult, AppError> {
        self.guard_direct_write()?;
        let current = self.read(resource_type, id).await?;
        if let Some(expected) = preconditions.if_match
            && expected != current.version
        {
            return Err(AppError::PreconditionFailed(format!(
                "version {expected} was expected but the current version is {}",
                current.version
            )));
        }
        let mut body = fhir::parse_json(current.json.as_bytes())
            .map_err(|issue| AppError::Internal(issue.diagnostics.into()))?;
        fhir::patch::apply(&mut body, patch).map_err(|issue| AppError::Invalid(vec![issue]))?;
        if body.get("resourceType").and_then(Value::as_str) != Some(resource_type)
            || body.get("id").and_then(Value::as_str) != Some(id)
        {
            return Err(AppError::invalid(
                IssueCode::Invalid,
                None,
                "a patch may not change the resource type or id",
            ));
        }
        let write = self.prepare_write(resource_type, id, body)?;
        let outcome = self
            .write_one(WriteOp::Update {
                write,
                if_match: Some(current.version),
            })
            .await?;
        write_result(outcome)
    }

    /// `DELETE [type]/[id]`: soft delete. Returns the deleted version, or `None` when there was
    /// nothing to delete (which is still a success).
    ///
    /// # Errors
    /// `PreconditionFailed`, `Unavailable`.
    pub async fn delete(
        &self,
        resource_type: &str,
        id: &str,
        preconditions: &Preconditions,
    ) -> Result<Option<u64>, AppError> {
        check_type(resource_type)?;
        if resource_type == "Bundle"
            && let Some(stored) = self.store.read(resource_type, id).await?
            && !stored.deleted
            && let Ok(body) = serde_json::from_str::<Value>(&stored.json)
            && let Some(identifier) = crate::submission::submission_identifier(&body)
        {
            if !self.permits(&stored).await? {
                // Another facility's submission record: as if there were none.
                return Err(AppError::NotFound);
            }
            // Deleting a submission withdraws it, contents and all.
            let outcome = self.withdraw(&identifier).await?;
            return Ok(Some(outcome.bundle.version + 1));
        }
        self.guard_direct_write()?;
        let op = WriteOp::Delete {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
            if_match: preconditions.if_match,
        };
        match self.write_one(op).await? {
            WriteOutcome::Deleted { version, .. } => Ok(Some(version)),
            _ => Ok(None),
        }
    }

    /// `DELETE [type]?params`: deletes the single match (none is a success; several fail).
    ///
    /// # Errors
    /// `PreconditionFailed` for several matches, `Unavailable`.
    pub async fn conditional_delete(
        &self,
        resource_type: &str,
        params: &[(String, String)],
    ) -> Result<Option<u64>, AppError> {
        if resource_type == "Bundle"
            && let Some(identifier) = crate::submission::identifier_param(params)
        {
            return match self.withdraw(&identifier).await {
                Ok(outcome) => Ok(Some(outcome.bundle.version + 1)),
                Err(AppError::NotFound) => Ok(None),
                Err(error) => Err(error),
            };
        }
        self.guard_direct_write()?;
        match self.match_condition(resource_type, params).await?.matched {
            None => Ok(None),
            Some(id) => {
                self.delete(resource_type, &id, &Preconditions::default())
                    .await
            }
        }
    }

    /// Checks a client's body against its URL, the R4 definitions and the JP-CLINS profiles it
    /// claims, then indexes it. The single gate every write passes (single interactions and Bundle
    /// entries alike). The service's own provenance and state tags (`visibility`) are refused
    /// here: only the submission path writes them.
    ///
    /// # Errors
    /// `Invalid` with one issue per problem, each naming its element.
    pub(crate) fn prepare_write(
        &self,
        resource_type: &str,
        id: &str,
        body: Value,
    ) -> Result<ResourceWrite, AppError> {
        if let Some(issue) = crate::visibility::reserved_tag(&body) {
            return Err(AppError::Invalid(vec![issue]));
        }
        let claimed: Vec<fhir::Issue> = jp::validate_resource(&body);
        if !claimed.is_empty() {
            return Err(AppError::Invalid(claimed));
        }
        self.prepare_trusted(resource_type, id, body)
    }

    /// [`App::prepare_write`] for what the service itself built from a validated submission (its
    /// unpacked resources and record, which carry the service's tags): URL, R4 and indexing only.
    ///
    /// # Errors
    /// `Invalid` with one issue per problem, each naming its element.
    pub(crate) fn prepare_trusted(
        &self,
        resource_type: &str,
        id: &str,
        body: Value,
    ) -> Result<ResourceWrite, AppError> {
        check_type(resource_type)?;
        let Value::Object(object) = body else {
            return Err(AppError::invalid(
                IssueCode::Structure,
                None,
                "the body must be a JSON object",
            ));
        };
        match object.get("resourceType").and_then(Value::as_str) {
            Some(found) if found == resource_type => {}
            Some(_) => {
                return Err(AppError::invalid(
                    IssueCode::Invalid,
                    Some("resourceType".into()),
                    format!("the body's resourceType does not match the URL type {resource_type}"),
                ));
            }
            None => {
                return Err(AppError::invalid(
                    IssueCode::Required,
                    Some("resourceType".into()),
                    "the body has no resourceType",
                ));
            }
        }
        let body = Value::Object(canonical_order(object, id));
        if resource_type == "Bundle"
            && crate::is_submission(&body)
            && crate::submission::submission_identifier(&body).is_none()
        {
            // Only the submission path stores a JP-CLINS Bundle, unpacking it: anything else
            // (a PUT by id, a transaction entry) would store it without its contents.
            return Err(AppError::invalid(
                IssueCode::NotSupported,
                Some("Bundle".into()),
                "a JP-CLINS Bundle is submitted with POST /fhir/Bundle or replaced with \
                 PUT /fhir/Bundle?identifier=system|value",
            ));
        }
        let issues: Vec<_> = fhir::validate_resource(&body)
            .into_iter()
            .filter(|issue| {
                matches!(
                    issue.severity,
                    fhir::Severity::Error | fhir::Severity::Fatal
                )
            })
            .collect();
        if !issues.is_empty() {
            return Err(AppError::Invalid(issues));
        }
        let index = self.registry.extract(resource_type, &body);
        let compartments = self.registry.compartments(resource_type, id, &index);
        Ok(ResourceWrite {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
            body,
            index,
            compartments,
        })
    }

    /// Runs one write operation as its own transaction.
    async fn write_one(&self, op: WriteOp) -> Result<WriteOutcome, AppError> {
        let mut outcomes = self.store.write(vec![op]).await?;
        outcomes
            .pop()
            .ok_or_else(|| AppError::Internal("the store returned no outcome".into()))
    }
}

/// Rejects resource types R4 does not define.
pub(crate) fn check_type(resource_type: &str) -> Result<(), AppError> {
    if fhir::is_resource_type(resource_type) {
        Ok(())
    } else {
        Err(AppError::invalid(
            IssueCode::NotSupported,
            None,
            format!("{resource_type} is not an R4 resource type"),
        ))
    }
}

/// `resourceType`, `id`, `meta` first, then the rest in the client's order. Drops the client's
/// `meta.versionId` and `meta.lastUpdated`: the store stamps its own.
fn canonical_order(mut object: Map<String, Value>, id: &str) -> Map<String, Value> {
    let mut ordered = Map::with_capacity(object.len() + 2);
    if let Some(resource_type) = object.shift_remove("resourceType") {
        ordered.insert("resourceType".into(), resource_type);
    }
    object.shift_remove("id");
    ordered.insert("id".into(), Value::String(id.to_owned()));
    if let Some(Value::Object(mut meta)) = object.shift_remove("meta") {
        meta.shift_remove("versionId");
        meta.shift_remove("lastUpdated");
        // FHIR JSON forbids empty objects; the store creates `meta` when it stamps the version.
        if !meta.is_empty() {
            ordered.insert("meta".into(), Value::Object(meta));
        }
    }
    ordered.extend(object);
    ordered
}

/// The id a conditional update writes to: the single match, else the body's id, else a new one.
pub(crate) fn conditional_update_id(matched: Option<String>, body: &Value) -> String {
    matched.unwrap_or_else(|| {
        body.get("id")
            .and_then(Value::as_str)
            .map_or_else(new_id, str::to_owned)
    })
}

/// A submission answered as the write of its Bundle.
fn submission_result(outcome: crate::SubmissionOutcome) -> Result<WriteResult, AppError> {
    Ok(WriteResult {
        resource: outcome.bundle,
        created: outcome.created,
    })
}

pub(crate) fn write_result(outcome: WriteOutcome) -> Result<WriteResult, AppError> {
    match outcome {
        WriteOutcome::Created(resource) => Ok(WriteResult {
            resource,
            created: true,
        }),
        WriteOutcome::Updated(resource) | WriteOutcome::Existing(resource) => Ok(WriteResult {
            resource,
            created: false,
        }),
        WriteOutcome::Deleted { .. } | WriteOutcome::NotFound => Err(AppError::Internal(
            "the store answered a create or update with a delete outcome".into(),
        )),
    }
}
