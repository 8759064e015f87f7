//! Console sign-in, sign-out and first-admin setup, and the guard that
//! every console page and server function passes.
//!
//! Admin sessions live in the `sessions` table, so every instance that
//! shares the database accepts them. The cookie is HttpOnly,
//! SameSite=Strict, host-only, and Secure (with the `__Host-` prefix) when
//! the public URL is https. Forms carry a CSRF token on top of the
//! Origin and Sec-Fetch checks in [`crate::console`].

use crate::signin::handlers::parse_form;
use crate::signin::http::{self, read_cookie, read_cookies};
use crate::signin::pages::{self, INPUT, LABEL, LINK, PRIMARY};
use app::error::AppError;
use app::model::SignedInAdmin;
use app::ssr::admins::{self, AdminError};
use app::ssr::throttle::{self, Attempt, Realm, Verdict};
use app::ssr::{AppState, ids, sessions};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use leptos::prelude::*;
use std::collections::HashMap;
use std::net::SocketAddr;

/// Session cookie name over plain http.
const SESSION_COOKIE: &str = "latch_console";
/// Session cookie name when the public URL is https; the prefix makes
/// browsers insist on Secure, Path=/ and no Domain.
const SECURE_SESSION_COOKIE: &str = "__Host-latch_console";
/// Cookie that carries the CSRF token of the sign-in and setup forms,
/// which are shown before any session exists.
const FORM_COOKIE: &str = "latch_console_form";
/// Cookie name of the form token over https.
const SECURE_FORM_COOKIE: &str = "__Host-latch_console_form";
/// Shortest form token accepted: one this server made is 43 characters,
/// so a shorter one was planted by someone else.
const MIN_FORM_TOKEN_LEN: usize = 43;
/// Same message for an unknown user name and a wrong password.
const WRONG_CREDENTIALS: &str = "The user name or password is incorrect.";

/// Cookie names and flags, which depend on whether the public URL is https.
#[derive(Clone, Copy)]
struct CookiePolicy {
    secure: bool,
}

impl CookiePolicy {
    fn of(state: &AppState) -> Self {
        Self {
            secure: state.public_url.scheme() == "https",
        }
    }

    fn session_name(self) -> &'static str {
        if self.secure { SECURE_SESSION_COOKIE } else { SESSION_COOKIE }
    }

    fn form_name(self) -> &'static str {
        if self.secure { SECURE_FORM_COOKIE } else { FORM_COOKIE }
    }

    /// Builds a host-only, HttpOnly, SameSite=Strict cookie that ends with
    /// the browser session, or deletes it when `value` is empty.
    fn cookie(self, name: &str, value: &str) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let lifetime = if value.is_empty() { "; Max-Age=0" } else { "" };
        let text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{lifetime}");
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("latch_invalid=; Max-Age=0"))
    }
}

/// Keeps `next` only when it is a console path on this server, so the
/// sign-in page cannot be used to send an admin to another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if (path == "/console" || path.starts_with("/console/") || path.starts_with("/console?"))
                && !path.contains("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/console".to_owned(),
    }
}

/// Renders a console page. The referrer policy is `same-origin`: with
/// `no-referrer`, Chromium sends `Origin: null` on form posts, which the
/// console's origin check refuses.
fn console_document(title: String, content: impl IntoView + 'static) -> String {
    pages::document_with_referrer(title, "same-origin", content)
}

/// Switches a sign-in page response to the console's referrer policy.
fn with_console_referrer(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

fn html(status: StatusCode, body: String, cookies: Vec<HeaderValue>) -> Response {
    with_console_referrer(http::html_response(status, body, cookies))
}

fn see_other(location: &str, cookies: Vec<HeaderValue>) -> Response {
    with_console_referrer(http::see_other(location, cookies))
}

fn internal_error() -> Response {
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::error("Something went wrong", "The server could not complete the request. The server log has the details."),
        Vec::new(),
    )
}

/// Returns the form token from the request's cookie, or a new one with
/// the cookie that sets it.
fn form_token(headers: &HeaderMap, policy: CookiePolicy) -> (String, Option<HeaderValue>) {
    match read_cookie(headers, policy.form_name()) {
        Some(token) if token.len() >= MIN_FORM_TOKEN_LEN => (token, None),
        _ => {
            let token = ids::new_opaque_token();
            let cookie = policy.cookie(policy.form_name(), &token);
            (token, Some(cookie))
        }
    }
}

/// Tells whether the posted `csrf_token` matches the form cookie.
fn form_token_matches(headers: &HeaderMap, fields: &HashMap<String, String>, policy: CookiePolicy) -> bool {
    use subtle::ConstantTimeEq;
    match (read_cookie(headers, policy.form_name()), fields.get("csrf_token")) {
        (Some(cookie), Some(field)) if cookie.len() >= MIN_FORM_TOKEN_LEN => cookie.as_bytes().ct_eq(field.as_bytes()).into(),
        _ => false,
    }
}

