//! Refresh token rotation in shared batches, on a real database (SQLite
//! file, or PostgreSQL when `LATCH_TEST_BACKEND=postgres`).

#![cfg(feature = "ssr")]

use app::model::ApplicationKind;
use app::ssr::applications::{self, NewApplication};
use app::ssr::codes::{CodeGrant, issue_code};
use app::ssr::crypto::MasterKey;
use app::ssr::entities::refresh_token;
use app::ssr::grants::{
    self, CodeRedemption, GrantError, RefreshRequest, Rotation, RotationBatcher, rotate_many,
};
use app::ssr::testing::TestDatabase;
use app::ssr::users::{self, NewUser};
use app::ssr::db;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use std::sync::Arc;

const NOW: i64 = 1_700_000_000;
const REDIRECT_URI: &str = "https://chatgpt.com/aip/g-1/oauth/callback";
const DERIVATION_KEY: &str = "derivation key of these tests";

struct Fixture {
    db: DatabaseConnection,
    _database: TestDatabase,
    first_app: String,
    second_app: String,
    user_id: String,
}

async fn fixture() -> Fixture {
    let database = TestDatabase::create().await;
    let db = db::connect_and_migrate(&database.url).await.unwrap();
    let key = MasterKey::generate().0;
    let mut app_ids = Vec::new();
    for name in ["First", "Second"] {
        let input = NewApplication {
            name: name.into(),
            kind: ApplicationKind::ChatgptPlugin,
            redirect_uris: vec![REDIRECT_URI.into()],
            always_issue_refresh_token: true,
        };
        let created = applications::create_application(&db, &key, input, NOW)
            .await
            .unwrap();
        app_ids.push(created.id);
    }
    let user = NewUser {
        username: "ada".into(),
        email: Some("ada@example.com".into()),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
    };
    let user = users::create_user(&db, user, NOW).await.unwrap().unwrap();
    let second_app = app_ids.pop().unwrap();
    let first_app = app_ids.pop().unwrap();
    Fixture {
        db,
        _database: database,
        first_app,
        second_app,
        user_id: user.id,
    }
}

impl Fixture {
    /// Starts a refresh token family of `app` through a code, as the token
    /// endpoint does, and returns its first refresh token.
    async fn family(&self, app: &str) -> String {
        let grant = CodeGrant {
            application_id: app.into(),
            user_id: self.user_id.clone(),
            redirect_uri: REDIRECT_URI.into(),
            scope: "openid profile".into(),
            nonce: None,
            code_challenge: None,
            auth_time: NOW,
            issue_refresh_token: true,
        };
        let code = issue_code(&self.db, grant, NOW).await.unwrap();
        let redemption = CodeRedemption {
            client_id: app,
            redirect_uri: Some(REDIRECT_URI),
            code_verifier: None,
            public_client: false,
            refresh_ttl_days: 14,
        };
        let redeemed = grants::redeem_code(&self.db, &code, redemption, NOW)
            .await
            .unwrap();
        redeemed.refresh.unwrap().token
    }

    async fn row(&self, token: &str) -> refresh_token::Model {
        grants::find_refresh_token(&self.db, token)
            .await
            .unwrap()
            .unwrap()
    }

    async fn family_size(&self, family_id: &str) -> u64 {
        refresh_token::Entity::find()
            .filter(refresh_token::Column::FamilyId.eq(family_id))
            .count(&self.db)
            .await
            .unwrap()
    }
}

fn request(client_id: &str) -> RefreshRequest<'_> {
    RefreshRequest {
        client_id,
        rotate: true,
        ttl_days: 14,
        derivation_key: DERIVATION_KEY,
    }
}

