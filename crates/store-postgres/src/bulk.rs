//! Bulk creation of new resources ([`store::Store::bulk_create`], the path of `tsunagu import`)
//! with `COPY ... FROM STDIN (FORMAT binary)`: one COPY per table for the whole call instead of a
//! few statements per resource.
//!
//! A call is one `READ COMMITTED` transaction on one connection, like a `write` call, retried from
//! the start after a deadlock or serialization failure.
//!
//! * **Keys.** `resource.pk` and `resource_version.seq` are identity columns. COPY writes the values
//!   it is given (as `INSERT ... OVERRIDING SYSTEM VALUE` would), so the call first reserves one
//!   value per resource from each column's own sequence (`nextval(pg_get_serial_sequence(..))`,
//!   both in one query) and then COPYs them. Sequence values only grow, so storage order (`scan`,
//!   paging) and history order follow the order of the call; values reserved by a call that rolls
//!   back are skipped, like those of a failed INSERT.
//! * **Duplicates.** Two writes of the call with the same type and id are refused before anything is
//!   sent. A resource that exists, live or deleted, makes the COPY into `resource` break the unique
//!   constraint on `(type, id)`: the transaction rolls back and the classifier answers `Duplicate`.
//!   A concurrent, uncommitted create of the same id is waited for by the unique index, as an
//!   INSERT would be.
//! * **Rows.** Exactly the rows the normal writer (`write.rs`) writes for a create, built with the
//!   same functions: `resource` and `resource_version` under the home key ([`write::home_key`]),
//!   each index entry once per distinct key of [`write::index_keys`] (its `ord` being its position
//!   in the write, its `pid` from the shared [`ParamIds`] registry), and one `compartment` row per
//!   distinct patient. Afterwards nothing tells a bulk-created resource from a created one.
//! * **Sharding.** COPY into a partitioned table routes each row to its partition, foreign
//!   (`postgres_fdw`) partitions included; nothing here relies on a unique constraint other than
//!   `resource (type, id)`.

use std::collections::HashSet;
use std::pin::Pin;

use deadpool_postgres::{Object, Transaction};
use store::{Clock, IndexValue, ResourceWrite, StoreError, StoredResource, Timestamp};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use crate::error::{Fault, Result, is_transaction_conflict};
use crate::write::{self, METHOD_CREATE, ParamIds};

/// Creates `writes` as new resources, all or nothing (see the module doc).
///
/// # Errors
/// `Duplicate` when a resource exists or two writes share a type and id, `Invalid` for an empty
/// type or id or a body that does not match its write, `Unavailable`, `Internal`.
pub(crate) async fn create(
    client: &mut Object,
    params: &ParamIds,
    clock: &dyn Clock,
    retries: u32,
    writes: Vec<ResourceWrite>,
) -> Result<Vec<StoredResource>> {
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    for write in &writes {
        write::check_names(&write.resource_type, &write.id)?;
    }
    store::check_bulk_unique(&writes)?;
    params.register_writes(client, writes.iter()).await?;
    let mut prepared = writes
        .into_iter()
        .map(|write| Prepared::new(params, write))
        .collect::<Result<Vec<_>>>()?;
    let mut attempt = 0;
    let (jsons, now) = loop {
        let now = clock.now();
        let result: Result<Vec<String>> = async {
            let transaction = client.transaction().await?;
            let jsons = copy_all(&transaction, &mut prepared, now).await?;
            transaction.commit().await?;
            Ok(jsons)
        }
        .await;
        match result {
            Ok(jsons) => break (jsons, now),
            Err(Fault(error)) if attempt < retries && is_transaction_conflict(&error) => {
                attempt += 1;
                tracing::debug!(
                    attempt,
                    "retrying a bulk create after a transaction conflict"
                );
            }
            Err(fault) => return Err(fault),
        }
    };
    Ok(prepared
        .into_iter()
        .zip(jsons)
        .map(|(prepared, json)| StoredResource {
            resource_type: prepared.write.resource_type,
            id: prepared.write.id,
            version: 1,
            last_updated: now,
            deleted: false,
            json,
        })
        .collect())
}

