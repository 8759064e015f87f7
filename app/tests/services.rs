//! Domain services on a real SQLite file migrated by the real migrator.

#![cfg(feature = "ssr")]

use app::error::AppError;
use app::model::ApplicationKind;
use app::ssr::applications::{self, NewApplication};
use app::ssr::crypto::MasterKey;
use app::ssr::testing::TestDatabase;
use app::ssr::{db, settings};

const NOW: i64 = 1_700_000_000;

/// One master key for every test of this file.
fn key() -> &'static MasterKey {
    static KEY: std::sync::OnceLock<MasterKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| MasterKey::generate().0)
}

/// Opens a fresh database on the backend `LATCH_TEST_BACKEND` names.
async fn database() -> (sea_orm::DatabaseConnection, TestDatabase) {
    let database = TestDatabase::create().await;
    (db::connect_and_migrate(&database.url).await.unwrap(), database)
}

fn plugin(name: &str, uris: &[&str]) -> NewApplication {
    NewApplication {
        name: name.into(),
        kind: ApplicationKind::ChatgptPlugin,
        redirect_uris: uris.iter().map(|uri| uri.to_string()).collect(),
        always_issue_refresh_token: true,
    }
}

#[tokio::test]
async fn create_list_show_delete() {
    let (db, _dir) = database().await;
    let created = applications::create_application(&db, key(), plugin("A", &["https://chatgpt.com/aip/g-1/oauth/callback"]), NOW)
        .await
        .unwrap();
    assert!(created.always_issue_refresh_token);
    assert_eq!(created.secrets.len(), 1);

    let list = applications::list_applications(&db).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].redirect_uri_count, 1);

    applications::delete_application(&db, &created.id).await.unwrap();
    assert!(matches!(
        applications::get_application(&db, key(), &created.id).await,
        Err(AppError::ApplicationNotFound(_))
    ));
    assert!(matches!(
        applications::delete_application(&db, &created.id).await,
        Err(AppError::ApplicationNotFound(_))
    ));
}

#[tokio::test]
async fn native_app_has_no_secret() {
    let (db, _dir) = database().await;
    let input = NewApplication {
        kind: ApplicationKind::Native,
        ..plugin("CLI", &["com.example.cli:/callback"])
    };
    let created = applications::create_application(&db, key(), input, NOW).await.unwrap();
    assert!(created.secrets.is_empty());
    assert_eq!(created.redirect_uris, vec!["com.example.cli:/callback".to_string()]);
}

#[tokio::test]
async fn create_with_bad_uri_stores_nothing() {
    let (db, _dir) = database().await;
    let result = applications::create_application(&db, key(), plugin("A", &["javascript:alert(1)"]), NOW).await;
    assert!(matches!(result, Err(AppError::InvalidRedirectUris { .. })));
    assert!(applications::list_applications(&db).await.unwrap().is_empty());
}

#[tokio::test]
async fn rejected_uri_list_keeps_saved_list() {
    let (db, _dir) = database().await;
    let created = applications::create_application(&db, key(), plugin("A", &["https://example.com/cb"]), NOW)
        .await
        .unwrap();
    let bad = vec!["https://example.com/new".to_string(), "https://example.com/#x".to_string()];
    assert!(applications::set_redirect_uris(&db, &created.id, &bad, NOW + 1).await.is_err());
    let after = applications::get_application(&db, key(), &created.id).await.unwrap();
    assert_eq!(after, created);
}

#[tokio::test]
async fn expired_secrets_are_not_live() {
    let (db, _dir) = database().await;
    let created = applications::create_application(&db, key(), plugin("A", &[]), NOW).await.unwrap();
    let live = applications::live_secrets(&db, key(), &created.id, NOW).await.unwrap();
    assert_eq!(live, vec![created.secrets[0].value.clone()]);
}

#[tokio::test]
async fn endpoints_follow_custom_domain() {
    let (db, _dir) = database().await;
    let plain = settings::endpoints(&db, "http://127.0.0.1:3000").await.unwrap();
    assert_eq!(plain.issuer, "http://127.0.0.1:3000/oidc");
    assert_eq!(plain.custom_domain, None);

    settings::set_custom_domain(&db, "login.example.org", NOW).await.unwrap();
    let custom = settings::endpoints(&db, "http://127.0.0.1:3000").await.unwrap();
    assert_eq!(custom.issuer, "https://login.example.org/oidc");
    assert_eq!(custom.token, "https://login.example.org/oidc/token");

    settings::set_custom_domain(&db, "", NOW).await.unwrap();
    assert_eq!(settings::custom_domain(&db).await.unwrap(), None);
}
