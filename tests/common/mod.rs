//! Helpers shared by the integration tests that run the real binary against the real mock.
#![allow(dead_code)]

pub mod browser;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_servebench");

/// An empty directory of this test process's own (removed first if a run before left it).
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("servebench-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A `servebench mock` process on an ephemeral port, killed on drop.
pub struct Mock {
    child: Child,
    pub url: String,
}

impl Mock {
    pub fn start(ttft_ms: f64, itl_ms: f64) -> Mock {
        Mock::start_with(ttft_ms, itl_ms, &[])
    }

    /// With extra mock flags.
    pub fn start_with(ttft_ms: f64, itl_ms: f64, extra: &[&str]) -> Mock {
        let mut child = Command::new(BIN)
            .args(["mock", "--port", "0", "--ttft-ms"])
            .arg(ttft_ms.to_string())
            .arg("--itl-ms")
            .arg(itl_ms.to_string())
            .args(extra)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the mock");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = loop {
            assert!(Instant::now() < deadline, "mock did not report its address");
            let line = lines.next().expect("mock exited early").unwrap();
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep draining stderr so the mock never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Mock { child, url }
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value printed after `label` in the console block.
pub fn value(stdout: &str, label: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no line '{label}' in:\n{stdout}"));
    line[label.len()..].trim().parse().unwrap()
}
