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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt;

    fn request_from(ip: [u8; 4]) -> Request<Body> {
        let mut request = Request::builder().uri("/console").body(Body::empty()).unwrap_or_default();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((ip, 40000))));
        request
    }

    fn guarded() -> Router {
        Router::new()
            .route("/console", get(|| async { "console" }))
            .layer(axum::middleware::from_fn(loopback_only))
    }

    #[tokio::test]
    async fn loopback_peer_reaches_console() {
        let response = guarded().oneshot(request_from([127, 0, 0, 1])).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn remote_peer_is_forbidden() {
        let response = guarded().oneshot(request_from([10, 0, 0, 7])).await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
}
