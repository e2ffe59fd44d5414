//! Reads that are not searches: by id, by version, history, export scans and the type list.

use deadpool_postgres::{Object, Transaction};
use store::{
    HistoryEntry, HistoryMethod, HistoryPage, HistoryQuery, HistoryScope, StoreError,
    StoredResource, Timestamp,
};

use crate::cursor::{self, Direction, Position, Scope};
use crate::error::{Fault, Result, invalid};
use crate::search::{MAX_PAGE_SIZE, RESOURCE_COLUMNS, column_u64, directory_row, with_bodies};
use crate::sql::Sql;
use crate::write::{METHOD_CREATE, METHOD_DELETE, METHOD_UPDATE};

/// The current version of a resource, deleted marker included.
///
/// Two steps: the directory row, then the body under the resource's home key, bound as a
/// parameter, so that a sharded store plans and opens only the shard that holds it.
pub(crate) async fn read(
    client: &Object,
    resource_type: &str,
    id: &str,
) -> Result<Option<StoredResource>> {
    let Some(directory) = directory(client, resource_type, id).await? else {
        return Ok(None);
    };
    let json = body(client, &directory, directory.version, true).await?;
    if json.is_none() && !directory.deleted {
        return Err(Fault(StoreError::internal(
            "a live resource has no body for its current version",
        )));
    }
    Ok(Some(StoredResource {
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
        version: u64::try_from(directory.version).map_err(|e| Fault(StoreError::internal(e)))?,
        last_updated: Timestamp(directory.last_updated),
        deleted: directory.deleted,
        json: json.map(|(_, _, json)| json).unwrap_or_default(),
    }))
}

/// One version of a resource.
///
/// Looked up under the resource's current home key first (on a sharded store, that shard alone);
/// a version written while the resource belonged to another patient is found by the second look,
/// which reads every shard.
pub(crate) async fn vread(
    client: &Object,
    resource_type: &str,
    id: &str,
    version: u64,
) -> Result<Option<StoredResource>> {
    let Ok(version) = i64::try_from(version) else {
        return Ok(None);
    };
    let Some(directory) = directory(client, resource_type, id).await? else {
        return Ok(None);
    };
    if version > directory.version {
        return Ok(None);
    }
    let mut found = body(client, &directory, version, true).await?;
    if found.is_none() {
        found = body(client, &directory, version, false).await?;
    }
    let Some((last_updated, method, json)) = found else {
        return Ok(None);
    };
    Ok(Some(StoredResource {
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
        version: u64::try_from(version).map_err(|e| Fault(StoreError::internal(e)))?,
        last_updated: Timestamp(last_updated),
        deleted: method == METHOD_DELETE,
        json,
    }))
}

/// A resource's row in the `resource` directory.
struct Directory {
    pk: i64,
    version: i64,
    last_updated: i64,
    deleted: bool,
    shard_key: String,
}

async fn directory(client: &Object, resource_type: &str, id: &str) -> Result<Option<Directory>> {
    let statement = client
        .prepare_cached(
            "SELECT pk, version, last_updated, deleted, shard_key FROM resource \
             WHERE type = $1 AND id = $2",
        )
        .await?;
    let Some(row) = client.query_opt(&statement, &[&resource_type, &id]).await? else {
        return Ok(None);
    };
    Ok(Some(Directory {
        pk: row.try_get(0)?,
        version: row.try_get(1)?,
        last_updated: row.try_get(2)?,
        deleted: row.try_get(3)?,
        shard_key: row.try_get(4)?,
    }))
}

/// `(last_updated, method, body)` of one version (an empty body for a delete), looked up under the
/// resource's home key only (`home_only`) or on every shard.
async fn body(
    client: &Object,
    directory: &Directory,
    version: i64,
    home_only: bool,
) -> Result<Option<(i64, i16, String)>> {
    let statement = client
        .prepare_cached(if home_only {
            "SELECT last_updated, method, json::text FROM resource_version \
             WHERE shard_key = $3 AND res = $1 AND version = $2"
        } else {
            "SELECT last_updated, method, json::text FROM resource_version \
             WHERE res = $1 AND version = $2 AND $3::text IS NOT NULL"
        })
        .await?;
    let Some(row) = client
        .query_opt(&statement, &[&directory.pk, &version, &directory.shard_key])
        .await?
    else {
        return Ok(None);
    };
    Ok(Some((
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get::<_, Option<String>>(2)?.unwrap_or_default(),
    )))
}

