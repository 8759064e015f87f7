//! Signing keys for ID tokens and access tokens, and the server key that
//! derives rotated refresh tokens.
//!
//! The database is the only source of truth: every instance that shares a
//! database signs with the same keys. Private keys are stored sealed with
//! the master key under `signing_key:<kid>`. Every use opens the stored
//! value, so only a holder of the master key can sign. The parsed key then
//! comes from a process-wide cache keyed by the SHA-256 of the key id and
//! the sealed value. A cache entry therefore never stands for a different
//! row, even when several servers with different databases run in one
//! process.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use super::applications::internal;
use super::crypto::{self, MasterKey};
use super::entities::{setting, signing_key};
use super::ids;
use crate::error::AppError;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use rand::rngs::OsRng;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
    TryInsertResult,
};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

/// RSA modulus size of new RS256 keys, in bits.
const RSA_KEY_BITS: usize = 2048;

/// How long a new key is published in the JWKS before it signs, in
/// seconds. Equal to the JWKS `Cache-Control` max-age, so a verifier that
/// cached the key set before the key was added has refreshed it by then.
pub const KEY_PUBLICATION_LEAD_SECS: i64 = 300;

/// Settings key of the secret that derives successor refresh tokens.
const REFRESH_DERIVATION_KEY: &str = "refresh_token_derivation_key";

/// A JWS algorithm that Latch signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlg {
    /// ECDSA with P-256 and SHA-256, the default.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, for relying parties without EC support.
    Rs256,
}

impl SigningAlg {
    /// Every supported algorithm, in the order discovery lists them.
    pub const ALL: [SigningAlg; 2] = [Self::Es256, Self::Rs256];

    /// Returns the JOSE name, as stored in `signing_keys.alg`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }

    /// Parses a JOSE name.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == value)
    }

    /// Returns the algorithm an application signs with. Unknown values fall
    /// back to ES256.
    pub fn for_application(signing_alg: &str) -> Self {
        Self::parse(signing_alg).unwrap_or(Self::Es256)
    }

    /// Returns the jsonwebtoken algorithm.
    pub fn jwt_algorithm(self) -> Algorithm {
        match self {
            Self::Es256 => Algorithm::ES256,
            Self::Rs256 => Algorithm::RS256,
        }
    }
}

/// Failure to create, load or parse a signing key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The database request failed.
    #[error("database request failed: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// Key generation or encoding failed.
    #[error("cannot generate a {alg} key: {reason}")]
    Generate {
        /// Algorithm of the key.
        alg: &'static str,
        /// Library error text.
        reason: String,
    },
    /// A stored key does not open with the master key.
    #[error("stored signing key {kid} cannot be decrypted: {source}")]
    Sealed {
        /// Key id of the stored key.
        kid: String,
        /// Reason it does not open.
        source: crypto::CryptoError,
    },
    /// A stored key does not parse.
    #[error("stored signing key {kid} is unusable: {reason}")]
    Unusable {
        /// Key id of the stored key.
        kid: String,
        /// Library error text.
        reason: String,
    },
    /// No active key of the algorithm exists. Start-up creates one.
    #[error("no active {0} signing key exists")]
    Missing(&'static str),
}

impl From<KeyError> for AppError {
    fn from(error: KeyError) -> Self {
        tracing::error!(%error, "signing key failure");
        AppError::Internal
    }
}

/// A stored key, parsed for signing and verifying.
pub struct LoadedKey {
    /// Key id, sent in the JWT header and the JWKS.
    pub kid: String,
    /// Signing algorithm.
    pub alg: SigningAlg,
    /// Private key parsed once, which [`LoadedKey::sign_jwt`] signs with.
    signer: Signer,
    /// Public key for verifying.
    pub decoding: DecodingKey,
}

/// A private key parsed by ring. `jsonwebtoken::encode` parses and checks
/// the PKCS#8 key again for every token. In a profile of the token
/// endpoint, that check took about as long as the ES256 signature itself.
enum Signer {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
}

