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
