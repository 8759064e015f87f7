//! Access rules for the console.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};

/// Lets only loopback peers reach console pages and server functions.
/// Behind this guard, [`crate::console_auth::require_admin`] requires an
/// admin session.
pub async fn loopback_only(request: Request<Body>, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    match peer {
        // A listener on `[::]` receives IPv4 peers as IPv4-mapped IPv6.
        Some(ip) if ip.to_canonical().is_loopback() => {
            if let Some(reason) = browser_attack(request.method(), request.headers()) {
                tracing::warn!(
                    reason,
                    "console request rejected because a page of another site may have sent it"
                );
                return (
                    StatusCode::FORBIDDEN,
                    "The console accepts requests only from its own pages, reached as localhost or a loopback address.",
                )
                    .into_response();
            }
            let mut response = next.run(request).await;
            add_console_headers(response.headers_mut());
            response
        }
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

/// Adds the headers of every console response. The pages show client
/// secrets, so no other page may frame them and no cache may keep them.
/// The referrer policy is `same-origin` rather than `no-referrer`: with
/// `no-referrer`, Chromium sends `Origin: null` on form posts, and
/// JavaScript-free forms need the `Referer` to be sent back to their page.
fn add_console_headers(headers: &mut HeaderMap) {
    let pairs = [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, "default-src 'none'; frame-ancestors 'none'"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in pairs {
        // Pages set a stricter policy of their own (with the nonce of
        // their hydration script); it is kept.
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    }
}

/// Tells why a request from a loopback peer may still come from a page
/// of another site in the operator's browser, or `None` when it cannot.
///
/// A `Host` other than a loopback name means DNS rebinding: a foreign name
/// resolving to 127.0.0.1 makes the console same-origin with that page.
/// An `Origin` other than the console's own means a cross-origin post,
/// which a plain HTML form sends without a CORS preflight.
fn browser_attack(method: &Method, headers: &HeaderMap) -> Option<&'static str> {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    if let Some(host) = host
        && !is_loopback_authority(host)
    {
        return Some("the Host header is not a loopback name");
    }

    let site = headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok());
    let fetch_value = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    // Following a link from another site opens the console in a tab that
    // the other site cannot read, so a top-level GET is let through.
    let top_level_link = method == Method::GET
        && fetch_value("sec-fetch-mode") == Some("navigate")
        && fetch_value("sec-fetch-dest") == Some("document");
    if !top_level_link
        && site.is_some_and(|site| {
            site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site")
        })
    {
        return Some("Sec-Fetch-Site says another site sent the request");
    }

    if let Some(origin) = headers.get(header::ORIGIN) {
        let own = host.is_some_and(|host| {
            origin
                .to_str()
                .ok()
                .and_then(|origin| {
                    origin
                        .strip_prefix("http://")
                        .or_else(|| origin.strip_prefix("https://"))
                })
                .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
        });
        if !own {
            return Some("the Origin header names another origin");
        }
    }
    None
}

/// Tells whether `authority` (`host` or `host:port`) names this machine:
/// `localhost`, a name under `.localhost`, or a loopback IP literal.
fn is_loopback_authority(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            // After the bracket only a port may follow.
            Some((inside, after)) if after.is_empty() || after.strip_prefix(':').is_some_and(|port| port.parse::<u16>().is_ok()) => inside,
            _ => return false,
        },
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt;

    fn request_from(ip: [u8; 4]) -> Request<Body> {
        let mut request = Request::builder()
            .uri("/console")
            .body(Body::empty())
            .unwrap_or_default();
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
        let response = guarded()
            .oneshot(request_from([127, 0, 0, 1]))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[test]
    fn loopback_authorities() {
        for good in ["localhost", "localhost:3000", "127.0.0.1:3000", "[::1]", "[::1]:3000", "app.localhost"] {
            assert!(is_loopback_authority(good), "{good}");
        }
        for bad in ["[::1]evil.example", "[::1]:x", "evil.example", "10.0.0.7:3000", "[::1"] {
            assert!(!is_loopback_authority(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn mapped_loopback_peer_reaches_console() {
        let mut request = request_from([127, 0, 0, 1]);
        let mapped = std::net::Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((mapped, 40000))));
        let response = guarded().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn remote_peer_is_forbidden() {
        let response = guarded()
            .oneshot(request_from([10, 0, 0, 7]))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
}
