//! Several client secrets per application: rotation at the token endpoint,
//! expiry, and the console server functions that add and delete secrets.

use crate::common::TestServer;
use crate::fixtures::*;
use app::model::SecretListing;
use app::ssr::entities::application_secret;
use app::ssr::{now, secrets};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, EntityTrait, QueryOrder, Set};
use serde_json::Value;

/// Returns every stored secret row of every application, ordered by id.
async fn secret_rows(server: &TestServer) -> Vec<application_secret::Model> {
    application_secret::Entity::find()
        .order_by_asc(application_secret::Column::Id)
        .all(server.db())
        .await
        .expect("secrets read")
}

async fn listed(server: &TestServer, client: &Client) -> Vec<SecretListing> {
    secrets::list_secrets(server.db(), &server.state.master_key, &client.id)
        .await
        .expect("secrets listed")
}

fn with_secret(client: &Client, secret: &str) -> Client {
    Client {
        id: client.id.clone(),
        secret: Some(secret.to_owned()),
    }
}

/// Redeems a fresh code with `client`'s secret in the body.
async fn redeem_new_code(server: &TestServer, client: &Client, user_id: &str) -> (u16, Value) {
    let code = code(server, client, user_id, CodeSpec::default()).await;
    redeem(server, client, &code).await
}

/// Sends a refresh grant with the secret in an HTTP Basic header.
async fn refresh_with_basic(server: &TestServer, client: &Client, token: &str) -> (u16, Value) {
    let basic = basic_header(&client.id, client.secret());
    let params = [("grant_type", "refresh_token"), ("refresh_token", token)];
    status_and_json(post_form(server, "/oidc/token", &params, Some(&basic)).await).await
}

/// Expects a 401 `invalid_client` that changed no stored code or token.
async fn assert_invalid_client(server: &TestServer, client: &Client, user_id: &str) {
    let code = code(server, client, user_id, CodeSpec::default()).await;
    let before = stored(server).await;
    let (status, body) = redeem(server, client, &code).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client", "{body}");
    assert_eq!(
        stored(server).await,
        before,
        "a rejected client changed stored grants"
    );
}

