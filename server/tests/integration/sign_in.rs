//! The sign-in pages over HTTP: full journeys from ChatGPT's request to the
//! callback, session reuse, CSRF and cookie rules, registration checks,
//! response headers and the end-session endpoint.

use crate::browser::*;
use crate::common::TestServer;
use app::ssr::entities::{application, interaction, session, user};
use app::ssr::ids::sha256_hex;
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};

/// ChatGPT plugin's authorization request: `scope=` empty, no PKCE, no nonce.
fn chatgpt_request(client_id: &str, state: &str) -> String {
    // Built by hand so that `scope=` stays in the query as ChatGPT sends it.
    let callback: String =
        url::form_urlencoded::byte_serialize(PLUGIN_CALLBACK.as_bytes()).collect();
    let state: String = url::form_urlencoded::byte_serialize(state.as_bytes()).collect();
    format!(
        "/oidc/auth?response_type=code&client_id={client_id}&scope=&state={state}&redirect_uri={callback}"
    )
}

/// Follows the authorization request to the sign-in page and returns the
/// page's interaction id and CSRF token.
async fn open_sign_in(browser: &mut Browser<'_>, authorize_path: &str) -> (String, String) {
    let response = browser.get(authorize_path).await;
    assert_eq!(response.status(), 303);
    let page = browser.get(&location(&response)).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    (
        input_value(&html, "interaction"),
        input_value(&html, "csrf_token"),
    )
}

fn assert_security_headers(response: &reqwest::Response) {
    let headers = response.headers();
    assert_eq!(headers["x-frame-options"], "DENY");
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("frame-ancestors 'none'"));
    assert!(policy.contains("default-src 'none'"));
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["referrer-policy"], "no-referrer");
}

fn session_cookie_header(browser: &Browser<'_>) -> String {
    browser
        .last_set_cookies
        .iter()
        .find(|cookie| cookie.starts_with("latch_session="))
        .expect("a session cookie was set")
        .clone()
}

#[tokio::test]
async fn chatgpt_journey_registers_and_returns_code() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let mut browser = Browser::new(&server);
    let state = "p8T/6w+q=x y";

    let response = browser.get(&chatgpt_request(&client, state)).await;
    assert_eq!(response.status(), 303);
    let sign_in_path = location(&response);
    assert!(sign_in_path.starts_with("/sign-in?interaction="));
    let sign_in_page = browser.get(&sign_in_path).await;
    assert_security_headers(&sign_in_page);
    let html = sign_in_page.text().await.unwrap();
    assert!(html.contains("Weather plugin"));
    assert!(html.contains("/pkg/latch.css"));
    let interaction = input_value(&html, "interaction");

    let register_page = browser
        .get(&format!("/register?interaction={interaction}"))
        .await;
    assert_eq!(register_page.status(), 200);
    assert_security_headers(&register_page);
    let html = register_page.text().await.unwrap();
    let csrf = input_value(&html, "csrf_token");
    let fields = [
        ("interaction", interaction.as_str()),
        ("csrf_token", csrf.as_str()),
        ("username", "Grace"),
        ("email", "grace@example.com"),
        ("password", "a long enough secret"),
        ("password_confirmation", "a long enough secret"),
    ];
    let response = browser.post_form("/register", &fields).await;

    assert_eq!(response.status(), 303);
    let target = location(&response);
    assert_eq!(without_query(&target), PLUGIN_CALLBACK);
    let query = query_of(&target);
    assert_eq!(query.get("state").map(String::as_str), Some(state));
    assert_eq!(query.get("iss"), Some(&issuer(&server)));
    let code = query.get("code").expect("callback carries a code");

    let row = code_row(&server, code).await;
    assert_eq!(row.code_hash, sha256_hex(code));
    assert_eq!(row.scope, "openid profile");
    assert!(row.issue_refresh_token);
    assert_eq!(row.nonce, None);
    assert_eq!(row.code_challenge, None);

    let users = user::Entity::find().all(server.db()).await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].username, "grace");
    assert_eq!(users[0].email.as_deref(), Some("grace@example.com"));
    assert!(users[0].password_hash.starts_with("$argon2id$"));
    assert_eq!(row.user_id, users[0].id);

    let cookie = browser
        .cookies
        .get("latch_session")
        .expect("session cookie kept")
        .clone();
    let stored = session::Entity::find_by_id(sha256_hex(&cookie))
        .one(server.db())
        .await
        .unwrap();
    let stored = stored.expect("the session row is found by the cookie's hash");
    assert_eq!(stored.kind, "user");
    assert_eq!(stored.subject_id, users[0].id);
    assert_eq!(counts(&server).await.interactions, 0);

    // ChatGPT then redeems the code with a JSON body, credentials inside.
    let secrets = app::ssr::applications::live_secrets(server.db(), &server.state.master_key, &client, app::ssr::now())
        .await
        .unwrap();
    let body = serde_json::json!({
        "grant_type": "authorization_code",
        "client_id": client,
        "client_secret": secrets[0],
        "code": code,
        "redirect_uri": PLUGIN_CALLBACK,
    });
    let response = server
        .http
        .post(server.url("/oidc/token"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let tokens: serde_json::Value = response.json().await.unwrap();
    assert!(tokens["access_token"].is_string());
    assert!(tokens["refresh_token"].is_string());
}

#[tokio::test]
async fn signed_in_user_goes_straight_back() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    create_user(&server, "ada", Some("ada@example.com")).await;
    let mut browser = Browser::new(&server);

    let (interaction, csrf) = open_sign_in(&mut browser, &chatgpt_request(&client, "first")).await;
    let fields = [
        ("interaction", interaction.as_str()),
        ("csrf_token", csrf.as_str()),
        ("login", "ADA@example.com"),
        ("password", PASSWORD),
    ];
    let response = browser.post_form("/sign-in", &fields).await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        query_of(&location(&response))
            .get("state")
            .map(String::as_str),
        Some("first")
    );
    let before = counts(&server).await;

    let response = browser.get(&chatgpt_request(&client, "second")).await;
    assert_eq!(response.status(), 303);
    let target = location(&response);
    assert_eq!(without_query(&target), PLUGIN_CALLBACK);
    let query = query_of(&target);
    assert_eq!(query.get("state").map(String::as_str), Some("second"));
    assert!(query.contains_key("code"));

    let after = counts(&server).await;
    assert_eq!(after.codes, before.codes + 1);
    assert_eq!(after.interactions, before.interactions);
    assert_eq!(after.sessions, before.sessions);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    create_user(&server, "ada", None).await;
    let mut browser = Browser::new(&server);
    let (interaction, csrf) = open_sign_in(&mut browser, &chatgpt_request(&client, "s")).await;
    let before = counts(&server).await;

    let mut pages = Vec::new();
    for (login, password) in [("ada", "wrong password"), ("nobody", PASSWORD)] {
        let fields = [
            ("interaction", interaction.as_str()),
            ("csrf_token", csrf.as_str()),
            ("login", login),
            ("password", password),
        ];
        let response = browser.post_form("/sign-in", &fields).await;
        assert_eq!(response.status(), 400);
        assert!(browser.last_set_cookies.is_empty());
        let html = response.text().await.unwrap();
        assert!(html.contains("The user name, email or password is incorrect."));
        pages.push(html.replace(login, ""));
    }
    assert_eq!(pages[0], pages[1]);
    assert_eq!(counts(&server).await, before);
}

