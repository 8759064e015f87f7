//! Browser sessions of end users and of console admins.
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

/// `sessions.kind` of console admin sessions.
pub const ADMIN_SESSION_KIND: &str = "admin";
/// An admin session ends after this many seconds without a request
/// (30 minutes).
pub const ADMIN_IDLE_TIMEOUT_SECS: i64 = 30 * 60;
/// An admin session ends this many seconds after sign-in, however active
/// (12 hours).
pub const ADMIN_ABSOLUTE_TIMEOUT_SECS: i64 = 12 * 3600;
/// `last_seen_at` is written at most once per this many seconds, so
/// browsing the console does not write to the database on every request.
const LAST_SEEN_GRANULARITY_SECS: i64 = 60;

/// Starts a console session for `admin_id`, who entered a password at
/// `now`.
pub async fn create_admin_session(
    db: &impl ConnectionTrait,
    admin_id: &str,
    now: i64,
) -> Result<NewSession, AppError> {
    let cookie_value = ids::new_opaque_token();
    let row = session::ActiveModel {
        id_hash: Set(ids::sha256_hex(&cookie_value)),
        kind: Set(ADMIN_SESSION_KIND.to_owned()),
        subject_id: Set(admin_id.to_owned()),
        auth_time: Set(now),
        created_at: Set(now),
        last_seen_at: Set(now),
        expires_at: Set(now + ADMIN_ABSOLUTE_TIMEOUT_SECS),
    }
    .insert(db)
    .await
    .map_err(internal)?;
    Ok(NewSession { cookie_value, row })
}

/// Returns the admin session that `cookie_value` belongs to when it has
/// passed neither its idle nor its absolute timeout at `now`, and marks
/// it as used. Sessions of end users never match.
pub async fn find_live_admin_session(
    db: &impl ConnectionTrait,
    cookie_value: &str,
    now: i64,
) -> Result<Option<session::Model>, AppError> {
    let id_hash = ids::sha256_hex(cookie_value);
    let row = session::Entity::find_by_id(id_hash.clone())
        .filter(session::Column::Kind.eq(ADMIN_SESSION_KIND))
        .filter(session::Column::ExpiresAt.gt(now))
        .filter(session::Column::LastSeenAt.gt(now - ADMIN_IDLE_TIMEOUT_SECS))
        .one(db)
        .await
        .map_err(internal)?;
    let Some(mut row) = row else {
        return Ok(None);
    };
    if now - row.last_seen_at >= LAST_SEEN_GRANULARITY_SECS {
        session::Entity::update_many()
            .col_expr(session::Column::LastSeenAt, sea_orm::sea_query::Expr::value(now))
            .filter(session::Column::IdHash.eq(id_hash))
            .exec(db)
            .await
            .map_err(internal)?;
        row.last_seen_at = now;
    }
    Ok(Some(row))
}

/// Ends the admin session that `cookie_value` belongs to. Returns whether
/// a row was deleted.
pub async fn delete_admin_session(
    db: &impl ConnectionTrait,
    cookie_value: &str,
) -> Result<bool, AppError> {
    let result = session::Entity::delete_many()
        .filter(session::Column::IdHash.eq(ids::sha256_hex(cookie_value)))
        .filter(session::Column::Kind.eq(ADMIN_SESSION_KIND))
        .exec(db)
        .await
        .map_err(internal)?;
    Ok(result.rows_affected > 0)
}

/// Derives the CSRF token of the console forms from the session cookie.
/// Only a holder of the cookie, which scripts cannot read, can compute it.
pub fn admin_csrf_token(cookie_value: &str) -> String {
    ids::sha256_hex(&format!("console-csrf:{cookie_value}"))
}
