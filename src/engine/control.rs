//! Control-plane requests made once, before the run, from the main thread (blocking std
//! sockets): e.g. `GET /v1/models` to find the model when `--model` is absent.
//!
//! They speak HTTP/1.0 with `Connection: close`, so the body is never chunked and ends at EOF
//! or at Content-Length: nothing here needs the streaming parser.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;

use super::target::Target;

const TIMEOUT: Duration = Duration::from_secs(30);
const MAX_BODY: usize = 16 << 20;

/// GET `path` and parse the body as JSON. Errors name the URL and what went wrong.
pub fn get_json(target: &Target, path: &str) -> anyhow::Result<Value> {
    let url = format!("{}{}", target.base_url, path);
    let body = get(target, &target.path(path)).with_context(|| format!("GET {url}"))?;
    serde_json::from_slice(&body).with_context(|| {
        format!(
            "GET {url}: the response is not JSON: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )
    })
}

/// GET `path` as text (e.g. Prometheus `/metrics`).
pub fn get_text(target: &Target, path: &str) -> anyhow::Result<String> {
    let body = get(target, &target.path(path))?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// POST `body` (JSON) to `path`; the reply body on 200, else an error naming the status.
pub fn post(target: &Target, path: &str, body: &str) -> anyhow::Result<Vec<u8>> {
    let url = format!("{}{}", target.base_url, path);
    request(target, "POST", &target.path(path), Some(body.as_bytes()))
        .with_context(|| format!("POST {url}"))
}

fn get(target: &Target, path: &str) -> anyhow::Result<Vec<u8>> {
    request(target, "GET", path, None)
}

fn request(
    target: &Target,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> anyhow::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&target.addr, TIMEOUT)
        .with_context(|| format!("cannot connect to {}; is the server running?", target.addr))?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n",
        target.host_header
    );
    if let Some(body) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    if let Ok(key) = std::env::var("OPENAI_API_KEY") {
        if !key.is_empty() {
            req.push_str(&format!("Authorization: Bearer {key}\r\n"));
        }
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    if let Some(body) = body {
        s.write_all(body)?;
    }
    let mut buf = Vec::new();
    s.take(MAX_BODY as u64 + 64 * 1024).read_to_end(&mut buf)?;

    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(&buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => bail!("the server closed the connection mid-head"),
        Err(e) => bail!("malformed response head: {e}"),
    };
    let code = resp.code.unwrap_or(0);
    let mut body = &buf[head_len..];
    if let Some(len) = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })
    {
        body = &body[..len.min(body.len())];
    }
    if code != 200 {
        // Scrubbed before it is cut, so no part of a key the server echoes can show.
        let text = crate::secrets::scrub(&String::from_utf8_lossy(body)).into_owned();
        let shown: String = text.chars().take(300).collect();
        bail!(
            "HTTP {code} {}: {}",
            resp.reason.unwrap_or(""),
            shown.trim()
        );
    }
    Ok(body.to_vec())
}

/// vLLM's model discovery: the first entry of `/v1/models`, as (id, root).
pub fn first_model(target: &Target) -> anyhow::Result<(String, String)> {
    let v = get_json(target, "/v1/models").context(
        "--model was not given, so servebench asked the server for its models; pass --model to skip this",
    )?;
    let first = v
        .get("data")
        .and_then(|d| d.get(0))
        .with_context(|| format!("No models found on the server at {}. Make sure the server is running and has models loaded.", target.base_url))?;
    let id = first
        .get("id")
        .and_then(Value::as_str)
        .context("/v1/models: the first model has no string 'id'")?;
    let root = first.get("root").and_then(Value::as_str).unwrap_or(id);
    Ok((id.to_string(), root.to_string()))
}
