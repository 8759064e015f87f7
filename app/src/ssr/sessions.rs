//! Browser sessions of end users.
//!
//! The cookie carries a random 256-bit value. The database stores only its
//! SHA-256, so a leaked database does not let anyone take over a session.

use super::applications::internal;
use super::entities::session;
use super::ids;
use crate::error::AppError;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

/// Name of the end-user session cookie.
pub const SESSION_COOKIE: &str = "latch_session";
/// Lifetime of an end-user session, in seconds (7 days).
pub const SESSION_TTL_SECS: i64 = 7 * 24 * 3600;
/// `sessions.kind` of end-user sessions.
pub const USER_SESSION_KIND: &str = "user";

/// A new session: the cookie value to send once, and the stored row.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Value for the session cookie, which is never stored or logged.
    pub cookie_value: String,
    /// The stored row.
    pub row: session::Model,
}

/// Starts a session for `user_id`, who entered a password at `now`.
pub async fn create_user_session(
    db: &impl ConnectionTrait,
    user_id: &str,
    now: i64,
) -> Result<NewSession, AppError> {
    let cookie_value = ids::new_opaque_token();
    let row = session::ActiveModel {
        id_hash: Set(ids::sha256_hex(&cookie_value)),
        kind: Set(USER_SESSION_KIND.to_owned()),
        subject_id: Set(user_id.to_owned()),
        auth_time: Set(now),
        created_at: Set(now),
        last_seen_at: Set(now),
        expires_at: Set(now + SESSION_TTL_SECS),
    }
    .insert(db)
    .await
    .map_err(internal)?;
    Ok(NewSession { cookie_value, row })
}

/// Returns the end-user session that `cookie_value` belongs to, when it
/// exists and has not expired at `now`.
pub async fn find_live_user_session(
    db: &impl ConnectionTrait,
    cookie_value: &str,
    now: i64,
) -> Result<Option<session::Model>, AppError> {
    let row = session::Entity::find_by_id(ids::sha256_hex(cookie_value))
        .filter(session::Column::Kind.eq(USER_SESSION_KIND))
        .filter(session::Column::ExpiresAt.gt(now))
        .one(db)
        .await
        .map_err(internal)?;
    Ok(row)
}

/// Deletes the end-user session that `cookie_value` belongs to. Returns
/// whether a row was deleted.
pub async fn delete_user_session(
    db: &impl ConnectionTrait,
    cookie_value: &str,
) -> Result<bool, AppError> {
    let result = session::Entity::delete_many()
        .filter(session::Column::IdHash.eq(ids::sha256_hex(cookie_value)))
        .filter(session::Column::Kind.eq(USER_SESSION_KIND))
        .exec(db)
        .await
        .map_err(internal)?;
    Ok(result.rows_affected > 0)
}
