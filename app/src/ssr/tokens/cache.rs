//! Per-process copies of what every token request needs and what rarely
//! or never changes, so that a refresh does not read it from the database
//! each time.
//!
//! Each server state owns one [`TokenCache`], so two servers in one process
//! with different databases never share entries. What is cached, and how
//! stale it can be when another instance changes the database:
//!
//! - the refresh token derivation key: kept for the life of the process,
//!   because it is written once and never changed;
//! - the active signing keys of each algorithm and the custom domain: read
//!   again once they are [`SHARED_STATE_TTL`] old, so a key added or
//!   retired, or a domain changed, on any instance takes effect here within
//!   5 seconds. Until then a retired key may still sign, and those tokens
//!   fail verification, which reads the key table without this cache;
//! - opened client secrets, as SHA-256 digests keyed by secret id and
//!   checked against the sealed value read with the application on every
//!   request, so a deleted or replaced secret stops matching at once;
//! - the opened signing key of each algorithm, with the sealed value it was
//!   opened from, used while the chosen key row still contains that value.
//!   Opening it is an AES-GCM decryption, which would otherwise run for
//!   every token.

use crate::ssr::applications::open_secret;
use crate::ssr::crypto::MasterKey;
use crate::ssr::entities::{application_secret, signing_key};
use crate::ssr::keys::{self, KeyError, LoadedKey, SigningAlg};
use crate::ssr::settings;
use crate::error::AppError;
use sea_orm::ConnectionTrait;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// How long the signing keys and the custom domain read from the database
/// are used before they are read again. This bounds how long a change made
/// on another instance (or directly in the database) goes unseen.
pub const SHARED_STATE_TTL: Duration = Duration::from_secs(5);

/// Number of opened secrets kept before the whole map is cleared. Each
/// entry is a secret id, a sealed value and a digest, about 200 bytes.
const MAX_SECRET_DIGESTS: usize = 4096;

/// A value read from the database and the moment it was read.
struct Timed<T> {
    read_at: Instant,
    value: T,
}

impl<T: Clone> Timed<T> {
    fn fresh(&self) -> Option<T> {
        (self.read_at.elapsed() < SHARED_STATE_TTL).then(|| self.value.clone())
    }
}

/// An opened client secret: the sealed value it was opened from and the
/// SHA-256 of its plaintext.
struct SecretDigest {
    sealed: String,
    digest: [u8; 32],
}

/// Cached inputs of the token endpoint. See the module documentation for
/// how stale each one can be.
#[derive(Default)]
pub struct TokenCache {
    derivation_key: OnceCell<String>,
    signing_rows: Mutex<HashMap<&'static str, Timed<Arc<Vec<signing_key::Model>>>>>,
    custom_domain: Mutex<Option<Timed<Option<String>>>>,
    secret_digests: Mutex<HashMap<String, SecretDigest>>,
    opened_keys: Mutex<HashMap<&'static str, OpenedKey>>,
}

/// A signing key opened and parsed, and the sealed value it came from.
struct OpenedKey {
    sealed: String,
    key: Arc<LoadedKey>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCache(..)")
    }
}

impl TokenCache {
    /// Returns the refresh token derivation key, read or created on the
    /// first call.
    pub async fn refresh_derivation_key(
        &self,
        db: &impl ConnectionTrait,
        now: i64,
    ) -> Result<&str, AppError> {
        self.derivation_key
            .get_or_try_init(|| keys::refresh_derivation_key(db, now))
            .await
            .map(String::as_str)
    }

    /// Returns the key that signs tokens of `alg` at `now`, chosen as
    /// [`keys::current_signing_key`] chooses it, from active rows at most
    /// [`SHARED_STATE_TTL`] old.
    pub async fn signing_key(
        &self,
        db: &impl ConnectionTrait,
        master_key: &MasterKey,
        alg: SigningAlg,
        now: i64,
    ) -> Result<Arc<LoadedKey>, KeyError> {
        let cached = self
            .signing_rows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(alg.as_str())
            .and_then(Timed::fresh);
        let rows = match cached {
            Some(rows) => rows,
            None => {
                let rows = Arc::new(keys::active_rows(db, alg).await?);
                let entry = Timed {
                    read_at: Instant::now(),
                    value: rows.clone(),
                };
                self.signing_rows
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(alg.as_str(), entry);
                rows
            }
        };
        let row = keys::select_signing_row(&rows, now).ok_or(KeyError::Missing(alg.as_str()))?;
        let opened = self
            .opened_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(alg.as_str())
            .filter(|entry| entry.key.kid == row.kid && entry.sealed == row.private_key)
            .map(|entry| entry.key.clone());
        if let Some(key) = opened {
            return Ok(key);
        }
        // The key is opened without the lock held, because parsing a new RSA
        // key can take milliseconds (an estimate, not measured).
        let key = keys::load(row, master_key)?;
        let entry = OpenedKey {
            sealed: row.private_key.clone(),
            key: key.clone(),
        };
        self.opened_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(alg.as_str(), entry);
        Ok(key)
    }

    /// Returns the custom domain setting, at most [`SHARED_STATE_TTL`] old.
    pub async fn custom_domain(&self, db: &impl ConnectionTrait) -> Result<Option<String>, AppError> {
        let cached = self
            .custom_domain
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(Timed::fresh);
        if let Some(domain) = cached {
            return Ok(domain);
        }
        let domain = settings::custom_domain(db).await?;
        *self.custom_domain.lock().unwrap_or_else(PoisonError::into_inner) = Some(Timed {
            read_at: Instant::now(),
            value: domain.clone(),
        });
        Ok(domain)
    }

    /// Returns the SHA-256 digests of the plaintexts of `secrets`, opening
    /// only those whose sealed value is not cached yet. A secret that does
    /// not open is logged and left out.
    pub fn secret_digests(
        &self,
        master_key: &MasterKey,
        secrets: &[application_secret::Model],
    ) -> Vec<[u8; 32]> {
        let mut cached = self.secret_digests.lock().unwrap_or_else(PoisonError::into_inner);
        let mut digests = Vec::with_capacity(secrets.len());
        for secret in secrets {
            if let Some(entry) = cached.get(&secret.id)
                && entry.sealed == secret.value
            {
                digests.push(entry.digest);
                continue;
            }
            match open_secret(master_key, secret) {
                Ok(plaintext) => {
                    let digest: [u8; 32] = Sha256::digest(plaintext.as_bytes()).into();
                    if cached.len() >= MAX_SECRET_DIGESTS {
                        cached.clear();
                    }
                    let entry = SecretDigest {
                        sealed: secret.value.clone(),
                        digest,
                    };
                    cached.insert(secret.id.clone(), entry);
                    digests.push(digest);
                }
                Err(error) => {
                    tracing::error!(
                        %error,
                        column = "application_secrets.value",
                        row_id = %secret.id,
                        "a stored secret cannot be decrypted"
                    );
                }
            }
        }
        digests
    }
}
