//! Console server functions and pages over HTTP: what they store, what
//! they reject, and that a rejected request leaves stored data unchanged.

use crate::common::TestServer;
use app::model::{ApplicationDetails, ApplicationKind};
use app::ssr::applications::{self, NewApplication};
use reqwest::StatusCode;
use serde_json::Value;

const CALLBACK: &str = "https://chatgpt.com/aip/g-abc123/oauth/callback";

async fn create_app(server: &TestServer, uris: &[&str]) -> ApplicationDetails {
    let input = NewApplication {
        name: "Weather plugin".into(),
        kind: ApplicationKind::ChatgptPlugin,
        redirect_uris: uris.iter().map(|uri| uri.to_string()).collect(),
        always_issue_refresh_token: false,
    };
    applications::create_application(server.db(), &server.state.master_key, input, 1_700_000_000).await.unwrap()
}

async fn stored(server: &TestServer, id: &str) -> ApplicationDetails {
    applications::get_application(server.db(), &server.state.master_key, id).await.unwrap()
}

/// Posts a form-encoded body to a server function as a script would.
async fn call(server: &TestServer, function: &str, body: String) -> (StatusCode, String) {
    let response = server
        .admin_client()
        .await
        .post(server.url(&format!("/api/{function}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[tokio::test]
async fn create_application_through_server_function() {
    let server = TestServer::start().await;
    let (status, body) = call(&server, "create_application", form(&[("name", "My plugin"), ("kind", "chatgpt_plugin")])).await;
    assert!(status.is_success() || status.is_redirection(), "{status}: {body}");
    let list = applications::list_applications(server.db()).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "My plugin");
    let details = stored(&server, &list[0].id).await;
    assert_eq!(details.id.len(), 21);
    assert!(details.id.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
    assert_eq!(details.secrets.len(), 1, "a new plugin has a secret to copy");
    assert_eq!(details.secrets[0].value.len(), 32);
}

#[tokio::test]
async fn long_name_is_rejected_and_nothing_created() {
    let server = TestServer::start().await;
    let name = "x".repeat(10_000);
    let (status, body) = call(&server, "create_application", form(&[("name", &name), ("kind", "chatgpt_plugin")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("limit is 128"), "{body}");
    assert!(applications::list_applications(server.db()).await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_kind_is_rejected() {
    let server = TestServer::start().await;
    let (status, body) = call(&server, "create_application", form(&[("name", "x"), ("kind", "spa")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(applications::list_applications(server.db()).await.unwrap().is_empty());
}

#[tokio::test]
async fn redirect_uris_saved_and_read_back() {
    let server = TestServer::start().await;
    let app = create_app(&server, &[]).await;
    let (status, body) = call(
        &server,
        "save_redirect_uris",
        form(&[("id", &app.id), ("uris[0]", CALLBACK), ("uris[1]", " https://chat.openai.com/aip/g-abc123/oauth/callback ")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let saved: Vec<String> = serde_json::from_str(&body).unwrap();
    assert_eq!(saved, vec![CALLBACK.to_string(), "https://chat.openai.com/aip/g-abc123/oauth/callback".into()]);
    assert_eq!(stored(&server, &app.id).await.redirect_uris, saved);
}

#[tokio::test]
async fn bad_redirect_uris_rejected_per_row() {
    let server = TestServer::start().await;
    let app = create_app(&server, &[CALLBACK]).await;
    for bad in [
        "https://chat.openai.com/aip/[your-plugin-id]/oauth/callback",
        "javascript:alert(1)",
        "https://example.com/cb#fragment",
        "https://user:pw@example.com/cb",
        "https://example.com/a/../cb",
        "/relative/cb",
    ] {
        let (status, body) = call(
            &server,
            "save_redirect_uris",
            form(&[("id", &app.id), ("uris[0]", "https://example.com/ok"), ("uris[1]", bad)]),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        let error: Value = serde_json::from_str(&body).unwrap();
        let rows = &error["InvalidRedirectUris"]["rows"];
        assert_eq!(rows.as_array().map(Vec::len), Some(1), "{bad}: {body}");
        assert_eq!(rows[0]["index"], 1, "{bad}: {body}");
        assert_eq!(stored(&server, &app.id).await.redirect_uris, vec![CALLBACK.to_string()], "{bad} changed the stored list");
    }
}

#[tokio::test]
async fn ten_thousand_redirect_uris_rejected() {
    let server = TestServer::start().await;
    let app = create_app(&server, &[CALLBACK]).await;
    let uris: Vec<(String, String)> = (0..10_000)
        .map(|i| (format!("uris[{i}]"), format!("https://example.com/cb/{i}")))
        .collect();
    let mut pairs: Vec<(&str, &str)> = vec![("id", app.id.as_str())];
    pairs.extend(uris.iter().map(|(key, value)| (key.as_str(), value.as_str())));
    let (status, body) = call(&server, "save_redirect_uris", form(&pairs)).await;
    assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE, "{status}: {body}");
    assert!(body.contains("at most 32") || status == StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(stored(&server, &app.id).await.redirect_uris, vec![CALLBACK.to_string()]);
}

#[tokio::test]
async fn malformed_bodies_rejected_without_change() {
    let server = TestServer::start().await;
    let app = create_app(&server, &[CALLBACK]).await;
    let before = stored(&server, &app.id).await;
    let cases: Vec<(&str, String)> = vec![
        ("save_redirect_uris", "%%%not-a-form".into()),
        ("save_redirect_uris", form(&[("uris[0]", CALLBACK)])),
        ("set_always_issue_refresh_token", form(&[("id", &app.id), ("enabled", "maybe")])),
        ("set_always_issue_refresh_token", form(&[("id", &app.id)])),
        ("save_manifest_settings", form(&[("id", &app.id), ("verification_token", "ok"), ("content_type", "text/plain")])),
        ("save_manifest_settings", form(&[("id", &app.id), ("verification_token", "two words"), ("content_type", "application/json")])),
        ("save_audience", form(&[("id", &app.id), ("audience", "not a url")])),
        ("save_redirect_uris", form(&[("id", "doesnotexist"), ("uris[0]", CALLBACK)])),
    ];
    for (function, body) in cases {
        let (status, answer) = call(&server, function, body.clone()).await;
        assert!(status.is_client_error(), "{function} {body}: {status} {answer}");
        assert!(!answer.is_empty(), "{function} {body}: empty error");
        assert_eq!(stored(&server, &app.id).await, before, "{function} {body} changed the application");
    }
}

#[tokio::test]
async fn refresh_token_switch_persists() {
    let server = TestServer::start().await;
    let app = create_app(&server, &[CALLBACK]).await;
    let (status, body) = call(&server, "set_always_issue_refresh_token", form(&[("id", &app.id), ("enabled", "true")])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(stored(&server, &app.id).await.always_issue_refresh_token);
    call(&server, "set_always_issue_refresh_token", form(&[("id", &app.id), ("enabled", "false")])).await;
    assert!(!stored(&server, &app.id).await.always_issue_refresh_token);
}

#[tokio::test]
async fn manifest_settings_persist() {
    let server = TestServer::start().await;
    let app = create_app(&server, &[CALLBACK]).await;
    let (status, body) = call(
        &server,
        "save_manifest_settings",
        form(&[("id", &app.id), ("verification_token", "abc123def"), ("content_type", "application/x-www-form-urlencoded")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let details = stored(&server, &app.id).await;
    assert_eq!(details.openai_verification_token.as_deref(), Some("abc123def"));
    assert_eq!(details.token_content_type, app::model::TokenContentType::Form);
}

#[tokio::test]
async fn guide_page_renders_without_javascript() {
    let server = TestServer::start().await;
    let app = create_app(&server, &[]).await;
    let response = server.admin_client().await.get(server.url(&format!("/console/applications/{}", app.id))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("Connect a ChatGPT plugin"));
    assert!(html.contains(&app.id));
    assert!(html.contains("https://chat.openai.com/aip/[your-plugin-id]/oauth/callback"));
    assert!(html.contains(&format!("{}/oidc/auth", server.base_url)));
    assert!(html.contains(&format!("action=\"/api/save_redirect_uris\"")), "forms post to server functions");
}

#[tokio::test]
async fn custom_domain_changes_guide_urls() {
    let server = TestServer::start().await;
    let app = create_app(&server, &[CALLBACK]).await;
    let (status, body) = call(&server, "save_custom_domain", form(&[("custom_domain", "Auth.Example.com")])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let html = server
        .admin_client()
        .await
        .get(server.url(&format!("/console/applications/{}", app.id)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("https://auth.example.com/oidc/auth"), "authorization endpoint on the domain");
    assert!(html.contains("https://auth.example.com/oidc/token"), "token endpoint on the domain");
    assert!(!html.contains(&format!("{}/oidc/token", server.base_url)), "no URL on the public URL");

    let (status, body) = call(&server, "save_custom_domain", form(&[("custom_domain", "https://bad/")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let domain = app::ssr::settings::custom_domain(server.db()).await.unwrap();
    assert_eq!(domain.as_deref(), Some("auth.example.com"), "a rejected domain keeps the saved one");
}

#[tokio::test]
async fn delete_application_removes_secrets() {
    let server = TestServer::start().await;
    let app = create_app(&server, &[CALLBACK]).await;
    let (status, body) = call(&server, "delete_application", form(&[("id", &app.id)])).await;
    assert!(status.is_success() || status.is_redirection(), "{status}: {body}");
    assert!(applications::get_application(server.db(), &server.state.master_key, &app.id).await.is_err());
    assert!(applications::live_secrets(server.db(), &server.state.master_key, &app.id, 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn healthz_answers() {
    let server = TestServer::start().await;
    let response = server.http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn rejected_plain_form_returns_to_its_page_with_the_message() {
    let server = TestServer::start().await;
    let app = create_app(&server, &[CALLBACK]).await;
    let admin = server.admin_client().await;
    let page = server.url(&format!("/console/applications/{}?saved=true", app.id));
    let response = admin
        .post(server.url("/api/save_redirect_uris"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/html,application/xhtml+xml")
        .header("referer", &page)
        .body(form(&[("id", &app.id), ("uris[0]", "javascript:alert(1)")]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{:?}", response.headers());
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("/console/applications/{}?error=", app.id)), "{location}");
    assert!(!location.contains("saved="), "{location}");

    let shown = admin.get(server.url(&location)).send().await.unwrap().text().await.unwrap();
    assert!(shown.contains("role=\"alert\""), "the guide shows the error");
    assert!(shown.contains("Some redirect URIs are invalid."), "{shown}");
    assert!(shown.contains("URI 1: The javascript: scheme is not allowed."), "the row's reason is shown");
    assert_eq!(stored(&server, &app.id).await.redirect_uris, vec![CALLBACK.to_owned()]);

    // A page of another origin is never the target.
    let foreign = admin
        .post(server.url("/api/save_redirect_uris"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/html")
        .header("referer", "https://evil.example/console/x")
        .body(form(&[("id", &app.id), ("uris[0]", "javascript:alert(1)")]))
        .send()
        .await
        .unwrap();
    assert_ne!(foreign.status(), StatusCode::SEE_OTHER);
}
