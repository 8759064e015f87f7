//! Redeeming authorization codes and rotating refresh tokens.
//!
//! Both operations must be safe when the same code or refresh token
//! arrives on several connections at once. Each one therefore claims its
//! row with a conditional `UPDATE` (`consumed_at IS NULL`, `rotated_at IS
//! NULL`) as the first statement of a transaction: the database lets only
//! one request change the row, and every other request gets zero affected
//! rows and takes the reuse path. Nothing is read and then written back.
//!
//! Refresh tokens form families: the token issued with a code and every
//! token that replaced it share a `family_id`. Each family has a row in
//! `refresh_token_families`, and revoking the family there ends all of its
//! tokens at once. Access tokens carry the family id so that they stop
//! working too.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use super::batch::{BatchStart, Batcher};
use super::entities::{authorization_code, refresh_token, refresh_token_family, user};
use super::ids;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, Set, TransactionSession, TransactionTrait,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Time after a rotation during which the old refresh token still returns
/// the same successor, in seconds. A client whose response was lost can
/// retry within this window. After it, the old token counts as stolen (RFC
/// 9700 section 4.14.2) and its family is revoked.
pub const REFRESH_REUSE_GRACE_SECS: i64 = 10;

const SECONDS_PER_DAY: i64 = 86_400;

/// Reason a code or refresh token was rejected. The token endpoint sends
/// `invalid_grant` for a rejected grant, `invalid_scope` for
/// [`GrantError::ScopeExceedsGrant`] and `server_error` for the rest. The
/// variant itself is only logged.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// No code has this value.
    #[error("the authorization code is unknown")]
    CodeNotFound,
    /// The code was issued to another client.
    #[error("the authorization code was issued to another client")]
    CodeClientMismatch,
    /// The code's lifetime has passed.
    #[error("the authorization code has expired")]
    CodeExpired,
    /// The code was redeemed before; what it produced is now revoked.
    #[error("the authorization code was already redeemed")]
    CodeReused,
    /// `redirect_uri` differs from the authorization request.
    #[error("redirect_uri does not match the authorization request")]
    RedirectMismatch,
    /// A code challenge was stored, but no verifier was sent.
    #[error("code_verifier is missing")]
    VerifierMissing,
    /// The verifier does not hash to the stored challenge.
    #[error("code_verifier does not match the code challenge")]
    VerifierMismatch,
    /// A verifier was sent for a code issued without a challenge.
    #[error("code_verifier was sent but the authorization request had no code_challenge")]
    VerifierUnexpected,
    /// A public client redeemed a code issued without PKCE.
    #[error("a public client must use PKCE")]
    PkceRequired,
    /// No refresh token has this value.
    #[error("the refresh token is unknown")]
    RefreshNotFound,
    /// The refresh token belongs to another client.
    #[error("the refresh token was issued to another client")]
    RefreshClientMismatch,
    /// The refresh token's lifetime has passed.
    #[error("the refresh token has expired")]
    RefreshExpired,
    /// The refresh token's family was revoked.
    #[error("the refresh token was revoked")]
    RefreshRevoked,
    /// A rotated-out token came back after the grace window.
    #[error("a rotated refresh token was reused; its family is revoked")]
    RefreshReused,
    /// The requested scope is wider than the grant.
    #[error("the requested scope exceeds the granted scope")]
    ScopeExceedsGrant,
    /// The server secret for successor tokens is not a valid HMAC key.
    #[error("the refresh token derivation key is unusable")]
    DerivationKeyUnusable,
    /// The database request failed.
    #[error("database request failed: {0}")]
    Database(#[from] DbErr),
}

/// Parameters of a code redemption.
#[derive(Debug, Clone, Copy)]
pub struct CodeRedemption<'a> {
    /// The authenticated client.
    pub client_id: &'a str,
    /// `redirect_uri` of the token request.
    pub redirect_uri: Option<&'a str>,
    /// `code_verifier` of the token request.
    pub code_verifier: Option<&'a str>,
    /// Whether the client is public and so must have used PKCE.
    pub public_client: bool,
    /// Lifetime of a refresh token issued now, in days.
    pub refresh_ttl_days: i32,
}

/// A refresh token handed to the client, with its stored row.
#[derive(Debug, Clone)]
pub struct IssuedRefreshToken {
    /// The token itself, never stored.
    pub token: String,
    /// The stored row.
    pub row: refresh_token::Model,
}

