//! The mock server as a child process of `calibrate`: its own process (so the client's CPU
//! and memory are its own), pinned to its own CPUs, writing its truth log to a file.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

pub struct MockChild {
    child: Child,
    pub addr: SocketAddr,
    pub truth_log: PathBuf,
}

/// What the mock is asked to do.
pub struct MockSpec<'a> {
    pub cpus: &'a [usize],
    pub ttft_ms: f64,
    pub itl_ms: f64,
    pub truth_log: &'a Path,
}

impl MockChild {
    /// Starts `servebench mock` and waits for its "listening on" line.
    pub fn start(spec: &MockSpec<'_>) -> anyhow::Result<MockChild> {
        let exe = std::env::current_exe().context("cannot find this executable to run the mock")?;
        let cpus: Vec<String> = spec.cpus.iter().map(|c| c.to_string()).collect();
        let mut child = Command::new(exe)
            .arg("mock")
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(["--cpus", &cpus.join(",")])
            .args(["--ttft-ms", &spec.ttft_ms.to_string()])
            .args(["--itl-ms", &spec.itl_ms.to_string()])
            .arg("--truth-log")
            .arg(spec.truth_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start the mock server")?;
        let stderr = child.stderr.take().context("mock has no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = parse_listening(&line) {
                        break addr;
                    }
                }
                _ => {
                    let status = child.wait().ok();
                    bail!("the mock server ended before listening (exit: {status:?})");
                }
            }
        };
        // Keep draining its stderr so the mock never blocks on a full pipe, and pass on what
        // it says (accept failures, for one) except its routine stop line.
        std::thread::spawn(move || {
            for line in lines.by_ref().map_while(Result::ok) {
                if !line.contains(": SIGTERM, stopped") {
                    eprintln!("calibrate: mock: {line}");
                }
            }
        });
        Ok(MockChild {
            child,
            addr,
            truth_log: spec.truth_log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time (user + system) the mock has used so far, in nanoseconds.
    pub fn cpu_ns(&self) -> u64 {
        process_cpu_ns(self.child.id()).unwrap_or(0)
    }

    /// SIGTERM, then wait for the mock to flush its truth log and exit.
    pub fn stop(mut self) -> anyhow::Result<()> {
        // SAFETY: kill only sends a signal to our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("the mock server exited with {status}");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("the mock server did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for MockChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `servebench mock listening on http://ADDR (N shards)` → ADDR.
fn parse_listening(line: &str) -> Option<SocketAddr> {
    let rest = line.split_once("listening on http://")?.1;
    rest.split_whitespace().next()?.parse().ok()
}

/// utime + stime of a process from /proc/PID/stat, in nanoseconds.
fn process_cpu_ns(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some((utime + stime) * 1_000_000_000 / hz)
}

/// Resident memory of this process, in bytes.
pub fn self_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_line_parses() {
        let line = "servebench mock listening on http://127.0.0.1:41234 (2 shards)";
        assert_eq!(
            parse_listening(line),
            Some("127.0.0.1:41234".parse().unwrap())
        );
        assert_eq!(parse_listening("something else"), None);
    }

    #[test]
    fn own_cpu_and_rss_are_read() {
        assert!(process_cpu_ns(std::process::id()).is_some());
        assert!(self_rss_bytes() > 0);
    }
}
