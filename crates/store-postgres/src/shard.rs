//! Sharding by patient over several PostgreSQL servers with PostgreSQL's own tools: hash
//! partitioning whose partitions are `postgres_fdw` foreign tables (docs/scale-out.md).
//!
//! [`init`] turns a fresh *coordinator* database and N fresh *shard* databases into one store:
//!
//! * every shard gets the schema (the same embedded migrations), then keeps only the per-patient
//!   tables (`resource_version`, the `idx_*` tables, `compartment`): the coordinator assigns every
//!   key, so a shard's `seq` is a plain column and it has no `resource` directory;
//! * on the coordinator, each per-patient table becomes a table partitioned `BY HASH` of its
//!   distribution key (`shard_key`, or `patient_id` for `compartment`) whose N partitions are
//!   foreign tables, one on each shard; `resource` (the directory of logical resources: one narrow
//!   row each, with their home key), `search_param` and `schema_migrations` stay on the
//!   coordinator.
//!
//! The service then connects to the coordinator as to any PostgreSQL store: the same SQL runs
//! unchanged. What holds across shards and what does not:
//!
//! * `(type, id)` stays unique, If-Match stays exact and conditional creates stay single: all three
//!   rest on the coordinator's `resource` row lock, unique constraint and advisory locks;
//! * uniqueness inside a per-patient table holds per shard only (its primary key lives in each
//!   shard); the writer never relies on more;
//! * a transaction's writes to several shards commit one after the other at the coordinator's
//!   commit, without two-phase commit: a crash at that instant can leave one shard committed and
//!   another not (postgres_fdw has no 2PC in PostgreSQL 15);
//! * a search reads each shard in that shard's own snapshot, not one snapshot of all shards.
//!
//! Each shard's database must be new and empty; the coordinator's must hold no resources (moving
//! existing data onto shards is not implemented: load the sharded store with `tsunagu import`).
//! Running [`init`] again with the same shards changes nothing.

use std::fmt::Write as _;
use std::sync::Arc;

use store::{Clock, StoreError};
use tokio_postgres::config::Host;

use crate::error::{Fault, Result};
use crate::{PostgresOptions, PostgresStore};

/// The per-patient tables and the column each is distributed by.
pub const DISTRIBUTED_TABLES: &[(&str, &str)] = &[
    ("resource_version", "shard_key"),
    ("idx_token", "shard_key"),
    ("idx_string", "shard_key"),
    ("idx_date", "shard_key"),
    ("idx_reference", "shard_key"),
    ("idx_quantity", "shard_key"),
    ("idx_number", "shard_key"),
    ("idx_uri", "shard_key"),
    ("compartment", "patient_id"),
];

/// The role a database plays, recorded in its `tsunagu_node` table by [`init`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A plain store, or a store that was never sharded.
    Single,
    /// The coordinator of a sharded store, with this many shards.
    Coordinator { shards: usize },
    /// One shard of a sharded store: the service must not connect to it directly.
    Shard,
}

/// What [`init`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// How many shards the store is partitioned over.
    pub shards: usize,
    /// False when the store was already sharded over these shards and nothing changed.
    pub created: bool,
}

/// Shards the store at `coordinator_url` over the databases at `shard_urls` (see the module docs).
///
/// The shard URLs are stored in the coordinator's foreign server definitions and user mappings
/// (host, port, database; user and password), which is how postgres_fdw reaches them.
///
/// # Errors
/// `Invalid` for a malformed URL, a shard that is not a new database, a coordinator that already
/// holds resources, or one that is sharded differently; `Unavailable` when a server cannot be
/// reached; `Internal` when the DDL fails.
pub async fn init(
    coordinator_url: &str,
    shard_urls: &[String],
    clock: Arc<dyn Clock>,
) -> Result<Layout, StoreError> {
    if shard_urls.is_empty() {
        return Err(StoreError::Invalid(
            "at least one shard is needed".to_owned(),
        ));
    }
    let shards = shard_urls
        .iter()
        .map(|url| ShardServer::parse(url))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let options = PostgresOptions {
        max_connections: 1,
        ..PostgresOptions::default()
    };
    // The coordinator's schema first: `connect` migrates it, and refuses a shard's database.
    let coordinator =
        PostgresStore::connect(coordinator_url, options.clone(), Arc::clone(&clock)).await?;
    let mut client = coordinator.client().await?;
    match role(&client).await? {
        Role::Coordinator { shards: existing } if existing == shards.len() => {
            return Ok(Layout {
                shards: existing,
                created: false,
            });
        }
        Role::Coordinator { shards: existing } => {
            return Err(StoreError::Invalid(format!(
                "the store is already sharded over {existing} shards, not {}",
                shards.len()
            )));
        }
        Role::Shard => unreachable!("connect refuses a shard"),
        Role::Single => {}
    }
    let holds: bool = client
        .query_one("SELECT EXISTS (SELECT 1 FROM resource)", &[])
        .await
        .map_err(Fault::from)?
        .get(0);
    if holds {
        return Err(StoreError::Invalid(
            "the store already holds resources; shard a new store and load it with `tsunagu import`"
                .to_owned(),
        ));
    }
    for (index, url) in shard_urls.iter().enumerate() {
        prepare_shard(url, index, options.clone(), Arc::clone(&clock)).await?;
    }
    let transaction = client.transaction().await.map_err(Fault::from)?;
    transaction
        .batch_execute(&coordinator_ddl(&shards))
        .await
        .map_err(Fault::from)?;
    transaction.commit().await.map_err(Fault::from)?;
    tracing::info!(shards = shards.len(), "the store is sharded");
    Ok(Layout {
        shards: shards.len(),
        created: true,
    })
}

