//! The authorization endpoint, `GET` and `POST /oidc/auth` (RFC 6749
//! section 4.1.1, OpenID Connect Core 1.0 section 3.1.2).
//!
//! Flow of the authorization code grant through Latch:
//!
//! ```text
//! client ── GET /oidc/auth ──> authorize()
//!            check_client()         unknown client or redirect URI: error page, no redirect
//!            validate()             other errors: 303 to redirect_uri with error, state, iss
//!            live session, no consent needed ──> flow::finish(): 303 with code, state, iss
//!            otherwise store an interaction ──> 303 /sign-in or /consent
//! browser ── POST /sign-in, /register ──> signin::handlers (session cookie set)
//!        ── POST /consent (when needed) ──> flow::finish(): 303 with code, state, iss
//! client ── POST /oidc/token ──> redeems the code (token endpoint)
//! ```
//!
//! Policies chosen where the specifications leave a choice:
//! - An absent or empty `scope` means the application's default scope
//!   (RFC 6749 section 3.3). Scopes other than `openid`, `profile`, `email`
//!   and `offline_access` are dropped without an error, so the code grants
//!   only the supported ones and the token response reports them.
//! - `offline_access` survives only an explicit consent screen (OpenID
//!   Connect Core 1.0 section 11). The screen is shown for `prompt=consent`
//!   and whenever `offline_access` is requested by an application without
//!   "always issue refresh token", so a client that never sends
//!   `prompt=consent` can still get a refresh token once the user agrees.
//! - PKCE accepts only S256. It is optional for confidential clients and
//!   required from public (`native`) ones (RFC 9700 section 2.1.1).

use crate::routes::ServerState;
use crate::signin::flow::{self, Origin};
use crate::signin::http::{self, BROWSER_COOKIE, BROWSER_COOKIE_TTL_SECS, read_cookie, see_other};
use crate::signin::interaction::{
    self, Authenticated, AuthorizationRequest, OFFLINE_ACCESS, StoredInteraction,
};
use app::ssr::entities::application;
use app::ssr::sessions::{self, SESSION_COOKIE};
use app::ssr::{AppState, ids, users};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use std::collections::{BTreeSet, HashMap};

/// Scopes that Latch grants. Others are dropped from requests.
pub const SUPPORTED_SCOPES: [&str; 4] = ["openid", "profile", "email", OFFLINE_ACCESS];
/// Parameters that this endpoint reads.
const KNOWN_PARAMETERS: [&str; 13] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "prompt",
    "max_age",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "request",
    "request_uri",
];
/// Maximum length of `nonce`, in bytes.
const MAX_NONCE_LEN: usize = 512;
/// Maximum length of `state`, in bytes. Every request stores its state
/// and returns it in a `Location` header, so its size must be bounded.
const MAX_STATE_LEN: usize = 2048;
/// Length of an S256 `code_challenge`: base64url of 32 bytes, unpadded.
const S256_CHALLENGE_LEN: usize = 43;

/// Routes of this endpoint.
pub fn routes() -> Router<ServerState> {
    Router::new().route("/oidc/auth", get(authorize_get).post(authorize_post))
}

/// Request parameters. An empty value counts as absent (RFC 6749 section
/// 3.1), and names sent more than once are remembered as repeated.
struct Params {
    values: HashMap<String, String>,
    repeated: BTreeSet<String>,
}