/// A redeemed code and the refresh token it produced, if any.
#[derive(Debug, Clone)]
pub struct RedeemedCode {
    /// The code's row, as it was before redemption.
    pub code: authorization_code::Model,
    /// The new refresh token, when the code allows one.
    pub refresh: Option<IssuedRefreshToken>,
}

/// Redeems an authorization code (RFC 6749 section 4.1.3).
///
/// Every check runs before anything is written, so a rejected request
/// leaves the code usable. A second redemption revokes the refresh token
/// family of the first (RFC 6749 section 4.1.2).
pub async fn redeem_code<C>(
    db: &C,
    code: &str,
    request: CodeRedemption<'_>,
    now: i64,
) -> Result<RedeemedCode, GrantError>
where
    C: ConnectionTrait + TransactionTrait,
{
    let code_hash = ids::sha256_hex(code);
    let row = authorization_code::Entity::find_by_id(code_hash.clone())
        .one(db)
        .await?
        .ok_or(GrantError::CodeNotFound)?;
    if row.application_id != request.client_id {
        return Err(GrantError::CodeClientMismatch);
    }
    if row.consumed_at.is_some() {
        revoke_grants_of_code(db, &code_hash, now).await?;
        return Err(GrantError::CodeReused);
    }
    if row.expires_at <= now {
        return Err(GrantError::CodeExpired);
    }
    ensure_redirect_uri_matches(&row, request.redirect_uri)?;
    verify_pkce(&row, request.code_verifier, request.public_client)?;

    let txn = db.begin().await?;
    let claimed = authorization_code::Entity::update_many()
        .col_expr(authorization_code::Column::ConsumedAt, Expr::value(now))
        .filter(authorization_code::Column::CodeHash.eq(code_hash.as_str()))
        .filter(authorization_code::Column::ConsumedAt.is_null())
        .exec(&txn)
        .await?;
    if claimed.rows_affected != 1 {
        txn.rollback().await?;
        revoke_grants_of_code(db, &code_hash, now).await?;
        return Err(GrantError::CodeReused);
    }
    let refresh = if row.issue_refresh_token {
        let family = NewFamily {
            code: &row,
            code_hash: &code_hash,
            ttl_days: request.refresh_ttl_days,
        };
        Some(insert_first_refresh_token(&txn, family, now).await?)
    } else {
        None
    };
    txn.commit().await?;
    Ok(RedeemedCode { code: row, refresh })
}

/// RFC 6749 section 4.1.3: the redirect URI must be identical to the one
/// of the authorization request. It may be left out only when the
/// authorization request could not have differed, which Latch does not
/// track, so it is always required.
fn ensure_redirect_uri_matches(
    row: &authorization_code::Model,
    sent: Option<&str>,
) -> Result<(), GrantError> {
    match sent {
        Some(uri) if uri == row.redirect_uri => Ok(()),
        _ => Err(GrantError::RedirectMismatch),
    }
}

/// RFC 7636 section 4.6 with the downgrade check of RFC 9700 section
/// 2.1.1: a verifier without a stored challenge is rejected.
fn verify_pkce(
    row: &authorization_code::Model,
    verifier: Option<&str>,
    public_client: bool,
) -> Result<(), GrantError> {
    match (&row.code_challenge, verifier) {
        (None, Some(_)) => Err(GrantError::VerifierUnexpected),
        (None, None) if public_client => Err(GrantError::PkceRequired),
        (None, None) => Ok(()),
        (Some(_), None) => Err(GrantError::VerifierMissing),
        (Some(challenge), Some(verifier)) => {
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if bool::from(computed.as_bytes().ct_eq(challenge.as_bytes())) {
                Ok(())
            } else {
                Err(GrantError::VerifierMismatch)
            }
        }
    }
}

struct NewFamily<'a> {
    code: &'a authorization_code::Model,
    code_hash: &'a str,
    ttl_days: i32,
}

