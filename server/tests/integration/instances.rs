//! Two Latch instances on different ports that share one database and one
//! public URL, as behind a load balancer. A flow started at one instance
//! must finish at the other, both must publish the same keys, and races
//! between them must resolve as they do inside one instance.
//!
//! The backend comes from `LATCH_TEST_BACKEND`, through [`TestDatabase`].

use app::model::ApplicationKind;
use app::ssr::AppState;
use app::ssr::applications::{NewApplication, create_application, set_redirect_uris};
use app::ssr::codes::{CodeGrant, issue_code};
use app::ssr::crypto::MasterKey;
use app::ssr::entities::{application_secret, refresh_token, refresh_token_family, signing_key, user};
use app::ssr::grants::refresh_token_key;
use app::ssr::ids::sha256_hex;
use app::ssr::testing::TestDatabase;
use crate::browser::location;
use crate::common::{csrf_field, set_cookie_pair};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// The public URL that every instance of a pair is started with.
pub const PUBLIC_URL: &str = "https://login.example.com";
/// The issuer that follows from [`PUBLIC_URL`].
pub const ISSUER: &str = "https://login.example.com/oidc";
/// Redirect URI of the test application.
pub const CALLBACK: &str = "https://chat.openai.com/aip/plugin-5a1d/oauth/callback";

/// One in-process Latch server.
pub struct Instance {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// The instance's own state and connection pool.
    pub state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Instance {
    /// Opens the database through `server::prepare` and serves on a new
    /// loopback port.
    async fn start(database_url: &str, site_root: &Path) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().expect("local address");
        let config = server::Config {
            public_url: Some(url::Url::parse(PUBLIC_URL).expect("public URL parses")),
            database_url: Some(database_url.to_owned()),
            site_root: Some(site_root.to_path_buf()),
            ..server::Config::local(addr, site_root.to_path_buf())
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
        Self {
            base_url: format!("http://{addr}"),
            state,
            shutdown: Some(shutdown),
        }
    }

    /// Absolute URL of `path` on this instance.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Instances A and B on one database.
struct Pair {
    a: Instance,
    b: Instance,
    http: reqwest::Client,
    _database: TestDatabase,
    _dir: tempfile::TempDir,
}

impl Pair {
    async fn start() -> Self {
        let database = TestDatabase::create().await;
        let dir = tempfile::tempdir().expect("temporary directory");
        let a = Instance::start(&database.url, dir.path()).await;
        let b = Instance::start(&database.url, dir.path()).await;
        Self {
            a,
            b,
            http: client(),
            _database: database,
            _dir: dir,
        }
    }

    fn db(&self) -> &DatabaseConnection {
        &self.a.state.db
    }
}

/// Builds an HTTP client that neither follows redirects nor keeps cookies.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

/// A registered ChatGPT plugin: App ID and secret.
#[derive(Clone, Debug)]
pub struct App {
    pub id: String,
    pub secret: String,
}

/// Registers a ChatGPT plugin that always receives a refresh token, its
/// secret sealed with `master_key`.
pub async fn register_app(db: &DatabaseConnection, master_key: &MasterKey) -> App {
    let now = app::ssr::now();
    let input = NewApplication {
        name: "Weather plugin".into(),
        kind: ApplicationKind::ChatgptPlugin,
        redirect_uris: Vec::new(),
        always_issue_refresh_token: true,
    };
    let details = create_application(db, master_key, input, now).await.expect("application created");
    set_redirect_uris(db, &details.id, &[CALLBACK.to_owned()], now)
        .await
        .expect("redirect URI saved");
    App {
        id: details.id,
        secret: details.secrets[0].value.clone(),
    }
}

/// Inserts a user without a usable password and returns its id.
pub async fn insert_user(db: &DatabaseConnection, username: &str) -> String {
    let id = app::ssr::ids::new_row_id();
    user::ActiveModel {
        id: Set(id.clone()),
        username: Set(username.to_owned()),
        email: Set(Some(format!("{username}@example.com"))),
        name: Set(None),
        password_hash: Set("not used".into()),
        created_at: Set(app::ssr::now()),
        updated_at: Set(app::ssr::now()),
    }
    .insert(db)
    .await
    .expect("user inserted");
    id
}

/// Issues a code for `app` and `user_id` through the service that the
/// sign-in pages use.
pub async fn direct_code(db: &DatabaseConnection, app: &App, user_id: &str) -> String {
    let now = app::ssr::now();
    let grant = CodeGrant {
        application_id: app.id.clone(),
        user_id: user_id.to_owned(),
        redirect_uri: CALLBACK.into(),
        scope: "openid profile offline_access".into(),
        nonce: None,
        code_challenge: None,
        auth_time: now,
        issue_refresh_token: true,
    };
    issue_code(db, grant, now).await.expect("code issued")
}

/// Form-encodes `pairs`.
pub fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// Posts a form to `url` with an optional `Cookie` header.
pub async fn post(http: &reqwest::Client, url: &str, pairs: &[(&str, &str)], cookie: &str) -> reqwest::Response {
    http.post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookie)
        .body(form(pairs))
        .send()
        .await
        .expect("POST is answered")
}

/// Returns the status and the JSON body, or `Null` when the body is not JSON.
pub async fn status_and_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body read");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Redeems `code` at `token_url`.
pub async fn redeem(http: &reqwest::Client, token_url: &str, app: &App, code: &str) -> (u16, Value) {
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("client_id", app.id.as_str()),
        ("client_secret", app.secret.as_str()),
    ];
    status_and_json(post(http, token_url, &params, "").await).await
}

