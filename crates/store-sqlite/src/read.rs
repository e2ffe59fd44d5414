//! Reads that are not searches: by id, by version, history, export scans and the type list. Each
//! function runs on a reader connection, inside the caller's read transaction where it needs one.

use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use store::{
    HistoryEntry, HistoryMethod, HistoryPage, HistoryQuery, HistoryScope, StoreError,
    StoredResource, Timestamp,
};

use crate::cursor::{self, Direction, Position, Scope};
use crate::error::{Fault, Result};
use crate::search::{MAX_PAGE_SIZE, RESOURCE_COLUMNS, column_u64, resource_from_row};
use crate::write::{METHOD_CREATE, METHOD_DELETE, METHOD_UPDATE};

/// The current version of a resource, deleted marker included.
pub(crate) fn read(
    connection: &Connection,
    resource_type: &str,
    id: &str,
) -> Result<Option<StoredResource>> {
    let resource = connection
        .prepare_cached(
            "SELECT version, last_updated, deleted, json FROM resource WHERE type = ?1 AND id = ?2",
        )?
        .query_row(params![resource_type, id], |row| {
            Ok(StoredResource {
                resource_type: resource_type.to_owned(),
                id: id.to_owned(),
                version: column_u64(row, 0)?,
                last_updated: Timestamp(row.get(1)?),
                deleted: row.get(2)?,
                json: row.get(3)?,
            })
        })
        .optional()?;
    Ok(resource)
}

/// The count of committed writes of `resource_type` (`migrations/0003_write_generation.sql`);
/// `None` for a type that is not counted.
pub(crate) fn write_generation(
    connection: &Connection,
    resource_type: &str,
) -> Result<Option<u64>> {
    let count = connection
        .prepare_cached("SELECT n FROM write_generation WHERE type = ?1")?
        .query_row(params![resource_type], |row| column_u64(row, 0))
        .optional()?;
    Ok(count)
}

/// One version of a resource.
pub(crate) fn vread(
    connection: &Connection,
    resource_type: &str,
    id: &str,
    version: u64,
) -> Result<Option<StoredResource>> {
    let Ok(version) = i64::try_from(version) else {
        return Ok(None);
    };
    let resource = connection
        .prepare_cached(
            "SELECT v.version, v.last_updated, v.method, coalesce(v.json, r.json) FROM resource r \
             JOIN resource_version v ON v.res = r.pk AND v.version = ?3 \
             WHERE r.type = ?1 AND r.id = ?2",
        )?
        .query_row(params![resource_type, id, version], |row| {
            Ok(StoredResource {
                resource_type: resource_type.to_owned(),
                id: id.to_owned(),
                version: column_u64(row, 0)?,
                last_updated: Timestamp(row.get(1)?),
                deleted: row.get::<_, i64>(2)? == METHOD_DELETE,
                json: row.get(3)?,
            })
        })
        .optional()?;
    Ok(resource)
}