#[tokio::test]
async fn forged_form_post_is_rejected() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    create_user(&server, "ada", None).await;
    let mut browser = Browser::new(&server);
    let (interaction, csrf) = open_sign_in(&mut browser, &chatgpt_request(&client, "s")).await;
    let before = counts(&server).await;

    for token in ["", "forged-token"] {
        let fields = [
            ("interaction", interaction.as_str()),
            ("csrf_token", token),
            ("login", "ada"),
            ("password", PASSWORD),
        ];
        let response = browser.post_form("/sign-in", &fields).await;
        assert_eq!(response.status(), 403);
    }

    // The right token from a browser that did not start the request, as a
    // cross-site post would send it.
    let mut other_browser = Browser::new(&server);
    let fields = [
        ("interaction", interaction.as_str()),
        ("csrf_token", csrf.as_str()),
        ("username", "mallory"),
        ("password", "a long enough secret"),
        ("password_confirmation", "a long enough secret"),
    ];
    let response = other_browser.post_form("/register", &fields).await;
    assert_eq!(response.status(), 403);
    assert!(other_browser.last_set_cookies.is_empty());
    assert_eq!(counts(&server).await, before);
}

#[tokio::test]
async fn session_cookie_has_protective_flags() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    create_user(&server, "ada", None).await;
    let mut browser = Browser::new(&server);
    let response = browser.get(&chatgpt_request(&client, "s")).await;
    let browser_cookie = browser.last_set_cookies.join("\n");
    assert!(browser_cookie.contains("latch_browser="));
    assert!(browser_cookie.contains("HttpOnly"));
    assert!(browser_cookie.contains("SameSite=Lax"));
    let html = browser
        .get(&location(&response))
        .await
        .text()
        .await
        .unwrap();
    let fields = [
        ("interaction", input_value(&html, "interaction")),
        ("csrf_token", input_value(&html, "csrf_token")),
        ("login", "ada".to_owned()),
        ("password", PASSWORD.to_owned()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    browser.post_form("/sign-in", &fields).await;

    let cookie = session_cookie_header(&browser);
    assert!(cookie.contains("; HttpOnly"));
    assert!(cookie.contains("; SameSite=Lax"));
    assert!(cookie.contains("; Path=/"));
    // The test server's public URL is http, so Secure would drop the cookie.
    assert!(!cookie.contains("Secure"));
}

#[tokio::test]
async fn registration_rejects_invalid_input() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    create_user(&server, "ada", Some("ada@example.com")).await;
    let mut browser = Browser::new(&server);
    let (interaction, csrf) = open_sign_in(&mut browser, &chatgpt_request(&client, "s")).await;
    let before = counts(&server).await;

    let cases = [
        ("grace", "", "short", "short", "at least 8 characters"),
        (
            "grace",
            "",
            "long enough 1",
            "long enough 2",
            "passwords differ",
        ),
        (
            "ADA",
            "",
            "long enough",
            "long enough",
            "user name is taken",
        ),
        (
            "grace",
            "ADA@example.com",
            "long enough",
            "long enough",
            "already registered",
        ),
        ("g", "", "long enough", "long enough", "3 to 64 characters"),
        (
            "grace",
            "not-an-email",
            "long enough",
            "long enough",
            "valid email",
        ),
    ];
    for (username, email, password, confirmation, message) in cases {
        let fields = [
            ("interaction", interaction.as_str()),
            ("csrf_token", csrf.as_str()),
            ("username", username),
            ("email", email),
            ("password", password),
            ("password_confirmation", confirmation),
        ];
        let response = browser.post_form("/register", &fields).await;
        assert_eq!(response.status(), 400, "case {message}");
        let html = response.text().await.unwrap();
        assert!(html.contains(message), "page for case {message}");
    }
    assert_eq!(counts(&server).await, before);
}