async fn insert_first_refresh_token(
    db: &impl ConnectionTrait,
    family: NewFamily<'_>,
    now: i64,
) -> Result<IssuedRefreshToken, DbErr> {
    let token = format!("{}{STAMP_SEPARATOR}{}", new_stamp(), ids::new_opaque_token());
    let family_id = ids::new_row_id();
    refresh_token_family::ActiveModel {
        family_id: Set(family_id.clone()),
        application_id: Set(family.code.application_id.clone()),
        user_id: Set(family.code.user_id.clone()),
        code_hash: Set(Some(family.code_hash.to_owned())),
        created_at: Set(now),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    let row = refresh_token::ActiveModel {
        token_hash: Set(refresh_token_key(&token)),
        family_id: Set(family_id),
        application_id: Set(family.code.application_id.clone()),
        user_id: Set(family.code.user_id.clone()),
        scope: Set(family.code.scope.clone()),
        auth_time: Set(family.code.auth_time),
        code_hash: Set(Some(family.code_hash.to_owned())),
        created_at: Set(now),
        expires_at: Set(now + i64::from(family.ttl_days) * SECONDS_PER_DAY),
        rotated_at: Set(None),
        replaced_by_hash: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(IssuedRefreshToken { token, row })
}

/// Parameters of a refresh request and the application's refresh token
/// settings.
#[derive(Debug, Clone, Copy)]
pub struct RefreshRequest<'a> {
    /// The authenticated client.
    pub client_id: &'a str,
    /// Whether each use replaces the token.
    pub rotate: bool,
    /// Lifetime of a successor token, in days.
    pub ttl_days: i32,
    /// Server secret that derives successor tokens.
    pub derivation_key: &'a str,
}

/// Exchanges a refresh token (RFC 6749 section 6) and returns the refresh
/// token the client must keep: the same one when rotation is off, its
/// successor otherwise.
///
/// The successor is a stamp and an HMAC of the old token under a server
/// secret, and the old token's row keeps the successor's key, stamp
/// included. A retry within [`REFRESH_REUSE_GRACE_SECS`] and every
/// concurrent request that lost the race therefore get the same successor
/// without any plaintext token being stored.
///
/// A token rotated while rotation was on stays spent after it is switched
/// off: within the grace window it returns its successor, and after it
/// counts as reused.
pub async fn use_refresh_token<C>(
    db: &C,
    presented: &str,
    request: RefreshRequest<'_>,
    now: i64,
) -> Result<IssuedRefreshToken, GrantError>
where
    C: ConnectionTrait + TransactionTrait,
{
    let presented_key = refresh_token_key(presented);
    if !request.rotate {
        let row = find_usable(db, presented_key, request.client_id, now).await?;
        if let Some(rotated_at) = row.rotated_at {
            return successor_within_grace(db, &row, presented, request, rotated_at, now).await;
        }
        return Ok(IssuedRefreshToken {
            token: presented.to_owned(),
            row,
        });
    }

    let successor = derive_successor(request.derivation_key, presented, &new_stamp())?;
    let successor_hash = refresh_token_key(&successor);
    let txn = db.begin().await?;
    // One statement checks the token and claims it: it matches only a live
    // token of this client that has not been rotated, and returns the row.
    let claimed = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RotatedAt, Expr::value(now))
        .col_expr(
            refresh_token::Column::ReplacedByHash,
            Expr::value(successor_hash.as_str()),
        )
        .filter(refresh_token::Column::TokenHash.eq(presented_key.as_str()))
        .filter(refresh_token::Column::ApplicationId.eq(request.client_id))
        .filter(claimable(now))
        .exec_with_returning(&txn)
        .await?;
    let Some(row) = claimed.into_iter().next() else {
        // The token is unknown, not this client's, revoked, expired or
        // already rotated, possibly by a concurrent request whose result is
        // now committed. Read it to tell which.
        txn.rollback().await?;
        let current = find_usable(db, presented_key, request.client_id, now).await?;
        let rotated_at = current.rotated_at.ok_or(GrantError::RefreshRevoked)?;
        return successor_within_grace(db, &current, presented, request, rotated_at, now).await;
    };
    let successor_row = successor_row(row, successor_hash, request.ttl_days, now)
        .into_active_model()
        .insert(&txn)
        .await?;
    txn.commit().await?;
    Ok(IssuedRefreshToken {
        token: successor,
        row: successor_row,
    })
}

/// Maximum number of rotations in one batch. Each adds four bound values
/// to the claiming `UPDATE` and twelve to the successor `INSERT`.
const MAX_ROTATIONS_PER_BATCH: usize = 64;

/// A refresh token rotation waiting for its batch.
#[derive(Debug, Clone)]
pub struct Rotation {
    presented_hash: String,
    successor_hash: String,
    client_id: String,
    ttl_days: i32,
    now: i64,
}

impl Rotation {
    /// Prepares the rotation of `presented` for [`rotate_many`] and
    /// returns it with the successor token that the rotation stores.
    pub fn prepare(
        presented: &str,
        request: RefreshRequest<'_>,
        now: i64,
    ) -> Result<(Self, String), GrantError> {
        let successor = derive_successor(request.derivation_key, presented, &new_stamp())?;
        let rotation = Self {
            presented_hash: refresh_token_key(presented),
            successor_hash: refresh_token_key(&successor),
            client_id: request.client_id.to_owned(),
            ttl_days: request.ttl_days,
            now,
        };
        Ok((rotation, successor))
    }
}

