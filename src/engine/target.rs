//! Where requests go: the URL split into what the wire needs, resolved once before the shards
//! start (glommio's connect would resolve names with blocking DNS inside the executor).

use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::{bail, Context};

use super::tls::{TlsOptions, TlsTarget};

#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    /// Value of the Host header: host[:port] as the user wrote it.
    pub host_header: String,
    /// Path prefix from the base URL (no trailing slash), e.g. "" or "/proxy".
    pub path_prefix: String,
    /// The URL for messages: scheme://host:port + prefix.
    pub base_url: String,
    /// `https://`: the server name and client configuration of every connection.
    pub tls: Option<TlsTarget>,
}

impl Target {
    /// From `--base-url`, or `--host`/`--port` when it is absent (vLLM's rule); an
    /// `https://` URL trusts the system's roots.
    pub fn from_flags(base_url: Option<&str>, host: &str, port: u16) -> anyhow::Result<Target> {
        Target::from_flags_with(base_url, host, port, &TlsOptions::default())
    }

    /// As [`from_flags`](Self::from_flags), with `--ca-cert` / `--insecure` for `https://`.
    pub fn from_flags_with(
        base_url: Option<&str>,
        host: &str,
        port: u16,
        tls: &TlsOptions,
    ) -> anyhow::Result<Target> {
        let url = match base_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None if host.contains(':') && !host.starts_with('[') => {
                format!("http://[{host}]:{port}")
            }
            None => format!("http://{host}:{port}"),
        };
        let (rest, https) = if let Some(r) = url.strip_prefix("http://") {
            (r, false)
        } else if let Some(r) = url.strip_prefix("https://") {
            (r, true)
        } else {
            bail!("--base-url {url}: expected http://HOST[:PORT][/PATH] or https://...")
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            bail!("--base-url {url}: no host in the URL");
        }
        if let Some((_, host_part)) = authority.rsplit_once('@') {
            // Never echo the credentials: the URL goes into messages and result files.
            let scheme = if https { "https" } else { "http" };
            bail!(
                "--base-url {scheme}://<credentials>@{host_part}{path}: credentials in the URL are not \
                 supported; pass them as a header instead, e.g. --header Authorization=\"Basic ...\" \
                 (or set OPENAI_API_KEY for a bearer key)"
            );
        }
        let (host, with_port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, authority.to_string()),
            _ => (
                authority,
                format!("{authority}:{}", if https { 443 } else { 80 }),
            ),
        };
        if host.is_empty() || host == "[]" {
            bail!("--base-url {url}: no host in the URL");
        }
        let addr = with_port
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {authority} (from {url})"))?
            .next()
            .with_context(|| format!("{authority} resolved to no address (from {url})"))?;
        let tls = match https {
            true => Some(TlsTarget::new(host, tls).with_context(|| format!("--base-url {url}"))?),
            false => None,
        };
        Ok(Target {
            addr,
            host_header: authority.to_string(),
            path_prefix: path.trim_end_matches('/').to_string(),
            base_url: url,
            tls,
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
    fn credentials_in_the_url_are_refused_without_being_echoed() {
        let e = Target::from_flags(Some("http://user:hunter2pass@127.0.0.1:8000/v1"), "x", 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("credentials in the URL"), "{e}");
        assert!(e.contains("127.0.0.1:8000/v1"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

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
    fn https_urls_default_to_port_443_and_name_the_server() {
        let t = Target::from_flags(Some("https://127.0.0.1/v1-proxy"), "x", 1).unwrap();
        assert_eq!(t.addr, "127.0.0.1:443".parse().unwrap());
        assert_eq!(t.host_header, "127.0.0.1");
        assert_eq!(t.path("/v1/models"), "/v1-proxy/v1/models");
        let tls = t.tls.expect("https has TLS");
        assert_eq!(tls.server_name.to_str(), "127.0.0.1");

        let t = Target::from_flags(Some("https://localhost:8443"), "x", 1).unwrap();
        assert_eq!(t.addr.port(), 8443);
        assert_eq!(t.tls.unwrap().server_name.to_str(), "localhost");
        assert!(Target::from_flags(Some("http://localhost:8443"), "x", 1)
            .unwrap()
            .tls
            .is_none());
    }

    #[test]
    fn ipv6_hosts_with_and_without_a_port() {
        let t = Target::from_flags(Some("https://[::1]"), "x", 1).unwrap();
        assert_eq!(t.addr, "[::1]:443".parse().unwrap());
        assert_eq!(t.host_header, "[::1]");
        assert_eq!(t.tls.unwrap().server_name.to_str(), "::1");
        let t = Target::from_flags(Some("https://[::1]:9443/p"), "x", 1).unwrap();
        assert_eq!(t.addr, "[::1]:9443".parse().unwrap());
        assert_eq!(t.path("/x"), "/p/x");
        let t = Target::from_flags(Some("http://[::1]"), "x", 1).unwrap();
        assert_eq!(t.addr.port(), 80);
        let t = Target::from_flags(None, "::1", 8000).unwrap();
        assert_eq!(t.addr, "[::1]:8000".parse().unwrap());
    }

    #[test]
    fn clear_errors() {
        let e = Target::from_flags(Some("https:///v1"), "x", 1).unwrap_err();
        assert!(e.to_string().contains("no host"), "{e}");
        let e = Target::from_flags(Some("https://:443"), "x", 1).unwrap_err();
        assert!(e.to_string().contains("no host"), "{e}");
        let opts = TlsOptions {
            ca_cert: Some("/nonexistent/ca.pem".into()),
            insecure: false,
        };
        let e = Target::from_flags_with(Some("https://127.0.0.1:1"), "x", 1, &opts).unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent/ca.pem"), "{e:#}");
        let e = Target::from_flags(Some("ftp://x"), "x", 1).unwrap_err();
        assert!(e.to_string().contains("http://HOST"), "{e}");
        let e = Target::from_flags(Some("http://no-such-host.invalid:80"), "x", 1).unwrap_err();
        assert!(e.to_string().contains("cannot resolve"), "{e}");
    }
}