#[tokio::test]
async fn pages_refuse_framing_and_caching() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let mut browser = Browser::new(&server);
    let response = browser.get(&chatgpt_request(&client, "s")).await;
    assert_security_headers(&response);
    let sign_in_path = location(&response);
    assert_security_headers(&browser.get(&sign_in_path).await);
    let register_path = sign_in_path.replace("/sign-in", "/register");
    assert_security_headers(&browser.get(&register_path).await);
    let error_page = browser.get("/sign-in?interaction=unknown").await;
    assert_eq!(error_page.status(), 400);
    assert_security_headers(&error_page);
    let unknown_client = browser
        .get("/oidc/auth?client_id=x&redirect_uri=https%3A%2F%2Fa.example%2F")
        .await;
    assert_security_headers(&unknown_client);
}

#[tokio::test]
async fn application_name_is_escaped() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let stored = application::Entity::find_by_id(client.clone())
        .one(server.db())
        .await
        .unwrap()
        .unwrap();
    let mut stored = stored.into_active_model();
    stored.name = Set("<script>alert(1)</script>".into());
    stored.update(server.db()).await.unwrap();

    let mut browser = Browser::new(&server);
    let response = browser.get(&chatgpt_request(&client, "s")).await;
    let html = browser
        .get(&location(&response))
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;"));
}

#[tokio::test]
async fn end_session_deletes_session_and_redirects_when_registered() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let stored = application::Entity::find_by_id(client.clone())
        .one(server.db())
        .await
        .unwrap()
        .unwrap();
    let mut stored = stored.into_active_model();
    stored.post_logout_redirect_uris = Set(r#"["https://rp.example/bye"]"#.into());
    stored.update(server.db()).await.unwrap();
    let user = create_user(&server, "ada", None).await;

    let cookie = create_session(&server, &user.id, app::ssr::now()).await;
    let mut browser = Browser::new(&server);
    browser
        .cookies
        .insert("latch_session".into(), cookie.clone());
    let path = format!(
        "/oidc/session/end?client_id={client}&post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fbye&state=st%2B1"
    );
    let response = browser.get(&path).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "https://rp.example/bye?state=st%2B1");
    assert!(
        browser
            .last_set_cookies
            .iter()
            .any(|c| c.starts_with("latch_session=;") && c.contains("Max-Age=0"))
    );
    let row = session::Entity::find_by_id(sha256_hex(&cookie))
        .one(server.db())
        .await
        .unwrap();
    assert!(row.is_none());

    // An unregistered target gets the signed-out page instead of a redirect.
    let cookie = create_session(&server, &user.id, app::ssr::now()).await;
    let mut browser = Browser::new(&server);
    browser
        .cookies
        .insert("latch_session".into(), cookie.clone());
    let path = format!(
        "/oidc/session/end?client_id={client}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F"
    );
    let response = browser.get(&path).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("location").is_none());
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("You are signed out")
    );
    let row = session::Entity::find_by_id(sha256_hex(&cookie))
        .one(server.db())
        .await
        .unwrap();
    assert!(row.is_none());
}

