//! Server functions for server-wide settings.

use crate::error::AppError;
use crate::model::ConsoleSettings;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use {super::fail, crate::ssr, crate::ssr::AppState};

/// Returns the public URL and the custom domain.
#[server(endpoint = "get_settings")]
pub async fn get_settings() -> Result<ConsoleSettings, AppError> {
    super::require_admin()?;
    let state = AppState::from_context()?;
    let custom_domain = ssr::settings::custom_domain(&state.db).await.map_err(fail)?;
    Ok(ConsoleSettings {
        public_url: state.public_base(),
        custom_domain,
    })
}

/// Sets or, for blank input, clears the custom domain, then sends the
/// browser back to the settings page with a confirmation.
#[server(endpoint = "save_custom_domain")]
pub async fn save_custom_domain(custom_domain: String) -> Result<Option<String>, AppError> {
    super::require_admin()?;
    let state = AppState::from_context()?;
    let saved = ssr::settings::set_custom_domain(&state.db, &custom_domain, ssr::now())
        .await
        .map_err(fail)?;
    leptos_axum::redirect("/console/settings?saved=true");
    Ok(saved)
}