/// A rotation carried out by a batch: the successor's row and the user
/// the token belongs to, read in the same transaction.
#[derive(Debug, Clone)]
pub struct Rotated {
    /// The stored row of the successor token.
    pub successor: refresh_token::Model,
    /// The token's user; `None` if it was deleted.
    pub user: Option<user::Model>,
}

/// Rotates many refresh tokens in one transaction of four statements: one
/// `UPDATE ... RETURNING` claims every token that is live, belongs to the
/// client named in its job and has not been rotated; one `INSERT` adds the
/// successors; one `SELECT` reads their users.
///
/// Returns one entry per job, in order. A job gets `None` when its token
/// was not claimed: unknown, expired, revoked, another client's, already
/// rotated, or presented by an earlier job of the same batch. Nothing was
/// changed for such a job, and [`use_refresh_token`] returns the reason.
pub async fn rotate_many<C>(db: &C, jobs: &[Rotation]) -> Result<Vec<Option<Rotated>>, DbErr>
where
    C: ConnectionTrait + TransactionTrait,
{
    use sea_orm::Condition;
    use sea_orm::sea_query::CaseStatement;
    use std::collections::HashMap;

    let mut results = vec![None; jobs.len()];
    // The latest request time of the batch is the expiry check and the
    // rotation time of every job.
    let Some(now) = jobs.iter().map(|job| job.now).max() else {
        return Ok(results);
    };
    let mut first_job: HashMap<&str, usize> = HashMap::with_capacity(jobs.len());
    let mut owned_by_client = Condition::any();
    let mut successor_of = CaseStatement::new();
    for (index, job) in jobs.iter().enumerate() {
        if first_job.contains_key(job.presented_hash.as_str()) {
            continue;
        }
        first_job.insert(&job.presented_hash, index);
        owned_by_client = owned_by_client.add(
            Condition::all()
                .add(refresh_token::Column::TokenHash.eq(job.presented_hash.as_str()))
                .add(refresh_token::Column::ApplicationId.eq(job.client_id.as_str())),
        );
        successor_of = successor_of.case(
            refresh_token::Column::TokenHash.eq(job.presented_hash.as_str()),
            Expr::value(job.successor_hash.as_str()),
        );
    }

    let txn = db.begin().await?;
    let claimed = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RotatedAt, Expr::value(now))
        .col_expr(refresh_token::Column::ReplacedByHash, successor_of.into())
        .filter(owned_by_client)
        .filter(claimable(now))
        .exec_with_returning(&txn)
        .await?;
    if claimed.is_empty() {
        txn.rollback().await?;
        return Ok(results);
    }

    let mut successors = Vec::with_capacity(claimed.len());
    for row in claimed {
        let Some(&index) = first_job.get(row.token_hash.as_str()) else {
            // The UPDATE matched only hashes of this batch.
            txn.rollback().await?;
            return Err(DbErr::Custom(
                "a batch claimed a refresh token it did not ask for".into(),
            ));
        };
        let job = &jobs[index];
        let successor = successor_row(row, job.successor_hash.clone(), job.ttl_days, now);
        successors.push((index, successor));
    }
    refresh_token::Entity::insert_many(
        successors
            .iter()
            .map(|(_, successor)| successor.clone().into_active_model()),
    )
    .exec(&txn)
    .await?;
    let user_ids: Vec<String> = successors
        .iter()
        .map(|(_, successor)| successor.user_id.clone())
        .collect();
    let users: HashMap<String, user::Model> = user::Entity::find()
        .filter(user::Column::Id.is_in(user_ids))
        .all(&txn)
        .await?
        .into_iter()
        .map(|user| (user.id.clone(), user))
        .collect();
    txn.commit().await?;

    for (index, successor) in successors {
        let user = users.get(&successor.user_id).cloned();
        results[index] = Some(Rotated { successor, user });
    }
    Ok(results)
}

/// Gathers the refresh token rotations of concurrent requests into shared
/// transactions (see [`rotate_many`]).
#[derive(Debug)]
pub struct RotationBatcher {
    batcher: Batcher<Rotation, Option<Rotated>>,
}

