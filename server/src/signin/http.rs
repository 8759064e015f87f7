//! HTTP helpers shared by the sign-in pages, the authorization endpoint and
//! the end-session endpoint: cookies, security headers and redirects.

use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use url::Url;

/// Cookie that ties an interaction to the browser that started it. Its
/// value is random and only its SHA-256 is stored with the interaction.
pub const BROWSER_COOKIE: &str = "latch_browser";
/// Lifetime of the browser cookie, in seconds (1 day).
pub const BROWSER_COOKIE_TTL_SECS: i64 = 24 * 3600;

/// Content Security Policy of every page: no scripts, styles and images
/// only from this origin, and no framing by any origin (RFC 9700 section
/// 4.16). `form-action` is left out because browsers apply it to the
/// redirect that follows a form post, which goes to the client's origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

/// Adds the headers that every sign-in response carries: no framing, no
/// caching, no referrer (the URL may hold an interaction id).
pub fn add_security_headers(headers: &mut HeaderMap) {
    let pairs: [(HeaderName, &'static str); 5] = [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in pairs {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// Builds an HTML response with the security headers.
pub fn html_response(status: StatusCode, body: String, cookies: Vec<HeaderValue>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    add_security_headers(headers);
    for cookie in cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
    response
}

/// Builds a 303 See Other to `location` with the security headers. 303
/// makes the browser follow with a GET, so a posted password is never
/// replayed to the client (RFC 9700 section 4.12).
pub fn see_other(location: &str, cookies: Vec<HeaderValue>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    match HeaderValue::from_str(location) {
        Ok(value) => {
            headers.insert(header::LOCATION, value);
        }
        Err(_) => {
            tracing::error!("redirect target is not a valid header value");
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    let headers = response.headers_mut();
    add_security_headers(headers);
    for cookie in cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
    response
}

/// Returns the first value of cookie `name` from the request's `Cookie`
/// headers.
pub fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    read_cookies(headers, name).into_iter().next()
}

/// Returns every non-empty value of cookie `name` in the request's
/// `Cookie` headers, in the order the browser sent them. A page on another
/// port of the same host can set a cookie of the same name, which the
/// browser may send first.
pub fn read_cookies(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(key, value)| *key == name && !value.trim().is_empty())
        .map(|(_, value)| value.trim().to_owned())
        .collect()
}

/// Builds a `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, and
/// Secure when the server is reached over https. SameSite=Lax keeps the
/// cookie on the top-level redirect back from a client's site while
/// leaving it off cross-site form posts.
pub fn cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text =
        format!("{name}={value}; Max-Age={max_age_secs}; Path=/; HttpOnly; SameSite=Lax{secure}");
    HeaderValue::from_str(&text)
        .unwrap_or_else(|_| HeaderValue::from_static("latch_invalid=; Max-Age=0"))
}

/// Builds a `Set-Cookie` value that deletes cookie `name`.
pub fn expired_cookie(name: &str, secure: bool) -> HeaderValue {
    cookie(name, "", 0, secure)
}

/// Tells whether cookies must carry `Secure`: when the public origin
/// (custom domain or public URL) is https.
pub fn is_secure_origin(base: &str) -> bool {
    base.starts_with("https://")
}

/// Appends `params` to the query of `redirect_uri`, keeping its own query
/// as RFC 6749 section 3.1.2 requires. Pairs with a `None` value are left
/// out. Returns `None` when the stored URI does not parse.
pub fn redirect_with(redirect_uri: &str, params: &[(&str, Option<&str>)]) -> Option<String> {
    let mut url = Url::parse(redirect_uri).ok()?;
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
    }
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_cookie_finds_named_value() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; latch_session=xyz; b=2"),
        );
        assert_eq!(
            read_cookie(&headers, "latch_session").as_deref(),
            Some("xyz")
        );
        assert_eq!(read_cookie(&headers, "missing"), None);
    }

    #[test]
    fn cookie_flags_follow_origin() {
        let plain = cookie("n", "v", 60, false);
        assert_eq!(
            plain.to_str().unwrap(),
            "n=v; Max-Age=60; Path=/; HttpOnly; SameSite=Lax"
        );
        let secure = cookie("n", "v", 60, true);
        assert!(secure.to_str().unwrap().ends_with("; Secure"));
    }

    #[test]
    fn redirect_keeps_existing_query() {
        let url = redirect_with(
            "https://rp.example/cb?x=1",
            &[("code", Some("c d")), ("state", None)],
        )
        .unwrap();
        assert_eq!(url, "https://rp.example/cb?x=1&code=c+d");
    }

    #[test]
    fn redirect_to_custom_scheme() {
        let url = redirect_with("com.example.app:/cb", &[("code", Some("abc"))]).unwrap();
        assert_eq!(url, "com.example.app:/cb?code=abc");
    }
}
