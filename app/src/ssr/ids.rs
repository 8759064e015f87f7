//! Random identifiers and secrets, drawn from the operating system's RNG.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};

const LOWER_ALPHANUMERIC: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const ALPHANUMERIC: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Length of an App ID.
pub const APP_ID_LEN: usize = 21;
/// Length of an App Secret: 32 characters of 62 give about 190 bits.
pub const APP_SECRET_LEN: usize = 32;

fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut rng = OsRng;
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

/// Generates an App ID: 21 characters of `[0-9a-z]`.
pub fn new_app_id() -> String {
    random_string(LOWER_ALPHANUMERIC, APP_ID_LEN)
}

/// Generates an App Secret: 32 characters of `[0-9a-zA-Z]`.
pub fn new_app_secret() -> String {
    random_string(ALPHANUMERIC, APP_SECRET_LEN)
}

/// Generates a random identifier for database rows.
pub fn new_row_id() -> String {
    random_string(LOWER_ALPHANUMERIC, APP_ID_LEN)
}

/// Generates an opaque bearer value (code, refresh token, session cookie):
/// 32 random bytes, base64url without padding, 43 characters.
pub fn new_opaque_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Returns the lower-case hex SHA-256 of `value`: the form in which codes,
/// refresh tokens and session ids are stored.
pub fn sha256_hex(value: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(value.as_bytes());
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_id_format() {
        let id = new_app_id();
        assert_eq!(id.len(), 21);
        assert!(id.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
    }

    #[test]
    fn app_secret_format() {
        let secret = new_app_secret();
        assert_eq!(secret.len(), 32);
        assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(secret, new_app_secret());
    }

    #[test]
    fn opaque_token_format() {
        let token = new_opaque_token();
        assert_eq!(token.len(), 43);
        assert_ne!(token, new_opaque_token());
    }

    #[test]
    fn sha256_hex_known_value() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
