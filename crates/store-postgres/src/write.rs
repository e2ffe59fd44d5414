//! Applying one `write` call's operations inside its transaction.
//!
//! A call is one `READ COMMITTED` transaction on one pooled connection. Every write of an existing
//! resource first locks its `resource` row (`SELECT ... FOR UPDATE`), so the If-Match check and the
//! version increment see the latest committed version and concurrent writers of one resource queue
//! up: exactly one of several updates with the same If-Match wins. A conditional create first takes
//! a transaction-scoped advisory lock keyed by a hash of (type, condition), then searches: two
//! clients creating under the same condition run one after the other, and the second sees the
//! first's resource (each statement of a READ COMMITTED transaction reads a fresh snapshot, taken
//! after the lock was granted, and the lock is released only after the holder's commit is visible).

use std::collections::HashMap;
use std::sync::RwLock;

use deadpool_postgres::{Object, Transaction};
use store::{
    IndexEntry, IndexValue, ResourceWrite, SearchQuery, StoreError, StoredResource, Timestamp,
    TotalMode, WriteOp, WriteOutcome,
};

use crate::cursor::fnv1a_str;
use crate::error::{Fault, Result, invalid};
use crate::search;

/// `resource_version.method` values.
pub(crate) const METHOD_CREATE: i16 = 0;
pub(crate) const METHOD_UPDATE: i16 = 1;
pub(crate) const METHOD_DELETE: i16 = 2;

/// Applies `ops` in order at time `now` and returns one outcome per operation.
///
/// Later operations see the effects of earlier ones (same transaction), so a call may create a
/// resource and update it again. Bodies are stamped in place, so a retried call stamps them again.
///
/// # Errors
/// The first failing operation's error (`VersionConflict` carries its index); the caller drops the
/// transaction, which rolls the whole call back.
pub(crate) async fn apply(
    transaction: &Transaction<'_>,
    params: &ParamIds,
    ops: &mut [WriteOp],
    now: Timestamp,
) -> Result<Vec<WriteOutcome>> {
    let mut outcomes = Vec::with_capacity(ops.len());
    let mut index = 0;
    while index < ops.len() {
        let run = plain_creates(&ops[index..]);
        if run >= MIN_COPY_RUN
            && let Some(created) =
                crate::bulk::create_run(transaction, params, &mut ops[index..index + run], now)
                    .await?
        {
            outcomes.extend(created.into_iter().map(WriteOutcome::Created));
            index += run;
            continue;
        }
        let op = &mut ops[index];
        let outcome = match op {
            WriteOp::Create {
                write,
                if_none_exist,
            } => create(transaction, params, write, if_none_exist.as_deref(), now).await?,
            WriteOp::Update { write, if_match } => {
                update(transaction, params, index, write, *if_match, now).await?
            }
            WriteOp::Delete {
                resource_type,
                id,
                if_match,
            } => delete(transaction, index, resource_type, id, *if_match, now).await?,
        };
        outcomes.push(outcome);
        index += 1;
    }
    Ok(outcomes)
}

/// The shortest run of consecutive plain creates written with COPY instead of statements per
/// resource (below it the COPYs' own round trips cost more than they save).
const MIN_COPY_RUN: usize = 8;

/// How many operations at the start of `ops` are creates without a condition.
fn plain_creates(ops: &[WriteOp]) -> usize {
    ops.iter()
        .take_while(|op| {
            matches!(
                op,
                WriteOp::Create {
                    if_none_exist: None,
                    ..
                }
            )
        })
        .count()
}

/// The `resource` row of a logical resource, live or deleted, locked for this transaction.
struct Current {
    pk: i64,
    version: u64,
    deleted: bool,
    /// The home key its current version was written under (see [`home_key`]).
    shard_key: String,
}

