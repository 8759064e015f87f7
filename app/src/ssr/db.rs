//! Opening the database and bringing its schema up to date.

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use std::time::Duration;

/// How long a SQLite write waits for another writer before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections to a SQLite file. SQLite runs one write at a time, and a
/// writer that finds the file locked sleeps in SQLite's busy handler for 1
/// to 100 ms before it tries again. With one connection, requests queue in
/// the pool instead, in order and without sleeping, and the connection's
/// page cache stays valid while no other process writes the file.
const SQLITE_CONNECTIONS: u32 = 1;

/// Connections to PostgreSQL per instance.
const POSTGRES_CONNECTIONS: u32 = 16;

/// How long a PostgreSQL connection may sit unused in the pool before it
/// is pinged on its next use.
const PING_AFTER_IDLE: Duration = Duration::from_secs(10);

/// Connects to `url` (`sqlite://...` or `postgres://...`) and runs every
/// pending migration.
///
/// SQLite files are created when missing and opened in WAL mode with
/// `synchronous = NORMAL`: a committed write survives a crash of the
/// process, though not necessarily a power failure of the machine.
/// Temporary tables and statement journals are kept in memory.
pub async fn connect_and_migrate(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url);
    // By default sqlx pings a pooled connection every time it hands it out,
    // one more round trip per statement. A SQLite file has nothing for the
    // ping to detect. A PostgreSQL connection is pinged only after it has
    // been idle for PING_AFTER_IDLE, which catches connections that the
    // server or a proxy closed while they were unused.
    if url.starts_with("sqlite:") {
        options
            .test_before_acquire(false)
            .max_connections(SQLITE_CONNECTIONS);
    } else {
        options
            .test_before_acquire_if_idle_for(PING_AFTER_IDLE)
            .max_connections(POSTGRES_CONNECTIONS);
    }
    options
        .sqlx_logging(false)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .map_sqlx_sqlite_opts(|opts| {
            opts.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true)
                // Statement journals of multi-statement transactions, such
                // as a batch of refresh token rotations, then stay in memory
                // instead of spilling to a temporary file.
                .pragma("temp_store", "memory")
        });
    let db = connect(options).await?;
    migrate(&db).await?;
    Ok(db)
}

/// Number of attempts start-up makes to open or migrate a database that
/// another instance is using at the same moment.
const MIGRATION_ATTEMPTS: u32 = 10;

/// Opens the pool. Switching a new SQLite file to WAL mode takes a lock
/// that SQLite's busy timeout does not wait for, so a second instance
/// starting at the same moment gets "database is locked" and tries again.
async fn connect(options: ConnectOptions) -> Result<DatabaseConnection, DbErr> {
    let mut attempt = 1;
    loop {
        match Database::connect(options.clone()).await {
            Ok(db) => return Ok(db),
            Err(error) if attempt < MIGRATION_ATTEMPTS && error.to_string().contains("database is locked") => {
                tracing::warn!(%error, attempt, "the database is locked by another process; retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Applies pending migrations. When several instances start together on a
/// fresh database, all but one fail on tables the first has just created.
/// A loser waits, then finds those migrations recorded as applied and
/// continues with what is left.
///
/// NOTE: on PostgreSQL each migration runs in a transaction. On SQLite it
/// does not, so a crash in the middle of a migration can leave a schema
/// that a retry cannot repair. Any error is retried, so a real failure is
/// reported about nine seconds late.
async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    let mut attempt = 1;
    loop {
        match Migrator::up(db, None).await {
            Ok(()) => return Ok(()),
            Err(error) if attempt < MIGRATION_ATTEMPTS => {
                tracing::warn!(%error, attempt, "migration failed, probably applied concurrently by another instance; retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}
