//! Secrets at rest: what a copy of the database reveals after a full
//! flow, the start-up check of the master key, and the sealing of rows
//! that were stored in plain text.
//!
//! The backend comes from `LATCH_TEST_BACKEND`. On SQLite a copy of the
//! database is the bytes of its files; on PostgreSQL it is the text of
//! every row of every table.

use crate::browser::{Browser, authorize_path, input_value, location, query_of};
use crate::common::TestServer;
use crate::fixtures::{self, CALLBACK, Client, add_secret, confidential_client};
use crate::instances::{self, LatchProcess, client, insert_user};
use app::ssr::applications::{self, NewApplication};
use app::ssr::at_rest::MASTER_KEY_CHECK;
use app::ssr::crypto::{self, MasterKey};
use app::ssr::entities::{application, application_secret, setting, signing_key};
use app::ssr::keys;
use app::ssr::testing::TestDatabase;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, Set,
    Statement,
};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use tokio::net::TcpListener;

/// The OpenAI verification token saved in the dump test.
const VERIFICATION_TOKEN: &str = "verif7c1e9a0b4d2f";
/// The end user's password in the dump test.
const USER_PASSWORD: &str = "plum orchard lantern 42";
/// Start of the error message when the key does not match.
const MISMATCH: &str = "the master key does not match the one the database was sealed with";

/// Tells whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &str) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

/// Returns a copy of the whole database: on SQLite the bytes of the file
/// and of its write-ahead log after a checkpoint, on PostgreSQL the text of
/// every row of every table.
async fn dump(db: &DatabaseConnection) -> Vec<u8> {
    let backend = db.get_database_backend();
    let query = |sql: &str| db.query_all_raw(Statement::from_string(backend, sql.to_owned()));
    match backend {
        DbBackend::Sqlite => {
            query("PRAGMA wal_checkpoint(TRUNCATE)").await.expect("checkpoint runs");
            let files = query("PRAGMA database_list").await.expect("database list");
            let main = files
                .iter()
                .find(|row| row.try_get_by_index::<String>(1).ok().as_deref() == Some("main"))
                .expect("the main database is listed");
            let path = main.try_get_by_index::<String>(2).expect("file name");
            assert!(!path.is_empty(), "the test database is a file");
            let mut bytes = std::fs::read(&path).expect("database file read");
            for suffix in ["-wal", "-journal"] {
                if let Ok(more) = std::fs::read(format!("{path}{suffix}")) {
                    bytes.extend_from_slice(&more);
                }
            }
            bytes
        }
        DbBackend::Postgres => {
            let tables = query("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
                .await
                .expect("table list");
            let tables: Vec<String> = tables
                .iter()
                .map(|row| row.try_get_by_index::<String>(0).expect("table name"))
                .collect();
            for expected in ["application_secrets", "applications", "settings", "signing_keys", "users"] {
                assert!(tables.iter().any(|table| table == expected), "{expected} in {tables:?}");
            }
            let mut text = String::new();
            for table in &tables {
                let rows = query(&format!("SELECT CAST(t AS text) FROM \"{table}\" AS t"))
                    .await
                    .expect("rows read");
                for row in rows {
                    text.push_str(table);
                    text.push(' ');
                    text.push_str(&row.try_get_by_index::<String>(0).expect("row as text"));
                    text.push('\n');
                }
            }
            text.into_bytes()
        }
        other => panic!("no dump for {other:?}"),
    }
}

/// Registers an end user through the sign-in pages of `server` and returns
/// the authorization code of the callback.
async fn register_through_pages(server: &TestServer, client: &Client) -> String {
    let mut browser = Browser::new(server);
    let path = authorize_path(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", CALLBACK),
        ("scope", "openid profile email offline_access"),
        ("state", "at-rest"),
        ("nonce", "n-at-rest"),
    ]);
    let response = browser.get(&path).await;
    assert_eq!(response.status(), 303);
    let sign_in = location(&response);
    let page = browser.get(&sign_in).await;
    assert_eq!(page.status(), 200);
    let interaction = input_value(&page.text().await.unwrap(), "interaction");
    let page = browser.get(&format!("/register?interaction={interaction}")).await;
    assert_eq!(page.status(), 200);
    let csrf = input_value(&page.text().await.unwrap(), "csrf_token");
    let fields = [
        ("interaction", interaction.as_str()),
        ("csrf_token", csrf.as_str()),
        ("username", "ada"),
        ("email", "ada@example.com"),
        ("password", USER_PASSWORD),
        ("password_confirmation", USER_PASSWORD),
    ];
    let response = browser.post_form("/register", &fields).await;
    assert_eq!(response.status(), 303);
    let callback = location(&response);
    assert!(callback.starts_with(CALLBACK), "{callback}");
    query_of(&callback).get("code").expect("callback carries a code").clone()
}

