//! Server functions for applications and their guide.

use crate::error::AppError;
use crate::model::{ApplicationSummary, GuideData};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use {super::fail, crate::ssr, crate::ssr::AppState};

/// Lists every application, newest first.
#[server(endpoint = "list_applications")]
pub async fn list_applications() -> Result<Vec<ApplicationSummary>, AppError> {
    super::require_admin()?;
    let state = AppState::from_context()?;
    ssr::applications::list_applications(&state.db).await.map_err(fail)
}

/// Creates an application and sends the browser to its guide.
#[server(endpoint = "create_application")]
pub async fn create_application(name: String, kind: String) -> Result<String, AppError> {
    use crate::model::ApplicationKind;
    use crate::ssr::applications::NewApplication;

    super::require_admin()?;
    let state = AppState::from_context()?;
    let kind = ApplicationKind::parse(&kind)
        .ok_or_else(|| fail(AppError::invalid("kind", "Choose one of the listed application kinds.")))?;
    let input = NewApplication {
        name,
        kind,
        redirect_uris: Vec::new(),
        always_issue_refresh_token: false,
    };
    let created = ssr::applications::create_application(&state.db, &state.master_key, input, ssr::now())
        .await
        .map_err(fail)?;
    leptos_axum::redirect(&format!("/console/applications/{}", created.id));
    Ok(created.id)
}

/// Deletes an application and sends the browser back to the list.
#[server(endpoint = "delete_application")]
pub async fn delete_application(id: String) -> Result<(), AppError> {
    super::require_admin()?;
    let state = AppState::from_context()?;
    ssr::applications::delete_application(&state.db, &id).await.map_err(fail)?;
    leptos_axum::redirect("/console");
    Ok(())
}

/// Returns what the guide page shows for one application.
#[server(endpoint = "get_guide")]
pub async fn get_guide(id: String) -> Result<GuideData, AppError> {
    super::require_admin()?;
    let state = AppState::from_context()?;
    let application = ssr::applications::get_application(&state.db, &state.master_key, &id).await.map_err(fail)?;
    let endpoints = ssr::settings::endpoints(&state.db, &state.public_base()).await.map_err(fail)?;
    Ok(GuideData { application, endpoints })
}

/// Replaces the redirect URIs of an application and returns the saved list.
/// A list with any invalid entry is rejected whole.
#[server(endpoint = "save_redirect_uris")]
pub async fn save_redirect_uris(
    id: String,
    #[server(default)] uris: Vec<String>,
) -> Result<Vec<String>, AppError> {
    super::require_admin()?;
    let state = AppState::from_context()?;
    ssr::applications::set_redirect_uris(&state.db, &id, &uris, ssr::now()).await.map_err(fail)
}

/// Turns "Always issue refresh token" on or off and returns the new value.
#[server(endpoint = "set_always_issue_refresh_token")]
pub async fn set_always_issue_refresh_token(id: String, enabled: bool) -> Result<bool, AppError> {
    super::require_admin()?;
    let state = AppState::from_context()?;
    ssr::applications::set_always_issue_refresh_token(&state.db, &id, enabled, ssr::now())
        .await
        .map_err(fail)?;
    Ok(enabled)
}

/// Saves the OpenAI verification token and the token request encoding.
#[server(endpoint = "save_manifest_settings")]
pub async fn save_manifest_settings(
    id: String,
    verification_token: String,
    content_type: String,
) -> Result<(), AppError> {
    super::require_admin()?;
    let state = AppState::from_context()?;
    ssr::applications::set_manifest_settings(
        &state.db,
        &state.master_key,
        &id,
        &verification_token,
        &content_type,
        ssr::now(),
    )
        .await
        .map_err(fail)
}

/// Sets the audience of the application's access tokens.
#[server(endpoint = "save_audience")]
pub async fn save_audience(id: String, audience: String) -> Result<(), AppError> {
    super::require_admin()?;
    let state = AppState::from_context()?;
    ssr::applications::set_audience(&state.db, &id, &audience, ssr::now()).await.map_err(fail)
}
