//! The error responses of the protocol endpoints.
//!
//! [`OAuthError`] covers the token, revocation and introspection
//! endpoints (RFC 6749 section 5.2); [`BearerError`] covers resources
//! protected by a bearer token (RFC 6750 section 3). Each is turned into
//! a response in exactly one place, its `IntoResponse` implementation.
//!
//! The client sees the RFC error code and a fixed description. The log
//! also records the internal reason, which never contains a secret, a
//! code or a token.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use app::ssr::grants::GrantError;
use app::ssr::tokens::{AccessTokenError, MintError};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A rejected request to the token, revocation or introspection endpoint.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// A parameter is missing, repeated, malformed or unsupported.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// Client authentication failed. When the client tried HTTP Basic, the
    /// response carries `WWW-Authenticate`.
    #[error("client authentication failed: {reason}")]
    InvalidClient {
        /// Whether the client used the Authorization header.
        basic: bool,
        /// Failed check, for the log only.
        reason: &'static str,
    },
    /// The code or refresh token is invalid, expired, revoked or belongs
    /// to another client.
    #[error("invalid grant: {0}")]
    InvalidGrant(String),
    /// The requested scope exceeds what was granted.
    #[error("the requested scope exceeds the grant")]
    InvalidScope,
    /// The grant type is not one Latch implements.
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    /// The server failed; the reason is logged only.
    #[error("server error: {0}")]
    Server(String),
}

impl OAuthError {
    /// Returns the RFC 6749 error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient { .. } => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::InvalidScope => "invalid_scope",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::Server(_) => "server_error",
        }
    }

    /// Returns the HTTP status: 401 for failed client authentication,
    /// 500 for server failures and 400 for the rest (RFC 6749 section 5.2).
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
            Self::Server(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn description(&self) -> &'static str {
        match self {
            Self::InvalidRequest(detail) => detail,
            Self::InvalidClient { .. } => "Client authentication failed.",
            Self::InvalidGrant(_) => {
                "The grant is invalid, expired or revoked, or was issued to another client or redirect URI."
            }
            Self::InvalidScope => "The requested scope exceeds the scope that was granted.",
            Self::UnsupportedGrantType => {
                "Supported grant types are authorization_code and refresh_token."
            }
            Self::Server(_) => "The server could not complete the request.",
        }
    }

    fn log(&self) {
        match self {
            Self::Server(reason) => tracing::error!(%reason, "protocol request failed"),
            other => {
                tracing::warn!(error = other.code(), reason = %other, "protocol request rejected")
            }
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        self.log();
        let body = json!({"error": self.code(), "error_description": self.description()});
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Self::InvalidClient { basic: true, .. } = self {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"latch\""),
            );
        }
        response
    }
}

impl From<GrantError> for OAuthError {
    fn from(error: GrantError) -> Self {
        match error {
            GrantError::Database(error) => Self::Server(error.to_string()),
            GrantError::DerivationKeyUnusable => Self::Server(error.to_string()),
            GrantError::ScopeExceedsGrant => Self::InvalidScope,
            other => Self::InvalidGrant(other.to_string()),
        }
    }
}

impl From<MintError> for OAuthError {
    fn from(error: MintError) -> Self {
        match error {
            MintError::UserMissing => Self::InvalidGrant(error.to_string()),
            other => Self::Server(other.to_string()),
        }
    }
}

impl From<app::error::AppError> for OAuthError {
    fn from(error: app::error::AppError) -> Self {
        Self::Server(error.to_string())
    }
}

/// A rejected request to a resource protected by a bearer token.
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// No bearer token was sent (RFC 6750 section 3.1: no error code).
    #[error("no bearer token was sent")]
    Missing,
    /// The token is malformed, expired, revoked or not ours.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// The token lacks a scope the resource needs.
    #[error("the token lacks the {0} scope")]
    InsufficientScope(&'static str),
    /// The server failed; the reason is logged only.
    #[error("server error: {0}")]
    Server(String),
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let (status, challenge, body) = match &self {
            Self::Missing => (StatusCode::UNAUTHORIZED, "Bearer realm=\"latch\"".to_owned(), json!({})),
            Self::InvalidToken(_) => (
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"latch\", error=\"invalid_token\", error_description=\"The access token is invalid or expired.\"".to_owned(),
                json!({"error": "invalid_token"}),
            ),
            Self::InsufficientScope(scope) => (
                StatusCode::FORBIDDEN,
                format!("Bearer realm=\"latch\", error=\"insufficient_scope\", scope=\"{scope}\""),
                json!({"error": "insufficient_scope"}),
            ),
            Self::Server(reason) => {
                tracing::error!(%reason, "bearer token check failed");
                let body = json!({"error": "server_error"});
                return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
            }
        };
        tracing::warn!(reason = %self, "bearer token rejected");
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

impl From<AccessTokenError> for BearerError {
    fn from(error: AccessTokenError) -> Self {
        match error {
            AccessTokenError::Server(reason) => Self::Server(reason),
            other => Self::InvalidToken(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn invalid_request_is_400_with_no_store() {
        let response = OAuthError::InvalidRequest("grant_type is missing.").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(response.headers()[header::PRAGMA], "no-cache");
        let body = body_json(response).await;
        assert_eq!(body["error"], "invalid_request");
        assert_eq!(body["error_description"], "grant_type is missing.");
    }

    #[tokio::test]
    async fn invalid_client_with_basic_sends_challenge() {
        let response = OAuthError::InvalidClient {
            basic: true,
            reason: "wrong secret",
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"latch\""
        );
        assert_eq!(body_json(response).await["error"], "invalid_client");
    }

    #[tokio::test]
    async fn invalid_client_without_basic_has_no_challenge() {
        let response = OAuthError::InvalidClient {
            basic: false,
            reason: "unknown client",
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
    }

    #[tokio::test]
    async fn invalid_grant_hides_the_reason() {
        let response = OAuthError::from(GrantError::CodeExpired).into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = body_json(response).await;
        assert_eq!(body["error"], "invalid_grant");
        assert!(
            !body["error_description"]
                .as_str()
                .unwrap()
                .contains("expired code")
        );
    }

    #[tokio::test]
    async fn database_failure_is_server_error_without_detail() {
        let error =
            GrantError::Database(sea_orm::DbErr::Custom("disk I/O error at /var/lib".into()));
        let response = OAuthError::from(error).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_json(response).await;
        assert_eq!(body["error"], "server_error");
        assert!(!body.to_string().contains("/var/lib"));
    }

    #[test]
    fn status_and_code_table() {
        let cases = [
            (OAuthError::InvalidScope, 400, "invalid_scope"),
            (
                OAuthError::UnsupportedGrantType,
                400,
                "unsupported_grant_type",
            ),
            (OAuthError::InvalidGrant("x".into()), 400, "invalid_grant"),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status().as_u16(), status);
            assert_eq!(error.code(), code);
        }
    }

    #[tokio::test]
    async fn bearer_missing_has_challenge_without_error() {
        let response = BearerError::Missing.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(challenge.starts_with("Bearer"));
        assert!(!challenge.contains("error="));
    }

    #[tokio::test]
    async fn bearer_invalid_token_names_the_error() {
        let response = BearerError::InvalidToken("expired".into()).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(challenge.contains("error=\"invalid_token\""));
    }

    #[tokio::test]
    async fn bearer_insufficient_scope_is_403() {
        let response = BearerError::InsufficientScope("openid").into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(challenge.contains("error=\"insufficient_scope\""));
    }
}