impl Params {
    fn parse(bytes: &[u8]) -> Self {
        let mut values = HashMap::new();
        let mut repeated = BTreeSet::new();
        for (name, value) in url::form_urlencoded::parse(bytes) {
            if value.is_empty() {
                continue;
            }
            if values
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                repeated.insert(name.into_owned());
            }
        }
        Self { values, repeated }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

/// A request that cannot be sent back to the client, because the client or
/// its redirect URI is not trusted (RFC 6749 section 4.1.2.1). The user
/// sees an error page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ClientError {
    /// `client_id` is missing.
    #[error("The request has no client_id.")]
    MissingClientId,
    /// No application has this App ID.
    #[error("No application with this client_id is registered.")]
    UnknownClient,
    /// `redirect_uri` is missing.
    #[error("The request has no redirect_uri.")]
    MissingRedirectUri,
    /// `redirect_uri` matches none of the registered ones.
    #[error("The redirect_uri is not registered for this application.")]
    UnregisteredRedirectUri,
    /// `client_id` or `redirect_uri` was sent more than once.
    #[error("The parameter {0} was sent more than once.")]
    RepeatedParameter(&'static str),
}

/// A rejected request whose error goes back to the client's redirect URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum AuthorizeError {
    /// A parameter is missing, repeated or malformed.
    #[error("{0}")]
    InvalidRequest(String),
    /// `response_type` is something other than `code`.
    #[error("Only response_type=code is supported.")]
    UnsupportedResponseType,
    /// `request` (a request object) was sent.
    #[error("Request objects are not supported.")]
    RequestNotSupported,
    /// `request_uri` was sent.
    #[error("request_uri is not supported.")]
    RequestUriNotSupported,
    /// `prompt=none` but the user has no usable session.
    #[error("The user is not signed in.")]
    LoginRequired,
}

impl AuthorizeError {
    /// Returns the `error` code of RFC 6749 section 4.1.2.1 and OpenID
    /// Connect Core 1.0 section 3.1.2.6.
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::LoginRequired => "login_required",
        }
    }

    fn invalid(description: &str) -> Self {
        Self::InvalidRequest(description.to_owned())
    }
}

async fn authorize_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    authorize(&state, &headers, params, app::ssr::now()).await
}

/// OpenID Connect Core 1.0 section 3.1.2.1 requires POST support with a
/// form-encoded body.
async fn authorize_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !is_form {
        return flow::error_page(
            StatusCode::BAD_REQUEST,
            "Invalid authorization request",
            "A POST to the authorization endpoint must have a form-encoded body.",
        );
    }
    authorize(&state, &headers, Params::parse(&body), app::ssr::now()).await
}

async fn authorize(state: &AppState, headers: &HeaderMap, params: Params, now: i64) -> Response {
    let application = match check_client(state, &params).await {
        Ok(application) => application,
        Err(Some(error)) => {
            tracing::warn!(target: "audit", %error, "authorization request rejected without redirect");
            return flow::error_page(
                StatusCode::BAD_REQUEST,
                "Invalid authorization request",
                &error.to_string(),
            );
        }
        Err(None) => return flow::internal_error_page(),
    };
    let Ok(origin) = flow::origin(state).await else {
        return flow::internal_error_page();
    };
    // check_client has verified both parameters.
    let redirect_uri = params.get("redirect_uri").unwrap_or_default();
    // An oversized state is left out of the error redirect as well.
    let state_param = params
        .get("state")
        .filter(|value| value.len() <= MAX_STATE_LEN);

    let (request, prompt_none) = match validate(&params, &application) {
        Ok(valid) => valid,
        Err(error) => {
            tracing::info!(application_id = %application.id, error = error.code(), "authorization request rejected");
            return flow::error_redirect(
                redirect_uri,
                state_param,
                &origin.issuer,
                error.code(),
                &error.to_string(),
                Vec::new(),
            );
        }
    };

    let session = match usable_session(state, headers, &request, now).await {
        Ok(session) => session,
        Err(()) => return flow::internal_error_page(),
    };
    if prompt_none && session.is_none() {
        let error = AuthorizeError::LoginRequired;
        return flow::error_redirect(
            redirect_uri,
            state_param,
            &origin.issuer,
            error.code(),
            &error.to_string(),
            Vec::new(),
        );
    }
    if let Some(signed_in) = &session
        && !request.consent_required
    {
        return flow::finish(
            state,
            &origin,
            None,
            &application,
            &request,
            signed_in,
            false,
            Vec::new(),
            now,
        )
        .await;
    }
    start_interaction(state, headers, &origin, request, session, now).await
}

