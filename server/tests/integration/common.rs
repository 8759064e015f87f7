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
    /// The configuration the server runs with.
    pub config: server::Config,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    admin: tokio::sync::OnceCell<reqwest::Client>,
    /// Data directory and database that this server created, and that are
    /// deleted when it stops; `None` for a server started beside another.
    _data_dir: Option<tempfile::TempDir>,
    _database: Option<TestDatabase>,
}

impl TestServer {
    /// Starts a server whose public URL is its own loopback address.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server with a new database and data directory, after
    /// `configure` has changed the default configuration, for example the
    /// sign-in delays.
    pub async fn start_with(configure: impl FnOnce(&mut server::Config)) -> Self {
        let database = TestDatabase::create().await;
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let unbound = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut config = server::Config {
            database_url: Some(database.url.clone()),
            site_root: Some(data_dir.path().join("site")),
            ..server::Config::local(unbound, data_dir.path().to_path_buf())
        };
        configure(&mut config);
        let mut server = Self::serve(config).await;
        server._data_dir = Some(data_dir);
        server._database = Some(database);
        server
    }

    /// Starts a second server on another port with `first`'s
    /// configuration: the same database and data directory, so the same
    /// master key, as two instances behind a load balancer. Drop it before
    /// `first`, which owns the database.
    pub async fn start_beside(first: &TestServer) -> Self {
        Self::serve(first.config.clone()).await
    }

    /// Binds a loopback port, opens the database and serves until drop.
    async fn serve(mut config: server::Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().expect("local address");
        config.listen = addr;
        let state = server::prepare(&config).await.expect("database opens and migrates");
        let (shutdown, receiver) = tokio::sync::oneshot::channel::<()>();
        let serve_state = state.clone();
        let serve_config = config.clone();
        tokio::spawn(async move {
            let stop = async move {
                let _ = receiver.await;
            };
            server::serve_on(listener, &serve_config, serve_state, stop).await.expect("server runs");
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        Self {
            base_url: format!("http://{addr}"),
            state,
            http,
            config,
            shutdown: Some(shutdown),
            admin: tokio::sync::OnceCell::new(),
            _data_dir: None,
            _database: None,
        }
    }

    /// Returns an HTTP client that neither follows redirects nor keeps
    /// cookies, and connects from `source`, a loopback address such as
    /// 127.0.0.2. The server then sees a client address of its own.
    pub fn client_from(source: std::net::IpAddr) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(source)
            .build()
            .expect("HTTP client")
    }

    /// Returns the database the server uses.
    pub fn db(&self) -> &DatabaseConnection {
        &self.state.db
    }

    /// Returns an HTTP client that carries the session cookie of a console
    /// admin. The first call creates the admin `operator` and signs in
    /// through the real sign-in form; later calls reuse that session.
    pub async fn admin_client(&self) -> reqwest::Client {
        self.admin
            .get_or_init(|| async {
                let cookie = sign_in_admin(self, ADMIN_USERNAME, ADMIN_PASSWORD, true).await;
                let mut headers = reqwest::header::HeaderMap::new();
                headers.insert(
                    reqwest::header::COOKIE,
                    reqwest::header::HeaderValue::from_str(&cookie).expect("cookie is a header value"),
                );
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .default_headers(headers)
                    .build()
                    .expect("HTTP client")
            })
            .await
            .clone()
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

/// User name of the admin that [`TestServer::admin_client`] creates.
pub const ADMIN_USERNAME: &str = "operator";
/// Password of that admin.
pub const ADMIN_PASSWORD: &str = "correct horse battery";

/// Returns the `name=value` pair of cookie `name` from a response's
/// `Set-Cookie` headers.
pub fn set_cookie_pair(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// Returns the value of the hidden `csrf_token` field of a form page.
pub fn csrf_field(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("the page has a csrf_token field") + marker.len();
    let end = html[start..].find('"').expect("the csrf_token value ends") + start;
    html[start..end].to_owned()
}

/// Signs in to the console through the sign-in form and returns the
/// session cookie as `name=value`. With `create`, first creates the admin
/// through the service that `latch admin create` uses.
pub async fn sign_in_admin(server: &TestServer, username: &str, password: &str, create: bool) -> String {
    if create {
        app::ssr::admins::create_admin(server.db(), username, password, app::ssr::now())
            .await
            .expect("admin is created");
    }
    let page = server.http.get(server.url("/console/sign-in")).send().await.expect("sign-in page");
    let form_cookie = set_cookie_pair(&page, "latch_console_form").expect("the sign-in page sets its form cookie");
    let csrf = csrf_field(&page.text().await.expect("sign-in page body"));
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf_token", &csrf)
        .append_pair("username", username)
        .append_pair("password", password)
        .append_pair("next", "/console")
        .finish();
    let response = server
        .http
        .post(server.url("/console/sign-in"))
        .header(reqwest::header::COOKIE, form_cookie)
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("sign-in post");
    assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER, "the admin signs in");
    set_cookie_pair(&response, "latch_console").expect("sign-in sets the session cookie")
}
