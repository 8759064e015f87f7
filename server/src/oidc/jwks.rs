//! The JSON Web Key Set (RFC 7517 section 5) at `/oidc/jwks`.
//!
//! It contains the public half of every signing key that is not retired.
//! A relying party can then verify tokens of the current key and of older
//! keys whose tokens are still live.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use super::cors;
use crate::routes::ServerState;
use app::ssr::AppState;
use app::ssr::keys;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

/// Path of the key set.
pub const JWKS_PATH: &str = "/oidc/jwks";

/// Routes of the key set.
pub fn routes() -> Router<ServerState> {
    Router::new()
        .route(JWKS_PATH, get(jwks))
        .layer(axum::middleware::from_fn(cors::allow_any_origin))
}

async fn jwks(State(state): State<AppState>) -> Response {
    match keys::published_jwks(&state.db).await {
        Ok(keys) => {
            // Short enough that a key added for rotation reaches verifiers
            // well before it signs anything that matters to them.
            let headers = [(header::CACHE_CONTROL, "public, max-age=300")];
            (headers, Json(json!({ "keys": keys }))).into_response()
        }
        Err(error) => {
            tracing::error!(%error, "cannot read the signing keys");
            let body = json!({"error": "server_error"});
            (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
        }
    }
}
