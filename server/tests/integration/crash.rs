//! Kills the real `latch` binary with SIGKILL in the middle of a load of
//! code exchanges and refresh rotations, restarts it on the same database,
//! and checks that no grant whose response reached the client was lost.
//!
//! The backend comes from `LATCH_TEST_BACKEND`, through [`TestDatabase`].

use crate::instances::{App, CALLBACK, LatchProcess, client, form, redeem, refresh, register_app};
use app::ssr::entities::{application, application_secret, authorization_code, refresh_token, user};
use app::ssr::grants::REFRESH_REUSE_GRACE_SECS;
use app::ssr::grants::refresh_token_key;
use app::ssr::ids::sha256_hex;
use app::ssr::testing::TestDatabase;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, QueryOrder, Statement};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Concurrent clients during the load.
const WORKERS: usize = 6;
/// Refreshes each client makes with one token family before it requests a
/// new code.
const REFRESHES_PER_CODE: usize = 4;
/// Token responses the clients must have received before the kill, one
/// value per round, so that the kill lands at different points.
const ANSWERS_BEFORE_KILL: [usize; 5] = [40, 83, 150, 211, 97];

/// The refresh tokens one client received for one code, oldest first.
/// `tokens[0]` came with the code exchange, each later one from a refresh
/// of the token before it.
#[derive(Debug)]
struct Chain {
    code: String,
    tokens: Vec<String>,
}

/// What one client saw until the server went away.
#[derive(Debug, Default)]
struct Ledger {
    chains: Vec<Chain>,
    /// Unexpected responses received before the kill.
    unexpected: Vec<String>,
}

/// Runs one client: sign in through the session cookie, redeem the code,
/// refresh a few times, repeat, until a request gets no response.
async fn client_loop(base_url: String, app: App, session: String, answered: Arc<AtomicUsize>) -> Ledger {
    let http = client();
    let token_url = format!("{base_url}/oidc/token");
    let authorize_url = format!(
        "{base_url}/oidc/auth?{}",
        form(&[
            ("response_type", "code"),
            ("client_id", app.id.as_str()),
            ("redirect_uri", CALLBACK),
            ("scope", "openid offline_access"),
            ("state", "load"),
        ])
    );
    let mut ledger = Ledger::default();
    'codes: loop {
        let Ok(response) = http
            .get(&authorize_url)
            .header("cookie", format!("latch_session={session}"))
            .send()
            .await
        else {
            break;
        };
        let target = response
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let code = url::Url::parse(&target)
            .ok()
            .and_then(|url| url.query_pairs().find(|(name, _)| name == "code").map(|(_, code)| code.into_owned()));
        let Some(code) = code else {
            ledger.unexpected.push(format!("authorization answered {} to {target}", response.status()));
            break;
        };

        let Some((status, body)) = try_token_request(&http, &token_url, &app, Grant::Code(&code)).await else {
            break;
        };
        if status != 200 {
            ledger.unexpected.push(format!("code exchange answered {status}: {body}"));
            break;
        }
        answered.fetch_add(1, Ordering::SeqCst);
        let Some(first) = body["refresh_token"].as_str() else {
            ledger.unexpected.push(format!("code exchange without refresh token: {body}"));
            break;
        };
        ledger.chains.push(Chain {
            code,
            tokens: vec![first.to_owned()],
        });

        for _ in 0..REFRESHES_PER_CODE {
            let chain = ledger.chains.last_mut().expect("chain just pushed");
            let latest = chain.tokens.last().expect("chain has a token").clone();
            let Some((status, body)) = try_token_request(&http, &token_url, &app, Grant::Refresh(&latest)).await
            else {
                break 'codes;
            };
            if status != 200 {
                ledger.unexpected.push(format!("refresh answered {status}: {body}"));
                break 'codes;
            }
            answered.fetch_add(1, Ordering::SeqCst);
            let Some(next) = body["refresh_token"].as_str() else {
                ledger.unexpected.push(format!("refresh without refresh token: {body}"));
                break 'codes;
            };
            chain.tokens.push(next.to_owned());
        }
    }
    ledger
}

enum Grant<'a> {
    Code(&'a str),
    Refresh(&'a str),
}

/// Sends a token request and returns the response, or `None` when no
/// complete response arrived.
async fn try_token_request(
    http: &reqwest::Client,
    token_url: &str,
    app: &App,
    grant: Grant<'_>,
) -> Option<(u16, serde_json::Value)> {
    let params = match grant {
        Grant::Code(code) => vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("client_id", app.id.as_str()),
            ("client_secret", app.secret.as_str()),
        ],
        Grant::Refresh(token) => vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", app.id.as_str()),
            ("client_secret", app.secret.as_str()),
        ],
    };
    let response = http
        .post(token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&params))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    // A body cut off by the kill does not count as a response.
    let text = response.text().await.ok()?;
    Some((status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)))
}

/// Rows that the load must leave untouched.
#[derive(Debug, PartialEq)]
struct Registry {
    applications: Vec<application::Model>,
    secrets: Vec<application_secret::Model>,
    users: Vec<user::Model>,
}

async fn registry(db: &DatabaseConnection) -> Registry {
    Registry {
        applications: application::Entity::find()
            .order_by_asc(application::Column::Id)
            .all(db)
            .await
            .expect("applications read"),
        secrets: application_secret::Entity::find()
            .order_by_asc(application_secret::Column::Id)
            .all(db)
            .await
            .expect("secrets read"),
        users: user::Entity::find().order_by_asc(user::Column::Id).all(db).await.expect("users read"),
    }
}