impl RotationBatcher {
    /// Starts the batch task on `db`. Must be called inside a tokio runtime.
    pub fn start(db: DatabaseConnection) -> Self {
        let start = BatchStart::for_database(&db);
        let batcher = Batcher::spawn(MAX_ROTATIONS_PER_BATCH, start, move |jobs: Vec<Rotation>| {
            let db = db.clone();
            async move {
                match rotate_many(&db, &jobs).await {
                    Ok(results) => results,
                    Err(error) => {
                        tracing::warn!(
                            %error,
                            jobs = jobs.len(),
                            "a batch of refresh token rotations failed; each request retries alone"
                        );
                        vec![None; jobs.len()]
                    }
                }
            }
        });
        Self { batcher }
    }

    /// Does what [`use_refresh_token`] does, through a shared batch when
    /// rotation is on, and also returns the token's user when the batch
    /// read it. A token the batch did not rotate goes through
    /// [`use_refresh_token`] on its own, which handles retries, races and
    /// rejections exactly as without batching.
    pub async fn use_refresh_token<C>(
        &self,
        db: &C,
        presented: &str,
        request: RefreshRequest<'_>,
        now: i64,
    ) -> Result<(IssuedRefreshToken, Option<user::Model>), GrantError>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        if request.rotate {
            let (job, successor) = Rotation::prepare(presented, request, now)?;
            if let Some(Some(rotated)) = self.batcher.submit(job).await {
                let issued = IssuedRefreshToken {
                    token: successor,
                    row: rotated.successor,
                };
                return Ok((issued, rotated.user));
            }
        }
        let issued = use_refresh_token(db, presented, request, now).await?;
        Ok((issued, None))
    }
}

/// Returns the row of the token that replaces `claimed`: same family,
/// client, user, scope and sign-in time, created at `now`.
fn successor_row(
    claimed: refresh_token::Model,
    successor_hash: String,
    ttl_days: i32,
    now: i64,
) -> refresh_token::Model {
    refresh_token::Model {
        token_hash: successor_hash,
        family_id: claimed.family_id,
        application_id: claimed.application_id,
        user_id: claimed.user_id,
        scope: claimed.scope,
        auth_time: claimed.auth_time,
        code_hash: claimed.code_hash,
        created_at: now,
        expires_at: now + i64::from(ttl_days) * SECONDS_PER_DAY,
        rotated_at: None,
        replaced_by_hash: None,
        revoked_at: None,
    }
}

/// Reads the refresh token stored under `key` and rejects it as
/// [`ensure_refresh_usable`] does.
async fn find_usable(
    db: &impl ConnectionTrait,
    key: String,
    client_id: &str,
    now: i64,
) -> Result<refresh_token::Model, GrantError> {
    let row = find_by_hash(db, key)
        .await?
        .ok_or(GrantError::RefreshNotFound)?;
    ensure_refresh_usable(&row, client_id, now)?;
    Ok(row)
}

/// Rejects a refresh token of another client, a revoked one and an expired
/// one, in that order.
fn ensure_refresh_usable(
    row: &refresh_token::Model,
    client_id: &str,
    now: i64,
) -> Result<(), GrantError> {
    if row.application_id != client_id {
        return Err(GrantError::RefreshClientMismatch);
    }
    if row.revoked_at.is_some() {
        return Err(GrantError::RefreshRevoked);
    }
    if row.expires_at <= now {
        return Err(GrantError::RefreshExpired);
    }
    Ok(())
}

/// Handles a token that was already rotated. Inside the grace window, and
/// only while its successor has not been used, the same successor comes
/// back: the client may have lost the first response. Otherwise the token
/// is being replayed, so the family is revoked (RFC 9700 section 4.14.2).
async fn successor_within_grace(
    db: &impl ConnectionTrait,
    row: &refresh_token::Model,
    presented: &str,
    request: RefreshRequest<'_>,
    rotated_at: i64,
    now: i64,
) -> Result<IssuedRefreshToken, GrantError> {
    let successor = match &row.replaced_by_hash {
        Some(key) => recover_successor(request.derivation_key, presented, key)?,
        None => None,
    };
    let successor_row = match &successor {
        Some(successor) => find_refresh_token(db, successor).await?,
        None => None,
    };
    let successor_used = successor_row.as_ref().is_none_or(|successor| successor.rotated_at.is_some());
    if now - rotated_at > REFRESH_REUSE_GRACE_SECS || successor_used {
        revoke_family(db, &row.family_id, now).await?;
        tracing::warn!(
            target: "audit",
            client_id = %row.application_id,
            family_id = %row.family_id,
            "rotated refresh token reused; family revoked"
        );
        return Err(GrantError::RefreshReused);
    }
    let (Some(successor), Some(successor_row)) = (successor, successor_row) else {
        return Err(GrantError::RefreshReused);
    };
    if successor_row.revoked_at.is_some() {
        return Err(GrantError::RefreshRevoked);
    }
    Ok(IssuedRefreshToken {
        token: successor,
        row: successor_row,
    })
}