/// A page of history, newest first, continuing before the cursor's sequence number.
pub(crate) async fn history(
    transaction: &Transaction<'_>,
    query: &HistoryQuery,
) -> Result<HistoryPage> {
    let scope = Scope::of(&format!(
        "history\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}",
        query.scope, query.since, query.before
    ));
    let before_seq = match &query.cursor {
        Some(cursor) => {
            let position = cursor::decode(scope, cursor, 0)?;
            if position.direction != Direction::After {
                return Err(invalid("the history cursor was not issued for this query"));
            }
            Some(position.pk)
        }
        None => None,
    };

    // The filter is shared by the page and the total.
    let mut sql = Sql::default();
    let mut filter = String::from("TRUE");
    match &query.scope {
        HistoryScope::System => {}
        HistoryScope::Type(resource_type) => {
            let at = sql.bind_str(resource_type);
            filter.push_str(&format!(" AND v.type = {at}"));
        }
        HistoryScope::Instance { resource_type, id } => {
            let type_at = sql.bind_str(resource_type);
            let id_at = sql.bind_str(id);
            filter.push_str(&format!(
                " AND v.res = (SELECT pk FROM resource WHERE type = {type_at} AND id = {id_at})"
            ));
        }
    }
    if let Some(since) = query.since {
        let at = sql.bind(since.0);
        filter.push_str(&format!(" AND v.last_updated >= {at}"));
    }
    if let Some(before) = query.before {
        let at = sql.bind(before.0);
        filter.push_str(&format!(" AND v.last_updated < {at}"));
    }

    let total = if query.with_total {
        let row = transaction
            .query_one(
                &format!("SELECT count(*) FROM resource_version v WHERE {filter}"),
                &sql.refs(),
            )
            .await?;
        Some(column_u64(&row, 0)?)
    } else {
        None
    };

    let count = query.count.min(MAX_PAGE_SIZE) as usize;
    if count == 0 {
        return Ok(HistoryPage {
            entries: Vec::new(),
            next: None,
            total,
        });
    }
    if let Some(seq) = before_seq {
        let at = sql.bind(seq);
        filter.push_str(&format!(" AND v.seq < {at}"));
    }
    let limit = sql.bind(i64::try_from(count + 1).unwrap_or(i64::MAX));
    let rows = transaction
        .query(
            &format!(
                "SELECT v.seq, v.type, v.id, v.version, v.last_updated, v.method, v.json::text \
                 FROM resource_version v WHERE {filter} ORDER BY v.seq DESC LIMIT {limit}"
            ),
            &sql.refs(),
        )
        .await?;
    let mut entries = Vec::with_capacity(count);
    let mut last_seq = None;
    for row in &rows {
        if entries.len() == count {
            // The extra row only tells that another page exists.
            let next = last_seq.map(|seq| {
                cursor::encode(
                    scope,
                    &Position {
                        direction: Direction::After,
                        keys: Vec::new(),
                        pk: seq,
                    },
                )
            });
            return Ok(HistoryPage {
                entries,
                next,
                total,
            });
        }
        let method = match row.try_get::<_, i16>(5)? {
            METHOD_CREATE => HistoryMethod::Create,
            METHOD_UPDATE => HistoryMethod::Update,
            METHOD_DELETE => HistoryMethod::Delete,
            other => {
                return Err(Fault(StoreError::internal(format!(
                    "unknown history method {other}"
                ))));
            }
        };
        last_seq = Some(row.try_get::<_, i64>(0)?);
        entries.push(HistoryEntry {
            method,
            resource: StoredResource {
                resource_type: row.try_get(1)?,
                id: row.try_get(2)?,
                version: column_u64(row, 3)?,
                last_updated: Timestamp(row.try_get(4)?),
                deleted: method == HistoryMethod::Delete,
                json: row.try_get::<_, Option<String>>(6)?.unwrap_or_default(),
            },
        });
    }
    Ok(HistoryPage {
        entries,
        next: None,
        total,
    })
}

/// Up to `limit` live resources of a type after pk `after`, in pk order, and where to continue.
pub(crate) async fn scan(
    client: &Object,
    resource_type: &str,
    after: Option<i64>,
    limit: usize,
) -> Result<(Vec<StoredResource>, Option<i64>)> {
    if limit == 0 {
        return Ok((Vec::new(), after));
    }
    let statement = client
        .prepare_cached(&format!(
            "SELECT {RESOURCE_COLUMNS} FROM resource r \
             WHERE r.type = $1 AND NOT r.deleted AND r.pk > $2 ORDER BY r.pk LIMIT $3"
        ))
        .await?;
    let limit_sql = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
    let rows = client
        .query(
            &statement,
            &[&resource_type, &after.unwrap_or(i64::MIN), &limit_sql],
        )
        .await?;
    let rows = rows.iter().map(directory_row).collect::<Result<Vec<_>>>()?;
    let mut resources = with_bodies(client, rows).await?;
    let more = resources.len() > limit;
    resources.truncate(limit);
    let next = if more {
        resources.last().map(|(pk, _)| *pk)
    } else {
        None
    };
    Ok((
        resources
            .into_iter()
            .map(|(_, resource)| resource)
            .collect(),
        next,
    ))
}

/// Types with at least one live resource, sorted (byte order).
pub(crate) async fn resource_types(client: &Object) -> Result<Vec<String>> {
    let statement = client
        .prepare_cached("SELECT DISTINCT type FROM resource WHERE NOT deleted ORDER BY type")
        .await?;
    let rows = client.query(&statement, &[]).await?;
    rows.iter()
        .map(|row| row.try_get(0).map_err(Fault::from))
        .collect()
}
