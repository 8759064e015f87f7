//! Client authentication at the token, revocation and introspection
//! endpoints (RFC 6749 section 2.3).
//!
//! A confidential client sends its secret either in the body
//! (`client_secret_post`) or in HTTP Basic (`client_secret_basic`), and
//! either is accepted whatever the client was registered with, because
//! GPT Actions lets users pick either. Sending both is `invalid_request`.
//! A public (`native`) client sends only `client_id` and must not send a
//! secret. Any unexpired secret of the application matches, which lets a
//! developer rotate secrets without downtime.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use super::errors::OAuthError;
use super::params::Params;
use app::model::ApplicationKind;
use app::ssr::AppState;
use app::ssr::entities::{application, application_secret};
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use app::ssr::applications::{ApplicationWithSecrets, applications_with_secrets};
use sea_orm::DbErr;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// The credentials a request carried.
#[derive(Debug)]
pub struct ClientCredentials {
    /// The claimed client id.
    pub client_id: String,
    /// The secret, when one was sent.
    secret: Option<String>,
    /// Whether the credentials came from the Authorization header.
    pub basic: bool,
}

/// A client whose credentials were checked.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    /// The client's application row.
    pub application: application::Model,
    /// Whether the client is public, without a secret.
    pub public: bool,
}

/// Reads the credentials from the Authorization header and the body.
pub fn extract_credentials(
    headers: &HeaderMap,
    params: &Params,
) -> Result<ClientCredentials, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(value) => Some(parse_basic(value.as_bytes())?),
        None => None,
    };
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    match basic {
        Some((id, secret)) => {
            if body_secret.is_some() {
                return Err(OAuthError::InvalidRequest(
                    "Send client credentials either in the Authorization header or in the body, not both.",
                ));
            }
            if body_id.is_some_and(|body_id| body_id != id) {
                return Err(OAuthError::InvalidRequest(
                    "client_id in the body differs from the Authorization header.",
                ));
            }
            Ok(ClientCredentials {
                client_id: id,
                secret: Some(secret).filter(|secret| !secret.is_empty()),
                basic: true,
            })
        }
        None => Ok(ClientCredentials {
            client_id: body_id
                .ok_or(OAuthError::InvalidClient {
                    basic: false,
                    reason: "no client_id was sent",
                })?
                .to_owned(),
            secret: body_secret.map(str::to_owned),
            basic: false,
        }),
    }
}

/// Parses `Basic base64(urlencode(id) ":" urlencode(secret))`, decoding
/// each half as form data (RFC 6749 section 2.3.1 and appendix B), so `+`
/// stands for a space and `%2B` for a plus sign.
fn parse_basic(value: &[u8]) -> Result<(String, String), OAuthError> {
    let malformed = |reason| OAuthError::InvalidClient {
        basic: true,
        reason,
    };
    let text = std::str::from_utf8(value)
        .map_err(|_| malformed("the Authorization header is not text"))?;
    let (scheme, encoded) = text
        .trim()
        .split_once(' ')
        .ok_or(malformed("the Authorization header has no credentials"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed("the Authorization scheme is not Basic"));
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed("the Basic credentials are not base64"))?;
    let decoded =
        String::from_utf8(decoded).map_err(|_| malformed("the Basic credentials are not UTF-8"))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or(malformed("the Basic credentials have no colon"))?;
    let id = form_decode(id).ok_or(malformed("the Basic client id is not valid form encoding"))?;
    let secret =
        form_decode(secret).ok_or(malformed("the Basic secret is not valid form encoding"))?;
    Ok((id, secret))
}

