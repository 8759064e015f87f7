//! The authorization endpoint over HTTP: client and redirect URI checks,
//! error redirects, scopes, PKCE, prompt handling and what the issued code
//! records.

use crate::browser::*;
use crate::common::TestServer;
use reqwest::header::{CONTENT_TYPE, LOCATION};

/// Sends a GET to the authorization endpoint with an optional session cookie.
async fn authorize(
    server: &TestServer,
    pairs: &[(&str, &str)],
    session: Option<&str>,
) -> reqwest::Response {
    let mut browser = Browser::new(server);
    if let Some(cookie) = session {
        browser
            .cookies
            .insert("latch_session".into(), cookie.into());
    }
    browser.get(&authorize_path(pairs)).await
}

fn plugin_request<'a>(client_id: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", PLUGIN_CALLBACK),
        ("state", "xyz"),
    ];
    pairs.extend_from_slice(extra);
    pairs
}

/// Asserts an HTML error page without a redirect.
async fn assert_error_page(response: reqwest::Response) {
    assert_eq!(response.status(), 400);
    assert!(response.headers().get(LOCATION).is_none());
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/html"));
    assert_eq!(response.headers()["x-frame-options"], "DENY");
}

/// Asserts a 303 error redirect to `callback` with `error`, the state and iss.
fn assert_error_redirect(
    server: &TestServer,
    response: &reqwest::Response,
    callback: &str,
    error: &str,
    state: &str,
) {
    assert_eq!(response.status(), 303, "redirects use 303, never 307");
    let target = location(response);
    assert_eq!(without_query(&target), callback);
    let query = query_of(&target);
    assert_eq!(query.get("error").map(String::as_str), Some(error));
    assert!(
        query
            .get("error_description")
            .is_some_and(|text| !text.is_empty())
    );
    assert_eq!(query.get("state").map(String::as_str), Some(state));
    assert_eq!(query.get("iss"), Some(&issuer(server)));
    assert!(query.get("code").is_none());
}

/// Asserts a 303 to the sign-in page.
fn assert_sign_in_redirect(response: &reqwest::Response) {
    assert_eq!(response.status(), 303);
    assert!(location(response).starts_with("/sign-in?interaction="));
}

/// Asserts a 303 with a code to `callback` and returns the code.
fn assert_code_redirect(
    server: &TestServer,
    response: &reqwest::Response,
    callback: &str,
) -> String {
    assert_eq!(response.status(), 303);
    let target = location(response);
    assert_eq!(without_query(&target), callback);
    let query = query_of(&target);
    assert_eq!(query.get("iss"), Some(&issuer(server)));
    query.get("code").expect("redirect carries a code").clone()
}

#[tokio::test]
async fn unregistered_redirect_uri_shows_error_page() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &["https://example.com/cb"], true).await;
    let before = counts(&server).await;
    let variants = [
        "https://example.com/cb/",
        "https://example.com/CB",
        "https://example.com/cb?extra=1",
        "https://example.com:8443/cb",
        "https://evil.example/cb",
    ];
    for redirect_uri in variants {
        let pairs = [
            ("response_type", "code"),
            ("client_id", client.as_str()),
            ("redirect_uri", redirect_uri),
            ("state", "s"),
        ];
        assert_error_page(authorize(&server, &pairs, None).await).await;
    }
    assert_eq!(counts(&server).await, before);
}

#[tokio::test]
async fn unknown_or_missing_client_shows_error_page() {
    let server = TestServer::start().await;
    plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let before = counts(&server).await;
    let unknown = [
        ("response_type", "code"),
        ("client_id", "nosuchclient"),
        ("redirect_uri", PLUGIN_CALLBACK),
    ];
    assert_error_page(authorize(&server, &unknown, None).await).await;
    let missing = [("response_type", "code"), ("redirect_uri", PLUGIN_CALLBACK)];
    assert_error_page(authorize(&server, &missing, None).await).await;
    assert_eq!(counts(&server).await, before);
}

#[tokio::test]
async fn missing_redirect_uri_shows_error_page() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let pairs = [("response_type", "token"), ("client_id", client.as_str())];
    assert_error_page(authorize(&server, &pairs, None).await).await;
}