impl LoadedKey {
    /// Returns the compact JWS (RFC 7515 section 7.1) of `claims` under
    /// `header`, signed with this key. The output has the same form as
    /// `jsonwebtoken::encode`, and `jsonwebtoken::decode` verifies it.
    pub fn sign_jwt(
        &self,
        header: &jsonwebtoken::Header,
        claims: &impl serde::Serialize,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;

        if header.alg != self.alg.jwt_algorithm() {
            return Err(jsonwebtoken::errors::ErrorKind::InvalidAlgorithm.into());
        }
        let mut jwt = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header)?);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims)?, &mut jwt);
        let rng = SystemRandom::new();
        let signature = match &self.signer {
            Signer::Es256(pair) => pair.sign(&rng, jwt.as_bytes())?.as_ref().to_vec(),
            Signer::Rs256(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, jwt.as_bytes(), &mut signature)?;
                signature
            }
        };
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jwt);
        Ok(jwt)
    }
}

type KeyCache = RwLock<HashMap<String, Arc<LoadedKey>>>;

fn cache() -> &'static KeyCache {
    static CACHE: OnceLock<KeyCache> = OnceLock::new();
    CACHE.get_or_init(|| RwLock::new(HashMap::new()))
}

/// Creates one ES256 and one RS256 key unless an active key of that
/// algorithm already exists.
///
/// The key id of a new key is the algorithm and a generation number
/// (`es256-1`), both taken from one read of the table. Two instances that
/// start at once read the same rows, so they pick the same id, and the
/// insert ignores the second key. Both then sign with the row that won.
pub async fn ensure_signing_keys(
    db: &impl ConnectionTrait,
    key: &MasterKey,
    now: i64,
) -> Result<(), KeyError> {
    for alg in SigningAlg::ALL {
        let rows = signing_key::Entity::find()
            .filter(signing_key::Column::Alg.eq(alg.as_str()))
            .all(db)
            .await?;
        if rows.iter().all(|row| row.retired_at.is_some()) {
            insert_key(db, key, alg, rows.len() as u64 + 1, now).await?;
        }
    }
    Ok(())
}

/// Adds a new key of `alg` created at `now` and returns its id. It is
/// published at once and signs after [`KEY_PUBLICATION_LEAD_SECS`]. Older
/// keys stay published until [`retire_signing_key`] is called.
pub async fn add_signing_key(
    db: &impl ConnectionTrait,
    key: &MasterKey,
    alg: SigningAlg,
    now: i64,
) -> Result<String, KeyError> {
    let generation = signing_key::Entity::find()
        .filter(signing_key::Column::Alg.eq(alg.as_str()))
        .count(db)
        .await?
        + 1;
    insert_key(db, key, alg, generation, now).await
}

/// Generates a key with id `<alg>-<generation>` and inserts it, sealed,
/// unless a key with that id exists. Returns the id.
async fn insert_key(
    db: &impl ConnectionTrait,
    key: &MasterKey,
    alg: SigningAlg,
    generation: u64,
    now: i64,
) -> Result<String, KeyError> {
    let kid = format!("{}-{generation}", alg.as_str().to_ascii_lowercase());
    let (private_pem, public_jwk) = generate(alg, &kid)?;
    let sealed = key.seal(&crypto::signing_key_context(&kid), &private_pem);
    drop(private_pem);
    let row = signing_key::ActiveModel {
        kid: Set(kid.clone()),
        alg: Set(alg.as_str().to_owned()),
        private_key: Set(sealed),
        public_jwk: Set(public_jwk),
        created_at: Set(now),
        retired_at: Set(None),
    };
    let result = signing_key::Entity::insert(row)
        .on_conflict_do_nothing_on([signing_key::Column::Kid])
        .exec(db)
        .await?;
    if matches!(result, TryInsertResult::Inserted(_)) {
        tracing::info!(target: "audit", %kid, alg = %alg.as_str(), "keys created");
    } else {
        tracing::info!(%kid, "another instance created the signing key first");
    }
    Ok(kid)
}

// TODO-hardening: nothing calls `add_signing_key` or `retire_signing_key`
// on a schedule or from the command line yet, so keys rotate only when an
// operator calls these functions from code.