#[tokio::test]
async fn rotation_without_downtime() {
    let server = TestServer::start().await;
    let old = confidential_client(&server).await;
    let user_id = user(&server).await;
    let old_secret_id = listed(&server, &old).await[0].secret.id.clone();

    let added = secrets::add_secret(
        server.db(),
        &server.state.master_key,
        &old.id,
        "Rotation",
        None,
        now(),
    )
    .await
    .expect("second secret added");
    let new = with_secret(&old, &added.value);
    assert_ne!(old.secret(), new.secret());

    // While both exist, each one redeems codes and refreshes tokens.
    let (status, tokens) = redeem_new_code(&server, &old, &user_id).await;
    assert_eq!(status, 200, "old secret: {tokens}");
    let (status, body) = redeem_new_code(&server, &new, &user_id).await;
    assert_eq!(status, 200, "new secret: {body}");
    let refresh_token = tokens["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let (status, refreshed) = refresh(&server, &old, &refresh_token).await;
    assert_eq!(status, 200, "old secret refreshes: {refreshed}");
    let refresh_token = refreshed["refresh_token"]
        .as_str()
        .expect("rotated refresh token")
        .to_owned();

    secrets::delete_secret(server.db(), &old.id, &old_secret_id, now())
        .await
        .expect("old secret deleted");

    // Only the new secret works now, in the body and in HTTP Basic.
    assert_invalid_client(&server, &old, &user_id).await;
    let before = stored(&server).await;
    let (status, body) = refresh_with_basic(&server, &old, &refresh_token).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(
        stored(&server).await,
        before,
        "the refresh token was not spent"
    );

    let (status, body) = redeem_new_code(&server, &new, &user_id).await;
    assert_eq!(status, 200, "new secret after the deletion: {body}");
    let (status, body) = refresh_with_basic(&server, &new, &refresh_token).await;
    assert_eq!(
        status, 200,
        "the family lives on with the new secret: {body}"
    );
}

#[tokio::test]
async fn expired_secret_is_invalid_client() {
    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    let user_id = user(&server).await;
    let start = now();
    let added = secrets::add_secret(
        server.db(),
        &server.state.master_key,
        &client.id,
        "Short-lived",
        Some(start + 3600),
        start,
    )
    .await
    .expect("expiring secret added");
    let expiring = with_secret(&client, &added.value);

    let (status, body) = redeem_new_code(&server, &expiring, &user_id).await;
    assert_eq!(status, 200, "before the expiry: {body}");

    // Move the expiry into the past, as if an hour had gone by.
    application_secret::ActiveModel {
        id: Set(added.id.clone()),
        expires_at: Set(Some(now() - 1)),
        ..Default::default()
    }
    .update(server.db())
    .await
    .expect("expiry moved");

    assert_invalid_client(&server, &expiring, &user_id).await;
    let (status, body) = redeem_new_code(&server, &client, &user_id).await;
    assert_eq!(status, 200, "the secret without expiry still works: {body}");
}

#[tokio::test]
async fn expiry_ends_at_the_instant_given() {
    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    let start = now();
    let added = secrets::add_secret(
        server.db(),
        &server.state.master_key,
        &client.id,
        "Short-lived",
        Some(start + 3600),
        start,
    )
    .await
    .expect("expiring secret added");
    let key = &server.state.master_key;

    let live = app::ssr::applications::live_secrets(server.db(), key, &client.id, start + 3599)
        .await
        .expect("live secrets read");
    assert!(
        live.contains(&added.value),
        "live one second before the expiry"
    );
    let live = app::ssr::applications::live_secrets(server.db(), key, &client.id, start + 3600)
        .await
        .expect("live secrets read");
    assert!(!live.contains(&added.value), "expired at the expiry");
    assert!(
        live.contains(&client.secret().to_owned()),
        "the other secret is still live"
    );
}

// Console server functions, called as the browser's forms call them.

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Posts a form body to a server function as a signed-in admin's script.
async fn call(server: &TestServer, function: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
    server
        .admin_client()
        .await
        .post(server.url(&format!("/api/{function}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs))
        .send()
        .await
        .expect("server function answers")
}

/// Returns the message of an `InvalidField` error body, or the whole body
/// for other errors.
fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|error| error["InvalidField"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.to_owned())
}

#[tokio::test]
async fn add_and_delete_through_server_functions() {
    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    let old_id = listed(&server, &client).await[0].secret.id.clone();

    let response = call(
        &server,
        "add_secret",
        &[
            ("application_id", &client.id),
            ("name", " Rotation "),
            ("expires_on", "2099-12-31"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let new_id = body["id"].as_str().expect("the new secret's id").to_owned();
    assert_eq!(body["name"], "Rotation");
    // 2099-12-31 ends at midnight UTC that starts 2100-01-01.
    assert_eq!(body["expires_at"], 4_102_444_800_i64);
    assert_eq!(
        location,
        format!(
            "/console/applications/{}?added={new_id}#client-secrets",
            client.id
        )
    );
    let secrets = listed(&server, &client).await;
    assert_eq!(secrets.len(), 2);
    let stored_new = secrets
        .iter()
        .find(|listing| listing.secret.id == new_id)
        .expect("the new secret is stored");
    assert_eq!(
        Some(stored_new.secret.value.as_str()),
        body["value"].as_str()
    );

    let response = call(
        &server,
        "add_secret",
        &[
            ("application_id", &client.id),
            ("name", "No expiry"),
            ("expires_on", ""),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_at"], Value::Null);

    let response = call(
        &server,
        "delete_secret",
        &[("application_id", &client.id), ("secret_id", &old_id)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let location = response.headers()["location"].to_str().unwrap();
    assert_eq!(
        location,
        format!(
            "/console/applications/{}?deleted={old_id}#client-secrets",
            client.id
        )
    );
    let mut remaining: Vec<String> = listed(&server, &client)
        .await
        .into_iter()
        .map(|listing| listing.secret.name)
        .collect();
    remaining.sort();
    assert_eq!(remaining, ["No expiry", "Rotation"]);
}

#[tokio::test]
async fn bad_requests_change_nothing() {
    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    let id = client.id.as_str();
    let before = secret_rows(&server).await;
    let only_secret = before[0].id.clone();

    let cases: Vec<(&str, Vec<(&str, &str)>, StatusCode, &str)> = vec![
        (
            "add_secret",
            vec![("application_id", id), ("name", "   ")],
            StatusCode::BAD_REQUEST,
            "Enter a name for the secret",
        ),
        (
            "add_secret",
            vec![("application_id", id), ("name", "default")],
            StatusCode::BAD_REQUEST,
            "already has a secret named \"default\"",
        ),
        (
            "add_secret",
            vec![
                ("application_id", id),
                ("name", "Old"),
                ("expires_on", "2001-01-01"),
            ],
            StatusCode::BAD_REQUEST,
            "The expiry date has passed",
        ),
        (
            "add_secret",
            vec![
                ("application_id", id),
                ("name", "Old"),
                ("expires_on", "31/12/2099"),
            ],
            StatusCode::BAD_REQUEST,
            "Enter it as YYYY-MM-DD",
        ),
        (
            "add_secret",
            vec![("application_id", "nosuchapplication0000"), ("name", "New")],
            StatusCode::NOT_FOUND,
            "{\"ApplicationNotFound\":\"nosuchapplication0000\"}",
        ),
        (
            "delete_secret",
            vec![("application_id", id), ("secret_id", &only_secret)],
            StatusCode::BAD_REQUEST,
            "ChatGPT would lose access without it",
        ),
        (
            "delete_secret",
            vec![("application_id", id), ("secret_id", "nosuchsecret")],
            StatusCode::BAD_REQUEST,
            "no secret with that ID",
        ),
        (
            "delete_secret",
            vec![
                ("application_id", "nosuchapplication0000"),
                ("secret_id", &only_secret),
            ],
            StatusCode::NOT_FOUND,
            "{\"ApplicationNotFound\":\"nosuchapplication0000\"}",
        ),
    ];
    for (function, pairs, status, expected) in cases {
        let response = call(&server, function, &pairs).await;
        assert_eq!(response.status(), status, "{function} {pairs:?}");
        assert!(
            response.headers().get("location").is_none(),
            "{function} {pairs:?}: no redirect on failure"
        );
        let message = error_message(&response.text().await.unwrap());
        assert!(
            message.contains(expected),
            "{function} {pairs:?}: {message}"
        );
        assert_eq!(
            secret_rows(&server).await,
            before,
            "{function} {pairs:?} changed the stored secrets"
        );
    }
}

#[tokio::test]
async fn server_functions_require_an_admin() {
    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    let before = secret_rows(&server).await;
    let only_secret = before[0].id.clone();
    let requests = [
        (
            "add_secret",
            form(&[("application_id", &client.id), ("name", "Intruder")]),
        ),
        (
            "delete_secret",
            form(&[("application_id", &client.id), ("secret_id", &only_secret)]),
        ),
        ("list_secrets", form(&[("application_id", &client.id)])),
    ];
    for (function, body) in requests {
        let response = server
            .http
            .post(server.url(&format!("/api/{function}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{function}");
        let text = response.text().await.unwrap();
        assert!(
            !text.contains(client.secret()),
            "{function} leaked the secret"
        );
    }
    assert_eq!(secret_rows(&server).await, before);
}

#[tokio::test]
async fn guide_lists_secrets_without_javascript() {
    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    let start = now();
    let expiring = secrets::add_secret(
        server.db(),
        &server.state.master_key,
        &client.id,
        "Rotated",
        Some(start + 3600),
        start,
    )
    .await
    .unwrap();
    let gone = secrets::add_secret(
        server.db(),
        &server.state.master_key,
        &client.id,
        "Lapsed",
        Some(start + 3600),
        start,
    )
    .await
    .unwrap();
    application_secret::ActiveModel {
        id: Set(gone.id.clone()),
        expires_at: Set(Some(start - 1)),
        ..Default::default()
    }
    .update(server.db())
    .await
    .unwrap();

    let html = server
        .admin_client()
        .await
        .get(server.url(&format!(
            "/console/applications/{}?added={}",
            client.id, expiring.id
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Client secrets"));
    assert!(
        html.contains("action=\"/api/add_secret\""),
        "the add form posts to its server function"
    );
    assert!(
        html.contains("action=\"/api/delete_secret\""),
        "the delete form posts to its server function"
    );
    for name in ["Default", "Rotated", "Lapsed"] {
        assert!(
            html.contains(&format!("Value of secret {name}")),
            "{name} is listed"
        );
    }
    assert!(
        html.contains("Added Rotated."),
        "the notice names the added secret"
    );
    assert!(html.contains(">Expired<"), "the lapsed secret is marked");
    assert!(html.contains("never expires"));
    assert!(
        html.contains(&gone.value),
        "an expired secret can still be copied"
    );
}
