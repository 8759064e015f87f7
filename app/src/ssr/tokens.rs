//! Minting and verifying JWT access tokens (RFC 9068) and ID tokens
//! (OpenID Connect Core section 2).
//!
//! Access tokens are audience-restricted so that a plugin API can verify
//! them offline against the JWKS. When an application has no audience
//! configured, `aud` is its client id: the token is then meant for an API
//! that the developer configured with the App ID as its audience.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod cache;

use super::crypto::MasterKey;
use super::entities::{application, user};
use super::grants;
use super::ids;
use super::keys::{self, KeyError, LoadedKey, SigningAlg};
use jsonwebtoken::{Header, Validation};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait};
use serde::{Deserialize, Serialize};

/// JOSE `typ` of access tokens (RFC 9068 section 2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Claims of a Latch access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Internal id of the user.
    pub sub: String,
    /// The application's audience, or its client id when none is set.
    pub aud: String,
    /// App ID the token was issued to.
    pub client_id: String,
    /// Granted scope, space-separated.
    pub scope: String,
    /// Issue time, seconds since the Unix epoch.
    pub iat: i64,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// Grant the token belongs to: its refresh token family, or for a code
    /// that produced no refresh token, an id derived from the code. Revoking
    /// the grant ends the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
}

/// Failure to sign or look up what a token needs.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// The signing key is missing or unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// jsonwebtoken failed to sign.
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    /// The database request failed.
    #[error("database request failed: {0}")]
    Database(#[from] DbErr),
    /// The user of the grant no longer exists.
    #[error("the user of the grant no longer exists")]
    UserMissing,
}

/// The user, client and scope that a token is about.
#[derive(Debug, Clone, Copy)]
pub struct TokenSubject<'a> {
    /// The application the token is issued to.
    pub application: &'a application::Model,
    /// Internal id of the user.
    pub user_id: &'a str,
    /// Granted scope, space-separated.
    pub scope: &'a str,
    /// Grant id (see [`AccessTokenClaims::grant_id`]).
    pub grant_id: Option<&'a str>,
}

/// Tells whether a space-separated scope string contains `name`.
pub fn scope_contains(scope: &str, name: &str) -> bool {
    scope.split_ascii_whitespace().any(|item| item == name)
}

/// Returns the `aud` of the application's access tokens.
pub fn audience_of(application: &application::Model) -> String {
    match application.audience.as_deref().map(str::trim) {
        Some(audience) if !audience.is_empty() => audience.to_owned(),
        _ => application.id.clone(),
    }
}

/// Signs an access token issued at `iat` with the given `jti` and `key`,
/// the application's current signing key.
///
/// The caller chooses `iat` and `jti` so that a retried refresh within the
/// grace window can reproduce the same claims.
pub fn mint_access_token(
    key: &LoadedKey,
    issuer: &str,
    subject: TokenSubject<'_>,
    iat: i64,
    jti: String,
) -> Result<(String, AccessTokenClaims), MintError> {
    let application = subject.application;
    let claims = AccessTokenClaims {
        iss: issuer.to_owned(),
        sub: subject.user_id.to_owned(),
        aud: audience_of(application),
        client_id: application.id.clone(),
        scope: subject.scope.to_owned(),
        iat,
        exp: iat + i64::from(application.access_token_ttl_secs),
        jti,
        grant_id: subject.grant_id.map(str::to_owned),
    };
    let token = sign(key, ACCESS_TOKEN_TYP, &claims)?;
    Ok((token, claims))
}

/// Returns a fresh random `jti`.
pub fn new_jti() -> String {
    ids::new_opaque_token()
}

/// Returns the `jti` of the access token that accompanies a refresh token,
/// derived from the refresh token's stored hash so that it repeats when
/// the same refresh response is sent again.
pub fn jti_for_refresh(refresh_token_hash: &str) -> String {
    let digest = ids::sha256_hex(&format!("access token for {refresh_token_hash}"));
    digest[..32].to_owned()
}

/// Inputs of an ID token that do not come from the user row.
#[derive(Debug, Clone, Copy)]
pub struct IdTokenRequest<'a> {
    /// Subject and audience of the token.
    pub subject: TokenSubject<'a>,
    /// When the user last entered a password.
    pub auth_time: i64,
    /// `nonce` of the authorization request.
    pub nonce: Option<&'a str>,
}

/// Signs an ID token with `key` and the standard claims the granted scope
/// allows (OpenID Connect Core section 5.4).
pub async fn mint_id_token(
    db: &impl ConnectionTrait,
    key: &LoadedKey,
    issuer: &str,
    request: IdTokenRequest<'_>,
    now: i64,
) -> Result<String, MintError> {
    let user = user::Entity::find_by_id(request.subject.user_id.to_owned())
        .one(db)
        .await?
        .ok_or(MintError::UserMissing)?;
    mint_id_token_for_user(key, issuer, &user, request, now)
}

