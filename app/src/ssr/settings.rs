//! Server-wide settings: the custom domain.

use super::applications::internal;
use super::entities::setting;
use crate::error::AppError;
use crate::model::Endpoints;
use crate::validation;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, EntityTrait, Set};

const CUSTOM_DOMAIN: &str = "custom_domain";

/// Returns the custom domain, if one is set.
pub async fn custom_domain(db: &impl ConnectionTrait) -> Result<Option<String>, AppError> {
    let row = setting::Entity::find_by_id(CUSTOM_DOMAIN.to_owned())
        .one(db)
        .await
        .map_err(internal)?;
    Ok(row.map(|row| row.value).filter(|value| !value.is_empty()))
}

/// Sets or, for blank input, clears the custom domain. Returns the saved
/// value.
pub async fn set_custom_domain(db: &impl ConnectionTrait, raw: &str, now: i64) -> Result<Option<String>, AppError> {
    let domain = validation::check_custom_domain(raw)?;
    match &domain {
        Some(value) => {
            let row = setting::ActiveModel {
                key: Set(CUSTOM_DOMAIN.to_owned()),
                value: Set(value.clone()),
                updated_at: Set(now),
            };
            setting::Entity::insert(row)
                .on_conflict(
                    OnConflict::column(setting::Column::Key)
                        .update_columns([setting::Column::Value, setting::Column::UpdatedAt])
                        .to_owned(),
                )
                .exec(db)
                .await
                .map_err(internal)?;
        }
        None => {
            setting::Entity::delete_by_id(CUSTOM_DOMAIN.to_owned())
                .exec(db)
                .await
                .map_err(internal)?;
        }
    }
    tracing::info!(target: "audit", custom_domain = ?domain, "custom domain changed");
    Ok(domain)
}

/// Returns the endpoint URLs that the guide and the discovery document
/// show: on the custom domain when one is set, on `public_base` otherwise.
pub async fn endpoints(db: &impl ConnectionTrait, public_base: &str) -> Result<Endpoints, AppError> {
    let domain = custom_domain(db).await?;
    let base = match &domain {
        Some(domain) => format!("https://{domain}"),
        None => public_base.to_owned(),
    };
    Ok(Endpoints::from_base(&base, domain))
}
