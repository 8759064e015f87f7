//! Console access over HTTP: admin sign-in and sign-out, the setup link,
//! session timeouts, and that no request without an admin session reaches
//! a console page or server function.

use crate::common::{ADMIN_PASSWORD, ADMIN_USERNAME, TestServer, csrf_field, set_cookie_pair, sign_in_admin};
use crate::fixtures;
use app::model::{ApplicationDetails, ApplicationKind};
use app::ssr::applications::{self, NewApplication};
use app::ssr::entities::{admin, session, setup_token};
use app::ssr::{admins, sessions};
use reqwest::StatusCode;
use sea_orm::{EntityTrait, PaginatorTrait};

async fn create_app(server: &TestServer) -> ApplicationDetails {
    let input = NewApplication {
        name: "Guarded plugin".into(),
        kind: ApplicationKind::ChatgptPlugin,
        redirect_uris: vec!["https://chatgpt.com/aip/g-guard/oauth/callback".into()],
        always_issue_refresh_token: false,
    };
    applications::create_application(server.db(), &server.state.master_key, input, app::ssr::now())
        .await
        .unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// Every console server function with arguments that would change or
/// reveal something if the call were accepted.
fn every_server_function(app_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("list_applications", String::new()),
        ("create_application", form(&[("name", "Intruder"), ("kind", "chatgpt_plugin")])),
        ("delete_application", form(&[("id", app_id)])),
        ("get_guide", form(&[("id", app_id)])),
        ("save_redirect_uris", form(&[("id", app_id), ("uris[0]", "https://evil.example/cb")])),
        ("set_always_issue_refresh_token", form(&[("id", app_id), ("enabled", "true")])),
        ("save_manifest_settings", form(&[("id", app_id), ("verification_token", "stolen"), ("content_type", "application/json")])),
        ("save_audience", form(&[("id", app_id), ("audience", "https://evil.example")])),
        ("get_settings", String::new()),
        ("save_custom_domain", form(&[("custom_domain", "https://evil.example")])),
        ("add_secret", form(&[("application_id", app_id), ("id", app_id), ("name", "Intruder"), ("expires_on", "")])),
        ("delete_secret", form(&[("application_id", app_id), ("id", app_id), ("secret_id", "x")])),
    ]
}

/// Reads everything a console server function could change.
async fn snapshot(server: &TestServer, app_id: &str) -> (Vec<String>, ApplicationDetails, Option<String>) {
    let list = applications::list_applications(server.db()).await.unwrap();
    let details = applications::get_application(server.db(), &server.state.master_key, app_id).await.unwrap();
    let domain = app::ssr::settings::custom_domain(server.db()).await.unwrap();
    (list.into_iter().map(|app| app.id).collect(), details, domain)
}

