//! The token endpoint: body encodings, client authentication, codes and
//! PKCE. Every rejected request is also checked to leave the stored codes
//! and refresh tokens as they were.

use crate::common::TestServer;
use crate::fixtures::*;
use serde_json::json;

async fn setup() -> (TestServer, Client, String) {
    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    let user_id = user(&server).await;
    (server, client, user_id)
}

fn code_params<'a>(code: &'a str, client: &'a Client) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("client_id", &client.id),
        ("client_secret", client.secret()),
    ]
}

/// Sends `params`, expects a 400 or 401 with `error`, and checks that
/// nothing stored changed.
async fn assert_rejected(
    server: &TestServer,
    params: &[(&str, &str)],
    basic: Option<&str>,
    status: u16,
    error: &str,
) {
    let before = stored(server).await;
    let response = post_form(server, "/oidc/token", params, basic).await;
    let (actual_status, body) = status_and_json(response).await;
    assert_eq!(actual_status, status, "body: {body}");
    assert_eq!(body["error"], error);
    assert_eq!(
        stored(server).await,
        before,
        "a rejected request changed stored grants"
    );
}

#[tokio::test]
async fn form_body_returns_tokens_without_caching() {
    let (server, client, user_id) = setup().await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let response = post_form(&server, "/oidc/token", &code_params(&code, &client), None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let (_, body) = status_and_json(response).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "openid profile email offline_access");
    assert!(body["access_token"].is_string());
    assert!(body["refresh_token"].is_string());
    assert!(body["id_token"].is_string());
}

#[tokio::test]
async fn json_body_answers_like_form() {
    let (server, client, user_id) = setup().await;
    let form_code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let (_, form_body) = redeem(&server, &client, &form_code).await;

    for content_type in ["application/json", "application/json; charset=utf-8"] {
        let code = code(&server, &client, &user_id, CodeSpec::default()).await;
        let body = json!({
            "grant_type": "authorization_code",
            "client_id": client.id,
            "client_secret": client.secret(),
            "code": code,
            "redirect_uri": CALLBACK,
        });
        let (status, json_body) =
            status_and_json(post_json(&server, "/oidc/token", &body, content_type).await).await;
        assert_eq!(status, 200, "{content_type}: {json_body}");
        let mut form_keys: Vec<_> = form_body.as_object().unwrap().keys().collect();
        let mut json_keys: Vec<_> = json_body.as_object().unwrap().keys().collect();
        form_keys.sort();
        json_keys.sort();
        assert_eq!(form_keys, json_keys);
        assert_eq!(json_body["scope"], form_body["scope"]);
    }
}

#[tokio::test]
async fn json_refresh_request_succeeds() {
    let (server, client, user_id) = setup().await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let (_, tokens) = redeem(&server, &client, &code).await;
    let body = json!({
        "grant_type": "refresh_token",
        "client_id": client.id,
        "client_secret": client.secret(),
        "refresh_token": tokens["refresh_token"],
    });
    let (status, answer) =
        status_and_json(post_json(&server, "/oidc/token", &body, "application/json").await).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["refresh_token"].is_string());
}

#[tokio::test]
async fn json_nested_value_is_invalid_request() {
    let (server, client, user_id) = setup().await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let before = stored(&server).await;
    let bodies = [
        json!({"grant_type": "authorization_code", "client_id": client.id, "client_secret": client.secret(),
               "code": {"value": code}, "redirect_uri": CALLBACK}),
        json!({"grant_type": ["authorization_code"], "client_id": client.id, "client_secret": client.secret(),
               "code": code, "redirect_uri": CALLBACK}),
        json!(["authorization_code"]),
    ];
    for body in bodies {
        let (status, answer) =
            status_and_json(post_json(&server, "/oidc/token", &body, "application/json").await)
                .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["error"], "invalid_request");
    }
    assert_eq!(stored(&server).await, before);
}

#[tokio::test]
async fn get_is_method_not_allowed() {
    let (server, client, user_id) = setup().await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let before = stored(&server).await;
    let url = format!(
        "{}?grant_type=authorization_code&code={code}&client_id={}&client_secret={}",
        server.url("/oidc/token"),
        client.id,
        client.secret()
    );
    let response = server.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let text = response.text().await.unwrap();
    assert!(!text.contains("access_token"));
    assert_eq!(stored(&server).await, before);
}

#[tokio::test]
async fn missing_content_type_is_invalid_request() {
    let (server, client, user_id) = setup().await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let before = stored(&server).await;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(code_params(&code, &client))
        .finish();
    let response = server
        .http
        .post(server.url("/oidc/token"))
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, answer) = status_and_json(response).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"], "invalid_request");
    assert_eq!(stored(&server).await, before);
}

