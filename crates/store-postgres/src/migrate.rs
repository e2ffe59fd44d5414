//! Schema migrations: numbered SQL files under `migrations/` (numbered in step with the SQLite
//! backend's), embedded at compile time and applied in order inside one transaction, each recorded
//! in `schema_migrations`.

use deadpool_postgres::Object;

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
];

/// The schema version this binary writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// The advisory lock that serialises migrating processes ("tsunagu" and 1 in ASCII).
const MIGRATION_LOCK: i64 = 0x7473_756e_6167_7501;

/// Brings the database up to [`SCHEMA_VERSION`] in one transaction, under a transaction-scoped
/// advisory lock so that several servers starting at once migrate one after the other (the second
/// then finds nothing to do). Running it on an up-to-date database changes nothing.
///
/// # Errors
/// `Invalid` when the database was migrated by a newer binary: using it could corrupt data that this
/// binary does not understand.
pub(crate) async fn migrate(client: &mut Object, now_micros: i64) -> Result<()> {
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    bigint PRIMARY KEY,
                 name       text   NOT NULL,
                 applied_at bigint NOT NULL
             )",
        )
        .await?;
    let current: i64 = transaction
        .query_one(
            "SELECT coalesce(max(version), 0)::bigint FROM schema_migrations",
            &[],
        )
        .await?
        .try_get(0)?;
    if current > SCHEMA_VERSION {
        return Err(invalid(format!(
            "database schema version {current} is newer than this binary supports \
             (up to {SCHEMA_VERSION}); upgrade tsunagu or use a different database"
        )));
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applying migration"
        );
        transaction.batch_execute(migration.sql).await?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                &[&migration.version, &migration.name, &now_micros],
            )
            .await?;
    }
    transaction.commit().await?;
    Ok(())
}