fn form_rejected() -> Response {
    html(
        StatusCode::FORBIDDEN,
        pages::error(
            "This form cannot be accepted",
            "The form expired or was not sent from this console. Make sure cookies are enabled, reload the page and try again.",
        ),
        Vec::new(),
    )
}

struct SignInView {
    csrf: String,
    next: String,
    username: String,
    error: Option<String>,
    notice: Option<&'static str>,
}

fn sign_in_html(form: SignInView) -> String {
    let notice = form.notice.map(|text| {
        view! { <p class="mb-4 rounded-md bg-emerald-50 p-3 text-sm text-emerald-800" role="status">{text}</p> }
    });
    let content = view! {
        <h1 class="mb-2 text-2xl font-bold">"Sign in to the Latch console"</h1>
        <p class="mb-6 text-sm text-slate-600">"For console admins. People who use your applications sign in elsewhere."</p>
        {notice}
        {pages::error_notice(form.error)}
        <form method="post" action="/console/sign-in" class="space-y-4">
            <input type="hidden" name="csrf_token" value=form.csrf />
            <input type="hidden" name="next" value=form.next />
            <label class=LABEL>
                "User name"
                <input class=INPUT type="text" name="username" value=form.username autocomplete="username" required />
            </label>
            <label class=LABEL>
                "Password"
                <input class=INPUT type="password" name="password" autocomplete="current-password" required />
            </label>
            <button class=PRIMARY type="submit">"Sign in"</button>
        </form>
    };
    console_document("Console sign-in".into(), content)
}

fn no_admin_html() -> String {
    let content = view! {
        <h1 class="mb-4 text-2xl font-bold">"No admin exists yet"</h1>
        <p class="mb-3 text-slate-700">
            "Open the setup link that Latch printed to its log at start-up. It works once, for an hour."
        </p>
        <p class="text-slate-700">
            "Lost it? Restart Latch for a new link, or create an admin from a shell with "
            <code class="rounded-md bg-slate-100 px-1">"latch admin create --username NAME"</code> "."
        </p>
    };
    console_document("Set up the console".into(), content)
}

/// `GET /console/sign-in`: the admin sign-in form.
pub async fn sign_in_page(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let fields = parse_form(query.unwrap_or_default().as_bytes());
    match admins::count_admins(&state.db).await {
        Ok(0) => return html(StatusCode::OK, no_admin_html(), Vec::new()),
        Ok(_) => {}
        Err(_) => return internal_error(),
    }
    let policy = CookiePolicy::of(&state);
    let (csrf, cookie) = form_token(&headers, policy);
    let notice = fields
        .contains_key("signed_out")
        .then_some("You are signed out.");
    let body = sign_in_html(SignInView {
        csrf,
        next: safe_next(fields.get("next").map(String::as_str)),
        username: String::new(),
        error: None,
        notice,
    });
    html(StatusCode::OK, body, cookie.into_iter().collect())
}

/// `POST /console/sign-in`: checks the password, slowed down after
/// repeated failures, and starts a session.
pub async fn sign_in_submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = app::ssr::now();
    let policy = CookiePolicy::of(&state);
    let fields = parse_form(&body);
    if !form_token_matches(&headers, &fields, policy) {
        tracing::warn!(target: "audit", "admin sign-in form rejected: CSRF token does not match");
        return form_rejected();
    }
    let username = fields.get("username").cloned().unwrap_or_default();
    let password = fields.get("password").cloned().unwrap_or_default();
    let next = safe_next(fields.get("next").map(String::as_str));
    let address = peer.ip();
    let csrf = fields.get("csrf_token").cloned().unwrap_or_default();
    let again = |error: String, status: StatusCode| {
        let body = sign_in_html(SignInView {
            csrf: csrf.clone(),
            next: next.clone(),
            username: username.clone(),
            error: Some(error),
            notice: None,
        });
        html(status, body, Vec::new())
    };

    let attempt = Attempt {
        realm: Realm::Admin,
        login: &username,
        address,
    };
    // The throttle check, the hash and the recording of the outcome run
    // under one hashing permit, so a burst of concurrent guesses cannot
    // all pass the check before the first failure is counted.
    let found = match admins::find_by_username(&state.db, &username).await {
        Ok(found) => found,
        Err(_) => return internal_error(),
    };
    let too_long = password.len() > app::ssr::users::MAX_PASSWORD_BYTES;
    let stored_hash = found
        .as_ref()
        .filter(|_| !too_long)
        .map(|admin| admin.password_hash.clone());
    let password = if too_long { String::new() } else { password };
    let verdict = throttle::verify_password(&state.db, &state.throttle, &attempt, password, stored_hash).await;
    let admin = match (verdict, found) {
        (Ok(Verdict::Accepted), Some(admin)) => admin,
        (Ok(Verdict::Blocked { retry_after_secs }), _) => {
            tracing::warn!(target: "audit", %address, "admin sign-in rejected: too many failed attempts");
            let mut response = again(throttle::wait_message(retry_after_secs), StatusCode::TOO_MANY_REQUESTS);
            if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
        (Ok(_), _) => {
            tracing::warn!(target: "audit", %address, "admin sign-in failed: wrong credentials");
            return again(WRONG_CREDENTIALS.into(), StatusCode::UNAUTHORIZED);
        }
        (Err(_), _) => return internal_error(),
    };

    let session = match sessions::create_admin_session(&state.db, &admin.id, now).await {
        Ok(session) => session,
        Err(_) => return internal_error(),
    };
    if admins::record_sign_in(&state.db, &admin.id, now).await.is_err() {
        return internal_error();
    }
    tracing::info!(target: "audit", admin_id = %admin.id, username = %admin.username, %address, "admin signed in");
    see_other(
        &next,
        vec![
            policy.cookie(policy.session_name(), &session.cookie_value),
            policy.cookie(policy.form_name(), ""),
        ],
    )
}