/// The role recorded in a database (`Single` when it has no record).
pub(crate) async fn role(client: &tokio_postgres::Client) -> Result<Role> {
    let row = client
        .query_one("SELECT to_regclass('tsunagu_node') IS NOT NULL", &[])
        .await?;
    if !row.get::<_, bool>(0) {
        return Ok(Role::Single);
    }
    let row = client
        .query_one("SELECT role, shards FROM tsunagu_node", &[])
        .await?;
    let shards: i32 = row.try_get(1)?;
    match row.try_get::<_, String>(0)?.as_str() {
        "coordinator" => Ok(Role::Coordinator {
            shards: usize::try_from(shards).map_err(|e| Fault(StoreError::internal(e)))?,
        }),
        "shard" => Ok(Role::Shard),
        _ => Err(Fault(StoreError::internal("unknown tsunagu_node role"))),
    }
}

/// Gives the shard database at `url` the schema and keeps only what a shard holds.
async fn prepare_shard(
    url: &str,
    index: usize,
    options: PostgresOptions,
    clock: Arc<dyn Clock>,
) -> Result<(), StoreError> {
    // Already a shard: `connect` refuses it, and there is nothing to do.
    {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|_| StoreError::Invalid(format!("the URL of shard {index} is malformed")))?;
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(Fault::from)?;
        let driver = tokio::spawn(connection);
        let existing = role(&client).await;
        drop(client);
        let _ = driver.await;
        if existing? == Role::Shard {
            return Ok(());
        }
    }
    let shard = PostgresStore::connect(url, options, clock).await?;
    let mut client = shard.client().await?;
    let transaction = client.transaction().await.map_err(Fault::from)?;
    let holds: bool = transaction
        .query_one("SELECT EXISTS (SELECT 1 FROM resource)", &[])
        .await
        .map_err(Fault::from)?
        .get(0);
    if holds {
        return Err(StoreError::Invalid(format!(
            "shard {index} already holds resources; give each shard a new database"
        )));
    }
    transaction
        .batch_execute(
            "ALTER TABLE resource_version ALTER COLUMN seq DROP IDENTITY;
             DROP TABLE resource;
             DROP TABLE search_param;
             CREATE TABLE tsunagu_node (role text NOT NULL, shards integer NOT NULL);
             INSERT INTO tsunagu_node VALUES ('shard', 0);",
        )
        .await
        .map_err(Fault::from)?;
    transaction.commit().await.map_err(Fault::from)?;
    shard.close();
    Ok(())
}