async fn create(
    transaction: &Transaction<'_>,
    params: &ParamIds,
    write: &mut ResourceWrite,
    if_none_exist: Option<&SearchQuery>,
    now: Timestamp,
) -> Result<WriteOutcome> {
    check_names(&write.resource_type, &write.id)?;
    if let Some(query) = if_none_exist {
        lock_condition(transaction, &write.resource_type, query).await?;
        if let Some(existing) = first_match(transaction, &write.resource_type, query).await? {
            return Ok(WriteOutcome::Existing(existing));
        }
    }
    // Most creates are of new ids: insert first, and look the resource up only on a conflict.
    if let Some(stored) = put(transaction, params, None, write, now).await? {
        return Ok(WriteOutcome::Created(stored));
    }
    match current(transaction, &write.resource_type, &write.id).await? {
        Some(current) if current.deleted => {
            let stored = put(transaction, params, Some(&current), write, now)
                .await?
                .ok_or_else(|| {
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

async fn update(
    transaction: &Transaction<'_>,
    params: &ParamIds,
    op: usize,
    write: &mut ResourceWrite,
    if_match: Option<u64>,
    now: Timestamp,
) -> Result<WriteOutcome> {
    check_names(&write.resource_type, &write.id)?;
    // Twice at most: an insert of a new resource can lose the race to a concurrent create of the
    // same id, and then the resource exists (and is locked by the second look).
    for _ in 0..2 {
        let current = current(transaction, &write.resource_type, &write.id).await?;
        check_if_match(op, current.as_ref(), if_match)?;
        let was_live = matches!(current, Some(Current { deleted: false, .. }));
        if let Some(stored) = put(transaction, params, current.as_ref(), write, now).await? {
            return Ok(if was_live {
                WriteOutcome::Updated(stored)
            } else {
                WriteOutcome::Created(stored)
            });
        }
    }
    Err(Fault(StoreError::internal(
        "an update found no resource and could not insert one",
    )))
}

async fn delete(
    transaction: &Transaction<'_>,
    op: usize,
    resource_type: &str,
    id: &str,
    if_match: Option<u64>,
    now: Timestamp,
) -> Result<WriteOutcome> {
    check_names(resource_type, id)?;
    let current = current(transaction, resource_type, id).await?;
    check_if_match(op, current.as_ref(), if_match)?;
    let Some(Current {
        pk,
        version,
        deleted: false,
        shard_key,
    }) = current
    else {
        return Ok(WriteOutcome::NotFound);
    };
    let version = version + 1;
    let version_sql = sql_version(version)?;
    let statement = transaction
        .prepare_cached(
            "UPDATE resource SET version = $2, last_updated = $3, deleted = TRUE WHERE pk = $1",
        )
        .await?;
    transaction
        .execute(&statement, &[&pk, &version_sql, &now.0])
        .await?;
    append_version(
        transaction,
        pk,
        (resource_type, id),
        version_sql,
        now,
        METHOD_DELETE,
        &shard_key,
        None,
    )
    .await?;
    clear_index(transaction, pk).await?;
    Ok(WriteOutcome::Deleted {
        version,
        last_updated: now,
    })
}

/// Writes the next version of `write` (version 1 when `current` is None), replacing the index rows.
///
/// Returns None, having written nothing, when `current` is None but a resource with this type and
/// id exists after all (created before, or concurrently by a transaction that committed first).
async fn put(
    transaction: &Transaction<'_>,
    params: &ParamIds,
    current: Option<&Current>,
    write: &mut ResourceWrite,
    now: Timestamp,
) -> Result<Option<StoredResource>> {
    let version = current.map_or(1, |current| current.version + 1);
    let version_sql = sql_version(version)?;
    let json = write.stamp(version, now)?;
    let home = home_key(write);
    let (pk, method) = match current {
        None => {
            let statement = transaction
                .prepare_cached(
                    "INSERT INTO resource (type, id, version, last_updated, deleted, shard_key) \
                     VALUES ($1, $2, $3, $4, FALSE, $5) ON CONFLICT (type, id) DO NOTHING \
                     RETURNING pk",
                )
                .await?;
            let inserted = transaction
                .query_opt(
                    &statement,
                    &[&write.resource_type, &write.id, &version_sql, &now.0, &home],
                )
                .await?;
            let Some(row) = inserted else {
                return Ok(None);
            };
            (row.try_get::<_, i64>(0)?, METHOD_CREATE)
        }
        Some(current) => {
            let statement = transaction
                .prepare_cached(
                    "UPDATE resource SET version = $2, last_updated = $3, deleted = FALSE, \
                     shard_key = $4 WHERE pk = $1",
                )
                .await?;
            transaction
                .execute(&statement, &[&current.pk, &version_sql, &now.0, &home])
                .await?;
            // A deleted resource has no index rows, so only a live one needs clearing.
            if !current.deleted {
                clear_index(transaction, current.pk).await?;
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
        transaction,
        pk,
        (&write.resource_type, &write.id),
        version_sql,
        now,
        method,
        &home,
        Some(&json),
    )
    .await?;
    insert_index(transaction, params, pk, write).await?;
    Ok(Some(StoredResource {
        resource_type: write.resource_type.clone(),
        id: write.id.clone(),
        version,
        last_updated: now,
        deleted: false,
        json,
    }))
}

/// Records a version with its body (None for a delete).
#[expect(
    clippy::too_many_arguments,
    reason = "one column each; a struct would only rename them"
)]
async fn append_version(
    transaction: &Transaction<'_>,
    pk: i64,
    (resource_type, id): (&str, &str),
    version: i64,
    now: Timestamp,
    method: i16,
    shard_key: &str,
    json: Option<&str>,
) -> Result<()> {
    let statement = transaction
        .prepare_cached(
            "INSERT INTO resource_version \
             (res, type, id, version, last_updated, method, shard_key, json) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::json)",
        )
        .await?;
    transaction
        .execute(
            &statement,
            &[
                &pk,
                &resource_type,
                &id,
                &version,
                &now.0,
                &method,
                &shard_key,
                &json,
            ],
        )
        .await?;
    Ok(())
}

/// The distribution key a resource's own rows (`resource`, `resource_version`) are written under:
/// the first Patient compartment it belongs to, else `Type/id` (see
/// `migrations/0002_distribution_key.sql`).
pub(crate) fn home_key(write: &ResourceWrite) -> String {
    write
        .compartments
        .first()
        .cloned()
        .unwrap_or_else(|| format!("{}/{}", write.resource_type, write.id))
}

/// The distribution keys a resource's index rows are written under, once each: every Patient
/// compartment it belongs to, else `Type/id`. A search inside one patient's compartment therefore
/// finds every index row it needs under that patient's key.
pub(crate) fn index_keys(write: &ResourceWrite) -> Vec<String> {
    if write.compartments.is_empty() {
        vec![home_key(write)]
    } else {
        write.compartments.clone()
    }
}

/// Removes every index and compartment row of a resource, in one statement.
async fn clear_index(transaction: &Transaction<'_>, pk: i64) -> Result<()> {
    let statement = transaction
        .prepare_cached(
            "WITH t AS (DELETE FROM idx_token WHERE res = $1), \
             s AS (DELETE FROM idx_string WHERE res = $1), \
             d AS (DELETE FROM idx_date WHERE res = $1), \
             r AS (DELETE FROM idx_reference WHERE res = $1), \
             q AS (DELETE FROM idx_quantity WHERE res = $1), \
             n AS (DELETE FROM idx_number WHERE res = $1), \
             u AS (DELETE FROM idx_uri WHERE res = $1) \
             DELETE FROM compartment WHERE res = $1",
        )
        .await?;
    transaction.execute(&statement, &[&pk]).await?;
    Ok(())
}

/// The index entries of one resource, one array per column, as bound to [`INSERT_INDEX`].
#[derive(Default)]
struct IndexArrays {
    token_ord: Vec<i32>,
    token_pid: Vec<i32>,
    token_system: Vec<Option<String>>,
    token_code: Vec<Option<String>>,
    token_text: Vec<Option<String>>,
    string_ord: Vec<i32>,
    string_pid: Vec<i32>,
    string_normalized: Vec<String>,
    string_exact: Vec<String>,
    date_ord: Vec<i32>,
    date_pid: Vec<i32>,
    date_low: Vec<i64>,
    date_high: Vec<i64>,
    reference_ord: Vec<i32>,
    reference_pid: Vec<i32>,
    reference_type: Vec<Option<String>>,
    reference_id: Vec<Option<String>>,
    reference_url: Vec<Option<String>>,
    quantity_ord: Vec<i32>,
    quantity_pid: Vec<i32>,
    quantity_value: Vec<f64>,
    quantity_system: Vec<Option<String>>,
    quantity_code: Vec<Option<String>>,
    quantity_unit: Vec<Option<String>>,
    number_ord: Vec<i32>,
    number_pid: Vec<i32>,
    number_value: Vec<f64>,
    uri_ord: Vec<i32>,
    uri_pid: Vec<i32>,
    uri_value: Vec<String>,
}

/// Inserts every index and compartment row of one resource in one statement: one `unnest` per
/// table, so a resource costs one round trip however many entries it has. Empty arrays insert
/// nothing.
const INSERT_INDEX: &str = "\
WITH k AS (SELECT DISTINCT key FROM unnest($2::text[]) AS key), \
t AS (INSERT INTO idx_token (res, ord, pid, shard_key, system, code, text) \
    SELECT $1::int8, o, p, k.key, v1, v2, v3 \
    FROM unnest($3::int4[], $4::int4[], $5::text[], $6::text[], $7::text[]) AS u(o, p, v1, v2, v3), k), \
s AS (INSERT INTO idx_string (res, ord, pid, shard_key, normalized, exact) \
    SELECT $1::int8, o, p, k.key, v1, v2 FROM unnest($8::int4[], $9::int4[], $10::text[], $11::text[]) \
    AS u(o, p, v1, v2), k), \
d AS (INSERT INTO idx_date (res, ord, pid, shard_key, low, high) \
    SELECT $1::int8, o, p, k.key, v1, v2 FROM unnest($12::int4[], $13::int4[], $14::int8[], $15::int8[]) \
    AS u(o, p, v1, v2), k), \
r AS (INSERT INTO idx_reference (res, ord, pid, shard_key, target_type, target_id, url) \
    SELECT $1::int8, o, p, k.key, v1, v2, v3 \
    FROM unnest($16::int4[], $17::int4[], $18::text[], $19::text[], $20::text[]) \
    AS u(o, p, v1, v2, v3), k), \
q AS (INSERT INTO idx_quantity (res, ord, pid, shard_key, value, system, code, unit) \
    SELECT $1::int8, o, p, k.key, v1, v2, v3, v4 \
    FROM unnest($21::int4[], $22::int4[], $23::float8[], $24::text[], $25::text[], $26::text[]) \
    AS u(o, p, v1, v2, v3, v4), k), \
n AS (INSERT INTO idx_number (res, ord, pid, shard_key, value) \
    SELECT $1::int8, o, p, k.key, v1 FROM unnest($27::int4[], $28::int4[], $29::float8[]) AS u(o, p, v1), k), \
i AS (INSERT INTO idx_uri (res, ord, pid, shard_key, value) \
    SELECT $1::int8, o, p, k.key, v1 FROM unnest($30::int4[], $31::int4[], $32::text[]) AS u(o, p, v1), k) \
INSERT INTO compartment (patient_id, res) SELECT DISTINCT c, $1::int8 FROM unnest($33::text[]) AS c \
ON CONFLICT DO NOTHING";

async fn insert_index(
    transaction: &Transaction<'_>,
    params: &ParamIds,
    pk: i64,
    write: &ResourceWrite,
) -> Result<()> {
    if write.index.is_empty() && write.compartments.is_empty() {
        return Ok(());
    }
    let mut a = IndexArrays::default();
    for (ord, entry) in write.index.iter().enumerate() {
        let ord = i32::try_from(ord).map_err(|error| Fault(StoreError::internal(error)))?;
        let pid = params.get(&write.resource_type, &entry.param)?;
        match &entry.value {
            IndexValue::Token { system, code, text } => {
                a.token_ord.push(ord);
                a.token_pid.push(pid);
                a.token_system.push(system.clone());
                a.token_code.push(code.clone());
                a.token_text.push(text.clone());
            }
            IndexValue::String { normalized, exact } => {
                a.string_ord.push(ord);
                a.string_pid.push(pid);
                a.string_normalized.push(normalized.clone());
                a.string_exact.push(exact.clone());
            }
            IndexValue::Date { low, high } => {
                a.date_ord.push(ord);
                a.date_pid.push(pid);
                a.date_low.push(*low);
                a.date_high.push(*high);
            }
            IndexValue::Reference {
                target_type,
                target_id,
                url,
            } => {
                a.reference_ord.push(ord);
                a.reference_pid.push(pid);
                a.reference_type.push(target_type.clone());
                a.reference_id.push(target_id.clone());
                a.reference_url.push(url.clone());
            }
            IndexValue::Quantity {
                value,
                system,
                code,
                unit,
            } => {
                a.quantity_ord.push(ord);
                a.quantity_pid.push(pid);
                a.quantity_value.push(*value);
                a.quantity_system.push(system.clone());
                a.quantity_code.push(code.clone());
                a.quantity_unit.push(unit.clone());
            }
            IndexValue::Number { value } => {
                a.number_ord.push(ord);
                a.number_pid.push(pid);
                a.number_value.push(*value);
            }
            IndexValue::Uri { value } => {
                a.uri_ord.push(ord);
                a.uri_pid.push(pid);
                a.uri_value.push(value.clone());
            }
        }
    }
    let statement = transaction.prepare_cached(INSERT_INDEX).await?;
    transaction
        .execute(
            &statement,
            &[
                &pk,
                &index_keys(write),
                &a.token_ord,
                &a.token_pid,
                &a.token_system,
                &a.token_code,
                &a.token_text,
                &a.string_ord,
                &a.string_pid,
                &a.string_normalized,
                &a.string_exact,
                &a.date_ord,
                &a.date_pid,
                &a.date_low,
                &a.date_high,
                &a.reference_ord,
                &a.reference_pid,
                &a.reference_type,
                &a.reference_id,
                &a.reference_url,
                &a.quantity_ord,
                &a.quantity_pid,
                &a.quantity_value,
                &a.quantity_system,
                &a.quantity_code,
                &a.quantity_unit,
                &a.number_ord,
                &a.number_pid,
                &a.number_value,
                &a.uri_ord,
                &a.uri_pid,
                &a.uri_value,
                &write.compartments,
            ],
        )
        .await?;
    Ok(())
}

/// The interned ids of (resource type, search parameter) pairs, shared by every connection.
///
/// Invariant: every cached id exists in `search_param`. Pairs are registered by [`ParamIds::register`]
/// in their own short transaction before a write's transaction starts (never inside it), so an id
/// cannot disappear with a rolled-back write, and a write never waits on another write's new pair.
#[derive(Debug, Default)]
pub(crate) struct ParamIds {
    by_pair: RwLock<HashMap<(String, String), i32>>,
}

impl ParamIds {
    /// Registers every (type, param) pair of `ops` that is not cached yet, and caches its id.
    pub(crate) async fn register(&self, client: &Object, ops: &[WriteOp]) -> Result<()> {
        let writes = ops.iter().filter_map(|op| match op {
            WriteOp::Create { write, .. } | WriteOp::Update { write, .. } => Some(write),
            WriteOp::Delete { .. } => None,
        });
        self.register_writes(client, writes).await
    }

    /// Registers every (type, param) pair of `writes` that is not cached yet, and caches its id.
    pub(crate) async fn register_writes<'w>(
        &self,
        client: &Object,
        writes: impl Iterator<Item = &'w ResourceWrite>,
    ) -> Result<()> {
        let mut missing: Vec<(String, String)> = {
            let cached = self.by_pair.read().map_err(poisoned)?;
            writes
                .flat_map(|write| {
                    write.index.iter().map(|entry: &IndexEntry| {
                        (write.resource_type.clone(), entry.param.clone())
                    })
                })
                .filter(|pair| !cached.contains_key(pair))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        // A fixed order, so that two registrations of overlapping sets cannot deadlock.
        missing.sort();
        missing.dedup();
        let (types, names): (Vec<String>, Vec<String>) = missing.into_iter().unzip();
        let insert = client
            .prepare_cached(
                "INSERT INTO search_param (type, param) \
                 SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (type, param) DO NOTHING",
            )
            .await?;
        client.execute(&insert, &[&types, &names]).await?;
        let select = client
            .prepare_cached(
                "SELECT s.type, s.param, s.pid FROM search_param s \
                 JOIN unnest($1::text[], $2::text[]) AS u(type, param) \
                 ON s.type = u.type AND s.param = u.param",
            )
            .await?;
        let rows = client.query(&select, &[&types, &names]).await?;
        let mut cached = self.by_pair.write().map_err(poisoned)?;
        for row in &rows {
            cached.insert((row.try_get(0)?, row.try_get(1)?), row.try_get(2)?);
        }
        Ok(())
    }

    /// The id of a registered pair.
    pub(crate) fn get(&self, resource_type: &str, param: &str) -> Result<i32> {
        self.by_pair
            .read()
            .map_err(poisoned)?
            .get(&(resource_type.to_owned(), param.to_owned()))
            .copied()
            .ok_or_else(|| {
                Fault(StoreError::internal(
                    "a search parameter was not registered",
                ))
            })
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> Fault {
    Fault(StoreError::internal(
        "the search parameter cache lock is poisoned",
    ))
}

/// The resource's row, locked until the end of the transaction.
async fn current(
    transaction: &Transaction<'_>,
    resource_type: &str,
    id: &str,
) -> Result<Option<Current>> {
    let statement = transaction
        .prepare_cached(
            "SELECT pk, version, deleted, shard_key FROM resource WHERE type = $1 AND id = $2 \
             FOR UPDATE",
        )
        .await?;
    let Some(row) = transaction
        .query_opt(&statement, &[&resource_type, &id])
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(Current {
        pk: row.try_get(0)?,
        version: search::column_u64(&row, 1)?,
        deleted: row.try_get(2)?,
        shard_key: row.try_get(3)?,
    }))
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

pub(crate) fn check_names(resource_type: &str, id: &str) -> Result<()> {
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

/// Serialises conditional creates of one type under one condition: a transaction-scoped advisory
/// lock keyed by a hash of both. Different conditions rarely share a key (and then only wait).
async fn lock_condition(
    transaction: &Transaction<'_>,
    resource_type: &str,
    query: &SearchQuery,
) -> Result<()> {
    let key = fnv1a_str(&format!(
        "if-none-exist\u{1f}{resource_type}\u{1f}{:?}\u{1f}{:?}",
        query.compartment, query.filters
    ));
    let key = i64::from_ne_bytes(key.to_ne_bytes());
    let statement = transaction
        .prepare_cached("SELECT pg_advisory_xact_lock($1)")
        .await?;
    transaction.execute(&statement, &[&key]).await?;
    Ok(())
}

/// The first current resource of `resource_type` matching `query` (its `types` are replaced by the
/// created resource's type, its paging and includes ignored).
async fn first_match(
    transaction: &Transaction<'_>,
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
    Ok(search::search(transaction, &query)
        .await?
        .matches
        .into_iter()
        .next())
}
