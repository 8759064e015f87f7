//! Creating, reading, changing and deleting applications and their secrets.
//!
//! Client secrets and OpenAI verification tokens are stored sealed with the
//! master key. The functions here seal them on write and open them on read.

use super::crypto::{self, MasterKey};
use super::entities::{application, application_secret, authorization_code, interaction, refresh_token, refresh_token_family};
use super::ids;
use crate::error::AppError;
use crate::model::{ApplicationDetails, ApplicationKind, ApplicationSummary, SecretView, TokenContentType};
use crate::validation;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, Set, TransactionSession, TransactionTrait,
};

/// Scope written into new applications and granted when a request sends none.
pub const DEFAULT_SCOPE: &str = "openid profile offline_access";
/// Refresh token lifetime of new applications, in days.
pub const DEFAULT_REFRESH_TOKEN_TTL_DAYS: i32 = 14;
/// Access and ID token lifetime of new applications, in seconds.
pub const DEFAULT_TOKEN_TTL_SECS: i32 = 3600;

/// Input for [`create_application`].
#[derive(Debug, Clone)]
pub struct NewApplication {
    /// Display name.
    pub name: String,
    /// Client kind.
    pub kind: ApplicationKind,
    /// Redirect URIs; may be empty.
    pub redirect_uris: Vec<String>,
    /// Whether the authorization code grant always returns a refresh token.
    pub always_issue_refresh_token: bool,
}

/// Logs a database error and hides it from the caller.
pub(crate) fn internal(error: DbErr) -> AppError {
    tracing::error!(%error, "database request failed");
    AppError::Internal
}

fn parse_uris(stored: &str) -> Vec<String> {
    serde_json::from_str(stored).unwrap_or_default()
}

fn encode_uris(uris: &[String]) -> String {
    serde_json::to_string(uris).unwrap_or_else(|_| "[]".into())
}

fn kind_of(model: &application::Model) -> ApplicationKind {
    ApplicationKind::parse(&model.kind).unwrap_or(ApplicationKind::ChatgptPlugin)
}

/// Lists every application, newest first.
pub async fn list_applications(db: &impl ConnectionTrait) -> Result<Vec<ApplicationSummary>, AppError> {
    let rows = application::Entity::find()
        .order_by_desc(application::Column::CreatedAt)
        .order_by_asc(application::Column::Id)
        .all(db)
        .await
        .map_err(internal)?;
    Ok(rows
        .into_iter()
        .map(|row| ApplicationSummary {
            kind: kind_of(&row),
            redirect_uri_count: parse_uris(&row.redirect_uris).len(),
            id: row.id,
            name: row.name,
            created_at: row.created_at,
        })
        .collect())
}