/// Writes a run of plain creates inside a `write` call's transaction with the COPYs of a bulk
/// create, when none of their (type, id) exists yet, live or deleted, and no two share one: then
/// the rows are exactly those the per-resource path would write, in one round trip per table.
/// Returns `None`, having written nothing, when the run must take the per-resource path instead
/// (re-creating a deleted resource, or a duplicate the per-resource path reports). A concurrent
/// transaction creating one of the ids between the check and the COPY makes the COPY fail as a
/// duplicate, as the per-resource insert would.
///
/// Every op of `ops` must be a `WriteOp::Create` without a condition; their bodies are stamped in
/// place (and stamped again if the call is retried).
///
/// # Errors
/// As the COPYs of a bulk create.
pub(crate) async fn create_run(
    transaction: &Transaction<'_>,
    params: &ParamIds,
    ops: &mut [store::WriteOp],
    now: Timestamp,
) -> Result<Option<Vec<StoredResource>>> {
    let mut writes = Vec::with_capacity(ops.len());
    for op in ops.iter_mut() {
        let store::WriteOp::Create { write, .. } = op else {
            return Err(Fault(StoreError::internal("a COPY run holds only creates")));
        };
        write::check_names(&write.resource_type, &write.id)?;
        writes.push(std::mem::replace(write, placeholder()));
    }
    let result = async {
        if store::check_bulk_unique(&writes).is_err() || any_exists(transaction, &writes).await? {
            return Ok(None);
        }
        let mut prepared = std::mem::take(&mut writes)
            .into_iter()
            .map(|write| Prepared::new(params, write))
            .collect::<Result<Vec<_>>>()?;
        let copied = copy_all(transaction, &mut prepared, now).await;
        writes = prepared
            .into_iter()
            .map(|prepared| prepared.write)
            .collect();
        let jsons = copied?;
        Ok(Some(
            writes
                .iter()
                .zip(jsons)
                .map(|(write, json)| StoredResource {
                    resource_type: write.resource_type.clone(),
                    id: write.id.clone(),
                    version: 1,
                    last_updated: now,
                    deleted: false,
                    json,
                })
                .collect(),
        ))
    }
    .await;
    // The writes go back into the call's operations whatever happened: a retried call, or the
    // per-resource path, writes them again.
    for (op, write) in ops.iter_mut().zip(writes) {
        if let store::WriteOp::Create { write: slot, .. } = op {
            *slot = write;
        }
    }
    result
}

/// An empty write held in an operation while its own write is being copied.
fn placeholder() -> ResourceWrite {
    ResourceWrite {
        resource_type: String::new(),
        id: String::new(),
        body: serde_json::Value::Null,
        index: Vec::new(),
        compartments: Vec::new(),
    }
}

/// Whether any of the writes' (type, id) exists already, live or deleted.
async fn any_exists(transaction: &Transaction<'_>, writes: &[ResourceWrite]) -> Result<bool> {
    let types: Vec<&str> = writes.iter().map(|w| w.resource_type.as_str()).collect();
    let ids: Vec<&str> = writes.iter().map(|w| w.id.as_str()).collect();
    let statement = transaction
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM resource r              JOIN unnest($1::text[], $2::text[]) AS u(t, i) ON r.type = u.t AND r.id = u.i)",
        )
        .await?;
    let row = transaction.query_one(&statement, &[&types, &ids]).await?;
    Ok(row.try_get(0)?)
}

/// One resource of the call with everything its rows need that does not depend on the time.
struct Prepared {
    write: ResourceWrite,
    /// The key of its `resource` and `resource_version` rows.
    home_key: String,
    /// The keys its index rows are written under, each once.
    index_keys: Vec<String>,
    /// The patients whose compartment it belongs to, each once.
    patients: Vec<String>,
    /// The interned parameter id of each index entry, in entry order.
    pids: Vec<i32>,
}

impl Prepared {
    fn new(params: &ParamIds, write: ResourceWrite) -> Result<Self> {
        let pids = write
            .index
            .iter()
            .map(|entry| params.get(&write.resource_type, &entry.param))
            .collect::<Result<Vec<_>>>()?;
        Ok(Prepared {
            home_key: write::home_key(&write),
            index_keys: distinct(write::index_keys(&write)),
            patients: distinct(write.compartments.clone()),
            pids,
            write,
        })
    }
}

/// `values` without repetitions, first occurrences kept in order.
fn distinct(mut values: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::with_capacity(values.len());
    values.retain(|value| seen.insert(value.clone()));
    values
}