/// Checks `client_id` and `redirect_uri` before anything else. Returns
/// `Err(None)` when the database fails.
async fn check_client(
    state: &AppState,
    params: &Params,
) -> Result<application::Model, Option<ClientError>> {
    for name in ["client_id", "redirect_uri"] {
        if params.repeated.contains(name) {
            return Err(Some(ClientError::RepeatedParameter(name)));
        }
    }
    let client_id = params
        .get("client_id")
        .ok_or(Some(ClientError::MissingClientId))?;
    let application = flow::find_application(state, client_id)
        .await
        .map_err(|_| None)?
        .ok_or(Some(ClientError::UnknownClient))?;
    let requested = params
        .get("redirect_uri")
        .ok_or(Some(ClientError::MissingRedirectUri))?;
    let registered: Vec<String> =
        serde_json::from_str(&application.redirect_uris).unwrap_or_default();
    if !registered
        .iter()
        .any(|uri| redirect_uri_matches(uri, requested))
    {
        return Err(Some(ClientError::UnregisteredRedirectUri));
    }
    Ok(application)
}

/// Compares a requested redirect URI with a registered one: exact string
/// match, except that the port of a loopback IP literal (`127.0.0.1` or
/// `[::1]` over http) may differ (RFC 8252 section 7.3). The name
/// `localhost` gets no exception.
fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    match (
        loopback_without_port(registered),
        loopback_without_port(requested),
    ) {
        (Some(registered), Some(requested)) => registered == requested,
        _ => false,
    }
}

/// Returns `uri` without its port when it is an http URI whose host is a
/// loopback IP literal, and `None` otherwise.
fn loopback_without_port(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("http://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = ["127.0.0.1", "[::1]"]
        .into_iter()
        .find(|host| authority.strip_prefix(host).is_some_and(is_port_suffix))?;
    Some(format!("http://{host}{tail}"))
}

/// Tells whether `suffix` is empty or `:` followed by a valid port number.
fn is_port_suffix(suffix: &str) -> bool {
    if suffix.is_empty() {
        return true;
    }
    suffix.strip_prefix(':').is_some_and(|port| {
        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok()
    })
}

/// Checks every parameter after the client and redirect URI. Returns the
/// request to store and whether `prompt=none` was sent.
fn validate(
    params: &Params,
    application: &application::Model,
) -> Result<(AuthorizationRequest, bool), AuthorizeError> {
    // RFC 6749 section 3.1 forbids repeating a parameter. Unknown ones are
    // ignored even when repeated.
    if let Some(name) = KNOWN_PARAMETERS
        .iter()
        .find(|name| params.repeated.contains(**name))
    {
        return Err(AuthorizeError::InvalidRequest(format!(
            "The parameter {name} was sent more than once."
        )));
    }
    match params.get("response_type") {
        None => return Err(AuthorizeError::invalid("The request has no response_type.")),
        Some("code") => {}
        Some(_) => return Err(AuthorizeError::UnsupportedResponseType),
    }
    if params.get("request").is_some() {
        return Err(AuthorizeError::RequestNotSupported);
    }
    if params.get("request_uri").is_some() {
        return Err(AuthorizeError::RequestUriNotSupported);
    }
    if params
        .get("response_mode")
        .is_some_and(|mode| mode != "query")
    {
        return Err(AuthorizeError::invalid(
            "Only response_mode=query is supported.",
        ));
    }

    let code_challenge = check_pkce(params, application)?;
    let prompt = Prompt::parse(params.get("prompt"))?;
    let max_age = check_max_age(params.get("max_age"))?;
    let nonce = params.get("nonce").map(str::to_owned);
    if nonce
        .as_ref()
        .is_some_and(|nonce| nonce.len() > MAX_NONCE_LEN)
    {
        return Err(AuthorizeError::invalid(
            "The nonce is longer than 512 bytes.",
        ));
    }

    if params
        .get("state")
        .is_some_and(|state| state.len() > MAX_STATE_LEN)
    {
        return Err(AuthorizeError::invalid(
            "The state is longer than 2048 bytes.",
        ));
    }

    let scopes = requested_scopes(params.get("scope"), &application.default_scope);
    let wants_offline = scopes.iter().any(|scope| scope == OFFLINE_ACCESS);
    let consent_required = prompt.consent
        || (wants_offline && !application.always_issue_refresh_token && !prompt.none);
    let request = AuthorizationRequest {
        client_id: application.id.clone(),
        redirect_uri: params.get("redirect_uri").unwrap_or_default().to_owned(),
        state: params.get("state").map(str::to_owned),
        scopes,
        nonce,
        code_challenge,
        max_age,
        force_login: prompt.login || max_age == Some(0),
        consent_required,
    };
    Ok((request, prompt.none))
}

/// Checks PKCE (RFC 7636): S256 only, and required from public clients.
fn check_pkce(
    params: &Params,
    application: &application::Model,
) -> Result<Option<String>, AuthorizeError> {
    let challenge = params.get("code_challenge");
    let method = params.get("code_challenge_method");
    match (challenge, method) {
        (None, None) if application.kind == "native" => Err(AuthorizeError::invalid(
            "Public clients must send a PKCE code_challenge with code_challenge_method=S256.",
        )),
        (None, None) => Ok(None),
        (None, Some(_)) => Err(AuthorizeError::invalid(
            "code_challenge_method was sent without code_challenge.",
        )),
        (Some(_), Some("S256")) => {
            let challenge = challenge.unwrap_or_default();
            let well_formed = challenge.len() == S256_CHALLENGE_LEN
                && challenge
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if well_formed {
                Ok(Some(challenge.to_owned()))
            } else {
                Err(AuthorizeError::invalid(
                    "code_challenge must be 43 characters of base64url (an S256 hash).",
                ))
            }
        }
        // A challenge without a method means `plain` (RFC 7636 section 4.3).
        (Some(_), _) => Err(AuthorizeError::invalid(
            "Only code_challenge_method=S256 is supported.",
        )),
    }
}

/// The `prompt` values Latch acts on (OpenID Connect Core 1.0 section
/// 3.1.2.1). `select_account` and unknown values are ignored.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Prompt {
    none: bool,
    login: bool,
    consent: bool,
}