#[tokio::test]
async fn oversized_body_is_rejected() {
    let (server, client, user_id) = setup().await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let padding = "a".repeat(70 * 1024);
    let mut params = code_params(&code, &client);
    params.push(("padding", &padding));
    let before = stored(&server).await;
    let response = post_form(&server, "/oidc/token", &params, None).await;
    assert_eq!(response.status(), 413);
    assert_eq!(stored(&server).await, before);
    // The code is still usable: the oversized request never reached it.
    assert_eq!(redeem(&server, &client, &code).await.0, 200);
}

#[tokio::test]
async fn empty_parameter_counts_as_omitted() {
    let (server, client, user_id) = setup().await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let mut params = code_params(&code, &client);
    params.push(("code_verifier", ""));
    params.push(("scope", ""));
    let (status, body) =
        status_and_json(post_form(&server, "/oidc/token", &params, None).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "openid profile email offline_access");
}

#[tokio::test]
async fn missing_grant_type_is_invalid_request() {
    let (server, client, user_id) = setup().await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let params: Vec<_> = code_params(&code, &client)
        .into_iter()
        .filter(|(name, _)| *name != "grant_type")
        .collect();
    assert_rejected(&server, &params, None, 400, "invalid_request").await;
}

#[tokio::test]
async fn password_grant_is_unsupported() {
    let (server, client, _) = setup().await;
    let params = [
        ("grant_type", "password"),
        ("username", "ada"),
        ("password", "secret"),
        ("client_id", &client.id),
        ("client_secret", client.secret()),
    ];
    assert_rejected(&server, &params, None, 400, "unsupported_grant_type").await;
}

#[tokio::test]
async fn repeated_parameter_is_invalid_request() {
    let (server, client, user_id) = setup().await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let mut params = code_params(&code, &client);
    params.push(("code", &code));
    assert_rejected(&server, &params, None, 400, "invalid_request").await;
}

#[tokio::test]
async fn secret_in_body_authenticates() {
    let (server, client, user_id) = setup().await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    assert_eq!(redeem(&server, &client, &code).await.0, 200);
}

#[tokio::test]
async fn basic_secret_is_form_decoded() {
    let (server, client, user_id) = setup().await;
    let secret = "s/e=c?r+e:t %";
    add_secret(&server, &client.id, secret).await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let header = basic_header(&client.id, secret);
    assert!(header.len() > 6);
    let params = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", CALLBACK),
    ];
    let (status, body) =
        status_and_json(post_form(&server, "/oidc/token", &params, Some(&header)).await).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn basic_header_with_encoded_reserved_characters() {
    let (server, client, user_id) = setup().await;
    add_secret(&server, &client.id, "s/e=c?r+e:t").await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let encoded = format!("{}:s%2Fe%3Dc%3Fr%2Be%3At", client.id);
    let header = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, encoded)
    );
    let params = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", CALLBACK),
    ];
    let (status, body) =
        status_and_json(post_form(&server, "/oidc/token", &params, Some(&header)).await).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn basic_plus_decodes_to_space() {
    let (server, client, user_id) = setup().await;
    add_secret(&server, &client.id, "two words").await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let header = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:two+words", client.id)
        )
    );
    let params = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", CALLBACK),
    ];
    let (status, body) =
        status_and_json(post_form(&server, "/oidc/token", &params, Some(&header)).await).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn basic_accepted_for_default_client() {
    let (server, client, user_id) = setup().await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let header = basic_header(&client.id, client.secret());
    let params = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", CALLBACK),
        ("client_id", &client.id),
    ];
    let (status, body) =
        status_and_json(post_form(&server, "/oidc/token", &params, Some(&header)).await).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn basic_and_body_secret_is_invalid_request() {
    let (server, client, user_id) = setup().await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let header = basic_header(&client.id, client.secret());
    assert_rejected(
        &server,
        &code_params(&code, &client),
        Some(&header),
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn wrong_secret_and_unknown_client_look_alike() {
    let (server, client, user_id) = setup().await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let before = stored(&server).await;

    let wrong = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("client_id", client.id.as_str()),
        ("client_secret", "wrong-secret"),
    ];
    let unknown = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("client_id", "unknownclient000000000"),
        ("client_secret", "wrong-secret"),
    ];
    let wrong_response = post_form(&server, "/oidc/token", &wrong, None).await;
    assert!(wrong_response.headers().get("www-authenticate").is_none());
    let wrong_answer = status_and_json(wrong_response).await;
    let unknown_answer =
        status_and_json(post_form(&server, "/oidc/token", &unknown, None).await).await;
    assert_eq!(wrong_answer.0, 401);
    assert_eq!(wrong_answer.1["error"], "invalid_client");
    assert_eq!(wrong_answer, unknown_answer);

    let params = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
    ];
    let wrong_basic = post_form(
        &server,
        "/oidc/token",
        &params,
        Some(&basic_header(&client.id, "nope")),
    )
    .await;
    let unknown_basic = post_form(
        &server,
        "/oidc/token",
        &params,
        Some(&basic_header("nobody", "nope")),
    )
    .await;
    for response in [wrong_basic, unknown_basic] {
        assert_eq!(response.status(), 401);
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        assert_eq!(status_and_json(response).await.1, wrong_answer.1);
    }
    assert_eq!(stored(&server).await, before);
}

