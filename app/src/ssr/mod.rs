//! Server-only domain services: database access and credential generation.
//!
//! Server functions and the CLI call these functions; none of this module
//! reaches the browser bundle. Functions that check time take the current
//! time as an argument so that tests can fix it.

pub mod admins;
pub mod applications;
pub mod at_rest;
pub mod batch;
pub mod codes;
pub mod crypto;
pub mod db;
pub mod entities;
pub mod grants;
pub mod ids;
pub mod keys;
pub mod passwords;
pub mod secrets;
pub mod sessions;
pub mod users;
pub mod settings;
pub mod state;
pub mod testing;
pub mod throttle;
pub mod tokens;

pub use state::AppState;

/// Returns the current time in seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}
