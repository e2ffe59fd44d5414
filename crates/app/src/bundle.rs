//! Transaction and batch Bundles (`POST /fhir`).
//!
//! A transaction is planned in full before anything is written: server ids are assigned, conditional
//! entries are resolved, `urn:uuid:` fullUrls and conditional references are rewritten to the new
//! ids, every resource is validated and indexed, and then all writes go to the store as one atomic
//! call (deletes first, then creates, then updates, as FHIR orders them). Reads in the Bundle run
//! after the writes. A batch runs each entry on its own and reports each outcome.
//!
//! Known limit: a conditional create inside a transaction is resolved when the transaction is
//! planned; a concurrent identical create between planning and commit can produce a duplicate (a
//! standalone conditional create is checked inside the store's write transaction and cannot).

use std::collections::{HashMap, HashSet};

use fhir::{Issue, IssueCode};
use serde_json::Value;
use store::{StoredResource, WriteOp, WriteOutcome};

use crate::references::{
    EntryTarget, conditional_references, decode_query, parse_entry_url, rewrite_references,
};
use crate::resources::{conditional_update_id, write_result};
use crate::{App, AppError, Preconditions, SearchInput, SearchOutcome, WriteResult, new_id};

/// Which kind of Bundle was posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    Transaction,
    Batch,
}

/// The outcome of each entry, in the order of the request Bundle.
#[derive(Debug)]
pub struct BundleOutcome {
    pub kind: BundleKind,
    pub entries: Vec<BundleEntryResult>,
}

/// What happened to one entry.
#[derive(Debug)]
pub enum BundleEntryResult {
    /// A create or update (or a conditional create that matched).
    Written(WriteResult),
    /// A delete; the version written, or `None` when there was nothing to delete.
    Deleted(Option<u64>),
    /// A read or vread.
    Read(StoredResource),
    /// A search.
    Searched(Box<SearchOutcome>),
    /// A failed batch entry (transactions fail as a whole instead).
    Failed(AppError),
}

/// One parsed entry of the request Bundle.
struct Entry {
    method: Method,
    target: EntryTarget,
    full_url: Option<String>,
    resource: Option<Value>,
    if_none_exist: Option<Vec<(String, String)>>,
    if_match: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
    Put,
    Delete,
}

/// A write planned for the transaction: the operation plus which entry it answers.
struct Planned {
    entry: usize,
    op: WriteOp,
}

impl App {
    /// Processes a transaction or batch Bundle.
    ///
    /// # Errors
    /// For a transaction, the first failure aborts everything (`Invalid` issues name the entry);
    /// for a batch only a Bundle that cannot be read at all fails.
    pub async fn process_bundle(&self, bundle: Value) -> Result<BundleOutcome, AppError> {
        let kind = match bundle.get("type").and_then(Value::as_str) {
            Some("transaction") => BundleKind::Transaction,
            Some("batch") => BundleKind::Batch,
            _ => {
                return Err(AppError::invalid(
                    IssueCode::Invalid,
                    Some("Bundle.type".into()),
                    "only transaction and batch Bundles can be posted to the base",
                ));
            }
        };
        let raw_entries = match bundle {
            Value::Object(mut object) => match object.remove("entry") {
                Some(Value::Array(entries)) => entries,
                None => Vec::new(),
                Some(_) => {
                    return Err(AppError::invalid(
                        IssueCode::Structure,
                        Some("Bundle.entry".into()),
                        "entry must be an array",
                    ));
                }
            },
            _ => {
                return Err(AppError::invalid(
                    IssueCode::Structure,
                    None,
                    "the body must be a JSON object",
                ));
            }
        };
        if matches!(
            self.viewer,
            crate::Viewer::Member(_) | crate::Viewer::Patient(_)
        ) && raw_entries
            .iter()
            .any(|entry| entry.pointer("/request/method").and_then(Value::as_str) != Some("GET"))
        {
            return Err(AppError::Denied(
                "authenticated users send only reads in batches and transactions; data is \
                 submitted as JP-CLINS Bundles (POST /fhir/Bundle)"
                    .into(),
            ));
        }
        if raw_entries.len() > self.settings.max_bundle_entries {
            return Err(AppError::invalid(
                IssueCode::TooCostly,
                Some("Bundle.entry".into()),
                format!(
                    "a Bundle may hold at most {} entries",
                    self.settings.max_bundle_entries
                ),
            ));
        }
        match kind {
            BundleKind::Transaction => {
                let entries = raw_entries
                    .into_iter()
                    .enumerate()
                    .map(|(index, raw)| parse_entry(index, raw))
                    .collect::<Result<Vec<_>, _>>()?;
                let results = self.transaction(entries).await?;
                Ok(BundleOutcome {
                    kind,
                    entries: results,
                })
            }
            BundleKind::Batch => {
                let mut results = Vec::with_capacity(raw_entries.len());
                for (index, raw) in raw_entries.into_iter().enumerate() {
                    let result = match parse_entry(index, raw) {
                        Ok(entry) => self.batch_entry(entry).await,
                        Err(error) => Err(error),
                    };
                    results.push(result.unwrap_or_else(BundleEntryResult::Failed));
                }
                Ok(BundleOutcome {
                    kind,
                    entries: results,
                })
            }
        }
    }