/// Exchanges `token` at `token_url`.
pub async fn refresh(http: &reqwest::Client, token_url: &str, app: &App, token: &str) -> (u16, Value) {
    let params = [
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", app.id.as_str()),
        ("client_secret", app.secret.as_str()),
    ];
    status_and_json(post(http, token_url, &params, "").await).await
}

/// `name=value` of every `Set-Cookie` of `response`.
fn set_cookies(response: &reqwest::Response) -> Vec<(String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|text| text.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

fn input_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no input named {name} in {html}"));
    let rest = &html[start..];
    let value_start = rest.find("value=\"").expect("input has a value") + "value=\"".len();
    let value_end = rest[value_start..].find('"').expect("value is quoted");
    rest[value_start..value_start + value_end].to_owned()
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url).expect("absolute URL").query_pairs().into_owned().collect()
}

fn authorize_path(app: &App, state: &str, nonce: &str, prompt: Option<&str>) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", app.id.as_str()),
        ("redirect_uri", CALLBACK),
        ("scope", "openid profile email offline_access"),
        ("state", state),
        ("nonce", nonce),
    ];
    if let Some(prompt) = prompt {
        pairs.push(("prompt", prompt));
    }
    format!("/oidc/auth?{}", form(&pairs))
}

/// Starts an authorization at `start` and reads the sign-in page there.
/// Returns the interaction id, the CSRF token and the browser cookie.
async fn open_sign_in(http: &reqwest::Client, start: &Instance, path: &str, cookie: &str) -> (String, String, String) {
    let response = http.get(start.url(path)).header("cookie", cookie).send().await.unwrap();
    assert_eq!(response.status(), 303, "authorization request at {}", start.base_url);
    let sign_in = location(&response);
    assert!(sign_in.starts_with("/sign-in?interaction="), "{sign_in}");
    let browser = set_cookies(&response)
        .into_iter()
        .find(|(name, _)| name == "latch_browser")
        .map(|(_, value)| value)
        .expect("browser cookie set");
    let cookie = format!("{cookie}; latch_browser={browser}");
    let page = http.get(start.url(&sign_in)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    (input_value(&html, "interaction"), input_value(&html, "csrf_token"), browser)
}

/// Returns the code of a redirect to [`CALLBACK`] and checks `state` and `iss`.
fn code_of_callback(response: &reqwest::Response, state: &str) -> String {
    assert_eq!(response.status(), 303);
    let target = location(response);
    assert!(target.starts_with(CALLBACK), "{target}");
    let query = query_of(&target);
    assert_eq!(query.get("state").map(String::as_str), Some(state));
    assert_eq!(query.get("iss").map(String::as_str), Some(ISSUER));
    query.get("code").expect("callback carries a code").clone()
}

async fn jwks(http: &reqwest::Client, base_url: &str) -> Value {
    let response = http.get(format!("{base_url}/oidc/jwks")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Verifies the signature of `jwt` with the matching key of `key_set`
/// and returns its claims.
fn verify_with(key_set: &Value, jwt: &str) -> Value {
    let header = jsonwebtoken::decode_header(jwt).expect("JWT header");
    let kid = header.kid.expect("JWT names its key");
    let jwk = key_set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("key {kid} is not published"));
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_aud = false;
    validation.set_issuer(&[ISSUER]);
    jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .expect("signature verifies with the other instance's key set")
        .claims
}

#[tokio::test]
async fn authorization_crosses_instances() {
    let pair = Pair::start().await;
    let http = &pair.http;
    let app = register_app(pair.db(), &pair.a.state.master_key).await;

    // Registration: the request and the page come from A, the form goes to B.
    let (interaction, csrf, browser) =
        open_sign_in(http, &pair.a, &authorize_path(&app, "first", "nonce-1", None), "").await;
    let cookie = format!("latch_browser={browser}");
    let fields = [
        ("interaction", interaction.as_str()),
        ("csrf_token", csrf.as_str()),
        ("username", "grace"),
        ("email", "grace@example.com"),
        ("password", "a long enough secret"),
        ("password_confirmation", "a long enough secret"),
    ];
    let response = post(http, &pair.b.url("/register"), &fields, &cookie).await;
    let session = set_cookies(&response)
        .into_iter()
        .find(|(name, _)| name == "latch_session")
        .map(|(_, value)| value)
        .expect("B set a session cookie");
    let code_from_b = code_of_callback(&response, "first");

    // B's code is redeemed at A.
    let (status, from_a) = redeem(http, &pair.a.url("/oidc/token"), &app, &code_from_b).await;
    assert_eq!(status, 200, "{from_a}");

    // Sign-in: the request and the page come from B, the form goes to A.
    let cookie = format!("latch_browser={browser}; latch_session={session}");
    let (interaction, csrf, _) =
        open_sign_in(http, &pair.b, &authorize_path(&app, "second", "nonce-2", Some("login")), &cookie).await;
    let fields = [
        ("interaction", interaction.as_str()),
        ("csrf_token", csrf.as_str()),
        ("login", "grace"),
        ("password", "a long enough secret"),
    ];
    let response = post(http, &pair.a.url("/sign-in"), &fields, &cookie).await;
    let code_from_a = code_of_callback(&response, "second");

    // A's code is redeemed at B.
    let (status, from_b) = redeem(http, &pair.b.url("/oidc/token"), &app, &code_from_a).await;
    assert_eq!(status, 200, "{from_b}");

    // ID tokens of each instance verify with the other's key set and name
    // the shared issuer.
    let (keys_a, keys_b) = (jwks(http, &pair.a.base_url).await, jwks(http, &pair.b.base_url).await);
    assert_eq!(keys_a, keys_b, "both instances publish the same keys");
    let claims = verify_with(&keys_b, from_a["id_token"].as_str().unwrap());
    assert_eq!(claims["nonce"], "nonce-1");
    assert_eq!(claims["aud"], app.id.as_str());
    let claims = verify_with(&keys_a, from_b["id_token"].as_str().unwrap());
    assert_eq!(claims["nonce"], "nonce-2");

    // Access tokens of one instance are accepted by the other.
    for (instance, tokens) in [(&pair.b, &from_a), (&pair.a, &from_b)] {
        let userinfo = http
            .get(instance.url("/oidc/me"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(userinfo.status(), 200, "userinfo at {}", instance.base_url);
        let body: Value = userinfo.json().await.unwrap();
        assert_eq!(body["preferred_username"], "grace", "{body}");
    }

    // A refresh token from A works at B, and its successor at A.
    let first = from_a["refresh_token"].as_str().unwrap();
    let (status, renewed) = refresh(http, &pair.b.url("/oidc/token"), &app, first).await;
    assert_eq!(status, 200, "{renewed}");
    let second = renewed["refresh_token"].as_str().unwrap();
    assert_ne!(second, first);
    let (status, renewed_again) = refresh(http, &pair.a.url("/oidc/token"), &app, second).await;
    assert_eq!(status, 200, "{renewed_again}");
    assert_ne!(renewed_again["refresh_token"], second);

    // A second redemption of A's code, now at A, is refused.
    let (status, again) = redeem(http, &pair.a.url("/oidc/token"), &app, &code_from_a).await;
    assert_eq!((status, again["error"].as_str()), (400, Some("invalid_grant")));

    // Both instances describe the same issuer.
    for instance in [&pair.a, &pair.b] {
        let metadata: Value = http
            .get(instance.url("/oidc/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(metadata["issuer"], ISSUER);
        assert_eq!(metadata["token_endpoint"], format!("{ISSUER}/token"));
    }
}

/// Sends `bodies` to the token endpoints of both instances at once,
/// alternating between them, and returns every response.
async fn burst(pair: &Pair, bodies: Vec<String>) -> Vec<(u16, Value)> {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, body) in bodies.into_iter().enumerate() {
        let instance = if index % 2 == 0 { &pair.a } else { &pair.b };
        let url = instance.url("/oidc/token");
        let http = pair.http.clone();
        tasks.spawn(async move {
            let response = http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .expect("token request answered");
            status_and_json(response).await
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.expect("task finished"));
    }
    answers
}

#[tokio::test]
async fn cross_instance_redemptions_succeed_once() {
    let pair = Pair::start().await;
    let app = register_app(pair.db(), &pair.a.state.master_key).await;
    let user_id = insert_user(pair.db(), "ada").await;
    for round in 0..50 {
        let code = direct_code(pair.db(), &app, &user_id).await;
        let params = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("client_id", app.id.as_str()),
            ("client_secret", app.secret.as_str()),
        ];
        let answers = burst(&pair, vec![form(&params); 20]).await;
        let mut winners = Vec::new();
        for (status, body) in &answers {
            match status {
                200 => winners.push(body.clone()),
                400 => assert_eq!(body["error"], "invalid_grant", "round {round}"),
                other => panic!("round {round}: status {other}: {body}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {answers:?}");

        // The winning response carries the code's only refresh token. A
        // losing request that arrives after the win revokes the code's
        // family, as RFC 6749 section 4.1.2 recommends for a reused code.
        let rows = refresh_token::Entity::find()
            .filter(refresh_token::Column::CodeHash.eq(sha256_hex(&code)))
            .all(pair.db())
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "round {round}: one refresh token per code");
        let token = winners[0]["refresh_token"].as_str().expect("refresh token in the response");
        assert_eq!(rows[0].token_hash, refresh_token_key(token), "round {round}");
    }
}

#[tokio::test]
async fn cross_instance_refreshes_yield_one_pair() {
    let pair = Pair::start().await;
    let app = register_app(pair.db(), &pair.a.state.master_key).await;
    let user_id = insert_user(pair.db(), "ada").await;
    let code = direct_code(pair.db(), &app, &user_id).await;
    let (status, tokens) = redeem(&pair.http, &pair.a.url("/oidc/token"), &app, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let mut current = tokens["refresh_token"].as_str().unwrap().to_owned();
    let family = refresh_token::Entity::find_by_id(refresh_token_key(&current))
        .one(pair.db())
        .await
        .unwrap()
        .expect("first refresh token stored")
        .family_id;

    for round in 0..50 {
        let params = [
            ("grant_type", "refresh_token"),
            ("refresh_token", current.as_str()),
            ("client_id", app.id.as_str()),
            ("client_secret", app.secret.as_str()),
        ];
        let answers = burst(&pair, vec![form(&params); 20]).await;
        let mut successors = BTreeSet::new();
        for (status, body) in &answers {
            match status {
                200 => {
                    successors.insert(body["refresh_token"].as_str().expect("refresh token").to_owned());
                }
                400 => assert_eq!(body["error"], "invalid_grant", "round {round}"),
                other => panic!("round {round}: status {other}: {body}"),
            }
        }
        assert_eq!(successors.len(), 1, "round {round}: every success returns the same token: {answers:?}");
        let successor = successors.into_iter().next().unwrap();

        let rows = refresh_token::Entity::find().all(pair.db()).await.unwrap();
        let live: Vec<_> = rows
            .iter()
            .filter(|row| row.revoked_at.is_none() && row.rotated_at.is_none())
            .collect();
        assert_eq!(live.len(), 1, "round {round}: one live refresh token");
        assert_eq!(live[0].token_hash, refresh_token_key(&successor), "round {round}");
        let family_row = refresh_token_family::Entity::find_by_id(family.clone())
            .one(pair.db())
            .await
            .unwrap()
            .expect("the family has a row");
        assert_eq!(family_row.revoked_at, None, "round {round}: the family stays live");
        let families: HashSet<_> = rows.iter().map(|row| row.family_id.as_str()).collect();
        assert_eq!(families, HashSet::from([family.as_str()]), "round {round}: one family");
        assert_eq!(rows.len(), round + 2, "round {round}: one row per rotation");
        current = successor;
    }
}

#[tokio::test]
async fn client_changes_apply_across_instances() {
    let pair = Pair::start().await;
    let app = register_app(pair.db(), &pair.a.state.master_key).await;
    let user_id = insert_user(pair.db(), "ada").await;
    let code = direct_code(pair.db(), &app, &user_id).await;
    let token_url = pair.a.url("/oidc/token");
    let (status, tokens) = redeem(&pair.http, &token_url, &app, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, tokens) = refresh(&pair.http, &token_url, &app, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{tokens}");
    let current = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Instance B's database handle replaces the secret that instance A has
    // just accepted, and sets an audience.
    let db = &pair.b.state.db;
    application_secret::Entity::delete_many()
        .filter(application_secret::Column::ApplicationId.eq(app.id.as_str()))
        .exec(db)
        .await
        .unwrap();
    let secret_id = app::ssr::ids::new_row_id();
    let sealed = pair
        .b
        .state
        .master_key
        .seal(&app::ssr::crypto::application_secret_context(&secret_id), "replacement-secret");
    application_secret::ActiveModel {
        id: Set(secret_id),
        application_id: Set(app.id.clone()),
        name: Set("Replacement".into()),
        value: Set(sealed),
        expires_at: Set(None),
        created_at: Set(app::ssr::now()),
    }
    .insert(db)
    .await
    .unwrap();
    app::ssr::applications::set_audience(db, &app.id, "https://api.example.com", app::ssr::now())
        .await
        .unwrap();

    let (status, body) = refresh(&pair.http, &token_url, &app, &current).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
    let replaced = App {
        id: app.id.clone(),
        secret: "replacement-secret".into(),
    };
    let (status, tokens) = refresh(&pair.http, &token_url, &replaced, &current).await;
    assert_eq!(status, 200, "{tokens}");
    let key_set = jwks(&pair.http, &pair.a.base_url).await;
    let claims = verify_with(&key_set, tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "https://api.example.com");
}

/// A `latch serve` child process.
pub struct LatchProcess {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    child: tokio::process::Child,
    log: PathBuf,
}

impl LatchProcess {
    /// Starts `latch` with `database_url` on a free loopback port, logging
    /// to `log`. `master_key` is the base64 value of `LATCH_MASTER_KEY`;
    /// without it the key comes from the file in `data_dir`. Returns
    /// without waiting for it to listen.
    pub fn spawn(database_url: &str, data_dir: &Path, master_key: Option<&str>, log: PathBuf) -> Self {
        // The port is found by binding and releasing it. Another program
        // could take it in between, which then fails the start.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_latch"));
        match master_key {
            Some(key) => command.env("LATCH_MASTER_KEY", key),
            None => command.env_remove("LATCH_MASTER_KEY"),
        };
        let child = command
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--public-url")
            .arg(PUBLIC_URL)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--site-root")
            .arg(data_dir.join("site"))
            .arg("--database-url")
            .arg(database_url)
            .env("LATCH_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .expect("latch starts");
        Self {
            base_url: format!("http://127.0.0.1:{port}"),
            child,
            log,
        }
    }

    /// Absolute URL of `path` on this process.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Waits until `/healthz` returns 200. Panics with the process log
    /// when it exits first or takes longer than a minute.
    pub async fn wait_healthy(&mut self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("latch exited with {status}: {}", self.log_text());
            }
            if let Ok(response) = http.get(self.url("/healthz")).send().await
                && response.status() == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "latch did not become healthy: {}", self.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the process to exit by itself and returns its status.
    /// Panics with the process log when it is still running after a
    /// minute.
    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        match tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await {
            Ok(status) => status.expect("exit status read"),
            Err(_) => panic!("latch did not exit: {}", self.log_text()),
        }
    }

    /// Sends SIGKILL and waits for the process to end.
    pub async fn kill_hard(&mut self) {
        self.child.kill().await.expect("SIGKILL delivered");
    }

    /// Reads what the process wrote to standard error so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Starts two `latch` processes on one fresh database at the same moment,
/// five times, and checks that they publish the same single key of each
/// algorithm. With `migrated`, the schema is created first, so that only
/// key creation races.
async fn start_together(migrated: bool) {
    let http = client();
    for round in 0..5 {
        let database = TestDatabase::create().await;
        if migrated {
            let db = app::ssr::db::connect_and_migrate(&database.url).await.expect("schema created");
            let _ = db.close().await;
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
        // Instances that share a database share the master key.
        let (_, master_key) = MasterKey::generate();
        let mut a = LatchProcess::spawn(&database.url, &dir_a, Some(&master_key), dir.path().join("a.log"));
        let mut b = LatchProcess::spawn(&database.url, &dir_b, Some(&master_key), dir.path().join("b.log"));
        a.wait_healthy(&http).await;
        b.wait_healthy(&http).await;

        let (keys_a, keys_b) = (jwks(&http, &a.base_url).await, jwks(&http, &b.base_url).await);
        assert_eq!(keys_a, keys_b, "round {round}: both publish the same keys");
        let mut algs: Vec<_> = keys_a["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["alg"].as_str().unwrap().to_owned())
            .collect();
        algs.sort();
        assert_eq!(algs, ["ES256", "RS256"], "round {round}: one key per algorithm: {keys_a}");

        let db = sea_orm::Database::connect(&database.url).await.expect("test connection");
        let stored = signing_key::Entity::find().all(&db).await.unwrap();
        let kids: Vec<_> = stored.iter().map(|key| key.kid.as_str()).collect();
        assert_eq!(stored.len(), 2, "round {round}: stored keys {kids:?}");
        let _ = db.close().await;
        a.kill_hard().await;
        b.kill_hard().await;
    }
}

#[tokio::test]
async fn simultaneous_start_on_empty_database() {
    start_together(false).await;
}

#[tokio::test]
async fn simultaneous_start_creates_one_key_per_algorithm() {
    start_together(true).await;
}

/// Opens a fresh database from two tasks of one process at the same
/// moment, ten times, through `server::prepare` as each instance does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_prepare_on_empty_database() {
    for round in 0..10 {
        let database = TestDatabase::create().await;
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = server::Config {
            public_url: Some(url::Url::parse(PUBLIC_URL).unwrap()),
            database_url: Some(database.url.clone()),
            site_root: Some(dir.path().to_path_buf()),
            ..server::Config::local("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf())
        };
        let first = tokio::spawn({
            let config = config.clone();
            async move { server::prepare(&config).await }
        });
        let second = tokio::spawn({
            let config = config.clone();
            async move { server::prepare(&config).await }
        });
        let first = first.await.unwrap().unwrap_or_else(|error| panic!("round {round}: first: {error:#}"));
        let second = second.await.unwrap().unwrap_or_else(|error| panic!("round {round}: second: {error:#}"));

        let keys = signing_key::Entity::find().all(&first.db).await.unwrap();
        let kids: Vec<_> = keys.iter().map(|key| key.kid.as_str()).collect();
        assert_eq!(keys.len(), 2, "round {round}: stored keys {kids:?}");
        let _ = first.db.close().await;
        let _ = second.db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_session_from_one_instance_works_on_the_other() {
    let pair = Pair::start().await;
    let password = "shared console password";
    app::ssr::admins::create_admin(pair.db(), "operator", password, app::ssr::now())
        .await
        .expect("admin created");

    // Sign in at A. The public URL is https, so the cookies carry the
    // __Host- prefix.
    let page = pair.http.get(pair.a.url("/console/sign-in")).send().await.unwrap();
    let form_cookie = set_cookie_pair(&page, "__Host-latch_console_form").expect("the page sets its form cookie");
    let csrf = csrf_field(&page.text().await.unwrap());
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("csrf_token", csrf.as_str()), ("username", "operator"), ("password", password)])
        .finish();
    let signed_in = pair
        .http
        .post(pair.a.url("/console/sign-in"))
        .header("cookie", form_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let session = set_cookie_pair(&signed_in, "__Host-latch_console").expect("sign-in sets the session cookie");

    // B accepts the session for pages and server functions.
    let console = pair.http.get(pair.b.url("/console")).header("cookie", &session).send().await.unwrap();
    assert_eq!(console.status(), 200);
    let html = console.text().await.unwrap();
    assert!(html.contains("Signed in as operator"));
    let settings = pair
        .http
        .post(pair.b.url("/api/get_settings"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(settings.status(), 200);

    // Signing out at B ends the session at A too.
    let out = pair
        .http
        .post(pair.b.url("/console/sign-out"))
        .header("cookie", &session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={}", csrf_field(&html)))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let after = pair.http.get(pair.a.url("/console")).header("cookie", &session).send().await.unwrap();
    assert_eq!(after.status(), 303);
    assert!(location(&after).starts_with("/console/sign-in"));
}