async fn post_function(client: &reqwest::Client, server: &TestServer, function: &str, body: String, cookie: Option<&str>) -> (StatusCode, String) {
    let mut request = client
        .post(server.url(&format!("/api/{function}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn server_functions_without_session_rejected() {
    let server = TestServer::start().await;
    let app = create_app(&server).await;
    // An admin exists, so the only thing missing is a session.
    server.admin_client().await;
    let before = snapshot(&server, &app.id).await;

    // An end user's session, however obtained, is not an admin session.
    let user_id = fixtures::user(&server).await;
    let user_session = sessions::create_user_session(server.db(), &user_id, app::ssr::now()).await.unwrap();
    let user_cookie = format!("latch_session={}", user_session.cookie_value);
    // The same value under the console's cookie name is refused too.
    let forged = format!("latch_console={}", user_session.cookie_value);

    for (function, body) in every_server_function(&app.id) {
        for cookie in [None, Some(user_cookie.as_str()), Some(forged.as_str()), Some("latch_console=made-up")] {
            let (status, text) = post_function(&server.http, &server, function, body.clone(), cookie).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{function} with {cookie:?}: {text}");
            assert!(text.contains("SignInRequired"), "{function}: {text}");
        }
    }
    assert_eq!(snapshot(&server, &app.id).await, before, "nothing changed");
}

#[tokio::test]
async fn server_functions_work_with_admin_session() {
    let server = TestServer::start().await;
    let app = create_app(&server).await;
    let admin = server.admin_client().await;
    let (status, text) = post_function(&admin, &server, "get_guide", form(&[("id", &app.id)]), None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains(&app.id));
}

#[tokio::test]
async fn pages_redirect_to_sign_in_with_next() {
    let server = TestServer::start().await;
    let app = create_app(&server).await;
    server.admin_client().await;
    for (path, next) in [
        ("/console", "%2Fconsole"),
        ("/console/settings", "%2Fconsole%2Fsettings"),
        (&*format!("/console/applications/{}", app.id), &*format!("%2Fconsole%2Fapplications%2F{}", app.id)),
        ("/", "%2Fconsole"),
    ] {
        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(location, format!("/console/sign-in?next={next}"), "{path}");
        let body = response.text().await.unwrap();
        assert!(!body.contains(&app.id), "{path} leaks the application");
    }
}

#[tokio::test]
async fn signed_in_end_user_is_sent_to_admin_sign_in() {
    let server = TestServer::start().await;
    server.admin_client().await;
    let user_id = fixtures::user(&server).await;
    let session = sessions::create_user_session(server.db(), &user_id, app::ssr::now()).await.unwrap();
    let response = server
        .http
        .get(server.url("/console"))
        .header("cookie", format!("latch_session={}", session.cookie_value))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/console/sign-in?next=%2Fconsole");
}

#[tokio::test]
async fn sign_in_cookie_and_wrong_password() {
    let server = TestServer::start().await;
    admins::create_admin(server.db(), ADMIN_USERNAME, ADMIN_PASSWORD, app::ssr::now()).await.unwrap();

    let page = server.http.get(server.url("/console/sign-in")).send().await.unwrap();
    let form_cookie = set_cookie_pair(&page, "latch_console_form").unwrap();
    let csrf = csrf_field(&page.text().await.unwrap());
    let post = |username: &str, password: &str, csrf: &str, cookie: Option<&str>| {
        let mut request = server
            .http
            .post(server.url("/console/sign-in"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("csrf_token", csrf), ("username", username), ("password", password), ("next", "/console")]));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie.to_owned());
        }
        request.send()
    };

    // Without the form cookie the post is a cross-site forgery.
    let forged = post(ADMIN_USERNAME, ADMIN_PASSWORD, &csrf, None).await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    let wrong = post(ADMIN_USERNAME, "wrong password!", &csrf, Some(&form_cookie)).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie_pair(&wrong, "latch_console").is_none());
    let wrong_body = wrong.text().await.unwrap();
    let unknown = post("nobody-here", "wrong password!", &csrf, Some(&form_cookie)).await.unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let unknown_body = unknown.text().await.unwrap();
    assert!(wrong_body.contains("The user name or password is incorrect."));
    assert_eq!(
        wrong_body.replace(ADMIN_USERNAME, "NAME"),
        unknown_body.replace("nobody-here", "NAME"),
        "an unknown name and a wrong password look the same"
    );

    let right = post(ADMIN_USERNAME, ADMIN_PASSWORD, &csrf, Some(&form_cookie)).await.unwrap();
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(right.headers()["location"], "/console");
    let set_cookie = right
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .find(|value| value.starts_with("latch_console="))
        .unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(flag), "{set_cookie} lacks {flag}");
    }
    assert!(!set_cookie.contains("Domain"), "host-only: {set_cookie}");
    assert!(!set_cookie.contains("Secure"), "plain http public URL: {set_cookie}");
    let stored = admin::Entity::find().one(server.db()).await.unwrap().unwrap();
    assert!(stored.last_sign_in_at.is_some());
}

