//! Creates the applications, their client secrets and the key-value
//! settings table.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Applications {
    Table,
    Id,
    Name,
    Kind,
    RedirectUris,
    PostLogoutRedirectUris,
    AlwaysIssueRefreshToken,
    RotateRefreshToken,
    RefreshTokenTtlDays,
    AccessTokenTtlSecs,
    IdTokenTtlSecs,
    DefaultScope,
    Audience,
    SigningAlg,
    OpenaiVerificationToken,
    TokenContentType,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ApplicationSecrets {
    Table,
    Id,
    ApplicationId,
    Name,
    Value,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Settings {
    Table,
    Key,
    Value,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Applications::Table)
                    .col(ColumnDef::new(Applications::Id).string_len(21).not_null().primary_key())
                    .col(ColumnDef::new(Applications::Name).string_len(128).not_null())
                    .col(ColumnDef::new(Applications::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(Applications::RedirectUris).text().not_null())
                    .col(ColumnDef::new(Applications::PostLogoutRedirectUris).text().not_null())
                    .col(ColumnDef::new(Applications::AlwaysIssueRefreshToken).boolean().not_null())
                    .col(ColumnDef::new(Applications::RotateRefreshToken).boolean().not_null())
                    .col(ColumnDef::new(Applications::RefreshTokenTtlDays).integer().not_null())
                    .col(ColumnDef::new(Applications::AccessTokenTtlSecs).integer().not_null())
                    .col(ColumnDef::new(Applications::IdTokenTtlSecs).integer().not_null())
                    .col(ColumnDef::new(Applications::DefaultScope).string_len(512).not_null())
                    .col(ColumnDef::new(Applications::Audience).string_len(2048).null())
                    .col(ColumnDef::new(Applications::SigningAlg).string_len(8).not_null())
                    .col(ColumnDef::new(Applications::OpenaiVerificationToken).text().null())
                    .col(ColumnDef::new(Applications::TokenContentType).string_len(64).not_null())
                    .col(ColumnDef::new(Applications::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Applications::UpdatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApplicationSecrets::Table)
                    .col(ColumnDef::new(ApplicationSecrets::Id).string_len(21).not_null().primary_key())
                    .col(ColumnDef::new(ApplicationSecrets::ApplicationId).string_len(21).not_null())
                    .col(ColumnDef::new(ApplicationSecrets::Name).string_len(128).not_null())
                    .col(ColumnDef::new(ApplicationSecrets::Value).text().not_null())
                    .col(ColumnDef::new(ApplicationSecrets::ExpiresAt).big_integer().null())
                    .col(ColumnDef::new(ApplicationSecrets::CreatedAt).big_integer().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_application_secrets_application")
                            .from(ApplicationSecrets::Table, ApplicationSecrets::ApplicationId)
                            .to(Applications::Table, Applications::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_index(
                Index::create()
                    .name("idx_application_secrets_application")
                    .table(ApplicationSecrets::Table)
                    .col(ApplicationSecrets::ApplicationId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Settings::Table)
                    .col(ColumnDef::new(Settings::Key).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(Settings::Value).text().not_null())
                    .col(ColumnDef::new(Settings::UpdatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Settings::Table).to_owned()).await?;
        manager
            .drop_table(Table::drop().table(ApplicationSecrets::Table).to_owned())
            .await?;
        manager.drop_table(Table::drop().table(Applications::Table).to_owned()).await
    }
}