#[tokio::test]
async fn loopback_redirect_accepts_any_port() {
    let server = TestServer::start().await;
    let client = native_app(&server, &["http://127.0.0.1/", "http://[::1]/cb"]).await;
    for redirect_uri in [
        "http://127.0.0.1:58892/",
        "http://127.0.0.1/",
        "http://[::1]:49152/cb",
    ] {
        let pairs = [
            ("client_id", client.as_str()),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        assert_sign_in_redirect(&authorize(&server, &pairs, None).await);
    }
    assert_eq!(counts(&server).await.interactions, 3);
}

#[tokio::test]
async fn loopback_exception_keeps_path_host_and_scheme() {
    let server = TestServer::start().await;
    let client = native_app(&server, &["http://127.0.0.1/"]).await;
    let before = counts(&server).await;
    for redirect_uri in [
        "http://127.0.0.1:58892/other",
        "http://localhost:58892/",
        "https://127.0.0.1:58892/",
        "http://[::1]:58892/",
    ] {
        let pairs = [
            ("client_id", client.as_str()),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        assert_error_page(authorize(&server, &pairs, None).await).await;
    }
    assert_eq!(counts(&server).await, before);
}

#[tokio::test]
async fn custom_scheme_redirect_matches_exactly() {
    let server = TestServer::start().await;
    let client = native_app(&server, &["com.example.app:/cb"]).await;
    let request = |redirect_uri: &'static str| {
        vec![
            ("client_id", client.clone()),
            ("response_type", "code".to_owned()),
            ("redirect_uri", redirect_uri.to_owned()),
            ("code_challenge", CHALLENGE.to_owned()),
            ("code_challenge_method", "S256".to_owned()),
        ]
    };
    let exact = request("com.example.app:/cb");
    let exact: Vec<(&str, &str)> = exact.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_sign_in_redirect(&authorize(&server, &exact, None).await);

    let before = counts(&server).await;
    for look_alike in [
        "https://com.example.app/cb",
        "com.example.app:/cb/",
        "com.example.app://cb",
    ] {
        let pairs = request(look_alike);
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_error_page(authorize(&server, &pairs, None).await).await;
    }
    assert_eq!(counts(&server).await, before);
}

#[tokio::test]
async fn later_errors_redirect_with_state_and_iss() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let native = native_app(&server, &["http://127.0.0.1/cb"]).await;
    let state = "a b+c/d=e&f%g\u{e9}";
    let before = counts(&server).await;

    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("response_type", "")], "invalid_request"),
        (
            vec![
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (vec![("code_challenge", CHALLENGE)], "invalid_request"),
        (vec![("code_challenge_method", "S256")], "invalid_request"),
        (
            vec![
                ("code_challenge", "short"),
                ("code_challenge_method", "S256"),
            ],
            "invalid_request",
        ),
        (vec![("prompt", "none login")], "invalid_request"),
        (vec![("max_age", "-1")], "invalid_request"),
        (vec![("response_mode", "form_post")], "invalid_request"),
        (
            vec![("request", "eyJhbGciOiJub25lIn0.e30.")],
            "request_not_supported",
        ),
        (
            vec![("request_uri", "https://rp.example/req")],
            "request_uri_not_supported",
        ),
        (
            vec![("scope", "openid"), ("scope", "email")],
            "invalid_request",
        ),
    ];
    for (extra, error) in cases {
        let mut pairs = vec![
            ("client_id", client.as_str()),
            ("redirect_uri", PLUGIN_CALLBACK),
            ("state", state),
        ];
        if !extra.iter().any(|(name, _)| *name == "response_type") {
            pairs.push(("response_type", "code"));
        }
        pairs.extend(extra.iter().filter(|(_, value)| !value.is_empty()));
        let response = authorize(&server, &pairs, None).await;
        assert_error_redirect(&server, &response, PLUGIN_CALLBACK, error, state);
    }

    // A public client must use PKCE.
    let pairs = [
        ("client_id", native.as_str()),
        ("response_type", "code"),
        ("redirect_uri", "http://127.0.0.1:4000/cb"),
        ("state", state),
    ];
    let response = authorize(&server, &pairs, None).await;
    assert_error_redirect(
        &server,
        &response,
        "http://127.0.0.1:4000/cb",
        "invalid_request",
        state,
    );

    assert_eq!(counts(&server).await, before);
}

