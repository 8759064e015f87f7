//! Issuing authorization codes. Redemption lives with the token endpoint.

use super::applications::internal;
use super::entities::authorization_code;
use super::ids;
use crate::error::AppError;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};

/// Lifetime of an authorization code, in seconds. RFC 6749 section 4.1.2
/// recommends at most ten minutes; ChatGPT redeems codes within seconds.
pub const CODE_TTL_SECS: i64 = 60;

/// Grant carried by a code, fixed when the user finishes signing in.
#[derive(Debug, Clone)]
pub struct CodeGrant {
    /// App ID the code was issued to.
    pub application_id: String,
    /// Internal id of the signed-in user.
    pub user_id: String,
    /// The redirect URI of the authorization request, byte for byte.
    pub redirect_uri: String,
    /// Granted scope, space-separated.
    pub scope: String,
    /// `nonce` of the request, copied into the ID token.
    pub nonce: Option<String>,
    /// S256 `code_challenge` of the request.
    pub code_challenge: Option<String>,
    /// When the user last entered a password.
    pub auth_time: i64,
    /// Whether the exchange returns a refresh token.
    pub issue_refresh_token: bool,
}

/// Stores the hash of a new code and returns the code itself.
pub async fn issue_code(db: &impl ConnectionTrait, grant: CodeGrant, now: i64) -> Result<String, AppError> {
    let code = ids::new_opaque_token();
    authorization_code::ActiveModel {
        code_hash: Set(ids::sha256_hex(&code)),
        application_id: Set(grant.application_id),
        user_id: Set(grant.user_id),
        redirect_uri: Set(grant.redirect_uri),
        scope: Set(grant.scope),
        nonce: Set(grant.nonce),
        code_challenge: Set(grant.code_challenge),
        auth_time: Set(grant.auth_time),
        issue_refresh_token: Set(grant.issue_refresh_token),
        created_at: Set(now),
        expires_at: Set(now + CODE_TTL_SECS),
        consumed_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await
    .map_err(internal)?;
    Ok(code)
}