    async fn batch_entry(&self, entry: Entry) -> Result<BundleEntryResult, AppError> {
        let preconditions = Preconditions {
            if_match: entry.if_match,
        };
        match (entry.method, entry.target) {
            (Method::Get, target) => self.read_entry(target, false).await,
            (
                Method::Post,
                EntryTarget::Type {
                    resource_type,
                    params,
                },
            ) => {
                let body = entry.resource.unwrap_or(Value::Null);
                let condition = entry
                    .if_none_exist
                    .or((!params.is_empty()).then_some(params));
                self.create(&resource_type, body, condition.as_deref())
                    .await
                    .map(BundleEntryResult::Written)
            }
            (Method::Put, EntryTarget::Instance { resource_type, id }) => {
                let body = entry.resource.unwrap_or(Value::Null);
                self.update(&resource_type, &id, body, &preconditions)
                    .await
                    .map(BundleEntryResult::Written)
            }
            (
                Method::Put,
                EntryTarget::Type {
                    resource_type,
                    params,
                },
            ) => {
                let body = entry.resource.unwrap_or(Value::Null);
                self.conditional_update(&resource_type, &params, body, &preconditions)
                    .await
                    .map(BundleEntryResult::Written)
            }
            (Method::Delete, EntryTarget::Instance { resource_type, id }) => self
                .delete(&resource_type, &id, &preconditions)
                .await
                .map(BundleEntryResult::Deleted),
            (
                Method::Delete,
                EntryTarget::Type {
                    resource_type,
                    params,
                },
            ) => self
                .conditional_delete(&resource_type, &params)
                .await
                .map(BundleEntryResult::Deleted),
            _ => Err(AppError::invalid(
                IssueCode::NotSupported,
                None,
                "this method and URL do not fit together",
            )),
        }
    }

    async fn read_entry(
        &self,
        target: EntryTarget,
        in_transaction: bool,
    ) -> Result<BundleEntryResult, AppError> {
        match target {
            EntryTarget::Instance { resource_type, id } => self
                .read(&resource_type, &id)
                .await
                .map(BundleEntryResult::Read),
            EntryTarget::Version {
                resource_type,
                id,
                version,
            } => self
                .vread(&resource_type, &id, version)
                .await
                .map(BundleEntryResult::Read),
            EntryTarget::Type {
                resource_type,
                params,
            } => {
                let input = SearchInput {
                    types: vec![resource_type],
                    compartment: None,
                    params,
                    strict: in_transaction,
                };
                self.search(&input)
                    .await
                    .map(|outcome| BundleEntryResult::Searched(Box::new(outcome)))
            }
        }
    }

