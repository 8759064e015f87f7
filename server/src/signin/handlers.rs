//! Handlers of `/sign-in`, `/register` and `/consent`.
//!
//! Every page belongs to one interaction, named by the `interaction` query
//! or form field. A form post is accepted only with the interaction's CSRF
//! token and the browser cookie of the browser that started it, so another
//! site can neither post the forms nor finish someone else's sign-in.

use super::flow::{self, Origin};
use super::http::{self, BROWSER_COOKIE, read_cookie, see_other};
use super::interaction::{self, Authenticated, StoredInteraction};
use super::pages;
use app::ssr::entities::application;
use app::ssr::sessions::{self, SESSION_COOKIE, SESSION_TTL_SECS};
use app::ssr::passwords::HashingPermit;
use app::ssr::throttle::{self, Attempt, Realm, Verdict};
use app::ssr::users::{self, NewUser, RegistrationError};
use app::ssr::{AppState, passwords};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use std::collections::HashMap;
use std::net::SocketAddr;

/// Message for a wrong password and for an unknown user alike, so the
/// page does not reveal which user names exist.
const WRONG_CREDENTIALS: &str = "The user name, email or password is incorrect.";

/// Parses a form-encoded body or query string. The first value of a
/// repeated field wins.
pub(crate) fn parse_form(bytes: &[u8]) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(bytes) {
        fields
            .entry(name.into_owned())
            .or_insert_with(|| value.into_owned());
    }
    fields
}

/// An interaction loaded for a page, with its application.
struct Loaded {
    id: String,
    stored: StoredInteraction,
    application: application::Model,
    origin: Origin,
}

/// Loads the interaction named in `fields`. With `check_csrf` set, the CSRF
/// token field must match too. Pages shown by GET only check the browser
/// cookie.
async fn load(
    state: &AppState,
    headers: &HeaderMap,
    fields: &HashMap<String, String>,
    check_csrf: bool,
    now: i64,
) -> Result<Loaded, Response> {
    let Some(id) = fields.get("interaction").filter(|id| !id.is_empty()) else {
        return Err(flow::expired_interaction_page());
    };
    let stored = match interaction::load(&state.db, id, now).await {
        Ok(Some(stored)) => stored,
        Ok(None) => return Err(flow::expired_interaction_page()),
        Err(_) => return Err(flow::internal_error_page()),
    };

    let browser = read_cookie(headers, BROWSER_COOKIE);
    let token = if check_csrf {
        fields.get("csrf_token").map(String::as_str)
    } else {
        Some(stored.csrf_token.as_str())
    };
    if !stored.accepts(browser.as_deref(), token) {
        tracing::warn!(target: "audit", application_id = %stored.request.client_id, "form rejected: CSRF token or browser cookie does not match");
        return Err(flow::error_page(
            StatusCode::FORBIDDEN,
            "This form cannot be accepted",
            "The form was not sent from the browser that started signing in, or it has expired. Make sure cookies are enabled, go back to the application and start again.",
        ));
    }

    let application = match flow::find_application(state, &stored.request.client_id).await {
        Ok(Some(application)) => application,
        Ok(None) => return Err(flow::expired_interaction_page()),
        Err(_) => return Err(flow::internal_error_page()),
    };
    let origin = flow::origin(state)
        .await
        .map_err(|_| flow::internal_error_page())?;
    Ok(Loaded {
        id: id.clone(),
        stored,
        application,
        origin,
    })
}

fn query_fields(query: Option<String>) -> HashMap<String, String> {
    parse_form(query.unwrap_or_default().as_bytes())
}

/// `GET /sign-in?interaction=<id>`: the sign-in form.
pub async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let now = app::ssr::now();
    let loaded = match load(&state, &headers, &query_fields(query), false, now).await {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    render_sign_in(&loaded, String::new(), None, StatusCode::OK)
}

fn render_sign_in(
    loaded: &Loaded,
    login: String,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let body = pages::sign_in(pages::SignInForm {
        app_name: loaded.application.name.clone(),
        interaction: loaded.id.clone(),
        csrf: loaded.stored.csrf_token.clone(),
        login,
        error,
    });
    http::html_response(status, body, Vec::new())
}

