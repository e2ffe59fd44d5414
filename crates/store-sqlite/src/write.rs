//! Applying one `write` call's operations on the writer connection, inside the caller's savepoint.
//!
//! Everything here runs on the writer thread, inside the group transaction opened by
//! [`crate::writer`]. A call either returns its outcomes (its savepoint is released) or an error (its
//! savepoint is rolled back, so none of its rows survive, index rows included).

use std::collections::HashMap;

use rusqlite::{CachedStatement, Connection, OptionalExtension, params};
use store::{
    IndexEntry, IndexValue, ResourceWrite, SearchQuery, StampTemplate, StoreError, StoredResource,
    Timestamp, TotalMode, WriteOp, WriteOutcome,
};

use crate::error::{Fault, Result, invalid};
use crate::search;

/// `resource_version.method` values.
pub(crate) const METHOD_CREATE: i64 = 0;
pub(crate) const METHOD_UPDATE: i64 = 1;
pub(crate) const METHOD_DELETE: i64 = 2;

/// A body serialised on the caller's task ([`ResourceWrite::stamp_template`]), or why it could not
/// be: the error is the write's only when the write gets as far as storing its body.
pub(crate) type Template = std::result::Result<StampTemplate, StoreError>;

/// The templates of `ops`' bodies, one per operation (None for deletes). Made by the caller, so that
/// the writer thread only fills in each version and time.
pub(crate) fn templates(ops: &[WriteOp]) -> Vec<Option<Template>> {
    ops.iter()
        .map(|op| match op {
            WriteOp::Create { write, .. } | WriteOp::Update { write, .. } => {
                Some(write.stamp_template())
            }
            WriteOp::Delete { .. } => None,
        })
        .collect()
}