/// Stamps every body and COPYs every row of the call inside `transaction`; returns the stored
/// JSON of each resource, in order.
async fn copy_all(
    transaction: &Transaction<'_>,
    prepared: &mut [Prepared],
    now: Timestamp,
) -> Result<Vec<String>> {
    let jsons = prepared
        .iter_mut()
        .map(|prepared| prepared.write.stamp(1, now))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let (pks, seqs) = reserve_keys(transaction, prepared.len()).await?;
    let version: i64 = 1;
    let live = false;

    // `resource` first: a duplicate fails here, before the larger tables are sent.
    let mut copy = start(
        transaction,
        "COPY resource (pk, type, id, version, last_updated, deleted, shard_key) \
         FROM STDIN (FORMAT binary)",
        &[
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::INT8,
            Type::INT8,
            Type::BOOL,
            Type::TEXT,
        ],
    )
    .await?;
    for (prepared, pk) in prepared.iter().zip(&pks) {
        let write = &prepared.write;
        copy.as_mut()
            .write(&[
                pk,
                &write.resource_type,
                &write.id,
                &version,
                &now.0,
                &live,
                &prepared.home_key,
            ])
            .await?;
    }
    finish(copy, prepared.len()).await?;

    // The body column is `json`, whose binary form is its text: it is sent as text.
    let mut copy = start(
        transaction,
        "COPY resource_version (seq, res, type, id, version, last_updated, method, shard_key, json) \
         FROM STDIN (FORMAT binary)",
        &[
            Type::INT8,
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::INT8,
            Type::INT8,
            Type::INT2,
            Type::TEXT,
            Type::TEXT,
        ],
    )
    .await?;
    for ((prepared, json), (seq, pk)) in prepared.iter().zip(&jsons).zip(seqs.iter().zip(&pks)) {
        let write = &prepared.write;
        copy.as_mut()
            .write(&[
                seq,
                pk,
                &write.resource_type,
                &write.id,
                &version,
                &now.0,
                &METHOD_CREATE,
                &prepared.home_key,
                json,
            ])
            .await?;
    }
    finish(copy, prepared.len()).await?;

    for table in INDEX_TABLES {
        copy_index(transaction, table, prepared, &pks).await?;
    }

    let rows: usize = prepared
        .iter()
        .map(|prepared| prepared.patients.len())
        .sum();
    if rows > 0 {
        let mut copy = start(
            transaction,
            "COPY compartment (patient_id, res) FROM STDIN (FORMAT binary)",
            &[Type::TEXT, Type::INT8],
        )
        .await?;
        for (prepared, pk) in prepared.iter().zip(&pks) {
            for patient in &prepared.patients {
                copy.as_mut().write(&[patient, pk]).await?;
            }
        }
        finish(copy, rows).await?;
    }
    Ok(jsons)
}

/// Reserves `count` values of `resource.pk` and of `resource_version.seq` from their sequences,
/// each list in increasing order.
async fn reserve_keys(transaction: &Transaction<'_>, count: usize) -> Result<(Vec<i64>, Vec<i64>)> {
    let count = i64::try_from(count).map_err(|error| Fault(StoreError::internal(error)))?;
    let statement = transaction
        .prepare_cached(
            "SELECT nextval(pg_get_serial_sequence('resource', 'pk')), \
             nextval(pg_get_serial_sequence('resource_version', 'seq')) \
             FROM generate_series(1, $1::int8)",
        )
        .await?;
    let rows = transaction.query(&statement, &[&count]).await?;
    let mut pks = Vec::with_capacity(rows.len());
    let mut seqs = Vec::with_capacity(rows.len());
    for row in &rows {
        // NULL when a column has no sequence of its own (a schema this code does not know).
        let (Some(pk), Some(seq)) = (row.try_get(0)?, row.try_get(1)?) else {
            return Err(Fault(StoreError::internal(
                "resource.pk or resource_version.seq has no sequence to reserve keys from",
            )));
        };
        pks.push(pk);
        seqs.push(seq);
    }
    // Values from one session only grow; sorted all the same, so the order never depends on it.
    pks.sort_unstable();
    seqs.sort_unstable();
    Ok((pks, seqs))
}

/// An index table: its COPY statement, its column types, and the value columns of the entries
/// that belong in it (None for entries of another kind).
struct IndexTable {
    sql: &'static str,
    types: &'static [Type],
    values: for<'v> fn(&'v IndexValue) -> Option<Vec<&'v (dyn ToSql + Sync)>>,
}

