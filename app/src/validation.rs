//! Input rules for console values: redirect URIs, names, domains, tokens.
//!
//! The server enforces every rule here before anything is stored; the
//! browser may run the same checks to report errors sooner.

use crate::error::{AppError, RowError};
use crate::model::ApplicationKind;
use url::{Host, Url};

/// Maximum number of redirect URIs per application.
pub const MAX_REDIRECT_URIS: usize = 32;
/// Maximum length of one redirect URI, in bytes.
pub const MAX_REDIRECT_URI_LEN: usize = 2048;
/// Maximum length of an application name, in characters.
pub const MAX_NAME_LEN: usize = 128;
/// Maximum length of the OpenAI verification token, in bytes.
pub const MAX_VERIFICATION_TOKEN_LEN: usize = 512;

/// Schemes that run code or read local data in a browser; never a callback.
const DANGEROUS_SCHEMES: [&str; 6] = ["javascript", "data", "vbscript", "file", "about", "blob"];

/// Checks one redirect URI against the registration rules of RFC 6749
/// section 3.1.2 and RFC 8252, and returns it trimmed.
pub fn check_redirect_uri(raw: &str, kind: ApplicationKind) -> Result<String, String> {
    let uri = raw.trim();
    if uri.is_empty() {
        return Err("Enter a redirect URI or remove this row.".into());
    }
    if uri.len() > MAX_REDIRECT_URI_LEN {
        return Err(format!(
            "The URI is {} characters long; the limit is {MAX_REDIRECT_URI_LEN}.",
            uri.len()
        ));
    }
    if let Some(placeholder) = find_placeholder(uri) {
        return Err(format!(
            "Replace the placeholder {placeholder} with your real plugin or GPT ID."
        ));
    }
    if uri.contains('#') {
        return Err("Remove the fragment (the part from #): a redirect URI must not have one.".into());
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("Remove the spaces or control characters from the URI.".into());
    }
    let url = Url::parse(uri).map_err(|_| {
        "Enter an absolute URI with a scheme, such as https://chatgpt.com/aip/g-abc123/oauth/callback."
            .to_string()
    })?;
    check_scheme(&url, kind)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("Remove the user name and password: a redirect URI must not carry credentials.".into());
    }
    if has_dot_segment(uri) {
        return Err("Remove the \".\" and \"..\" path segments: the URI must be written out in full.".into());
    }
    Ok(uri.to_owned())
}

fn check_scheme(url: &Url, kind: ApplicationKind) -> Result<(), String> {
    let scheme = url.scheme();
    if scheme == "http" || scheme == "https" {
        return match url.host() {
            Some(Host::Domain(domain)) if domain.is_empty() => Err("Add a host name to the URI.".into()),
            Some(_) => Ok(()),
            None => Err("Add a host name to the URI.".into()),
        };
    }
    if DANGEROUS_SCHEMES.contains(&scheme) {
        return Err(format!(
            "The {scheme}: scheme is not allowed. Use an https URI."
        ));
    }
    match kind {
        ApplicationKind::Native => Ok(()),
        ApplicationKind::ChatgptPlugin => Err(format!(
            "Use an http or https URI: custom schemes such as {scheme}: work only for native apps."
        )),
    }
}

/// Finds a template placeholder such as `[your-plugin-id]` or `{g-...}`.
///
/// Square brackets are allowed only around an IPv6 host, as in
/// `http://[::1]:8080/callback`.
fn find_placeholder(uri: &str) -> Option<String> {
    let after_authority = match uri.split_once("://") {
        Some((_, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let authority = &rest[..end];
            let host = authority.rsplit('@').next().unwrap_or(authority);
            if host.contains(['{', '}']) || host.contains(['[', ']']) && !is_ipv6_literal(host) {
                return Some(host.to_owned());
            }
            &rest[end..]
        }
        None => uri,
    };
    let start = after_authority.find(['[', '{', ']', '}'])?;
    let tail = &after_authority[start..];
    let end = tail.find([']', '}']).map(|i| i + 1).unwrap_or(tail.len());
    Some(tail[..end].to_owned())
}

fn is_ipv6_literal(host: &str) -> bool {
    let Some(rest) = host.strip_prefix('[') else {
        return false;
    };
    let Some((address, port)) = rest.split_once(']') else {
        return false;
    };
    let port_ok = port.is_empty() || port.strip_prefix(':').is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()));
    port_ok && address.parse::<std::net::Ipv6Addr>().is_ok()
}