/// Stops publishing and using a key. Tokens it signed no longer verify.
pub async fn retire_signing_key(
    db: &impl ConnectionTrait,
    kid: &str,
    now: i64,
) -> Result<(), KeyError> {
    signing_key::Entity::update_many()
        .col_expr(
            signing_key::Column::RetiredAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(signing_key::Column::Kid.eq(kid))
        .filter(signing_key::Column::RetiredAt.is_null())
        .exec(db)
        .await?;
    tracing::info!(target: "audit", %kid, "signing key retired");
    Ok(())
}

/// Generates a key pair and returns the PKCS#8 PEM of the private key and
/// the public JWK with `kid`, `alg` and `use`.
fn generate(alg: SigningAlg, kid: &str) -> Result<(String, String), KeyError> {
    let failure = |reason: String| KeyError::Generate {
        alg: alg.as_str(),
        reason,
    };
    let (pem, mut jwk) = match alg {
        SigningAlg::Es256 => generate_p256().map_err(failure)?,
        SigningAlg::Rs256 => generate_rsa().map_err(failure)?,
    };
    jwk.insert("kid".into(), kid.into());
    jwk.insert("alg".into(), alg.as_str().into());
    jwk.insert("use".into(), "sig".into());
    Ok((pem, serde_json::Value::Object(jwk).to_string()))
}

type JsonObject = serde_json::Map<String, serde_json::Value>;

fn generate_p256() -> Result<(String, JsonObject), String> {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};

    let secret = p256::SecretKey::random(&mut OsRng);
    let pem = secret
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|error| error.to_string())?;
    let jwk = serde_json::from_str(&secret.public_key().to_jwk_string())
        .map_err(|error| error.to_string())?;
    Ok((pem.to_string(), jwk))
}

fn generate_rsa() -> Result<(String, JsonObject), String> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    use rsa::traits::PublicKeyParts;

    let private =
        rsa::RsaPrivateKey::new(&mut OsRng, RSA_KEY_BITS).map_err(|error| error.to_string())?;
    let pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|error| error.to_string())?;
    let mut jwk = JsonObject::new();
    jwk.insert("kty".into(), "RSA".into());
    jwk.insert(
        "n".into(),
        URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()).into(),
    );
    jwk.insert(
        "e".into(),
        URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()).into(),
    );
    Ok((pem.to_string(), jwk))
}

/// Returns the keys of `alg` that are not retired, newest first.
pub async fn active_rows(
    db: &impl ConnectionTrait,
    alg: SigningAlg,
) -> Result<Vec<signing_key::Model>, KeyError> {
    Ok(signing_key::Entity::find()
        .filter(signing_key::Column::Alg.eq(alg.as_str()))
        .filter(signing_key::Column::RetiredAt.is_null())
        .order_by_desc(signing_key::Column::CreatedAt)
        .order_by_desc(signing_key::Column::Kid)
        .all(db)
        .await?)
}

/// Returns the key that signs new tokens of `alg` at `now`: the newest
/// active key that has been published for at least
/// [`KEY_PUBLICATION_LEAD_SECS`], so that verifiers with a cached key set
/// have seen it. When no key is that old, as on first start, the oldest
/// active key signs.
pub async fn current_signing_key(
    db: &impl ConnectionTrait,
    key: &MasterKey,
    alg: SigningAlg,
    now: i64,
) -> Result<Arc<LoadedKey>, KeyError> {
    let rows = active_rows(db, alg).await?;
    let row = select_signing_row(&rows, now).ok_or(KeyError::Missing(alg.as_str()))?;
    load(row, key)
}

/// Picks the row that signs at `now` from the active rows of one
/// algorithm, newest first, by the rule of [`current_signing_key`].
pub fn select_signing_row(rows: &[signing_key::Model], now: i64) -> Option<&signing_key::Model> {
    let published = rows
        .iter()
        .find(|row| row.created_at + KEY_PUBLICATION_LEAD_SECS <= now);
    published.or(rows.last())
}

/// Returns the active key with id `kid`, or `None` when it is unknown or
/// retired.
pub async fn verification_key(
    db: &impl ConnectionTrait,
    key: &MasterKey,
    kid: &str,
) -> Result<Option<Arc<LoadedKey>>, KeyError> {
    let row = signing_key::Entity::find_by_id(kid.to_owned())
        .filter(signing_key::Column::RetiredAt.is_null())
        .one(db)
        .await?;
    row.as_ref().map(|row| load(row, key)).transpose()
}

/// Returns the public JWKs of every key that is not retired, newest first.
pub async fn published_jwks(db: &impl ConnectionTrait) -> Result<Vec<serde_json::Value>, KeyError> {
    let rows = signing_key::Entity::find()
        .filter(signing_key::Column::RetiredAt.is_null())
        .order_by_desc(signing_key::Column::CreatedAt)
        .order_by_asc(signing_key::Column::Kid)
        .all(db)
        .await?;
    rows.iter()
        .map(|row| {
            serde_json::from_str(&row.public_jwk).map_err(|error| KeyError::Unusable {
                kid: row.kid.clone(),
                reason: error.to_string(),
            })
        })
        .collect()
}