/// Separates the time stamp of a refresh token from its random part.
const STAMP_SEPARATOR: char = '.';

/// Length of the time stamp that starts a refresh token: milliseconds since
/// the Unix epoch as 12 lower-case hex digits, enough until the year 10889.
const STAMP_LEN: usize = 12;

/// Length of a stored refresh token key, stamped or not.
const KEY_LEN: usize = 64;

/// Returns the time stamp of a refresh token issued now.
fn new_stamp() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    format!("{millis:012x}")
}

/// Returns the stamp of a refresh token of the form `<stamp>.<random>`, or
/// `None` for a token without one.
fn stamp_of(token: &str) -> Option<&str> {
    let stamp = token.get(..STAMP_LEN)?;
    let stamped = token[STAMP_LEN..].starts_with(STAMP_SEPARATOR)
        && stamp.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
    stamped.then_some(stamp)
}

/// Returns the key under which a refresh token is stored, 64 characters.
///
/// A stamped token's key is its stamp followed by the first 52 hex digits
/// of the SHA-256 of the whole token, so keys increase with time. The index
/// that finds tokens then takes each new key at its end instead of at a
/// random place, and a batch of rotations writes few index pages. A token
/// without a stamp, as versions before stamps issued them, is stored under
/// the hex SHA-256 of its value.
pub fn refresh_token_key(token: &str) -> String {
    let hash = ids::sha256_hex(token);
    match stamp_of(token) {
        Some(stamp) => format!("{stamp}{}", &hash[..KEY_LEN - STAMP_LEN]),
        None => hash,
    }
}

/// Derives the successor of a refresh token: `stamp`, the separator, and
/// base64url of HMAC-SHA256(server secret, old token). The old token's row
/// keeps the successor's key, and so its stamp, for retries.
fn derive_successor(
    derivation_key: &str,
    presented: &str,
    stamp: &str,
) -> Result<String, GrantError> {
    let mac = successor_mac(derivation_key, presented)?;
    Ok(format!("{stamp}{STAMP_SEPARATOR}{mac}"))
}

