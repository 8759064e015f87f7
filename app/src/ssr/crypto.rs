//! Encryption of stored secrets with a master key kept outside the
//! database.
//!
//! Client secrets, signing private keys and OpenAI verification tokens are
//! stored sealed with AES-256-GCM. Each value is bound to its purpose and
//! row through the associated data, so a sealed value copied into another
//! row or column does not open. The key comes from `LATCH_MASTER_KEY` or
//! from a file created with mode 0600 in the data directory at first start.
//! A copy of the database alone therefore reveals none of these secrets.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use std::path::Path;

/// Prefix of every sealed value; the version allows a later format.
pub const SEALED_PREFIX: &str = "enc:v1:";
/// Length of an AES-GCM nonce in bytes.
const NONCE_LEN: usize = 12;
/// Length of the master key in bytes.
pub const MASTER_KEY_LEN: usize = 32;
/// Name of the key file in the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// An error loading the master key or opening a sealed value.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The configured key is not 32 bytes of standard base64.
    #[error(
        "the master key must be 32 random bytes in standard base64 (44 characters); generate one with `openssl rand -base64 32`"
    )]
    MalformedKey,
    /// The key file could not be read or created.
    #[error("cannot use the master key file {path}: {reason}")]
    KeyFile {
        /// Path of the key file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// A stored value does not open with this key: another key sealed it,
    /// or it was changed.
    #[error("a stored secret cannot be decrypted with this master key")]
    WrongKey,
    /// A stored value is not in the sealed format.
    #[error("a stored secret is not encrypted")]
    NotSealed,
}

/// The key that seals stored secrets. Its `Debug` output never shows the
/// key.
pub struct MasterKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Builds a key from 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != MASTER_KEY_LEN {
            return Err(CryptoError::MalformedKey);
        }
        let cipher = Aes256Gcm::new_from_slice(bytes).map_err(|_| CryptoError::MalformedKey)?;
        Ok(Self { cipher })
    }

    /// Parses the base64 text of `LATCH_MASTER_KEY` or of the key file.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| CryptoError::MalformedKey)?;
        Self::from_bytes(&bytes)
    }

    /// Makes a new random key and returns it with its base64 text.
    pub fn generate() -> (Self, String) {
        let mut bytes = [0u8; MASTER_KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let text = STANDARD.encode(bytes);
        let key = Self::from_bytes(&bytes).unwrap_or_else(|_| unreachable!("32 bytes make a key"));
        (key, text)
    }

    /// Reads the key file in `data_dir`, or creates it with mode 0600 when
    /// it does not exist. Returns the key and whether the file was created.
    pub fn load_or_create_file(data_dir: &Path) -> Result<(Self, bool), CryptoError> {
        let path = data_dir.join(MASTER_KEY_FILE);
        let file_error = |reason: String| CryptoError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => return Self::from_base64(&text).map(|key| (key, false)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(file_error(error.to_string())),
        }
        std::fs::create_dir_all(data_dir).map_err(|error| file_error(error.to_string()))?;
        let (key, text) = Self::generate();
        // The key is written to a temporary file (mode 0600) that is then
        // linked to its name only if that name is still free, so another
        // process never reads a file that is only partly written.
        let mut temporary = tempfile::Builder::new()
            .prefix(".master.key.")
            .tempfile_in(data_dir)
            .map_err(|error| file_error(error.to_string()))?;
        {
            use std::io::Write;
            temporary
                .write_all(text.as_bytes())
                .and_then(|()| temporary.write_all(b"\n"))
                .and_then(|()| temporary.as_file().sync_all())
                .map_err(|error| file_error(error.to_string()))?;
        }
        match temporary.persist_noclobber(&path) {
            Ok(_) => Ok((key, true)),
            // Another process created the file first: use its key.
            Err(error) if error.error.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(&path).map_err(|error| file_error(error.to_string()))?;
                Self::from_base64(&text).map(|key| (key, false))
            }
            Err(error) => Err(file_error(error.error.to_string())),
        }
    }

    /// Encrypts `plaintext` for `context`, which names the column and row
    /// it belongs to, such as `application_secret:<id>`.
    pub fn seal(&self, context: &str, plaintext: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: context.as_bytes(),
        };
        let ciphertext = self
            .cipher
            .encrypt(&Nonce::from(nonce), payload)
            .unwrap_or_else(|_| unreachable!("AES-GCM encryption of a short value cannot fail"));
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(sealed))
    }

    /// Decrypts a value that [`MasterKey::seal`] made for the same
    /// `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<String, CryptoError> {
        let encoded = sealed.strip_prefix(SEALED_PREFIX).ok_or(CryptoError::NotSealed)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| CryptoError::WrongKey)?;
        if bytes.len() < NONCE_LEN {
            return Err(CryptoError::WrongKey);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::WrongKey)?;
        let payload = Payload {
            msg: ciphertext,
            aad: context.as_bytes(),
        };
        let plaintext = self
            .cipher
            .decrypt(&Nonce::from(nonce), payload)
            .map_err(|_| CryptoError::WrongKey)?;
        String::from_utf8(plaintext).map_err(|_| CryptoError::WrongKey)
    }
}

