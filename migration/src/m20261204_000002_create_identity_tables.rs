//! Creates the tables of the OAuth provider: end users, browser sessions,
//! pending authorization requests, authorization codes, refresh tokens
//! and signing keys.
//!
//! Codes, refresh tokens and session cookies are stored only as SHA-256
//! hashes, so a copy of the database cannot be replayed.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    Email,
    Name,
    PasswordHash,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    IdHash,
    Kind,
    SubjectId,
    AuthTime,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Interactions {
    Table,
    Id,
    ApplicationId,
    Request,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum AuthorizationCodes {
    Table,
    CodeHash,
    ApplicationId,
    UserId,
    RedirectUri,
    Scope,
    Nonce,
    CodeChallenge,
    AuthTime,
    IssueRefreshToken,
    CreatedAt,
    ExpiresAt,
    ConsumedAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    TokenHash,
    FamilyId,
    ApplicationId,
    UserId,
    Scope,
    AuthTime,
    CodeHash,
    CreatedAt,
    ExpiresAt,
    RotatedAt,
    ReplacedByHash,
    RevokedAt,
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    Alg,
    PrivateKey,
    PublicJwk,
    CreatedAt,
    RetiredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(ColumnDef::new(Users::Id).string_len(21).not_null().primary_key())
                    .col(ColumnDef::new(Users::Username).string_len(64).not_null().unique_key())
                    .col(ColumnDef::new(Users::Email).string_len(254).null().unique_key())
                    .col(ColumnDef::new(Users::Name).string_len(128).null())
                    .col(ColumnDef::new(Users::PasswordHash).text().not_null())
                    .col(ColumnDef::new(Users::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Users::UpdatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(ColumnDef::new(Sessions::IdHash).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(Sessions::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(Sessions::SubjectId).string_len(21).not_null())
                    .col(ColumnDef::new(Sessions::AuthTime).big_integer().not_null())
                    .col(ColumnDef::new(Sessions::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Sessions::LastSeenAt).big_integer().not_null())
                    .col(ColumnDef::new(Sessions::ExpiresAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Interactions::Table)
                    .col(ColumnDef::new(Interactions::Id).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(Interactions::ApplicationId).string_len(21).not_null())
                    .col(ColumnDef::new(Interactions::Request).text().not_null())
                    .col(ColumnDef::new(Interactions::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Interactions::ExpiresAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuthorizationCodes::Table)
                    .col(ColumnDef::new(AuthorizationCodes::CodeHash).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(AuthorizationCodes::ApplicationId).string_len(21).not_null())
                    .col(ColumnDef::new(AuthorizationCodes::UserId).string_len(21).not_null())
                    .col(ColumnDef::new(AuthorizationCodes::RedirectUri).text().not_null())
                    .col(ColumnDef::new(AuthorizationCodes::Scope).text().not_null())
                    .col(ColumnDef::new(AuthorizationCodes::Nonce).text().null())
                    .col(ColumnDef::new(AuthorizationCodes::CodeChallenge).string_len(128).null())
                    .col(ColumnDef::new(AuthorizationCodes::AuthTime).big_integer().not_null())
                    .col(ColumnDef::new(AuthorizationCodes::IssueRefreshToken).boolean().not_null())
                    .col(ColumnDef::new(AuthorizationCodes::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(AuthorizationCodes::ExpiresAt).big_integer().not_null())
                    .col(ColumnDef::new(AuthorizationCodes::ConsumedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(ColumnDef::new(RefreshTokens::TokenHash).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(RefreshTokens::FamilyId).string_len(64).not_null())
                    .col(ColumnDef::new(RefreshTokens::ApplicationId).string_len(21).not_null())
                    .col(ColumnDef::new(RefreshTokens::UserId).string_len(21).not_null())
                    .col(ColumnDef::new(RefreshTokens::Scope).text().not_null())
                    .col(ColumnDef::new(RefreshTokens::AuthTime).big_integer().not_null())
                    .col(ColumnDef::new(RefreshTokens::CodeHash).string_len(64).null())
                    .col(ColumnDef::new(RefreshTokens::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(RefreshTokens::ExpiresAt).big_integer().not_null())
                    .col(ColumnDef::new(RefreshTokens::RotatedAt).big_integer().null())
                    .col(ColumnDef::new(RefreshTokens::ReplacedByHash).string_len(64).null())
                    .col(ColumnDef::new(RefreshTokens::RevokedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_tokens_family")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::FamilyId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .col(ColumnDef::new(SigningKeys::Kid).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(SigningKeys::Alg).string_len(8).not_null())
                    .col(ColumnDef::new(SigningKeys::PrivateKey).text().not_null())
                    .col(ColumnDef::new(SigningKeys::PublicJwk).text().not_null())
                    .col(ColumnDef::new(SigningKeys::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(SigningKeys::RetiredAt).big_integer().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SigningKeys::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            AuthorizationCodes::Table.into_iden(),
            Interactions::Table.into_iden(),
            Sessions::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
