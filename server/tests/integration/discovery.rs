//! The metadata documents and CORS on the endpoints that browser clients
//! call directly.

use crate::common::TestServer;
use serde_json::Value;

async fn get_json(server: &TestServer, path: &str) -> Value {
    let response = server.http.get(server.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn discovery_lists_only_what_works() {
    let server = TestServer::start().await;
    let document = get_json(&server, "/oidc/.well-known/openid-configuration").await;
    let issuer = server.url("/oidc");
    assert_eq!(document["issuer"], issuer.as_str());
    assert_eq!(
        document["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        document["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        document["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        document["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(
        document["authorization_response_iss_parameter_supported"],
        true
    );
    let algs = document["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.contains(&Value::from("ES256")));
    assert!(algs.contains(&Value::from("RS256")));
    let scopes = document["scopes_supported"].as_array().unwrap();
    assert!(scopes.contains(&Value::from("openid")));
    assert!(
        document["claims_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from("sub"))
    );

    let endpoints = [
        ("authorization_endpoint", "/auth"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/me"),
        ("jwks_uri", "/jwks"),
        ("revocation_endpoint", "/token/revocation"),
        ("introspection_endpoint", "/token/introspection"),
        ("end_session_endpoint", "/session/end"),
    ];
    for (name, suffix) in endpoints {
        assert_eq!(document[name], format!("{issuer}{suffix}"), "{name}");
    }
}

#[tokio::test]
async fn rfc8414_metadata_matches_discovery() {
    let server = TestServer::start().await;
    let openid = get_json(&server, "/oidc/.well-known/openid-configuration").await;
    let oauth = get_json(&server, "/.well-known/oauth-authorization-server/oidc").await;
    assert_eq!(openid, oauth);
}

#[tokio::test]
async fn advertised_endpoints_answer() {
    let server = TestServer::start().await;
    let document = get_json(&server, "/oidc/.well-known/openid-configuration").await;
    let jwks = server
        .http
        .get(document["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), 200);
    for name in [
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ] {
        let response = server
            .http
            .post(document[name].as_str().unwrap())
            .header("content-type", "application/x-www-form-urlencoded")
            .body("")
            .send()
            .await
            .unwrap();
        assert_ne!(response.status(), 404, "{name}");
        assert!(
            response.status().is_client_error(),
            "{name}: {}",
            response.status()
        );
    }
}

#[tokio::test]
async fn custom_domain_changes_issuer() {
    let server = TestServer::start().await;
    app::ssr::settings::set_custom_domain(server.db(), "auth.example.com", app::ssr::now())
        .await
        .unwrap();
    let document = get_json(&server, "/oidc/.well-known/openid-configuration").await;
    assert_eq!(document["issuer"], "https://auth.example.com/oidc");
    assert_eq!(
        document["token_endpoint"],
        "https://auth.example.com/oidc/token"
    );
}

#[tokio::test]
async fn preflight_is_answered_on_token_endpoints() {
    let server = TestServer::start().await;
    let paths = [
        ("/oidc/token", "POST"),
        ("/oidc/me", "GET"),
        ("/oidc/jwks", "GET"),
        ("/oidc/.well-known/openid-configuration", "GET"),
        ("/.well-known/oauth-authorization-server/oidc", "GET"),
        ("/oidc/token/revocation", "POST"),
        ("/oidc/token/introspection", "POST"),
    ];
    for (path, method) in paths {
        let response = server
            .http
            .request(reqwest::Method::OPTIONS, server.url(path))
            .header("origin", "https://app.example")
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "authorization")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "{path}");
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], "*", "{path}");
        let methods = headers["access-control-allow-methods"].to_str().unwrap();
        assert!(methods.contains(method), "{path}: {methods}");
        let allowed = headers["access-control-allow-headers"].to_str().unwrap();
        assert!(allowed.contains("authorization"), "{path}");
        assert!(allowed.contains("content-type"), "{path}");
    }
}

#[tokio::test]
async fn cross_origin_responses_allow_any_origin() {
    let server = TestServer::start().await;
    let response = server
        .http
        .get(server.url("/oidc/me"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn authorization_endpoint_has_no_cors() {
    let server = TestServer::start().await;
    let response = server
        .http
        .request(reqwest::Method::OPTIONS, server.url("/oidc/auth"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}
