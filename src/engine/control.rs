//! Control-plane requests made once, before the run, from the main thread (blocking std
//! sockets): e.g. `GET /v1/models` to find the model when `--model` is absent.
//!
//! They speak HTTP/1.0 with `Connection: close`, so the body is never chunked and ends at EOF
//! or at Content-Length: nothing here needs the streaming parser. An `https://` target gets
//! the same requests inside blocking rustls.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;

use super::target::Target;
use super::tls::handshake_error;

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
    let mut s = open(target)?;
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
    let buf = read_to_close(&mut s, MAX_BODY + 64 * 1024)?;

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

/// Something to send a request on and read its reply from: a TCP socket or TLS over one.
trait Channel: Read + Write {}
impl<T: Read + Write> Channel for T {}

/// Connect (and for `https://` finish the TLS handshake, so that a certificate problem is
/// reported as such rather than as a failed write).
fn open(target: &Target) -> anyhow::Result<Box<dyn Channel>> {
    let s = connect(target)?;
    match target.tls {
        None => Ok(Box::new(s)),
        Some(_) => Ok(Box::new(handshake(target, s)?)),
    }
}

fn connect(target: &Target) -> anyhow::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&target.addr, TIMEOUT)
        .with_context(|| format!("cannot connect to {}; is the server running?", target.addr))?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    Ok(s)
}

type TlsChannel = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// The TLS handshake on `s`; the error is one line naming the peer and the problem.
fn handshake(target: &Target, s: TcpStream) -> anyhow::Result<TlsChannel> {
    let Some(tls) = &target.tls else {
        bail!("{} is not an https:// target", target.base_url);
    };
    let conn = rustls::ClientConnection::new(tls.config.clone(), tls.server_name.clone())
        .context("cannot start a TLS session")?;
    let mut s = rustls::StreamOwned::new(conn, s);
    while s.conn.is_handshaking() {
        if let Err(e) = s.conn.complete_io(&mut s.sock) {
            let peer = format!("{} at {}", tls.server_name.to_str(), target.addr);
            bail!("{}", handshake_error(&peer, &e));
        }
    }
    Ok(s)
}

/// Everything until the server closes (at most `limit` bytes). A TLS peer that closes without
/// close_notify ends the reply too: the HTTP framing is checked by the caller.
fn read_to_close(s: &mut dyn Channel, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    while buf.len() < limit {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n.min(limit - buf.len())]),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(buf)
}

/// Before the run, for `https://` targets: a handshake that fails because of the
/// certificate (or any other TLS reason) is one clear error now, rather than every request
/// failing. A server that cannot be reached yet is left to the ready check.
pub fn check_tls(target: &Target) -> anyhow::Result<()> {
    if target.tls.is_none() {
        return Ok(());
    }
    match connect(target) {
        Ok(s) => handshake(target, s).map(drop),
        Err(_) => Ok(()),
    }
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
