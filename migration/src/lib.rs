//! Schema migrations for Latch, run at start-up by the `latch` binary.
//!
//! Each migration declares its own identifiers and never imports entity
//! code, so an old migration keeps describing the schema as it was.

pub use sea_orm_migration::prelude::*;

mod m20261204_000001_create_applications;
mod m20261204_000002_create_identity_tables;
mod m20261204_000003_create_console_security;
mod m20261204_000004_revoke_code_grants;

/// Applies every Latch migration in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261204_000001_create_applications::Migration),
            Box::new(m20261204_000002_create_identity_tables::Migration),
            Box::new(m20261204_000003_create_console_security::Migration),
            Box::new(m20261204_000004_revoke_code_grants::Migration),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm_migration::sea_orm::Database;

    #[tokio::test]
    async fn migrations_run_up_down_up_on_sqlite() {
        let db = Database::connect("sqlite::memory:").await.unwrap();
        Migrator::up(&db, None).await.unwrap();
        Migrator::down(&db, None).await.unwrap();
        Migrator::up(&db, None).await.unwrap();
        let applied = Migrator::get_applied_migrations(&db).await.unwrap();
        assert_eq!(applied.len(), Migrator::migrations().len());
    }
}