/// `POST /console/sign-out`: ends the session on the server and in the
/// browser, and sends `Clear-Site-Data` so the browser drops cached
/// console pages.
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let policy = CookiePolicy::of(&state);
    let fields = parse_form(&body);
    let sent = fields.get("csrf_token").map(String::as_str).unwrap_or_default();
    let cookies = read_cookies(&headers, policy.session_name());
    if cookies.is_empty() {
        return see_other("/console/sign-in", Vec::new());
    }
    let matching = cookies.into_iter().find(|cookie| {
        let expected = sessions::admin_csrf_token(cookie);
        bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), sent.as_bytes()))
    });
    let Some(cookie) = matching else {
        tracing::warn!(target: "audit", "admin sign-out form rejected: CSRF token does not match");
        return form_rejected();
    };
    if sessions::delete_admin_session(&state.db, &cookie).await.is_err() {
        return internal_error();
    }
    tracing::info!(target: "audit", "admin signed out");
    let mut response = see_other(
        "/console/sign-in?signed_out",
        vec![policy.cookie(policy.session_name(), "")],
    );
    response
        .headers_mut()
        .insert("clear-site-data", HeaderValue::from_static("\"cache\""));
    response
}

struct SetupView {
    token: String,
    csrf: String,
    username: String,
    error: Option<String>,
}

fn setup_html(form: SetupView) -> String {
    let content = view! {
        <h1 class="mb-2 text-2xl font-bold">"Create the first admin"</h1>
        <p class="mb-6 text-sm text-slate-600">
            "This account manages every application in this Latch server. The link stops working once the account exists."
        </p>
        {pages::error_notice(form.error)}
        <form method="post" action="/console/setup" class="space-y-4">
            <input type="hidden" name="csrf_token" value=form.csrf />
            <input type="hidden" name="token" value=form.token />
            <label class=LABEL>
                "User name"
                <input class=INPUT type="text" name="username" value=form.username autocomplete="username" required />
            </label>
            <label class=LABEL>
                "Password (at least 12 characters)"
                <input class=INPUT type="password" name="password" autocomplete="new-password" minlength="12" required />
            </label>
            <label class=LABEL>
                "Confirm password"
                <input class=INPUT type="password" name="password_confirmation" autocomplete="new-password" minlength="12" required />
            </label>
            <button class=PRIMARY type="submit">"Create admin"</button>
        </form>
    };
    console_document("Set up the console".into(), content)
}

fn setup_invalid() -> Response {
    let content = view! {
        <h1 class="mb-4 text-2xl font-bold">"This setup link is not valid"</h1>
        <p class="mb-3 text-slate-700">{AdminError::SetupTokenInvalid.to_string()}</p>
        <p class="text-slate-700"><a class=LINK href="/console/sign-in">"Go to the console sign-in"</a></p>
    };
    html(StatusCode::GONE, console_document("Setup link not valid".into(), content), Vec::new())
}

/// `GET /console/setup?token=...`: the form that creates the first admin.
pub async fn setup_page(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let fields = parse_form(query.unwrap_or_default().as_bytes());
    let token = fields.get("token").cloned().unwrap_or_default();
    match admins::setup_token_is_live(&state.db, &token, app::ssr::now()).await {
        Ok(true) => {}
        Ok(false) => return setup_invalid(),
        Err(_) => return internal_error(),
    }
    let policy = CookiePolicy::of(&state);
    let (csrf, cookie) = form_token(&headers, policy);
    let body = setup_html(SetupView {
        token,
        csrf,
        username: String::new(),
        error: None,
    });
    html(StatusCode::OK, body, cookie.into_iter().collect())
}