/// A page of history, newest first, continuing before the cursor's sequence number.
pub(crate) fn history(connection: &Connection, query: &HistoryQuery) -> Result<HistoryPage> {
    let scope = Scope::of(&format!(
        "history\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}",
        query.scope, query.since, query.before
    ));
    let before_seq = match &query.cursor {
        Some(cursor) => {
            let position = cursor::decode(scope, cursor, 0)?;
            if position.direction != Direction::After {
                return Err(crate::error::invalid(
                    "the history cursor was not issued for this query",
                ));
            }
            Some(position.pk)
        }
        None => None,
    };

    // The filter is shared by the page and the total; its parameters are numbered from 1.
    let mut filter = String::from("1");
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    let mut bind = |value: rusqlite::types::Value| {
        values.push(value);
        values.len()
    };
    match &query.scope {
        HistoryScope::System => {}
        HistoryScope::Type(resource_type) => {
            let at = bind(resource_type.clone().into());
            filter.push_str(&format!(" AND v.type = ?{at}"));
        }
        HistoryScope::Instance { resource_type, id } => {
            let type_at = bind(resource_type.clone().into());
            let id_at = bind(id.clone().into());
            filter.push_str(&format!(
                " AND v.res = (SELECT pk FROM resource WHERE type = ?{type_at} AND id = ?{id_at})"
            ));
        }
    }
    if let Some(since) = query.since {
        let at = bind(since.0.into());
        filter.push_str(&format!(" AND v.last_updated >= ?{at}"));
    }
    if let Some(before) = query.before {
        let at = bind(before.0.into());
        filter.push_str(&format!(" AND v.last_updated < ?{at}"));
    }

    let total = if query.with_total {
        let mut statement = connection.prepare_cached(&format!(
            "SELECT count(*) FROM resource_version v WHERE {filter}"
        ))?;
        Some(statement.query_row(params_from_iter(values.iter()), |row| column_u64(row, 0))?)
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
    let mut page_filter = filter;
    if let Some(seq) = before_seq {
        values.push(seq.into());
        page_filter.push_str(&format!(" AND v.seq < ?{}", values.len()));
    }
    values.push(i64::try_from(count + 1).unwrap_or(i64::MAX).into());
    let limit_at = values.len();
    let mut statement = connection.prepare_cached(&format!(
        "SELECT v.seq, r.type, r.id, v.version, v.last_updated, v.method, \
         coalesce(v.json, r.json) \
         FROM resource_version v JOIN resource r ON r.pk = v.res \
         WHERE {page_filter} ORDER BY v.seq DESC LIMIT ?{limit_at}"
    ))?;
    let mut rows = statement.query(params_from_iter(values.iter()))?;
    let mut entries = Vec::with_capacity(count + 1);
    let mut last_seq = None;
    while let Some(row) = rows.next()? {
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
        let method = match row.get::<_, i64>(5)? {
            METHOD_CREATE => HistoryMethod::Create,
            METHOD_UPDATE => HistoryMethod::Update,
            METHOD_DELETE => HistoryMethod::Delete,
            other => {
                return Err(Fault(StoreError::internal(format!(
                    "unknown history method {other}"
                ))));
            }
        };
        last_seq = Some(row.get::<_, i64>(0)?);
        entries.push(HistoryEntry {
            method,
            resource: StoredResource {
                resource_type: row.get(1)?,
                id: row.get(2)?,
                version: column_u64(row, 3)?,
                last_updated: Timestamp(row.get(4)?),
                deleted: method == HistoryMethod::Delete,
                json: row.get(6)?,
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
pub(crate) fn scan(
    connection: &Connection,
    resource_type: &str,
    after: Option<i64>,
    limit: usize,
) -> Result<(Vec<StoredResource>, Option<i64>)> {
    if limit == 0 {
        return Ok((Vec::new(), after));
    }
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {RESOURCE_COLUMNS} FROM resource r \
         WHERE r.type = ?1 AND r.deleted = 0 AND r.pk > ?2 ORDER BY r.pk LIMIT ?3"
    ))?;
    let limit_sql = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
    let mut rows = statement
        .query_map(
            params![resource_type, after.unwrap_or(i64::MIN), limit_sql],
            resource_from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more {
        rows.last().map(|(pk, _)| *pk)
    } else {
        None
    };
    Ok((
        rows.into_iter().map(|(_, resource)| resource).collect(),
        next,
    ))
}

/// Types with at least one live resource, sorted. A loose index scan over `(type, deleted)`: one
/// index seek per type, however many resources there are.
pub(crate) fn resource_types(connection: &Connection) -> Result<Vec<String>> {
    let mut statement = connection.prepare_cached(
        "WITH RECURSIVE types(type) AS ( \
             SELECT (SELECT min(type) FROM resource) \
             UNION ALL \
             SELECT (SELECT min(type) FROM resource WHERE type > types.type) \
             FROM types WHERE types.type IS NOT NULL \
         ) \
         SELECT type FROM types WHERE type IS NOT NULL \
         AND EXISTS (SELECT 1 FROM resource WHERE resource.type = types.type AND deleted = 0)",
    )?;
    let types = statement
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(types)
}