#[tokio::test]
async fn sign_in_replaces_previous_session() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let user = create_user(&server, "ada", None).await;
    let old = create_session(&server, &user.id, app::ssr::now() - 100).await;
    let mut browser = Browser::new(&server);
    browser.cookies.insert("latch_session".into(), old.clone());
    let request = format!("{}&prompt=login", chatgpt_request(&client, "s"));
    let (interaction, csrf) = open_sign_in(&mut browser, &request).await;
    let fields = [
        ("interaction", interaction.as_str()),
        ("csrf_token", csrf.as_str()),
        ("login", "ada"),
        ("password", PASSWORD),
    ];
    let response = browser.post_form("/sign-in", &fields).await;
    assert_eq!(response.status(), 303);
    let old_row = session::Entity::find_by_id(sha256_hex(&old))
        .one(server.db())
        .await
        .unwrap();
    assert!(old_row.is_none());
    assert_ne!(browser.cookies.get("latch_session"), Some(&old));
    assert_eq!(counts(&server).await.sessions, 1);

    // The interaction is gone, so posting the form again fails.
    let response = browser.post_form("/sign-in", &fields).await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn consent_form_requires_csrf_token() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let user = create_user(&server, "ada", None).await;
    let mut browser = Browser::new(&server);
    browser.cookies.insert(
        "latch_session".into(),
        create_session(&server, &user.id, app::ssr::now()).await,
    );
    let request = format!("{}&prompt=consent", chatgpt_request(&client, "s"));
    let response = browser.get(&request).await;
    let consent_path = location(&response);
    assert!(consent_path.starts_with("/consent?interaction="));
    let html = browser.get(&consent_path).await.text().await.unwrap();
    let interaction = input_value(&html, "interaction");
    let before = counts(&server).await;

    let fields = [
        ("interaction", interaction.as_str()),
        ("csrf_token", "forged-token"),
        ("decision", "allow"),
    ];
    let response = browser.post_form("/consent", &fields).await;
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("location").is_none());
    assert_eq!(counts(&server).await, before);
}

#[tokio::test]
async fn sign_in_page_from_other_browser_is_rejected() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let mut browser = Browser::new(&server);
    let response = browser.get(&chatgpt_request(&client, "s")).await;
    let sign_in_path = location(&response);

    let mut other_browser = Browser::new(&server);
    let page = other_browser.get(&sign_in_path).await;
    assert_eq!(page.status(), 403);
    let html = page.text().await.unwrap();
    assert!(!html.contains("csrf_token"));
}

#[tokio::test]
async fn expired_interaction_shows_error_page() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    create_user(&server, "ada", None).await;
    let mut browser = Browser::new(&server);
    let (interaction_id, csrf) = open_sign_in(&mut browser, &chatgpt_request(&client, "s")).await;
    let row = interaction::Entity::find_by_id(interaction_id.clone())
        .one(server.db())
        .await
        .unwrap()
        .unwrap();
    let mut row = row.into_active_model();
    row.expires_at = Set(app::ssr::now() - 1);
    row.update(server.db()).await.unwrap();
    let before = counts(&server).await;

    let fields = [
        ("interaction", interaction_id.as_str()),
        ("csrf_token", csrf.as_str()),
        ("login", "ada"),
        ("password", PASSWORD),
    ];
    let response = browser.post_form("/sign-in", &fields).await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("expired"));
    assert_eq!(counts(&server).await, before);
}

#[tokio::test]
async fn authorization_post_needs_form_body() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let body = serde_json::json!({
        "response_type": "code",
        "client_id": client,
        "redirect_uri": PLUGIN_CALLBACK,
    });
    let response = server
        .http
        .post(server.url("/oidc/auth"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    assert_eq!(counts(&server).await.interactions, 0);
}

#[tokio::test]
async fn concurrent_posts_issue_one_code() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    create_user(&server, "ada", None).await;
    let mut browser = Browser::new(&server);
    let (interaction_id, csrf) = open_sign_in(&mut browser, &chatgpt_request(&client, "s")).await;
    let browser_cookie = browser.cookies["latch_browser"].clone();

    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("interaction", interaction_id.as_str()),
            ("csrf_token", csrf.as_str()),
            ("login", "ada"),
            ("password", PASSWORD),
        ])
        .finish();
    let post = || {
        server
            .http
            .post(server.url("/sign-in"))
            .header("cookie", format!("latch_browser={browser_cookie}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
    };
    let (first, second) = tokio::join!(post(), post());
    let mut statuses = vec![
        first.unwrap().status().as_u16(),
        second.unwrap().status().as_u16(),
    ];
    statuses.sort();

    assert_eq!(statuses, vec![303, 400]);
    assert_eq!(counts(&server).await.codes, 1);
}
