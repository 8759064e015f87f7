//! The end-session endpoint, `GET` and `POST /oidc/session/end` (OpenID
//! Connect RP-Initiated Logout 1.0).
//!
//! It deletes the browser's session row and expires the cookie. The browser
//! goes to `post_logout_redirect_uri`, with `state`, only when that URI is
//! registered for the `client_id` of the request. Otherwise it sees a
//! signed-out page.

use crate::routes::ServerState;
use crate::signin::flow;
use crate::signin::http::{self, read_cookie, redirect_with, see_other};
use crate::signin::pages;
use app::ssr::AppState;
use app::ssr::sessions::{self, SESSION_COOKIE};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use std::collections::HashMap;

/// Routes of this endpoint.
pub fn routes() -> Router<ServerState> {
    Router::new().route(
        "/oidc/session/end",
        get(end_session_get).post(end_session_post),
    )
}

// TODO-hardening: a GET ends the session without asking the user, so a
// third-party page can sign a user out by embedding this URL (logout CSRF).
async fn end_session_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    end_session(&state, &headers, query.unwrap_or_default().as_bytes()).await
}

async fn end_session_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    end_session(&state, &headers, &body).await
}

fn parse(bytes: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(bytes)
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

async fn end_session(state: &AppState, headers: &HeaderMap, bytes: &[u8]) -> Response {
    let params = parse(bytes);
    let Ok(origin) = flow::origin(state).await else {
        return flow::internal_error_page();
    };

    if let Some(cookie) = read_cookie(headers, SESSION_COOKIE) {
        match sessions::delete_user_session(&state.db, &cookie).await {
            Ok(true) => tracing::info!(target: "audit", "session ended"),
            Ok(false) => {}
            Err(_) => return flow::internal_error_page(),
        }
    }
    let expired = vec![http::expired_cookie(SESSION_COOKIE, origin.secure_cookies)];

    let target = match registered_target(state, &params).await {
        Ok(target) => target,
        Err(()) => return flow::internal_error_page(),
    };
    let location = target.and_then(|uri| {
        let state_param = params.get("state").map(String::as_str);
        redirect_with(&uri, &[("state", state_param)])
    });
    match location {
        Some(location) => see_other(&location, expired),
        None => http::html_response(StatusCode::OK, pages::signed_out(), expired),
    }
}

/// Returns `post_logout_redirect_uri` when it is registered, byte for byte,
/// in the `post_logout_redirect_uris` of the request's `client_id`.
async fn registered_target(
    state: &AppState,
    params: &HashMap<String, String>,
) -> Result<Option<String>, ()> {
    let (Some(uri), Some(client_id)) = (
        params.get("post_logout_redirect_uri"),
        params.get("client_id"),
    ) else {
        return Ok(None);
    };
    let Some(application) = flow::find_application(state, client_id)
        .await
        .map_err(|_| ())?
    else {
        return Ok(None);
    };
    let registered: Vec<String> =
        serde_json::from_str(&application.post_logout_redirect_uris).unwrap_or_default();
    if registered.iter().any(|known| known == uri) {
        Ok(Some(uri.clone()))
    } else {
        tracing::warn!(application_id = %application.id, "post_logout_redirect_uri is not registered; showing the signed-out page");
        Ok(None)
    }
}