#[tokio::test]
async fn sign_in_next_never_leaves_the_console() {
    let server = TestServer::start().await;
    admins::create_admin(server.db(), ADMIN_USERNAME, ADMIN_PASSWORD, app::ssr::now()).await.unwrap();
    let page = server.http.get(server.url("/console/sign-in")).send().await.unwrap();
    let form_cookie = set_cookie_pair(&page, "latch_console_form").unwrap();
    let csrf = csrf_field(&page.text().await.unwrap());
    let response = server
        .http
        .post(server.url("/console/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", form_cookie)
        .body(form(&[("csrf_token", &csrf), ("username", ADMIN_USERNAME), ("password", ADMIN_PASSWORD), ("next", "https://evil.example/console")]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/console");
}

#[tokio::test]
async fn sign_out_ends_the_session_on_the_server() {
    let server = TestServer::start().await;
    let cookie = sign_in_admin(&server, ADMIN_USERNAME, ADMIN_PASSWORD, true).await;
    let page = server.http.get(server.url("/console")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Signed in as operator"), "{html}");
    let csrf = csrf_field(&html);

    // A sign-out without the token (a cross-site form) does nothing.
    let forged = server
        .http
        .post(server.url("/console/sign-out"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf_token=guess")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(session::Entity::find().count(server.db()).await.unwrap(), 1);

    let out = server
        .http
        .post(server.url("/console/sign-out"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("csrf_token", &csrf)]))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(out.headers()["location"], "/console/sign-in?signed_out");
    assert_eq!(out.headers()["clear-site-data"], "\"cache\"");
    assert_eq!(set_cookie_pair(&out, "latch_console").as_deref(), Some("latch_console="));
    assert_eq!(session::Entity::find().count(server.db()).await.unwrap(), 0);

    // The old cookie no longer opens anything.
    let after = server.http.get(server.url("/console")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn admin_sessions_end_after_idle_and_absolute_timeouts() {
    let server = TestServer::start().await;
    let admin = admins::create_admin(server.db(), ADMIN_USERNAME, ADMIN_PASSWORD, 1_000).await.unwrap();
    let start = 1_000_000;
    let idle = sessions::ADMIN_IDLE_TIMEOUT_SECS;

    let session = sessions::create_admin_session(server.db(), &admin.id, start).await.unwrap();
    let cookie = session.cookie_value;
    assert!(sessions::find_live_admin_session(server.db(), &cookie, start + idle - 1).await.unwrap().is_some());
    // That use moved the idle deadline.
    assert!(sessions::find_live_admin_session(server.db(), &cookie, start + 2 * idle - 2).await.unwrap().is_some());
    // Idle for the whole timeout: ended.
    assert!(sessions::find_live_admin_session(server.db(), &cookie, start + 3 * idle).await.unwrap().is_none());

    // Used every few minutes, a session still ends at the absolute limit.
    let session = sessions::create_admin_session(server.db(), &admin.id, start).await.unwrap();
    let mut now = start;
    while now < start + sessions::ADMIN_ABSOLUTE_TIMEOUT_SECS {
        assert!(sessions::find_live_admin_session(server.db(), &session.cookie_value, now).await.unwrap().is_some());
        now += idle / 2;
    }
    assert!(sessions::find_live_admin_session(server.db(), &session.cookie_value, now).await.unwrap().is_none());

    // End-user sessions never count as admin sessions.
    let user_id = fixtures::user(&server).await;
    let user = sessions::create_user_session(server.db(), &user_id, start).await.unwrap();
    assert!(sessions::find_live_admin_session(server.db(), &user.cookie_value, start).await.unwrap().is_none());
}

#[tokio::test]
async fn setup_link_works_once() {
    let server = TestServer::start().await;
    let token = admins::issue_setup_token(server.db(), app::ssr::now()).await.unwrap();
    let link = server.url(&format!("/console/setup?token={token}"));

    let page = server.http.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let form_cookie = set_cookie_pair(&page, "latch_console_form").unwrap();
    let csrf = csrf_field(&page.text().await.unwrap());
    let submit = |password: &'static str| {
        server
            .http
            .post(server.url("/console/setup"))
            .header("cookie", form_cookie.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("csrf_token", &csrf),
                ("token", &token),
                ("username", "first-admin"),
                ("password", password),
                ("password_confirmation", password),
            ]))
            .send()
    };

    // A short password is refused and the token survives.
    let short = submit("short").await.unwrap();
    assert_eq!(short.status(), StatusCode::BAD_REQUEST);
    assert!(short.text().await.unwrap().contains("at least 12 characters"));
    assert_eq!(admin::Entity::find().count(server.db()).await.unwrap(), 0);

    let created = submit("a long enough password").await.unwrap();
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    assert_eq!(created.headers()["location"], "/console");
    let session = set_cookie_pair(&created, "latch_console").unwrap();
    let console = server.http.get(server.url("/console")).header("cookie", &session).send().await.unwrap();
    assert_eq!(console.status(), StatusCode::OK);
    assert_eq!(admin::Entity::find().count(server.db()).await.unwrap(), 1);
    assert_eq!(setup_token::Entity::find().count(server.db()).await.unwrap(), 0);

    // The link is dead for reading and for posting.
    assert_eq!(server.http.get(&link).send().await.unwrap().status(), StatusCode::GONE);
    let again = submit("another long password").await.unwrap();
    assert_eq!(again.status(), StatusCode::GONE);
    assert_eq!(admin::Entity::find().count(server.db()).await.unwrap(), 1);
}

#[tokio::test]
async fn setup_link_expires_and_dies() {
    let server = TestServer::start().await;
    let now = app::ssr::now();
    let old = admins::issue_setup_token(server.db(), now - admins::SETUP_TOKEN_TTL_SECS - 1).await.unwrap();
    let response = server.http.get(server.url(&format!("/console/setup?token={old}"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::GONE);

    let fresh = admins::issue_setup_token(server.db(), now).await.unwrap();
    assert!(admins::setup_token_is_live(server.db(), &fresh, now).await.unwrap());
    // `latch admin create` makes an admin: the link stops working.
    admins::create_admin(server.db(), "scripted", "scripted admin password", now).await.unwrap();
    assert!(!admins::setup_token_is_live(server.db(), &fresh, now).await.unwrap());
    let response = server.http.get(server.url(&format!("/console/setup?token={fresh}"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::GONE);
    let made_up = server.http.get(server.url("/console/setup?token=made-up")).send().await.unwrap();
    assert_eq!(made_up.status(), StatusCode::GONE);
}

#[tokio::test]
async fn console_pages_send_nonce_policy() {
    let server = TestServer::start().await;
    let admin = server.admin_client().await;
    let response = admin.get(server.url("/console")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let policy = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("the policy names a nonce")
        .to_owned();
    for directive in ["default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'", "'wasm-unsafe-eval'"] {
        assert!(policy.contains(directive), "{policy} lacks {directive}");
    }
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["referrer-policy"], "same-origin");
    assert!(response.headers().get("strict-transport-security").is_none(), "no HSTS over plain http");
    let html = response.text().await.unwrap();
    let scripts = html.matches("<script").count();
    assert!(scripts > 0);
    assert_eq!(html.matches(&format!("nonce=\"{nonce}\"")).count(), scripts, "every script carries the nonce");

    // Each response gets its own nonce.
    let second = admin.get(server.url("/console")).send().await.unwrap();
    assert!(!second.headers()["content-security-policy"].to_str().unwrap().contains(&nonce));
}

#[tokio::test]
async fn https_adds_hsts_and_secure_cookie() {
    let server = TestServer::start_with(|config| {
        config.public_url = Some(url::Url::parse("https://auth.example.com").unwrap());
    })
    .await;
    admins::create_admin(server.db(), ADMIN_USERNAME, ADMIN_PASSWORD, app::ssr::now()).await.unwrap();
    let page = server.http.get(server.url("/console/sign-in")).send().await.unwrap();
    assert_eq!(
        page.headers()["strict-transport-security"].to_str().unwrap(),
        "max-age=31536000; includeSubDomains"
    );
    let form_cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .find(|value| value.starts_with("__Host-latch_console_form="))
        .expect("the form cookie has the __Host- prefix");
    assert!(form_cookie.contains("; Secure"));
    assert!(form_cookie.contains("SameSite=Strict"));
}

/// Runs `latch admin create` with `password` on standard input.
fn admin_create(data_dir: &std::path::Path, username: &str, password: &str, extra: &[&str]) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_latch"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["admin", "create", "--username", username])
        .args(extra)
        .env_remove("LATCH_MASTER_KEY")
        .env_remove("LATCH_DATABASE_URL")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("latch runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(format!("{password}\n").as_bytes())
        .expect("password written");
    child.wait_with_output().expect("latch finishes")
}

#[tokio::test]
async fn admin_create_reads_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let short = admin_create(dir.path(), "cli-admin", "too short", &[]);
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));

    // The password is never an argument.
    let argv = admin_create(dir.path(), "cli-admin", "", &["--password", "on the command line"]);
    assert!(!argv.status.success());

    let created = admin_create(dir.path(), "cli-admin", "typed into the pipe", &[]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    assert!(String::from_utf8_lossy(&created.stdout).contains("Created admin cli-admin"));
    let taken = admin_create(dir.path(), "cli-admin", "typed into the pipe", &[]);
    assert!(!taken.status.success());
    assert!(String::from_utf8_lossy(&taken.stderr).contains("exists"));

    let database = format!("sqlite://{}?mode=rwc", dir.path().canonicalize().unwrap().join("latch.db").display());
    let server = TestServer::start_with(|config| {
        config.database_url = Some(database);
        config.data_dir = dir.path().to_path_buf();
    })
    .await;
    let cookie = sign_in_admin(&server, "cli-admin", "typed into the pipe", false).await;
    let console = server.http.get(server.url("/console")).header("cookie", cookie).send().await.unwrap();
    assert_eq!(console.status(), StatusCode::OK);
}

/// An admin sign-in form opened from `client`, posted with `username` and
/// `password`. Returns the status, `Retry-After` and body.
async fn console_attempt(server: &TestServer, client: &reqwest::Client, username: &str, password: &str) -> (u16, Option<u64>, String) {
    let page = client.get(server.url("/console/sign-in")).send().await.unwrap();
    let form_cookie = set_cookie_pair(&page, "latch_console_form").unwrap();
    let csrf = csrf_field(&page.text().await.unwrap());
    let response = client
        .post(server.url("/console/sign-in"))
        .header("cookie", form_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("csrf_token", &csrf), ("username", username), ("password", password)]))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().parse().unwrap());
    let body = response.text().await.unwrap().replace(&csrf, "CSRF").replace(username, "NAME");
    (status, retry_after, body)
}

async fn throttled_server() -> TestServer {
    TestServer::start_with(|config| {
        config.sign_in_delay_secs = 1;
        config.sign_in_max_delay_secs = 2;
    })
    .await
}

#[tokio::test]
async fn console_throttle_hides_unknown_names() {
    // Delays long enough that none ends during the test.
    let server = TestServer::start_with(|config| {
        config.sign_in_delay_secs = 60;
        config.sign_in_max_delay_secs = 900;
    })
    .await;
    admins::create_admin(server.db(), ADMIN_USERNAME, ADMIN_PASSWORD, app::ssr::now()).await.unwrap();
    let client = TestServer::client_from("127.0.0.2".parse().unwrap());
    let other = TestServer::client_from("127.0.0.3".parse().unwrap());
    let free = server.state.throttle.free_account_failures as usize;

    for attempt in 1..=30 {
        let known = console_attempt(&server, &client, ADMIN_USERNAME, "wrong password!!").await;
        let unknown = console_attempt(&server, &other, "no-such-admin", "wrong password!!").await;
        // Retry-After may differ by a second between the two requests.
        assert_eq!(known.0, unknown.0, "attempt {attempt}: status");
        assert_eq!(known.1.is_some(), unknown.1.is_some(), "attempt {attempt}: Retry-After");
        assert_eq!(known.2, unknown.2, "attempt {attempt}: a real name and an unknown one look the same");
        let (status, retry_after, body) = known;
        if attempt <= free + 1 {
            assert_eq!(status, 401, "attempt {attempt}");
            assert!(body.contains("The user name or password is incorrect."));
        } else {
            assert_eq!(status, 429, "attempt {attempt}");
            assert!(body.contains("Too many failed sign-ins. Wait 1 minute, then try again."), "{body}");
            assert!(retry_after.is_some_and(|secs| (1..=60).contains(&secs)), "{retry_after:?}");
        }
    }
    // While blocked, even the right password is refused without a check.
    let (status, _, _) = console_attempt(&server, &client, ADMIN_USERNAME, ADMIN_PASSWORD).await;
    assert_eq!(status, 429);
    assert_eq!(admin::Entity::find().one(server.db()).await.unwrap().unwrap().last_sign_in_at, None);
}

#[tokio::test]
async fn console_password_works_after_delay() {
    let server = throttled_server().await;
    admins::create_admin(server.db(), ADMIN_USERNAME, ADMIN_PASSWORD, app::ssr::now()).await.unwrap();
    let client = TestServer::client_from("127.0.0.6".parse().unwrap());
    let mut blocked = 0;
    let mut last_retry = None;
    for _ in 0..30 {
        let (status, retry_after, _) = console_attempt(&server, &client, ADMIN_USERNAME, "wrong password!!").await;
        assert!(status == 401 || status == 429, "{status}");
        if status == 429 {
            blocked += 1;
            last_retry = retry_after;
        }
    }
    assert!(blocked > 0, "none of 30 wrong passwords was slowed down");
    // No lockout: once the delay has passed, the right password works.
    tokio::time::sleep(std::time::Duration::from_secs(last_retry.unwrap_or(2) + 1)).await;
    let (status, _, body) = console_attempt(&server, &client, ADMIN_USERNAME, ADMIN_PASSWORD).await;
    assert_eq!(status, 303, "{body}");
}

#[tokio::test]
async fn one_address_trying_many_admin_names_is_slowed() {
    // Delays long enough that none ends during the test. With a 2 s delay,
    // a busy machine could finish the 30 attempts after the last delay ended.
    let server = TestServer::start_with(|config| {
        config.sign_in_delay_secs = 60;
        config.sign_in_max_delay_secs = 900;
    })
    .await;
    admins::create_admin(server.db(), ADMIN_USERNAME, ADMIN_PASSWORD, app::ssr::now()).await.unwrap();
    let client = TestServer::client_from("127.0.0.4".parse().unwrap());
    let mut statuses = Vec::new();
    for index in 0..30 {
        let (status, _, _) = console_attempt(&server, &client, &format!("guess-{index}"), "wrong password!!").await;
        statuses.push(status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    // Each name was tried once, so only the address counter can block.
    let (status, _, _) = console_attempt(&server, &client, ADMIN_USERNAME, ADMIN_PASSWORD).await;
    assert_eq!(status, 429, "the address is slowed for every name");
    // Another address is not affected.
    let elsewhere = TestServer::client_from("127.0.0.5".parse().unwrap());
    let (status, _, _) = console_attempt(&server, &elsewhere, ADMIN_USERNAME, ADMIN_PASSWORD).await;
    assert_eq!(status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_guess_burst_is_throttled() {
    let server = TestServer::start_with(|config| {
        config.sign_in_delay_secs = 60;
        config.sign_in_max_delay_secs = 900;
    })
    .await;
    admins::create_admin(server.db(), ADMIN_USERNAME, ADMIN_PASSWORD, app::ssr::now()).await.unwrap();
    let client = TestServer::client_from("127.0.0.7".parse().unwrap());
    let page = client.get(server.url("/console/sign-in")).send().await.unwrap();
    let form_cookie = set_cookie_pair(&page, "latch_console_form").unwrap();
    let csrf = csrf_field(&page.text().await.unwrap());

    // 60 wrong guesses sent at once: the checks cannot all run before the
    // first failures are counted.
    let guesses = (0..60).map(|index| {
        let request = client
            .post(server.url("/console/sign-in"))
            .header("cookie", form_cookie.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("csrf_token", &csrf), ("username", ADMIN_USERNAME), ("password", &format!("guess number {index}"))]));
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures_join_all(guesses).await;
    let checked = statuses.iter().filter(|status| **status == 401).count();
    let blocked = statuses.iter().filter(|status| **status == 429).count();
    assert_eq!(checked + blocked, 60, "{statuses:?}");
    let allowed = server.state.throttle.free_account_failures as usize + 1;
    assert!(checked <= allowed + 2, "{checked} guesses were checked, at most {allowed} plus one per hashing slot expected");
}

/// Runs the futures concurrently and returns their outputs in order.
async fn futures_join_all<F: std::future::Future<Output = u16> + Send + 'static>(futures: impl Iterator<Item = F>) -> Vec<u16> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    outputs
}

#[tokio::test]
async fn planted_cookie_does_not_hide_the_session() {
    let server = TestServer::start().await;
    let cookie = sign_in_admin(&server, ADMIN_USERNAME, ADMIN_PASSWORD, true).await;
    // Another page on this host set a cookie of the same name that the
    // browser sends first.
    let response = server
        .http
        .get(server.url("/console"))
        .header("cookie", format!("latch_console=planted; {cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn new_setup_link_cancels_the_old_one() {
    let server = TestServer::start().await;
    let now = app::ssr::now();
    let first = admins::issue_setup_token(server.db(), now).await.unwrap();
    let second = admins::issue_setup_token(server.db(), now).await.unwrap();
    assert!(!admins::setup_token_is_live(server.db(), &first, now).await.unwrap());
    assert!(admins::setup_token_is_live(server.db(), &second, now).await.unwrap());
}

#[tokio::test]
async fn end_user_failures_do_not_block_the_console() {
    let server = throttled_server().await;
    admins::create_admin(server.db(), ADMIN_USERNAME, ADMIN_PASSWORD, app::ssr::now()).await.unwrap();
    let address: std::net::IpAddr = "127.0.0.8".parse().unwrap();
    let now = app::ssr::now();
    // Many failed end-user sign-ins from the address an admin also uses,
    // as behind a reverse proxy on this machine.
    for index in 0..40 {
        let login = format!("user-{index}");
        let attempt = app::ssr::throttle::Attempt { realm: app::ssr::throttle::Realm::User, login: &login, address };
        app::ssr::throttle::record_failure(server.db(), &server.state.throttle, &attempt, now).await.unwrap();
    }
    let client = TestServer::client_from(address);
    let (status, _, body) = console_attempt(&server, &client, ADMIN_USERNAME, ADMIN_PASSWORD).await;
    assert_eq!(status, 303, "{body}");
}
