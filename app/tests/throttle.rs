//! The sign-in throttle on a real database, SQLite or PostgreSQL as
//! `LATCH_TEST_BACKEND` names, migrated by the real migrator, with a
//! fixed clock.

#![cfg(feature = "ssr")]

use app::ssr::entities::sign_in_throttle;
use app::ssr::testing::TestDatabase;
use app::ssr::throttle::{
    self, Attempt, Realm, ThrottlePolicy, Verdict, count_failures, prune, record_failure, record_success, wait_before,
};
use app::ssr::{db, passwords};
use sea_orm::{DatabaseConnection, EntityTrait};
use std::net::{IpAddr, Ipv4Addr};

const NOW: i64 = 1_700_000_000;

async fn database() -> (DatabaseConnection, TestDatabase) {
    let database = TestDatabase::create().await;
    (db::connect_and_migrate(&database.url).await.unwrap(), database)
}

fn address(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

fn attempt(login: &str, last: u8) -> Attempt<'_> {
    Attempt {
        realm: Realm::User,
        login,
        address: address(last),
    }
}

async fn row(db: &DatabaseConnection, key: String) -> Option<sign_in_throttle::Model> {
    sign_in_throttle::Entity::find_by_id(key).one(db).await.unwrap()
}

#[tokio::test]
async fn account_blocks_after_allowance() {
    let (db, _guard) = database().await;
    let policy = ThrottlePolicy::default();
    let ada = attempt("ada", 1);

    for failure in 1..=5 {
        record_failure(&db, &policy, &ada, NOW).await.unwrap();
        let wait = wait_before(&db, &policy, &ada, NOW).await.unwrap();
        assert_eq!(wait, None, "failure {failure} is within the allowance");
    }
    record_failure(&db, &policy, &ada, NOW).await.unwrap();
    assert_eq!(wait_before(&db, &policy, &ada, NOW).await.unwrap(), Some(60));
    assert_eq!(wait_before(&db, &policy, &ada, NOW + 45).await.unwrap(), Some(15));
    assert_eq!(wait_before(&db, &policy, &ada, NOW + 60).await.unwrap(), None);

    let stored = row(&db, ada.account_key()).await.expect("the account row exists");
    assert_eq!(stored.failures, 6);
    assert_eq!(stored.last_failure_at, NOW);
    assert_eq!(stored.blocked_until, NOW + 60);
}

#[tokio::test]
async fn delay_doubles_up_to_cap() {
    let (db, _guard) = database().await;
    let policy = ThrottlePolicy::default();
    // A fresh address per failure, so only the account counter blocks.
    let expected = [(6, 60), (7, 120), (8, 240), (9, 480), (10, 900), (11, 900), (30, 900)];
    let mut now = NOW;
    let mut failures = 0;
    for (target, delay) in expected {
        while failures < target {
            failures += 1;
            let ada = attempt("ada", failures as u8);
            record_failure(&db, &policy, &ada, now).await.unwrap();
        }
        let ada = attempt("ada", 200);
        assert_eq!(
            wait_before(&db, &policy, &ada, now).await.unwrap(),
            Some(delay),
            "block after failure {target}"
        );
        // The next failure comes when the block has ended, as it must.
        now += delay;
    }
}

#[tokio::test]
async fn quiet_period_resets_count() {
    let (db, _guard) = database().await;
    let policy = ThrottlePolicy::default();
    let ada = attempt("ada", 1);
    for _ in 0..6 {
        record_failure(&db, &policy, &ada, NOW).await.unwrap();
    }
    let later = NOW + policy.quiet_period_secs() + 1;
    assert_eq!(wait_before(&db, &policy, &ada, later).await.unwrap(), None);

    record_failure(&db, &policy, &ada, later).await.unwrap();
    let stored = row(&db, ada.account_key()).await.unwrap();
    assert_eq!(stored.failures, 1, "the count starts again");
    assert_eq!(stored.blocked_until, 0);
    assert_eq!(wait_before(&db, &policy, &ada, later).await.unwrap(), None);
}

#[tokio::test]
async fn count_continues_within_quiet_period() {
    let (db, _guard) = database().await;
    let policy = ThrottlePolicy::default();
    let ada = attempt("ada", 1);
    for _ in 0..6 {
        record_failure(&db, &policy, &ada, NOW).await.unwrap();
    }
    let later = NOW + policy.quiet_period_secs();
    record_failure(&db, &policy, &ada, later).await.unwrap();
    assert_eq!(row(&db, ada.account_key()).await.unwrap().failures, 7);
    assert_eq!(wait_before(&db, &policy, &ada, later).await.unwrap(), Some(120));
}

