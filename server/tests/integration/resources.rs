//! Access tokens and the endpoints that accept them: the JWT format, its
//! verification against the published keys, UserInfo, revocation and
//! introspection.

use crate::common::TestServer;
use crate::fixtures::*;
use app::ssr::keys::{self, SigningAlg};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use sea_orm::Set;
use serde_json::{Value, json};

async fn signed_in_with(scope: &str) -> (TestServer, Client, Value) {
    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    let user_id = user(&server).await;
    let spec = CodeSpec {
        scope: scope.into(),
        ..CodeSpec::default()
    };
    let code = code(&server, &client, &user_id, spec).await;
    let (status, tokens) = redeem(&server, &client, &code).await;
    assert_eq!(status, 200, "{tokens}");
    (server, client, tokens)
}

fn access_token_of(tokens: &Value) -> &str {
    tokens["access_token"]
        .as_str()
        .expect("access_token in response")
}

async fn userinfo(server: &TestServer, token: Option<&str>) -> reqwest::Response {
    let mut request = server.http.get(server.url("/oidc/me"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn jwks(server: &TestServer) -> JwkSet {
    server
        .http
        .get(server.url("/oidc/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Verifies `token` against the published key set with jsonwebtoken, as a
/// plugin API would.
async fn verify_with_jwks(server: &TestServer, token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.expect("kid in header");
    let set = jwks(server).await;
    let jwk = set.find(&kid).expect("signing key is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[server.url("/oidc")]);
    validation.set_audience(&[audience]);
    validation.leeway = 60;
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims
}

#[tokio::test]
async fn access_token_is_rfc9068_jwt() {
    let (server, client, tokens) = signed_in_with("openid profile offline_access").await;
    let token = access_token_of(&tokens);
    assert_eq!(header_of(token)["typ"], "at+jwt");
    assert_eq!(header_of(token)["alg"], "ES256");
    let claims = claims_of(token);
    for name in [
        "iss",
        "sub",
        "aud",
        "client_id",
        "scope",
        "iat",
        "exp",
        "jti",
    ] {
        assert!(claims.get(name).is_some(), "claim {name} is missing");
    }
    assert_eq!(claims["iss"], server.url("/oidc"));
    assert_eq!(claims["client_id"], client.id.as_str());
    assert_eq!(claims["scope"], "openid profile offline_access");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
}

#[tokio::test]
async fn access_token_iat_is_now() {
    let before = app::ssr::now();
    let (_, _, tokens) = signed_in_with("openid").await;
    let after = app::ssr::now();
    let iat = claims_of(access_token_of(&tokens))["iat"].as_i64().unwrap();
    assert!(
        iat >= before,
        "iat {iat} is before the request started at {before}"
    );
    assert!(
        iat <= after,
        "iat {iat} is after the response arrived at {after}"
    );
}

#[tokio::test]
async fn audience_defaults_to_client_id() {
    let (server, client, tokens) = signed_in_with("openid").await;
    let claims = verify_with_jwks(&server, access_token_of(&tokens), &client.id).await;
    assert_eq!(claims["aud"], client.id.as_str());
}

#[tokio::test]
async fn configured_audience_is_used() {
    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    let api = "https://api.weather.example";
    update_application(&server, &client.id, |model| {
        model.audience = Set(Some(api.into()))
    })
    .await;
    let user_id = user(&server).await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let (_, tokens) = redeem(&server, &client, &code).await;
    let claims = verify_with_jwks(&server, access_token_of(&tokens), api).await;
    assert_eq!(claims["aud"], api);
    assert_eq!(claims["client_id"], client.id.as_str());
}

#[tokio::test]
async fn rs256_application_signs_with_published_rsa_key() {
    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    update_application(&server, &client.id, |model| {
        model.signing_alg = Set("RS256".into())
    })
    .await;
    let user_id = user(&server).await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let (_, tokens) = redeem(&server, &client, &code).await;
    let token = access_token_of(&tokens);
    assert_eq!(header_of(token)["alg"], "RS256");
    assert_eq!(
        header_of(tokens["id_token"].as_str().unwrap())["alg"],
        "RS256"
    );
    verify_with_jwks(&server, token, &client.id).await;
}

#[tokio::test]
async fn jwks_publishes_every_active_key() {
    let server = TestServer::start().await;
    let response = server
        .http
        .get(server.url("/oidc/jwks"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let keys = body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for key in keys {
        assert!(key["kid"].is_string());
        assert_eq!(key["use"], "sig");
        assert!(key.get("d").is_none(), "a private parameter is published");
        assert!(key.get("p").is_none(), "a private parameter is published");
    }
    let algs: Vec<_> = keys
        .iter()
        .map(|key| key["alg"].as_str().unwrap())
        .collect();
    assert!(algs.contains(&"ES256"));
    assert!(algs.contains(&"RS256"));
}

#[tokio::test]
async fn new_key_is_published_before_it_signs() {
    let (server, client, tokens) = signed_in_with("openid").await;
    let old_token = access_token_of(&tokens).to_owned();
    let old_kid = header_of(&old_token)["kid"].as_str().unwrap().to_owned();
    let now = app::ssr::now();
    let new_kid = keys::add_signing_key(server.db(), &server.state.master_key, SigningAlg::Es256, now)
        .await
        .unwrap();
    assert_ne!(new_kid, old_kid);
    assert!(
        jwks(&server).await.find(&new_kid).is_some(),
        "the new key is published at once"
    );

    let user_id = user(&server).await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let (_, fresh) = redeem(&server, &client, &code).await;
    assert_eq!(
        header_of(access_token_of(&fresh))["kid"],
        old_kid.as_str(),
        "the new key does not sign yet"
    );

    // Once the publication lead has passed, the new key signs and tokens
    // of the old key still verify.
    let later = now + keys::KEY_PUBLICATION_LEAD_SECS;
    let signing = keys::current_signing_key(server.db(), &server.state.master_key, SigningAlg::Es256, later)
        .await
        .unwrap();
    assert_eq!(signing.kid, new_kid);
    verify_with_jwks(&server, &old_token, &client.id).await;
    assert_eq!(userinfo(&server, Some(&old_token)).await.status(), 200);
}

#[tokio::test]
async fn retired_key_is_unpublished_and_rejected() {
    let (server, _, tokens) = signed_in_with("openid").await;
    let token = access_token_of(&tokens);
    let kid = header_of(token)["kid"].as_str().unwrap().to_owned();
    keys::retire_signing_key(server.db(), &kid, app::ssr::now())
        .await
        .unwrap();
    assert!(jwks(&server).await.find(&kid).is_none());
    assert_eq!(userinfo(&server, Some(token)).await.status(), 401);
}

#[tokio::test]
async fn concurrent_first_starts_create_one_key_each() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("fresh.db").display()
    );
    let db = app::ssr::db::connect_and_migrate(&url).await.unwrap();
    let now = app::ssr::now();
    let (master_key, _) = app::ssr::crypto::MasterKey::generate();
    let (first, second, third) = tokio::join!(
        keys::ensure_signing_keys(&db, &master_key, now),
        keys::ensure_signing_keys(&db, &master_key, now),
        keys::ensure_signing_keys(&db, &master_key, now)
    );
    first.unwrap();
    second.unwrap();
    third.unwrap();
    let published = keys::published_jwks(&db).await.unwrap();
    let kids: Vec<_> = published
        .iter()
        .map(|jwk| jwk["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert!(kids.contains(&"es256-1"));
    assert!(kids.contains(&"rs256-1"));

    // Every caller signs with the stored key, whichever insert won.
    let signing = keys::current_signing_key(&db, &master_key, SigningAlg::Es256, now)
        .await
        .unwrap();
    assert_eq!(signing.kid, "es256-1");
}

#[tokio::test]
async fn key_creation_is_idempotent() {
    let server = TestServer::start().await;
    let before = jwks(&server).await.keys.len();
    let (first, second) = tokio::join!(
        keys::ensure_signing_keys(server.db(), &server.state.master_key, app::ssr::now()),
        keys::ensure_signing_keys(server.db(), &server.state.master_key, app::ssr::now())
    );
    first.unwrap();
    second.unwrap();
    assert_eq!(jwks(&server).await.keys.len(), before);
}

#[tokio::test]
async fn id_token_claims_follow_scope() {
    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    let user_id = user(&server).await;
    let with_nonce = CodeSpec {
        scope: "openid email".into(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        ..CodeSpec::default()
    };
    let auth_time = with_nonce.issued_at - 5;
    let code_with_nonce = code(&server, &client, &user_id, with_nonce).await;
    let (_, tokens) = redeem(&server, &client, &code_with_nonce).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    assert_eq!(header_of(id_token)["typ"], "JWT");
    let claims = claims_of(id_token);
    assert_eq!(claims["iss"], server.url("/oidc"));
    assert_eq!(claims["sub"], user_id.as_str());
    assert_eq!(claims["aud"], client.id.as_str());
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["auth_time"], auth_time);
    assert!(claims["email"].is_string());
    assert!(claims.get("name").is_none(), "profile was not granted");
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());

    let without_nonce = CodeSpec {
        scope: "openid profile".into(),
        ..CodeSpec::default()
    };
    let code_without_nonce = code(&server, &client, &user_id, without_nonce).await;
    let (_, tokens) = redeem(&server, &client, &code_without_nonce).await;
    let claims = claims_of(tokens["id_token"].as_str().unwrap());
    assert!(claims.get("nonce").is_none());
    assert_eq!(claims["name"], "Ada Lovelace");
    assert!(claims.get("email").is_none(), "email was not granted");
}

#[tokio::test]
async fn no_id_token_without_openid() {
    let (_, _, tokens) = signed_in_with("profile offline_access").await;
    assert!(tokens.get("id_token").is_none());
    assert!(tokens["access_token"].is_string());
}

#[tokio::test]
async fn userinfo_without_token_is_401() {
    let server = TestServer::start().await;
    let response = userinfo(&server, None).await;
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"));
}

#[tokio::test]
async fn userinfo_with_bad_token_is_invalid_token() {
    let (server, client, tokens) = signed_in_with("openid profile").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    // Flip the first character of the signature, which carries six full
    // bits of it.
    let access = access_token_of(&tokens);
    let signature_start = access.rfind('.').unwrap() + 1;
    let flipped = if &access[signature_start..=signature_start] == "A" {
        "B"
    } else {
        "A"
    };
    let tampered = format!(
        "{}{flipped}{}",
        &access[..signature_start],
        &access[signature_start + 1..]
    );

    // An expired token signed with the server's own key.
    let key = keys::current_signing_key(server.db(), &server.state.master_key, SigningAlg::Es256, app::ssr::now())
        .await
        .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(key.kid.clone());
    let now = app::ssr::now();
    let claims = json!({
        "iss": server.url("/oidc"), "sub": "someone", "aud": client.id, "client_id": client.id,
        "scope": "openid", "iat": now - 7200, "exp": now - 3600, "jti": "expired",
    });
    let expired = key.sign_jwt(&header, &claims).unwrap();

    for token in ["garbage", id_token, tampered.as_str(), expired.as_str()] {
        let response = userinfo(&server, Some(token)).await;
        assert_eq!(response.status(), 401);
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    }
}

#[tokio::test]
async fn userinfo_without_openid_is_403() {
    let (server, _, tokens) = signed_in_with("profile offline_access").await;
    let response = userinfo(&server, Some(access_token_of(&tokens))).await;
    assert_eq!(response.status(), 403);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"insufficient_scope\""));
}

#[tokio::test]
async fn userinfo_returns_granted_claims() {
    let (server, _, tokens) = signed_in_with("openid profile").await;
    let sub = claims_of(access_token_of(&tokens))["sub"].clone();
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let response = server
            .http
            .request(method.clone(), server.url("/oidc/me"))
            .bearer_auth(access_token_of(&tokens))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{method}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["sub"], sub);
        assert_eq!(body["name"], "Ada Lovelace");
        assert!(body["preferred_username"].is_string());
        assert!(body.get("email").is_none(), "email was not granted");
    }
}

#[tokio::test]
async fn revoking_unknown_token_is_200() {
    let (server, client, _) = signed_in_with("openid offline_access").await;
    let before = stored(&server).await;
    let params = [
        ("token", "never-issued"),
        ("client_id", client.id.as_str()),
        ("client_secret", client.secret()),
    ];
    let response = post_form(&server, "/oidc/token/revocation", &params, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(stored(&server).await, before);
}

#[tokio::test]
async fn revocation_requires_client_auth() {
    let (server, _, tokens) = signed_in_with("openid offline_access").await;
    let before = stored(&server).await;
    let token = tokens["refresh_token"].as_str().unwrap();
    let response = post_form(&server, "/oidc/token/revocation", &[("token", token)], None).await;
    assert_eq!(response.status(), 401);
    assert_eq!(stored(&server).await, before);
}

#[tokio::test]
async fn revoking_refresh_token_ends_grant() {
    let (server, client, tokens) = signed_in_with("openid offline_access").await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let params = [
        ("token", refresh_token),
        ("token_type_hint", "refresh_token"),
        ("client_id", client.id.as_str()),
        ("client_secret", client.secret()),
    ];
    let response = post_form(&server, "/oidc/token/revocation", &params, None).await;
    assert_eq!(response.status(), 200);

    let (status, answer) = refresh(&server, &client, refresh_token).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"], "invalid_grant");
    assert_eq!(
        userinfo(&server, Some(access_token_of(&tokens)))
            .await
            .status(),
        401
    );

    let response = post_form(&server, "/oidc/token/revocation", &params, None).await;
    assert_eq!(response.status(), 200, "revoking twice is still 200");
}

#[tokio::test]
async fn revoking_token_of_other_client_changes_nothing() {
    let (server, _, tokens) = signed_in_with("openid offline_access").await;
    let other = confidential_client(&server).await;
    let before = stored(&server).await;
    let params = [
        ("token", tokens["refresh_token"].as_str().unwrap()),
        ("client_id", other.id.as_str()),
        ("client_secret", other.secret()),
    ];
    assert_eq!(
        post_form(&server, "/oidc/token/revocation", &params, None)
            .await
            .status(),
        200
    );
    assert_eq!(stored(&server).await, before);
}

#[tokio::test]
async fn introspection_requires_client_auth() {
    let (server, _, tokens) = signed_in_with("openid offline_access").await;
    let response = post_form(
        &server,
        "/oidc/token/introspection",
        &[("token", access_token_of(&tokens))],
        None,
    )
    .await;
    assert_eq!(response.status(), 401);
    let (_, body) = status_and_json(response).await;
    assert_eq!(body["error"], "invalid_client");
    assert!(body.get("active").is_none());
}

#[tokio::test]
async fn introspection_describes_tokens() {
    let (server, client, tokens) = signed_in_with("openid offline_access").await;
    let header = basic_header(&client.id, client.secret());
    let access = access_token_of(&tokens);
    let (status, body) = status_and_json(
        post_form(
            &server,
            "/oidc/token/introspection",
            &[("token", access)],
            Some(&header),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "access_token");
    assert_eq!(body["client_id"], client.id.as_str());

    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let (_, body) = status_and_json(
        post_form(
            &server,
            "/oidc/token/introspection",
            &[("token", refresh_token)],
            Some(&header),
        )
        .await,
    )
    .await;
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "refresh_token");

    let (_, body) = status_and_json(
        post_form(
            &server,
            "/oidc/token/introspection",
            &[("token", "garbage")],
            Some(&header),
        )
        .await,
    )
    .await;
    assert_eq!(body, json!({"active": false}));

    let other = confidential_client(&server).await;
    let other_header = basic_header(&other.id, other.secret());
    let (_, body) = status_and_json(
        post_form(
            &server,
            "/oidc/token/introspection",
            &[("token", access)],
            Some(&other_header),
        )
        .await,
    )
    .await;
    assert_eq!(
        body,
        json!({"active": false}),
        "another client learns nothing"
    );
}