#[tokio::test]
async fn unknown_parameters_are_ignored() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let pairs = plugin_request(
        &client,
        &[
            ("foo", "bar"),
            ("foo", "baz"),
            ("resource", "https://api.example/mcp"),
            ("ui_locales", "de"),
        ],
    );
    assert_sign_in_redirect(&authorize(&server, &pairs, None).await);
}

#[tokio::test]
async fn authorization_request_by_post_works() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let mut browser = Browser::new(&server);
    let response = browser
        .post_form(
            "/oidc/auth",
            &plugin_request(&client, &[("scope", "openid")]),
        )
        .await;
    assert_sign_in_redirect(&response);
    assert_eq!(counts(&server).await.interactions, 1);
}

#[tokio::test]
async fn prompt_none_without_session_returns_login_required() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let before = counts(&server).await;
    let response = authorize(
        &server,
        &plugin_request(&client, &[("prompt", "none")]),
        None,
    )
    .await;
    assert_error_redirect(&server, &response, PLUGIN_CALLBACK, "login_required", "xyz");

    let expired_cookie = "not-a-live-session";
    let response = authorize(
        &server,
        &plugin_request(&client, &[("prompt", "none")]),
        Some(expired_cookie),
    )
    .await;
    assert_error_redirect(&server, &response, PLUGIN_CALLBACK, "login_required", "xyz");
    assert_eq!(counts(&server).await, before);
}

#[tokio::test]
async fn prompt_none_with_session_returns_code() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let user = create_user(&server, "ada", None).await;
    let session = create_session(&server, &user.id, app::ssr::now()).await;
    let response = authorize(
        &server,
        &plugin_request(&client, &[("prompt", "none")]),
        Some(&session),
    )
    .await;
    assert_code_redirect(&server, &response, PLUGIN_CALLBACK);
    assert_eq!(
        query_of(&location(&response))
            .get("state")
            .map(String::as_str),
        Some("xyz")
    );
}

#[tokio::test]
async fn stale_session_requires_sign_in() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let user = create_user(&server, "ada", None).await;
    let now = app::ssr::now();
    let session = create_session(&server, &user.id, now - 1000).await;

    let response = authorize(
        &server,
        &plugin_request(&client, &[("prompt", "login")]),
        Some(&session),
    )
    .await;
    assert_sign_in_redirect(&response);
    let response = authorize(
        &server,
        &plugin_request(&client, &[("max_age", "60")]),
        Some(&session),
    )
    .await;
    assert_sign_in_redirect(&response);
    let response = authorize(
        &server,
        &plugin_request(&client, &[("max_age", "0")]),
        Some(&session),
    )
    .await;
    assert_sign_in_redirect(&response);
    let response = authorize(
        &server,
        &plugin_request(&client, &[("prompt", "none"), ("max_age", "60")]),
        Some(&session),
    )
    .await;
    assert_error_redirect(&server, &response, PLUGIN_CALLBACK, "login_required", "xyz");
    assert_eq!(counts(&server).await.codes, 0);

    let response = authorize(
        &server,
        &plugin_request(&client, &[("max_age", "5000")]),
        Some(&session),
    )
    .await;
    let code = assert_code_redirect(&server, &response, PLUGIN_CALLBACK);
    assert_eq!(code_row(&server, &code).await.auth_time, now - 1000);
}

