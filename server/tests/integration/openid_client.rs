//! A code exchange driven by the openidconnect crate as an independent
//! relying party: discovery, HTTP Basic client authentication, PKCE, and
//! ID token validation with the nonce.

use crate::common::TestServer;
use crate::fixtures::*;
use openidconnect::core::{CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, TokenResponse,
};

#[tokio::test]
async fn openidconnect_client_completes_code_flow() {
    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    let user_id = user(&server).await;
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let issuer = IssuerUrl::new(server.url("/oidc")).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .unwrap();
    let oidc = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client.id.clone()),
        Some(ClientSecret::new(client.secret().to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap());

    // The code is issued directly, as the authorization endpoint would
    // after sign-in, with the challenge and nonce the client generated.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let nonce = Nonce::new_random();
    let spec = CodeSpec {
        scope: "openid profile email".into(),
        nonce: Some(nonce.secret().clone()),
        challenge: Some(challenge.as_str().to_owned()),
        refresh: false,
        ..CodeSpec::default()
    };
    let code = code(&server, &client, &user_id, spec).await;

    let response = oidc
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = response.id_token().expect("ID token in the response");
    let verifier = oidc
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let claims = id_token.claims(&verifier, &nonce).unwrap();
    assert_eq!(claims.subject().as_str(), user_id);
    assert_eq!(claims.audiences()[0].as_str(), client.id);
    assert!(claims.auth_time().is_some());
    assert!(claims.email().is_some());

    let wrong_nonce = Nonce::new("another".into());
    assert!(id_token.claims(&verifier, &wrong_nonce).is_err());

    let userinfo: openidconnect::core::CoreUserInfoClaims = oidc
        .user_info(response.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(userinfo.subject().as_str(), user_id);
}

/// The same relying party, but the code comes from the real authorization
/// endpoint after a user registers on the sign-in pages.
#[tokio::test]
async fn openidconnect_client_through_sign_in() {
    use crate::browser::{Browser, input_value, location, query_of, without_query};
    use openidconnect::core::CoreAuthenticationFlow;
    use openidconnect::{CsrfToken, Scope};

    let server = TestServer::start().await;
    let client = confidential_client(&server).await;
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let issuer = IssuerUrl::new(server.url("/oidc")).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &http).await.unwrap();
    let oidc = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client.id.clone()),
        Some(ClientSecret::new(client.secret().to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap());

    let (challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, state, nonce) = oidc
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();

    // A browser follows the authorization request and registers.
    let mut browser = Browser::new(&server);
    let response = browser.get(authorize_url.as_str()).await;
    assert_eq!(response.status(), 303);
    let sign_in = location(&response);
    let interaction = input_value(&browser.get(&sign_in).await.text().await.unwrap(), "interaction");
    let register = browser
        .get(&format!("/register?interaction={interaction}"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = input_value(&register, "csrf_token");
    let response = browser
        .post_form(
            "/register",
            &[
                ("interaction", interaction.as_str()),
                ("csrf_token", csrf.as_str()),
                ("username", "ada"),
                ("email", "ada@example.com"),
                ("password", "analytical engine"),
                ("password_confirmation", "analytical engine"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let callback = location(&response);
    assert_eq!(without_query(&callback), CALLBACK);
    let query = query_of(&callback);
    assert_eq!(query.get("state"), Some(state.secret()));
    let code = query.get("code").expect("callback carries a code").clone();

    // The client exchanges the code with HTTP Basic and the PKCE verifier.
    let response = oidc
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(pkce_verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = response.id_token().expect("ID token in the response");
    let verifier = oidc
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let claims = id_token.claims(&verifier, &nonce).unwrap();
    assert_eq!(claims.audiences()[0].as_str(), client.id);
    assert_eq!(
        claims.email().map(|email| email.as_str()),
        Some("ada@example.com")
    );
    assert!(claims.auth_time().is_some());
    let scopes: Vec<String> = response
        .scopes()
        .map(|scopes| scopes.iter().map(|scope| scope.to_string()).collect())
        .unwrap_or_default();
    assert!(scopes.contains(&"openid".to_string()), "{scopes:?}");
}
