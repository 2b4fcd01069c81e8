//! Process limits the engine needs: glommio refuses to build an executor when the locked-memory
//! limit is under 512 KiB, and every open stream costs a file descriptor.

use std::io;

/// Raise the soft limit of `resource` to at least `want` (or the hard limit, whichever is
/// lower). Returns the soft limit in force afterwards.
fn raise(resource: libc::__rlimit_resource_t, want: u64) -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    if unsafe { libc::getrlimit(resource, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur >= want || lim.rlim_cur == libc::RLIM_INFINITY {
        return Ok(lim.rlim_cur);
    }
    if lim.rlim_max != libc::RLIM_INFINITY && lim.rlim_max < want {
        // Root (CAP_SYS_RESOURCE) may raise the hard limit too; for descriptors the kernel
        // caps it at fs.nr_open. Others keep their hard limit.
        let ceiling = if resource == libc::RLIMIT_NOFILE {
            nr_open().unwrap_or(want)
        } else {
            want
        };
        let both = libc::rlimit {
            rlim_cur: want.min(ceiling),
            rlim_max: want.min(ceiling).max(lim.rlim_max),
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(resource, &both) } == 0 {
            return Ok(both.rlim_cur);
        }
    }
    let target = if lim.rlim_max == libc::RLIM_INFINITY {
        want
    } else {
        want.min(lim.rlim_max)
    };
    let new = libc::rlimit {
        rlim_cur: target,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(resource, &new) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(target)
}

/// The kernel's ceiling for RLIMIT_NOFILE.
fn nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// glommio's floor for one executor is 512 KiB; each executor registers a small io_memory
/// region (64 KiB here) on three rings, so ask for generous headroom.
pub fn raise_memlock(executors: usize) -> anyhow::Result<()> {
    let want = (1u64 << 20) + executors as u64 * (1 << 20);
    let got = raise(libc::RLIMIT_MEMLOCK, want)
        .map_err(|e| anyhow::anyhow!("cannot read or raise RLIMIT_MEMLOCK: {e}"))?;
    if got < 512 * 1024 {
        anyhow::bail!(
            "the locked-memory limit is {} KiB and cannot be raised; io_uring executors need at least 512 KiB each. \
             Raise it with `ulimit -l unlimited` (or `ulimit -l {}`), Docker's `--ulimit memlock=-1:-1`, \
             or systemd's `LimitMEMLOCK=infinity`",
            got / 1024,
            want / 1024
        );
    }
    Ok(())
}

/// One descriptor per connection plus slack; warn (do not fail) when the hard limit is lower.
pub fn raise_nofile(connections: usize) -> Option<String> {
    let want = connections as u64 + 256;
    raise_nofile_to(want)
}

/// Raise the open-file limit to `want` descriptors (the hard limit too, where permitted);
/// a warning says what is in force when that is not possible.
pub fn raise_nofile_to(want: u64) -> Option<String> {
    match raise(libc::RLIMIT_NOFILE, want) {
        Ok(got) if got >= want => None,
        Ok(got) => Some(format!(
            "WARNING: open-file limit is {got}, below the {want} this run may need; raise it with `ulimit -n {want}` (or LimitNOFILE= / --ulimit nofile=) if connections fail with 'Too many open files'"
        )),
        Err(e) => Some(format!("WARNING: cannot raise the open-file limit: {e}")),
    }
}
