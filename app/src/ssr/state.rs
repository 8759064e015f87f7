//! State shared by every request handler and server function.

use crate::error::AppError;
use super::crypto::MasterKey;
use super::throttle::ThrottlePolicy;
use super::tokens::cache::TokenCache;
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use url::Url;

/// The database, the server's public address and the master key.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Connection pool.
    pub db: DatabaseConnection,
    /// Public URL the server was started with, without a trailing slash.
    pub public_url: Url,
    /// Key that seals client secrets, signing keys and verification
    /// tokens in the database.
    pub master_key: Arc<MasterKey>,
    /// Policy that slows down failed sign-ins.
    pub throttle: ThrottlePolicy,
    /// Signing keys, settings and opened secrets kept in memory for the
    /// token endpoint.
    pub token_cache: Arc<TokenCache>,
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