#[tokio::test]
async fn database_copy_reveals_no_secret() {
    let server = TestServer::start().await;
    let key = &server.state.master_key;
    let now = app::ssr::now();
    let client = confidential_client(&server).await;
    add_secret(&server, &client.id, "second-secret-4b7d0e2a9c").await;
    applications::set_manifest_settings(server.db(), key, &client.id, VERIFICATION_TOKEN, "application/json", now)
        .await
        .expect("manifest settings saved");
    let details = applications::get_application(server.db(), key, &client.id)
        .await
        .expect("application read");
    assert_eq!(details.openai_verification_token.as_deref(), Some(VERIFICATION_TOKEN));
    assert_eq!(details.secrets.len(), 2);

    let code = register_through_pages(&server, &client).await;
    let (status, issued) = fixtures::redeem(&server, &client, &code).await;
    assert_eq!(status, 200, "{issued}");
    let first_refresh = issued["refresh_token"].as_str().expect("refresh token").to_owned();
    let (status, refreshed) = fixtures::refresh(&server, &client, &first_refresh).await;
    assert_eq!(status, 200, "{refreshed}");

    let mut hidden: Vec<(String, String)> = vec![
        ("the verification token".into(), VERIFICATION_TOKEN.into()),
        ("the end user's password".into(), USER_PASSWORD.into()),
        ("the authorization code".into(), code.clone()),
        ("the PEM label".into(), "PRIVATE KEY".into()),
    ];
    for secret in &details.secrets {
        hidden.push((format!("client secret {}", secret.id), secret.value.clone()));
    }
    for (label, response) in [("first", &issued), ("refreshed", &refreshed)] {
        for field in ["access_token", "refresh_token", "id_token"] {
            let value = response[field].as_str().unwrap_or_else(|| panic!("{label} response has {field}"));
            hidden.push((format!("{label} {field}"), value.to_owned()));
        }
    }
    let stored_keys = signing_key::Entity::find().all(server.db()).await.unwrap();
    assert_eq!(stored_keys.len(), 2, "one ES256 and one RS256 key");
    for row in &stored_keys {
        let pem = key
            .open(&crypto::signing_key_context(&row.kid), &row.private_key)
            .expect("the private key opens with the server's key");
        let body: Vec<&str> = pem.lines().filter(|line| !line.is_empty() && !line.starts_with("-----")).collect();
        assert!(!body.is_empty());
        for (index, line) in body.iter().enumerate() {
            hidden.push((format!("line {index} of private key {}", row.kid), (*line).to_owned()));
        }
        hidden.push((format!("private key {}", row.kid), body.concat()));
    }

    let copy = dump(server.db()).await;
    // The copy contains the data: the application, the user and sealed
    // values.
    assert!(contains(&copy, &client.id), "the dump holds the App ID");
    assert!(contains(&copy, "ada@example.com"), "the dump holds the user");
    assert!(contains(&copy, crypto::SEALED_PREFIX), "the dump holds sealed values");
    let revealed: Vec<&str> = hidden
        .iter()
        .filter(|(_, value)| contains(&copy, value))
        .map(|(label, _)| label.as_str())
        .collect();
    assert!(revealed.is_empty(), "the database copy reveals {revealed:?}");
}

