//! Is io_uring usable here? Both engines need it; where it is blocked, say exactly what blocks
//! it and how to allow it, before any work is done.

use std::io;

/// What the host says about why `io_uring_setup` failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Host {
    /// `/proc/sys/kernel/io_uring_disabled` (Linux ≥ 6.6): 0, 1 or 2; None if absent.
    pub io_uring_disabled: Option<u32>,
    /// A seccomp filter is applied to this process (`Seccomp: 2` in /proc/self/status).
    pub seccomp_filter: bool,
    /// Running in a container (Docker, Podman, Kubernetes, containerd).
    pub container: bool,
}

impl Host {
    pub fn inspect() -> Host {
        let read = |p: &str| std::fs::read_to_string(p).ok();
        let io_uring_disabled =
            read("/proc/sys/kernel/io_uring_disabled").and_then(|s| s.trim().parse().ok());
        let seccomp_filter = read("/proc/self/status").is_some_and(|s| {
            s.lines()
                .any(|l| l.starts_with("Seccomp:") && l[8..].trim() == "2")
        });
        let cgroup = read("/proc/1/cgroup").unwrap_or_default();
        let container = std::path::Path::new("/.dockerenv").exists()
            || std::path::Path::new("/run/.containerenv").exists()
            || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
            || ["docker", "kubepods", "containerd", "libpod"]
                .iter()
                .any(|k| cgroup.contains(k));
        Host {
            io_uring_disabled,
            seccomp_filter,
            container,
        }
    }
}

/// Try to set up a small ring; on failure, the error that says what to change.
pub fn probe() -> anyhow::Result<()> {
    match io_uring::IoUring::new(8) {
        Ok(_) => Ok(()),
        Err(e) => anyhow::bail!("{}", explain(&e, Host::inspect())),
    }
}

const SECCOMP_FIX: &str = "allow io_uring_setup, io_uring_enter and io_uring_register: \
     `docker run --security-opt seccomp=unconfined` (or a seccomp profile that allows the \
     three), in Kubernetes `securityContext.seccompProfile.type: Unconfined` (or a Localhost \
     profile that allows them)";

/// The message for a failed `io_uring_setup`, from its error and what the host says.
pub fn explain(e: &io::Error, host: Host) -> String {
    let errno = e.raw_os_error().unwrap_or(0);
    let head = format!("io_uring is not available ({e}), and servebench needs it");
    let blocked_by_filter = host.seccomp_filter || host.container;
    let why = match errno {
        libc::EPERM | libc::EACCES => match host.io_uring_disabled {
            Some(2) => {
                "the kernel has io_uring disabled for every process \
                 (kernel.io_uring_disabled = 2); enable it with `sysctl kernel.io_uring_disabled=0`"
                    .to_string()
            }
            Some(1) => "the kernel allows io_uring only to root and the group in \
                 kernel.io_uring_group (kernel.io_uring_disabled = 1); add this user to that \
                 group, run as root, or `sysctl kernel.io_uring_disabled=0`"
                .to_string(),
            _ if blocked_by_filter => format!(
                "a seccomp profile blocks io_uring_setup{} (Docker's default profile does \
                 since Docker 25); {SECCOMP_FIX}",
                if host.container {
                    " in this container"
                } else {
                    ""
                }
            ),
            _ => "the process is not permitted to create a ring (a security module or \
                 sandbox refuses io_uring_setup)"
                .to_string(),
        },
        libc::ENOSYS if blocked_by_filter => format!(
            "io_uring_setup is blocked by a seccomp filter{}; {SECCOMP_FIX}",
            if host.container {
                " (this looks like a container)"
            } else {
                ""
            }
        ),
        libc::ENOSYS => "this kernel has no io_uring (Linux 5.19 or newer, built with \
             CONFIG_IO_URING, is needed)"
            .to_string(),
        libc::ENOMEM => "the locked-memory limit (RLIMIT_MEMLOCK) is too low for the ring; \
             raise it, e.g. `ulimit -l unlimited` (in Docker `--ulimit memlock=-1`, under \
             systemd `LimitMEMLOCK=infinity`)"
            .to_string(),
        _ => "see the error above".to_string(),
    };
    format!("{head}: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(errno: i32, disabled: Option<u32>, seccomp: bool, container: bool) -> String {
        explain(
            &io::Error::from_raw_os_error(errno),
            Host {
                io_uring_disabled: disabled,
                seccomp_filter: seccomp,
                container,
            },
        )
    }

    #[test]
    fn the_sysctl_is_named_when_it_is_what_blocks() {
        for d in [1, 2] {
            let m = msg(libc::EPERM, Some(d), false, false);
            assert!(m.contains("sysctl kernel.io_uring_disabled=0"), "{m}");
            assert!(
                m.contains(&format!("kernel.io_uring_disabled = {d}")),
                "{m}"
            );
        }
        // The sysctl outranks a container: it is the first thing that refuses.
        let m = msg(libc::EACCES, Some(2), true, true);
        assert!(m.contains("sysctl kernel.io_uring_disabled=0") && !m.contains("seccomp"));
    }

    #[test]
    fn containers_and_seccomp_filters_get_the_profile_fix() {
        for (errno, disabled, seccomp, container) in [
            (libc::EPERM, Some(0), false, true),
            (libc::EPERM, None, true, false),
            (libc::ENOSYS, None, false, true),
            (libc::ENOSYS, Some(0), true, false),
        ] {
            let m = msg(errno, disabled, seccomp, container);
            assert!(m.contains("seccomp=unconfined"), "{m}");
            assert!(m.contains("seccompProfile"), "{m}");
            assert!(m.contains("io_uring_enter"), "{m}");
            assert_eq!(m.contains("container"), container, "{m}");
        }
    }

    #[test]
    fn other_causes_say_their_own_fix() {
        let m = msg(libc::ENOMEM, None, true, true);
        assert!(
            m.contains("RLIMIT_MEMLOCK") && m.contains("ulimit -l"),
            "{m}"
        );
        let m = msg(libc::ENOSYS, None, false, false);
        assert!(m.contains("kernel has no io_uring"), "{m}");
        let m = msg(libc::EPERM, Some(0), false, false);
        assert!(!m.contains("sysctl") && !m.contains("seccomp"), "{m}");
    }

    #[test]
    fn this_host_can_set_up_a_ring() {
        // The engines' own tests need io_uring too; this one checks the probe accepts it.
        probe().unwrap();
    }
}