/// Opens a stored key with the master key, then parses it or takes the
/// parsed key from the cache.
pub fn load(row: &signing_key::Model, master_key: &MasterKey) -> Result<Arc<LoadedKey>, KeyError> {
    let pem = master_key
        .open(&crypto::signing_key_context(&row.kid), &row.private_key)
        .map_err(|source| KeyError::Sealed {
            kid: row.kid.clone(),
            source,
        })?;
    let fingerprint = ids::sha256_hex(&format!("{}\n{}", row.kid, row.private_key));
    if let Ok(cached) = cache().read()
        && let Some(key) = cached.get(&fingerprint)
    {
        return Ok(key.clone());
    }
    let key = Arc::new(parse(row, &pem)?);
    if let Ok(mut cached) = cache().write() {
        cached.insert(fingerprint, key.clone());
    }
    Ok(key)
}

/// Parses a stored key whose private key, opened, is `pem`.
fn parse(row: &signing_key::Model, pem: &str) -> Result<LoadedKey, KeyError> {
    let unusable = |reason: String| KeyError::Unusable {
        kid: row.kid.clone(),
        reason,
    };
    let alg = SigningAlg::parse(&row.alg)
        .ok_or_else(|| unusable(format!("unknown algorithm {}", row.alg)))?;
    let (_, der) = p256::pkcs8::SecretDocument::from_pem(pem)
        .map_err(|error| unusable(format!("the private key is not PKCS#8 PEM: {error}")))?;
    let signer = match alg {
        SigningAlg::Es256 => EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            der.as_bytes(),
            &SystemRandom::new(),
        )
        .map(Signer::Es256),
        SigningAlg::Rs256 => RsaKeyPair::from_pkcs8(der.as_bytes()).map(Signer::Rs256),
    }
    .map_err(|error| unusable(error.to_string()))?;
    let jwk: Jwk =
        serde_json::from_str(&row.public_jwk).map_err(|error| unusable(error.to_string()))?;
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|error| unusable(error.to_string()))?;
    Ok(LoadedKey {
        kid: row.kid.clone(),
        alg,
        signer,
        decoding,
    })
}

