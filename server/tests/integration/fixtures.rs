//! Data and requests shared by the protocol tests: applications, users,
//! codes issued directly, token requests and a snapshot of the stored
//! grants for checking that a rejected request changed nothing.

#![allow(dead_code)]

use crate::common::TestServer;
use app::model::ApplicationKind;
use app::ssr::applications::{NewApplication, create_application};
use app::ssr::codes::{CodeGrant, issue_code};
use app::ssr::entities::{
    application, application_secret, authorization_code, refresh_token, refresh_token_family, user,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, QueryOrder, Set};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The callback ChatGPT plugins use.
pub const CALLBACK: &str = "https://chat.openai.com/aip/plugin-8f7e/oauth/callback";
/// A loopback callback of a native app.
pub const NATIVE_CALLBACK: &str = "http://127.0.0.1/cb";
/// Example PKCE verifier from RFC 7636 appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// S256 challenge of [`VERIFIER`].
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A registered client.
#[derive(Debug, Clone)]
pub struct Client {
    /// App ID.
    pub id: String,
    /// Client secret; `None` for public clients.
    pub secret: Option<String>,
}

impl Client {
    /// Returns the secret of a confidential client.
    pub fn secret(&self) -> &str {
        self.secret
            .as_deref()
            .expect("confidential client has a secret")
    }
}

/// Registers a ChatGPT plugin (confidential) client.
pub async fn confidential_client(server: &TestServer) -> Client {
    let input = NewApplication {
        name: "Weather plugin".into(),
        kind: ApplicationKind::ChatgptPlugin,
        redirect_uris: vec![CALLBACK.into()],
        always_issue_refresh_token: true,
    };
    let details = create_application(server.db(), &server.state.master_key, input, app::ssr::now())
        .await
        .expect("application created");
    Client {
        id: details.id,
        secret: Some(details.secrets[0].value.clone()),
    }
}

/// Registers a native (public) client.
pub async fn public_client(server: &TestServer) -> Client {
    let input = NewApplication {
        name: "CLI".into(),
        kind: ApplicationKind::Native,
        redirect_uris: Vec::new(),
        always_issue_refresh_token: true,
    };
    let details = create_application(server.db(), &server.state.master_key, input, app::ssr::now())
        .await
        .expect("application created");
    Client {
        id: details.id,
        secret: None,
    }
}

/// Adds a secret with the given value to an application, sealed as the
/// services store it.
pub async fn add_secret(server: &TestServer, client_id: &str, value: &str) {
    add_secret_row(server, client_id, value, None).await;
}

/// Inserts a sealed secret row with the given value and expiry and returns
/// its id.
pub async fn add_secret_row(server: &TestServer, client_id: &str, value: &str, expires_at: Option<i64>) -> String {
    let id = format!("secret{}", &app::ssr::ids::new_row_id()[..10]);
    let context = app::ssr::crypto::application_secret_context(&id);
    application_secret::ActiveModel {
        id: Set(id.clone()),
        application_id: Set(client_id.into()),
        name: Set("extra".into()),
        value: Set(server.state.master_key.seal(&context, value)),
        expires_at: Set(expires_at),
        created_at: Set(app::ssr::now()),
    }
    .insert(server.db())
    .await
    .expect("secret inserted");
    id
}

/// Changes a stored application.
pub async fn update_application(
    server: &TestServer,
    client_id: &str,
    change: impl FnOnce(&mut application::ActiveModel),
) {
    let model = application::Entity::find_by_id(client_id.to_owned())
        .one(server.db())
        .await
        .expect("query")
        .expect("application exists");
    let mut active = model.into_active_model();
    change(&mut active);
    active
        .update(server.db())
        .await
        .expect("application updated");
}

/// Inserts a user and returns its id.
pub async fn user(server: &TestServer) -> String {
    let id = app::ssr::ids::new_row_id();
    user::ActiveModel {
        id: Set(id.clone()),
        username: Set(format!("user-{}", &id[..8])),
        email: Set(Some(format!("{}@example.com", &id[..8]))),
        name: Set(Some("Ada Lovelace".into())),
        password_hash: Set("not used by these tests".into()),
        created_at: Set(1_700_000_000),
        updated_at: Set(1_700_000_000),
    }
    .insert(server.db())
    .await
    .expect("user inserted");
    id
}

/// What a test code grants.
#[derive(Debug, Clone)]
pub struct CodeSpec {
    /// Redirect URI bound to the code.
    pub redirect_uri: String,
    /// Granted scope.
    pub scope: String,
    /// `nonce` of the request.
    pub nonce: Option<String>,
    /// S256 challenge.
    pub challenge: Option<String>,
    /// Whether the exchange returns a refresh token.
    pub refresh: bool,
    /// Issue time; the code expires 60 seconds later.
    pub issued_at: i64,
}

