//! Server functions of the console, grouped by resource.
//!
//! Each function calls a service in [`crate::ssr`] and returns its result;
//! the services hold the logic so tests and the CLI can call them directly.

pub mod applications;
pub mod secrets;
pub mod settings;

#[cfg(feature = "ssr")]
use crate::error::AppError;

/// Sets the HTTP status of the current server function response to fit
/// `error` and returns it, so that clients without JavaScript and scripts
/// see a 4xx or 5xx rather than 200.
#[cfg(feature = "ssr")]
pub(crate) fn fail(error: AppError) -> AppError {
    use leptos::prelude::use_context;
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        let status = axum::http::StatusCode::from_u16(error.status())
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        options.set_status(status);
    }
    error
}

/// Returns the admin that the console guard found for this request, or
/// [`AppError::SignInRequired`] with status 401. Every server function
/// calls it first, so none runs without a live admin session even if a
/// route were mounted without the guard.
#[cfg(feature = "ssr")]
pub(crate) fn require_admin() -> Result<crate::model::SignedInAdmin, AppError> {
    use leptos::prelude::use_context;
    use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<crate::model::SignedInAdmin>().cloned())
        .ok_or_else(|| fail(AppError::SignInRequired))
}
