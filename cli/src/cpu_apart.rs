//! Keeping a forked child off its parent's CPU for a while, when the two
//! have work to do at the same time.
//!
//! The kernel often starts a forked child on its parent's CPU. Where the
//! parent has work of its own right after the fork (saferoot making the
//! sandbox's network namespace while the init mounts), one of the two
//! then waits for the other while another CPU idles. A child that finds
//! itself on its parent's CPU narrows its CPUs to the others
//! ([`Apart::leave`]), which moves it at once, and gives them back
//! ([`Apart::restore`]) before anything inherits them: before it forks or
//! execs. A scheduling hint only: nothing fails when the kernel refuses
//! it, and with a single CPU allowed nothing happens.
//!
//! The move is not free: the child waits for the other CPU to take it
//! (on the development VM an idle virtual CPU takes 50 to 100 µs to wake),
//! so it pays only where the parent's work is long. For the half
//! millisecond of a network namespace it does; for the init writing the
//! id maps of the program's process it did not (the program's exec came
//! later, 720 against 620 µs after its fork, traced), and is not done.

use rustix::thread::CpuSet;

/// The parent's side: its CPU, read right before the fork.
pub fn here() -> usize {
    rustix::thread::sched_getcpu()
}

/// The child's side: the CPUs to give back, if it narrowed them.
#[derive(Debug, Default)]
pub struct Apart {
    restore: Option<CpuSet>,
}

impl Apart {
    /// Moves the calling process off `parent_cpu` ([`here`] in the parent,
    /// before the fork) when it runs there and may run elsewhere.
    pub fn leave(parent_cpu: usize) -> Apart {
        if rustix::thread::sched_getcpu() != parent_cpu && !test_hook_always() {
            return Apart::default();
        }
        let Ok(all) = rustix::thread::sched_getaffinity(None) else {
            return Apart::default();
        };
        let mut others = all;
        others.unset(parent_cpu);
        if others.count() == 0 {
            return Apart::default();
        }
        match rustix::thread::sched_setaffinity(None, &others) {
            Ok(()) => Apart { restore: Some(all) },
            Err(e) => {
                log::debug!("staying on the parent's CPU: {e}");
                Apart::default()
            }
        }
    }

    /// Whether [`Apart::leave`] narrowed the CPUs and they are not back yet.
    pub fn is_narrowed(&self) -> bool {
        self.restore.is_some()
    }

    /// Gives back the CPUs [`Apart::leave`] took away. This can only fail
    /// when a cpuset changed meanwhile to none of them; the kernel then
    /// gave the process the cpuset's CPUs itself, replacing the narrowed
    /// set, so there is nothing left to restore.
    pub fn restore(&mut self) {
        if let Some(all) = self.restore.take() {
            if let Err(e) = rustix::thread::sched_setaffinity(None, &all) {
                log::debug!("the CPUs were changed from outside meanwhile: {e}");
            }
        }
    }
}

/// The debug-build test hook `SAFEROOT_TEST_APART=always`: the child
/// narrows its CPUs as if it had started on its parent's, wherever it
/// started, so that tests see the CPUs given back every time. Release
/// builds do not read it.
fn test_hook_always() -> bool {
    #[cfg(debug_assertions)]
    if std::env::var_os("SAFEROOT_TEST_APART").is_some_and(|v| v == "always") {
        return true;
    }
    false
}
