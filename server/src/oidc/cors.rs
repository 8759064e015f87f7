//! CORS for the endpoints that browser-based clients call directly:
//! token, userinfo, JWKS, discovery, revocation and introspection.
//!
//! These endpoints authenticate with client credentials or bearer tokens,
//! never with cookies, so any origin may call them (RFC 9700 section 2.6).
//! The authorization endpoint is a browser navigation and gets no CORS.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Time a browser may cache a preflight response, in seconds.
const PREFLIGHT_MAX_AGE_SECS: &str = "600";

/// Responds to preflight requests with 204 and adds
/// `Access-Control-Allow-Origin: *` to every cross-origin response.
pub async fn allow_any_origin(request: Request, next: Next) -> Response {
    let cross_origin = request.headers().contains_key(header::ORIGIN);
    if cross_origin && request.method() == Method::OPTIONS {
        return preflight();
    }
    let mut response = next.run(request).await;
    if cross_origin {
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("www-authenticate"),
        );
    }
    response
}

fn preflight() -> Response {
    let headers = [
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"),
        (
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "authorization, content-type",
        ),
        (header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE_SECS),
    ];
    (StatusCode::NO_CONTENT, headers).into_response()
}
