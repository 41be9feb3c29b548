//! Keeping a forked child off its parent's CPU for a while, when the two
//! have work to do at the same time.
//!
//! The kernel often queues a forked child on its parent's CPU. Where the
//! parent has work of its own right after the fork (saferoot making the
//! sandbox's network namespace while the init mounts), the child then
//! waits: a kernel that does not preempt inside a system call leaves it
//! queued for the whole half millisecond of the parent's
//! `unshare(CLONE_NEWNET)` while the other CPU idles (traced: in about
//! half of the starts the init's first instruction came 530 to 800 µs
//! after its fork).
//!
//! So the parent moves the child: right after the fork it narrows the
//! child's CPUs to all of its own but the one it runs on
//! ([`Spread::push_off`]). A child that has not run yet is only requeued,
//! which costs the parent one system call and the child nothing (a child
//! that moves itself once it runs has to wait for the stopper thread of
//! its CPU, 50 to 100 µs). A child that the kernel ran first, on the
//! parent's CPU, still moves itself ([`Spread::leave_if_on_parents`]):
//! the parent would otherwise not run until the child blocks.
//!
//! The kernel did run the child first in most starts (traced: 29 of 40
//! bundle starts; a new task is queued where its parent runs and preempts
//! it). So the parent forks under `SCHED_BATCH` ([`Spread::hold`]): a
//! task of that policy does not preempt the running one when it is woken,
//! so the new child waits in its queue until the parent pushes it, and
//! the parent goes straight on. The parent takes its own policy back right
//! after the push; the child with its CPUs.
//!
//! The child gives its CPUs and policy back ([`Spread::restore`]) once it
//! has heard from its parent after the push (so that the two cannot cross)
//! and before anything inherits them: before it forks or execs. A
//! scheduling hint only: nothing fails when the kernel refuses it, with a
//! single CPU allowed nothing happens, and a caller whose policy is not
//! the default one (`SCHED_OTHER`) keeps it throughout.

use rustix::process::Pid;
use rustix::thread::CpuSet;

use crate::sys::process::{own_sched_policy, set_own_sched_policy};

/// The parent's CPUs, read right before the fork: the same value in the
/// parent (which pushes the child off the CPU it runs on) and in the child
/// (which gives itself back all of them).
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    here: usize,
    all: CpuSet,
    others: CpuSet,
    /// The parent runs under the default policy, `SCHED_OTHER`, which the
    /// fork may trade for `SCHED_BATCH` for a moment ([`Spread::hold`]).
    default_policy: bool,
}

impl Spread {
    /// Reads the calling process's CPUs, right before the fork; `None`
    /// when there is no other CPU to push the child to (or they cannot be
    /// read).
    pub fn before_fork() -> Option<Spread> {
        let all = rustix::thread::sched_getaffinity(None)
            .inspect_err(|e| log::debug!("the child runs where the kernel puts it: {e}"))
            .ok()?;
        let here = rustix::thread::sched_getcpu();
        let mut others = all;
        others.unset(here);
        let default_policy = own_sched_policy() == Ok(libc::SCHED_OTHER);
        (others.count() > 0).then_some(Spread {
            here,
            all,
            others,
            default_policy,
        })
    }

    /// The parent's side, right before the fork: the parent, and so the
    /// child, takes `SCHED_BATCH`, under which the new child does not
    /// preempt the parent on its CPU (see the module documentation). Only
    /// from the default policy; [`Spread::push_off`] gives it back.
    pub fn hold(&self) {
        if self.default_policy {
            if let Err(e) = set_own_sched_policy(libc::SCHED_BATCH) {
                log::debug!("the child may run first: {e}");
            }
        }
    }

    /// Gives the calling process back the default policy that
    /// [`Spread::hold`] traded (the parent after the push or a failed
    /// fork, the child in [`Spread::restore`]).
    pub fn release(&self) {
        if self.default_policy {
            if let Err(e) = set_own_sched_policy(libc::SCHED_OTHER) {
                log::debug!("the policy was changed from outside meanwhile: {e}");
            }
        }
    }

    /// The CPU the parent ran on before the fork, which the child keeps
    /// off.
    #[cfg(test)]
    pub fn here(&self) -> usize {
        self.here
    }

    /// The parent's side, right after the fork: narrows `child`'s CPUs to
    /// every one of the parent's but the one it ran on before the fork,
    /// then takes back the parent's own policy ([`Spread::release`]).
    pub fn push_off(&self, child: Pid) {
        if let Err(e) = rustix::thread::sched_setaffinity(Some(child), &self.others) {
            log::debug!("the child stays where the kernel put it: {e}");
        }
        self.release();
    }

    /// The parent's side, before forking a helper that must stay off the
    /// CPUs the child was pushed to: the parent narrows its own CPUs to
    /// the one it ran on before the fork (where it runs, normally: nothing
    /// moves), so that the helper starts there; [`Spread::unpin`] gives
    /// them back. Whether the narrowing took.
    pub fn pin_here(&self) -> bool {
        let mut cpu = CpuSet::new();
        cpu.set(self.here);
        match rustix::thread::sched_setaffinity(None, &cpu) {
            Ok(()) => true,
            Err(e) => {
                log::debug!("the helper starts where the kernel puts it: {e}");
                false
            }
        }
    }

    /// Undoes [`Spread::pin_here`].
    pub fn unpin(&self) {
        if let Err(e) = rustix::thread::sched_setaffinity(None, &self.all) {
            log::debug!("the CPUs were changed from outside meanwhile: {e}");
        }
    }