/// Every index table, with the columns `write.rs` fills (`res, ord, pid, shard_key`, then the values).
const INDEX_TABLES: &[IndexTable] = &[
    IndexTable {
        sql: "COPY idx_token (res, ord, pid, shard_key, system, code, text) \
              FROM STDIN (FORMAT binary)",
        types: &[Type::TEXT, Type::TEXT, Type::TEXT],
        values: |value| match value {
            IndexValue::Token { system, code, text } => Some(vec![system, code, text]),
            _ => None,
        },
    },
    IndexTable {
        sql: "COPY idx_string (res, ord, pid, shard_key, normalized, exact) \
              FROM STDIN (FORMAT binary)",
        types: &[Type::TEXT, Type::TEXT],
        values: |value| match value {
            IndexValue::String { normalized, exact } => Some(vec![normalized, exact]),
            _ => None,
        },
    },
    IndexTable {
        sql: "COPY idx_date (res, ord, pid, shard_key, low, high) FROM STDIN (FORMAT binary)",
        types: &[Type::INT8, Type::INT8],
        values: |value| match value {
            IndexValue::Date { low, high } => Some(vec![low, high]),
            _ => None,
        },
    },
    IndexTable {
        sql: "COPY idx_reference (res, ord, pid, shard_key, target_type, target_id, url) \
              FROM STDIN (FORMAT binary)",
        types: &[Type::TEXT, Type::TEXT, Type::TEXT],
        values: |value| match value {
            IndexValue::Reference {
                target_type,
                target_id,
                url,
            } => Some(vec![target_type, target_id, url]),
            _ => None,
        },
    },
    IndexTable {
        sql: "COPY idx_quantity (res, ord, pid, shard_key, value, system, code, unit) \
              FROM STDIN (FORMAT binary)",
        types: &[Type::FLOAT8, Type::TEXT, Type::TEXT, Type::TEXT],
        values: |value| match value {
            IndexValue::Quantity {
                value,
                system,
                code,
                unit,
            } => Some(vec![value, system, code, unit]),
            _ => None,
        },
    },
    IndexTable {
        sql: "COPY idx_number (res, ord, pid, shard_key, value) FROM STDIN (FORMAT binary)",
        types: &[Type::FLOAT8],
        values: |value| match value {
            IndexValue::Number { value } => Some(vec![value]),
            _ => None,
        },
    },
    IndexTable {
        sql: "COPY idx_uri (res, ord, pid, shard_key, value) FROM STDIN (FORMAT binary)",
        types: &[Type::TEXT],
        values: |value| match value {
            IndexValue::Uri { value } => Some(vec![value]),
            _ => None,
        },
    },
];

/// COPYs the entries of one index table, once per index key of their resource (nothing is sent
/// when no resource has entries of its kind).
async fn copy_index(
    transaction: &Transaction<'_>,
    table: &IndexTable,
    prepared: &[Prepared],
    pks: &[i64],
) -> Result<()> {
    let rows: usize = prepared
        .iter()
        .map(|prepared| {
            let entries = prepared
                .write
                .index
                .iter()
                .filter(|entry| (table.values)(&entry.value).is_some())
                .count();
            entries * prepared.index_keys.len()
        })
        .sum();
    if rows == 0 {
        return Ok(());
    }
    let mut types = vec![Type::INT8, Type::INT4, Type::INT4, Type::TEXT];
    types.extend_from_slice(table.types);
    let mut copy = start(transaction, table.sql, &types).await?;
    for (prepared, pk) in prepared.iter().zip(pks) {
        for (ord, (entry, pid)) in prepared.write.index.iter().zip(&prepared.pids).enumerate() {
            let Some(values) = (table.values)(&entry.value) else {
                continue;
            };
            let ord = i32::try_from(ord).map_err(|error| Fault(StoreError::internal(error)))?;
            for key in &prepared.index_keys {
                let mut row: Vec<&(dyn ToSql + Sync)> = vec![pk, &ord, pid, key];
                row.extend_from_slice(&values);
                copy.as_mut().write(&row).await?;
            }
        }
    }
    finish(copy, rows).await
}

/// Starts a binary COPY into a table; the statement is prepared once per connection.
async fn start(
    transaction: &Transaction<'_>,
    sql: &str,
    types: &[Type],
) -> Result<Pin<Box<BinaryCopyInWriter>>> {
    let statement = transaction.prepare_cached(sql).await?;
    let sink = transaction.copy_in(&statement).await?;
    Ok(Box::pin(BinaryCopyInWriter::new(sink, types)))
}

/// Ends a COPY and checks that the server took every row.
async fn finish(mut copy: Pin<Box<BinaryCopyInWriter>>, rows: usize) -> Result<()> {
    let written = copy.as_mut().finish().await?;
    if usize::try_from(written).ok() == Some(rows) {
        Ok(())
    } else {
        Err(Fault(StoreError::internal(
            "a bulk COPY wrote another number of rows than it was sent",
        )))
    }
}