/// Tells whether the path of `uri` has a `.` or `..` segment, written
/// plainly or percent-encoded. The URL parser removes such segments, so the
/// raw text is checked.
fn has_dot_segment(uri: &str) -> bool {
    let path_start = match uri.split_once("://") {
        Some((scheme, rest)) => scheme.len() + 3 + rest.find('/').unwrap_or(rest.len()),
        None => uri.find(':').map(|i| i + 1).unwrap_or(0),
    };
    let path = &uri[path_start..];
    let path = path.split(['?', '#']).next().unwrap_or(path);
    path.split('/').any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
}

/// Checks a whole list of redirect URIs and returns the trimmed values.
///
/// Blank rows are dropped. On failure nothing should be stored: the error
/// lists every rejected row.
pub fn check_redirect_uris(raw: &[String], kind: ApplicationKind) -> Result<Vec<String>, AppError> {
    let rows: Vec<(usize, &String)> = raw
        .iter()
        .enumerate()
        .filter(|(_, uri)| !uri.trim().is_empty())
        .collect();
    if rows.len() > MAX_REDIRECT_URIS {
        return Err(AppError::InvalidRedirectUris {
            summary: format!(
                "{} redirect URIs were sent; an application can have at most {MAX_REDIRECT_URIS}.",
                rows.len()
            ),
            rows: Vec::new(),
        });
    }

    let mut accepted: Vec<String> = Vec::with_capacity(rows.len());
    let mut errors = Vec::new();
    for (index, uri) in rows {
        match check_redirect_uri(uri, kind) {
            Ok(uri) if accepted.contains(&uri) => errors.push(RowError {
                index,
                message: "This URI is already in the list.".into(),
            }),
            Ok(uri) => accepted.push(uri),
            Err(message) => errors.push(RowError { index, message }),
        }
    }
    if errors.is_empty() {
        Ok(accepted)
    } else {
        Err(AppError::InvalidRedirectUris {
            summary: "Some redirect URIs are invalid. Nothing was saved; fix the marked rows and save again.".into(),
            rows: errors,
        })
    }
}

/// Checks an application name and returns it trimmed.
pub fn check_name(raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AppError::invalid("name", "Enter a name for the application."));
    }
    let length = name.chars().count();
    if length > MAX_NAME_LEN {
        return Err(AppError::invalid(
            "name",
            format!("The name is {length} characters long; the limit is {MAX_NAME_LEN}."),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::invalid("name", "Remove the control characters from the name."));
    }
    Ok(name.to_owned())
}

/// Checks a custom domain: a DNS host name without scheme, port or path.
/// Returns it in lower case, or `None` when the input is blank.
pub fn check_custom_domain(raw: &str) -> Result<Option<String>, AppError> {
    let domain = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() {
        return Ok(None);
    }
    let reject = |message: &str| Err(AppError::invalid("custom_domain", message));
    if domain.contains("://") || domain.contains(['/', ':', '?', '#', '@']) {
        return reject("Enter only the host name, such as auth.example.com, without scheme, port or path.");
    }
    if domain.len() > 253 {
        return reject("The domain is longer than 253 characters.");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return reject("Enter a fully qualified domain name with at least one dot, such as auth.example.com.");
    }
    for label in &labels {
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid {
            return reject(
                "Each part of the domain may hold only letters, digits and inner hyphens, at most 63 characters.",
            );
        }
    }
    if labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit())) {
        return reject("Enter a domain name, not an IP address.");
    }
    Ok(Some(domain))
}