impl Prompt {
    fn parse(raw: Option<&str>) -> Result<Self, AuthorizeError> {
        let mut prompt = Self::default();
        for value in raw.unwrap_or_default().split_whitespace() {
            match value {
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                "consent" => prompt.consent = true,
                _ => {}
            }
        }
        if prompt.none && (prompt.login || prompt.consent) {
            return Err(AuthorizeError::invalid(
                "prompt=none cannot be combined with other prompt values.",
            ));
        }
        Ok(prompt)
    }
}

fn check_max_age(raw: Option<&str>) -> Result<Option<i64>, AuthorizeError> {
    match raw {
        None => Ok(None),
        Some(value) => value
            .parse::<i64>()
            .ok()
            .filter(|seconds| *seconds >= 0)
            .map(Some)
            .ok_or_else(|| {
                AuthorizeError::invalid("max_age must be a non-negative number of seconds.")
            }),
    }
}

/// Returns the supported scopes of `raw` in request order without
/// duplicates, or those of `default_scope` when `raw` is absent or blank.
fn requested_scopes(raw: Option<&str>, default_scope: &str) -> Vec<String> {
    let text = raw
        .filter(|value| !value.trim().is_empty())
        .unwrap_or(default_scope);
    let mut scopes: Vec<String> = Vec::new();
    for scope in text.split_whitespace() {
        if SUPPORTED_SCOPES.contains(&scope) && !scopes.iter().any(|kept| kept == scope) {
            scopes.push(scope.to_owned());
        }
    }
    scopes
}

/// Returns the signed-in user when the browser has a live session that
/// satisfies `prompt=login` and `max_age`. `Err` means the database failed.
async fn usable_session(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthorizationRequest,
    now: i64,
) -> Result<Option<Authenticated>, ()> {
    if request.force_login {
        return Ok(None);
    }
    let Some(cookie) = read_cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(session) = sessions::find_live_user_session(&state.db, &cookie, now)
        .await
        .map_err(|_| ())?
    else {
        return Ok(None);
    };
    // OpenID Connect Core 1.0 section 3.1.2.1: an older authentication
    // than max_age requires the user to authenticate again.
    if request
        .max_age
        .is_some_and(|max_age| now - session.auth_time > max_age)
    {
        return Ok(None);
    }
    if users::find_by_id(&state.db, &session.subject_id)
        .await
        .map_err(|_| ())?
        .is_none()
    {
        return Ok(None);
    }
    Ok(Some(Authenticated {
        user_id: session.subject_id,
        auth_time: session.auth_time,
    }))
}

