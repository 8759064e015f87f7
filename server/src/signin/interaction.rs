//! Validated authorization requests waiting for the user, stored in the
//! `interactions` table so that any Latch instance sharing the database can
//! continue them, and their completion into an authorization code.

use app::error::AppError;
use app::ssr::codes::{self, CodeGrant};
use app::ssr::entities::{application, interaction};
use app::ssr::ids;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, Set, TransactionSession, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Lifetime of an interaction, in seconds: long enough to fill in the
/// registration form, short enough that stale rows do not pile up.
pub const INTERACTION_TTL_SECS: i64 = 15 * 60;

/// The `offline_access` scope, which requests a refresh token.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Logs a database error and hides it from the caller.
pub(crate) fn internal(error: DbErr) -> AppError {
    tracing::error!(%error, "database request failed");
    AppError::Internal
}

/// An authorization request that passed every check of the endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// App ID of the client.
    pub client_id: String,
    /// The request's `redirect_uri`, byte for byte.
    pub redirect_uri: String,
    /// The request's `state`, returned unchanged, or `None` when absent or empty.
    pub state: Option<String>,
    /// Supported scopes requested, after defaulting, in request order.
    pub scopes: Vec<String>,
    /// The request's `nonce`.
    pub nonce: Option<String>,
    /// The S256 `code_challenge`.
    pub code_challenge: Option<String>,
    /// Maximum authentication age in seconds (`max_age`).
    pub max_age: Option<i64>,
    /// Whether the user must enter a password even with a live session
    /// (`prompt=login`, or `max_age=0`).
    pub force_login: bool,
    /// Whether the consent screen must be shown before the code is issued.
    pub consent_required: bool,
}

/// The user who signed in during an interaction that still waits for consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authenticated {
    /// Internal user id.
    pub user_id: String,
    /// When the user entered the password.
    pub auth_time: i64,
}

/// The JSON stored in `interactions.request`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredInteraction {
    /// The validated request.
    pub request: AuthorizationRequest,
    /// CSRF token that every form of this interaction must send back.
    pub csrf_token: String,
    /// SHA-256 of the browser cookie of the browser that started the request.
    pub browser_hash: String,
    /// Set once the user signed in, while the consent screen is pending.
    pub authenticated: Option<Authenticated>,
}

impl StoredInteraction {
    /// Checks that a form post comes from the browser that started the
    /// interaction and carries its CSRF token. Both comparisons run in
    /// constant time.
    pub fn accepts(&self, browser_cookie: Option<&str>, csrf_token: Option<&str>) -> bool {
        let (Some(cookie), Some(token)) = (browser_cookie, csrf_token) else {
            return false;
        };
        let browser_matches = ids::sha256_hex(cookie)
            .as_bytes()
            .ct_eq(self.browser_hash.as_bytes());
        let token_matches = token.as_bytes().ct_eq(self.csrf_token.as_bytes());
        bool::from(browser_matches & token_matches)
    }
}

/// Stores a new interaction and returns its id. Expired interactions are
/// deleted on the way, so the table stays small without a background job.
pub async fn create(
    db: &impl ConnectionTrait,
    stored: &StoredInteraction,
    now: i64,
) -> Result<String, AppError> {
    interaction::Entity::delete_many()
        .filter(interaction::Column::ExpiresAt.lte(now))
        .exec(db)
        .await
        .map_err(internal)?;

    let id = ids::new_opaque_token();
    let request = serde_json::to_string(stored).map_err(|error| {
        tracing::error!(%error, "cannot encode an interaction");
        AppError::Internal
    })?;
    interaction::ActiveModel {
        id: Set(id.clone()),
        application_id: Set(stored.request.client_id.clone()),
        request: Set(request),
        created_at: Set(now),
        expires_at: Set(now + INTERACTION_TTL_SECS),
    }
    .insert(db)
    .await
    .map_err(internal)?;
    Ok(id)
}

/// Loads the interaction `id` when it exists and has not expired at `now`.
pub async fn load(
    db: &impl ConnectionTrait,
    id: &str,
    now: i64,
) -> Result<Option<StoredInteraction>, AppError> {
    let row = interaction::Entity::find_by_id(id.to_owned())
        .filter(interaction::Column::ExpiresAt.gt(now))
        .one(db)
        .await
        .map_err(internal)?;
    let Some(row) = row else {
        return Ok(None);
    };
    match serde_json::from_str(&row.request) {
        Ok(stored) => Ok(Some(stored)),
        Err(error) => {
            tracing::error!(%error, "a stored interaction does not decode");
            Err(AppError::Internal)
        }
    }
}

