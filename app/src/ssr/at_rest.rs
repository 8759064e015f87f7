//! The start-up check that the master key is the one the database was
//! sealed with, and the sealing of values stored before encryption.
//!
//! The first start on a database stores a sealed check value in
//! `settings`. Every later start opens it, and refuses to go on when it
//! does not open, before anything is sealed with a key that would make the
//! database unreadable to the other instances.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use super::crypto::{self, MasterKey};
use super::entities::{application, application_secret, setting, signing_key};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

/// Settings key of the sealed check value.
pub const MASTER_KEY_CHECK: &str = "master_key_check";
/// Context and plaintext of the check value.
const CHECK_CONTEXT: &str = "master_key_check";
const CHECK_PLAINTEXT: &str = "Latch master key check";

/// Error that stops start-up: the master key does not fit the database,
/// or the database failed.
#[derive(Debug, thiserror::Error)]
pub enum AtRestError {
    /// The database was sealed with another master key.
    #[error(
        "the master key does not match the one the database was sealed with. Start Latch with the original key: the master.key file from the data directory of the first start, or the original value of LATCH_MASTER_KEY. Instances that share a database all need that same key"
    )]
    KeyMismatch,
    /// The database request failed.
    #[error("cannot check the master key against the database: {0}")]
    Database(#[from] DbErr),
}

/// Checks that `key` opens what the database holds, stores the check
/// value on first use, and seals the values written before encryption
/// existed.
///
/// Two instances may run this at the same moment. The check value is
/// inserted only when none exists and then read back, so both compare
/// their key with the same value. Each plaintext value is replaced only
/// while it is still that plaintext, so a value that the other instance
/// sealed first is left alone.
pub async fn prepare_database(db: &impl ConnectionTrait, key: &MasterKey, now: i64) -> Result<(), AtRestError> {
    if read_check(db).await?.is_none() {
        // A database from before the check value existed: every sealed
        // value it contains must open with this key.
        verify_sealed_values(db, key).await?;
        let candidate = setting::ActiveModel {
            key: Set(MASTER_KEY_CHECK.to_owned()),
            value: Set(key.seal(CHECK_CONTEXT, CHECK_PLAINTEXT)),
            updated_at: Set(now),
        };
        setting::Entity::insert(candidate)
            .on_conflict_do_nothing_on([setting::Column::Key])
            .exec(db)
            .await?;
    }
    let stored = read_check(db).await?.ok_or(AtRestError::KeyMismatch)?;
    match key.open(CHECK_CONTEXT, &stored) {
        Ok(text) if text == CHECK_PLAINTEXT => {}
        _ => return Err(AtRestError::KeyMismatch),
    }
    let sealed = seal_plaintext(db, key).await?;
    if sealed > 0 {
        tracing::info!(count = sealed, "sealed stored secrets that were in plain text");
    }
    Ok(())
}

async fn read_check(db: &impl ConnectionTrait) -> Result<Option<String>, DbErr> {
    Ok(setting::Entity::find_by_id(MASTER_KEY_CHECK.to_owned())
        .one(db)
        .await?
        .map(|row| row.value))
}

/// Fails when a sealed value in the database does not open with `key`.
async fn verify_sealed_values(db: &impl ConnectionTrait, key: &MasterKey) -> Result<(), AtRestError> {
    let opens = |context: String, value: &str| !crypto::is_sealed(value) || key.open(&context, value).is_ok();
    for row in application_secret::Entity::find().all(db).await? {
        if !opens(crypto::application_secret_context(&row.id), &row.value) {
            return Err(AtRestError::KeyMismatch);
        }
    }
    for row in signing_key::Entity::find().all(db).await? {
        if !opens(crypto::signing_key_context(&row.kid), &row.private_key) {
            return Err(AtRestError::KeyMismatch);
        }
    }
    for row in application::Entity::find().all(db).await? {
        if let Some(token) = &row.openai_verification_token
            && !opens(crypto::verification_token_context(&row.id), token)
        {
            return Err(AtRestError::KeyMismatch);
        }
    }
    Ok(())
}

/// Seals every stored secret that is still plain text and returns how many
/// rows this call changed.
async fn seal_plaintext(db: &impl ConnectionTrait, key: &MasterKey) -> Result<u64, DbErr> {
    let sealed_pattern = format!("{}%", crypto::SEALED_PREFIX);
    let mut changed = 0;

    let secrets = application_secret::Entity::find()
        .filter(application_secret::Column::Value.not_like(&sealed_pattern))
        .all(db)
        .await?;
    for row in secrets {
        let sealed = key.seal(&crypto::application_secret_context(&row.id), &row.value);
        changed += application_secret::Entity::update_many()
            .col_expr(application_secret::Column::Value, Expr::value(sealed))
            .filter(application_secret::Column::Id.eq(row.id.as_str()))
            .filter(application_secret::Column::Value.eq(row.value.as_str()))
            .exec(db)
            .await?
            .rows_affected;
    }

    let keys = signing_key::Entity::find()
        .filter(signing_key::Column::PrivateKey.not_like(&sealed_pattern))
        .all(db)
        .await?;
    for row in keys {
        let sealed = key.seal(&crypto::signing_key_context(&row.kid), &row.private_key);
        changed += signing_key::Entity::update_many()
            .col_expr(signing_key::Column::PrivateKey, Expr::value(sealed))
            .filter(signing_key::Column::Kid.eq(row.kid.as_str()))
            .filter(signing_key::Column::PrivateKey.eq(row.private_key.as_str()))
            .exec(db)
            .await?
            .rows_affected;
    }

    let applications = application::Entity::find()
        .filter(application::Column::OpenaiVerificationToken.is_not_null())
        .filter(application::Column::OpenaiVerificationToken.not_like(&sealed_pattern))
        .all(db)
        .await?;
    for row in applications {
        let Some(token) = row.openai_verification_token else {
            continue;
        };
        let sealed = key.seal(&crypto::verification_token_context(&row.id), &token);
        changed += application::Entity::update_many()
            .col_expr(application::Column::OpenaiVerificationToken, Expr::value(sealed))
            .filter(application::Column::Id.eq(row.id.as_str()))
            .filter(application::Column::OpenaiVerificationToken.eq(token.as_str()))
            .exec(db)
            .await?
            .rows_affected;
    }
    Ok(changed)
}