/// Signs an ID token as [`mint_id_token`] does, for a user row the caller
/// has already read.
pub fn mint_id_token_for_user(
    key: &LoadedKey,
    issuer: &str,
    user: &user::Model,
    request: IdTokenRequest<'_>,
    now: i64,
) -> Result<String, MintError> {
    let application = request.subject.application;
    let mut claims = serde_json::Map::new();
    claims.insert("iss".into(), issuer.into());
    claims.insert("sub".into(), user.id.clone().into());
    claims.insert("aud".into(), application.id.clone().into());
    claims.insert("iat".into(), now.into());
    claims.insert(
        "exp".into(),
        (now + i64::from(application.id_token_ttl_secs)).into(),
    );
    claims.insert("auth_time".into(), request.auth_time.into());
    if let Some(nonce) = request.nonce {
        claims.insert("nonce".into(), nonce.into());
    }
    claims.extend(user_claims(user, request.subject.scope));
    Ok(sign(key, "JWT", &claims)?)
}

/// Returns the profile and email claims of `user` that `scope` grants,
/// without `sub`.
pub fn user_claims(user: &user::Model, scope: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut claims = serde_json::Map::new();
    if scope_contains(scope, "profile") {
        claims.insert("preferred_username".into(), user.username.clone().into());
        if let Some(name) = &user.name {
            claims.insert("name".into(), name.clone().into());
        }
        claims.insert("updated_at".into(), user.updated_at.into());
    }
    if scope_contains(scope, "email")
        && let Some(email) = &user.email
    {
        claims.insert("email".into(), email.clone().into());
        // Latch never confirms that the user owns the address.
        claims.insert("email_verified".into(), false.into());
    }
    claims
}

/// Returns the key that signs the tokens of `application` at `now`. One
/// token response signs all its tokens with this one key.
pub async fn signing_key_for(
    db: &impl ConnectionTrait,
    master_key: &MasterKey,
    cache: &cache::TokenCache,
    application: &application::Model,
    now: i64,
) -> Result<std::sync::Arc<LoadedKey>, KeyError> {
    let alg = SigningAlg::for_application(&application.signing_alg);
    cache.signing_key(db, master_key, alg, now).await
}

fn sign(
    key: &LoadedKey,
    typ: &str,
    claims: &impl Serialize,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = Header::new(key.alg.jwt_algorithm());
    header.typ = Some(typ.to_owned());
    header.kid = Some(key.kid.clone());
    key.sign_jwt(&header, claims)
}

/// Reason an access token was rejected. It is only logged, and the caller
/// gets `invalid_token`.
#[derive(Debug, thiserror::Error)]
pub enum AccessTokenError {
    /// The value is not a JWT or its header is unreadable.
    #[error("the token is not a readable JWT")]
    Malformed,
    /// The header's `typ` is not `at+jwt`, for example an ID token.
    #[error("the token is not an access token")]
    NotAccessToken,
    /// The `kid` is unknown or retired.
    #[error("the signing key is unknown or retired")]
    UnknownKey,
    /// The signature, algorithm or claims do not verify.
    #[error("the token does not verify: {0}")]
    Invalid(jsonwebtoken::errors::Error),
    /// The token was issued by another issuer.
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// The token's refresh token family was revoked.
    #[error("the token's grant was revoked")]
    GrantRevoked,
    /// The application the token was issued to has been deleted.
    #[error("the token's application no longer exists")]
    ClientDeleted,
    /// The key store or database failed.
    #[error("the server could not check the token: {0}")]
    Server(String),
}

/// Verifies an access token issued by `issuer`: header type, signature
/// with the key named by `kid`, issuer, expiry against `now` with no
/// leeway, that its application still exists and that its grant has not
/// been revoked. The audience is not checked, because Latch's own
/// endpoints accept tokens for any audience.
pub async fn verify_access_token(
    db: &impl ConnectionTrait,
    master_key: &MasterKey,
    issuer: &str,
    token: &str,
    now: i64,
) -> Result<AccessTokenClaims, AccessTokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| AccessTokenError::Malformed)?;
    if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
        return Err(AccessTokenError::NotAccessToken);
    }
    let kid = header.kid.ok_or(AccessTokenError::UnknownKey)?;
    let key = keys::verification_key(db, master_key, &kid)
        .await
        .map_err(|error| AccessTokenError::Server(error.to_string()))?
        .ok_or(AccessTokenError::UnknownKey)?;

    let mut validation = Validation::new(key.alg.jwt_algorithm());
    // Expiry is compared with the injected `now` below.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<AccessTokenClaims>(token, &key.decoding, &validation)
        .map_err(AccessTokenError::Invalid)?
        .claims;

    if claims.iss != issuer {
        return Err(AccessTokenError::WrongIssuer);
    }
    if claims.exp <= now {
        return Err(AccessTokenError::Expired);
    }
    let client = application::Entity::find_by_id(claims.client_id.clone())
        .one(db)
        .await
        .map_err(|error| AccessTokenError::Server(error.to_string()))?;
    if client.is_none() {
        return Err(AccessTokenError::ClientDeleted);
    }
    if let Some(grant_id) = &claims.grant_id {
        let revoked = grants::is_grant_revoked(db, grant_id)
            .await
            .map_err(|error| AccessTokenError::Server(error.to_string()))?;
        if revoked {
            return Err(AccessTokenError::GrantRevoked);
        }
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_contains_matches_whole_items() {
        assert!(scope_contains("openid profile", "profile"));
        assert!(!scope_contains("openid profiles", "profile"));
        assert!(!scope_contains("", "openid"));
    }

    #[test]
    fn jti_for_refresh_repeats() {
        assert_eq!(jti_for_refresh("abc"), jti_for_refresh("abc"));
        assert_ne!(jti_for_refresh("abc"), jti_for_refresh("abd"));
    }
}