/// Records that the user signed in and the consent screen comes next.
pub async fn mark_authenticated(
    db: &impl ConnectionTrait,
    id: &str,
    stored: &StoredInteraction,
) -> Result<(), AppError> {
    let row = interaction::Entity::find_by_id(id.to_owned())
        .one(db)
        .await
        .map_err(internal)?
        .ok_or(AppError::Internal)?;
    let request = serde_json::to_string(stored).map_err(|_| AppError::Internal)?;
    let mut row = row.into_active_model();
    row.request = Set(request);
    row.update(db).await.map_err(internal)?;
    Ok(())
}

/// Deletes the interaction `id`. Returns whether it still existed.
pub async fn delete(db: &impl ConnectionTrait, id: &str) -> Result<bool, AppError> {
    let result = interaction::Entity::delete_by_id(id.to_owned())
        .exec(db)
        .await
        .map_err(internal)?;
    Ok(result.rows_affected > 0)
}

/// Returns the scopes that the code grants: the requested ones, without
/// `offline_access` unless the user approved it on the consent screen
/// (OpenID Connect Core 1.0 section 11).
pub fn granted_scopes(request: &AuthorizationRequest, consent_given: bool) -> Vec<String> {
    request
        .scopes
        .iter()
        .filter(|scope| consent_given || scope.as_str() != OFFLINE_ACCESS)
        .cloned()
        .collect()
}

/// Outcome of [`complete`].
#[derive(Debug)]
pub enum Completion {
    /// The code was issued, and the browser goes back with it.
    Issued {
        /// The authorization code, sent only in the redirect.
        code: String,
    },
    /// Another request completed or cancelled the interaction first.
    AlreadyCompleted,
}

/// Issues the authorization code for `user_id` and, in the same
/// transaction, deletes the interaction `interaction_id` when there is one.
/// Deleting first means two concurrent posts of one form yield one code.
pub async fn complete<C>(
    db: &C,
    interaction_id: Option<&str>,
    application: &application::Model,
    request: &AuthorizationRequest,
    signed_in: &Authenticated,
    consent_given: bool,
    now: i64,
) -> Result<Completion, AppError>
where
    C: ConnectionTrait + TransactionTrait,
{
    let scopes = granted_scopes(request, consent_given);
    let offline_granted = scopes.iter().any(|scope| scope == OFFLINE_ACCESS);
    let issue_refresh_token = application.always_issue_refresh_token || offline_granted;
    let grant = CodeGrant {
        application_id: application.id.clone(),
        user_id: signed_in.user_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        scope: scopes.join(" "),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        auth_time: signed_in.auth_time,
        issue_refresh_token,
    };

    let txn = db.begin().await.map_err(internal)?;
    if let Some(id) = interaction_id
        && !delete(&txn, id).await?
    {
        return Ok(Completion::AlreadyCompleted);
    }
    let code = codes::issue_code(&txn, grant, now).await?;
    txn.commit().await.map_err(internal)?;

    let reason = if offline_granted {
        "offline_access approved on the consent screen"
    } else if application.always_issue_refresh_token {
        "the application always receives a refresh token"
    } else {
        "offline_access was not approved on a consent screen"
    };
    tracing::info!(
        target: "audit",
        application_id = %application.id,
        user_id = %signed_in.user_id,
        issue_refresh_token,
        reason,
        "authorization code issued"
    );
    Ok(Completion::Issued { code })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(scopes: &[&str]) -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "c".into(),
            redirect_uri: "https://rp.example/cb".into(),
            state: None,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            nonce: None,
            code_challenge: None,
            max_age: None,
            force_login: false,
            consent_required: false,
        }
    }

    #[test]
    fn offline_access_needs_consent() {
        let req = request(&["openid", "offline_access"]);
        assert_eq!(granted_scopes(&req, false), vec!["openid"]);
        assert_eq!(granted_scopes(&req, true), vec!["openid", "offline_access"]);
    }

    #[test]
    fn form_check_needs_cookie_and_token() {
        let stored = StoredInteraction {
            request: request(&[]),
            csrf_token: "token".into(),
            browser_hash: ids::sha256_hex("browser"),
            authenticated: None,
        };
        assert!(stored.accepts(Some("browser"), Some("token")));
        assert!(!stored.accepts(Some("browser"), Some("other")));
        assert!(!stored.accepts(Some("other"), Some("token")));
        assert!(!stored.accepts(None, Some("token")));
        assert!(!stored.accepts(Some("browser"), None));
    }
}
