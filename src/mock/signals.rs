//! SIGINT and SIGTERM as a graceful stop for the standalone mock: blocked in every thread and
//! collected by the main thread with `sigtimedwait`, so no handler runs anywhere.

use std::time::Duration;

use anyhow::bail;

/// SIGINT and SIGTERM, blocked in the calling thread and in every thread it starts afterwards.
pub(super) struct StopSignals {
    set: libc::sigset_t,
}

impl StopSignals {
    /// Blocks both signals in the calling thread. Call before starting any thread: threads
    /// inherit the mask, and one that left them unblocked would let them kill the process.
    pub fn block() -> anyhow::Result<StopSignals> {
        // SAFETY: sigemptyset/sigaddset initialise and fill the set passed by pointer;
        // pthread_sigmask reads it (the old mask is not asked for).
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                bail!(
                    "cannot block SIGINT/SIGTERM: {}",
                    std::io::Error::from_raw_os_error(rc)
                );
            }
            Ok(StopSignals { set })
        }
    }

    /// Waits up to `timeout` for one of the signals; returns its name.
    pub fn wait(&self, timeout: Duration) -> Option<&'static str> {
        let timeout = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: the set was initialised by `block`; a null siginfo pointer is allowed.
        let signal = unsafe { libc::sigtimedwait(&self.set, std::ptr::null_mut(), &timeout) };
        // -1 is a timeout (EAGAIN) or an interruption (EINTR): either way, nothing to stop on.
        match signal {
            libc::SIGINT => Some("SIGINT"),
            libc::SIGTERM => Some("SIGTERM"),
            _ => None,
        }
    }
}
