//! The refresh token grant: rotation, the retry grace window, reuse
//! detection and concurrent refreshes of one token.

use crate::common::TestServer;
use crate::fixtures::*;
use app::ssr::entities::{refresh_token, refresh_token_family};
use app::ssr::grants::REFRESH_REUSE_GRACE_SECS;
use app::ssr::grants::refresh_token_key;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::Value;

/// Starts a server and returns it with a client and the first token pair.
async fn signed_in() -> (TestServer, Client, Value) {
    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    let user_id = user(&server).await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let (status, tokens) = redeem(&server, &client, &code).await;
    assert_eq!(status, 200, "{tokens}");
    (server, client, tokens)
}

fn refresh_token_of(tokens: &Value) -> String {
    tokens["refresh_token"]
        .as_str()
        .expect("refresh_token in response")
        .to_owned()
}

/// Moves the rotation time of a token back past the grace window.
async fn age_rotation(server: &TestServer, token: &str) {
    let past = app::ssr::now() - REFRESH_REUSE_GRACE_SECS - 60;
    refresh_token::Entity::update(refresh_token::ActiveModel {
        token_hash: Set(refresh_token_key(token)),
        rotated_at: Set(Some(past)),
        ..Default::default()
    })
    .exec(server.db())
    .await
    .expect("rotation time changed");
}

/// Tokens that are neither rotated nor revoked, on their own or through
/// their family.
async fn live_rows(server: &TestServer) -> Vec<refresh_token::Model> {
    let revoked_families: std::collections::HashSet<String> = refresh_token_family::Entity::find()
        .filter(refresh_token_family::Column::RevokedAt.is_not_null())
        .all(server.db())
        .await
        .unwrap()
        .into_iter()
        .map(|family| family.family_id)
        .collect();
    refresh_token::Entity::find()
        .filter(refresh_token::Column::RevokedAt.is_null())
        .filter(refresh_token::Column::RotatedAt.is_null())
        .all(server.db())
        .await
        .unwrap()
        .into_iter()
        .filter(|row| !revoked_families.contains(&row.family_id))
        .collect()
}

#[tokio::test]
async fn refresh_rotates_the_token() {
    let (server, client, tokens) = signed_in().await;
    let old = refresh_token_of(&tokens);
    let (status, renewed) = refresh(&server, &client, &old).await;
    assert_eq!(status, 200, "{renewed}");
    let new = refresh_token_of(&renewed);
    assert_ne!(new, old);
    assert_eq!(renewed["token_type"], "Bearer");
    assert_eq!(renewed["scope"], "openid profile email offline_access");

    // Past the grace window the old token is refused.
    age_rotation(&server, &old).await;
    let (status, answer) = refresh(&server, &client, &old).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"], "invalid_grant");
}

#[tokio::test]
async fn retry_within_grace_returns_same_token() {
    let (server, client, tokens) = signed_in().await;
    let old = refresh_token_of(&tokens);
    let (_, first) = refresh(&server, &client, &old).await;
    let (status, retry) = refresh(&server, &client, &old).await;
    assert_eq!(status, 200, "{retry}");
    assert_eq!(retry["refresh_token"], first["refresh_token"]);
    assert_eq!(
        claims_of(retry["access_token"].as_str().unwrap()),
        claims_of(first["access_token"].as_str().unwrap())
    );
    assert_eq!(live_rows(&server).await.len(), 1);
}

#[tokio::test]
async fn replay_after_successor_used_revokes_family() {
    let (server, client, tokens) = signed_in().await;
    let old = refresh_token_of(&tokens);
    let (_, renewed) = refresh(&server, &client, &old).await;
    let successor = refresh_token_of(&renewed);
    let (status, newest) = refresh(&server, &client, &successor).await;
    assert_eq!(status, 200, "{newest}");

    // Still inside the grace window, but the client has already used the
    // successor, so the old token can only be a replay.
    let (status, answer) = refresh(&server, &client, &old).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "invalid_grant");
    let (status, answer) = refresh(&server, &client, &refresh_token_of(&newest)).await;
    assert_eq!(status, 400, "the family dies with the replay: {answer}");
    assert!(live_rows(&server).await.is_empty());
}

#[tokio::test]
async fn reuse_after_grace_revokes_family() {
    let (server, client, tokens) = signed_in().await;
    let old = refresh_token_of(&tokens);
    let (_, renewed) = refresh(&server, &client, &old).await;
    let successor = refresh_token_of(&renewed);
    age_rotation(&server, &old).await;

    let (status, answer) = refresh(&server, &client, &old).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"], "invalid_grant");

    // The sibling issued by the rotation dies with the family.
    let (status, answer) = refresh(&server, &client, &successor).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"], "invalid_grant");
    assert!(live_rows(&server).await.is_empty());
    let families = refresh_token_family::Entity::find()
        .all(server.db())
        .await
        .unwrap();
    assert_eq!(families.len(), 1);
    assert!(families[0].revoked_at.is_some(), "the family is revoked");

    let userinfo = server
        .http
        .get(server.url("/oidc/me"))
        .bearer_auth(renewed["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 401);
}

#[tokio::test]
async fn concurrent_refreshes_yield_one_pair() {
    let (server, client, tokens) = signed_in().await;
    let old = refresh_token_of(&tokens);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let http = server.http.clone();
        let url = server.url("/oidc/token");
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("grant_type", "refresh_token"),
                ("refresh_token", old.as_str()),
                ("client_id", client.id.as_str()),
                ("client_secret", client.secret()),
            ])
            .finish();
        tasks.spawn(async move {
            let response = http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            status_and_json(response).await
        });
    }
    let mut new_tokens = Vec::new();
    while let Some(result) = tasks.join_next().await {
        let (status, body) = result.unwrap();
        assert!(status == 200 || status == 400, "status {status}: {body}");
        if status == 200 {
            new_tokens.push(refresh_token_of(&body));
        } else {
            assert_eq!(body["error"], "invalid_grant");
        }
    }
    assert!(!new_tokens.is_empty());
    new_tokens.dedup();
    assert_eq!(
        new_tokens.len(),
        1,
        "every successful refresh returns the same new token"
    );

    let live = live_rows(&server).await;
    assert_eq!(live.len(), 1, "exactly one live token remains");
    assert_eq!(live[0].token_hash, refresh_token_key(&new_tokens[0]));
    let families: std::collections::HashSet<_> = refresh_token::Entity::find()
        .all(server.db())
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.family_id)
        .collect();
    assert_eq!(families.len(), 1);
}

