//! The UserInfo endpoint, `GET` and `POST /oidc/me` (OpenID Connect Core
//! section 5.3), protected by a bearer access token (RFC 6750).
//!
//! The response contains `sub` and the profile and email claims that the
//! token's scope grants. A token without `openid` gets 403
//! `insufficient_scope`.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use super::errors::BearerError;
use super::params::PROTOCOL_BODY_LIMIT;
use super::{cors, discovery};
use crate::routes::ServerState;
use app::ssr::AppState;
use app::ssr::entities::user;
use app::ssr::tokens::{self, scope_contains};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::EntityTrait;
use tower_http::limit::RequestBodyLimitLayer;

/// Path of the UserInfo endpoint.
pub const USERINFO_PATH: &str = "/oidc/me";

/// Routes of the UserInfo endpoint.
pub fn routes() -> Router<ServerState> {
    Router::new()
        .route(USERINFO_PATH, get(userinfo).post(userinfo))
        .layer(RequestBodyLimitLayer::new(PROTOCOL_BODY_LIMIT))
        .layer(axum::middleware::from_fn(cors::allow_any_origin))
}

async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match claims_for(&state, &headers, app::ssr::now()).await {
        Ok(claims) => {
            let mut response = Json(claims).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => error.into_response(),
    }
}

async fn claims_for(
    state: &AppState,
    headers: &HeaderMap,
    now: i64,
) -> Result<serde_json::Value, BearerError> {
    let token = bearer_token(headers).ok_or(BearerError::Missing)?;
    let issuer = discovery::issuer(state)
        .await
        .map_err(|error| BearerError::Server(error.to_string()))?;
    let access = tokens::verify_access_token(&state.db, &state.master_key, &issuer, token, now).await?;
    if !scope_contains(&access.scope, "openid") {
        return Err(BearerError::InsufficientScope("openid"));
    }
    let user = user::Entity::find_by_id(access.sub.clone())
        .one(&state.db)
        .await
        .map_err(|error| BearerError::Server(error.to_string()))?
        .ok_or_else(|| BearerError::InvalidToken("the user no longer exists".into()))?;

    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), user.id.clone().into());
    claims.extend(tokens::user_claims(&user, &access.scope));
    Ok(serde_json::Value::Object(claims))
}

/// Reads `Authorization: Bearer <token>` (RFC 6750 section 2.1); the
/// scheme name is case-insensitive.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&headers), None);
    }
}
