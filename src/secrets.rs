//! Keeps API keys out of everything servebench prints or writes.
//!
//! Two layers: values are redacted where a header is shown ([`redact_header`],
//! [`redact_header_arg`]), and every secret the run sends is registered ([`register_headers`])
//! so that the sinks (the final error message, result files, the HTML page, the output file)
//! pass their text through [`scrub`], which also catches a key a server echoes back in an
//! error body.

use std::borrow::Cow;
use std::sync::RwLock;

/// What a secret is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Shorter values are not scrubbed from free text: replacing every "1" or "abc" in a result
/// file would mangle it, and no real key is that short.
const MIN_SCRUBBED_LEN: usize = 6;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Whether a header's value is a credential: its name mentions auth, token, key, secret,
/// cookie or password (Authorization, Proxy-Authorization, api-key, x-api-key, Cookie, ...).
pub fn is_sensitive_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["auth", "token", "key", "secret", "cookie", "password"]
        .iter()
        .any(|w| name.contains(w))
}

/// The value to show for header `name`: [`REDACTED`] for a credential, else the value.
pub fn redact_header<'a>(name: &str, value: &'a str) -> Cow<'a, str> {
    if is_sensitive_header(name) {
        Cow::Borrowed(REDACTED)
    } else {
        Cow::Borrowed(value)
    }
}

/// A raw `--header` argument as it may be shown in an error: `KEY=VALUE` (or a mistyped
/// `Key: value`) keeps its name and loses a credential's value; an argument with neither
/// separator may be the key itself, so none of it is shown.
pub fn redact_header_arg(item: &str) -> Cow<'_, str> {
    let Some(at) = item.find(['=', ':']) else {
        return Cow::Owned(format!("{REDACTED} ({} chars)", item.chars().count()));
    };
    let (name, rest) = item.split_at(at);
    if is_sensitive_header(name) {
        Cow::Owned(format!("{name}{}{REDACTED}", &rest[..1]))
    } else {
        Cow::Borrowed(item)
    }
}

/// Registers the credentials among `headers`, and `OPENAI_API_KEY`, for [`scrub`]. A value
/// like `Bearer KEY` registers KEY too, so the key alone is caught as well.
pub fn register_headers(headers: &[(String, String)]) {
    let env_key = std::env::var("OPENAI_API_KEY").unwrap_or_default();
    let values = headers
        .iter()
        .filter(|(name, _)| is_sensitive_header(name))
        .map(|(_, value)| value.as_str())
        .chain(std::iter::once(env_key.as_str()));
    for value in values {
        register(value);
        if let Some((_scheme, token)) = value.split_once(' ') {
            register(token.trim());
        }
    }
}

/// Registers one secret value for [`scrub`].
pub fn register(value: &str) {
    let value = value.trim();
    if value.len() < MIN_SCRUBBED_LEN {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|s| s == value) {
        secrets.push(value.to_string());
        // Longest first, so "Bearer KEY" goes whole rather than leaving "Bearer ".
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with every registered secret replaced by [`REDACTED`]; borrowed when none occurs.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut out = Cow::Borrowed(text);
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_headers_by_name() {
        for name in [
            "Authorization",
            "proxy-authorization",
            "api-key",
            "X-API-KEY",
            "Cookie",
            "X-Auth-Token",
            "client_secret",
            "X-Password",
        ] {
            assert!(is_sensitive_header(name), "{name}");
            assert_eq!(redact_header(name, "sk-123"), REDACTED, "{name}");
        }
        for name in ["Content-Type", "x-request-id", "Accept", "User-Agent"] {
            assert!(!is_sensitive_header(name), "{name}");
            assert_eq!(redact_header(name, "v1"), "v1");
        }
    }

    #[test]
    fn header_arguments_keep_their_name_only() {
        assert_eq!(
            redact_header_arg("Authorization=Bearer sk-1"),
            "Authorization=<redacted>"
        );
        assert_eq!(
            redact_header_arg("Authorization: Bearer sk-1"),
            "Authorization:<redacted>"
        );
        assert_eq!(redact_header_arg("x-trace=abc"), "x-trace=abc");
        let bare = redact_header_arg("sk-live-abcdef");
        assert!(!bare.contains("sk-live"), "{bare}");
    }

    #[test]
    fn registered_secrets_are_scrubbed_whole_and_alone() {
        register_headers(&[
            ("Authorization".into(), "Bearer tok-scrub-test-1".into()),
            ("x-request-id".into(), "not-a-secret-value".into()),
        ]);
        register("abc"); // too short to scrub
        let text = "sent Bearer tok-scrub-test-1; server said bad key tok-scrub-test-1 abc";
        let out = scrub(text);
        assert_eq!(
            out, "sent <redacted>; server said bad key <redacted> abc",
            "{out}"
        );
        assert!(matches!(
            scrub("not-a-secret-value stays"),
            Cow::Borrowed(_)
        ));
    }
}