/// Runs `latch` with `args` on `database_url` and `data_dir`, with
/// `LATCH_MASTER_KEY` set to `master_key` or unset, and returns its output.
fn latch(database_url: &str, data_dir: &Path, master_key: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_latch"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--database-url")
        .arg(database_url)
        .args(args)
        .env("LATCH_LOG", "warn,audit=info")
        .stdin(std::process::Stdio::null());
    match master_key {
        Some(key) => command.env("LATCH_MASTER_KEY", key),
        None => command.env_remove("LATCH_MASTER_KEY"),
    };
    command.output().expect("latch runs")
}

/// Starts `latch`, waits until it exits and checks that it failed with
/// the key mismatch error.
async fn assert_refused(database_url: &str, data_dir: &Path, master_key: Option<&str>, log: &Path) {
    let mut refused = LatchProcess::spawn(database_url, data_dir, master_key, log.to_path_buf());
    let status = refused.wait_exit().await;
    let text = refused.log_text();
    assert!(!status.success(), "latch started with another key: {text}");
    assert!(text.contains(MISMATCH), "{text}");
    assert!(text.contains("master.key"), "the error names the key file: {text}");
    assert!(text.contains("LATCH_MASTER_KEY"), "the error names the variable: {text}");
}

/// Issues a code on the database directly and redeems it at `token_url`
/// with the application's secret.
async fn redeem_new_code(db: &DatabaseConnection, token_url: &str, app: &instances::App, username: &str) {
    let user_id = insert_user(db, username).await;
    let code = instances::direct_code(db, app, &user_id).await;
    let (status, body) = instances::redeem(&client(), token_url, app, &code).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id_token"].is_string(), "{body}");
}

