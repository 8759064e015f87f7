//! Keeps the revocation of refresh token families in a table with one row
//! per family, and drops the index on `refresh_tokens.family_id`.
//!
//! Each rotation added an entry to that index at a place set by a random
//! family id, so every rotation wrote one more page. A family row is
//! written once when the family starts and again only when it is revoked.
//! Existing families get a row that is revoked when every one of their
//! tokens is, which is when they counted as revoked before.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    FamilyId,
}

#[derive(DeriveIden)]
enum RefreshTokenFamilies {
    Table,
    FamilyId,
    ApplicationId,
    UserId,
    CodeHash,
    CreatedAt,
    RevokedAt,
}

const FAMILY_INDEX: &str = "idx_refresh_tokens_family";
const CODE_INDEX: &str = "idx_refresh_token_families_code";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokenFamilies::Table)
                    .col(
                        ColumnDef::new(RefreshTokenFamilies::FamilyId)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(RefreshTokenFamilies::ApplicationId).string_len(21).not_null())
                    .col(ColumnDef::new(RefreshTokenFamilies::UserId).string_len(21).not_null())
                    .col(ColumnDef::new(RefreshTokenFamilies::CodeHash).string_len(64).null())
                    .col(ColumnDef::new(RefreshTokenFamilies::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(RefreshTokenFamilies::RevokedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(CODE_INDEX)
                    .table(RefreshTokenFamilies::Table)
                    .col(RefreshTokenFamilies::CodeHash)
                    .to_owned(),
            )
            .await?;
        // COUNT(revoked_at) counts the revoked tokens only, so the CASE is
        // true when every token of the family is revoked.
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO refresh_token_families \
                 (family_id, application_id, user_id, code_hash, created_at, revoked_at) \
                 SELECT family_id, MIN(application_id), MIN(user_id), MIN(code_hash), MIN(created_at), \
                 CASE WHEN COUNT(revoked_at) = COUNT(*) THEN MAX(revoked_at) END \
                 FROM refresh_tokens GROUP BY family_id",
            )
            .await?;
        manager
            .drop_index(Index::drop().name(FAMILY_INDEX).table(RefreshTokens::Table).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(FAMILY_INDEX)
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::FamilyId)
                    .to_owned(),
            )
            .await?;
        // The older schema keeps revocation on each token.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE refresh_tokens SET revoked_at = \
                 (SELECT f.revoked_at FROM refresh_token_families f WHERE f.family_id = refresh_tokens.family_id) \
                 WHERE revoked_at IS NULL AND family_id IN \
                 (SELECT family_id FROM refresh_token_families WHERE revoked_at IS NOT NULL)",
            )
            .await?;
        manager
            .drop_table(Table::drop().table(RefreshTokenFamilies::Table).to_owned())
            .await
    }
}