/// Creates an application with one client secret and returns it.
pub async fn create_application<C>(
    db: &C,
    key: &MasterKey,
    input: NewApplication,
    now: i64,
) -> Result<ApplicationDetails, AppError>
where
    C: ConnectionTrait + TransactionTrait,
{
    let name = validation::check_name(&input.name)?;
    let redirect_uris = validation::check_redirect_uris(&input.redirect_uris, input.kind)?;
    let id = ids::new_app_id();

    let txn = db.begin().await.map_err(internal)?;
    application::ActiveModel {
        id: Set(id.clone()),
        name: Set(name),
        kind: Set(input.kind.as_str().to_owned()),
        redirect_uris: Set(encode_uris(&redirect_uris)),
        post_logout_redirect_uris: Set("[]".into()),
        always_issue_refresh_token: Set(input.always_issue_refresh_token),
        rotate_refresh_token: Set(true),
        refresh_token_ttl_days: Set(DEFAULT_REFRESH_TOKEN_TTL_DAYS),
        access_token_ttl_secs: Set(DEFAULT_TOKEN_TTL_SECS),
        id_token_ttl_secs: Set(DEFAULT_TOKEN_TTL_SECS),
        default_scope: Set(DEFAULT_SCOPE.into()),
        audience: Set(None),
        signing_alg: Set("ES256".into()),
        openai_verification_token: Set(None),
        token_content_type: Set(TokenContentType::Json.media_type().into()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(internal)?;
    if input.kind.is_confidential() {
        insert_secret(&txn, key, &id, "Default", None, now).await?;
    }
    txn.commit().await.map_err(internal)?;

    tracing::info!(target: "audit", application_id = %id, "application created");
    get_application(db, key, &id).await
}

/// Stores a new random secret for an application, sealed under
/// `application_secret:<secret id>`.
async fn insert_secret(
    db: &impl ConnectionTrait,
    key: &MasterKey,
    application_id: &str,
    name: &str,
    expires_at: Option<i64>,
    now: i64,
) -> Result<(), AppError> {
    let id = ids::new_row_id();
    let value = key.seal(&crypto::application_secret_context(&id), &ids::new_app_secret());
    application_secret::ActiveModel {
        id: Set(id.clone()),
        application_id: Set(application_id.to_owned()),
        name: Set(name.to_owned()),
        value: Set(value),
        expires_at: Set(expires_at),
        created_at: Set(now),
    }
    .insert(db)
    .await
    .map_err(internal)?;
    Ok(())
}

/// Opens a stored client secret.
pub fn open_secret(key: &MasterKey, secret: &application_secret::Model) -> Result<String, crypto::CryptoError> {
    key.open(&crypto::application_secret_context(&secret.id), &secret.value)
}

/// Opens the stored verification token of an application, if it has one.
pub fn open_verification_token(
    key: &MasterKey,
    model: &application::Model,
) -> Result<Option<String>, crypto::CryptoError> {
    model
        .openai_verification_token
        .as_deref()
        .map(|sealed| key.open(&crypto::verification_token_context(&model.id), sealed))
        .transpose()
}

/// Logs a stored value that does not open and hides it from the caller.
fn unreadable(column: &'static str, row_id: &str, error: crypto::CryptoError) -> AppError {
    tracing::error!(%error, column, row_id, "a stored secret cannot be decrypted");
    AppError::Internal
}

async fn find_model(db: &impl ConnectionTrait, id: &str) -> Result<application::Model, AppError> {
    application::Entity::find_by_id(id.to_owned())
        .one(db)
        .await
        .map_err(internal)?
        .ok_or_else(|| AppError::ApplicationNotFound(id.to_owned()))
}

/// Returns one application with its secrets and verification token in
/// clear, for display.
pub async fn get_application(
    db: &impl ConnectionTrait,
    key: &MasterKey,
    id: &str,
) -> Result<ApplicationDetails, AppError> {
    let model = find_model(db, id).await?;
    let secrets = application_secret::Entity::find()
        .filter(application_secret::Column::ApplicationId.eq(id))
        .order_by_desc(application_secret::Column::CreatedAt)
        .all(db)
        .await
        .map_err(internal)?;
    let secrets = secrets
        .into_iter()
        .map(|secret| {
            let value = open_secret(key, &secret)
                .map_err(|error| unreadable("application_secrets.value", &secret.id, error))?;
            Ok(SecretView {
                id: secret.id,
                name: secret.name,
                value,
                expires_at: secret.expires_at,
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    let verification_token = open_verification_token(key, &model)
        .map_err(|error| unreadable("applications.openai_verification_token", &model.id, error))?;
    Ok(ApplicationDetails {
        kind: kind_of(&model),
        redirect_uris: parse_uris(&model.redirect_uris),
        secrets,
        token_content_type: TokenContentType::parse(&model.token_content_type).unwrap_or_default(),
        id: model.id,
        name: model.name,
        always_issue_refresh_token: model.always_issue_refresh_token,
        openai_verification_token: verification_token,
        default_scope: model.default_scope,
        audience: model.audience,
    })
}

/// Deletes an application and, through the foreign key, its secrets, in
/// one transaction with everything issued to it.
pub async fn delete_application<C>(db: &C, id: &str) -> Result<(), AppError>
where
    C: ConnectionTrait + TransactionTrait,
{
    let txn = db.begin().await.map_err(internal)?;
    // These tables have no foreign key to the application. The families
    // go first: without its family row, an access token's grant counts as
    // revoked.
    refresh_token_family::Entity::delete_many()
        .filter(refresh_token_family::Column::ApplicationId.eq(id))
        .exec(&txn)
        .await
        .map_err(internal)?;
    refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::ApplicationId.eq(id))
        .exec(&txn)
        .await
        .map_err(internal)?;
    authorization_code::Entity::delete_many()
        .filter(authorization_code::Column::ApplicationId.eq(id))
        .exec(&txn)
        .await
        .map_err(internal)?;
    interaction::Entity::delete_many()
        .filter(interaction::Column::ApplicationId.eq(id))
        .exec(&txn)
        .await
        .map_err(internal)?;
    let result = application::Entity::delete_by_id(id.to_owned())
        .exec(&txn)
        .await
        .map_err(internal)?;
    if result.rows_affected == 0 {
        txn.rollback().await.map_err(internal)?;
        return Err(AppError::ApplicationNotFound(id.to_owned()));
    }
    txn.commit().await.map_err(internal)?;
    tracing::info!(target: "audit", application_id = %id, "application deleted");
    Ok(())
}

/// Applies `change` to the stored application and saves it with a new
/// `updated_at`.
async fn update<F>(db: &impl ConnectionTrait, id: &str, now: i64, change: F) -> Result<(), AppError>
where
    F: FnOnce(&mut application::ActiveModel),
{
    let mut model = find_model(db, id).await?.into_active_model();
    change(&mut model);
    model.updated_at = Set(now);
    model.update(db).await.map_err(internal)?;
    tracing::info!(target: "audit", application_id = %id, "application changed");
    Ok(())
}

/// Replaces the redirect URIs after checking every one; on any error
/// nothing is stored. Returns the saved list.
pub async fn set_redirect_uris(
    db: &impl ConnectionTrait,
    id: &str,
    uris: &[String],
    now: i64,
) -> Result<Vec<String>, AppError> {
    let kind = kind_of(&find_model(db, id).await?);
    let uris = validation::check_redirect_uris(uris, kind)?;
    let encoded = encode_uris(&uris);
    update(db, id, now, |model| model.redirect_uris = Set(encoded)).await?;
    Ok(uris)
}

/// Turns "Always issue refresh token" on or off.
pub async fn set_always_issue_refresh_token(
    db: &impl ConnectionTrait,
    id: &str,
    enabled: bool,
    now: i64,
) -> Result<(), AppError> {
    update(db, id, now, |model| model.always_issue_refresh_token = Set(enabled)).await
}

/// Saves the manifest settings: the OpenAI verification token, sealed, and
/// the token request encoding.
pub async fn set_manifest_settings(
    db: &impl ConnectionTrait,
    key: &MasterKey,
    id: &str,
    verification_token: &str,
    content_type: &str,
    now: i64,
) -> Result<(), AppError> {
    let token = validation::check_verification_token(verification_token)?;
    let content_type = TokenContentType::parse(content_type).ok_or_else(|| {
        AppError::invalid(
            "content_type",
            "Choose application/json or application/x-www-form-urlencoded.",
        )
    })?;
    let token = token.map(|token| key.seal(&crypto::verification_token_context(id), &token));
    update(db, id, now, |model| {
        model.openai_verification_token = Set(token);
        model.token_content_type = Set(content_type.media_type().into());
    })
    .await
}

/// Sets the audience of the application's access tokens.
pub async fn set_audience(db: &impl ConnectionTrait, id: &str, audience: &str, now: i64) -> Result<(), AppError> {
    let audience = validation::check_audience(audience)?;
    update(db, id, now, |model| model.audience = Set(audience)).await
}

/// Returns the secrets of an application that have not expired at `now`,
/// opened, for client authentication. A secret that does not open is
/// logged and left out.
pub async fn live_secrets(
    db: &impl ConnectionTrait,
    key: &MasterKey,
    id: &str,
    now: i64,
) -> Result<Vec<String>, AppError> {
    let rows = application_secret::Entity::find()
        .filter(application_secret::Column::ApplicationId.eq(id))
        .all(db)
        .await
        .map_err(internal)?;
    Ok(rows
        .into_iter()
        .filter(|secret| secret.expires_at.is_none_or(|expiry| expiry > now))
        .filter_map(|secret| match open_secret(key, &secret) {
            Ok(value) => Some(value),
            Err(error) => {
                let _ = unreadable("application_secrets.value", &secret.id, error);
                None
            }
        })
        .collect())
}

/// An application and all its secrets, expired ones included.
pub type ApplicationWithSecrets = (application::Model, Vec<application_secret::Model>);

/// Reads the applications named by `ids` with all their secrets, expired
/// ones included, with one query (a left join), so that nothing about a
/// client comes from a cache. Unknown ids are absent from the map.
pub async fn applications_with_secrets(
    db: &impl ConnectionTrait,
    ids: &[String],
) -> Result<std::collections::HashMap<String, ApplicationWithSecrets>, DbErr> {
    use sea_orm::{JoinType, QuerySelect, RelationDef};
    let secrets_of_application: RelationDef = application_secret::Entity::belongs_to(application::Entity)
        .from(application_secret::Column::ApplicationId)
        .to(application::Column::Id)
        .into();
    let rows = application::Entity::find()
        .filter(application::Column::Id.is_in(ids.iter().cloned()))
        .join(JoinType::LeftJoin, secrets_of_application.rev())
        .select_also(application_secret::Entity)
        .all(db)
        .await?;
    let mut found: std::collections::HashMap<String, ApplicationWithSecrets> =
        std::collections::HashMap::with_capacity(ids.len());
    for (application, secret) in rows {
        let entry = found
            .entry(application.id.clone())
            .or_insert_with(|| (application, Vec::new()));
        entry.1.extend(secret);
    }
    Ok(found)
}
