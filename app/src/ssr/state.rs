//! State shared by every request handler and server function.

use crate::error::AppError;
use super::applications::{self, ApplicationWithSecrets};
use super::batch::{BatchStart, Batcher};
use super::crypto::MasterKey;
use super::grants::RotationBatcher;
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
    /// Database work of the token endpoint that concurrent requests share.
    pub token_batches: Arc<TokenBatches>,
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

/// Maximum number of client reads in one batch.
const MAX_CLIENT_READS_PER_BATCH: usize = 64;

/// The token endpoint's database work that concurrent requests share: each
/// batch is one query or one transaction instead of one per request.
#[derive(Debug)]
pub struct TokenBatches {
    /// Reads of applications with all their secrets, by client id. A
    /// client that does not exist gets `Some(None)`.
    pub clients: Batcher<String, Option<ApplicationWithSecrets>>,
    /// Refresh token rotations.
    pub rotations: RotationBatcher,
}

impl TokenBatches {
    /// Starts the batch tasks on `db`. Must be called inside a tokio
    /// runtime.
    pub fn start(db: &DatabaseConnection) -> Self {
        let reader = db.clone();
        let start = BatchStart::for_database(db);
        let clients = Batcher::spawn(MAX_CLIENT_READS_PER_BATCH, start, move |ids: Vec<String>| {
            let db = reader.clone();
            async move {
                let mut distinct = ids.clone();
                distinct.sort_unstable();
                distinct.dedup();
                match applications::applications_with_secrets(&db, &distinct).await {
                    Ok(found) => ids.iter().map(|id| found.get(id).cloned()).collect(),
                    Err(error) => {
                        tracing::warn!(%error, "a batch of client reads failed; each request retries alone");
                        Vec::new()
                    }
                }
            }
        });
        Self {
            clients,
            rotations: RotationBatcher::start(db.clone()),
        }
    }
}
