//! Whole HTTP/1.1 requests as bytes, ready to be written to a socket unchanged.

use anyhow::{bail, ensure};

/// `METHOD PATH HTTP/1.1`, then `Host`, `Content-Type: application/json`, `Content-Length`,
/// then `headers` in order, a blank line and `body`.
///
/// A caller header named `Host` or `Content-Type` replaces ours (as aiohttp lets an explicit
/// header win); `Content-Length` and `Transfer-Encoding` are ours alone, since a second one
/// would corrupt the framing. Anything that could split the head (CR, LF, NUL, or a header
/// name that is not an HTTP token) is an error naming the offending header.
pub fn frame_request(
    method: &str,
    path: &str,
    host_header: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> anyhow::Result<Vec<u8>> {
    ensure!(
        !method.is_empty() && method.bytes().all(is_token_byte),
        "HTTP method {method:?} is not a valid token"
    );
    ensure!(
        !path.is_empty() && path.bytes().all(|b| b.is_ascii_graphic() || b >= 0x80),
        "request path {path:?} is empty or holds spaces or control characters"
    );
    check_value("Host", host_header)?;
    for (name, value) in headers {
        ensure!(
            !name.is_empty() && name.bytes().all(is_token_byte),
            "header name {name:?} is not a valid HTTP token (no spaces, colons, CR or LF)"
        );
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            bail!("header {name:?} cannot be set: the client frames the body itself");
        }
        check_value(name, value)?;
    }

    let has = |wanted: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(wanted));
    let mut out = Vec::with_capacity(256 + body.len());
    push_all(&mut out, &[method, " ", path, " HTTP/1.1\r\n"]);
    if !has("host") {
        push_all(&mut out, &["Host: ", host_header, "\r\n"]);
    }
    if !has("content-type") {
        out.extend_from_slice(b"Content-Type: application/json\r\n");
    }
    push_all(
        &mut out,
        &["Content-Length: ", &body.len().to_string(), "\r\n"],
    );
    for (name, value) in headers {
        push_all(&mut out, &[name, ": ", value, "\r\n"]);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Ok(out)
}

fn check_value(name: &str, value: &str) -> anyhow::Result<()> {
    ensure!(
        !value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)),
        "header {name:?} has a value with CR, LF or NUL in it"
    );
    Ok(())
}

fn push_all(out: &mut Vec<u8>, parts: &[&str]) {
    for part in parts {
        out.extend_from_slice(part.as_bytes());
    }
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> (String, String) {
        (name.to_string(), value.to_string())
    }

    #[test]
    fn layout_is_exact() {
        let wire = frame_request(
            "POST",
            "/v1/completions",
            "localhost:8000",
            &[h("x-request-id", "r-1")],
            b"{}",
        )
        .unwrap();
        assert_eq!(
            wire,
            b"POST /v1/completions HTTP/1.1\r\nHost: localhost:8000\r\n\
              Content-Type: application/json\r\nContent-Length: 2\r\nx-request-id: r-1\r\n\r\n{}"
        );
    }

    #[test]
    fn caller_host_and_content_type_replace_ours() {
        let wire = frame_request(
            "POST",
            "/x",
            "a:1",
            &[h("host", "b"), h("Content-Type", "text/plain")],
            b"",
        )
        .unwrap();
        let text = String::from_utf8(wire).unwrap();
        assert!(!text.contains("Host: a:1"), "{text}");
        assert!(!text.contains("application/json"), "{text}");
        assert!(text.contains("host: b\r\n") && text.contains("Content-Type: text/plain\r\n"));
    }

    #[test]
    fn injection_and_framing_headers_are_rejected() {
        let bad = [
            ("POST", "/x", vec![h("a", "b\r\nEvil: 1")]),
            ("POST", "/x", vec![h("a", "b\nc")]),
            ("POST", "/x", vec![h("a\r\n", "b")]),
            ("POST", "/x", vec![h("a b", "c")]),
            ("POST", "/x", vec![h("content-length", "5")]),
            ("POST", "/x y", vec![]),
            ("PO ST", "/x", vec![]),
        ];
        for (method, path, headers) in bad {
            assert!(
                frame_request(method, path, "h", &headers, b"").is_err(),
                "{method} {path} {headers:?}"
            );
        }
        assert!(frame_request("POST", "/x", "h\r\n", &[], b"").is_err());
    }
}
