//! Throw-away databases for tests, on SQLite or PostgreSQL.
//!
//! `LATCH_TEST_BACKEND` picks the backend: `sqlite` (the default) makes a
//! file in a temporary folder; `postgres` creates a database with a random
//! name on `LATCH_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and drops it when the
//! guard goes out of scope. Nothing falls back silently: an unreachable
//! PostgreSQL fails the test.

use sea_orm::{ConnectionTrait, Database};

/// Default server for PostgreSQL test databases.
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that exists until this value is dropped.
pub struct TestDatabase {
    /// Connection URL of the database.
    pub url: String,
    /// Backend of the database: `sqlite` or `postgres`.
    pub backend: &'static str,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// Creates an empty database on the backend that `LATCH_TEST_BACKEND`
    /// names.
    pub async fn create() -> Self {
        match std::env::var("LATCH_TEST_BACKEND").as_deref() {
            Ok("postgres") => Self::create_postgres().await,
            Ok("sqlite") | Err(_) => Self::create_sqlite(),
            Ok(other) => panic!("LATCH_TEST_BACKEND={other} is not a backend; use sqlite or postgres"),
        }
    }

    fn create_sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory for the SQLite file");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("latch.db").display());
        Self {
            url,
            backend: "sqlite",
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    async fn create_postgres() -> Self {
        let admin_url = std::env::var("LATCH_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
        let name = format!("latch_test_{}", super::ids::new_row_id());
        let admin = Database::connect(&admin_url)
            .await
            .unwrap_or_else(|error| panic!("cannot reach PostgreSQL at {admin_url}: {error}"));
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|error| panic!("cannot create test database {name}: {error}"));
        let _ = admin.close().await;
        let base = admin_url.rsplit_once('/').map(|(base, _)| base).unwrap_or(&admin_url);
        Self {
            url: format!("{base}/{name}"),
            backend: "postgres",
            cleanup: Cleanup::Postgres { admin_url, name },
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Cleanup::Postgres { admin_url, name } = &self.cleanup else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop runs inside the test's runtime, so the cleanup gets a thread
        // and a runtime of its own.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async {
                if let Ok(admin) = Database::connect(&admin_url).await {
                    let _ = admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}
