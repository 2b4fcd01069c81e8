//! A periodic timer that keeps a glommio 0.9.0 executor from sleeping forever with runnable
//! tasks.
//!
//! glommio's loop installs its preemption timer, then runs the task queues; if the thread is
//! descheduled for longer than the preemption period in between (a loaded machine), the queues
//! see "preempt" before running anything and report that nothing ran, and the executor parks
//! with no timeout although tasks are queued. A connection accepted at that instant is never
//! read: the request hangs until the client gives up. A pending timer bounds that park; when
//! it fires, the loop installs a fresh preemption timer and runs the stranded tasks.
//! (`scripts/glommio-park-race.sh` reproduces the hang without the guard.)

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use glommio::task::JoinHandle;

/// Ticks every `period` on the current executor until dropped.
pub struct ParkGuard {
    stop: Rc<Cell<bool>>,
    task: Option<JoinHandle<()>>,
}

impl ParkGuard {
    /// Must be called from inside a glommio executor.
    pub fn start(period: Duration) -> ParkGuard {
        let stop = Rc::new(Cell::new(false));
        let flag = stop.clone();
        let task = glommio::spawn_local(async move {
            while !flag.get() {
                glommio::timer::sleep(period).await;
            }
        })
        .detach();
        ParkGuard {
            stop,
            task: Some(task),
        }
    }
}

impl Drop for ParkGuard {
    fn drop(&mut self) {
        self.stop.set(true);
        if let Some(task) = self.task.take() {
            task.cancel();
        }
    }
}
