//! The authorization code grant (RFC 6749 section 4.1.3, PKCE per RFC
//! 7636 section 4.6).

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use super::TokenResponse;
use crate::oidc::client_auth::AuthenticatedClient;
use crate::oidc::errors::OAuthError;
use crate::oidc::params::Params;
use app::ssr::AppState;
use app::ssr::grants::{self, CodeRedemption, redeem_code};
use app::ssr::tokens::{self, IdTokenRequest, TokenSubject, scope_contains};

/// Redeems the code in `params` and issues an access token, an ID token
/// when `openid` was granted, and a refresh token when the code allows one.
pub async fn exchange(
    state: &AppState,
    client: &AuthenticatedClient,
    params: &Params,
    issuer: &str,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let db = &state.db;
    let application = &client.application;
    let code = params.require("code", "code is missing.")?;
    let redemption = CodeRedemption {
        client_id: &application.id,
        redirect_uri: params.get("redirect_uri"),
        code_verifier: params.get("code_verifier"),
        public_client: client.public,
        refresh_ttl_days: application.refresh_token_ttl_days,
    };
    let redeemed = redeem_code(db, code, redemption, now).await?;

    let grant = &redeemed.code;
    // Access tokens always carry a grant id, so a second redemption of the
    // code revokes them too: the refresh token family when there is one,
    // otherwise an id derived from the code.
    let grant_id = match &redeemed.refresh {
        Some(refresh) => refresh.row.family_id.clone(),
        None => grants::code_grant_id(&grant.code_hash),
    };
    let subject = TokenSubject {
        application,
        user_id: &grant.user_id,
        scope: &grant.scope,
        grant_id: Some(&grant_id),
    };
    let key = tokens::signing_key_for(db, &state.master_key, &state.token_cache, application, now)
        .await
        .map_err(tokens::MintError::from)?;
    let (access_token, claims) = tokens::mint_access_token(&key, issuer, subject, now, tokens::new_jti())?;
    let id_token = if scope_contains(&grant.scope, "openid") {
        let request = IdTokenRequest {
            subject,
            auth_time: grant.auth_time,
            nonce: grant.nonce.as_deref(),
        };
        Some(tokens::mint_id_token(db, &key, issuer, request, now).await?)
    } else {
        None
    };

    tracing::info!(
        target: "audit",
        client_id = %application.id,
        user_id = %grant.user_id,
        refresh_token_issued = redeemed.refresh.is_some(),
        "authorization code redeemed"
    );
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: claims.exp - now,
        scope: grant.scope.clone(),
        refresh_token: redeemed.refresh.map(|refresh| refresh.token),
        id_token,
    })
}