/// Stores the request as an interaction bound to this browser and sends
/// the browser to the sign-in form, or to the consent screen when the user
/// is already signed in.
async fn start_interaction(
    state: &AppState,
    headers: &HeaderMap,
    origin: &Origin,
    request: AuthorizationRequest,
    session: Option<Authenticated>,
    now: i64,
) -> Response {
    let browser = read_cookie(headers, BROWSER_COOKIE)
        .filter(|value| {
            value.len() == 43
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .unwrap_or_else(ids::new_opaque_token);
    let next_page = if session.is_some() {
        "/consent"
    } else {
        "/sign-in"
    };
    let stored = StoredInteraction {
        request,
        csrf_token: ids::new_opaque_token(),
        browser_hash: ids::sha256_hex(&browser),
        authenticated: session,
    };
    let Ok(id) = interaction::create(&state.db, &stored, now).await else {
        return flow::internal_error_page();
    };
    let cookie = http::cookie(
        BROWSER_COOKIE,
        &browser,
        BROWSER_COOKIE_TTL_SECS,
        origin.secure_cookies,
    );
    see_other(&format!("{next_page}?interaction={id}"), vec![cookie])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_exact_match_only() {
        let registered = "https://example.com/cb";
        assert!(redirect_uri_matches(registered, "https://example.com/cb"));
        assert!(!redirect_uri_matches(registered, "https://example.com/cb/"));
        assert!(!redirect_uri_matches(registered, "https://example.com/CB"));
        assert!(!redirect_uri_matches(
            registered,
            "https://example.com/cb?x=1"
        ));
        assert!(!redirect_uri_matches(
            registered,
            "https://example.com:8443/cb"
        ));
    }

    #[test]
    fn loopback_port_may_differ() {
        assert!(redirect_uri_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:58892/cb"
        ));
        assert!(redirect_uri_matches(
            "http://127.0.0.1:8080/",
            "http://127.0.0.1:1/"
        ));
        assert!(redirect_uri_matches(
            "http://[::1]/cb",
            "http://[::1]:5000/cb"
        ));
        assert!(!redirect_uri_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5000/other"
        ));
        assert!(!redirect_uri_matches(
            "http://127.0.0.1/cb",
            "http://[::1]:5000/cb"
        ));
        assert!(!redirect_uri_matches(
            "http://localhost/cb",
            "http://localhost:5000/cb"
        ));
        assert!(!redirect_uri_matches(
            "http://127.0.0.1/cb",
            "https://127.0.0.1:5000/cb"
        ));
        assert!(!redirect_uri_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:99999/cb"
        ));
        assert!(!redirect_uri_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1.evil.com:80/cb"
        ));
    }

    #[test]
    fn scopes_default_and_drop_unknown() {
        let default = "openid profile offline_access";
        assert_eq!(
            requested_scopes(None, default),
            vec!["openid", "profile", "offline_access"]
        );
        assert_eq!(
            requested_scopes(Some("  "), default),
            vec!["openid", "profile", "offline_access"]
        );
        assert_eq!(
            requested_scopes(Some("openid admin email openid"), default),
            vec!["openid", "email"]
        );
    }

    #[test]
    fn error_codes_follow_the_specifications() {
        assert_eq!(AuthorizeError::invalid("x").code(), "invalid_request");
        assert_eq!(
            AuthorizeError::UnsupportedResponseType.code(),
            "unsupported_response_type"
        );
        assert_eq!(
            AuthorizeError::RequestNotSupported.code(),
            "request_not_supported"
        );
        assert_eq!(
            AuthorizeError::RequestUriNotSupported.code(),
            "request_uri_not_supported"
        );
        assert_eq!(AuthorizeError::LoginRequired.code(), "login_required");
    }

    #[test]
    fn prompt_none_stands_alone() {
        assert!(Prompt::parse(Some("none login")).is_err());
        assert!(Prompt::parse(Some("login consent")).unwrap().consent);
        assert_eq!(
            Prompt::parse(Some("select_account")).unwrap(),
            Prompt::default()
        );
    }

    #[test]
    fn empty_values_count_as_absent() {
        let params = Params::parse(b"scope=&state=abc&x=1&x=2");
        assert_eq!(params.get("scope"), None);
        assert_eq!(params.get("state"), Some("abc"));
        assert!(params.repeated.contains("x"));
    }
}
