//! The client's own footprint, read from /proc/self: resident memory and open descriptors,
//! taken around the timed run so a long or faulty run can show it neither grew nor leaked.

use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// Resident set size now (VmRSS), KiB.
    pub rss_kb: u64,
    /// Largest resident set so far (VmHWM), KiB.
    pub peak_rss_kb: u64,
    /// Open file descriptors (sockets and io_uring instances included).
    pub fds: u64,
}

impl Resources {
    /// Zeros where /proc cannot be read (not Linux, or a restricted sandbox).
    pub fn now() -> Resources {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let (rss_kb, peak_rss_kb) = parse_status(&status);
        let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
        Resources {
            rss_kb,
            peak_rss_kb,
            fds,
        }
    }
}

/// (VmRSS, VmHWM) in KiB from the text of /proc/PID/status.
pub fn parse_status(status: &str) -> (u64, u64) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// One console line comparing the footprint before and after the run.
pub fn render(before: &Resources, after: &Resources) -> String {
    let mb = |kb: u64| kb as f64 / 1024.0;
    format!(
        "servebench: open descriptors {} before the run, {} after; resident memory {:.1} MiB before, {:.1} MiB after (peak {:.1} MiB)",
        before.fds,
        after.fds,
        mb(before.rss_kb),
        mb(after.rss_kb),
        mb(after.peak_rss_kb)
    )
}

/// The `client_resources` result key.
pub fn to_json(before: &Resources, after: &Resources) -> Value {
    json!({
        "fds_before": before.fds,
        "fds_after": after.fds,
        "rss_kb_before": before.rss_kb,
        "rss_kb_after": after.rss_kb,
        "peak_rss_kb": after.peak_rss_kb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_in_kib() {
        let text = "Name:\tservebench\nVmHWM:\t  20480 kB\nVmRSS:\t   10240 kB\nThreads:\t3\n";
        assert_eq!(parse_status(text), (10240, 20480));
        assert_eq!(parse_status("Name:\tx\n"), (0, 0));
    }

    #[test]
    fn this_process_has_memory_and_descriptors() {
        let r = Resources::now();
        assert!(r.rss_kb > 0 && r.peak_rss_kb >= r.rss_kb, "{r:?}");
        // stdin, stdout and stderr at least.
        assert!(r.fds >= 3, "{r:?}");
    }
}
