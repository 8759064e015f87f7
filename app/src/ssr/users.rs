//! End users: registration rules, look-up by user name or email, creation.
//!
//! User names and email addresses are stored in lower case, so look-ups
//! and the unique indexes ignore case.

use super::applications::internal;
use super::entities::user;
use super::ids;
use crate::error::AppError;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

/// Minimum password length, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Maximum password length, in bytes. Argon2 accepts more, but a cap keeps
/// form posts small and hashing time predictable.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Minimum user name length, in characters.
pub const MIN_USERNAME_CHARS: usize = 3;
/// Maximum user name length, matching the `users.username` column.
pub const MAX_USERNAME_CHARS: usize = 64;
/// Maximum email length, matching the `users.email` column (RFC 5321).
pub const MAX_EMAIL_CHARS: usize = 254;

/// A registration form value that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    /// The user name is too short, too long or has other characters.
    #[error(
        "Choose a user name of 3 to 64 characters: letters a-z, digits, dots, hyphens and underscores."
    )]
    InvalidUsername,
    /// The email address is not of the form `local@domain`.
    #[error("Enter a valid email address, such as ada@example.com, or leave the field empty.")]
    InvalidEmail,
    /// The password is shorter than [`MIN_PASSWORD_CHARS`].
    #[error("Choose a password of at least 8 characters.")]
    PasswordTooShort,
    /// The password is longer than [`MAX_PASSWORD_BYTES`].
    #[error("Choose a password of at most 1024 bytes.")]
    PasswordTooLong,
    /// The confirmation differs from the password.
    #[error("The two passwords differ. Type the same password twice.")]
    PasswordMismatch,
    /// Another user has this user name.
    #[error("This user name is taken. Choose another one, or sign in.")]
    UsernameTaken,
    /// Another user has this email address.
    #[error("This email address is already registered. Sign in instead.")]
    EmailTaken,
}

/// Checks a user name and returns it in lower case.
pub fn check_username(raw: &str) -> Result<String, RegistrationError> {
    let username = raw.trim().to_lowercase();
    let length = username.chars().count();
    let allowed =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_');
    if !(MIN_USERNAME_CHARS..=MAX_USERNAME_CHARS).contains(&length)
        || !username.chars().all(allowed)
    {
        return Err(RegistrationError::InvalidUsername);
    }
    Ok(username)
}

/// Checks an optional email address and returns it in lower case, or
/// `None` when the field was left empty. Only the shape is checked: one
/// `@` with text on both sides, and a dot in the domain.
pub fn check_email(raw: &str) -> Result<Option<String>, RegistrationError> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Ok(None);
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(RegistrationError::InvalidEmail);
    };
    let well_formed = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && email.chars().count() <= MAX_EMAIL_CHARS
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !well_formed {
        return Err(RegistrationError::InvalidEmail);
    }
    Ok(Some(email))
}

/// Checks a new password and its confirmation.
pub fn check_new_password(password: &str, confirmation: &str) -> Result<(), RegistrationError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(RegistrationError::PasswordTooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(RegistrationError::PasswordTooLong);
    }
    if password != confirmation {
        return Err(RegistrationError::PasswordMismatch);
    }
    Ok(())
}

/// Finds a user by user name, or by email address when `login` contains
/// an `@`. Case is ignored.
pub async fn find_by_login(
    db: &impl ConnectionTrait,
    login: &str,
) -> Result<Option<user::Model>, AppError> {
    let login = login.trim().to_lowercase();
    if login.is_empty() {
        return Ok(None);
    }
    let column = if login.contains('@') {
        user::Column::Email
    } else {
        user::Column::Username
    };
    user::Entity::find()
        .filter(column.eq(login))
        .one(db)
        .await
        .map_err(internal)
}

/// Returns the user with internal id `id`.
pub async fn find_by_id(
    db: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<user::Model>, AppError> {
    user::Entity::find_by_id(id.to_owned())
        .one(db)
        .await
        .map_err(internal)
}

/// Reports which unique value, if any, another user already has.
pub async fn find_conflict(
    db: &impl ConnectionTrait,
    username: &str,
    email: Option<&str>,
) -> Result<Option<RegistrationError>, AppError> {
    if find_by_login(db, username).await?.is_some() {
        return Ok(Some(RegistrationError::UsernameTaken));
    }
    if let Some(email) = email
        && find_by_login(db, email).await?.is_some()
    {
        return Ok(Some(RegistrationError::EmailTaken));
    }
    Ok(None)
}

/// Input for [`create_user`]. The values must have passed the checks above.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Lower-case user name.
    pub username: String,
    /// Lower-case email address.
    pub email: Option<String>,
    /// Argon2id hash in PHC string format.
    pub password_hash: String,
}

/// Inserts a user and returns the stored row.
///
/// When a concurrent registration took the same user name or email first,
/// the unique index rejects the insert and the conflict is returned.
pub async fn create_user(
    db: &impl ConnectionTrait,
    input: NewUser,
    now: i64,
) -> Result<Result<user::Model, RegistrationError>, AppError> {
    let row = user::ActiveModel {
        id: Set(ids::new_row_id()),
        username: Set(input.username.clone()),
        email: Set(input.email.clone()),
        name: Set(None),
        password_hash: Set(input.password_hash),
        created_at: Set(now),
        updated_at: Set(now),
    };
    match row.insert(db).await {
        Ok(model) => Ok(Ok(model)),
        Err(error) => match find_conflict(db, &input.username, input.email.as_deref()).await? {
            Some(conflict) => Ok(Err(conflict)),
            None => Err(internal(error)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_rules() {
        assert_eq!(check_username(" Ada.L_1 ").unwrap(), "ada.l_1");
        assert_eq!(
            check_username("ab"),
            Err(RegistrationError::InvalidUsername)
        );
        assert_eq!(
            check_username("a b c"),
            Err(RegistrationError::InvalidUsername)
        );
        assert_eq!(
            check_username("ada@x"),
            Err(RegistrationError::InvalidUsername)
        );
        assert_eq!(
            check_username(&"a".repeat(65)),
            Err(RegistrationError::InvalidUsername)
        );
    }

    #[test]
    fn email_rules() {
        assert_eq!(check_email("").unwrap(), None);
        assert_eq!(
            check_email(" Ada@Example.COM ").unwrap().as_deref(),
            Some("ada@example.com")
        );
        assert_eq!(check_email("ada"), Err(RegistrationError::InvalidEmail));
        assert_eq!(
            check_email("@example.com"),
            Err(RegistrationError::InvalidEmail)
        );
        assert_eq!(
            check_email("ada@localhost"),
            Err(RegistrationError::InvalidEmail)
        );
        assert_eq!(
            check_email("a@b@c.com"),
            Err(RegistrationError::InvalidEmail)
        );
    }

    #[test]
    fn password_rules() {
        assert_eq!(
            check_new_password("1234567", "1234567"),
            Err(RegistrationError::PasswordTooShort)
        );
        assert_eq!(
            check_new_password("12345678", "12345679"),
            Err(RegistrationError::PasswordMismatch)
        );
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(
            check_new_password(&long, &long),
            Err(RegistrationError::PasswordTooLong)
        );
        assert!(check_new_password("12345678", "12345678").is_ok());
    }
}