#[tokio::test]
async fn address_blocks_across_accounts() {
    let (db, _guard) = database().await;
    let policy = ThrottlePolicy::default();
    let logins: Vec<String> = (0..21).map(|index| format!("guess-{index}")).collect();
    for login in &logins[..20] {
        record_failure(&db, &policy, &attempt(login, 7), NOW).await.unwrap();
    }
    assert_eq!(wait_before(&db, &policy, &attempt("someone", 7), NOW).await.unwrap(), None);

    record_failure(&db, &policy, &attempt(&logins[20], 7), NOW).await.unwrap();
    assert_eq!(wait_before(&db, &policy, &attempt("someone", 7), NOW).await.unwrap(), Some(60));
    assert_eq!(wait_before(&db, &policy, &attempt("someone", 8), NOW).await.unwrap(), None);
    let admin = Attempt {
        realm: Realm::Admin,
        ..attempt("operator", 7)
    };
    assert_eq!(
        wait_before(&db, &policy, &admin, NOW).await.unwrap(),
        None,
        "the console counts its addresses apart"
    );
}

#[tokio::test]
async fn success_clears_account_only() {
    let (db, _guard) = database().await;
    let policy = ThrottlePolicy::default();
    let ada = attempt("Ada", 1);
    for _ in 0..4 {
        record_failure(&db, &policy, &ada, NOW).await.unwrap();
    }
    record_success(&db, &attempt(" ada ", 1), NOW).await.unwrap();
    assert!(row(&db, ada.account_key()).await.is_none(), "the account row is gone");
    let address_row = row(&db, ada.address_key()).await.expect("the address row stays");
    assert_eq!(address_row.failures, 4);
}

#[tokio::test]
async fn realms_count_separately() {
    let (db, _guard) = database().await;
    let policy = ThrottlePolicy::default();
    let admin = Attempt {
        realm: Realm::Admin,
        ..attempt("ada", 1)
    };
    for _ in 0..6 {
        // A fresh address each time is not needed: the address allowance
        // is 20.
        record_failure(&db, &policy, &admin, NOW).await.unwrap();
    }
    assert_eq!(wait_before(&db, &policy, &admin, NOW).await.unwrap(), Some(60));
    assert_eq!(wait_before(&db, &policy, &attempt("ada", 2), NOW).await.unwrap(), None);
}

#[tokio::test]
async fn concurrent_failures_are_all_counted() {
    let (db, _guard) = database().await;
    let policy = ThrottlePolicy::default();
    let tasks: Vec<_> = (0..40u8)
        .map(|index| {
            let db = db.clone();
            tokio::spawn(async move {
                let ada = Attempt {
                    realm: Realm::User,
                    login: "ada",
                    address: address(index),
                };
                record_failure(&db, &policy, &ada, NOW).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let stored = row(&db, attempt("ada", 1).account_key()).await.unwrap();
    assert_eq!(stored.failures, 40);
    assert_eq!(stored.blocked_until, NOW + 900);
}

#[tokio::test]
async fn prune_deletes_quiet_rows_only() {
    let (db, _guard) = database().await;
    let policy = ThrottlePolicy::default();
    let quiet = attempt("old", 1);
    let recent = attempt("new", 2);
    // `count_failures` never prunes, so the count below is exact. With
    // `record_failure`, a random prune could delete these rows first.
    count_failures(&db, &policy, &quiet, NOW).await.unwrap();
    let later = NOW + policy.quiet_period_secs() + 1;
    count_failures(&db, &policy, &recent, later).await.unwrap();

    let deleted = prune(&db, &policy, later).await.unwrap();
    assert_eq!(deleted, 2, "the old account and its address go");
    assert!(row(&db, quiet.account_key()).await.is_none());
    assert!(row(&db, quiet.address_key()).await.is_none());
    assert!(row(&db, recent.account_key()).await.is_some());
    assert!(row(&db, recent.address_key()).await.is_some());
}

#[tokio::test]
async fn verify_password_records_outcomes() {
    let (db, _guard) = database().await;
    let policy = ThrottlePolicy::default();
    let hash = passwords::hash_password("correct horse".into()).await.unwrap();
    let ada = attempt("ada", 1);

    for _ in 0..5 {
        let verdict = throttle::verify_password(&db, &policy, &ada, "wrong".into(), Some(hash.clone()))
            .await
            .unwrap();
        assert_eq!(verdict, Verdict::Rejected);
    }
    assert_eq!(row(&db, ada.account_key()).await.unwrap().failures, 5);
    let verdict = throttle::verify_password(&db, &policy, &ada, "correct horse".into(), Some(hash.clone()))
        .await
        .unwrap();
    assert_eq!(verdict, Verdict::Accepted);
    assert!(row(&db, ada.account_key()).await.is_none());

    let unknown = attempt("nobody", 1);
    for _ in 0..6 {
        let verdict = throttle::verify_password(&db, &policy, &unknown, "correct horse".into(), None)
            .await
            .unwrap();
        assert_eq!(verdict, Verdict::Rejected);
    }
    let verdict = throttle::verify_password(&db, &policy, &unknown, "correct horse".into(), None)
        .await
        .unwrap();
    assert!(
        matches!(verdict, Verdict::Blocked { retry_after_secs } if (1..=60).contains(&retry_after_secs)),
        "an unknown account is blocked like a known one: {verdict:?}"
    );
    // A blocked attempt is not counted.
    assert_eq!(row(&db, unknown.account_key()).await.unwrap().failures, 6);
}