/// `POST /sign-in`: checks the password and continues the interaction.
///
/// Failed sign-ins are throttled per account and per client address. While
/// either is blocked, no password is checked and the response is 429 with
/// `Retry-After`, the same for existing and unknown accounts.
pub async fn sign_in_submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The hashing permit is taken before any database work, so a burst of
    // sign-ins waits here. Only one sign-in per permit then reads the
    // database and hashes while other requests run.
    let permit = match HashingPermit::acquire().await {
        Ok(permit) => permit,
        Err(error) => {
            throttle::hashing_failed(error);
            return flow::internal_error_page();
        }
    };
    let now = app::ssr::now();
    let fields = parse_form(&body);
    let loaded = match load(&state, &headers, &fields, true, now).await {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    let login = fields.get("login").cloned().unwrap_or_default();
    let password = fields.get("password").cloned().unwrap_or_default();
    let attempt = Attempt {
        realm: Realm::User,
        login: &login,
        address: peer.ip(),
    };

    let user = match users::find_by_login(&state.db, &login).await {
        Ok(user) => user,
        Err(_) => return flow::internal_error_page(),
    };
    // An unknown user, or a password longer than registration allows, is
    // checked against a dummy hash, so every failure takes the same time.
    let too_long = password.len() > users::MAX_PASSWORD_BYTES;
    let stored_hash = user
        .as_ref()
        .filter(|_| !too_long)
        .map(|user| user.password_hash.clone());
    let password = if too_long { String::new() } else { password };
    let verdict = throttle::verify_password_under(
        &state.db,
        &state.throttle,
        &attempt,
        &permit,
        password,
        stored_hash,
    )
    .await;
    drop(permit);
    let verdict = match verdict {
        Ok(verdict) => verdict,
        Err(_) => return flow::internal_error_page(),
    };

    // The log names the account of a failure when it exists; the page
    // does not.
    let known_user_id = user.as_ref().map(|user| user.id.clone());
    let signed_in = match verdict {
        Verdict::Blocked { retry_after_secs } => {
            return throttled(&loaded, &attempt, retry_after_secs);
        }
        Verdict::Rejected => None,
        Verdict::Accepted => user,
    };
    let Some(user) = signed_in else {
        tracing::warn!(
            target: "audit",
            application_id = %loaded.application.id,
            user_id = ?known_user_id,
            address = %peer.ip(),
            "sign-in failed: wrong credentials"
        );
        return render_sign_in(
            &loaded,
            login,
            Some(WRONG_CREDENTIALS.into()),
            StatusCode::BAD_REQUEST,
        );
    };

    tracing::info!(target: "audit", application_id = %loaded.application.id, user_id = %user.id, address = %peer.ip(), "sign-in succeeded");
    continue_after_authentication(&state, &headers, loaded, user.id, now).await
}

/// Builds the response to a blocked sign-in: 429 with `Retry-After` in
/// seconds and the sign-in page with a wait message that does not depend
/// on whether the account exists.
fn throttled(loaded: &Loaded, attempt: &Attempt<'_>, wait_secs: i64) -> Response {
    tracing::warn!(
        target: "audit",
        application_id = %loaded.application.id,
        address = %attempt.address,
        retry_after_secs = wait_secs,
        "sign-in refused: too many failed attempts"
    );
    let mut response = render_sign_in(
        loaded,
        attempt.login.to_owned(),
        Some(throttle::wait_message(wait_secs)),
        StatusCode::TOO_MANY_REQUESTS,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait_secs.max(1)));
    response
}

/// `GET /register?interaction=<id>`: the registration form.
pub async fn register_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let now = app::ssr::now();
    let loaded = match load(&state, &headers, &query_fields(query), false, now).await {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    render_register(&loaded, String::new(), String::new(), None)
}

fn render_register(
    loaded: &Loaded,
    username: String,
    email: String,
    error: Option<String>,
) -> Response {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = pages::register(pages::RegisterForm {
        app_name: loaded.application.name.clone(),
        interaction: loaded.id.clone(),
        csrf: loaded.stored.csrf_token.clone(),
        username,
        email,
        error,
    });
    http::html_response(status, body, Vec::new())
}

/// Checks the registration fields and returns the new user's values
/// without the hash.
fn check_registration(
    fields: &HashMap<String, String>,
) -> Result<(String, Option<String>, String), RegistrationError> {
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    let username = users::check_username(field("username"))?;
    let email = users::check_email(field("email"))?;
    users::check_new_password(field("password"), field("password_confirmation"))?;
    Ok((username, email, field("password").to_owned()))
}

