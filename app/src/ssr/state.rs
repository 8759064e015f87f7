//! State shared by every request handler and server function.

use crate::error::AppError;
use sea_orm::DatabaseConnection;
use url::Url;

/// The database and the server's public address.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Connection pool.
    pub db: DatabaseConnection,
    /// Public URL the server was started with, without a trailing slash.
    pub public_url: Url,
}

impl AppState {
    /// Returns the state that the server put into the Leptos context.
    pub fn from_context() -> Result<Self, AppError> {
        leptos::prelude::use_context::<AppState>().ok_or_else(|| {
            tracing::error!("AppState is missing from the Leptos context");
            AppError::Internal
        })
    }

    /// Returns the public URL as text without a trailing slash.
    pub fn public_base(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_owned()
    }
}