    async fn transaction(&self, entries: Vec<Entry>) -> Result<Vec<BundleEntryResult>, AppError> {
        let mut resolved: HashMap<String, String> = HashMap::new();
        let mut results: Vec<Option<BundleEntryResult>> = entries.iter().map(|_| None).collect();
        // Plan ids first, so every reference can be rewritten before anything is validated.
        let mut planned_ids: Vec<Option<(String, String)>> = Vec::with_capacity(entries.len());
        let mut targets_written: HashSet<(String, String)> = HashSet::new();
        for (index, entry) in entries.iter().enumerate() {
            let planned = match (entry.method, &entry.target) {
                (
                    Method::Post,
                    EntryTarget::Type {
                        resource_type,
                        params,
                    },
                ) => {
                    let condition = entry
                        .if_none_exist
                        .clone()
                        .or((!params.is_empty()).then(|| params.clone()));
                    let matched = match condition {
                        Some(condition) => {
                            self.match_condition(resource_type, &condition)
                                .await
                                .map_err(|error| at_entry(index, error))?
                                .matched
                        }
                        None => None,
                    };
                    let id = match matched {
                        Some(existing) => {
                            let resource = self.read(resource_type, &existing).await?;
                            results[index] = Some(BundleEntryResult::Written(WriteResult {
                                resource,
                                created: false,
                            }));
                            existing
                        }
                        None => new_id(),
                    };
                    Some((resource_type.clone(), id))
                }
                (Method::Put, EntryTarget::Instance { resource_type, id }) => {
                    Some((resource_type.clone(), id.clone()))
                }
                (
                    Method::Put,
                    EntryTarget::Type {
                        resource_type,
                        params,
                    },
                ) => {
                    let matched = self
                        .match_condition(resource_type, params)
                        .await
                        .map_err(|error| at_entry(index, error))?
                        .matched;
                    let id = conditional_update_id(
                        matched,
                        entry.resource.as_ref().unwrap_or(&Value::Null),
                    );
                    Some((resource_type.clone(), id))
                }
                (Method::Delete, EntryTarget::Instance { resource_type, id }) => {
                    Some((resource_type.clone(), id.clone()))
                }
                (
                    Method::Delete,
                    EntryTarget::Type {
                        resource_type,
                        params,
                    },
                ) => {
                    let matched = self
                        .match_condition(resource_type, params)
                        .await
                        .map_err(|error| at_entry(index, error))?
                        .matched;
                    match matched {
                        None => {
                            results[index] = Some(BundleEntryResult::Deleted(None));
                            None
                        }
                        Some(id) => Some((resource_type.clone(), id)),
                    }
                }
                (Method::Get, _) => None,
                _ => {
                    return Err(at_entry(
                        index,
                        AppError::invalid(
                            IssueCode::NotSupported,
                            None,
                            "this method and URL do not fit together",
                        ),
                    ));
                }
            };
            if let Some((resource_type, id)) = &planned
                && results[index].is_none()
            {
                if !targets_written.insert((resource_type.clone(), id.clone())) {
                    return Err(at_entry(
                        index,
                        AppError::invalid(
                            IssueCode::Duplicate,
                            None,
                            "two entries of the transaction write the same resource",
                        ),
                    ));
                }
                if let Some(full_url) = &entry.full_url {
                    resolved.insert(full_url.clone(), format!("{resource_type}/{id}"));
                }
            } else if let (Some(full_url), Some(BundleEntryResult::Written(existing))) =
                (&entry.full_url, &results[index])
            {
                resolved.insert(
                    full_url.clone(),
                    format!(
                        "{}/{}",
                        existing.resource.resource_type, existing.resource.id
                    ),
                );
            }
            planned_ids.push(planned);
        }

        // Resolve conditional references (`Patient?identifier=...`) to exactly one existing resource.
        let mut conditional = Vec::new();
        for entry in &entries {
            if let Some(resource) = &entry.resource {
                conditional_references(resource, &mut conditional);
            }
        }
        for reference in conditional {
            if let Some(EntryTarget::Type {
                resource_type,
                params,
            }) = parse_entry_url(&reference)
            {
                // A conditional reference must resolve to exactly one resource.
                match self.match_condition(&resource_type, &params).await?.matched {
                    Some(id) => {
                        resolved.insert(reference, format!("{resource_type}/{id}"));
                    }
                    None => {
                        return Err(AppError::PreconditionFailed(
                            "a conditional reference matches no resource".into(),
                        ));
                    }
                }
            }
        }

        // Build the writes, with references rewritten, in FHIR's processing order.
        let mut deletes = Vec::new();
        let mut creates = Vec::new();
        let mut updates = Vec::new();
        let mut gets = Vec::new();
        let mut issues = Vec::new();
        for (index, (entry, planned)) in entries.into_iter().zip(planned_ids).enumerate() {
            if results[index].is_some() {
                continue;
            }
            let Some((resource_type, id)) = planned else {
                if entry.method == Method::Get {
                    gets.push((index, entry.target));
                }
                continue;
            };
            match entry.method {
                Method::Delete => deletes.push(Planned {
                    entry: index,
                    op: WriteOp::Delete {
                        resource_type,
                        id,
                        if_match: entry.if_match,
                    },
                }),
                Method::Post | Method::Put => {
                    let mut body = entry.resource.unwrap_or(Value::Null);
                    rewrite_references(&mut body, &resolved);
                    if entry.method == Method::Put
                        && let Some(body_id) = body.get("id").and_then(Value::as_str)
                        && body_id != id
                    {
                        issues.push(Issue::error(
                            IssueCode::Invalid,
                            Some(format!("Bundle.entry[{index}].resource.id")),
                            "the resource id does not match the id in the request URL",
                        ));
                        continue;
                    }
                    match self.prepare_write(&resource_type, &id, body) {
                        Ok(write) if entry.method == Method::Post => {
                            creates.push(Planned {
                                entry: index,
                                op: WriteOp::Create {
                                    write,
                                    if_none_exist: None,
                                },
                            });
                        }
                        Ok(write) => {
                            updates.push(Planned {
                                entry: index,
                                op: WriteOp::Update {
                                    write,
                                    if_match: entry.if_match,
                                },
                            });
                        }
                        Err(AppError::Invalid(entry_issues)) => {
                            issues.extend(
                                entry_issues
                                    .into_iter()
                                    .map(|issue| within_entry(index, issue)),
                            );
                        }
                        Err(error) => return Err(at_entry(index, error)),
                    }
                }
                Method::Get => {}
            }
        }
        if !issues.is_empty() {
            return Err(AppError::Invalid(issues));
        }

        let planned: Vec<Planned> = deletes.into_iter().chain(creates).chain(updates).collect();
        let entry_of: Vec<usize> = planned.iter().map(|planned| planned.entry).collect();
        let ops: Vec<WriteOp> = planned.into_iter().map(|planned| planned.op).collect();
        let outcomes = match self.store.write(ops).await {
            Ok(outcomes) => outcomes,
            Err(store::StoreError::VersionConflict {
                op,
                expected,
                actual,
            }) => {
                let entry = entry_of.get(op).copied().unwrap_or_default();
                let error = AppError::from(store::StoreError::VersionConflict {
                    op,
                    expected,
                    actual,
                });
                return Err(at_entry(entry, error));
            }
            Err(error) => return Err(error.into()),
        };
        for (index, outcome) in entry_of.into_iter().zip(outcomes) {
            results[index] = Some(match outcome {
                WriteOutcome::Deleted { version, .. } => BundleEntryResult::Deleted(Some(version)),
                WriteOutcome::NotFound => BundleEntryResult::Deleted(None),
                other => BundleEntryResult::Written(write_result(other)?),
            });
        }
        for (index, target) in gets {
            results[index] = Some(
                self.read_entry(target, true)
                    .await
                    .map_err(|error| at_entry(index, error))?,
            );
        }
        results
            .into_iter()
            .map(|result| {
                result.ok_or_else(|| {
                    AppError::Internal("a transaction entry was left without a result".into())
                })
            })
            .collect()
    }
}