/// `POST /register`: creates the user and continues the interaction.
pub async fn register_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = app::ssr::now();
    let fields = parse_form(&body);
    let loaded = match load(&state, &headers, &fields, true, now).await {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    let typed_username = fields.get("username").cloned().unwrap_or_default();
    let typed_email = fields.get("email").cloned().unwrap_or_default();
    let reject = |error: RegistrationError| {
        render_register(
            &loaded,
            typed_username.clone(),
            typed_email.clone(),
            Some(error.to_string()),
        )
    };

    let (username, email, password) = match check_registration(&fields) {
        Ok(values) => values,
        Err(error) => return reject(error),
    };
    match users::find_conflict(&state.db, &username, email.as_deref()).await {
        Ok(Some(conflict)) => return reject(conflict),
        Ok(None) => {}
        Err(_) => return flow::internal_error_page(),
    }
    let password_hash = match passwords::hash_password(password).await {
        Ok(hash) => hash,
        Err(error) => {
            tracing::error!(%error, "password hashing failed to run");
            return flow::internal_error_page();
        }
    };
    let new_user = NewUser {
        username,
        email,
        password_hash,
    };
    let user = match users::create_user(&state.db, new_user, now).await {
        Ok(Ok(user)) => user,
        Ok(Err(conflict)) => return reject(conflict),
        Err(_) => return flow::internal_error_page(),
    };

    tracing::info!(target: "audit", application_id = %loaded.application.id, user_id = %user.id, "user registered");
    continue_after_authentication(&state, &headers, loaded, user.id, now).await
}

/// Replaces any previous session with a new one for `user_id`, then shows
/// the consent screen or sends the browser back with a code.
async fn continue_after_authentication(
    state: &AppState,
    headers: &HeaderMap,
    loaded: Loaded,
    user_id: String,
    now: i64,
) -> Response {
    // A new session id after every password entry prevents session
    // fixation. The old row is deleted so that it cannot be reused.
    if let Some(previous) = read_cookie(headers, SESSION_COOKIE)
        && sessions::delete_user_session(&state.db, &previous)
            .await
            .is_err()
    {
        return flow::internal_error_page();
    }
    let session = match sessions::create_user_session(&state.db, &user_id, now).await {
        Ok(session) => session,
        Err(_) => return flow::internal_error_page(),
    };
    let cookie = http::cookie(
        SESSION_COOKIE,
        &session.cookie_value,
        SESSION_TTL_SECS,
        loaded.origin.secure_cookies,
    );
    let signed_in = Authenticated {
        user_id,
        auth_time: now,
    };

    let Loaded {
        id,
        mut stored,
        application,
        origin,
    } = loaded;
    if stored.request.consent_required {
        stored.authenticated = Some(signed_in);
        if interaction::mark_authenticated(&state.db, &id, &stored)
            .await
            .is_err()
        {
            return flow::internal_error_page();
        }
        return see_other(&format!("/consent?interaction={id}"), vec![cookie]);
    }
    flow::finish(
        state,
        &origin,
        Some(&id),
        &application,
        &stored.request,
        &signed_in,
        false,
        vec![cookie],
        now,
    )
    .await
}

/// `GET /consent?interaction=<id>`: lists the requested scopes.
pub async fn consent_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let now = app::ssr::now();
    let loaded = match load(&state, &headers, &query_fields(query), false, now).await {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    if loaded.stored.authenticated.is_none() {
        return see_other(&format!("/sign-in?interaction={}", loaded.id), Vec::new());
    }
    let body = pages::consent(pages::ConsentForm {
        app_name: loaded.application.name.clone(),
        interaction: loaded.id.clone(),
        csrf: loaded.stored.csrf_token.clone(),
        scopes: loaded.stored.request.scopes.clone(),
    });
    http::html_response(StatusCode::OK, body, Vec::new())
}

/// `POST /consent`: `decision=allow` issues the code with every requested
/// scope, anything else returns `access_denied` to the client.
pub async fn consent_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = app::ssr::now();
    let fields = parse_form(&body);
    let loaded = match load(&state, &headers, &fields, true, now).await {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    let Some(signed_in) = loaded.stored.authenticated.clone() else {
        return see_other(&format!("/sign-in?interaction={}", loaded.id), Vec::new());
    };
    let request = &loaded.stored.request;

    if fields.get("decision").map(String::as_str) == Some("allow") {
        tracing::info!(target: "audit", application_id = %loaded.application.id, user_id = %signed_in.user_id, "consent given");
        return flow::finish(
            &state,
            &loaded.origin,
            Some(&loaded.id),
            &loaded.application,
            request,
            &signed_in,
            true,
            Vec::new(),
            now,
        )
        .await;
    }

    tracing::info!(target: "audit", application_id = %loaded.application.id, user_id = %signed_in.user_id, "consent denied");
    match interaction::delete(&state.db, &loaded.id).await {
        Ok(true) => flow::error_redirect(
            &request.redirect_uri,
            request.state.as_deref(),
            &loaded.origin.issuer,
            "access_denied",
            "The user denied the request.",
            Vec::new(),
        ),
        Ok(false) => flow::expired_interaction_page(),
        Err(_) => flow::internal_error_page(),
    }
}
