//! Steps shared by the authorization endpoint and the sign-in forms:
//! looking up the client, issuing the code and sending the browser back.

use super::http::{html_response, is_secure_origin, redirect_with, see_other};
use super::interaction::{self, Authenticated, AuthorizationRequest, Completion, internal};
use super::pages;
use app::error::AppError;
use app::ssr::entities::application;
use app::ssr::{AppState, settings};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use sea_orm::EntityTrait;

/// Facts about this server that responses need.
#[derive(Debug, Clone)]
pub struct Origin {
    /// Issuer identifier, sent as `iss` in authorization responses (RFC 9207).
    pub issuer: String,
    /// Whether cookies get the `Secure` attribute.
    pub secure_cookies: bool,
}

/// Reads the issuer and the cookie policy, honouring the custom domain.
pub async fn origin(state: &AppState) -> Result<Origin, AppError> {
    let endpoints = settings::endpoints(&state.db, &state.public_base()).await?;
    Ok(Origin {
        secure_cookies: is_secure_origin(&endpoints.base),
        issuer: endpoints.issuer,
    })
}

/// Finds the application with App ID `client_id`.
pub async fn find_application(
    state: &AppState,
    client_id: &str,
) -> Result<Option<application::Model>, AppError> {
    application::Entity::find_by_id(client_id.to_owned())
        .one(&state.db)
        .await
        .map_err(internal)
}

/// Renders an error page with status `status`.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    html_response(status, pages::error(title, message), Vec::new())
}

/// Renders the page for a failure whose cause is only in the server log.
pub fn internal_error_page() -> Response {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The server could not complete the sign-in. Try again in a moment.",
    )
}

/// Renders the page for an interaction that is unknown, expired or finished.
pub fn expired_interaction_page() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "This sign-in link has expired",
        "Go back to the application and start signing in again.",
    )
}

/// Sends the browser back to the client with an error, as RFC 6749 section
/// 4.1.2.1 describes, plus `iss` (RFC 9207). Only call this once the
/// redirect URI has been checked against the registered ones.
pub fn error_redirect(
    redirect_uri: &str,
    state: Option<&str>,
    issuer: &str,
    error: &str,
    description: &str,
    cookies: Vec<HeaderValue>,
) -> Response {
    let params = [
        ("error", Some(error)),
        ("error_description", Some(description)),
        ("state", state),
        ("iss", Some(issuer)),
    ];
    match redirect_with(redirect_uri, &params) {
        Some(location) => see_other(&location, cookies),
        None => internal_error_page(),
    }
}

/// Issues the code and sends the browser back to the client with `code`,
/// `state` and `iss`. Deletes `interaction_id` in the same transaction.
#[allow(clippy::too_many_arguments)]
pub async fn finish(
    state: &AppState,
    origin: &Origin,
    interaction_id: Option<&str>,
    application: &application::Model,
    request: &AuthorizationRequest,
    signed_in: &Authenticated,
    consent_given: bool,
    cookies: Vec<HeaderValue>,
    now: i64,
) -> Response {
    let completion = interaction::complete(
        &state.db,
        interaction_id,
        application,
        request,
        signed_in,
        consent_given,
        now,
    )
    .await;
    let code = match completion {
        Ok(Completion::Issued { code }) => code,
        Ok(Completion::AlreadyCompleted) => return expired_interaction_page(),
        Err(_) => return internal_error_page(),
    };
    let params = [
        ("code", Some(code.as_str())),
        ("state", request.state.as_deref()),
        ("iss", Some(origin.issuer.as_str())),
    ];
    match redirect_with(&request.redirect_uri, &params) {
        Some(location) => see_other(&location, cookies),
        None => internal_error_page(),
    }
}