#[tokio::test]
async fn nonce_and_challenge_are_stored_with_code() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let user = create_user(&server, "ada", None).await;
    let session = create_session(&server, &user.id, app::ssr::now()).await;
    let extra = [
        ("scope", "openid"),
        ("nonce", "n-0S6_WzA2Mj"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let response = authorize(&server, &plugin_request(&client, &extra), Some(&session)).await;
    let code = assert_code_redirect(&server, &response, PLUGIN_CALLBACK);

    let row = code_row(&server, &code).await;
    assert_eq!(row.code_hash, app::ssr::ids::sha256_hex(&code));
    assert_eq!(row.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
    assert_eq!(row.code_challenge.as_deref(), Some(CHALLENGE));
    assert_eq!(row.redirect_uri, PLUGIN_CALLBACK);
    assert_eq!(row.user_id, user.id);
    assert_eq!(row.application_id, client);
}

#[tokio::test]
async fn absent_scope_uses_default_scope() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[CONNECTOR_CALLBACK], true).await;
    let user = create_user(&server, "ada", None).await;
    let session = create_session(&server, &user.id, app::ssr::now()).await;
    // ChatGPT reconnecting a connector: no scope, PKCE and a resource.
    let pairs = [
        ("response_type", "code"),
        ("client_id", client.as_str()),
        ("redirect_uri", CONNECTOR_CALLBACK),
        ("state", "reconnect"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("resource", "https://mcp.example/mcp"),
    ];
    let response = authorize(&server, &pairs, Some(&session)).await;
    let code = assert_code_redirect(&server, &response, CONNECTOR_CALLBACK);
    let row = code_row(&server, &code).await;
    // The default scope is "openid profile offline_access"; offline_access
    // needs a consent screen, but this application always gets a refresh token.
    assert_eq!(row.scope, "openid profile");
    assert!(row.issue_refresh_token);
}

#[tokio::test]
async fn empty_scope_uses_default_scope() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let user = create_user(&server, "ada", None).await;
    let session = create_session(&server, &user.id, app::ssr::now()).await;
    let response = authorize(
        &server,
        &plugin_request(&client, &[("scope", "")]),
        Some(&session),
    )
    .await;
    let code = assert_code_redirect(&server, &response, PLUGIN_CALLBACK);
    assert_eq!(code_row(&server, &code).await.scope, "openid profile");
}

#[tokio::test]
async fn unknown_scopes_are_dropped() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let user = create_user(&server, "ada", None).await;
    let session = create_session(&server, &user.id, app::ssr::now()).await;
    let extra = [("scope", "openid admin email write:all")];
    let response = authorize(&server, &plugin_request(&client, &extra), Some(&session)).await;
    let code = assert_code_redirect(&server, &response, PLUGIN_CALLBACK);
    assert_eq!(code_row(&server, &code).await.scope, "openid email");
}

#[tokio::test]
async fn offline_access_without_consent_is_dropped() {
    let server = TestServer::start().await;
    let always = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let strict = plugin_app(&server, &[PLUGIN_CALLBACK], false).await;
    let user = create_user(&server, "ada", None).await;
    let session = create_session(&server, &user.id, app::ssr::now()).await;
    let extra = [("scope", "openid offline_access")];

    // "Always issue refresh token": no consent screen, refresh token anyway.
    let response = authorize(&server, &plugin_request(&always, &extra), Some(&session)).await;
    let code = assert_code_redirect(&server, &response, PLUGIN_CALLBACK);
    let row = code_row(&server, &code).await;
    assert_eq!(row.scope, "openid");
    assert!(row.issue_refresh_token);

    // prompt=none cannot show a consent screen, so offline_access is dropped.
    let extra_none = [("scope", "openid offline_access"), ("prompt", "none")];
    let response = authorize(
        &server,
        &plugin_request(&strict, &extra_none),
        Some(&session),
    )
    .await;
    let code = assert_code_redirect(&server, &response, PLUGIN_CALLBACK);
    let row = code_row(&server, &code).await;
    assert_eq!(row.application_id, strict);
    assert_eq!(row.scope, "openid");
    assert!(!row.issue_refresh_token);

    // Otherwise the strict application gets the consent screen first.
    let before = counts(&server).await;
    let response = authorize(&server, &plugin_request(&strict, &extra), Some(&session)).await;
    assert_eq!(response.status(), 303);
    assert!(location(&response).starts_with("/consent?interaction="));
    assert_eq!(counts(&server).await.codes, before.codes);
}

