//! Console operators (admins): creation, the one-time setup token that
//! creates the first admin, and password checks at console sign-in.
//!
//! Admins live in their own table, apart from end users, so no end-user
//! account or session can reach the console. Setup tokens are stored only
//! as SHA-256 hashes.

use super::applications::internal;
use super::entities::{admin, setup_token};
use super::ids;
use super::passwords::{self, PasswordError};
use super::users;
use crate::error::AppError;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
    TransactionSession, TransactionTrait,
};

/// Minimum admin password length, in characters. Higher than the end-user
/// minimum: an admin password guards every application's credentials.
pub const MIN_ADMIN_PASSWORD_CHARS: usize = 12;
/// Lifetime of a setup token, in seconds (one hour).
pub const SETUP_TOKEN_TTL_SECS: i64 = 3600;

/// A reason why creating an admin failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// The user name breaks the naming rule.
    #[error(
        "Choose a user name of 3 to 64 characters: letters a-z, digits, dots, hyphens and underscores."
    )]
    InvalidUsername,
    /// The password is too short.
    #[error("Choose a password of at least 12 characters.")]
    PasswordTooShort,
    /// The password is too long.
    #[error("Choose a password of at most 1024 bytes.")]
    PasswordTooLong,
    /// The confirmation differs from the password.
    #[error("The two passwords differ. Type the same password twice.")]
    PasswordMismatch,
    /// Another admin has this user name.
    #[error("An admin with this user name exists. Choose another name.")]
    UsernameTaken,
    /// The setup token is unknown, used or expired, or an admin exists.
    #[error(
        "This setup link is not valid: it was used, it expired, or an admin already exists. Restart Latch to get a new link while no admin exists, or run `latch admin create`."
    )]
    SetupTokenInvalid,
    /// The database or the hasher failed; the cause is logged.
    #[error("The server could not complete the request. The server log has the details.")]
    Internal,
}

impl From<AppError> for AdminError {
    fn from(_: AppError) -> Self {
        Self::Internal
    }
}

impl From<PasswordError> for AdminError {
    fn from(error: PasswordError) -> Self {
        tracing::error!(%error, "password hashing failed");
        Self::Internal
    }
}

/// Checks the user name and password of a new admin and returns the user
/// name in lower case.
pub fn check_new_admin(username: &str, password: &str, confirmation: &str) -> Result<String, AdminError> {
    let username = users::check_username(username).map_err(|_| AdminError::InvalidUsername)?;
    if password.chars().count() < MIN_ADMIN_PASSWORD_CHARS {
        return Err(AdminError::PasswordTooShort);
    }
    if password.len() > users::MAX_PASSWORD_BYTES {
        return Err(AdminError::PasswordTooLong);
    }
    if password != confirmation {
        return Err(AdminError::PasswordMismatch);
    }
    Ok(username)
}

/// Returns how many admins exist.
pub async fn count_admins(db: &impl ConnectionTrait) -> Result<u64, AppError> {
    admin::Entity::find().count(db).await.map_err(internal)
}

/// Returns the admin with `username` (any case), if one exists.
pub async fn find_by_username(db: &impl ConnectionTrait, username: &str) -> Result<Option<admin::Model>, AppError> {
    admin::Entity::find()
        .filter(admin::Column::Username.eq(username.trim().to_lowercase()))
        .one(db)
        .await
        .map_err(internal)
}

/// Returns the admin with `id`, if one exists.
pub async fn find_by_id(db: &impl ConnectionTrait, id: &str) -> Result<Option<admin::Model>, AppError> {
    admin::Entity::find_by_id(id.to_owned()).one(db).await.map_err(internal)
}

async fn insert_admin(db: &impl ConnectionTrait, username: String, password_hash: String, now: i64) -> Result<admin::Model, AdminError> {
    if find_by_username(db, &username).await?.is_some() {
        return Err(AdminError::UsernameTaken);
    }
    let inserted = admin::ActiveModel {
        id: Set(ids::new_row_id()),
        username: Set(username.clone()),
        password_hash: Set(password_hash),
        created_at: Set(now),
        updated_at: Set(now),
        last_sign_in_at: Set(None),
    }
    .insert(db)
    .await;
    match inserted {
        Ok(row) => Ok(row),
        // A concurrent insert of the same name lost the race on the
        // unique index.
        Err(_) if find_by_username(db, &username).await?.is_some() => Err(AdminError::UsernameTaken),
        Err(error) => Err(AdminError::from(internal(error))),
    }
}