fn successor_mac(derivation_key: &str, presented: &str) -> Result<String, GrantError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(derivation_key.as_bytes())
        .map_err(|_| GrantError::DerivationKeyUnusable)?;
    mac.update(b"latch refresh token successor\0");
    mac.update(presented.as_bytes());
    Ok(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// Rebuilds the successor that a rotation of `presented` stored under
/// `successor_key`, or returns `None` when no successor of `presented`
/// has that key. Versions before stamps derived the successor without
/// one, so a token they rotated gets its successor in that form.
fn recover_successor(
    derivation_key: &str,
    presented: &str,
    successor_key: &str,
) -> Result<Option<String>, GrantError> {
    let mac = successor_mac(derivation_key, presented)?;
    let stamped = successor_key
        .get(..STAMP_LEN)
        .map(|stamp| format!("{stamp}{STAMP_SEPARATOR}{mac}"));
    let found = stamped
        .into_iter()
        .chain(std::iter::once(mac))
        .find(|candidate| refresh_token_key(candidate) == successor_key);
    Ok(found)
}

/// Finds a refresh token by its value. The row's `revoked_at` is the time
/// its family was revoked, when the token itself carries none.
pub async fn find_refresh_token(
    db: &impl ConnectionTrait,
    token: &str,
) -> Result<Option<refresh_token::Model>, DbErr> {
    find_by_hash(db, refresh_token_key(token)).await
}

/// Finds a refresh token by the hash of its value, as
/// [`find_refresh_token`] does.
async fn find_by_hash(
    db: &impl ConnectionTrait,
    token_hash: String,
) -> Result<Option<refresh_token::Model>, DbErr> {
    let Some(mut row) = refresh_token::Entity::find_by_id(token_hash).one(db).await? else {
        return Ok(None);
    };
    if row.revoked_at.is_none() {
        let family = refresh_token_family::Entity::find_by_id(row.family_id.clone())
            .one(db)
            .await?;
        row.revoked_at = family.and_then(|family| family.revoked_at);
    }
    Ok(Some(row))
}

/// Returns the condition that a `refresh_tokens` row may be rotated at
/// `now`: not rotated, not revoked on its own or through its family, and
/// not expired. The database checks the family with a primary key read.
fn claimable(now: i64) -> sea_orm::Condition {
    use sea_orm::sea_query::ExprTrait;

    let family_revoked = Query::select()
        .expr(Expr::value(1))
        .from(refresh_token_family::Entity)
        .and_where(
            Expr::col((refresh_token_family::Entity, refresh_token_family::Column::FamilyId))
                .equals((refresh_token::Entity, refresh_token::Column::FamilyId)),
        )
        .and_where(
            Expr::col((refresh_token_family::Entity, refresh_token_family::Column::RevokedAt))
                .is_not_null(),
        )
        .to_owned();
    sea_orm::Condition::all()
        .add(refresh_token::Column::RotatedAt.is_null())
        .add(refresh_token::Column::RevokedAt.is_null())
        .add(Expr::exists(family_revoked).not())
        .add(refresh_token::Column::ExpiresAt.gt(now))
}

/// Revokes a family and with it every token of the family.
pub async fn revoke_family(
    db: &impl ConnectionTrait,
    family_id: &str,
    now: i64,
) -> Result<(), DbErr> {
    let revoked = revoke_families(db, refresh_token_family::Column::FamilyId.eq(family_id), now).await?;
    if revoked > 0 {
        return Ok(());
    }
    let known = refresh_token_family::Entity::find_by_id(family_id.to_owned())
        .one(db)
        .await?
        .is_some();
    if !known {
        // Tokens without a family row come only from a version before the
        // family table, for example during an upgrade. They are revoked one
        // by one, as that version did. Without the index this scans the table.
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RevokedAt, Expr::value(now))
            .filter(refresh_token::Column::FamilyId.eq(family_id))
            .filter(refresh_token::Column::RevokedAt.is_null())
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Sets `revoked_at` on the families that match `condition` and are not
/// revoked yet, and returns how many it changed.
async fn revoke_families(
    db: &impl ConnectionTrait,
    condition: sea_orm::sea_query::SimpleExpr,
    now: i64,
) -> Result<u64, DbErr> {
    let result = refresh_token_family::Entity::update_many()
        .col_expr(refresh_token_family::Column::RevokedAt, Expr::value(now))
        .filter(condition)
        .filter(refresh_token_family::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Prefix of the grant id of access tokens issued from a code without a
/// refresh token; the rest is the hash of the code.
const CODE_GRANT_PREFIX: &str = "code:";

/// Returns the grant id that access tokens from the code with `code_hash`
/// carry when the code produced no refresh token family.
pub fn code_grant_id(code_hash: &str) -> String {
    format!("{CODE_GRANT_PREFIX}{code_hash}")
}

/// Revokes everything a code produced: its refresh token families and,
/// through the code's `revoked_at`, access tokens that carry its grant id
/// (RFC 6749 section 4.1.2).
async fn revoke_grants_of_code(
    db: &impl ConnectionTrait,
    code_hash: &str,
    now: i64,
) -> Result<(), DbErr> {
    revoke_code(db, code_hash, now).await?;
    let revoked = revoke_families(db, refresh_token_family::Column::CodeHash.eq(code_hash), now).await?;
    tracing::warn!(
        target: "audit",
        revoked_families = revoked,
        "authorization code reused; tokens it produced are revoked"
    );
    Ok(())
}

/// Revokes the grant an access token carries (see [`is_grant_revoked`]).
pub async fn revoke_grant(db: &impl ConnectionTrait, grant_id: &str, now: i64) -> Result<(), DbErr> {
    match grant_id.strip_prefix(CODE_GRANT_PREFIX) {
        Some(code_hash) => revoke_code(db, code_hash, now).await,
        None => revoke_family(db, grant_id, now).await,
    }
}

/// Marks a code's grant revoked.
async fn revoke_code(db: &impl ConnectionTrait, code_hash: &str, now: i64) -> Result<(), DbErr> {
    authorization_code::Entity::update_many()
        .col_expr(authorization_code::Column::RevokedAt, Expr::value(now))
        .filter(authorization_code::Column::CodeHash.eq(code_hash))
        .filter(authorization_code::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Tells whether the grant an access token carries has been revoked. A
/// grant is either a refresh token family, or a code without a refresh
/// token ([`code_grant_id`]), revoked when the code was redeemed twice.
/// Unknown grants count as revoked, so an access token outlives its grant
/// only when it had none.
pub async fn is_grant_revoked(db: &impl ConnectionTrait, grant_id: &str) -> Result<bool, DbErr> {
    if let Some(code_hash) = grant_id.strip_prefix(CODE_GRANT_PREFIX) {
        let code = authorization_code::Entity::find_by_id(code_hash.to_owned())
            .one(db)
            .await?;
        return Ok(code.is_none_or(|code| code.revoked_at.is_some()));
    }
    let family = refresh_token_family::Entity::find_by_id(grant_id.to_owned())
        .one(db)
        .await?;
    Ok(family.is_none_or(|family| family.revoked_at.is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_row(challenge: Option<&str>) -> authorization_code::Model {
        authorization_code::Model {
            code_hash: "hash".into(),
            application_id: "client".into(),
            user_id: "user".into(),
            redirect_uri: "https://chat.openai.com/aip/p/oauth/callback".into(),
            scope: "openid".into(),
            nonce: None,
            code_challenge: challenge.map(str::to_owned),
            auth_time: 0,
            issue_refresh_token: false,
            created_at: 0,
            expires_at: 60,
            consumed_at: None,
            revoked_at: None,
        }
    }

    // Example verifier and challenge from RFC 7636 appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn pkce_accepts_rfc7636_example() {
        assert!(verify_pkce(&code_row(Some(CHALLENGE)), Some(VERIFIER), true).is_ok());
    }

    #[test]
    fn pkce_rejects_wrong_verifier() {
        let result = verify_pkce(
            &code_row(Some(CHALLENGE)),
            Some("x".repeat(43).as_str()),
            false,
        );
        assert!(matches!(result, Err(GrantError::VerifierMismatch)));
    }

    #[test]
    fn pkce_rejects_verifier_without_challenge() {
        let result = verify_pkce(&code_row(None), Some(VERIFIER), false);
        assert!(matches!(result, Err(GrantError::VerifierUnexpected)));
    }

    #[test]
    fn pkce_requires_verifier_for_stored_challenge() {
        let result = verify_pkce(&code_row(Some(CHALLENGE)), None, false);
        assert!(matches!(result, Err(GrantError::VerifierMissing)));
    }

    #[test]
    fn pkce_required_for_public_clients() {
        assert!(matches!(
            verify_pkce(&code_row(None), None, true),
            Err(GrantError::PkceRequired)
        ));
        assert!(verify_pkce(&code_row(None), None, false).is_ok());
    }

    #[test]
    fn successor_is_deterministic_per_key() {
        let stamp = new_stamp();
        let first = derive_successor("k", "t", &stamp).unwrap();
        assert_eq!(first, derive_successor("k", "t", &stamp).unwrap());
        assert_ne!(first, derive_successor("other", "t", &stamp).unwrap());
        assert!(first.starts_with(&format!("{stamp}.")));
    }

    #[test]
    fn stamped_keys_grow_with_time() {
        let earlier = refresh_token_key(&format!("0190000000ff.{}", ids::new_opaque_token()));
        let later = refresh_token_key(&format!("019000000100.{}", ids::new_opaque_token()));
        assert_eq!(earlier.len(), KEY_LEN);
        assert!(earlier.starts_with("0190000000ff"));
        assert!(earlier < later);
    }

    #[test]
    fn unstamped_tokens_keep_their_sha256_key() {
        let token = ids::new_opaque_token();
        assert_eq!(refresh_token_key(&token), ids::sha256_hex(&token));
        // Upper-case hex or a missing separator is no stamp.
        for token in ["0190000000FF.abc", "0190000000ffabc", "0190000000f", ""] {
            assert_eq!(refresh_token_key(token), ids::sha256_hex(token));
        }
    }

    #[test]
    fn new_stamps_are_twelve_hex_digits() {
        let stamp = new_stamp();
        assert_eq!(stamp.len(), STAMP_LEN);
        assert_eq!(stamp_of(&format!("{stamp}.x")), Some(stamp.as_str()));
    }

    #[test]
    fn successor_is_recovered_from_its_key() {
        let stamped = derive_successor("k", "t", "0190000000ff").unwrap();
        let key = refresh_token_key(&stamped);
        assert_eq!(recover_successor("k", "t", &key).unwrap(), Some(stamped));
        // A successor derived without a stamp, as earlier versions did.
        let plain = successor_mac("k", "t").unwrap();
        let key = refresh_token_key(&plain);
        assert_eq!(recover_successor("k", "t", &key).unwrap(), Some(plain));
        // Another token's successor key, or another server secret.
        assert_eq!(recover_successor("k", "u", &key).unwrap(), None);
        assert_eq!(recover_successor("other", "t", &key).unwrap(), None);
    }
}