/// Tells whether a stored value is in the sealed format.
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(SEALED_PREFIX)
}

/// Context of a client secret in `application_secrets.value`.
pub fn application_secret_context(secret_id: &str) -> String {
    format!("application_secret:{secret_id}")
}

/// Context of a private key in `signing_keys.private_key`.
pub fn signing_key_context(kid: &str) -> String {
    format!("signing_key:{kid}")
}

/// Context of `applications.openai_verification_token`.
pub fn verification_token_context(application_id: &str) -> String {
    format!("verification_token:{application_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips() {
        let (key, _) = MasterKey::generate();
        let sealed = key.seal("application_secret:a1", "s3cret");
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("s3cret"));
        assert_eq!(key.open("application_secret:a1", &sealed).unwrap(), "s3cret");
    }

    #[test]
    fn value_moved_to_another_row_does_not_open() {
        let (key, _) = MasterKey::generate();
        let sealed = key.seal("application_secret:a1", "s3cret");
        assert!(matches!(key.open("application_secret:a2", &sealed), Err(CryptoError::WrongKey)));
    }

    #[test]
    fn another_key_does_not_open() {
        let (first, _) = MasterKey::generate();
        let (second, _) = MasterKey::generate();
        let sealed = first.seal("c", "value");
        assert!(matches!(second.open("c", &sealed), Err(CryptoError::WrongKey)));
    }

    #[test]
    fn same_value_seals_differently_each_time() {
        let (key, _) = MasterKey::generate();
        assert_ne!(key.seal("c", "value"), key.seal("c", "value"));
    }

    #[test]
    fn malformed_keys_are_rejected() {
        assert!(matches!(MasterKey::from_base64("short"), Err(CryptoError::MalformedKey)));
        assert!(matches!(MasterKey::from_base64(&STANDARD.encode([0u8; 16])), Err(CryptoError::MalformedKey)));
        assert!(MasterKey::from_base64(&STANDARD.encode([7u8; 32])).is_ok());
    }

    #[test]
    fn concurrent_first_starts_agree_on_one_key_file() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().to_path_buf();
            let loaders: Vec<_> = (0..4)
                .map(|_| {
                    let path = path.clone();
                    std::thread::spawn(move || MasterKey::load_or_create_file(&path).unwrap())
                })
                .collect();
            let keys: Vec<(MasterKey, bool)> = loaders.into_iter().map(|loader| loader.join().unwrap()).collect();
            assert_eq!(keys.iter().filter(|(_, created)| *created).count(), 1, "one thread creates the file");
            let sealed = keys[0].0.seal("c", "value");
            for (key, _) in &keys {
                assert_eq!(key.open("c", &sealed).unwrap(), "value");
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (first, created) = MasterKey::load_or_create_file(dir.path()).unwrap();
        assert!(created);
        let mode = std::fs::metadata(dir.path().join(MASTER_KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (second, created) = MasterKey::load_or_create_file(dir.path()).unwrap();
        assert!(!created);
        let sealed = first.seal("c", "value");
        assert_eq!(second.open("c", &sealed).unwrap(), "value");
    }
}
