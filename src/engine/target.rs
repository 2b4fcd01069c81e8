//! Where requests go: the URL split into what the wire needs, resolved once before the shards
//! start (glommio's connect would resolve names with blocking DNS inside the executor).

use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::{bail, Context};

#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    /// Value of the Host header: host[:port] as the user wrote it.
    pub host_header: String,
    /// Path prefix from the base URL (no trailing slash), e.g. "" or "/proxy".
    pub path_prefix: String,
    /// The URL for messages: scheme://host:port + prefix.
    pub base_url: String,
}

impl Target {
    /// From `--base-url`, or `--host`/`--port` when it is absent (vLLM's rule).
    pub fn from_flags(base_url: Option<&str>, host: &str, port: u16) -> anyhow::Result<Target> {
        let url = match base_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None if host.contains(':') && !host.starts_with('[') => {
                format!("http://[{host}]:{port}")
            }
            None => format!("http://{host}:{port}"),
        };
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("https://") {
            bail!("--base-url {url}: https is not supported yet; use an http:// endpoint (TLS support is tracked in the reliability issue)")
        } else {
            bail!("--base-url {url}: expected http://HOST[:PORT][/PATH]")
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            bail!("--base-url {url}: no host in the URL");
        }
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.contains(']'))
        {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {authority} (from {url})"))?
            .next()
            .with_context(|| format!("{authority} resolved to no address (from {url})"))?;
        Ok(Target {
            addr,
            host_header: authority.to_string(),
            path_prefix: path.trim_end_matches('/').to_string(),
            base_url: url,
        })
    }

    /// The request path for an API endpoint such as "/v1/completions".
    pub fn path(&self, endpoint: &str) -> String {
        format!("{}{}", self.path_prefix, endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_flags() {
        let t = Target::from_flags(None, "127.0.0.1", 8123).unwrap();
        assert_eq!(t.addr, "127.0.0.1:8123".parse().unwrap());
        assert_eq!(t.host_header, "127.0.0.1:8123");
        assert_eq!(t.path("/v1/completions"), "/v1/completions");
    }

    #[test]
    fn base_url_with_prefix_and_default_port() {
        let t = Target::from_flags(Some("http://127.0.0.1/proxy/"), "x", 1).unwrap();
        assert_eq!(t.addr.port(), 80);
        assert_eq!(t.host_header, "127.0.0.1");
        assert_eq!(t.path("/v1/completions"), "/proxy/v1/completions");
        let t = Target::from_flags(Some("http://localhost:9000"), "x", 1).unwrap();
        assert_eq!(t.addr.port(), 9000);
    }

    #[test]
    fn clear_errors() {
        let e = Target::from_flags(Some("https://api.example.com"), "x", 1).unwrap_err();
        assert!(e.to_string().contains("https"), "{e}");
        let e = Target::from_flags(Some("ftp://x"), "x", 1).unwrap_err();
        assert!(e.to_string().contains("http://HOST"), "{e}");
        let e = Target::from_flags(Some("http://no-such-host.invalid:80"), "x", 1).unwrap_err();
        assert!(e.to_string().contains("cannot resolve"), "{e}");
    }
}
