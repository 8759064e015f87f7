//! The refresh token grant (RFC 6749 section 6) with rotation and reuse
//! detection (RFC 9700 section 4.14.2).
//!
//! The response always carries `refresh_token`, even when rotation is off,
//! because ChatGPT replaces the token it stores with whatever comes back.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use super::TokenResponse;
use crate::oidc::client_auth::AuthenticatedClient;
use crate::oidc::errors::OAuthError;
use crate::oidc::params::Params;
use app::ssr::AppState;
use app::ssr::grants::{GrantError, RefreshRequest, find_refresh_token};
use app::ssr::tokens::{self, IdTokenRequest, TokenSubject, scope_contains};

/// Exchanges the refresh token in `params` for a new access token and the
/// refresh token the client must keep from now on.
pub async fn exchange(
    state: &AppState,
    client: &AuthenticatedClient,
    params: &Params,
    issuer: &str,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let db = &state.db;
    let application = &client.application;
    let presented = params.require("refresh_token", "refresh_token is missing.")?;
    let derivation_key = state.token_cache.refresh_derivation_key(db, now).await?;
    let request = RefreshRequest {
        client_id: &application.id,
        rotate: application.rotate_refresh_token,
        ttl_days: application.refresh_token_ttl_days,
        derivation_key,
    };
    // The scope check runs before rotation so that a rejected request
    // leaves the token as it was.
    if let Some(requested) = params.get("scope") {
        let stored = find_refresh_token(db, presented)
            .await
            .map_err(GrantError::from)?
            .ok_or(GrantError::RefreshNotFound)?;
        narrowed_scope(Some(requested), &stored.scope)?;
    }
    let (issued, user) = state
        .token_batches
        .rotations
        .use_refresh_token(db, presented, request, now)
        .await?;
    let scope = narrowed_scope(params.get("scope"), &issued.row.scope)?;

    // A rotated pair gets claims derived from the successor row, so a
    // retry within the grace window receives the same claims.
    let rotated = issued.token != presented;
    let (iat, jti) = if rotated {
        (
            issued.row.created_at,
            tokens::jti_for_refresh(&issued.row.token_hash),
        )
    } else {
        (now, tokens::new_jti())
    };
    let subject = TokenSubject {
        application,
        user_id: &issued.row.user_id,
        scope: &scope,
        grant_id: Some(&issued.row.family_id),
    };
    let key = tokens::signing_key_for(db, &state.master_key, &state.token_cache, application, now)
        .await
        .map_err(tokens::MintError::from)?;
    let (access_token, claims) = tokens::mint_access_token(&key, issuer, subject, iat, jti)?;
    // OpenID Connect Core section 12.2: a refreshed ID token has no nonce.
    let id_token = if scope_contains(&scope, "openid") {
        let request = IdTokenRequest {
            subject,
            auth_time: issued.row.auth_time,
            nonce: None,
        };
        let token = match &user {
            Some(user) => tokens::mint_id_token_for_user(&key, issuer, user, request, now)?,
            None => tokens::mint_id_token(db, &key, issuer, request, now).await?,
        };
        Some(token)
    } else {
        None
    };

    tracing::info!(
        target: "audit",
        client_id = %application.id,
        user_id = %issued.row.user_id,
        family_id = %issued.row.family_id,
        rotated,
        "refresh token used"
    );
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: claims.exp - now,
        scope,
        refresh_token: Some(issued.token),
        id_token,
    })
}

/// RFC 6749 section 6: a refresh request may ask for a subset of the
/// granted scope, never more.
fn narrowed_scope(requested: Option<&str>, granted: &str) -> Result<String, OAuthError> {
    let Some(requested) = requested else {
        return Ok(granted.to_owned());
    };
    let within_grant = requested
        .split_ascii_whitespace()
        .all(|item| scope_contains(granted, item));
    if within_grant {
        Ok(requested
            .split_ascii_whitespace()
            .collect::<Vec<_>>()
            .join(" "))
    } else {
        Err(GrantError::ScopeExceedsGrant.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_narrowing() {
        assert_eq!(
            narrowed_scope(None, "openid profile").unwrap(),
            "openid profile"
        );
        assert_eq!(
            narrowed_scope(Some("openid"), "openid profile").unwrap(),
            "openid"
        );
        assert!(matches!(
            narrowed_scope(Some("openid email"), "openid profile"),
            Err(OAuthError::InvalidScope)
        ));
    }
}
