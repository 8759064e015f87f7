//! Reading the parameters of a protocol request body.
//!
//! RFC 6749 defines form encoding for the token endpoint. ChatGPT plugins
//! post JSON by default (`authorization_content_type` in the manifest), so
//! a flat JSON object whose values are all strings is accepted as well and
//! read into the same parameter map. Anything else is `invalid_request`.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use super::errors::OAuthError;
use axum::http::{HeaderMap, header};
use std::collections::HashMap;

/// Largest request body a protocol endpoint reads. A token request is
/// well under 8 KiB; the limit stops floods before any parsing or hashing.
pub const PROTOCOL_BODY_LIMIT: usize = 64 * 1024;

/// The parameters of a request, with empty values treated as absent
/// (RFC 6749 section 3.1).
#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Returns a parameter, or `None` when it is absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    /// Returns a parameter or the `invalid_request` error `missing`.
    pub fn require(&self, name: &str, missing: &'static str) -> Result<&str, OAuthError> {
        self.get(name).ok_or(OAuthError::InvalidRequest(missing))
    }
}

/// Parses a form-encoded or JSON body according to its `Content-Type`.
pub fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .ok_or(OAuthError::InvalidRequest(
            "The Content-Type header is missing.",
        ))?
        .to_str()
        .map_err(|_| OAuthError::InvalidRequest("The Content-Type header is not readable."))?;
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "application/x-www-form-urlencoded" => parse_form(body),
        "application/json" => parse_json(body),
        _ => Err(OAuthError::InvalidRequest(
            "Send the body as application/x-www-form-urlencoded or application/json.",
        )),
    }
}

/// RFC 6749 section 3.1: parameters must not be repeated.
fn parse_form(body: &[u8]) -> Result<Params, OAuthError> {
    let mut params = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        if params
            .insert(name.into_owned(), value.into_owned())
            .is_some()
        {
            return Err(OAuthError::InvalidRequest("A parameter is repeated."));
        }
    }
    Ok(Params(params))
}

fn parse_json(body: &[u8]) -> Result<Params, OAuthError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| OAuthError::InvalidRequest("The JSON body does not parse."))?;
    let serde_json::Value::Object(object) = value else {
        return Err(OAuthError::InvalidRequest(
            "The JSON body must be an object.",
        ));
    };
    // serde_json keeps the last of repeated members, so read the body
    // again to find them.
    if serde_json::from_slice::<UniqueMembers>(body).is_err() {
        return Err(OAuthError::InvalidRequest("A parameter is repeated."));
    }
    let mut params = HashMap::new();
    for (name, value) in object {
        let serde_json::Value::String(text) = value else {
            return Err(OAuthError::InvalidRequest(
                "Every JSON parameter must be a string.",
            ));
        };
        params.insert(name, text);
    }
    Ok(Params(params))
}

/// A JSON object that deserializes only when no member name repeats.
struct UniqueMembers;

impl<'de> serde::Deserialize<'de> for UniqueMembers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(UniqueMembersVisitor)
    }
}

struct UniqueMembersVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueMembersVisitor {
    type Value = UniqueMembers;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON object without repeated member names")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            map.next_value::<serde::de::IgnoredAny>()?;
            if !seen.insert(name) {
                return Err(serde::de::Error::custom("a member name is repeated"));
            }
        }
        Ok(UniqueMembers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        headers
    }

    #[test]
    fn form_body_parses() {
        let params =
            parse_body(&headers("application/x-www-form-urlencoded"), b"a=1&b=x+y").unwrap();
        assert_eq!(params.get("a"), Some("1"));
        assert_eq!(params.get("b"), Some("x y"));
    }

    #[test]
    fn empty_value_counts_as_absent() {
        let params = parse_body(&headers("application/x-www-form-urlencoded"), b"scope=").unwrap();
        assert_eq!(params.get("scope"), None);
    }

    #[test]
    fn repeated_form_parameter_is_rejected() {
        let result = parse_body(&headers("application/x-www-form-urlencoded"), b"a=1&a=2");
        assert!(matches!(result, Err(OAuthError::InvalidRequest(_))));
    }

    #[test]
    fn json_with_charset_parses() {
        let params =
            parse_body(&headers("application/json; charset=utf-8"), br#"{"a":"1"}"#).unwrap();
        assert_eq!(params.get("a"), Some("1"));
    }

    #[test]
    fn json_nested_value_is_rejected() {
        for body in [
            &br#"{"a":{"b":"c"}}"#[..],
            br#"{"a":["x"]}"#,
            br#"{"a":1}"#,
            br#"["a"]"#,
            b"{",
        ] {
            let result = parse_body(&headers("application/json"), body);
            assert!(
                matches!(result, Err(OAuthError::InvalidRequest(_))),
                "{body:?}"
            );
        }
    }

    #[test]
    fn repeated_json_member_is_rejected() {
        let result = parse_body(
            &headers("application/json"),
            br#"{"a":"1","b":"2","a":"3"}"#,
        );
        assert!(matches!(result, Err(OAuthError::InvalidRequest(_))));
    }

    #[test]
    fn missing_content_type_is_rejected() {
        let result = parse_body(&HeaderMap::new(), b"a=1");
        assert!(matches!(result, Err(OAuthError::InvalidRequest(_))));
    }

    #[test]
    fn other_media_type_is_rejected() {
        let result = parse_body(&headers("text/plain"), b"a=1");
        assert!(matches!(result, Err(OAuthError::InvalidRequest(_))));
    }
}
