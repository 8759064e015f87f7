//! OpenID Connect discovery (OpenID Connect Discovery 1.0 section 4) and
//! OAuth 2.0 authorization server metadata (RFC 8414 section 3).
//!
//! Both documents are the same JSON. They list only what Latch
//! implements, because clients such as MCP connectors choose their flow
//! from it.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use super::cors;
use super::errors::OAuthError;
use app::ssr::AppState;
use app::ssr::keys::SigningAlg;
use app::ssr::settings;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::routes::ServerState;

/// Path of the OpenID discovery document.
pub const OPENID_CONFIGURATION_PATH: &str = "/oidc/.well-known/openid-configuration";
/// Path of the RFC 8414 metadata for the issuer `<base>/oidc`: the
/// well-known segment goes between the host and the issuer's path.
pub const AUTHORIZATION_SERVER_METADATA_PATH: &str = "/.well-known/oauth-authorization-server/oidc";

/// Scopes Latch grants.
pub const SUPPORTED_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Routes of both metadata documents.
pub fn routes() -> Router<ServerState> {
    Router::new()
        .route(OPENID_CONFIGURATION_PATH, get(metadata))
        .route(AUTHORIZATION_SERVER_METADATA_PATH, get(metadata))
        .layer(axum::middleware::from_fn(cors::allow_any_origin))
}

/// Returns the issuer: `<base>/oidc`, where the base is the custom domain
/// when one is set and the public URL otherwise.
pub async fn issuer(state: &AppState) -> Result<String, OAuthError> {
    let endpoints = settings::endpoints(&state.db, &state.public_base()).await?;
    Ok(endpoints.issuer)
}

/// Returns the issuer like [`issuer`], but with the custom domain taken
/// from the token cache, so it can lag a change by up to
/// `app::ssr::tokens::cache::SHARED_STATE_TTL` (5 seconds).
pub async fn cached_issuer(state: &AppState) -> Result<String, OAuthError> {
    let domain = state.token_cache.custom_domain(&state.db).await?;
    let base = match &domain {
        Some(domain) => format!("https://{domain}"),
        None => state.public_base(),
    };
    Ok(app::model::Endpoints::from_base(&base, domain).issuer)
}

async fn metadata(State(state): State<AppState>) -> Response {
    match issuer(&state).await {
        Ok(issuer) => {
            let headers = [(header::CACHE_CONTROL, "public, max-age=300")];
            (headers, Json(document(&issuer))).into_response()
        }
        Err(error) => error.into_response(),
    }
}

/// Builds the metadata document for `issuer`.
pub fn document(issuer: &str) -> serde_json::Value {
    let algs: Vec<&str> = SigningAlg::ALL.iter().map(|alg| alg.as_str()).collect();
    let client_auth_methods = ["client_secret_basic", "client_secret_post", "none"];
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/me"),
        "jwks_uri": format!("{issuer}/jwks"),
        "revocation_endpoint": format!("{issuer}/token/revocation"),
        "introspection_endpoint": format!("{issuer}/token/introspection"),
        "end_session_endpoint": format!("{issuer}/session/end"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "scopes_supported": SUPPORTED_SCOPES,
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce",
            "name", "preferred_username", "updated_at", "email", "email_verified",
        ],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": client_auth_methods,
        "revocation_endpoint_auth_methods_supported": client_auth_methods,
        "introspection_endpoint_auth_methods_supported": client_auth_methods,
        "authorization_response_iss_parameter_supported": true,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    })
}