    /// The child's side, first thing: a child that runs before its parent
    /// could push it, on its parent's CPU, moves itself (it would
    /// otherwise keep the parent from running until it blocks). First
    /// thing, because until then the parent waits. (Yielding the CPU
    /// instead does not give it to the parent: traced, the child was still
    /// there after `sched_yield` in each of 101 such starts; the parent,
    /// whose slice the fork ended, has run more than its share.)
    pub fn leave_if_on_parents(&self) {
        if rustix::thread::sched_getcpu() == self.here {
            if let Err(e) = rustix::thread::sched_setaffinity(None, &self.others) {
                log::debug!("staying on the parent's CPU: {e}");
            }
        }
    }

    /// The child's side: gives back the parent's CPUs (a no-op when the
    /// push failed) and its policy. Only after the child has heard from the
    /// parent since the fork, so that the push cannot come after it. This
    /// can only fail when a cpuset changed meanwhile to none of them; the
    /// kernel then gave the process the cpuset's CPUs itself, replacing the
    /// narrowed set, so there is nothing left to restore.
    pub fn restore(&self) {
        if let Err(e) = rustix::thread::sched_setaffinity(None, &self.all) {
            log::debug!("the CPUs were changed from outside meanwhile: {e}");
        }
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPUs in a `Cpus_allowed_list` line of a task's status file.
    fn allowed(task: &str) -> Vec<usize> {
        let status = std::fs::read_to_string(format!("/proc/{task}/status")).unwrap();
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim()
            .to_string();
        let mut out = Vec::new();
        for part in list.split(',') {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            out.extend(a.parse::<usize>().unwrap()..=b.parse::<usize>().unwrap());
        }
        out
    }

    fn cpus(set: &CpuSet) -> Vec<usize> {
        (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect()
    }

    /// A child pushed off its parent's CPU may run on the parent's other
    /// CPUs only, as the kernel reports them.
    #[test]
    fn a_pushed_child_may_run_on_the_parents_other_cpus_only() {
        let Some(spread) = Spread::before_fork() else {
            let one = rustix::thread::sched_getaffinity(None).unwrap();
            assert_eq!(one.count(), 1, "no spread with several CPUs allowed");
            return;
        };
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(child.id() as i32).unwrap();
        spread.push_off(pid);
        let seen = allowed(&child.id().to_string());
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(seen, cpus(&spread.others));
        assert!(!seen.contains(&spread.here()), "{seen:?}");
    }

    /// A child that finds itself on its parent's CPU moves to the others.
    #[test]
    fn a_child_on_its_parents_cpu_leaves_it() {
        std::thread::spawn(|| {
            let all = rustix::thread::sched_getaffinity(None).unwrap();
            if all.count() < 2 {
                return;
            }
            let here = rustix::thread::sched_getcpu();
            let mut only_here = CpuSet::new();
            only_here.set(here);
            rustix::thread::sched_setaffinity(None, &only_here).unwrap();
            let mut others = all;
            others.unset(here);
            let spread = Spread {
                here,
                all,
                others,
                default_policy: false,
            };
            let task = format!("self/task/{}", rustix::thread::gettid().as_raw_nonzero());
            spread.leave_if_on_parents();
            assert_eq!(allowed(&task), cpus(&spread.others));
            assert_ne!(rustix::thread::sched_getcpu(), here);
        })
        .join()
        .unwrap();
    }

    /// Held, a thread (and what it forks) runs under SCHED_BATCH; the
    /// push gives the holder its default policy back, the restore the
    /// child.
    #[test]
    fn the_fork_is_held_under_batch_until_push_and_restore() {
        std::thread::spawn(|| {
            let Some(spread) = Spread::before_fork() else {
                return;
            };
            assert_eq!(own_sched_policy(), Ok(libc::SCHED_OTHER));
            spread.hold();
            assert_eq!(own_sched_policy(), Ok(libc::SCHED_BATCH));
            let mut child = std::process::Command::new("sleep")
                .arg("10")
                .spawn()
                .unwrap();
            let policy_of = |task: &str| {
                std::fs::read_to_string(format!("/proc/{task}/sched"))
                    .unwrap()
                    .lines()
                    .find_map(|l| l.strip_prefix("policy"))
                    .map(|l| l.trim_start_matches([' ', ':']).trim().to_string())
                    .unwrap()
            };
            assert_eq!(policy_of(&child.id().to_string()), "3");
            spread.push_off(Pid::from_raw(child.id() as i32).unwrap());
            child.kill().unwrap();
            child.wait().unwrap();
            assert_eq!(own_sched_policy(), Ok(libc::SCHED_OTHER));
            spread.hold();
            spread.restore();
            assert_eq!(own_sched_policy(), Ok(libc::SCHED_OTHER));
        })
        .join()
        .unwrap();
    }

    /// A pushed thread gets every CPU back when it restores.
    #[test]
    fn a_pushed_thread_gets_its_cpus_back() {
        std::thread::spawn(|| {
            let Some(spread) = Spread::before_fork() else {
                return;
            };
            let tid = rustix::thread::gettid();
            let task = format!("self/task/{}", tid.as_raw_nonzero());
            spread.push_off(tid);
            assert!(!allowed(&task).contains(&spread.here()));
            spread.restore();
            assert_eq!(allowed(&task), cpus(&spread.all));
        })
        .join()
        .unwrap();
    }
}