impl Default for CodeSpec {
    fn default() -> Self {
        Self {
            redirect_uri: CALLBACK.into(),
            scope: "openid profile email offline_access".into(),
            nonce: None,
            challenge: None,
            refresh: true,
            issued_at: app::ssr::now(),
        }
    }
}

/// Issues a code for `client` and `user_id` through the same service the
/// authorization endpoint uses.
pub async fn code(server: &TestServer, client: &Client, user_id: &str, spec: CodeSpec) -> String {
    let grant = CodeGrant {
        application_id: client.id.clone(),
        user_id: user_id.into(),
        redirect_uri: spec.redirect_uri,
        scope: spec.scope,
        nonce: spec.nonce,
        code_challenge: spec.challenge,
        auth_time: spec.issued_at - 5,
        issue_refresh_token: spec.refresh,
    };
    issue_code(server.db(), grant, spec.issued_at)
        .await
        .expect("code issued")
}

/// Returns the S256 challenge of `verifier`.
pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Posts a form body, with optional HTTP Basic credentials.
pub async fn post_form(
    server: &TestServer,
    path: &str,
    params: &[(&str, &str)],
    basic: Option<&str>,
) -> reqwest::Response {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let mut request = server
        .http
        .post(server.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(header) = basic {
        request = request.header("authorization", header);
    }
    request.send().await.expect("request sent")
}

/// Posts a JSON body with the given content type.
pub async fn post_json(
    server: &TestServer,
    path: &str,
    body: &Value,
    content_type: &str,
) -> reqwest::Response {
    server
        .http
        .post(server.url(path))
        .header("content-type", content_type)
        .body(body.to_string())
        .send()
        .await
        .expect("request sent")
}

/// Builds an `Authorization: Basic` value, form-encoding each half as RFC
/// 6749 section 2.3.1 requires.
pub fn basic_header(id: &str, secret: &str) -> String {
    let encode =
        |value: &str| url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", encode(id), encode(secret)))
    )
}

/// Issues and redeems a code for `openid profile` that produces no refresh
/// token, checks that none came back, and returns the code and the tokens.
pub async fn redeemed_without_refresh(
    server: &TestServer,
    client: &Client,
    user_id: &str,
) -> (String, Value) {
    let spec = CodeSpec {
        scope: "openid profile".into(),
        refresh: false,
        ..CodeSpec::default()
    };
    let issued = code(server, client, user_id, spec).await;
    let (status, tokens) = redeem(server, client, &issued).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    (issued, tokens)
}

/// Calls the UserInfo endpoint with `access_token` and returns the status.
pub async fn userinfo_status(server: &TestServer, access_token: &str) -> u16 {
    server
        .http
        .get(server.url("/oidc/me"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Redeems a code with the secret in the body and returns status and body.
pub async fn redeem(server: &TestServer, client: &Client, code: &str) -> (u16, Value) {
    let response = post_form(
        server,
        "/oidc/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("client_id", &client.id),
            ("client_secret", client.secret()),
        ],
        None,
    )
    .await;
    status_and_json(response).await
}

/// Exchanges a refresh token with the secret in the body.
pub async fn refresh(server: &TestServer, client: &Client, token: &str) -> (u16, Value) {
    let response = post_form(
        server,
        "/oidc/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", &client.id),
            ("client_secret", client.secret()),
        ],
        None,
    )
    .await;
    status_and_json(response).await
}

/// Returns the status and the JSON body (or `Null` when the body is not
/// JSON).
pub async fn status_and_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body read");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Every stored code, refresh token and refresh token family, ordered by
/// key.
#[derive(Debug, PartialEq)]
pub struct Stored {
    /// Rows of `authorization_codes`.
    pub codes: Vec<authorization_code::Model>,
    /// Rows of `refresh_tokens`.
    pub refresh_tokens: Vec<refresh_token::Model>,
    /// Rows of `refresh_token_families`.
    pub refresh_token_families: Vec<refresh_token_family::Model>,
}

/// Reads every stored code, refresh token and refresh token family.
pub async fn stored(server: &TestServer) -> Stored {
    Stored {
        codes: authorization_code::Entity::find()
            .order_by_asc(authorization_code::Column::CodeHash)
            .all(server.db())
            .await
            .expect("codes read"),
        refresh_tokens: refresh_token::Entity::find()
            .order_by_asc(refresh_token::Column::TokenHash)
            .all(server.db())
            .await
            .expect("refresh tokens read"),
        refresh_token_families: refresh_token_family::Entity::find()
            .order_by_asc(refresh_token_family::Column::FamilyId)
            .all(server.db())
            .await
            .expect("refresh token families read"),
    }
}

/// Decodes the claims of a JWT without verifying it.
pub fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("JSON claims")
}

/// Decodes the header of a JWT.
pub fn header_of(jwt: &str) -> Value {
    let header = jwt.split('.').next().expect("JWT has a header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url"))
        .expect("JSON header")
}
