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

/// Write-ahead log frames (pages) after which the pool's SQLite connection
/// copies the log into the database file itself, inside the COMMIT of
/// whichever request crossed the line. The background checkpoints of
/// [`start_background_checkpoints`] normally keep the log far below this,
/// so this only bounds the log when they fall behind or stop.
const SQLITE_FALLBACK_CHECKPOINT_PAGES: u32 = 10_000;

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
                .pragma("wal_autocheckpoint", SQLITE_FALLBACK_CHECKPOINT_PAGES.to_string())
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

/// Time between two rounds of background checkpoints of a SQLite file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);

/// Maximum number of checkpoints in one round.
const CHECKPOINT_PASSES: u32 = 8;

/// Shortest time between two warnings about failed background checkpoints.
const FAILURE_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Starts copying the write-ahead log of the SQLite file at `url` into the
/// database file from a connection of its own, ten times a second. Does
/// nothing for PostgreSQL or an in-memory database.
///
/// SQLite's own checkpoint runs inside the COMMIT that takes the log past
/// its threshold, on the connection that committed. Latch has one
/// connection to the file, so every request queued behind that COMMIT
/// waited for the page copies and two `fsync` calls. Here they run on
/// another thread.
///
/// A `PASSIVE` checkpoint does not wait for other connections (SQLite's
/// documentation of `wal_checkpoint`), and it copies the frames that were
/// in the log when it started. The log goes back to its start at the next
/// write only if every frame was copied before that write began. So each
/// round runs up to [`CHECKPOINT_PASSES`] checkpoints and stops at the
/// first one that finds no frame committed since the previous one. The
/// later passes of a round have little to copy.
pub async fn start_background_checkpoints(url: &str) -> Result<(), DbErr> {
    use sea_orm::sqlx::{ConnectOptions as _, Connection as _};
    use sea_orm::sqlx::sqlite::SqliteConnectOptions;
    use std::str::FromStr;

    if !url.starts_with("sqlite:") {
        return Ok(());
    }
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|error| DbErr::Custom(format!("invalid SQLite URL for checkpoints: {error}")))?
        .create_if_missing(false)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .disable_statement_logging();
    let mut connection = options
        .connect()
        .await
        .map_err(|error| DbErr::Custom(format!("cannot open the SQLite checkpoint connection: {error}")))?;
    let mode: String = sea_orm::sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut connection)
        .await
        .map_err(|error| DbErr::Custom(format!("cannot read the SQLite journal mode: {error}")))?;
    if !mode.eq_ignore_ascii_case("wal") {
        let _ = connection.close().await;
        return Ok(());
    }
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(CHECKPOINT_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Frames in the log at the last pass. Kept from one round to the
        // next, so an idle round costs one pass.
        let mut previous_frames = None;
        let mut failures: u64 = 0;
        let mut last_warning: Option<tokio::time::Instant> = None;
        loop {
            ticks.tick().await;
            for _ in 0..CHECKPOINT_PASSES {
                match checkpoint(&mut connection).await {
                    Ok(pass) => {
                        let settled = pass.copied_all() && previous_frames == Some(pass.frames);
                        previous_frames = Some(pass.frames);
                        // A busy pass means another connection is running a
                        // checkpoint, so this round leaves the log to it.
                        if pass.busy || pass.frames == 0 || settled {
                            break;
                        }
                    }
                    Err(error) => {
                        failures += 1;
                        // One warning a minute at most, so a lasting fault
                        // does not write ten lines a second.
                        if last_warning.is_none_or(|at| at.elapsed() >= FAILURE_WARNING_INTERVAL) {
                            tracing::warn!(%error, failures, "a background SQLite checkpoint failed; until one works again, the connection that commits copies the log when it reaches {SQLITE_FALLBACK_CHECKPOINT_PAGES} pages");
                            last_warning = Some(tokio::time::Instant::now());
                        }
                        break;
                    }
                }
            }
        }
    });
    Ok(())
}

/// Outcome of one checkpoint, as `PRAGMA wal_checkpoint` reports it.
#[derive(Debug, Clone, Copy)]
struct CheckpointPass {
    /// Whether another connection's checkpoint kept this one from running.
    busy: bool,
    /// Frames in the log when the checkpoint started.
    frames: i64,
    /// Frames of the log that are in the database file.
    copied: i64,
}

impl CheckpointPass {
    /// Returns whether every frame of the log is in the database file.
    fn copied_all(&self) -> bool {
        !self.busy && self.copied >= self.frames
    }
}

/// Runs one `PASSIVE` checkpoint.
async fn checkpoint(connection: &mut sea_orm::sqlx::SqliteConnection) -> Result<CheckpointPass, sea_orm::sqlx::Error> {
    let (busy, frames, copied): (i64, i64, i64) = sea_orm::sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(connection)
        .await?;
    Ok(CheckpointPass { busy: busy != 0, frames, copied })
}
