//! The token endpoint, `POST /oidc/token` (RFC 6749 section 3.2).
//!
//! ```text
//! ChatGPT / client                        Latch
//!  |-- POST /oidc/token ------------------>| params::parse_body (form or JSON)
//!  |                                       | client_auth::extract_credentials
//!  |                                       | client_auth::authenticate_client
//!  |                                       | grant_type = authorization_code:
//!  |                                       |   grants::authorization_code::exchange
//!  |                                       | grant_type = refresh_token:
//!  |                                       |   grants::refresh_token::exchange
//!  |<-- 200 TokenResponse / OAuthError ----|
//! ```

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use super::client_auth::{authenticate_client, extract_credentials};
use super::errors::OAuthError;
use super::grants::{self, TokenResponse};
use super::params::{PROTOCOL_BODY_LIMIT, parse_body};
use super::{cors, discovery};
use crate::routes::ServerState;
use app::ssr::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tower_http::limit::RequestBodyLimitLayer;

/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/oidc/token";

/// Grant types the endpoint implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GrantType {
    AuthorizationCode,
    RefreshToken,
}

/// Routes of the token endpoint. Other methods than POST get 405.
pub fn routes() -> Router<ServerState> {
    Router::new()
        .route(TOKEN_PATH, post(token))
        .layer(RequestBodyLimitLayer::new(PROTOCOL_BODY_LIMIT))
        .layer(axum::middleware::from_fn(cors::allow_any_origin))
}

#[tracing::instrument(skip_all, fields(client_id, grant_type))]
async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match exchange(&state, &headers, &body, app::ssr::now()).await {
        Ok(response) => response.into_response(),
        Err(error) => error.into_response(),
    }
}

async fn exchange(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let params = parse_body(headers, body)?;
    let grant_type = parse_grant_type(params.get("grant_type"))?;
    tracing::Span::current().record("grant_type", grant_type.as_str());

    let credentials = extract_credentials(headers, &params)?;
    tracing::Span::current().record("client_id", credentials.client_id.as_str());
    let client = authenticate_client(state, credentials, now).await?;
    let issuer = discovery::cached_issuer(state).await?;

    match grant_type {
        GrantType::AuthorizationCode => {
            grants::authorization_code::exchange(state, &client, &params, &issuer, now).await
        }
        GrantType::RefreshToken => {
            grants::refresh_token::exchange(state, &client, &params, &issuer, now).await
        }
    }
}

impl GrantType {
    fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
        }
    }
}

/// RFC 6749 section 5.2: a missing `grant_type` is `invalid_request`, an
/// unknown one `unsupported_grant_type`. The password and implicit grants
/// are deliberately absent (RFC 9700 section 2.4).
fn parse_grant_type(value: Option<&str>) -> Result<GrantType, OAuthError> {
    match value {
        None => Err(OAuthError::InvalidRequest("grant_type is missing.")),
        Some("authorization_code") => Ok(GrantType::AuthorizationCode),
        Some("refresh_token") => Ok(GrantType::RefreshToken),
        Some(_) => Err(OAuthError::UnsupportedGrantType),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_types_parse() {
        assert_eq!(
            parse_grant_type(Some("authorization_code")).unwrap(),
            GrantType::AuthorizationCode
        );
        assert_eq!(
            parse_grant_type(Some("refresh_token")).unwrap(),
            GrantType::RefreshToken
        );
        assert!(matches!(
            parse_grant_type(Some("password")),
            Err(OAuthError::UnsupportedGrantType)
        ));
        assert!(matches!(
            parse_grant_type(None),
            Err(OAuthError::InvalidRequest(_))
        ));
    }
}
