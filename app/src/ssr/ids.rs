//! Random identifiers and secrets, drawn from the operating system's RNG.

use rand::Rng;
use rand::rngs::OsRng;

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
}