#[tokio::test]
async fn another_master_key_refuses_to_start() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // The first start, from the command line, creates the key file, the
    // check value and the signing keys.
    let output = latch(&database.url, &data, None, &["app", "create", "--name", "Weather", "--redirect-uri", instances::CALLBACK, "--json"]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let created: Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    let app = instances::App {
        id: created["app_id"].as_str().unwrap().to_owned(),
        secret: created["app_secret"].as_str().unwrap().to_owned(),
    };
    assert!(stderr.contains("keys created"), "{stderr}");
    assert!(stderr.contains("es256-1"), "{stderr}");
    assert!(stderr.contains("RS256"), "{stderr}");
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
    let original = std::fs::read_to_string(data.join(crypto::MASTER_KEY_FILE)).expect("key file created");

    // `latch app show` prints the same secret.
    let output = latch(&database.url, &data, None, &["app", "show", &app.id, "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let shown: Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    assert_eq!(shown["app_secret"], app.secret.as_str());

    // Another key in LATCH_MASTER_KEY, and a data directory whose new key
    // file holds another key, are both refused; so is the command line.
    let (_, other) = MasterKey::generate();
    assert_refused(&database.url, &data, Some(&other), &dir.path().join("env.log")).await;
    assert_refused(&database.url, &dir.path().join("elsewhere"), None, &dir.path().join("file.log")).await;
    let output = latch(&database.url, &data, Some(&other), &["app", "list"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains(MISMATCH));

    let db = app::ssr::db::connect_and_migrate(&database.url).await.unwrap();
    // The original key file: the server starts and the secret and the
    // signing keys work.
    let mut server = LatchProcess::spawn(&database.url, &data, None, dir.path().join("original.log"));
    server.wait_healthy(&client()).await;
    redeem_new_code(&db, &server.url("/oidc/token"), &app, "first").await;
    server.kill_hard().await;

    // The same key in LATCH_MASTER_KEY, without the file.
    let mut server =
        LatchProcess::spawn(&database.url, &dir.path().join("no-file"), Some(original.trim()), dir.path().join("same.log"));
    server.wait_healthy(&client()).await;
    redeem_new_code(&db, &server.url("/oidc/token"), &app, "second").await;
    server.kill_hard().await;
    let _ = db.close().await;
}

/// A server started in this process with `master_key` in the
/// configuration, as `LATCH_MASTER_KEY` would set it.
struct Running {
    base_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    async fn start(database_url: &str, dir: &Path, master_key: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().expect("local address");
        let config = server::Config {
            database_url: Some(database_url.to_owned()),
            site_root: Some(dir.join("site")),
            master_key: Some(master_key.to_owned()),
            ..server::Config::local(addr, dir.to_path_buf())
        };
        let state = server::prepare(&config).await.expect("server prepares");
        let (shutdown, receiver) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let stop = async move {
                let _ = receiver.await;
            };
            server::serve_on(listener, &config, state, stop).await.expect("server runs");
        });
        Self {
            base_url: format!("http://{addr}"),
            shutdown: Some(shutdown),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// What a database from before encryption held in plain text.
struct Legacy {
    app: instances::App,
    extra_secret_id: String,
    extra_secret: String,
    pems: Vec<(String, String)>,
}

/// Fills a migrated database as Latch stored it before secrets were
/// encrypted: an application whose secrets, verification token and signing
/// keys are plain text, and no check value.
async fn legacy_database(db: &DatabaseConnection) -> Legacy {
    let (scratch, _) = MasterKey::generate();
    let now = app::ssr::now();
    let input = NewApplication {
        name: "Old plugin".into(),
        kind: app::model::ApplicationKind::ChatgptPlugin,
        redirect_uris: vec![instances::CALLBACK.into()],
        always_issue_refresh_token: true,
    };
    let details = applications::create_application(db, &scratch, input, now).await.unwrap();
    let secret = details.secrets[0].clone();
    application_secret::Entity::update_many()
        .col_expr(application_secret::Column::Value, Expr::value(secret.value.clone()))
        .filter(application_secret::Column::Id.eq(secret.id.as_str()))
        .exec(db)
        .await
        .unwrap();
    let extra_secret_id = app::ssr::ids::new_row_id();
    let extra_secret = "plain-extra-secret-5e0c".to_owned();
    application_secret::ActiveModel {
        id: Set(extra_secret_id.clone()),
        application_id: Set(details.id.clone()),
        name: Set("Old".into()),
        value: Set(extra_secret.clone()),
        expires_at: Set(None),
        created_at: Set(now),
    }
    .insert(db)
    .await
    .unwrap();
    application::Entity::update_many()
        .col_expr(application::Column::OpenaiVerificationToken, Expr::value(VERIFICATION_TOKEN))
        .filter(application::Column::Id.eq(details.id.as_str()))
        .exec(db)
        .await
        .unwrap();
    keys::ensure_signing_keys(db, &scratch, now).await.unwrap();
    let mut pems = Vec::new();
    for row in signing_key::Entity::find().all(db).await.unwrap() {
        let pem = scratch.open(&crypto::signing_key_context(&row.kid), &row.private_key).unwrap();
        signing_key::Entity::update_many()
            .col_expr(signing_key::Column::PrivateKey, Expr::value(pem.clone()))
            .filter(signing_key::Column::Kid.eq(row.kid.as_str()))
            .exec(db)
            .await
            .unwrap();
        pems.push((row.kid, pem));
    }
    assert!(setting::Entity::find_by_id(MASTER_KEY_CHECK.to_owned()).one(db).await.unwrap().is_none());
    Legacy {
        app: instances::App {
            id: details.id,
            secret: secret.value,
        },
        extra_secret_id,
        extra_secret,
        pems,
    }
}

/// Returns every stored secret of the database as stored, sorted.
async fn stored_values(db: &DatabaseConnection) -> Vec<String> {
    let mut values: Vec<String> = application_secret::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.value)
        .collect();
    values.extend(signing_key::Entity::find().all(db).await.unwrap().into_iter().map(|row| row.private_key));
    values.extend(
        application::Entity::find()
            .all(db)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|row| row.openai_verification_token),
    );
    values.sort();
    values
}

/// Checks that every legacy value is stored sealed under `key` and opens
/// to what it was.
async fn assert_sealed(db: &DatabaseConnection, key: &MasterKey, legacy: &Legacy) {
    let secrets = applications::live_secrets(db, key, &legacy.app.id, app::ssr::now()).await.unwrap();
    assert_eq!(secrets.len(), 2);
    assert!(secrets.contains(&legacy.app.secret));
    assert!(secrets.contains(&legacy.extra_secret));
    let extra = application_secret::Entity::find_by_id(legacy.extra_secret_id.clone())
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert!(crypto::is_sealed(&extra.value));
    let details = applications::get_application(db, key, &legacy.app.id).await.unwrap();
    assert_eq!(details.openai_verification_token.as_deref(), Some(VERIFICATION_TOKEN));
    for (kid, pem) in &legacy.pems {
        let row = signing_key::Entity::find_by_id(kid.clone()).one(db).await.unwrap().unwrap();
        assert!(crypto::is_sealed(&row.private_key), "{kid} is sealed");
        assert_eq!(&key.open(&crypto::signing_key_context(kid), &row.private_key).unwrap(), pem);
    }
    for value in stored_values(db).await {
        assert!(crypto::is_sealed(&value), "every stored secret is sealed");
    }
}

#[tokio::test]
async fn plaintext_rows_are_sealed_at_start() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let db = app::ssr::db::connect_and_migrate(&database.url).await.unwrap();
    let legacy = legacy_database(&db).await;
    let (key, key_text) = MasterKey::generate();

    let server = Running::start(&database.url, dir.path(), &key_text).await;
    assert_sealed(&db, &key, &legacy).await;
    assert!(setting::Entity::find_by_id(MASTER_KEY_CHECK.to_owned()).one(&db).await.unwrap().is_some());

    // Both secrets authenticate at the token endpoint, and the sealed
    // signing keys sign.
    let token_url = format!("{}/oidc/token", server.base_url);
    redeem_new_code(&db, &token_url, &legacy.app, "first").await;
    let extra = instances::App {
        id: legacy.app.id.clone(),
        secret: legacy.extra_secret.clone(),
    };
    redeem_new_code(&db, &token_url, &extra, "second").await;
    let wrong = instances::App {
        id: legacy.app.id.clone(),
        secret: "not-the-secret".into(),
    };
    let code = instances::direct_code(&db, &legacy.app, &insert_user(&db, "third").await).await;
    let (status, body) = instances::redeem(&client(), &token_url, &wrong, &code).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{body}");

    // A second start seals nothing again.
    let before = stored_values(&db).await;
    let again = Running::start(&database.url, dir.path(), &key_text).await;
    assert_eq!(stored_values(&db).await, before);
    drop(again);
    drop(server);
    let _ = db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_seal_each_row_once() {
    for round in 0..5 {
        let database = TestDatabase::create().await;
        let dir = tempfile::tempdir().unwrap();
        let db = app::ssr::db::connect_and_migrate(&database.url).await.unwrap();
        let legacy = legacy_database(&db).await;
        let (key, key_text) = MasterKey::generate();
        let config = server::Config {
            database_url: Some(database.url.clone()),
            site_root: Some(dir.path().to_path_buf()),
            master_key: Some(key_text),
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
        // A value sealed twice would open to a sealed value, not to the
        // plain text.
        assert_sealed(&db, &key, &legacy).await;
        let _ = first.db.close().await;
        let _ = second.db.close().await;
        let _ = db.close().await;
    }
}
