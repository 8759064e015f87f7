//! Adding, listing and deleting the client secrets of an application.
//!
//! An application holds up to [`MAX_SECRETS`] secrets, each named and with
//! an optional expiry, and the token endpoint accepts any of them until it
//! expires. A developer rotates a secret without downtime by adding a new
//! one, entering it in ChatGPT, then deleting the old one. Values are
//! stored sealed with the master key and bound to the secret's row id.

use super::applications::{internal, open_secret};
use super::crypto::{MasterKey, application_secret_context};
use super::entities::{application, application_secret};
use super::ids;
use crate::error::AppError;
use crate::model::{ApplicationKind, MAX_SECRET_NAME_LEN, MAX_SECRETS, SecretListing, SecretView};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionSession, TransactionTrait,
};

/// Checks a secret's name and returns it trimmed.
fn check_secret_name(raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AppError::invalid(
            "name",
            "Enter a name for the secret, such as the month you created it.",
        ));
    }
    let length = name.chars().count();
    if length > MAX_SECRET_NAME_LEN {
        return Err(AppError::invalid(
            "name",
            format!("The name is {length} characters long; the limit is {MAX_SECRET_NAME_LEN}."),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "name",
            "Remove the control characters from the name.",
        ));
    }
    Ok(name.to_owned())
}

/// Reads the application inside `txn`. On PostgreSQL the row stays locked
/// until the transaction ends, so two requests that add or delete secrets
/// of one application run one after the other. SQLite has no row locks,
/// but it lets only one transaction write at a time and fails a write based
/// on reads that another commit made stale.
async fn lock_application(
    db: &impl ConnectionTrait,
    application_id: &str,
) -> Result<application::Model, AppError> {
    application::Entity::find_by_id(application_id.to_owned())
        .lock_exclusive()
        .one(db)
        .await
        .map_err(internal)?
        .ok_or_else(|| AppError::ApplicationNotFound(application_id.to_owned()))
}

/// Returns the stored secrets of an application, newest first.
async fn stored_secrets(
    db: &impl ConnectionTrait,
    application_id: &str,
) -> Result<Vec<application_secret::Model>, AppError> {
    application_secret::Entity::find()
        .filter(application_secret::Column::ApplicationId.eq(application_id))
        .order_by_desc(application_secret::Column::CreatedAt)
        .order_by_asc(application_secret::Column::Id)
        .all(db)
        .await
        .map_err(internal)
}

fn is_live(secret: &application_secret::Model, now: i64) -> bool {
    secret.expires_at.is_none_or(|expiry| expiry > now)
}

