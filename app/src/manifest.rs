//! The `auth` section of a ChatGPT plugin's `ai-plugin.json`.

use crate::model::{Endpoints, TokenContentType};
use serde::Serialize;

/// The manifest fragment, as an object with a single `auth` key so that
/// it is valid JSON on its own.
#[derive(Debug, Serialize)]
pub struct ManifestAuthSection<'a> {
    /// The `auth` object of the manifest.
    pub auth: ManifestAuth<'a>,
}

/// The `auth` object of `ai-plugin.json` for OAuth.
///
/// ChatGPT's key names are misleading: `client_url` is where the browser
/// is sent (the authorization endpoint) and `authorization_url` is what
/// ChatGPT's servers call to exchange the code (the token endpoint).
#[derive(Debug, Serialize)]
pub struct ManifestAuth<'a> {
    /// Always `oauth`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Authorization endpoint.
    pub client_url: &'a str,
    /// Scope ChatGPT requests.
    pub scope: &'a str,
    /// Token endpoint.
    pub authorization_url: &'a str,
    /// Encoding of the token request body.
    pub authorization_content_type: &'static str,
    /// Tokens by which ChatGPT proves it owns the manifest.
    pub verification_tokens: VerificationTokens<'a>,
}

/// The `verification_tokens` map.
#[derive(Debug, Serialize)]
pub struct VerificationTokens<'a> {
    /// Token shown by ChatGPT when the plugin is registered; empty until
    /// the developer pastes it.
    pub openai: &'a str,
}

/// Renders the `auth` section as indented JSON.
pub fn plugin_auth_json(
    endpoints: &Endpoints,
    scope: &str,
    content_type: TokenContentType,
    verification_token: &str,
) -> String {
    let section = ManifestAuthSection {
        auth: ManifestAuth {
            kind: "oauth",
            client_url: &endpoints.authorization,
            scope,
            authorization_url: &endpoints.token,
            authorization_content_type: content_type.media_type(),
            verification_tokens: VerificationTokens {
                openai: verification_token,
            },
        },
    };
    serde_json::to_string_pretty(&section).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_section_is_valid_json_with_endpoints() {
        let endpoints = Endpoints::from_base("https://auth.example.com/", None);
        let text = plugin_auth_json(&endpoints, "openid profile", TokenContentType::Json, "tok\"en");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let auth = &value["auth"];
        assert_eq!(auth["type"], "oauth");
        assert_eq!(auth["client_url"], "https://auth.example.com/oidc/auth");
        assert_eq!(auth["authorization_url"], "https://auth.example.com/oidc/token");
        assert_eq!(auth["scope"], "openid profile");
        assert_eq!(auth["authorization_content_type"], "application/json");
        assert_eq!(auth["verification_tokens"]["openai"], "tok\"en");
    }

    #[test]
    fn auth_section_form_content_type() {
        let endpoints = Endpoints::from_base("http://127.0.0.1:3000", None);
        let text = plugin_auth_json(&endpoints, "", TokenContentType::Form, "");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["auth"]["authorization_content_type"], "application/x-www-form-urlencoded");
    }
}