async fn integrity_check(db: &DatabaseConnection) -> Vec<String> {
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), "PRAGMA integrity_check"))
        .await
        .expect("integrity check runs");
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0).expect("text result"))
        .collect()
}

#[tokio::test]
async fn sigkill_under_load_loses_no_answered_grant() {
    for answers_before_kill in ANSWERS_BEFORE_KILL {
        crash_round(answers_before_kill).await;
    }
}

/// Starts `latch` on a new database, kills it after `answers_before_kill`
/// token responses, restarts it and checks what the clients received.
async fn crash_round(answers_before_kill: usize) {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let http = client();

    let (master_key, master_key_text) = app::ssr::crypto::MasterKey::generate();
    let mut server = LatchProcess::spawn(&database.url, dir.path(), Some(&master_key_text), dir.path().join("first.log"));
    server.wait_healthy(&http).await;

    // Data written through the services, as the console and the sign-in
    // pages would.
    let db = app::ssr::db::connect_and_migrate(&database.url).await.expect("test connection");
    let app = register_app(&db, &master_key).await;
    let mut sessions = Vec::new();
    for index in 0..WORKERS {
        let user_id = crate::instances::insert_user(&db, &format!("user{index}")).await;
        let session = app::ssr::sessions::create_user_session(&db, &user_id, app::ssr::now())
            .await
            .expect("session created");
        sessions.push(session.cookie_value);
    }
    let before = registry(&db).await;
    let _ = db.close().await;

    let answered = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for session in sessions {
        workers.spawn(client_loop(server.base_url.clone(), app.clone(), session, answered.clone()));
    }
    // Kill once enough responses arrived, while every client still sends.
    while answered.load(Ordering::SeqCst) < answers_before_kill {
        assert_eq!(workers.len(), WORKERS, "a client stopped before the kill");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.kill_hard().await;
    let killed_at = Instant::now();
    let mut ledgers = Vec::new();
    while let Some(ledger) = workers.join_next().await {
        ledgers.push(ledger.expect("client task finished"));
    }
    let unexpected: Vec<_> = ledgers.iter().flat_map(|ledger| ledger.unexpected.iter()).collect();
    assert!(unexpected.is_empty(), "responses before the kill: {unexpected:?}");
    let chains: Vec<&Chain> = ledgers.iter().flat_map(|ledger| ledger.chains.iter()).collect();
    assert!(chains.len() >= WORKERS, "every client redeemed a code");
    let tokens: usize = chains.iter().map(|chain| chain.tokens.len()).sum();
    eprintln!(
        "{}: {} codes and {tokens} refresh tokens answered before the kill",
        database.backend,
        chains.len()
    );

    let db = app::ssr::db::connect_and_migrate(&database.url).await.expect("reopen after the kill");
    if database.backend == "sqlite" {
        assert_eq!(integrity_check(&db).await, vec!["ok".to_owned()]);
    }

    let mut restarted =
        LatchProcess::spawn(&database.url, dir.path(), Some(&master_key_text), dir.path().join("second.log"));
    restarted.wait_healthy(&http).await;
    let token_url = restarted.url("/oidc/token");

    // The newest token of every chain still works. When the request that
    // rotated it lost its response in the kill, a retry inside the grace
    // window returns that same successor.
    let mut lost_answers = 0;
    for chain in &chains {
        let latest = chain.tokens.last().unwrap();
        let before_use = refresh_token::Entity::find_by_id(refresh_token_key(latest))
            .one(&db)
            .await
            .unwrap()
            .expect("every refresh token the client received is stored");
        let (status, body) = refresh(&http, &token_url, &app, latest).await;
        assert_eq!(
            status,
            200,
            "newest token of a chain is refused {:?} after the kill: {body}",
            killed_at.elapsed()
        );
        let successor = body["refresh_token"].as_str().expect("refresh token");
        if let Some(replaced_by) = &before_use.replaced_by_hash {
            lost_answers += 1;
            assert_eq!(replaced_by, &refresh_token_key(successor), "retry returns the stored successor");
        }
    }
    eprintln!("{}: {lost_answers} rotations lost their answer in the kill", database.backend);
    assert!(
        killed_at.elapsed().as_secs() < REFRESH_REUSE_GRACE_SECS as u64,
        "the checks of the newest tokens ran inside the grace window"
    );

    // Every older token was rotated by a request whose response the client
    // received, so its successor is the next token of the chain.
    for chain in &chains {
        for pair in chain.tokens.windows(2) {
            // The lookup reports the family's revocation as the token's.
            let row = app::ssr::grants::find_refresh_token(&db, &pair[0])
                .await
                .unwrap()
                .expect("every refresh token the client received is stored");
            assert!(row.rotated_at.is_some());
            assert_eq!(row.replaced_by_hash.as_deref(), Some(refresh_token_key(&pair[1]).as_str()));
            assert_eq!(row.revoked_at, None);
        }
    }

    // Every code that the client exchanged for tokens stays consumed.
    for chain in &chains {
        let row = authorization_code::Entity::find_by_id(sha256_hex(&chain.code))
            .one(&db)
            .await
            .unwrap()
            .expect("an answered code is stored");
        assert!(row.consumed_at.is_some(), "an answered code is consumed");
    }
    for chain in chains.iter().take(3) {
        let (status, body) = redeem(&http, &token_url, &app, &chain.code).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    }

    assert_eq!(registry(&db).await, before, "applications, secrets and users are intact");
    if database.backend == "sqlite" {
        assert_eq!(integrity_check(&db).await, vec!["ok".to_owned()]);
    }
    let _ = db.close().await;
}
