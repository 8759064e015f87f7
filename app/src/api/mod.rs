//! Server functions of the console, grouped by resource.
//!
//! Each function calls a service in [`crate::ssr`] and returns its result;
//! the services hold the logic so tests and the CLI can call them directly.

pub mod applications;
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
