//! Token introspection, `POST /oidc/token/introspection` (RFC 7662).
//!
//! Only an authenticated client may ask, and it learns about its own
//! tokens only: a token of another client is reported as inactive, like an
//! unknown one (RFC 7662 section 2.2 leaves this to the server).

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use super::client_auth::{authenticate_client, extract_credentials};
use super::errors::OAuthError;
use super::params::{PROTOCOL_BODY_LIMIT, parse_body};
use super::{cors, discovery};
use crate::routes::ServerState;
use app::ssr::AppState;
use app::ssr::grants;
use app::ssr::tokens;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use tower_http::limit::RequestBodyLimitLayer;

/// Path of the introspection endpoint.
pub const INTROSPECTION_PATH: &str = "/oidc/token/introspection";

/// Routes of the introspection endpoint.
pub fn routes() -> Router<ServerState> {
    Router::new()
        .route(INTROSPECTION_PATH, post(introspect))
        .layer(RequestBodyLimitLayer::new(PROTOCOL_BODY_LIMIT))
        .layer(axum::middleware::from_fn(cors::allow_any_origin))
}

async fn introspect(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match describe(&state, &headers, &body, app::ssr::now()).await {
        Ok(answer) => ([(header::CACHE_CONTROL, "no-store")], Json(answer)).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn describe(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<serde_json::Value, OAuthError> {
    let params = parse_body(headers, body)?;
    let credentials = extract_credentials(headers, &params)?;
    let client = authenticate_client(state, credentials, now).await?;
    let token = params.require("token", "token is missing.")?;
    let client_id = client.application.id.as_str();

    let stored = grants::find_refresh_token(&state.db, token)
        .await
        .map_err(|error| OAuthError::Server(error.to_string()))?;
    if let Some(row) = stored {
        let live = row.revoked_at.is_none() && row.rotated_at.is_none() && row.expires_at > now;
        if !live || row.application_id != client_id {
            return Ok(json!({"active": false}));
        }
        return Ok(json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": row.application_id,
            "sub": row.user_id,
            "scope": row.scope,
            "iat": row.created_at,
            "exp": row.expires_at,
        }));
    }

    let issuer = discovery::issuer(state).await?;
    match tokens::verify_access_token(&state.db, &state.master_key, &issuer, token, now).await {
        Ok(claims) if claims.client_id == client_id => Ok(json!({
            "active": true,
            "token_type": "access_token",
            "iss": claims.iss,
            "sub": claims.sub,
            "aud": claims.aud,
            "client_id": claims.client_id,
            "scope": claims.scope,
            "iat": claims.iat,
            "exp": claims.exp,
            "jti": claims.jti,
        })),
        _ => Ok(json!({"active": false})),
    }
}