/// The coordinator's DDL: one foreign server and user mapping per shard, then each distributed
/// table rebuilt as a hash-partitioned table of foreign partitions.
fn coordinator_ddl(shards: &[ShardServer]) -> String {
    let mut sql = String::from("CREATE EXTENSION IF NOT EXISTS postgres_fdw;\n");
    for (index, shard) in shards.iter().enumerate() {
        let _ = writeln!(
            sql,
            "CREATE SERVER tsunagu_shard_{index} FOREIGN DATA WRAPPER postgres_fdw \
             OPTIONS (host {}, port {}, dbname {}, async_capable 'true', fetch_size '1000');\n\
             CREATE USER MAPPING FOR CURRENT_USER SERVER tsunagu_shard_{index} \
             OPTIONS (user {}, password {});",
            literal(&shard.host),
            literal(&shard.port.to_string()),
            literal(&shard.dbname),
            literal(&shard.user),
            literal(&shard.password),
        );
    }
    let modulus = shards.len();
    for (table, column) in DISTRIBUTED_TABLES {
        let _ = writeln!(
            sql,
            "ALTER TABLE {table} RENAME TO {table}_single;\n\
             CREATE TABLE {table} (LIKE {table}_single INCLUDING DEFAULTS INCLUDING IDENTITY) \
             PARTITION BY HASH ({column});"
        );
        for index in 0..modulus {
            let _ = writeln!(
                sql,
                "CREATE FOREIGN TABLE {table}_shard_{index} PARTITION OF {table} \
                 FOR VALUES WITH (MODULUS {modulus}, REMAINDER {index}) \
                 SERVER tsunagu_shard_{index} OPTIONS (schema_name 'public', table_name '{table}');"
            );
        }
        let _ = writeln!(sql, "DROP TABLE {table}_single;");
    }
    // Statements bind the keys they prune by (`shard_key = ANY($1)`); a generic plan keeps every
    // shard in it (and opens a connection to each), a custom plan prunes them at plan time.
    let _ = writeln!(
        sql,
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET plan_cache_mode = force_custom_plan', \
         current_database()); END $$;\n\
         CREATE TABLE tsunagu_node (role text NOT NULL, shards integer NOT NULL);\n\
         INSERT INTO tsunagu_node VALUES ('coordinator', {modulus});"
    );
    sql
}

/// A SQL string literal (standard_conforming_strings: only the quote needs doubling).
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Where postgres_fdw reaches one shard.
struct ShardServer {
    host: String,
    port: u16,
    dbname: String,
    user: String,
    password: String,
}

impl ShardServer {
    /// Reads a `postgres://user:password@host:port/db` URL; errors never echo it (password).
    fn parse(url: &str) -> Result<ShardServer, StoreError> {
        let malformed = || StoreError::Invalid("a shard URL is malformed".to_owned());
        let incomplete = |what: &str| {
            StoreError::Invalid(format!(
                "a shard URL needs {what} (postgres://USER:PASSWORD@HOST:PORT/DATABASE)"
            ))
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(malformed());
        }
        let config: tokio_postgres::Config = url.parse().map_err(|_| malformed())?;
        let host = match config.get_hosts() {
            [Host::Tcp(host)] => host.clone(),
            _ => return Err(incomplete("exactly one TCP host")),
        };
        let port = match config.get_ports() {
            [] => 5432,
            [port] => *port,
            _ => return Err(incomplete("one port")),
        };
        let dbname = config
            .get_dbname()
            .ok_or_else(|| incomplete("a database"))?
            .to_owned();
        let user = config
            .get_user()
            .ok_or_else(|| incomplete("a user"))?
            .to_owned();
        let password = config
            .get_password()
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
            .ok_or_else(|| incomplete("a password"))?;
        Ok(ShardServer {
            host,
            port,
            dbname,
            user,
            password,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_urls_need_every_part_and_errors_do_not_echo_them() {
        let server = ShardServer::parse("postgres://u:p%27w@10.0.0.1:6543/shard1").expect("parses");
        assert_eq!(
            (server.host.as_str(), server.port, server.dbname.as_str()),
            ("10.0.0.1", 6543, "shard1")
        );
        assert_eq!(
            (server.user.as_str(), server.password.as_str()),
            ("u", "p'w")
        );
        for url in [
            "postgres://u@h/db",
            "postgres://u:secret@h",
            "mysql://u:secret@h/db",
            "postgres://u:secret@h:notaport/db",
        ] {
            let error = ShardServer::parse(url).err().expect("refused").to_string();
            assert!(!error.contains("secret"), "{error}");
        }
    }

    #[test]
    fn ddl_partitions_every_distributed_table_over_every_shard() {
        let shards: Vec<ShardServer> = (0..3)
            .map(|i| ShardServer {
                host: "127.0.0.1".to_owned(),
                port: 5432 + i,
                dbname: format!("s{i}"),
                user: "u".to_owned(),
                password: "it's".to_owned(),
            })
            .collect();
        let ddl = coordinator_ddl(&shards);
        assert!(ddl.contains("password 'it''s'"));
        for (table, column) in DISTRIBUTED_TABLES {
            assert!(ddl.contains(&format!("CREATE TABLE {table} (LIKE {table}_single")));
            assert!(ddl.contains(&format!("PARTITION BY HASH ({column})")));
            for index in 0..3 {
                assert!(ddl.contains(&format!(
                    "{table}_shard_{index} PARTITION OF {table} FOR VALUES WITH (MODULUS 3, REMAINDER {index}) SERVER tsunagu_shard_{index}"
                )));
            }
        }
    }
}
