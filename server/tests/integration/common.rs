//! Starts a real Latch server on 127.0.0.1:0 for one test, on the
//! database backend that `LATCH_TEST_BACKEND` names (SQLite by default).

#![allow(dead_code)]

use app::ssr::AppState;
use app::ssr::testing::TestDatabase;
use sea_orm::DatabaseConnection;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// A running server with its own database in a temporary directory.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub base_url: String,
    /// The server's state, for reading the database directly.
    pub state: AppState,
    /// HTTP client that neither follows redirects nor keeps cookies.
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _data_dir: tempfile::TempDir,
    _database: TestDatabase,
}

impl TestServer {
    /// Starts a server whose public URL is its own loopback address.
    pub async fn start() -> Self {
        let database = TestDatabase::create().await;
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().expect("local address");
        let config = server::Config {
            listen: addr,
            public_url: None,
            data_dir: data_dir.path().to_path_buf(),
            database_url: Some(database.url.clone()),
            site_root: Some(data_dir.path().join("site")),
        };
        let state = server::prepare(&config).await.expect("database opens and migrates");
        let (shutdown, receiver) = tokio::sync::oneshot::channel::<()>();
        let serve_state = state.clone();
        tokio::spawn(async move {
            let stop = async move {
                let _ = receiver.await;
            };
            server::serve_on(listener, &config, serve_state, stop).await.expect("server runs");
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        Self {
            base_url: format!("http://{addr}"),
            state,
            http,
            shutdown: Some(shutdown),
            _data_dir: data_dir,
            _database: database,
        }
    }

    /// Returns the database the server uses.
    pub fn db(&self) -> &DatabaseConnection {
        &self.state.db
    }

    /// Absolute URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
