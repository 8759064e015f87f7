//! Server functions for the client secrets of an application.
//!
//! Adding and deleting send the browser back to the guide's secret list,
//! so the plain forms work without JavaScript and a hydrated page reloads
//! with the new list and App Secret.

use crate::error::AppError;
use crate::model::{ApplicationSecrets, SecretView};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use {super::fail, crate::ssr, crate::ssr::AppState};

/// Returns the secrets of an application, newest first, with the server
/// time they were read at.
#[server(endpoint = "list_secrets")]
pub async fn list_secrets(application_id: String) -> Result<ApplicationSecrets, AppError> {
    super::require_admin()?;
    let state = AppState::from_context()?;
    let read_at = ssr::now();
    let secrets = ssr::secrets::list_secrets(&state.db, &state.master_key, &application_id)
        .await
        .map_err(fail)?;
    Ok(ApplicationSecrets { secrets, read_at })
}

/// Adds a secret and sends the browser to the guide's secret list.
///
/// `expires_on` is the value of an HTML date input: `YYYY-MM-DD`, read as
/// the end of that day in UTC, or blank for a secret that never expires.
#[server(endpoint = "add_secret")]
pub async fn add_secret(
    application_id: String,
    name: String,
    #[server(default)] expires_on: String,
) -> Result<SecretView, AppError> {
    super::require_admin()?;
    let state = AppState::from_context()?;
    let expires_at = parse_expiry(&expires_on).map_err(fail)?;
    let secret = ssr::secrets::add_secret(
        &state.db,
        &state.master_key,
        &application_id,
        &name,
        expires_at,
        ssr::now(),
    )
    .await
    .map_err(fail)?;
    leptos_axum::redirect(&secret_list_url(&application_id, "added", &secret.id));
    Ok(secret)
}

/// Deletes a secret and sends the browser to the guide's secret list.
#[server(endpoint = "delete_secret")]
pub async fn delete_secret(application_id: String, secret_id: String) -> Result<(), AppError> {
    super::require_admin()?;
    let state = AppState::from_context()?;
    ssr::secrets::delete_secret(&state.db, &application_id, &secret_id, ssr::now())
        .await
        .map_err(fail)?;
    leptos_axum::redirect(&secret_list_url(&application_id, "deleted", &secret_id));
    Ok(())
}

/// Reads the date input: blank means no expiry.
#[cfg(feature = "ssr")]
fn parse_expiry(expires_on: &str) -> Result<Option<i64>, AppError> {
    let text = expires_on.trim();
    if text.is_empty() {
        return Ok(None);
    }
    crate::dates::end_of_day(text).map(Some).ok_or_else(|| {
        AppError::invalid(
            "expires_on",
            "The expiry date is not a valid date. Enter it as YYYY-MM-DD, such as 2030-01-31, or leave it blank for a secret that never expires.",
        )
    })
}

/// Builds the address of the guide's secret list. The query names the
/// secret that changed, so each change is a new address: a browser that
/// is sent to an address differing from the current one only in the
/// fragment would scroll rather than load the page.
#[cfg(feature = "ssr")]
fn secret_list_url(application_id: &str, change: &str, secret_id: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(change, secret_id)
        .finish();
    let path_segment =
        url::form_urlencoded::byte_serialize(application_id.as_bytes()).collect::<String>();
    format!("/console/applications/{path_segment}?{query}#client-secrets")
}
