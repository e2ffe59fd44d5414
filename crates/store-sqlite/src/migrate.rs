//! Schema migrations: numbered SQL files under `migrations/`, embedded at compile time and applied in
//! order, each recorded in `schema_migrations`.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::error::{Result, invalid};

/// One embedded migration. `version` is the number in the file name; versions are contiguous from 1.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Every migration this binary knows, in order. Append only: never edit a released file.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "resources",
        sql: include_str!("../migrations/0001_resources.sql"),
    },
    Migration {
        version: 2,
        name: "distribution_key",
        sql: include_str!("../migrations/0002_distribution_key.sql"),
    },
    Migration {
        version: 3,
        name: "write_generation",
        sql: include_str!("../migrations/0003_write_generation.sql"),
    },
];

/// The schema version this binary writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// Brings the database up to [`SCHEMA_VERSION`] in one immediate transaction (so two processes
/// migrating at once serialise). Running it on an up-to-date database changes nothing.
///
/// # Errors
/// `Invalid` when the database was migrated by a newer binary: opening it could corrupt data that
/// this binary does not understand.
pub(crate) fn migrate(connection: &mut Connection, now_micros: i64) -> Result<()> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    transaction.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT    NOT NULL,
             applied_at INTEGER NOT NULL
         )",
    )?;
    let current: i64 = transaction
        .query_row("SELECT max(version) FROM schema_migrations", [], |row| {
            row.get::<_, Option<i64>>(0)
        })
        .optional()?
        .flatten()
        .unwrap_or(0);
    if current > SCHEMA_VERSION {
        return Err(invalid(format!(
            "database schema version {current} is newer than this binary supports \
             (up to {SCHEMA_VERSION}); upgrade tsunagu or open a different database"
        )));
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applying migration"
        );
        transaction.execute_batch(migration.sql)?;
        transaction.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            (migration.version, migration.name, now_micros),
        )?;
    }
    transaction.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests;