#[tokio::test]
async fn batch_rotates_only_live_owned_tokens() {
    let fixture = fixture().await;
    let first = fixture.family(&fixture.first_app).await;
    let second = fixture.family(&fixture.first_app).await;
    let revoked = fixture.family(&fixture.first_app).await;
    let other_client = fixture.family(&fixture.second_app).await;
    let revoked_family = fixture.row(&revoked).await.family_id;
    grants::revoke_family(&fixture.db, &revoked_family, NOW)
        .await
        .unwrap();

    let presented = [
        (first.as_str(), fixture.first_app.as_str()),
        (second.as_str(), fixture.first_app.as_str()),
        // The same token twice: only its first job may rotate it.
        (first.as_str(), fixture.first_app.as_str()),
        (revoked.as_str(), fixture.first_app.as_str()),
        // A token of the second application presented by the first.
        (other_client.as_str(), fixture.first_app.as_str()),
        ("no such token", fixture.first_app.as_str()),
    ];
    let mut jobs = Vec::new();
    let mut successors = Vec::new();
    for (token, client) in presented {
        let (job, successor) = Rotation::prepare(token, request(client), NOW + 5).unwrap();
        jobs.push(job);
        successors.push(successor);
    }
    let results = rotate_many(&fixture.db, &jobs).await.unwrap();
    let rotated: Vec<bool> = results.iter().map(Option::is_some).collect();
    assert_eq!(rotated, [true, true, false, false, false, false]);

    for (index, token) in [(0, &first), (1, &second)] {
        let done = results[index].as_ref().unwrap();
        let old = fixture.row(token).await;
        assert_eq!(old.rotated_at, Some(NOW + 5));
        assert_eq!(old.replaced_by_hash.as_deref(), Some(done.successor.token_hash.as_str()));
        assert_eq!(done.successor.token_hash, grants::refresh_token_key(&successors[index]));
        assert_eq!(fixture.row(&successors[index]).await, done.successor);
        assert_eq!(done.successor.family_id, old.family_id);
        assert_eq!(done.successor.scope, "openid profile");
        assert_eq!(done.successor.expires_at, NOW + 5 + 14 * 86_400);
        assert_eq!(done.user.as_ref().unwrap().id, fixture.user_id);
        assert_eq!(fixture.family_size(&old.family_id).await, 2);
    }
    // Rejected jobs changed nothing.
    for token in [&revoked, &other_client] {
        let row = fixture.row(token).await;
        assert_eq!(row.rotated_at, None);
        assert_eq!(row.replaced_by_hash, None);
        assert_eq!(fixture.family_size(&row.family_id).await, 1);
    }
    assert!(fixture.row(&other_client).await.revoked_at.is_none());
}

#[tokio::test]
async fn concurrent_uses_of_one_token_get_one_successor() {
    let fixture = Arc::new(fixture().await);
    let token = Arc::new(fixture.family(&fixture.first_app).await);
    let batcher = Arc::new(RotationBatcher::start(fixture.db.clone()));
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (fixture, token, batcher) = (fixture.clone(), token.clone(), batcher.clone());
            tokio::spawn(async move {
                batcher
                    .use_refresh_token(&fixture.db, &token, request(&fixture.first_app), NOW + 1)
                    .await
                    .map(|(issued, _)| issued.token)
            })
        })
        .collect();
    let mut successors = Vec::new();
    for call in calls {
        successors.push(call.await.unwrap().unwrap());
    }
    successors.dedup();
    assert_eq!(successors.len(), 1, "every request must get the same successor");
    let family = fixture.row(&token).await.family_id;
    assert_eq!(fixture.family_size(&family).await, 2);
}

#[tokio::test]
async fn concurrent_uses_of_many_tokens_all_rotate() {
    let fixture = Arc::new(fixture().await);
    let mut tokens = Vec::new();
    for _ in 0..40 {
        tokens.push(fixture.family(&fixture.first_app).await);
    }
    let batcher = Arc::new(RotationBatcher::start(fixture.db.clone()));
    let calls: Vec<_> = tokens
        .iter()
        .cloned()
        .map(|token| {
            let (fixture, batcher) = (fixture.clone(), batcher.clone());
            tokio::spawn(async move {
                let (issued, user) = batcher
                    .use_refresh_token(&fixture.db, &token, request(&fixture.first_app), NOW + 1)
                    .await
                    .unwrap();
                (token, issued, user)
            })
        })
        .collect();
    for call in calls {
        let (token, issued, user) = call.await.unwrap();
        assert_ne!(issued.token, token);
        let old = fixture.row(&token).await;
        assert_eq!(old.replaced_by_hash.as_deref(), Some(issued.row.token_hash.as_str()));
        assert_eq!(fixture.row(&issued.token).await.family_id, old.family_id);
        // A rotation that went through a batch brings the user along.
        if let Some(user) = user {
            assert_eq!(user.id, fixture.user_id);
        }
    }
}

