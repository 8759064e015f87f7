//! Widgets shared by the console pages.
//!
//! [`ds`] contains the design-system pieces (cards, buttons, fields); the
//! other modules are the guide's feature components.

pub mod client_credentials;
pub mod client_secrets;
pub mod copy_button;
pub mod custom_domain_notice;
pub mod ds;
pub mod error_notice;
pub mod plugin_manifest;
pub mod redirect_uris;
pub mod refresh_token_switch;
pub mod token_verification;

pub use client_credentials::ClientCredentials;
pub use client_secrets::ClientSecrets;
pub use copy_button::CopyButton;
pub use custom_domain_notice::CustomDomainNotice;
pub use error_notice::ErrorNotice;
pub use plugin_manifest::PluginManifest;
pub use redirect_uris::RedirectUriField;
pub use refresh_token_switch::RefreshTokenSwitch;
pub use token_verification::TokenVerification;
