//! Attacks on a running server: each test sends what a hostile page,
//! client or user could send and checks that the server rejects it.

use crate::common::TestServer;
use app::model::{ApplicationDetails, ApplicationKind};
use app::ssr::applications::{self, NewApplication};
use reqwest::StatusCode;

const CALLBACK: &str = "https://rp.example/cb";

async fn create_app(server: &TestServer) -> ApplicationDetails {
    let input = NewApplication {
        name: "Target plugin".into(),
        kind: ApplicationKind::ChatgptPlugin,
        redirect_uris: vec![CALLBACK.into()],
        always_issue_refresh_token: true,
    };
    applications::create_application(server.db(), &server.state.master_key, input, 1_700_000_000)
        .await
        .unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A page on another site in the operator's browser posts a plain HTML
/// form to the console on 127.0.0.1. The browser sends it without a CORS
/// preflight, from a loopback peer, with the page's origin.
#[tokio::test]
async fn console_rejects_cross_site_form_post() {
    let server = TestServer::start().await;
    let app = create_app(&server).await;
    let response = server
        .admin_client()
        .await
        .post(server.url("/api/save_redirect_uris"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .body(form(&[
            ("id", &app.id),
            ("uris[0]", "https://evil.example/steal"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let stored = applications::get_application(server.db(), &server.state.master_key, &app.id)
        .await
        .unwrap();
    assert_eq!(stored.redirect_uris, vec![CALLBACK.to_owned()]);
}

/// A page from another local port is another origin too.
#[tokio::test]
async fn console_rejects_post_from_another_local_origin() {
    let server = TestServer::start().await;
    let app = create_app(&server).await;
    let response = server
        .admin_client()
        .await
        .post(server.url("/api/delete_application"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "http://127.0.0.1:1")
        .body(form(&[("id", &app.id)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        applications::get_application(server.db(), &server.state.master_key, &app.id)
            .await
            .is_ok()
    );
}

/// DNS rebinding: a name the attacker controls resolves to 127.0.0.1, so
/// the browser reaches the console as that name and the page reads the
/// answer as same-origin. The Host header still names the attacker.
#[tokio::test]
async fn console_rejects_foreign_host_name() {
    let server = TestServer::start().await;
    let app = create_app(&server).await;
    let port = server.base_url.rsplit(':').next().unwrap().to_owned();
    let host = format!("rebind.evil.example:{port}");
    let response = server
        .admin_client()
        .await
        .post(server.url("/api/get_guide"))
        .header("host", host.as_str())
        .header("origin", format!("http://{host}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("id", &app.id)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = response.text().await.unwrap();
    assert!(
        !body.contains(&app.secrets[0].value),
        "the secret leaked: {body}"
    );

    let page = server
        .admin_client()
        .await
        .get(server.url("/console"))
        .header("host", host.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
}

/// The console's own pages post with their own origin, and scripts send
/// no Origin at all; both still work, by name and by address.
#[tokio::test]
async fn console_accepts_same_origin_and_loopback_names() {
    let server = TestServer::start().await;
    let app = create_app(&server).await;
    let port = server.base_url.rsplit(':').next().unwrap().to_owned();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
    ] {
        for origin in [None, Some(format!("http://{host}"))] {
            let mut request = server
                .admin_client()
                .await
                .post(server.url("/api/get_guide"))
                .header("host", host.as_str())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&[("id", &app.id)]));
            if let Some(origin) = &origin {
                request = request
                    .header("origin", origin.as_str())
                    .header("sec-fetch-site", "same-origin");
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "host {host}, origin {origin:?}"
            );
        }
    }
}

/// Anyone can start an authorization request. An unbounded `state` would
/// store up to the body limit per request and come back in a `Location`
/// header too long for browsers.
#[tokio::test]
async fn authorize_rejects_oversized_state() {
    use app::ssr::entities::interaction;
    use sea_orm::{EntityTrait, PaginatorTrait};

    let server = TestServer::start().await;
    let app = create_app(&server).await;
    let huge_state = "s".repeat(200_000);
    let response = server
        .http
        .post(server.url("/oidc/auth"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("response_type", "code"),
            ("client_id", &app.id),
            ("redirect_uri", CALLBACK),
            ("state", &huge_state),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(CALLBACK), "{location}");
    assert!(location.contains("error=invalid_request"), "{location}");
    assert!(
        location.len() < 4096,
        "Location is {} bytes",
        location.len()
    );

    let stored = interaction::Entity::find()
        .count(server.db())
        .await
        .unwrap();
    assert_eq!(
        stored, 0,
        "no interaction is stored for the rejected request"
    );
}

/// The console shows client secrets. Another page must not frame it to
/// trick the operator into clicking, and no cache may keep its responses.
#[tokio::test]
async fn console_forbids_framing_and_caching() {
    let server = TestServer::start().await;
    let app = create_app(&server).await;
    let page = server
        .admin_client()
        .await
        .get(server.url("/console"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers();
    assert_eq!(headers["x-frame-options"], "DENY");
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");

    let guide = server
        .admin_client()
        .await
        .post(server.url("/api/get_guide"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("id", &app.id)]))
        .send()
        .await
        .unwrap();
    assert_eq!(guide.status(), StatusCode::OK);
    assert_eq!(guide.headers()["cache-control"], "no-store");
}

/// Anyone can register with someone else's address, because Latch never
/// confirms it. Tokens must mark it unverified, or an API that links accounts by email
/// hands the victim's account to the attacker.
#[tokio::test]
async fn unconfirmed_email_is_marked_unverified() {
    use crate::fixtures::{CodeSpec, claims_of, code, confidential_client, redeem, user};

    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    let user_id = user(&server).await;
    let spec = CodeSpec {
        scope: "openid email".into(),
        ..CodeSpec::default()
    };
    let code = code(&server, &client, &user_id, spec).await;
    let (status, tokens) = redeem(&server, &client, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let id_claims = claims_of(tokens["id_token"].as_str().unwrap());
    assert!(id_claims["email"].is_string(), "{id_claims}");
    assert_eq!(id_claims["email_verified"], false, "{id_claims}");

    let userinfo: serde_json::Value = server
        .http
        .get(server.url("/oidc/me"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(userinfo["email"].is_string(), "{userinfo}");
    assert_eq!(userinfo["email_verified"], false, "{userinfo}");
}

/// A JSON body that names a parameter twice is as ambiguous as a repeated
/// form field: a proxy that reads the first value and Latch, which would
/// read the last, disagree about the request.
#[tokio::test]
async fn token_rejects_repeated_json_member() {
    use crate::fixtures::confidential_client;

    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    let body = format!(
        r#"{{"grant_type":"password","grant_type":"refresh_token","refresh_token":"x","client_id":"{}","client_secret":"{}"}}"#,
        client.id,
        client.secret()
    );
    let response = server
        .http
        .post(server.url("/oidc/token"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["error"], "invalid_request", "{answer}");
}

/// A link on another site that opens the console in a tab is harmless,
/// because the linking page cannot read the tab. Only the link is allowed:
/// the same page may not load the console as a frame or a script.
#[tokio::test]
async fn console_allows_cross_site_link_only() {
    let server = TestServer::start().await;
    let navigation = server
        .admin_client()
        .await
        .get(server.url("/console"))
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "document")
        .send()
        .await
        .unwrap();
    assert_eq!(navigation.status(), StatusCode::OK);

    let frame = server
        .admin_client()
        .await
        .get(server.url("/console"))
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "iframe")
        .send()
        .await
        .unwrap();
    assert_eq!(frame.status(), StatusCode::FORBIDDEN);

    let post = server
        .admin_client()
        .await
        .post(server.url("/api/list_applications"))
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "document")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::FORBIDDEN);
}

/// Deleting an application must end its grants. Its refresh tokens must
/// go too, or its access tokens keep passing UserInfo until they expire.
#[tokio::test]
async fn deleted_application_loses_its_grants() {
    use crate::fixtures::{CodeSpec, code, confidential_client, redeem, user};
    use app::ssr::entities::{authorization_code, refresh_token, refresh_token_family};
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    let user_id = user(&server).await;
    let redeemed = code(&server, &client, &user_id, CodeSpec::default()).await;
    let (status, tokens) = redeem(&server, &client, &redeemed).await;
    assert_eq!(status, 200, "{tokens}");
    let unused = code(&server, &client, &user_id, CodeSpec::default()).await;
    assert!(!unused.is_empty());
    let access_token = tokens["access_token"].as_str().unwrap();
    let before = server
        .http
        .get(server.url("/oidc/me"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(before.status(), StatusCode::OK);

    applications::delete_application(server.db(), &client.id)
        .await
        .unwrap();

    let after = server
        .http
        .get(server.url("/oidc/me"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    let refresh_rows = refresh_token::Entity::find()
        .filter(refresh_token::Column::ApplicationId.eq(client.id.as_str()))
        .count(server.db())
        .await
        .unwrap();
    assert_eq!(refresh_rows, 0);
    let family_rows = refresh_token_family::Entity::find()
        .filter(refresh_token_family::Column::ApplicationId.eq(client.id.as_str()))
        .count(server.db())
        .await
        .unwrap();
    assert_eq!(family_rows, 0);
    let code_rows = authorization_code::Entity::find()
        .filter(authorization_code::Column::ApplicationId.eq(client.id.as_str()))
        .count(server.db())
        .await
        .unwrap();
    assert_eq!(code_rows, 0);
}

/// An access token issued without a refresh token belongs to no refresh
/// token family, and deleting its application must still end it.
#[tokio::test]
async fn deleted_application_token_without_family_fails() {
    use crate::fixtures::{confidential_client, redeemed_without_refresh, user, userinfo_status};

    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    let user_id = user(&server).await;
    let (_, tokens) = redeemed_without_refresh(&server, &client, &user_id).await;
    let access_token = tokens["access_token"].as_str().unwrap();

    applications::delete_application(server.db(), &client.id)
        .await
        .unwrap();

    assert_eq!(userinfo_status(&server, access_token).await, 401);
}
