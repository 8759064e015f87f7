//! An example plugin API that accepts Latch access tokens.
//!
//! ChatGPT calls a plugin's API with `Authorization: Bearer <access
//! token>`. This server checks such a token offline against the issuer's
//! JWKS (header `typ: at+jwt`, signature, `iss`, `aud`, `exp` with 60
//! seconds of leeway for clock skew) and returns the caller's `sub` from
//! `GET /whoami`.
//!
//! ```text
//! cargo run -p server --example plugin_api -- \
//!     --issuer http://127.0.0.1:3000/oidc --audience <App ID or audience>
//! curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:4000/whoami
//! ```

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// Allowed clock difference between Latch and this server, in seconds.
const CLOCK_LEEWAY_SECS: u64 = 60;
/// Shortest time between two JWKS downloads triggered by unknown key ids,
/// so forged tokens cannot make this server flood the issuer.
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// Command-line flags; each can also be set through the environment.
#[derive(Parser, Debug)]
#[command(about = "Example plugin API that verifies Latch access tokens")]
struct Args {
    /// Issuer URL of the Latch server, such as http://127.0.0.1:3000/oidc.
    #[arg(long, env = "PLUGIN_ISSUER")]
    issuer: String,
    /// Expected `aud` of access tokens: the application's audience, or its
    /// App ID when no audience is configured.
    #[arg(long, env = "PLUGIN_AUDIENCE")]
    audience: String,
    /// Address and port this API listens on.
    #[arg(long, env = "PLUGIN_LISTEN", default_value = "127.0.0.1:4000")]
    listen: SocketAddr,
}

/// The part of the discovery document this API needs.
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// Claims this API reads from an access token.
#[derive(Deserialize)]
struct AccessClaims {
    sub: String,
    #[serde(default)]
    scope: String,
}

/// Keys of the issuer, refreshed when a token names an unknown key id.
struct Verifier {
    issuer: String,
    audience: String,
    jwks_uri: String,
    http: reqwest::Client,
    keys: RwLock<(JwkSet, Instant)>,
}

/// Reason a token was rejected. It is only logged, and the caller gets
/// `invalid_token`.
#[derive(Debug, thiserror::Error)]
enum RejectReason {
    #[error("no bearer token")]
    Missing,
    #[error("the header is not an at+jwt header with a supported algorithm")]
    Header,
    #[error("no published key has the token's key id")]
    UnknownKey,
    #[error("the token does not verify: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
}

impl Verifier {
    /// Reads the discovery document and the key set of `issuer`.
    async fn discover(issuer: String, audience: String) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let discovery: Discovery = http
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if discovery.issuer != issuer {
            anyhow::bail!(
                "the discovery document at {url} names issuer {}, not {issuer}; pass the issuer exactly as Latch reports it",
                discovery.issuer
            );
        }
        let keys = fetch_jwks(&http, &discovery.jwks_uri).await?;
        Ok(Self {
            issuer,
            audience,
            jwks_uri: discovery.jwks_uri,
            http,
            keys: RwLock::new((keys, Instant::now())),
        })
    }

    /// Verifies an access token and returns its claims.
    async fn verify(&self, token: &str) -> Result<AccessClaims, RejectReason> {
        let header = jsonwebtoken::decode_header(token)?;
        let supported = matches!(header.alg, Algorithm::ES256 | Algorithm::RS256);
        if header.typ.as_deref() != Some("at+jwt") || !supported {
            return Err(RejectReason::Header);
        }
        let kid = header.kid.ok_or(RejectReason::UnknownKey)?;
        let key = self.key_for(&kid).await?;

        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = CLOCK_LEEWAY_SECS;
        Ok(jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)?.claims)
    }

    /// Finds the key named `kid`, downloading the key set again when the
    /// key is unknown and the last download is old enough.
    async fn key_for(&self, kid: &str) -> Result<DecodingKey, RejectReason> {
        {
            let keys = self.keys.read().await;
            if let Some(jwk) = keys.0.find(kid) {
                return Ok(DecodingKey::from_jwk(jwk)?);
            }
            if keys.1.elapsed() < JWKS_REFETCH_INTERVAL {
                return Err(RejectReason::UnknownKey);
            }
        }
        let mut keys = self.keys.write().await;
        match fetch_jwks(&self.http, &self.jwks_uri).await {
            Ok(fresh) => *keys = (fresh, Instant::now()),
            Err(error) => {
                tracing::warn!(%error, jwks_uri = %self.jwks_uri, "failed to download the key set");
                keys.1 = Instant::now();
            }
        }
        let jwk = keys.0.find(kid).ok_or(RejectReason::UnknownKey)?;
        Ok(DecodingKey::from_jwk(jwk)?)
    }
}

async fn fetch_jwks(http: &reqwest::Client, url: &str) -> anyhow::Result<JwkSet> {
    Ok(http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

async fn whoami(State(verifier): State<Arc<Verifier>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let result = match token {
        Some(token) => verifier.verify(token).await,
        None => Err(RejectReason::Missing),
    };
    match result {
        Ok(claims) => Json(json!({"sub": claims.sub, "scope": claims.scope})).into_response(),
        Err(reason) => {
            tracing::warn!(%reason, "request rejected");
            let challenge = match reason {
                RejectReason::Missing => "Bearer",
                _ => "Bearer error=\"invalid_token\"",
            };
            let body = Json(json!({"error": "invalid_token"}));
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, challenge)],
                body,
            )
                .into_response()
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let verifier = Verifier::discover(args.issuer.clone(), args.audience.clone()).await?;
    let app = Router::new()
        .route("/whoami", get(whoami))
        .with_state(Arc::new(verifier));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(listen = %args.listen, issuer = %args.issuer, audience = %args.audience, "plugin API started");
    axum::serve(listener, app).await?;
    Ok(())
}