/// Checks the verification token ChatGPT shows; blank clears it.
pub fn check_verification_token(raw: &str) -> Result<Option<String>, AppError> {
    let token = raw.trim();
    if token.is_empty() {
        return Ok(None);
    }
    if token.len() > MAX_VERIFICATION_TOKEN_LEN {
        return Err(AppError::invalid(
            "verification_token",
            format!("The token is longer than {MAX_VERIFICATION_TOKEN_LEN} characters; paste only the token ChatGPT shows."),
        ));
    }
    if !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(AppError::invalid(
            "verification_token",
            "The token may hold only visible ASCII characters without spaces; paste it exactly as ChatGPT shows it.",
        ));
    }
    Ok(Some(token.to_owned()))
}

/// Checks the API audience: an absolute http or https URL; blank clears it.
pub fn check_audience(raw: &str) -> Result<Option<String>, AppError> {
    let audience = raw.trim();
    if audience.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        AppError::invalid(
            "audience",
            "Enter the absolute http or https URL of your plugin's API, such as https://api.example.com.",
        )
    };
    if audience.len() > MAX_REDIRECT_URI_LEN {
        return Err(invalid());
    }
    let url = Url::parse(audience).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || url.fragment().is_some() {
        return Err(invalid());
    }
    Ok(Some(audience.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB: ApplicationKind = ApplicationKind::ChatgptPlugin;
    const NATIVE: ApplicationKind = ApplicationKind::Native;

    #[test]
    fn redirect_uri_accepts_real_callbacks() {
        for uri in [
            "https://chat.openai.com/aip/plugin-1a2b/oauth/callback",
            "https://chatgpt.com/aip/g-abc123/oauth/callback",
            "https://chatgpt.com/connector_platform_oauth_redirect",
            "http://127.0.0.1/callback",
            "http://[::1]:8080/callback",
            "https://example.com/cb?tenant=a",
            "https://example.com:8443/cb",
            "  https://example.com/padded  ",
        ] {
            assert!(check_redirect_uri(uri, WEB).is_ok(), "{uri} should be accepted");
        }
    }

    #[test]
    fn redirect_uri_rejects_placeholders() {
        for uri in [
            "https://chat.openai.com/aip/[your-plugin-id]/oauth/callback",
            "https://chatgpt.com/aip/{g-id}/oauth/callback",
            "https://chatgpt.com/aip/g-1/oauth/callback?x=[y]",
            "https://[host]/cb",
        ] {
            let error = check_redirect_uri(uri, WEB).unwrap_err();
            assert!(error.contains("placeholder"), "{uri}: {error}");
        }
    }

    #[test]
    fn redirect_uri_rejects_fragment() {
        let error = check_redirect_uri("https://example.com/cb#done", WEB).unwrap_err();
        assert!(error.contains("fragment"), "{error}");
        assert!(check_redirect_uri("https://example.com/cb#", WEB).is_err());
    }

    #[test]
    fn redirect_uri_rejects_script_schemes() {
        for uri in ["javascript:alert(1)", "data:text/html,hi", "JAVASCRIPT:alert(1)", "file:///etc/passwd"] {
            assert!(check_redirect_uri(uri, WEB).is_err(), "{uri} should be rejected");
            assert!(check_redirect_uri(uri, NATIVE).is_err(), "{uri} should be rejected for native");
        }
    }

    #[test]
    fn redirect_uri_custom_scheme_only_for_native() {
        let uri = "com.example.app:/oauth/callback";
        assert!(check_redirect_uri(uri, NATIVE).is_ok());
        let error = check_redirect_uri(uri, WEB).unwrap_err();
        assert!(error.contains("native"), "{error}");
    }

    #[test]
    fn redirect_uri_rejects_relative_and_empty() {
        for uri in ["/oauth/callback", "example.com/cb", "", "   ", "https://"] {
            assert!(check_redirect_uri(uri, WEB).is_err(), "{uri:?} should be rejected");
        }
    }

    #[test]
    fn redirect_uri_rejects_user_info() {
        for uri in ["https://user@example.com/cb", "https://user:pass@example.com/cb"] {
            let error = check_redirect_uri(uri, WEB).unwrap_err();
            assert!(error.contains("credentials"), "{uri}: {error}");
        }
    }

    #[test]
    fn redirect_uri_rejects_dot_segments() {
        for uri in [
            "https://example.com/a/../cb",
            "https://example.com/./cb",
            "https://example.com/a/%2e%2e/cb",
            "https://example.com/a/..",
        ] {
            let error = check_redirect_uri(uri, WEB).unwrap_err();
            assert!(error.contains("segments"), "{uri}: {error}");
        }
        assert!(check_redirect_uri("https://example.com/a..b/cb", WEB).is_ok());
        assert!(check_redirect_uri("https://example.com/cb?next=../x", WEB).is_ok());
    }

    #[test]
    fn redirect_uri_length_limit() {
        let base = "https://example.com/";
        let fits = format!("{base}{}", "a".repeat(MAX_REDIRECT_URI_LEN - base.len()));
        assert!(check_redirect_uri(&fits, WEB).is_ok());
        let too_long = format!("{fits}a");
        let error = check_redirect_uri(&too_long, WEB).unwrap_err();
        assert!(error.contains("2048"), "{error}");
    }

    #[test]
    fn redirect_uri_list_limit() {
        let uris: Vec<String> = (0..MAX_REDIRECT_URIS).map(|i| format!("https://example.com/{i}")).collect();
        assert_eq!(check_redirect_uris(&uris, WEB).unwrap().len(), MAX_REDIRECT_URIS);
        let mut too_many = uris.clone();
        too_many.push("https://example.com/extra".into());
        assert!(matches!(
            check_redirect_uris(&too_many, WEB),
            Err(AppError::InvalidRedirectUris { rows, .. }) if rows.is_empty()
        ));
    }

    #[test]
    fn redirect_uri_list_rejects_duplicates() {
        let uris = vec!["https://example.com/cb".to_string(), " https://example.com/cb".to_string()];
        let Err(AppError::InvalidRedirectUris { rows, .. }) = check_redirect_uris(&uris, WEB) else {
            panic!("duplicates should be rejected");
        };
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].index, 1);
    }

    #[test]
    fn redirect_uri_list_reports_each_bad_row() {
        let uris = vec![
            "https://example.com/ok".to_string(),
            "javascript:alert(1)".to_string(),
            String::new(),
            "https://example.com/cb#x".to_string(),
        ];
        let Err(AppError::InvalidRedirectUris { rows, .. }) = check_redirect_uris(&uris, WEB) else {
            panic!("bad rows should be rejected");
        };
        let indexes: Vec<usize> = rows.iter().map(|row| row.index).collect();
        assert_eq!(indexes, vec![1, 3]);
    }

    #[test]
    fn name_rules() {
        assert_eq!(check_name("  My plugin ").unwrap(), "My plugin");
        assert!(check_name("").is_err());
        assert!(check_name(&"x".repeat(MAX_NAME_LEN)).is_ok());
        assert!(check_name(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(check_name(&"x".repeat(10_000)).is_err());
        assert!(check_name("a\u{0}b").is_err());
    }

    #[test]
    fn custom_domain_rules() {
        assert_eq!(check_custom_domain("Auth.Example.com").unwrap().as_deref(), Some("auth.example.com"));
        assert_eq!(check_custom_domain("  ").unwrap(), None);
        for bad in [
            "https://auth.example.com",
            "auth.example.com:8443",
            "auth.example.com/path",
            "localhost",
            "-bad.example.com",
            "bad-.example.com",
            "a..example.com",
            "under_score.example.com",
            "10.0.0.1",
            "exa mple.com",
        ] {
            assert!(check_custom_domain(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn verification_token_rules() {
        assert_eq!(check_verification_token(" abc123 ").unwrap().as_deref(), Some("abc123"));
        assert_eq!(check_verification_token("").unwrap(), None);
        assert!(check_verification_token("two words").is_err());
        assert!(check_verification_token(&"a".repeat(MAX_VERIFICATION_TOKEN_LEN + 1)).is_err());
    }

    #[test]
    fn audience_rules() {
        assert_eq!(check_audience("https://api.example.com").unwrap().as_deref(), Some("https://api.example.com"));
        assert_eq!(check_audience("").unwrap(), None);
        assert!(check_audience("api.example.com").is_err());
        assert!(check_audience("ftp://api.example.com").is_err());
    }
}
