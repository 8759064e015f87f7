//! Background checkpoints of a SQLite file: the write-ahead log reaches
//! the database file without a request's COMMIT copying it, and the log
//! starts again from its beginning afterwards.

#![cfg(feature = "ssr")]

use app::ssr::db;
use sea_orm::ConnectionTrait;
use std::path::Path;
use std::time::{Duration, Instant};

/// Pages the test writes, far below the log size at which the pool's own
/// connection would checkpoint.
const PAGES: u64 = 400;

const PAGE_SIZE: u64 = 4096;

/// Returns the checkpoint sequence number in the header of the log file.
/// SQLite increments it each time the log starts again from its beginning.
/// It is stored big-endian in bytes 12 to 15 (sqlite.org/walformat.html).
fn log_sequence(path: &Path) -> u32 {
    let header = std::fs::read(path).unwrap();
    u32::from_be_bytes(header[12..16].try_into().unwrap())
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

#[tokio::test]
async fn log_copied_and_restarted_in_background() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latch.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let pool = db::connect_and_migrate(&url).await.unwrap();
    pool.execute_unprepared("CREATE TABLE filler (payload BLOB NOT NULL)")
        .await
        .unwrap();
    let insert = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {PAGES}) \
         INSERT INTO filler (payload) SELECT randomblob({}) FROM n",
        PAGE_SIZE - 100
    );
    pool.execute_unprepared(&insert).await.unwrap();
    assert!(
        file_size(&path) < PAGES * PAGE_SIZE,
        "the rows were copied to the database file before any background checkpoint ran"
    );

    let first_sequence = log_sequence(&dir.path().join("latch.db-wal"));

    db::start_background_checkpoints(&url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while file_size(&path) < PAGES * PAGE_SIZE {
        assert!(
            Instant::now() < deadline,
            "the log was not copied into the database file within 10 s: {} bytes",
            file_size(&path)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The first write that begins after a round of checkpoints has copied
    // every frame starts the log again.
    let log = dir.path().join("latch.db-wal");
    while log_sequence(&log) == first_sequence {
        assert!(
            Instant::now() < deadline,
            "the log did not start again within 10 s of background checkpoints"
        );
        pool.execute_unprepared("INSERT INTO filler (payload) VALUES (x'00')")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn no_checkpoints_for_postgres_urls() {
    // Nothing is opened for a PostgreSQL URL, so this needs no server.
    db::start_background_checkpoints("postgres://nobody@127.0.0.1:1/none")
        .await
        .unwrap();
}
