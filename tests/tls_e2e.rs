//! TLS (issue 6): the real binary against the real mock serving HTTPS, with a CA and server
//! certificates made here. Verification on with the right CA, clear failures with the wrong CA
//! or a certificate for another name, `--insecure` past both.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use servebench::backend::{Api, Wire};
use servebench::engine::exchange::{exchange, Conn};
use servebench::engine::tls::{TlsOptions, TlsTarget};
use servebench::record::{FailureKind, RequestRecord};

mod common;

use common::{temp_dir, value, Mock, BIN};

/// A CA (certificate PEM) and a certificate it signed for `names`, written under `dir` as
/// `{tag}-ca.pem`, `{tag}-cert.pem`, `{tag}-key.pem`.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn make_pki(dir: &Path, tag: &str, names: &[&str]) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("servebench test CA {tag}"));
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "servebench test server");
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();

    let pki = Pki {
        ca: dir.join(format!("{tag}-ca.pem")),
        cert: dir.join(format!("{tag}-cert.pem")),
        key: dir.join(format!("{tag}-key.pem")),
    };
    std::fs::write(&pki.ca, ca.pem()).unwrap();
    std::fs::write(&pki.cert, cert.pem()).unwrap();
    std::fs::write(&pki.key, key.serialize_pem()).unwrap();
    pki
}

fn https_mock(pki: &Pki) -> (Mock, u16) {
    let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
    let mock = Mock::start_with(5.0, 1.0, &["--tls-cert", cert, "--tls-key", key]);
    assert!(mock.url.starts_with("https://"), "{}", mock.url);
    let port = mock.url.rsplit(':').next().unwrap().parse().unwrap();
    (mock, port)
}

fn bench(base_url: &str, io_engine: &str, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(["--base-url", base_url, "--io-engine", io_engine])
        .args(["--num-prompts", "40", "--random-input-len", "16"])
        .args(["--random-output-len", "8", "--max-concurrency", "8"])
        .args(["--num-shards", "1", "--disable-tqdm", "--seed", "3"])
        .args(["--ready-check-timeout-sec", "10"])
        .args(extra)
        .output()
        .expect("run the benchmark")
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn verified_https_runs_on_both_engine_settings() {
    let dir = temp_dir("tls-ok");
    let pki = make_pki(&dir, "good", &["localhost", "127.0.0.1"]);
    let (_mock, port) = https_mock(&pki);
    let ca = pki.ca.to_str().unwrap();
    for (engine, host) in [("uring", "localhost"), ("glommio", "127.0.0.1")] {
        let url = format!("https://{host}:{port}");
        let out = bench(&url, engine, &["--ca-cert", ca]);
        let (stdout, stderr) = texts(&out);
        assert!(
            out.status.success(),
            "{engine}: stdout:\n{stdout}\nstderr:\n{stderr}"
        );
        // No --model: it was discovered over TLS (GET /v1/models), as were the other
        // control calls.
        assert_eq!(value(&stdout, "Successful requests:"), 40.0, "{engine}");
        assert_eq!(value(&stdout, "Failed requests:"), 0.0, "{engine}");
        assert_eq!(value(&stdout, "Total generated tokens:"), 40.0 * 8.0);
        assert!(!stderr.contains("--insecure:"), "{stderr}");
        if engine == "uring" {
            assert!(stderr.contains("glommio engine"), "{stderr}");
        }
    }
}

#[test]
fn wrong_ca_fails_before_the_run_with_one_clear_line_and_insecure_gets_through() {
    let dir = temp_dir("tls-wrong-ca");
    let pki = make_pki(&dir, "good", &["localhost", "127.0.0.1"]);
    let other = make_pki(&dir, "other", &["localhost"]);
    let (_mock, port) = https_mock(&pki);
    let url = format!("https://localhost:{port}");

    let started = Instant::now();
    let out = bench(&url, "glommio", &["--ca-cert", other.ca.to_str().unwrap()]);
    let (stdout, stderr) = texts(&out);
    assert!(
        !out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.contains("TLS handshake"))
        .unwrap_or_else(|| panic!("no handshake error in:\n{stderr}"));
    assert!(line.contains("certificate verification failed"), "{line}");
    assert!(line.contains("UnknownIssuer"), "{line}");
    assert!(line.contains("--ca-cert"), "{line}");
    // Refused at once: not after a ready check that retries for its whole timeout.
    assert!(started.elapsed().as_secs() < 8, "{:?}", started.elapsed());
    assert!(!stdout.contains("Successful requests:"), "{stdout}");

    // The system roots do not know the test CA either.
    let out = bench(&url, "glommio", &[]);
    let (_, stderr) = texts(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");

    let out = bench(
        &url,
        "uring",
        &["--ca-cert", other.ca.to_str().unwrap(), "--insecure"],
    );
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("--insecure: the server's TLS certificate is not verified"));
    assert_eq!(value(&stdout, "Successful requests:"), 40.0);
}

#[test]
fn hostname_mismatch_fails_clearly() {
    let dir = temp_dir("tls-name");
    let pki = make_pki(&dir, "elsewhere", &["other.example"]);
    let (_mock, port) = https_mock(&pki);
    let url = format!("https://localhost:{port}");
    let out = bench(&url, "glommio", &["--ca-cert", pki.ca.to_str().unwrap()]);
    let (stdout, stderr) = texts(&out);
    assert!(
        !out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("TLS handshake with localhost"), "{stderr}");
    assert!(stderr.contains("not valid for name"), "{stderr}");
    assert!(stderr.contains("other.example"), "{stderr}");

    let out = bench(&url, "glommio", &["--insecure"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(value(&stdout, "Successful requests:"), 40.0);
}

/// The engine's own record of a failed handshake (what a run sees if the certificate changes
/// after the pre-run check): Connect category and a message naming verification.
#[test]
fn a_failed_handshake_is_a_connect_failure_in_the_record() {
    let dir = temp_dir("tls-record");
    let pki = make_pki(&dir, "good", &["localhost"]);
    let other = make_pki(&dir, "other", &["localhost"]);
    let (_mock, port) = https_mock(&pki);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let opts = TlsOptions {
        ca_cert: Some(other.ca.clone()),
        insecure: false,
    };
    let tls = TlsTarget::new("localhost", &opts).unwrap();
    let wire = Wire {
        api: Api::Completions,
        streamed: true,
    };
    let request = format!(
        "POST /v1/completions HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    let rec = glommio::LocalExecutorBuilder::default()
        .io_memory(64 << 10)
        .spawn(move || async move {
            let mut conn = Conn::with_tls(addr, wire, Default::default(), Some(tls));
            let mut rec = RequestRecord::default();
            exchange(&mut conn, request.as_bytes(), &mut rec, Instant::now()).await;
            rec
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(!rec.success);
    assert_eq!(rec.failure, Some(FailureKind::Connect));
    let error = rec.error.unwrap_or_default();
    assert!(error.contains("TLS handshake with localhost"), "{error}");
    assert!(error.contains("certificate verification failed"), "{error}");
}
