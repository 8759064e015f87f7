//! Values the console exchanges with the server.

use serde::{Deserialize, Serialize};

/// Kind of OAuth client an application is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationKind {
    /// A ChatGPT plugin or GPT Action: a confidential web client that keeps
    /// a secret and receives codes at an https callback.
    ChatgptPlugin,
    /// A native or command-line app: a public client that may use custom
    /// URI schemes and loopback callbacks and must use PKCE.
    Native,
}

impl ApplicationKind {
    /// Every kind, in the order the console lists them.
    pub const ALL: [ApplicationKind; 2] = [Self::ChatgptPlugin, Self::Native];

    /// Returns the name stored in the database and used in forms.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChatgptPlugin => "chatgpt_plugin",
            Self::Native => "native",
        }
    }

    /// Parses a stored or submitted kind name.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == value)
    }

    /// Returns the label shown in the console.
    pub fn label(self) -> &'static str {
        match self {
            Self::ChatgptPlugin => "ChatGPT plugin",
            Self::Native => "Native app",
        }
    }

    /// Tells whether clients of this kind hold a secret.
    pub fn is_confidential(self) -> bool {
        matches!(self, Self::ChatgptPlugin)
    }
}

/// Encoding of ChatGPT's token request, set in the plugin manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum TokenContentType {
    /// `application/json`, ChatGPT's default.
    #[default]
    Json,
    /// `application/x-www-form-urlencoded`, the encoding RFC 6749 defines.
    Form,
}

impl TokenContentType {
    /// Returns the media type written into `ai-plugin.json`.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Form => "application/x-www-form-urlencoded",
        }
    }

    /// Parses a media type as stored or submitted.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "application/json" => Some(Self::Json),
            "application/x-www-form-urlencoded" => Some(Self::Form),
            _ => None,
        }
    }
}

/// One row of the applications list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationSummary {
    /// App ID, which is also the OAuth `client_id`.
    pub id: String,
    /// Name shown to the developer and on the sign-in page.
    pub name: String,
    /// Client kind.
    pub kind: ApplicationKind,
    /// Number of registered redirect URIs.
    pub redirect_uri_count: usize,
    /// Creation time, in seconds since the Unix epoch.
    pub created_at: i64,
}

/// A client secret as the guide shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretView {
    /// Identifier of the secret, not the secret itself.
    pub id: String,
    /// Name the developer gave the secret.
    pub name: String,
    /// The secret, which ChatGPT needs as "Client Secret".
    pub value: String,
    /// Expiry, in seconds since the Unix epoch, if the secret expires.
    pub expires_at: Option<i64>,
}

impl SecretView {
    /// Tells whether the secret has expired at `now`. The token endpoint
    /// accepts a secret only while `now` is before its `expires_at`.
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|expiry| expiry <= now)
    }
}

/// Maximum number of secrets, expired or not, per application.
pub const MAX_SECRETS: usize = 10;
/// Maximum length of a secret's name, in characters.
pub const MAX_SECRET_NAME_LEN: usize = 64;

/// A client secret in the guide's list of secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretListing {
    /// The secret with its value.
    pub secret: SecretView,
    /// Creation time, in seconds since the Unix epoch.
    pub created_at: i64,
}

/// The client secrets of one application, as read at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationSecrets {
    /// Secrets, newest first.
    pub secrets: Vec<SecretListing>,
    /// Server time of the read, in seconds since the Unix epoch. The guide
    /// marks secrets as expired against this time, not the browser's clock.
    pub read_at: i64,
}

impl ApplicationSecrets {
    /// Returns the newest secret that has not expired: the one the guide
    /// offers as the App Secret.
    pub fn current(&self) -> Option<&SecretView> {
        self.secrets
            .iter()
            .map(|listing| &listing.secret)
            .find(|secret| !secret.is_expired(self.read_at))
    }

    /// Counts the secrets that have not expired.
    pub fn live_count(&self) -> usize {
        self.secrets
            .iter()
            .filter(|listing| !listing.secret.is_expired(self.read_at))
            .count()
    }
}

/// Everything the guide needs about one application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationDetails {
    /// App ID, which is also the OAuth `client_id`.
    pub id: String,
    /// Name shown to the developer and on the sign-in page.
    pub name: String,
    /// Client kind.
    pub kind: ApplicationKind,
    /// Registered redirect URIs, in the order they were saved.
    pub redirect_uris: Vec<String>,
    /// Whether the authorization code grant always returns a refresh token.
    pub always_issue_refresh_token: bool,
    /// Client secrets, newest first.
    pub secrets: Vec<SecretView>,
    /// Token that ChatGPT requires the plugin manifest to carry.
    pub openai_verification_token: Option<String>,
    /// Encoding of ChatGPT's token request.
    pub token_content_type: TokenContentType,
    /// Scope granted when a request sends none.
    pub default_scope: String,
    /// `aud` of access tokens: the URL of the plugin's API.
    pub audience: Option<String>,
}

/// The public addresses of this server's OAuth endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// Origin that every other URL starts with: the custom domain when one
    /// is set, the public URL otherwise.
    pub base: String,
    /// Custom domain, when one is set.
    pub custom_domain: Option<String>,
    /// OpenID Connect issuer.
    pub issuer: String,
    /// Authorization endpoint, where ChatGPT sends the browser.
    pub authorization: String,
    /// Token endpoint, which ChatGPT's servers call.
    pub token: String,
    /// Userinfo endpoint.
    pub userinfo: String,
    /// JSON Web Key Set with the public signing keys.
    pub jwks: String,
    /// OpenID discovery document.
    pub discovery: String,
}

impl Endpoints {
    /// Derives every endpoint URL from the origin the guide should show.
    pub fn from_base(base: &str, custom_domain: Option<String>) -> Self {
        let base = base.trim_end_matches('/').to_owned();
        let issuer = format!("{base}/oidc");
        Self {
            authorization: format!("{issuer}/auth"),
            token: format!("{issuer}/token"),
            userinfo: format!("{issuer}/me"),
            jwks: format!("{issuer}/jwks"),
            discovery: format!("{issuer}/.well-known/openid-configuration"),
            issuer,
            base,
            custom_domain,
        }
    }
}

/// Data for the guide page of one application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuideData {
    /// The application the guide configures.
    pub application: ApplicationDetails,
    /// Addresses at which ChatGPT reaches this server.
    pub endpoints: Endpoints,
}

/// Console settings that apply to every application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleSettings {
    /// Public URL the server was started with.
    pub public_url: String,
    /// Custom domain, when one is set.
    pub custom_domain: Option<String>,
}

/// The admin whose console session a request carries. The server puts it
/// into the request's extensions after checking the session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedInAdmin {
    /// Row id of the admin.
    pub admin_id: String,
    /// User name, shown in the navigation bar.
    pub username: String,
    /// Token that the sign-out form sends back.
    pub csrf_token: String,
}
