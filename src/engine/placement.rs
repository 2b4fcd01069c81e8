//! Which CPUs the shards run on: the ones this process may use (sched_getaffinity, so taskset,
//! cgroup cpusets and the Kubernetes CPU manager are respected), not every online CPU.

/// CPU ids this process may run on, in ascending order.
pub fn allowed_cpus() -> Vec<usize> {
    let mut ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort_unstable();
    if ids.is_empty() {
        // Affinity could not be read: fall back to "CPU 0" rather than refusing to run.
        ids.push(0);
    }
    ids
}

/// Restricts the calling thread to `cpus` (helper threads that must stay off other CPUs).
/// Returns false when the kernel refuses (e.g. a CPU outside the process's cpuset).
pub fn confine_current_thread(cpus: &[usize]) -> bool {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET only write inside it, and
    // sched_setaffinity(0, ..) reads it for the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        for &cpu in cpus {
            if cpu < libc::CPU_SETSIZE as usize {
                libc::CPU_SET(cpu, &mut set);
            }
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// One CPU per shard, round-robin over `cpus` when there are more shards than CPUs.
pub fn assign(num_shards: usize, cpus: &[usize]) -> Vec<usize> {
    (0..num_shards).map(|i| cpus[i % cpus.len()]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_is_never_empty_and_round_robins() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        assert_eq!(assign(5, &[2, 3]), vec![2, 3, 2, 3, 2]);
    }
}
