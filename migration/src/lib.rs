//! Schema migrations for Latch, run at start-up by the `latch` binary.
//!
//! Each migration declares its own identifiers and never imports entity
//! code, so an old migration keeps describing the schema as it was.

pub use sea_orm_migration::prelude::*;

mod m20261204_000001_create_applications;
mod m20261204_000002_create_identity_tables;
mod m20261204_000003_create_console_security;
mod m20261204_000004_revoke_code_grants;
mod m20261205_000005_refresh_token_families;

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
            Box::new(m20261205_000005_refresh_token_families::Migration),
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

    /// Inserts a refresh token of `family`, revoked at `revoked_at`.
    async fn insert_token(db: &impl ConnectionTrait, hash: &str, family: &str, revoked_at: Option<i64>) {
        let revoked_at = revoked_at.map_or("NULL".to_owned(), |time| time.to_string());
        db.execute_unprepared(&format!(
            "INSERT INTO refresh_tokens (token_hash, family_id, application_id, user_id, scope, \
             auth_time, code_hash, created_at, expires_at, rotated_at, replaced_by_hash, revoked_at) \
             VALUES ('{hash}', '{family}', 'app', 'user', 'openid', 1, 'code-{family}', 10, 99, NULL, NULL, {revoked_at})"
        ))
        .await
        .unwrap();
    }

    /// Runs `sql`, which selects one row with a `revoked_at` column, and
    /// returns that column.
    async fn revoked_at(db: &impl ConnectionTrait, sql: String) -> Option<i64> {
        let statement = sea_orm_migration::sea_orm::Statement::from_string(db.get_database_backend(), sql);
        let row = db
            .query_one_raw(statement)
            .await
            .unwrap()
            .expect("the query finds one row");
        row.try_get("", "revoked_at").unwrap()
    }

    async fn family_revoked_at(db: &impl ConnectionTrait, family: &str) -> Option<i64> {
        revoked_at(db, format!("SELECT revoked_at FROM refresh_token_families WHERE family_id = '{family}'")).await
    }

    #[tokio::test]
    async fn families_keep_revocation_of_existing_tokens() {
        let db = Database::connect("sqlite::memory:").await.unwrap();
        Migrator::up(&db, Some(4)).await.unwrap();
        // Family "all" had every token revoked, so it counted as revoked.
        insert_token(&db, "a1", "all", Some(50)).await;
        insert_token(&db, "a2", "all", Some(60)).await;
        // Family "some" still had a live token, so it counted as live.
        insert_token(&db, "s1", "some", Some(50)).await;
        insert_token(&db, "s2", "some", None).await;
        insert_token(&db, "n1", "none", None).await;

        Migrator::up(&db, None).await.unwrap();
        assert_eq!(family_revoked_at(&db, "all").await, Some(60));
        assert_eq!(family_revoked_at(&db, "some").await, None);
        assert_eq!(family_revoked_at(&db, "none").await, None);

        // Going back puts the family's revocation on each of its tokens.
        db.execute_unprepared("UPDATE refresh_token_families SET revoked_at = 70 WHERE family_id = 'none'")
            .await
            .unwrap();
        Migrator::down(&db, Some(1)).await.unwrap();
        let token_revoked_at =
            revoked_at(&db, "SELECT revoked_at FROM refresh_tokens WHERE token_hash = 'n1'".to_owned()).await;
        assert_eq!(token_revoked_at, Some(70));
    }
}
