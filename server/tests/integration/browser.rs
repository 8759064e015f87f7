//! A minimal browser for the sign-in tests: it keeps cookies, sends them
//! back, never follows redirects, and reads hidden form fields. Also
//! helpers to register applications and users and to count stored rows.

#![allow(dead_code)]

use crate::common::TestServer;
use app::model::ApplicationKind;
use app::ssr::applications::{NewApplication, create_application, set_redirect_uris};
use app::ssr::entities::{authorization_code, interaction, session, user};
use app::ssr::{passwords, sessions, users};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use sea_orm::{EntityTrait, PaginatorTrait};
use std::collections::{BTreeMap, HashMap};

/// The callback of a ChatGPT plugin.
pub const PLUGIN_CALLBACK: &str =
    "https://chat.openai.com/aip/plugin-0b6f3c1e-5d2a-4c4e-9a57-7c0a1e2f3b4d/oauth/callback";
/// The stable callback of ChatGPT connectors.
pub const CONNECTOR_CALLBACK: &str = "https://chatgpt.com/connector_platform_oauth_redirect";
/// S256 challenge of the verifier in RFC 7636 appendix B.
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGKgc-ifvs";
/// Password of users made by [`create_user`].
pub const PASSWORD: &str = "correct horse battery";

/// A cookie jar in front of the server's HTTP client.
pub struct Browser<'a> {
    server: &'a TestServer,
    http: reqwest::Client,
    /// Cookies by name.
    pub cookies: BTreeMap<String, String>,
    /// Raw `Set-Cookie` values of the last response.
    pub last_set_cookies: Vec<String>,
}

impl<'a> Browser<'a> {
    /// Starts with no cookies.
    pub fn new(server: &'a TestServer) -> Self {
        Self::with_client(server, server.http.clone())
    }

    /// Starts with no cookies, sending through `http`, for example a client
    /// bound to another loopback address.
    pub fn with_client(server: &'a TestServer, http: reqwest::Client) -> Self {
        Self {
            server,
            http,
            cookies: BTreeMap::new(),
            last_set_cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn remember(&mut self, response: &reqwest::Response) {
        self.last_set_cookies.clear();
        for value in response.headers().get_all(SET_COOKIE) {
            let text = value.to_str().expect("ASCII Set-Cookie").to_owned();
            let pair = text.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').expect("cookie has a name");
            if text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
            self.last_set_cookies.push(text);
        }
    }

    /// Sends a GET to `path_or_url` (a path on the server or a full URL).
    pub async fn get(&mut self, path_or_url: &str) -> reqwest::Response {
        let url = self.absolute(path_or_url);
        let response = self
            .http
            .get(url)
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .expect("GET is answered");
        self.remember(&response);
        response
    }

    /// Posts a form to `path`.
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let response = self
            .http
            .post(self.absolute(path))
            .header(COOKIE, self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST is answered");
        self.remember(&response);
        response
    }

    fn absolute(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            self.server.url(path_or_url)
        }
    }
}

/// Returns the `Location` header.
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .expect("response has a Location header")
        .to_str()
        .expect("ASCII Location")
        .to_owned()
}

/// Returns the decoded query parameters of `url`.
pub fn query_of(url: &str) -> HashMap<String, String> {
    let parsed = url::Url::parse(url).expect("absolute URL");
    parsed.query_pairs().into_owned().collect()
}

/// Returns the part of `location` before the query.
pub fn without_query(location: &str) -> &str {
    location.split('?').next().unwrap_or(location)
}

/// Returns the `value` of the input named `name` in `html`.
pub fn input_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no input named {name}"));
    let rest = &html[start..];
    let value_start = rest.find("value=\"").expect("input has a value") + "value=\"".len();
    let value_end = rest[value_start..].find('"').expect("value is quoted");
    rest[value_start..value_start + value_end].to_owned()
}

/// Registers a ChatGPT plugin application with `redirect_uris`.
pub async fn plugin_app(
    server: &TestServer,
    redirect_uris: &[&str],
    always_issue_refresh_token: bool,
) -> String {
    create_app(
        server,
        "Weather plugin",
        ApplicationKind::ChatgptPlugin,
        redirect_uris,
        always_issue_refresh_token,
    )
    .await
}

/// Registers a native (public) application with `redirect_uris`.
pub async fn native_app(server: &TestServer, redirect_uris: &[&str]) -> String {
    create_app(
        server,
        "Desktop app",
        ApplicationKind::Native,
        redirect_uris,
        false,
    )
    .await
}

/// Registers an application, setting its redirect URIs with
/// `set_redirect_uris` as the console does.
pub async fn create_app(
    server: &TestServer,
    name: &str,
    kind: ApplicationKind,
    redirect_uris: &[&str],
    always_issue_refresh_token: bool,
) -> String {
    let now = app::ssr::now();
    let input = NewApplication {
        name: name.into(),
        kind,
        redirect_uris: Vec::new(),
        always_issue_refresh_token,
    };
    let details = create_application(server.db(), &server.state.master_key, input, now)
        .await
        .expect("application created");
    let uris: Vec<String> = redirect_uris.iter().map(|uri| uri.to_string()).collect();
    set_redirect_uris(server.db(), &details.id, &uris, now)
        .await
        .expect("redirect URIs saved");
    details.id
}

/// Creates a user with [`PASSWORD`] and returns the stored row.
pub async fn create_user(server: &TestServer, username: &str, email: Option<&str>) -> user::Model {
    let hash = passwords::hash_password(PASSWORD.into())
        .await
        .expect("hash");
    let input = users::NewUser {
        username: username.into(),
        email: email.map(str::to_owned),
        password_hash: hash,
    };
    users::create_user(server.db(), input, app::ssr::now())
        .await
        .expect("database works")
        .expect("no conflict")
}

/// Starts a session for `user_id` that began at `auth_time` and returns the
/// cookie value.
pub async fn create_session(server: &TestServer, user_id: &str, auth_time: i64) -> String {
    sessions::create_user_session(server.db(), user_id, auth_time)
        .await
        .expect("session created")
        .cookie_value
}

/// Numbers of stored rows that the sign-in flow writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub users: u64,
    pub sessions: u64,
    pub interactions: u64,
    pub codes: u64,
}

/// Counts the rows of the tables the sign-in flow writes.
pub async fn counts(server: &TestServer) -> Counts {
    let db = server.db();
    Counts {
        users: user::Entity::find().count(db).await.expect("count users"),
        sessions: session::Entity::find()
            .count(db)
            .await
            .expect("count sessions"),
        interactions: interaction::Entity::find()
            .count(db)
            .await
            .expect("count interactions"),
        codes: authorization_code::Entity::find()
            .count(db)
            .await
            .expect("count codes"),
    }
}

/// Returns the stored row of authorization code `code`.
pub async fn code_row(server: &TestServer, code: &str) -> authorization_code::Model {
    authorization_code::Entity::find_by_id(app::ssr::ids::sha256_hex(code))
        .one(server.db())
        .await
        .expect("query codes")
        .expect("the code is stored by its hash")
}

/// Builds `/oidc/auth?<pairs>`.
pub fn authorize_path(pairs: &[(&str, &str)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("/oidc/auth?{query}")
}

/// The issuer of a test server.
pub fn issuer(server: &TestServer) -> String {
    server.url("/oidc")
}