#[tokio::test]
async fn paired_refreshes_repeated_fifty_times() {
    let (server, client, tokens) = signed_in().await;
    let mut current = refresh_token_of(&tokens);
    for round in 0..50 {
        let (first, second) = tokio::join!(
            refresh(&server, &client, &current),
            refresh(&server, &client, &current)
        );
        let successes: Vec<_> = [&first, &second]
            .into_iter()
            .filter(|(status, _)| *status == 200)
            .map(|(_, body)| refresh_token_of(body))
            .collect();
        for (status, body) in [&first, &second] {
            assert!(
                *status == 200 || *status == 400,
                "round {round}: {status} {body}"
            );
        }
        assert!(!successes.is_empty(), "round {round}: no refresh succeeded");
        assert!(
            successes.iter().all(|token| *token == successes[0]),
            "round {round}: two different pairs"
        );
        assert_eq!(live_rows(&server).await.len(), 1, "round {round}");
        current = successes[0].clone();
    }
}

#[tokio::test]
async fn refresh_without_rotation_returns_same_token() {
    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    update_application(&server, &client.id, |model| {
        model.rotate_refresh_token = Set(false)
    })
    .await;
    let user_id = user(&server).await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let (_, tokens) = redeem(&server, &client, &code).await;
    let token = refresh_token_of(&tokens);

    for _ in 0..2 {
        let (status, renewed) = refresh(&server, &client, &token).await;
        assert_eq!(status, 200, "{renewed}");
        assert_eq!(renewed["refresh_token"], token.as_str());
        assert!(renewed["access_token"].is_string());
    }
}

#[tokio::test]
async fn refresh_of_another_client_is_rejected() {
    let (server, _, tokens) = signed_in().await;
    let other = confidential_client(&server).await;
    let before = stored(&server).await;
    let (status, answer) = refresh(&server, &other, &refresh_token_of(&tokens)).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"], "invalid_grant");
    assert_eq!(stored(&server).await, before);
}

#[tokio::test]
async fn expired_refresh_token_is_rejected() {
    let (server, client, tokens) = signed_in().await;
    let token = refresh_token_of(&tokens);
    refresh_token::Entity::update(refresh_token::ActiveModel {
        token_hash: Set(refresh_token_key(&token)),
        expires_at: Set(app::ssr::now() - 1),
        ..Default::default()
    })
    .exec(server.db())
    .await
    .unwrap();
    let before = stored(&server).await;
    let (status, answer) = refresh(&server, &client, &token).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"], "invalid_grant");
    assert_eq!(stored(&server).await, before);
}

#[tokio::test]
async fn wider_scope_on_refresh_is_rejected() {
    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    let user_id = user(&server).await;
    let spec = CodeSpec {
        scope: "openid offline_access".into(),
        ..CodeSpec::default()
    };
    let code = code(&server, &client, &user_id, spec).await;
    let (_, tokens) = redeem(&server, &client, &code).await;
    let token = refresh_token_of(&tokens);
    let before = stored(&server).await;
    let params = [
        ("grant_type", "refresh_token"),
        ("refresh_token", token.as_str()),
        ("scope", "openid email"),
        ("client_id", client.id.as_str()),
        ("client_secret", client.secret()),
    ];
    let (status, answer) =
        status_and_json(post_form(&server, "/oidc/token", &params, None).await).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"], "invalid_scope");
    assert_eq!(stored(&server).await, before);

    let narrower = [
        ("grant_type", "refresh_token"),
        ("refresh_token", token.as_str()),
        ("scope", "openid"),
        ("client_id", client.id.as_str()),
        ("client_secret", client.secret()),
    ];
    let (status, answer) =
        status_and_json(post_form(&server, "/oidc/token", &narrower, None).await).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["scope"], "openid");
}

#[tokio::test]
async fn refreshed_token_keeps_lifetime_setting() {
    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    update_application(&server, &client.id, |model| {
        model.refresh_token_ttl_days = Set(3)
    })
    .await;
    let user_id = user(&server).await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let (_, tokens) = redeem(&server, &client, &code).await;
    let row = refresh_token::Entity::find_by_id(refresh_token_key(&refresh_token_of(&tokens)))
        .one(server.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.expires_at - row.created_at, 3 * 86_400);
    assert!(row.code_hash.is_some());
    assert_ne!(
        row.token_hash,
        refresh_token_of(&tokens),
        "only the hash is stored"
    );
}
