//! Access rules for the console.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

/// Lets only loopback peers reach console pages and server functions.
///
/// TODO-security: the console has no admin sign-in yet, so anyone who can
/// open a loopback connection (including a reverse proxy on the same
/// machine) can manage applications.
pub async fn loopback_only(request: Request<Body>, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    match peer {
        Some(ip) if ip.is_loopback() => next.run(request).await,
        _ => {
            tracing::warn!(peer = ?peer, "console request from a non-loopback address rejected");
            (
                StatusCode::FORBIDDEN,
                "The console accepts requests only from the machine Latch runs on. Open it through a loopback address or an SSH tunnel.",
            )
                .into_response()
        }
    }
}