/// Returns the server secret that derives successor refresh tokens,
/// creating it on first use. Concurrent first calls agree on one value
/// because the insert ignores a conflict and the value is read back.
pub async fn refresh_derivation_key(
    db: &impl ConnectionTrait,
    now: i64,
) -> Result<String, AppError> {
    let row = setting::Entity::find_by_id(REFRESH_DERIVATION_KEY.to_owned())
        .one(db)
        .await
        .map_err(internal)?;
    if let Some(row) = row {
        return Ok(row.value);
    }
    let candidate = setting::ActiveModel {
        key: Set(REFRESH_DERIVATION_KEY.to_owned()),
        value: Set(ids::new_opaque_token()),
        updated_at: Set(now),
    };
    setting::Entity::insert(candidate)
        .on_conflict_do_nothing_on([setting::Column::Key])
        .exec(db)
        .await
        .map_err(internal)?;
    setting::Entity::find_by_id(REFRESH_DERIVATION_KEY.to_owned())
        .one(db)
        .await
        .map_err(internal)?
        .map(|row| row.value)
        .ok_or(AppError::Internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p256_key_round_trips_through_jsonwebtoken() {
        let (master_key, _) = MasterKey::generate();
        let (pem, jwk) = generate(SigningAlg::Es256, "es256-1").unwrap();
        let row = signing_key::Model {
            kid: "es256-1".into(),
            alg: "ES256".into(),
            private_key: master_key.seal("signing_key:es256-1", &pem),
            public_jwk: jwk,
            created_at: 0,
            retired_at: None,
        };
        let key = load(&row, &master_key).unwrap();
        let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        let claims = serde_json::json!({"sub": "user", "exp": 4_000_000_000u64});
        let encoding = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
        let token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
        let validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        let decoded =
            jsonwebtoken::decode::<serde_json::Value>(&token, &key.decoding, &validation).unwrap();
        assert_eq!(decoded.claims["sub"], "user");
    }

    /// Generates and loads a key, and returns it with its private key PEM.
    fn loaded(alg: SigningAlg, kid: &str) -> (Arc<LoadedKey>, String) {
        let (master_key, _) = MasterKey::generate();
        let (pem, jwk) = generate(alg, kid).unwrap();
        let row = signing_key::Model {
            kid: kid.into(),
            alg: alg.as_str().into(),
            private_key: master_key.seal(&format!("signing_key:{kid}"), &pem),
            public_jwk: jwk,
            created_at: 0,
            retired_at: None,
        };
        (load(&row, &master_key).unwrap(), pem)
    }

    fn header(alg: Algorithm, kid: &str) -> jsonwebtoken::Header {
        let mut header = jsonwebtoken::Header::new(alg);
        header.typ = Some("at+jwt".into());
        header.kid = Some(kid.into());
        header
    }

    #[test]
    fn es256_sign_jwt_verifies_with_jsonwebtoken() {
        let (key, _) = loaded(SigningAlg::Es256, "es256-sign");
        let claims = serde_json::json!({"sub": "user", "exp": 4_000_000_000u64});
        let token = key.sign_jwt(&header(Algorithm::ES256, "es256-sign"), &claims).unwrap();

        let decoded_header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(decoded_header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(decoded_header.kid.as_deref(), Some("es256-sign"));
        let validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        let decoded =
            jsonwebtoken::decode::<serde_json::Value>(&token, &key.decoding, &validation).unwrap();
        assert_eq!(decoded.claims, claims);

        let (other, _) = loaded(SigningAlg::Es256, "es256-other");
        let error = jsonwebtoken::decode::<serde_json::Value>(&token, &other.decoding, &validation)
            .unwrap_err();
        assert_eq!(error.kind(), &jsonwebtoken::errors::ErrorKind::InvalidSignature);
    }

    #[test]
    fn rs256_sign_jwt_matches_jsonwebtoken_encode() {
        // RSASSA-PKCS1-v1_5 signatures are deterministic, so both paths
        // must give the same bytes.
        let (key, pem) = loaded(SigningAlg::Rs256, "rs256-sign");
        let header = header(Algorithm::RS256, "rs256-sign");
        let claims = serde_json::json!({"sub": "user", "scope": "openid", "exp": 4_000_000_000u64});
        let ours = key.sign_jwt(&header, &claims).unwrap();
        let encoding = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        let reference = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
        assert_eq!(ours, reference);
    }

    #[test]
    fn sign_jwt_rejects_header_of_other_algorithm() {
        let (key, _) = loaded(SigningAlg::Es256, "es256-mismatch");
        let claims = serde_json::json!({"sub": "user"});
        let error = key
            .sign_jwt(&header(Algorithm::RS256, "es256-mismatch"), &claims)
            .unwrap_err();
        assert_eq!(error.kind(), &jsonwebtoken::errors::ErrorKind::InvalidAlgorithm);
    }

    #[test]
    fn sealed_key_opens_only_with_its_master_key_and_kid() {
        let (master_key, _) = MasterKey::generate();
        let (other_key, _) = MasterKey::generate();
        let (pem, jwk) = generate(SigningAlg::Es256, "es256-2").unwrap();
        let row = signing_key::Model {
            kid: "es256-2".into(),
            alg: "ES256".into(),
            private_key: master_key.seal("signing_key:es256-2", &pem),
            public_jwk: jwk,
            created_at: 0,
            retired_at: None,
        };
        assert!(!row.private_key.contains("PRIVATE KEY"));
        assert!(load(&row, &master_key).is_ok());
        // A cached parse does not let another master key use the row.
        assert!(matches!(
            load(&row, &other_key),
            Err(KeyError::Sealed { .. })
        ));
        let moved = signing_key::Model {
            kid: "es256-3".into(),
            ..row
        };
        assert!(matches!(
            load(&moved, &master_key),
            Err(KeyError::Sealed { .. })
        ));
    }

    #[test]
    fn jwk_carries_kid_alg_and_use() {
        let (_, jwk) = generate(SigningAlg::Es256, "es256-7").unwrap();
        let jwk: serde_json::Value = serde_json::from_str(&jwk).unwrap();
        assert_eq!(jwk["kid"], "es256-7");
        assert_eq!(jwk["alg"], "ES256");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["crv"], "P-256");
        assert!(
            jwk.get("d").is_none(),
            "the public JWK must not contain the private scalar"
        );
    }
}