/// Creates a secret for a confidential application and returns it with its
/// value. `expires_at` is in seconds since the Unix epoch and must lie after
/// `now`. `None` makes a secret that never expires.
pub async fn add_secret<C>(
    db: &C,
    key: &MasterKey,
    application_id: &str,
    name: &str,
    expires_at: Option<i64>,
    now: i64,
) -> Result<SecretView, AppError>
where
    C: ConnectionTrait + TransactionTrait,
{
    let name = check_secret_name(name)?;
    if expires_at.is_some_and(|expiry| expiry <= now) {
        return Err(AppError::invalid(
            "expires_on",
            "The expiry date has passed. Choose a later date, or leave it blank for a secret that never expires.",
        ));
    }

    let txn = db.begin().await.map_err(internal)?;
    let application = lock_application(&txn, application_id).await?;
    let confidential =
        ApplicationKind::parse(&application.kind).is_some_and(ApplicationKind::is_confidential);
    if !confidential {
        return Err(AppError::invalid(
            "application_id",
            "This application is a public client: it uses PKCE instead of a secret.",
        ));
    }
    let existing = stored_secrets(&txn, application_id).await?;
    if existing.len() >= MAX_SECRETS {
        return Err(AppError::invalid(
            "name",
            format!(
                "This application already has {MAX_SECRETS} secrets, the maximum. Delete one it no longer needs, then add the new one."
            ),
        ));
    }
    let lower_name = name.to_lowercase();
    if existing
        .iter()
        .any(|secret| secret.name.to_lowercase() == lower_name)
    {
        return Err(AppError::invalid(
            "name",
            format!("This application already has a secret named \"{name}\". Choose another name."),
        ));
    }

    let id = ids::new_row_id();
    let value = ids::new_app_secret();
    application_secret::ActiveModel {
        id: Set(id.clone()),
        application_id: Set(application_id.to_owned()),
        name: Set(name.clone()),
        value: Set(key.seal(&application_secret_context(&id), &value)),
        expires_at: Set(expires_at),
        created_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(internal)?;
    txn.commit().await.map_err(internal)?;

    tracing::info!(
        target: "audit",
        application_id = %application_id,
        secret_id = %id,
        name = ?name,
        expires_at = ?expires_at,
        "secret added"
    );
    Ok(SecretView {
        id,
        name,
        value,
        expires_at,
    })
}

/// Lists the secrets of an application with their values, newest first.
pub async fn list_secrets(
    db: &impl ConnectionTrait,
    key: &MasterKey,
    application_id: &str,
) -> Result<Vec<SecretListing>, AppError> {
    let exists = application::Entity::find_by_id(application_id.to_owned())
        .one(db)
        .await
        .map_err(internal)?
        .is_some();
    if !exists {
        return Err(AppError::ApplicationNotFound(application_id.to_owned()));
    }
    stored_secrets(db, application_id)
        .await?
        .into_iter()
        .map(|row| {
            let value = open_value(key, &row)?;
            Ok(SecretListing {
                created_at: row.created_at,
                secret: SecretView {
                    id: row.id,
                    name: row.name,
                    value,
                    expires_at: row.expires_at,
                },
            })
        })
        .collect()
}

/// Decrypts a stored value, logging the row when it does not open.
fn open_value(key: &MasterKey, row: &application_secret::Model) -> Result<String, AppError> {
    open_secret(key, row).map_err(|error| {
        tracing::error!(
            %error,
            application_id = %row.application_id,
            secret_id = %row.id,
            "a client secret cannot be decrypted; check that the master key is the one that sealed it"
        );
        AppError::Internal
    })
}

/// Deletes one secret of an application. The last secret that has not
/// expired at `now` is kept, because without it ChatGPT could no longer
/// exchange codes or refresh tokens.
pub async fn delete_secret<C>(
    db: &C,
    application_id: &str,
    secret_id: &str,
    now: i64,
) -> Result<(), AppError>
where
    C: ConnectionTrait + TransactionTrait,
{
    let txn = db.begin().await.map_err(internal)?;
    lock_application(&txn, application_id).await?;
    let secrets = stored_secrets(&txn, application_id).await?;
    let Some(target) = secrets.iter().find(|secret| secret.id == secret_id) else {
        return Err(AppError::invalid(
            "secret_id",
            "This application has no secret with that ID; it may have been deleted already. Reload the page to see the current secrets.",
        ));
    };
    let other_live = secrets
        .iter()
        .filter(|secret| secret.id != secret_id && is_live(secret, now))
        .count();
    if is_live(target, now) && other_live == 0 {
        return Err(AppError::invalid(
            "secret_id",
            "This is the application's only secret that has not expired, and ChatGPT would lose access without it. Add a new secret and enter it in ChatGPT first, then delete this one.",
        ));
    }
    let name = target.name.clone();

    application_secret::Entity::delete_many()
        .filter(application_secret::Column::Id.eq(secret_id))
        .filter(application_secret::Column::ApplicationId.eq(application_id))
        .exec(&txn)
        .await
        .map_err(internal)?;
    txn.commit().await.map_err(internal)?;

    tracing::info!(
        target: "audit",
        application_id = %application_id,
        secret_id = %secret_id,
        name = ?name,
        "secret deleted"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssr::applications::{NewApplication, create_application, live_secrets};
    use crate::ssr::crypto::is_sealed;
    use crate::ssr::db::connect_and_migrate;
    use crate::ssr::testing::TestDatabase;
    use sea_orm::DatabaseConnection;

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    struct Setup {
        db: DatabaseConnection,
        key: MasterKey,
        app_id: String,
        _database: TestDatabase,
    }

    async fn setup_with(kind: ApplicationKind) -> Setup {
        let database = TestDatabase::create().await;
        let db = connect_and_migrate(&database.url)
            .await
            .expect("database opens and migrates");
        let input = NewApplication {
            name: "Weather plugin".into(),
            kind,
            redirect_uris: Vec::new(),
            always_issue_refresh_token: false,
        };
        let key = MasterKey::generate().0;
        let app = create_application(&db, &key, input, NOW - DAY)
            .await
            .expect("application created");
        Setup {
            db,
            key,
            app_id: app.id,
            _database: database,
        }
    }

    async fn setup() -> Setup {
        setup_with(ApplicationKind::ChatgptPlugin).await
    }

    async fn rows(setup: &Setup) -> Vec<application_secret::Model> {
        stored_secrets(&setup.db, &setup.app_id)
            .await
            .expect("secrets read")
    }

    fn message(error: AppError) -> String {
        match error {
            AppError::InvalidField { message, .. } => message,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn added_secret_is_sealed_and_listed() {
        let setup = setup().await;
        let added = add_secret(
            &setup.db,
            &setup.key,
            &setup.app_id,
            "  March rotation ",
            Some(NOW + DAY),
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(added.name, "March rotation");
        assert_eq!(added.value.len(), ids::APP_SECRET_LEN);
        assert_eq!(added.expires_at, Some(NOW + DAY));

        let row = rows(&setup)
            .await
            .into_iter()
            .find(|row| row.id == added.id)
            .unwrap();
        assert!(is_sealed(&row.value), "the value is stored sealed");
        assert!(!row.value.contains(&added.value));
        let context = format!("application_secret:{}", added.id);
        assert_eq!(setup.key.open(&context, &row.value).unwrap(), added.value);
        assert_eq!(row.created_at, NOW);

        let listed = list_secrets(&setup.db, &setup.key, &setup.app_id)
            .await
            .unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(
            listed[0].secret, added,
            "newest first, with the opened value"
        );
        assert_eq!(listed[0].created_at, NOW);
        assert_eq!(listed[1].secret.name, "Default");
    }

    #[tokio::test]
    async fn bad_names_are_rejected() {
        let setup = setup().await;
        let cases = [
            ("", "Enter a name"),
            ("   ", "Enter a name"),
            (&"x".repeat(65), "65 characters long; the limit is 64"),
            ("tab\there", "control characters"),
            ("Default", "already has a secret named \"Default\""),
            (" default ", "already has a secret named \"default\""),
        ];
        for (name, expected) in cases {
            let error = add_secret(&setup.db, &setup.key, &setup.app_id, name, None, NOW)
                .await
                .unwrap_err();
            let text = message(error);
            assert!(text.contains(expected), "{name:?}: {text}");
        }
        assert_eq!(rows(&setup).await.len(), 1, "nothing was added");

        let longest = "é".repeat(64);
        let added = add_secret(&setup.db, &setup.key, &setup.app_id, &longest, None, NOW)
            .await
            .unwrap();
        assert_eq!(added.name, longest);
    }

    #[tokio::test]
    async fn expiry_must_be_in_the_future() {
        let setup = setup().await;
        for expiry in [NOW - DAY, NOW] {
            let error = add_secret(
                &setup.db,
                &setup.key,
                &setup.app_id,
                "Old",
                Some(expiry),
                NOW,
            )
            .await
            .unwrap_err();
            assert!(
                message(error).contains("expiry date has passed"),
                "{expiry}"
            );
        }
        assert_eq!(rows(&setup).await.len(), 1);
        add_secret(
            &setup.db,
            &setup.key,
            &setup.app_id,
            "Soon",
            Some(NOW + 1),
            NOW,
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn at_most_ten_secrets() {
        let setup = setup().await;
        for index in 2..=MAX_SECRETS {
            add_secret(
                &setup.db,
                &setup.key,
                &setup.app_id,
                &format!("Secret {index}"),
                None,
                NOW,
            )
            .await
            .unwrap();
        }
        assert_eq!(rows(&setup).await.len(), MAX_SECRETS);
        let error = add_secret(&setup.db, &setup.key, &setup.app_id, "One more", None, NOW)
            .await
            .unwrap_err();
        assert!(message(error).contains("already has 10 secrets"));
        assert_eq!(rows(&setup).await.len(), MAX_SECRETS);
    }

    #[tokio::test]
    async fn unknown_application_is_not_found() {
        let setup = setup().await;
        let added = add_secret(
            &setup.db,
            &setup.key,
            "nosuchapplication0000",
            "New",
            None,
            NOW,
        )
        .await;
        assert_eq!(
            added,
            Err(AppError::ApplicationNotFound(
                "nosuchapplication0000".into()
            ))
        );
        let listed = list_secrets(&setup.db, &setup.key, "nosuchapplication0000").await;
        assert_eq!(
            listed,
            Err(AppError::ApplicationNotFound(
                "nosuchapplication0000".into()
            ))
        );
        let secret_id = rows(&setup).await[0].id.clone();
        let deleted = delete_secret(&setup.db, "nosuchapplication0000", &secret_id, NOW).await;
        assert_eq!(
            deleted,
            Err(AppError::ApplicationNotFound(
                "nosuchapplication0000".into()
            ))
        );
        assert_eq!(rows(&setup).await.len(), 1);
    }

    #[tokio::test]
    async fn public_client_gets_no_secret() {
        let setup = setup_with(ApplicationKind::Native).await;
        let error = add_secret(&setup.db, &setup.key, &setup.app_id, "New", None, NOW)
            .await
            .unwrap_err();
        assert!(message(error).contains("public client"));
        assert!(rows(&setup).await.is_empty());
    }

    #[tokio::test]
    async fn rotation_keeps_a_live_secret() {
        let setup = setup().await;
        let old_id = rows(&setup).await[0].id.clone();

        let error = delete_secret(&setup.db, &setup.app_id, &old_id, NOW)
            .await
            .unwrap_err();
        assert!(message(error).contains("only secret that has not expired"));
        assert_eq!(rows(&setup).await.len(), 1, "the last live secret is kept");

        let new = add_secret(&setup.db, &setup.key, &setup.app_id, "New", None, NOW)
            .await
            .unwrap();
        delete_secret(&setup.db, &setup.app_id, &old_id, NOW)
            .await
            .unwrap();
        let remaining = rows(&setup).await;
        assert_eq!(remaining.len(), 1);
        assert_eq!(remaining[0].id, new.id);

        let error = delete_secret(&setup.db, &setup.app_id, &new.id, NOW)
            .await
            .unwrap_err();
        assert!(message(error).contains("only secret that has not expired"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_deletes_keep_a_live_secret() {
        let setup = setup().await;
        for round in 0..5 {
            let old_id = rows(&setup).await[0].id.clone();
            let new = add_secret(
                &setup.db,
                &setup.key,
                &setup.app_id,
                &format!("Round {round}"),
                None,
                NOW,
            )
            .await
            .unwrap();
            let (first, second) = tokio::join!(
                delete_secret(&setup.db, &setup.app_id, &old_id, NOW),
                delete_secret(&setup.db, &setup.app_id, &new.id, NOW),
            );
            let remaining = rows(&setup).await;
            assert_eq!(remaining.len(), 1, "round {round}: {first:?} {second:?}");
            assert!(
                first.is_ok() != second.is_ok(),
                "round {round}: exactly one delete succeeds"
            );
        }
    }

    #[tokio::test]
    async fn expired_secret_does_not_count_as_live() {
        let setup = setup().await;
        let old_id = rows(&setup).await[0].id.clone();
        let expiring = add_secret(
            &setup.db,
            &setup.key,
            &setup.app_id,
            "Expiring",
            Some(NOW + DAY),
            NOW,
        )
        .await
        .unwrap();

        // Before the expiry both secrets are live, so either may go.
        assert_eq!(
            live_secrets(&setup.db, &setup.key, &setup.app_id, NOW)
                .await
                .unwrap()
                .len(),
            2
        );

        // A day later only the secret without expiry is live: it stays,
        // and the expired one may be deleted.
        let later = NOW + DAY;
        assert_eq!(
            live_secrets(&setup.db, &setup.key, &setup.app_id, later)
                .await
                .unwrap()
                .len(),
            1
        );
        let error = delete_secret(&setup.db, &setup.app_id, &old_id, later)
            .await
            .unwrap_err();
        assert!(message(error).contains("only secret that has not expired"));
        delete_secret(&setup.db, &setup.app_id, &expiring.id, later)
            .await
            .unwrap();
        assert_eq!(rows(&setup).await.len(), 1);
    }

    #[tokio::test]
    async fn last_secret_may_go_once_expired() {
        let setup = setup().await;
        let old_id = rows(&setup).await[0].id.clone();
        let expiring = add_secret(
            &setup.db,
            &setup.key,
            &setup.app_id,
            "Expiring",
            Some(NOW + DAY),
            NOW,
        )
        .await
        .unwrap();
        delete_secret(&setup.db, &setup.app_id, &old_id, NOW)
            .await
            .unwrap();

        let error = delete_secret(&setup.db, &setup.app_id, &expiring.id, NOW)
            .await
            .unwrap_err();
        assert!(message(error).contains("only secret that has not expired"));
        delete_secret(&setup.db, &setup.app_id, &expiring.id, NOW + DAY)
            .await
            .unwrap();
        assert!(rows(&setup).await.is_empty());
    }

    #[tokio::test]
    async fn secret_of_another_application_is_not_deleted() {
        let setup = setup().await;
        add_secret(&setup.db, &setup.key, &setup.app_id, "Second", None, NOW)
            .await
            .unwrap();
        let input = NewApplication {
            name: "Other plugin".into(),
            kind: ApplicationKind::ChatgptPlugin,
            redirect_uris: Vec::new(),
            always_issue_refresh_token: false,
        };
        let other = create_application(&setup.db, &setup.key, input, NOW)
            .await
            .unwrap();
        let other_secret = other.secrets[0].id.clone();
        add_secret(&setup.db, &setup.key, &other.id, "Second", None, NOW)
            .await
            .unwrap();

        for secret_id in [other_secret.as_str(), "nosuchsecret"] {
            let error = delete_secret(&setup.db, &setup.app_id, secret_id, NOW)
                .await
                .unwrap_err();
            assert!(
                message(error).contains("no secret with that ID"),
                "{secret_id}"
            );
        }
        assert_eq!(rows(&setup).await.len(), 2);
        assert_eq!(stored_secrets(&setup.db, &other.id).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn same_name_in_another_application_is_allowed() {
        let setup = setup().await;
        let input = NewApplication {
            name: "Other plugin".into(),
            kind: ApplicationKind::ChatgptPlugin,
            redirect_uris: Vec::new(),
            always_issue_refresh_token: false,
        };
        let other = create_application(&setup.db, &setup.key, input, NOW)
            .await
            .unwrap();
        add_secret(&setup.db, &setup.key, &setup.app_id, "Rotation", None, NOW)
            .await
            .unwrap();
        add_secret(&setup.db, &setup.key, &other.id, "Rotation", None, NOW)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn value_sealed_with_another_key_is_an_internal_error() {
        let setup = setup().await;
        add_secret(&setup.db, &setup.key, &setup.app_id, "Sealed", None, NOW)
            .await
            .unwrap();
        let other_key = MasterKey::generate().0;
        let listed = list_secrets(&setup.db, &other_key, &setup.app_id).await;
        assert_eq!(listed, Err(AppError::Internal));
    }
}