#[tokio::test]
async fn refresh_flag_follows_always_issue_switch() {
    let server = TestServer::start().await;
    let always = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let strict = plugin_app(&server, &[PLUGIN_CALLBACK], false).await;
    let user = create_user(&server, "ada", None).await;
    let session = create_session(&server, &user.id, app::ssr::now()).await;
    let extra = [("scope", "openid profile")];

    let response = authorize(&server, &plugin_request(&always, &extra), Some(&session)).await;
    let code = assert_code_redirect(&server, &response, PLUGIN_CALLBACK);
    assert!(code_row(&server, &code).await.issue_refresh_token);

    let response = authorize(&server, &plugin_request(&strict, &extra), Some(&session)).await;
    let code = assert_code_redirect(&server, &response, PLUGIN_CALLBACK);
    let row = code_row(&server, &code).await;
    assert_eq!(row.application_id, strict);
    assert!(!row.issue_refresh_token);
}

#[tokio::test]
async fn connector_gets_refresh_token_after_consent() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[CONNECTOR_CALLBACK], false).await;
    create_user(&server, "ada", None).await;
    let mut browser = Browser::new(&server);
    // ChatGPT connector: offline_access requested, no prompt parameter.
    let pairs = [
        ("response_type", "code"),
        ("client_id", client.as_str()),
        ("redirect_uri", CONNECTOR_CALLBACK),
        ("scope", "openid email offline_access profile"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("resource", "https://mcp.example/mcp"),
        ("state", "s-42"),
    ];
    let response = browser.get(&authorize_path(&pairs)).await;
    assert_sign_in_redirect(&response);
    let page = browser
        .get(&location(&response))
        .await
        .text()
        .await
        .unwrap();
    let interaction = input_value(&page, "interaction");
    let csrf = input_value(&page, "csrf_token");
    let fields = [
        ("interaction", interaction.as_str()),
        ("csrf_token", csrf.as_str()),
        ("login", "ada"),
        ("password", PASSWORD),
    ];
    let response = browser.post_form("/sign-in", &fields).await;
    assert_eq!(response.status(), 303);
    let consent_path = location(&response);
    assert!(consent_path.starts_with("/consent?interaction="));
    assert_eq!(counts(&server).await.codes, 0);

    let page = browser.get(&consent_path).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Weather plugin"));
    assert!(page.contains("refresh token"));
    let csrf = input_value(&page, "csrf_token");
    let fields = [
        ("interaction", interaction.as_str()),
        ("csrf_token", csrf.as_str()),
        ("decision", "allow"),
    ];
    let response = browser.post_form("/consent", &fields).await;
    let code = assert_code_redirect(&server, &response, CONNECTOR_CALLBACK);
    assert_eq!(
        query_of(&location(&response))
            .get("state")
            .map(String::as_str),
        Some("s-42")
    );
    let row = code_row(&server, &code).await;
    assert_eq!(row.scope, "openid email offline_access profile");
    assert!(row.issue_refresh_token);
    assert_eq!(counts(&server).await.interactions, 0);
}

#[tokio::test]
async fn prompt_consent_shows_consent_and_deny_returns_access_denied() {
    let server = TestServer::start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    let user = create_user(&server, "ada", None).await;
    let session = create_session(&server, &user.id, app::ssr::now()).await;
    let mut browser = Browser::new(&server);
    browser.cookies.insert("latch_session".into(), session);
    let response = browser
        .get(&authorize_path(&plugin_request(
            &client,
            &[("prompt", "consent")],
        )))
        .await;
    assert_eq!(response.status(), 303);
    let consent_path = location(&response);
    assert!(consent_path.starts_with("/consent?interaction="));

    let page = browser.get(&consent_path).await.text().await.unwrap();
    let interaction = input_value(&page, "interaction");
    let csrf = input_value(&page, "csrf_token");
    let fields = [
        ("interaction", interaction.as_str()),
        ("csrf_token", csrf.as_str()),
        ("decision", "deny"),
    ];
    let response = browser.post_form("/consent", &fields).await;
    assert_error_redirect(&server, &response, PLUGIN_CALLBACK, "access_denied", "xyz");
    let after = counts(&server).await;
    assert_eq!(after.codes, 0);
    assert_eq!(after.interactions, 0);
}