/// Creates an admin, as `latch admin create` does. Any setup token stops
/// working, since an admin now exists.
pub async fn create_admin<C>(db: &C, username: &str, password: &str, now: i64) -> Result<admin::Model, AdminError>
where
    C: ConnectionTrait + TransactionTrait,
{
    let username = check_new_admin(username, password, password)?;
    let hash = passwords::hash_password(password.to_owned()).await?;
    let txn = db.begin().await.map_err(internal)?;
    let created = insert_admin(&txn, username, hash, now).await?;
    setup_token::Entity::delete_many().exec(&txn).await.map_err(internal)?;
    txn.commit().await.map_err(internal)?;
    tracing::info!(target: "audit", admin_id = %created.id, username = %created.username, "admin created");
    Ok(created)
}

/// Stores a new setup token, valid for an hour, and returns it. Called at
/// start-up while no admin exists. Links issued before stop working, so
/// only the newest logged link creates the first admin.
pub async fn issue_setup_token(db: &impl ConnectionTrait, now: i64) -> Result<String, AppError> {
    setup_token::Entity::delete_many().exec(db).await.map_err(internal)?;
    let token = ids::new_opaque_token();
    setup_token::ActiveModel {
        token_hash: Set(ids::sha256_hex(&token)),
        created_at: Set(now),
        expires_at: Set(now + SETUP_TOKEN_TTL_SECS),
    }
    .insert(db)
    .await
    .map_err(internal)?;
    Ok(token)
}

/// Tells whether `token` is a live setup token while no admin exists.
pub async fn setup_token_is_live(db: &impl ConnectionTrait, token: &str, now: i64) -> Result<bool, AppError> {
    let row = setup_token::Entity::find_by_id(ids::sha256_hex(token))
        .filter(setup_token::Column::ExpiresAt.gt(now))
        .one(db)
        .await
        .map_err(internal)?;
    Ok(row.is_some() && count_admins(db).await? == 0)
}

/// Creates the first admin with a setup token. The token is consumed in
/// the same transaction, and every other setup token dies with it, so a
/// link works once.
pub async fn create_first_admin<C>(
    db: &C,
    token: &str,
    username: &str,
    password: &str,
    confirmation: &str,
    now: i64,
) -> Result<admin::Model, AdminError>
where
    C: ConnectionTrait + TransactionTrait,
{
    if !setup_token_is_live(db, token, now).await? {
        return Err(AdminError::SetupTokenInvalid);
    }
    let username = check_new_admin(username, password, confirmation)?;
    let hash = passwords::hash_password(password.to_owned()).await?;

    let txn = db.begin().await.map_err(internal)?;
    let consumed = setup_token::Entity::delete_many()
        .filter(setup_token::Column::TokenHash.eq(ids::sha256_hex(token)))
        .filter(setup_token::Column::ExpiresAt.gt(now))
        .exec(&txn)
        .await
        .map_err(internal)?;
    if consumed.rows_affected != 1 || count_admins(&txn).await? != 0 {
        return Err(AdminError::SetupTokenInvalid);
    }
    setup_token::Entity::delete_many().exec(&txn).await.map_err(internal)?;
    let created = insert_admin(&txn, username, hash, now).await?;
    txn.commit().await.map_err(internal)?;
    tracing::info!(target: "audit", admin_id = %created.id, username = %created.username, "setup used: first admin created");
    Ok(created)
}

/// Records a successful sign-in of `admin_id` at `now`.
pub async fn record_sign_in(db: &impl ConnectionTrait, admin_id: &str, now: i64) -> Result<(), AppError> {
    admin::Entity::update_many()
        .col_expr(admin::Column::LastSignInAt, sea_orm::sea_query::Expr::value(now))
        .filter(admin::Column::Id.eq(admin_id))
        .exec(db)
        .await
        .map_err(internal)?;
    Ok(())
}