/// `POST /console/setup`: creates the first admin, consumes the token and
/// signs the new admin in.
pub async fn setup_submit(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let now = app::ssr::now();
    let policy = CookiePolicy::of(&state);
    let fields = parse_form(&body);
    if !form_token_matches(&headers, &fields, policy) {
        return form_rejected();
    }
    let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
    let created = admins::create_first_admin(
        &state.db,
        &field("token"),
        &field("username"),
        &field("password"),
        &field("password_confirmation"),
        now,
    )
    .await;
    let admin = match created {
        Ok(admin) => admin,
        Err(AdminError::SetupTokenInvalid) => return setup_invalid(),
        Err(AdminError::Internal) => return internal_error(),
        Err(error) => {
            let body = setup_html(SetupView {
                token: field("token"),
                csrf: field("csrf_token"),
                username: field("username"),
                error: Some(error.to_string()),
            });
            return html(StatusCode::BAD_REQUEST, body, Vec::new());
        }
    };
    let session = match sessions::create_admin_session(&state.db, &admin.id, now).await {
        Ok(session) => session,
        Err(_) => return internal_error(),
    };
    see_other(
        "/console",
        vec![
            policy.cookie(policy.session_name(), &session.cookie_value),
            policy.cookie(policy.form_name(), ""),
        ],
    )
}

/// Lets a request through only with a live admin session, and records the
/// admin in the request's extensions for pages and server functions.
/// Without one, server functions get 401 and pages a redirect to the
/// sign-in page.
pub async fn require_admin(State(state): State<AppState>, mut request: Request<Body>, next: Next) -> Response {
    let policy = CookiePolicy::of(&state);
    let now = app::ssr::now();
    // Every value is tried: a page on another port of this host can plant
    // a cookie of the same name that the browser sends first.
    let mut admin = None;
    for cookie in read_cookies(request.headers(), policy.session_name()) {
        match find_admin(&state, &cookie, now).await {
            Ok(Some(found)) => {
                admin = Some(found);
                break;
            }
            Ok(None) => {}
            Err(_) => return internal_error(),
        }
    }
    let Some(admin) = admin else {
        return sign_in_required(&request);
    };
    request.extensions_mut().insert(admin);
    next.run(request).await
}

/// Returns the admin whose live session `cookie` names.
async fn find_admin(state: &AppState, cookie: &str, now: i64) -> Result<Option<SignedInAdmin>, AppError> {
    let Some(session) = sessions::find_live_admin_session(&state.db, cookie, now).await? else {
        return Ok(None);
    };
    let admin = admins::find_by_id(&state.db, &session.subject_id).await?;
    Ok(admin.map(|admin| SignedInAdmin {
        admin_id: admin.id,
        username: admin.username,
        csrf_token: sessions::admin_csrf_token(cookie),
    }))
}

fn sign_in_required(request: &Request<Body>) -> Response {
    let path = request.uri().path();
    if path.starts_with("/api/") {
        let body = serde_json::to_string(&AppError::SignInRequired).unwrap_or_default();
        let mut response = (StatusCode::UNAUTHORIZED, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return response;
    }
    let target = request
        .uri()
        .path_and_query()
        .map_or("/console", |value| value.as_str());
    let next: String = url::form_urlencoded::byte_serialize(safe_next(Some(target)).as_bytes()).collect();
    see_other(&format!("/console/sign-in?next={next}"), Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_the_console() {
        assert_eq!(safe_next(Some("/console/applications/abc")), "/console/applications/abc");
        assert_eq!(safe_next(Some("/console?x=1")), "/console?x=1");
        assert_eq!(safe_next(Some("https://evil.example/")), "/console");
        assert_eq!(safe_next(Some("//evil.example/console")), "/console");
        assert_eq!(safe_next(Some("/console//evil.example")), "/console");
        assert_eq!(safe_next(Some("/consoleevil")), "/console");
        assert_eq!(safe_next(Some("/console/\\evil")), "/console");
        assert_eq!(safe_next(Some("/console\r\nSet-Cookie: x=1")), "/console");
        assert_eq!(safe_next(None), "/console");
    }

    #[test]
    fn cookies_are_strict_and_host_only() {
        let plain = CookiePolicy { secure: false };
        let text = plain.cookie(plain.session_name(), "v");
        assert_eq!(text.to_str().unwrap(), "latch_console=v; Path=/; HttpOnly; SameSite=Strict");
        let secure = CookiePolicy { secure: true };
        let text = secure.cookie(secure.session_name(), "v");
        assert_eq!(
            text.to_str().unwrap(),
            "__Host-latch_console=v; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(plain.cookie("n", "").to_str().unwrap().ends_with("Max-Age=0"));
    }
}