/// Reads one raw entry: `request.method`, `request.url`, `fullUrl`, `resource`, and the
/// `ifNoneExist`/`ifMatch` preconditions.
fn parse_entry(index: usize, raw: Value) -> Result<Entry, AppError> {
    let expression = |element: &str| Some(format!("Bundle.entry[{index}].{element}"));
    let Value::Object(mut object) = raw else {
        return Err(AppError::invalid(
            IssueCode::Structure,
            expression(""),
            "an entry must be an object",
        ));
    };
    let request = object.remove("request").unwrap_or(Value::Null);
    let method = match request.get("method").and_then(Value::as_str) {
        Some("GET") | Some("HEAD") => Method::Get,
        Some("POST") => Method::Post,
        Some("PUT") => Method::Put,
        Some("DELETE") => Method::Delete,
        Some("PATCH") => {
            return Err(AppError::invalid(
                IssueCode::NotSupported,
                expression("request.method"),
                "PATCH entries are not supported in Bundles; use PATCH on the resource",
            ));
        }
        _ => {
            return Err(AppError::invalid(
                IssueCode::Required,
                expression("request.method"),
                "request.method is missing or unknown",
            ));
        }
    };
    let target = request
        .get("url")
        .and_then(Value::as_str)
        .and_then(parse_entry_url)
        .ok_or_else(|| {
            AppError::invalid(
                IssueCode::Invalid,
                expression("request.url"),
                "request.url is missing or not a FHIR URL",
            )
        })?;
    let if_none_exist = request
        .get("ifNoneExist")
        .and_then(Value::as_str)
        .map(|query| decode_query(query.trim_start_matches('?')));
    let if_match = match request.get("ifMatch").and_then(Value::as_str) {
        Some(tag) => Some(parse_etag(tag).ok_or_else(|| {
            AppError::invalid(
                IssueCode::Invalid,
                expression("request.ifMatch"),
                "ifMatch must be an ETag such as W/\"3\"",
            )
        })?),
        None => None,
    };
    let resource = object.remove("resource");
    if matches!(method, Method::Post | Method::Put) {
        let Some(resource) = &resource else {
            return Err(AppError::invalid(
                IssueCode::Required,
                expression("resource"),
                "a POST or PUT entry needs a resource",
            ));
        };
        let url_type = match &target {
            EntryTarget::Type { resource_type, .. }
            | EntryTarget::Instance { resource_type, .. } => resource_type,
            EntryTarget::Version { .. } => {
                return Err(AppError::invalid(
                    IssueCode::Invalid,
                    expression("request.url"),
                    "a write cannot address a version",
                ));
            }
        };
        if resource.get("resourceType").and_then(Value::as_str) != Some(url_type.as_str()) {
            return Err(AppError::invalid(
                IssueCode::Invalid,
                expression("resource.resourceType"),
                "the resource type does not match request.url",
            ));
        }
    }
    let full_url = object
        .remove("fullUrl")
        .and_then(|value| value.as_str().map(str::to_owned));
    Ok(Entry {
        method,
        target,
        full_url,
        resource,
        if_none_exist,
        if_match,
    })
}