/// Applies `ops` in order at time `now` and returns one outcome per operation; `templates` are
/// their bodies' (from [`templates`]; a missing one is made here).
///
/// Later operations see the effects of earlier ones (same transaction), so a call may create a
/// resource and update it again. The operations are borrowed, not consumed: their bodies are freed
/// by the caller's task after the reply, not on the writer thread.
///
/// With `only_new` (a bulk create), a create of a resource that exists, live or deleted, fails as
/// `Duplicate` instead of re-creating a deleted one.
///
/// # Errors
/// The first failing operation's error (`VersionConflict` carries its index); the caller rolls the
/// whole call back.
pub(crate) fn apply(
    connection: &Connection,
    params: &mut ParamIds,
    ops: &[WriteOp],
    templates: &[Option<Template>],
    only_new: bool,
    now: Timestamp,
) -> Result<Vec<WriteOutcome>> {
    let mut outcomes = Vec::with_capacity(ops.len());
    for (index, op) in ops.iter().enumerate() {
        let template = templates.get(index).and_then(Option::as_ref);
        let outcome = match op {
            WriteOp::Create {
                write,
                if_none_exist: None,
            } if only_new => create_new(connection, params, (write, template), now)?,
            WriteOp::Create {
                write,
                if_none_exist,
            } => create(
                connection,
                params,
                (write, template),
                if_none_exist.as_deref(),
                now,
            )?,
            WriteOp::Update { write, if_match } => {
                update(connection, params, index, (write, template), *if_match, now)?
            }
            WriteOp::Delete {
                resource_type,
                id,
                if_match,
            } => delete(connection, index, resource_type, id, *if_match, now)?,
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// A resource to write and its body's template, when the caller made one.
type Body<'a> = (&'a ResourceWrite, Option<&'a Template>);

/// The stored JSON of `write`'s body at `version`.
fn stamp((write, template): Body<'_>, version: u64, now: Timestamp) -> Result<String> {
    match template {
        Some(Ok(template)) => Ok(template.fill(version, now)),
        Some(Err(error)) => Err(Fault(crate::error::same_error(error))),
        None => Ok(write.stamp(version, now)?),
    }
}

/// The `resource` row of a logical resource, live or deleted.
struct Current {
    pk: i64,
    version: u64,
    deleted: bool,
}

fn create(
    connection: &Connection,
    params: &mut ParamIds,
    body: Body<'_>,
    if_none_exist: Option<&SearchQuery>,
    now: Timestamp,
) -> Result<WriteOutcome> {
    let write = body.0;
    check_names(&write.resource_type, &write.id)?;
    if let Some(query) = if_none_exist
        && let Some(existing) = first_match(connection, &write.resource_type, query)?
    {
        return Ok(WriteOutcome::Existing(existing));
    }
    // Most creates are of new ids: insert first, and look the resource up only on a conflict. This
    // saves a search of the (type, id) index per created resource.
    if let Some(stored) = put(connection, params, None, body, now)? {
        return Ok(WriteOutcome::Created(stored));
    }
    match current(connection, &write.resource_type, &write.id)? {
        Some(current) if current.deleted => {
            let stored = put(connection, params, Some(&current), body, now)?.ok_or_else(|| {
                Fault(StoreError::internal(
                    "re-creating a resource inserted nothing",
                ))
            })?;
            Ok(WriteOutcome::Created(stored))
        }
        Some(_) => Err(Fault(StoreError::Duplicate(format!(
            "a {} with this id already exists",
            write.resource_type
        )))),
        None => Err(Fault(StoreError::internal(
            "a create conflicted with a resource that does not exist",
        ))),
    }
}

/// Creates a resource that must never have existed: any row with its type and id, live or deleted,
/// makes it a `Duplicate`.
fn create_new(
    connection: &Connection,
    params: &mut ParamIds,
    body: Body<'_>,
    now: Timestamp,
) -> Result<WriteOutcome> {
    let write = body.0;
    check_names(&write.resource_type, &write.id)?;
    match put(connection, params, None, body, now)? {
        Some(stored) => Ok(WriteOutcome::Created(stored)),
        None => Err(Fault(store::bulk_duplicate(&write.resource_type))),
    }
}

fn update(
    connection: &Connection,
    params: &mut ParamIds,
    op: usize,
    body: Body<'_>,
    if_match: Option<u64>,
    now: Timestamp,
) -> Result<WriteOutcome> {
    let write = body.0;
    check_names(&write.resource_type, &write.id)?;
    let current = current(connection, &write.resource_type, &write.id)?;
    check_if_match(op, current.as_ref(), if_match)?;
    let was_live = matches!(current, Some(Current { deleted: false, .. }));
    let stored = put(connection, params, current.as_ref(), body, now)?
        .ok_or_else(|| Fault(StoreError::internal("an update inserted nothing")))?;
    Ok(if was_live {
        WriteOutcome::Updated(stored)
    } else {
        WriteOutcome::Created(stored)
    })
}

fn delete(
    connection: &Connection,
    op: usize,
    resource_type: &str,
    id: &str,
    if_match: Option<u64>,
    now: Timestamp,
) -> Result<WriteOutcome> {
    check_names(resource_type, id)?;
    let current = current(connection, resource_type, id)?;
    check_if_match(op, current.as_ref(), if_match)?;
    let Some(Current {
        pk,
        version,
        deleted: false,
    }) = current
    else {
        return Ok(WriteOutcome::NotFound);
    };
    retire_version(connection, pk, version)?;
    let version = version + 1;
    let version_sql = sql_version(version)?;
    connection
        .prepare_cached(
            "UPDATE resource SET version = ?2, last_updated = ?3, deleted = 1, json = '' \
             WHERE pk = ?1",
        )?
        .execute(params![pk, version_sql, now.0])?;
    append_version(
        connection,
        pk,
        resource_type,
        version_sql,
        now,
        METHOD_DELETE,
    )?;
    clear_index(connection, pk)?;
    Ok(WriteOutcome::Deleted {
        version,
        last_updated: now,
    })
}

/// Writes the next version of `write` (version 1 when `current` is None), replacing the index rows.
///
/// Returns None, having written nothing, when `current` is None but a resource with this type and
/// id exists after all.
fn put(
    connection: &Connection,
    params: &mut ParamIds,
    current: Option<&Current>,
    body: Body<'_>,
    now: Timestamp,
) -> Result<Option<StoredResource>> {
    let write = body.0;
    let version = current.map_or(1, |current| current.version + 1);
    let version_sql = sql_version(version)?;
    let json = stamp(body, version, now)?;
    let (pk, method) = match current {
        None => {
            let inserted = connection
                .prepare_cached(
                    "INSERT INTO resource (type, id, version, last_updated, deleted, json) \
                     VALUES (?1, ?2, ?3, ?4, 0, ?5) ON CONFLICT (type, id) DO NOTHING",
                )?
                .execute(params![
                    write.resource_type,
                    write.id,
                    version_sql,
                    now.0,
                    json
                ])?;
            if inserted == 0 {
                return Ok(None);
            }
            (connection.last_insert_rowid(), METHOD_CREATE)
        }
        Some(current) => {
            retire_version(connection, current.pk, current.version)?;
            connection
                .prepare_cached(
                    "UPDATE resource SET version = ?2, last_updated = ?3, deleted = 0, json = ?4 \
                     WHERE pk = ?1",
                )?
                .execute(params![current.pk, version_sql, now.0, json])?;
            // A deleted resource has no index rows, so only a live one needs clearing.
            if !current.deleted {
                clear_index(connection, current.pk)?;
            }
            let method = if current.deleted {
                METHOD_CREATE
            } else {
                METHOD_UPDATE
            };
            (current.pk, method)
        }
    };
    append_version(
        connection,
        pk,
        &write.resource_type,
        version_sql,
        now,
        method,
    )?;
    insert_index(connection, params, pk, &write.resource_type, &write.index)?;
    let mut statement = connection
        .prepare_cached("INSERT OR IGNORE INTO compartment (patient_id, res) VALUES (?1, ?2)")?;
    for patient in &write.compartments {
        statement.execute(params![patient, pk])?;
    }
    Ok(Some(StoredResource {
        resource_type: write.resource_type.clone(),
        id: write.id.clone(),
        version,
        last_updated: now,
        deleted: false,
        json,
    }))
}

/// Records a new current version. Its body stays in `resource` (the version row's `json` is NULL)
/// until [`retire_version`] copies it over, so a create writes its JSON once.
///
/// Every version written (create, update, delete) passes here, so it also counts the write
/// ([`count_write`]).
fn append_version(
    connection: &Connection,
    pk: i64,
    resource_type: &str,
    version: i64,
    now: Timestamp,
    method: i64,
) -> Result<()> {
    connection
        .prepare_cached(
            "INSERT INTO resource_version (res, type, version, last_updated, method, json) \
             VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
        )?
        .execute(params![pk, resource_type, version, now.0, method])?;
    count_write(connection, resource_type)
}

/// The resource types whose writes are counted in `write_generation` (`Store::write_generation`;
/// `migrations/0003_write_generation.sql` gives each a row): Consent, which every request's
/// decision reads.
pub(crate) const COUNTED_TYPES: &[&str] = &["Consent"];

/// Adds one to the count of writes of `resource_type`, when it is counted, in the transaction of
/// the write.
fn count_write(connection: &Connection, resource_type: &str) -> Result<()> {
    if COUNTED_TYPES.contains(&resource_type) {
        connection
            .prepare_cached("UPDATE write_generation SET n = n + 1 WHERE type = ?1")?
            .execute(params![resource_type])?;
    }
    Ok(())
}

/// Copies the current body of resource `pk` into its version row `version`, which is about to stop
/// being the current one. Must run before `resource` is overwritten.
fn retire_version(connection: &Connection, pk: i64, version: u64) -> Result<()> {
    connection
        .prepare_cached(
            "UPDATE resource_version SET json = (SELECT json FROM resource WHERE pk = ?1) \
             WHERE res = ?1 AND version = ?2",
        )?
        .execute(params![pk, sql_version(version)?])?;
    Ok(())
}

/// Removes every index and compartment row of a resource.
fn clear_index(connection: &Connection, pk: i64) -> Result<()> {
    const TABLES: [&str; 8] = [
        "DELETE FROM idx_token WHERE res = ?1",
        "DELETE FROM idx_string WHERE res = ?1",
        "DELETE FROM idx_date WHERE res = ?1",
        "DELETE FROM idx_reference WHERE res = ?1",
        "DELETE FROM idx_quantity WHERE res = ?1",
        "DELETE FROM idx_number WHERE res = ?1",
        "DELETE FROM idx_uri WHERE res = ?1",
        "DELETE FROM compartment WHERE res = ?1",
    ];
    for sql in TABLES {
        connection.prepare_cached(sql)?.execute([pk])?;
    }
    Ok(())
}

/// The insert statements of the index tables, prepared on first use within one resource.
#[derive(Default)]
struct IndexInserts<'c> {
    token: Option<CachedStatement<'c>>,
    string: Option<CachedStatement<'c>>,
    date: Option<CachedStatement<'c>>,
    reference: Option<CachedStatement<'c>>,
    quantity: Option<CachedStatement<'c>>,
    number: Option<CachedStatement<'c>>,
    uri: Option<CachedStatement<'c>>,
}

fn statement<'s, 'c>(
    slot: &'s mut Option<CachedStatement<'c>>,
    connection: &'c Connection,
    sql: &str,
) -> Result<&'s mut CachedStatement<'c>> {
    if slot.is_none() {
        *slot = Some(connection.prepare_cached(sql)?);
    }
    slot.as_mut()
        .ok_or_else(|| Fault(StoreError::internal("statement slot empty after prepare")))
}

fn insert_index(
    connection: &Connection,
    params: &mut ParamIds,
    pk: i64,
    resource_type: &str,
    entries: &[IndexEntry],
) -> Result<()> {
    let mut inserts = IndexInserts::default();
    for (ord, entry) in entries.iter().enumerate() {
        let ord = ord as i64;
        let pid = params.id(connection, resource_type, &entry.param)?;
        match &entry.value {
            IndexValue::Token { system, code, text } => statement(
                &mut inserts.token,
                connection,
                "INSERT INTO idx_token (res, ord, pid, system, code, text) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![pk, ord, pid, system, code, text])?,
            IndexValue::String { normalized, exact } => statement(
                &mut inserts.string,
                connection,
                "INSERT INTO idx_string (res, ord, pid, normalized, exact) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![pk, ord, pid, normalized, exact])?,
            IndexValue::Date { low, high } => statement(
                &mut inserts.date,
                connection,
                "INSERT INTO idx_date (res, ord, pid, low, high) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![pk, ord, pid, low, high])?,
            IndexValue::Reference {
                target_type,
                target_id,
                url,
            } => statement(
                &mut inserts.reference,
                connection,
                "INSERT INTO idx_reference (res, ord, pid, target_type, target_id, url) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![pk, ord, pid, target_type, target_id, url])?,
            IndexValue::Quantity {
                value,
                system,
                code,
                unit,
            } => statement(
                &mut inserts.quantity,
                connection,
                "INSERT INTO idx_quantity (res, ord, pid, value, system, code, unit) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![pk, ord, pid, value, system, code, unit])?,
            IndexValue::Number { value } => statement(
                &mut inserts.number,
                connection,
                "INSERT INTO idx_number (res, ord, pid, value) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![pk, ord, pid, value])?,
            IndexValue::Uri { value } => statement(
                &mut inserts.uri,
                connection,
                "INSERT INTO idx_uri (res, ord, pid, value) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![pk, ord, pid, value])?,
        };
    }
    Ok(())
}

/// The interned ids of (resource type, search parameter) pairs, cached by the writer thread.
///
/// Invariant: every cached id exists in `search_param` within the writer's current transaction.
/// Ids are inserted inside write transactions, so the writer calls [`ParamIds::forget`] after any
/// rollback (an id inserted by a rolled-back job is gone from the table).
#[derive(Debug, Default)]
pub(crate) struct ParamIds {
    by_type: HashMap<String, HashMap<String, i64>>,
}

impl ParamIds {
    /// The id of `(resource_type, param)`, registering the pair on first use.
    fn id(&mut self, connection: &Connection, resource_type: &str, param: &str) -> Result<i64> {
        if let Some(pid) = self
            .by_type
            .get(resource_type)
            .and_then(|params| params.get(param))
        {
            return Ok(*pid);
        }
        connection
            .prepare_cached(
                "INSERT INTO search_param (type, param) VALUES (?1, ?2) \
                 ON CONFLICT (type, param) DO NOTHING",
            )?
            .execute(params![resource_type, param])?;
        let pid: i64 = connection
            .prepare_cached("SELECT pid FROM search_param WHERE type = ?1 AND param = ?2")?
            .query_row(params![resource_type, param], |row| row.get(0))?;
        self.by_type
            .entry(resource_type.to_owned())
            .or_default()
            .insert(param.to_owned(), pid);
        Ok(pid)
    }

    /// Drops the cache; called after a rollback.
    pub(crate) fn forget(&mut self) {
        self.by_type.clear();
    }
}

fn current(connection: &Connection, resource_type: &str, id: &str) -> Result<Option<Current>> {
    let row = connection
        .prepare_cached("SELECT pk, version, deleted FROM resource WHERE type = ?1 AND id = ?2")?
        .query_row(params![resource_type, id], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get(2)?))
        })
        .optional()?;
    row.map(|(pk, version, deleted)| {
        Ok(Current {
            pk,
            version: u64::try_from(version).map_err(StoreError::internal)?,
            deleted,
        })
    })
    .transpose()
}

fn check_if_match(op: usize, current: Option<&Current>, if_match: Option<u64>) -> Result<()> {
    let Some(expected) = if_match else {
        return Ok(());
    };
    let actual = current
        .filter(|current| !current.deleted)
        .map(|current| current.version);
    if actual == Some(expected) {
        Ok(())
    } else {
        Err(Fault(StoreError::VersionConflict {
            op,
            expected,
            actual,
        }))
    }
}

fn check_names(resource_type: &str, id: &str) -> Result<()> {
    if resource_type.is_empty() {
        return Err(invalid("a resource type is required"));
    }
    if id.is_empty() {
        return Err(invalid(format!("{resource_type}: an id is required")));
    }
    Ok(())
}

fn sql_version(version: u64) -> Result<i64> {
    i64::try_from(version).map_err(|error| Fault(StoreError::internal(error)))
}

/// The first current resource of `resource_type` matching `query` (its `types` are replaced by the
/// created resource's type, its paging and includes ignored).
fn first_match(
    connection: &Connection,
    resource_type: &str,
    query: &SearchQuery,
) -> Result<Option<StoredResource>> {
    let query = SearchQuery {
        types: vec![resource_type.to_owned()],
        compartment: query.compartment.clone(),
        filters: query.filters.clone(),
        sort: Vec::new(),
        count: 1,
        cursor: None,
        total: TotalMode::None,
        includes: Vec::new(),
        revincludes: Vec::new(),
    };
    Ok(search::search(connection, &query)?
        .matches
        .into_iter()
        .next())
}