fn form_decode(value: &str) -> Option<String> {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

/// Checks the credentials against the stored application and its live
/// secrets. Secrets are stored sealed and opened with the state's master
/// key, and the state's token cache keeps their digests so that each one is
/// opened once per process. An unknown client and a wrong secret give the
/// same error.
pub async fn authenticate_client(
    state: &AppState,
    credentials: ClientCredentials,
    now: i64,
) -> Result<AuthenticatedClient, OAuthError> {
    let basic = credentials.basic;
    let reject = |reason| OAuthError::InvalidClient { basic, reason };
    let found = application_with_secrets(state, &credentials.client_id)
        .await
        .map_err(|error| OAuthError::Server(error.to_string()))?;
    let Some((application, secrets)) = found else {
        // Hash the presented secret anyway so that unknown clients take
        // about as long as known ones.
        let _ = secret_matches(credentials.secret.as_deref().unwrap_or_default(), &[]);
        return Err(reject("unknown client"));
    };
    let public =
        ApplicationKind::parse(&application.kind).is_some_and(|kind| !kind.is_confidential());
    match (public, credentials.secret) {
        (true, Some(_)) => Err(reject("a public client sent a secret")),
        (true, None) => Ok(AuthenticatedClient {
            application,
            public,
        }),
        (false, None) => Err(reject("no client secret was sent")),
        (false, Some(secret)) => {
            let live: Vec<application_secret::Model> = secrets
                .into_iter()
                .filter(|secret| secret.expires_at.is_none_or(|expiry| expiry > now))
                .collect();
            let digests = state.token_cache.secret_digests(&state.master_key, &live);
            if secret_matches(&secret, &digests) {
                Ok(AuthenticatedClient {
                    application,
                    public,
                })
            } else {
                Err(reject("wrong client secret"))
            }
        }
    }
}

/// Reads an application and all its secrets, expired ones included,
/// through the state's batch of client reads, or alone when the batch task
/// is gone. Nothing about the client comes from a cache.
async fn application_with_secrets(
    state: &AppState,
    client_id: &str,
) -> Result<Option<ApplicationWithSecrets>, DbErr> {
    if let Some(found) = state.token_batches.clients.submit(client_id.to_owned()).await {
        return Ok(found);
    }
    let ids = [client_id.to_owned()];
    let mut found = applications_with_secrets(&state.db, &ids).await?;
    Ok(found.remove(client_id))
}

/// Compares the SHA-256 digest of `presented` with each digest of a stored
/// secret in constant time, so neither the content nor the length of a
/// stored secret shows in the timing. Every digest is compared; the loop
/// does not stop at the first match.
fn secret_matches(presented: &str, secrets: &[[u8; 32]]) -> bool {
    let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let mut matched = Choice::from(0);
    for secret in secrets {
        matched |= secret[..].ct_eq(&presented[..]);
    }
    matched.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn basic(raw: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode(raw));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&value).unwrap(),
        );
        headers
    }

    #[test]
    fn basic_halves_are_form_decoded() {
        let credentials =
            extract_credentials(&basic("id:s%2Fe%3Dc%3Fr%2Be%3At"), &Params::default()).unwrap();
        assert_eq!(credentials.client_id, "id");
        assert_eq!(credentials.secret.as_deref(), Some("s/e=c?r+e:t"));
        assert!(credentials.basic);
    }

    #[test]
    fn basic_plus_means_space() {
        let credentials = extract_credentials(&basic("id:a+b"), &Params::default()).unwrap();
        assert_eq!(credentials.secret.as_deref(), Some("a b"));
    }

    #[test]
    fn basic_without_colon_is_invalid_client() {
        let result = extract_credentials(&basic("idsecret"), &Params::default());
        assert!(matches!(
            result,
            Err(OAuthError::InvalidClient { basic: true, .. })
        ));
    }

    #[test]
    fn secret_matching_checks_every_secret() {
        let secrets: Vec<[u8; 32]> = ["old", "new"]
            .iter()
            .map(|secret| Sha256::digest(secret.as_bytes()).into())
            .collect();
        assert!(secret_matches("new", &secrets));
        assert!(secret_matches("old", &secrets));
        assert!(!secret_matches("ne", &secrets));
        assert!(!secret_matches("", &[]));
    }
}