/// Parses `W/"3"` or `"3"` into a version number.
pub fn parse_etag(tag: &str) -> Option<u64> {
    tag.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

/// Prefixes each issue's expression with the entry it came from.
fn within_entry(index: usize, mut issue: Issue) -> Issue {
    // Validation paths start with the resource type (`Patient.gender`); inside a Bundle the entry
    // takes its place (`Bundle.entry[1].resource.gender`).
    issue.expression = Some(match issue.expression.take() {
        Some(inner) => match inner.split_once('.') {
            Some((head, rest)) if head.starts_with(|c: char| c.is_ascii_uppercase()) => {
                format!("Bundle.entry[{index}].resource.{rest}")
            }
            _ => format!("Bundle.entry[{index}].resource.{inner}"),
        },
        None => format!("Bundle.entry[{index}]"),
    });
    issue
}

/// Names the entry in a failure that aborted the transaction.
fn at_entry(index: usize, error: AppError) -> AppError {
    match error {
        AppError::Invalid(issues) => AppError::Invalid(
            issues
                .into_iter()
                .map(|issue| within_entry(index, issue))
                .collect(),
        ),
        AppError::PreconditionFailed(message) => {
            AppError::PreconditionFailed(format!("entry {index}: {message}"))
        }
        AppError::Conflict(message) => AppError::Conflict(format!("entry {index}: {message}")),
        AppError::Denied(message) => AppError::Denied(format!("entry {index}: {message}")),
        other => other,
    }
}
