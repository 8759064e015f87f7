//! sea-orm entities for the tables the console reads and writes.

/// An OAuth client registered in the console.
pub mod application {
    use sea_orm::entity::prelude::*;

    /// One row of `applications`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "applications")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub kind: String,
        /// JSON array of strings.
        pub redirect_uris: String,
        /// JSON array of strings.
        pub post_logout_redirect_uris: String,
        pub always_issue_refresh_token: bool,
        pub rotate_refresh_token: bool,
        pub refresh_token_ttl_days: i32,
        pub access_token_ttl_secs: i32,
        pub id_token_ttl_secs: i32,
        pub default_scope: String,
        pub audience: Option<String>,
        pub signing_alg: String,
        pub openai_verification_token: Option<String>,
        pub token_content_type: String,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A client secret of an application.
pub mod application_secret {
    use sea_orm::entity::prelude::*;

    /// One row of `application_secrets`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "application_secrets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub application_id: String,
        pub name: String,
        pub value: String,
        pub expires_at: Option<i64>,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Server-wide settings stored as key and value.
pub mod setting {
    use sea_orm::entity::prelude::*;

    /// One row of `settings`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "settings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub value: String,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// An end user who signs in to applications through Latch.
pub mod user {
    use sea_orm::entity::prelude::*;

    /// One row of `users`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Lower-case user name, unique.
        pub username: String,
        /// Lower-case email address, unique when present.
        pub email: Option<String>,
        pub name: Option<String>,
        /// Argon2id hash in PHC string format.
        pub password_hash: String,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A browser session, found by the SHA-256 hash of its cookie value.
pub mod session {
    use sea_orm::entity::prelude::*;

    /// One row of `sessions`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id_hash: String,
        /// `user` for end users, `admin` for console operators.
        pub kind: String,
        /// Id of the user or admin.
        pub subject_id: String,
        /// When the subject last entered a password.
        pub auth_time: i64,
        pub created_at: i64,
        pub last_seen_at: i64,
        pub expires_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A validated authorization request waiting for the user to sign in.
pub mod interaction {
    use sea_orm::entity::prelude::*;

    /// One row of `interactions`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "interactions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub application_id: String,
        /// The authorization request parameters as JSON.
        pub request: String,
        pub created_at: i64,
        pub expires_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// An authorization code, found by its SHA-256 hash.
pub mod authorization_code {
    use sea_orm::entity::prelude::*;

    /// One row of `authorization_codes`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "authorization_codes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub code_hash: String,
        pub application_id: String,
        pub user_id: String,
        pub redirect_uri: String,
        /// Granted scope, space-separated.
        pub scope: String,
        pub nonce: Option<String>,
        /// S256 code challenge, when the request had one.
        pub code_challenge: Option<String>,
        pub auth_time: i64,
        /// Whether the exchange returns a refresh token.
        pub issue_refresh_token: bool,
        pub created_at: i64,
        pub expires_at: i64,
        /// Set on the first redemption; a second one is refused.
        pub consumed_at: Option<i64>,
        /// Set when a second redemption revoked everything the code
        /// produced, access tokens without a refresh token included.
        pub revoked_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A refresh token family: the token issued with a code and every token
/// that replaced it. Revoking the family revokes all of them.
pub mod refresh_token_family {
    use sea_orm::entity::prelude::*;

    /// One row of `refresh_token_families`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_token_families")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub family_id: String,
        pub application_id: String,
        pub user_id: String,
        /// Hash of the code that started the family.
        pub code_hash: Option<String>,
        pub created_at: i64,
        pub revoked_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A refresh token, found by its SHA-256 hash and grouped in a family for
/// rotation and reuse detection.
pub mod refresh_token {
    use sea_orm::entity::prelude::*;

    /// One row of `refresh_tokens`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        pub family_id: String,
        pub application_id: String,
        pub user_id: String,
        pub scope: String,
        pub auth_time: i64,
        /// Hash of the code that started the family.
        pub code_hash: Option<String>,
        pub created_at: i64,
        pub expires_at: i64,
        pub rotated_at: Option<i64>,
        pub replaced_by_hash: Option<String>,
        /// Set on tokens revoked before families had rows of their own.
        /// Revocation now goes to the family (see `refresh_token_family`).
        pub revoked_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A key that signs ID and access tokens.
pub mod signing_key {
    use sea_orm::entity::prelude::*;

    /// One row of `signing_keys`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "signing_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub kid: String,
        /// `ES256` or `RS256`.
        pub alg: String,
        /// PKCS#8 PEM of the private key.
        pub private_key: String,
        /// Public key as a JWK, JSON.
        pub public_jwk: String,
        pub created_at: i64,
        pub retired_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A console operator. Admins are kept apart from end users: an end-user
/// account never reaches the console.
pub mod admin {
    use sea_orm::entity::prelude::*;

    /// One row of `admins`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "admins")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Lower-case user name, unique.
        pub username: String,
        /// Argon2id hash in PHC string format.
        pub password_hash: String,
        pub created_at: i64,
        pub updated_at: i64,
        pub last_sign_in_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A one-time token that lets the first admin be created.
pub mod setup_token {
    use sea_orm::entity::prelude::*;

    /// One row of `setup_tokens`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "setup_tokens")]
    pub struct Model {
        /// SHA-256 of the token, hex.
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        pub created_at: i64,
        pub expires_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Failed sign-ins counted per account or per client address.
pub mod sign_in_throttle {
    use sea_orm::entity::prelude::*;

    /// One row of `sign_in_throttles`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sign_in_throttles")]
    pub struct Model {
        /// Counter key, such as `admin-account:<hash>` or
        /// `user-address:<ip>`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        /// Failures since the counter was last reset.
        pub failures: i32,
        pub last_failure_at: i64,
        /// No password is checked for this key before this time.
        pub blocked_until: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
