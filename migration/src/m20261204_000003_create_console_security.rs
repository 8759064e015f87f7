//! Creates the tables that guard the console and the sign-in pages:
//! console operators (admins), one-time setup tokens, and the counters of
//! failed sign-ins that slow down password guessing.
//!
//! Setup tokens are stored only as SHA-256 hashes.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Admins {
    Table,
    Id,
    Username,
    PasswordHash,
    CreatedAt,
    UpdatedAt,
    LastSignInAt,
}

#[derive(DeriveIden)]
enum SetupTokens {
    Table,
    TokenHash,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum SignInThrottles {
    Table,
    Key,
    Failures,
    LastFailureAt,
    BlockedUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Admins::Table)
                    .col(ColumnDef::new(Admins::Id).string_len(21).not_null().primary_key())
                    .col(ColumnDef::new(Admins::Username).string_len(64).not_null().unique_key())
                    .col(ColumnDef::new(Admins::PasswordHash).text().not_null())
                    .col(ColumnDef::new(Admins::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Admins::UpdatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Admins::LastSignInAt).big_integer().null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SetupTokens::Table)
                    .col(ColumnDef::new(SetupTokens::TokenHash).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(SetupTokens::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(SetupTokens::ExpiresAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SignInThrottles::Table)
                    .col(ColumnDef::new(SignInThrottles::Key).string_len(200).not_null().primary_key())
                    .col(ColumnDef::new(SignInThrottles::Failures).integer().not_null())
                    .col(ColumnDef::new(SignInThrottles::LastFailureAt).big_integer().not_null())
                    .col(ColumnDef::new(SignInThrottles::BlockedUntil).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(SignInThrottles::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(SetupTokens::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Admins::Table).to_owned()).await
    }
}