#[tokio::test]
async fn public_client_sending_secret_is_rejected() {
    let server = TestServer::start().await;
    let client = public_client(&server).await;
    let user_id = user(&server).await;
    let spec = CodeSpec {
        redirect_uri: NATIVE_CALLBACK.into(),
        challenge: Some(CHALLENGE.into()),
        ..CodeSpec::default()
    };
    let code = code(&server, &client, &user_id, spec).await;
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", NATIVE_CALLBACK),
        ("code_verifier", VERIFIER),
        ("client_id", client.id.as_str()),
        ("client_secret", "invented"),
    ];
    assert_rejected(&server, &params, None, 401, "invalid_client").await;
}

#[tokio::test]
async fn expired_secret_is_rejected_and_live_one_accepted() {
    let (server, client, user_id) = setup().await;
    add_secret(&server, &client.id, "second-live-secret").await;
    add_secret_row(&server, &client.id, "expired-secret", Some(app::ssr::now() - 10)).await;

    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let mut params = code_params(&code, &client);
    params[4] = ("client_secret", "expired-secret");
    assert_rejected(&server, &params, None, 401, "invalid_client").await;

    params[4] = ("client_secret", "second-live-secret");
    let (status, _) = status_and_json(post_form(&server, "/oidc/token", &params, None).await).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn second_redemption_fails_and_revokes_tokens() {
    let (server, client, user_id) = setup().await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let (status, first) = redeem(&server, &client, &code).await;
    assert_eq!(status, 200);

    let (status, second) = redeem(&server, &client, &code).await;
    assert_eq!(status, 400);
    assert_eq!(second["error"], "invalid_grant");

    let refresh_token = first["refresh_token"].as_str().unwrap();
    let (status, answer) = refresh(&server, &client, refresh_token).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"], "invalid_grant");
    let userinfo = server
        .http
        .get(server.url("/oidc/me"))
        .bearer_auth(first["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 401);
}

#[tokio::test]
async fn second_redemption_revokes_access_token_without_refresh_token() {
    let (server, client, user_id) = setup().await;
    let (code, first) = redeemed_without_refresh(&server, &client, &user_id).await;
    let access_token = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(&server, access_token).await, 200);

    let (status, second) = redeem(&server, &client, &code).await;
    assert_eq!(status, 400);
    assert_eq!(second["error"], "invalid_grant");
    assert_eq!(userinfo_status(&server, access_token).await, 401);
}

#[tokio::test]
async fn revoking_access_token_without_refresh_token_ends_it() {
    let (server, client, user_id) = setup().await;
    let (_, tokens) = redeemed_without_refresh(&server, &client, &user_id).await;
    let access_token = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(&server, access_token).await, 200);

    let params = [
        ("token", access_token),
        ("client_id", client.id.as_str()),
        ("client_secret", client.secret()),
    ];
    let response = post_form(&server, "/oidc/token/revocation", &params, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(userinfo_status(&server, access_token).await, 401);
}

#[tokio::test]
async fn expired_code_is_rejected() {
    let (server, client, user_id) = setup().await;
    let spec = CodeSpec {
        issued_at: app::ssr::now() - 61,
        ..CodeSpec::default()
    };
    let code = code(&server, &client, &user_id, spec).await;
    assert_rejected(
        &server,
        &code_params(&code, &client),
        None,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn unknown_code_is_rejected() {
    let (server, client, _) = setup().await;
    assert_rejected(
        &server,
        &code_params("no-such-code", &client),
        None,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn code_of_another_client_is_rejected() {
    let (server, client, user_id) = setup().await;
    let other = confidential_client(&server).await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    assert_rejected(
        &server,
        &code_params(&code, &other),
        None,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(redeem(&server, &client, &code).await.0, 200);
}

#[tokio::test]
async fn redirect_uri_mismatch_is_invalid_grant() {
    let (server, client, user_id) = setup().await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let other_uri = format!("{CALLBACK}/");
    for uri in [
        other_uri.as_str(),
        "https://chatgpt.com/aip/plugin-8f7e/oauth/callback",
    ] {
        let mut params = code_params(&code, &client);
        params[2] = ("redirect_uri", uri);
        assert_rejected(&server, &params, None, 400, "invalid_grant").await;
    }
    let params: Vec<_> = code_params(&code, &client)
        .into_iter()
        .filter(|(name, _)| *name != "redirect_uri")
        .collect();
    assert_rejected(&server, &params, None, 400, "invalid_grant").await;
}

#[tokio::test]
async fn challenge_without_verifier_is_invalid_grant() {
    let (server, client, user_id) = setup().await;
    let spec = CodeSpec {
        challenge: Some(CHALLENGE.into()),
        ..CodeSpec::default()
    };
    let code = code(&server, &client, &user_id, spec).await;
    assert_rejected(
        &server,
        &code_params(&code, &client),
        None,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn wrong_verifier_is_invalid_grant() {
    let (server, client, user_id) = setup().await;
    let spec = CodeSpec {
        challenge: Some(CHALLENGE.into()),
        ..CodeSpec::default()
    };
    let code = code(&server, &client, &user_id, spec).await;
    let wrong = "x".repeat(43);
    let mut params = code_params(&code, &client);
    params.push(("code_verifier", &wrong));
    assert_rejected(&server, &params, None, 400, "invalid_grant").await;

    let mut params = code_params(&code, &client);
    params.push(("code_verifier", VERIFIER));
    let (status, _) = status_and_json(post_form(&server, "/oidc/token", &params, None).await).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn verifier_without_challenge_is_invalid_grant() {
    let (server, client, user_id) = setup().await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let mut params = code_params(&code, &client);
    params.push(("code_verifier", VERIFIER));
    assert_rejected(&server, &params, None, 400, "invalid_grant").await;
}

#[tokio::test]
async fn confidential_client_may_skip_pkce() {
    let (server, client, user_id) = setup().await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let (status, body) = redeem(&server, &client, &code).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn public_client_must_use_pkce() {
    let server = TestServer::start().await;
    let client = public_client(&server).await;
    let user_id = user(&server).await;
    let without_pkce = CodeSpec {
        redirect_uri: NATIVE_CALLBACK.into(),
        ..CodeSpec::default()
    };
    let code_without = code(&server, &client, &user_id, without_pkce.clone()).await;
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code_without.as_str()),
        ("redirect_uri", NATIVE_CALLBACK),
        ("client_id", client.id.as_str()),
    ];
    assert_rejected(&server, &params, None, 400, "invalid_grant").await;

    let verifier = "a-verifier-of-the-native-app-that-is-long-enough-0123";
    let challenge = challenge_of(verifier);
    let with_pkce = CodeSpec {
        challenge: Some(challenge),
        ..without_pkce
    };
    let code_with = code(&server, &client, &user_id, with_pkce).await;
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code_with.as_str()),
        ("redirect_uri", NATIVE_CALLBACK),
        ("code_verifier", verifier),
        ("client_id", client.id.as_str()),
    ];
    let (status, body) =
        status_and_json(post_form(&server, "/oidc/token", &params, None).await).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["refresh_token"].is_string());
}

#[tokio::test]
async fn no_refresh_token_when_code_disallows() {
    let (server, client, user_id) = setup().await;
    let spec = CodeSpec {
        refresh: false,
        ..CodeSpec::default()
    };
    let code = code(&server, &client, &user_id, spec).await;
    let (status, body) = redeem(&server, &client, &code).await;
    assert_eq!(status, 200);
    assert!(body.get("refresh_token").is_none());
    let after = stored(&server).await;
    assert!(after.refresh_tokens.is_empty());
    assert!(after.refresh_token_families.is_empty());
}

#[tokio::test]
async fn concurrent_redemptions_succeed_once() {
    let (server, client, user_id) = setup().await;
    let code = code(&server, &client, &user_id, CodeSpec::default()).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let http = server.http.clone();
        let url = server.url("/oidc/token");
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(code_params(&code, &client))
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
    let mut statuses = Vec::new();
    while let Some(result) = tasks.join_next().await {
        let (status, body) = result.unwrap();
        if status != 200 {
            assert_eq!(status, 400, "{body}");
            assert_eq!(body["error"], "invalid_grant");
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses.iter().filter(|status| **status == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses.len(), 20);
}
