//! Token revocation, `POST /oidc/token/revocation` (RFC 7009).
//!
//! The client authenticates as at the token endpoint. Revoking a refresh
//! token, or an access token that belongs to a refresh token family,
//! revokes the whole family, so every access token of that grant stops
//! working at the UserInfo endpoint and at introspection. Unknown tokens
//! and tokens of other clients get the same 200 (RFC 7009 section 2.2).

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
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tower_http::limit::RequestBodyLimitLayer;

/// Path of the revocation endpoint.
pub const REVOCATION_PATH: &str = "/oidc/token/revocation";

/// Routes of the revocation endpoint.
pub fn routes() -> Router<ServerState> {
    Router::new()
        .route(REVOCATION_PATH, post(revoke))
        .layer(RequestBodyLimitLayer::new(PROTOCOL_BODY_LIMIT))
        .layer(axum::middleware::from_fn(cors::allow_any_origin))
}

async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match revoke_token(&state, &headers, &body, app::ssr::now()).await {
        Ok(()) => (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn revoke_token(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), OAuthError> {
    let params = parse_body(headers, body)?;
    let credentials = extract_credentials(headers, &params)?;
    let client = authenticate_client(state, credentials, now).await?;
    let token = params.require("token", "token is missing.")?;
    let server_error = |error: sea_orm::DbErr| OAuthError::Server(error.to_string());

    // token_type_hint only speeds up the lookup (RFC 7009 section 2.1),
    // and both lookups are cheap, so it is ignored.
    let stored = grants::find_refresh_token(&state.db, token)
        .await
        .map_err(server_error)?;
    if let Some(row) = stored {
        if row.application_id == client.application.id {
            grants::revoke_family(&state.db, &row.family_id, now)
                .await
                .map_err(server_error)?;
            tracing::info!(target: "audit", client_id = %row.application_id, family_id = %row.family_id, "refresh token revoked");
        }
        return Ok(());
    }

    let issuer = discovery::issuer(state).await?;
    if let Ok(claims) = tokens::verify_access_token(&state.db, &state.master_key, &issuer, token, now).await
        && claims.client_id == client.application.id
        && let Some(grant_id) = &claims.grant_id
    {
        grants::revoke_grant(&state.db, grant_id, now)
            .await
            .map_err(server_error)?;
        tracing::info!(target: "audit", client_id = %claims.client_id, %grant_id, "grant revoked through its access token");
    }
    Ok(())
}