#[tokio::test]
async fn batched_token_reuse_revokes_family() {
    let fixture = fixture().await;
    let token = fixture.family(&fixture.first_app).await;
    let batcher = RotationBatcher::start(fixture.db.clone());
    let (issued, user) = batcher
        .use_refresh_token(&fixture.db, &token, request(&fixture.first_app), NOW)
        .await
        .unwrap();
    assert!(user.is_some(), "a lone rotation also runs as a batch");

    // Within the grace window the same successor comes back.
    let (retried, _) = batcher
        .use_refresh_token(&fixture.db, &token, request(&fixture.first_app), NOW + 2)
        .await
        .unwrap();
    assert_eq!(retried.token, issued.token);

    let late = NOW + grants::REFRESH_REUSE_GRACE_SECS + 1;
    let reused = batcher
        .use_refresh_token(&fixture.db, &token, request(&fixture.first_app), late)
        .await;
    assert!(matches!(reused, Err(GrantError::RefreshReused)));
    assert!(fixture.row(&issued.token).await.revoked_at.is_some());
}

#[tokio::test]
async fn abandoned_queued_rotation_changes_nothing() {
    use sea_orm::TransactionTrait;
    use sea_orm::sea_query::Expr;
    use std::time::Duration;

    let fixture = Arc::new(fixture().await);
    let blocker = fixture.family(&fixture.first_app).await;
    let abandoned = fixture.family(&fixture.first_app).await;
    let later = fixture.family(&fixture.first_app).await;
    let batcher = Arc::new(RotationBatcher::start(fixture.db.clone()));

    // A transaction that has written the blocker's row keeps the batch that
    // rotates it waiting. On PostgreSQL the batch waits for the row lock, and
    // on SQLite for the only connection.
    let holder = fixture.db.begin().await.unwrap();
    refresh_token::Entity::update_many()
        .col_expr(
            refresh_token::Column::ExpiresAt,
            Expr::col(refresh_token::Column::ExpiresAt),
        )
        .filter(refresh_token::Column::TokenHash.eq(grants::refresh_token_key(&blocker)))
        .exec(&holder)
        .await
        .unwrap();
    let blocked_rotation = {
        let (fixture, batcher, blocker) = (fixture.clone(), batcher.clone(), blocker.clone());
        tokio::spawn(async move {
            batcher
                .use_refresh_token(&fixture.db, &blocker, request(&fixture.first_app), NOW + 1)
                .await
                .map(|(issued, _)| issued.token)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    // This request queues behind the waiting batch, and its client gives up,
    // as a client that disconnects or times out does.
    let waited = tokio::time::timeout(
        Duration::from_millis(300),
        batcher.use_refresh_token(
            &fixture.db,
            &abandoned,
            request(&fixture.first_app),
            NOW + 1,
        ),
    )
    .await;
    assert!(
        waited.is_err(),
        "the request was still queued when it was dropped"
    );

    holder.commit().await.unwrap();
    blocked_rotation.await.unwrap().unwrap();
    // One batch task runs the queue in order, so once a later request has
    // returned, the abandoned job has been taken from the queue.
    batcher
        .use_refresh_token(&fixture.db, &later, request(&fixture.first_app), NOW + 1)
        .await
        .unwrap();

    let row = fixture.row(&abandoned).await;
    assert_eq!(
        row.rotated_at, None,
        "a request dropped before its batch ran must leave its token as it was"
    );
    assert_eq!(row.replaced_by_hash, None);
    assert_eq!(fixture.family_size(&row.family_id).await, 1);
}

#[tokio::test]
async fn revoking_family_without_row_revokes_tokens() {
    use app::ssr::entities::refresh_token_family;

    let fixture = fixture().await;
    let token = fixture.family(&fixture.first_app).await;
    let family_id = fixture.row(&token).await.family_id;
    // A version of Latch from before the family table wrote no family row.
    refresh_token_family::Entity::delete_by_id(family_id.clone())
        .exec(&fixture.db)
        .await
        .unwrap();
    assert!(fixture.row(&token).await.revoked_at.is_none());

    grants::revoke_family(&fixture.db, &family_id, NOW).await.unwrap();
    assert_eq!(fixture.row(&token).await.revoked_at, Some(NOW));
    let rejected = grants::use_refresh_token(&fixture.db, &token, request(&fixture.first_app), NOW).await;
    assert!(matches!(rejected, Err(GrantError::RefreshRevoked)));
}

#[tokio::test]
async fn tokens_without_stamp_still_rotate() {
    use sea_orm::{ActiveModelTrait, IntoActiveModel};

    let fixture = fixture().await;
    let stamped = fixture.family(&fixture.first_app).await;
    let (stamp, _) = stamped.split_once('.').unwrap();
    assert_eq!(stamp.len(), 12);
    assert_eq!(fixture.row(&stamped).await.token_hash[..12], *stamp);

    // Versions before stamps issued 43 random characters, stored under the
    // hex SHA-256 of the token.
    let legacy = app::ssr::ids::new_opaque_token();
    let mut row = fixture.row(&stamped).await;
    row.token_hash = app::ssr::ids::sha256_hex(&legacy);
    row.into_active_model().insert(&fixture.db).await.unwrap();

    let batcher = RotationBatcher::start(fixture.db.clone());
    let (issued, _) = batcher
        .use_refresh_token(&fixture.db, &legacy, request(&fixture.first_app), NOW + 1)
        .await
        .unwrap();
    let (successor_stamp, _) = issued.token.split_once('.').unwrap();
    assert_eq!(issued.row.token_hash[..12], *successor_stamp);
    assert_eq!(
        fixture.row(&legacy).await.replaced_by_hash.as_deref(),
        Some(issued.row.token_hash.as_str())
    );

    // A retry within the grace window rebuilds the same stamped successor.
    let retried = grants::use_refresh_token(&fixture.db, &legacy, request(&fixture.first_app), NOW + 2)
        .await
        .unwrap();
    assert_eq!(retried.token, issued.token);
    let next = grants::use_refresh_token(&fixture.db, &issued.token, request(&fixture.first_app), NOW + 3)
        .await
        .unwrap();
    assert_eq!(next.row.family_id, issued.row.family_id);
    assert_eq!(
        fixture.row(&issued.token).await.replaced_by_hash.as_deref(),
        Some(next.row.token_hash.as_str())
    );
}

#[tokio::test]
async fn rotated_token_with_rotation_off() {
    let fixture = fixture().await;
    let token = fixture.family(&fixture.first_app).await;
    let rotated = grants::use_refresh_token(&fixture.db, &token, request(&fixture.first_app), NOW)
        .await
        .unwrap();
    let without_rotation = RefreshRequest {
        rotate: false,
        ..request(&fixture.first_app)
    };

    // Within the grace window the old token gives its successor, not itself.
    let retried = grants::use_refresh_token(&fixture.db, &token, without_rotation, NOW + 2)
        .await
        .unwrap();
    assert_eq!(retried.token, rotated.token);
    // The successor itself is used as it is, now that rotation is off.
    let unchanged = grants::use_refresh_token(&fixture.db, &rotated.token, without_rotation, NOW + 3)
        .await
        .unwrap();
    assert_eq!(unchanged.token, rotated.token);

    let late = NOW + grants::REFRESH_REUSE_GRACE_SECS + 1;
    let reused = grants::use_refresh_token(&fixture.db, &token, without_rotation, late).await;
    assert!(matches!(reused, Err(GrantError::RefreshReused)));
    let revoked = grants::use_refresh_token(&fixture.db, &rotated.token, without_rotation, late).await;
    assert!(matches!(revoked, Err(GrantError::RefreshRevoked)));
}
