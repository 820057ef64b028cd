//! Helper threads that start beside the thread that starts them, not on its CPU.
//!
//! A run starts a few short-lived threads to work *beside* the thread that starts them: the
//! sandbox's engine is built while the workflow loads, the second lane's engine while the
//! plan is made, the keys for `hermetic why` are written while `summary.json` is. That only
//! pays when the helper runs on another CPU.
//!
//! Some kernels place a new thread on its parent's CPU and leave it there, most likely to pack
//! a virtual machine's work onto few vCPUs: on the 2-vCPU virtual machines hermetic is
//! developed and tested on (their kernel's command line has `sched_vcpu_pack`), the sandbox
//! thread ran on the CPU of the thread that loads the workflow in nearly every run, and that
//! thread waited for it while the other CPU idled: 0.8–0.9 ms of every run's start
//! (`sched_getcpu` and thread CPU time at each phase of a start, in a build that printed
//! them).
//!
//! So a helper started by [`spawn_scoped`] first moves off the CPU its parent was on when it
//! started it, if the process may run on another: it narrows its CPU affinity to the others,
//! which makes the kernel move it at once, and then widens it back to what it was, so that
//! from then on the scheduler places it as it would any thread. Where the kernel already put
//! it elsewhere, or the process may use one CPU only, or on a system other than Linux, it does
//! nothing.

use std::io;
use std::thread::{Builder, Scope, ScopedJoinHandle};

/// Spawns `f` within `scope` on a thread of `builder` that moves off this thread's CPU first
/// (see the module's doc).
pub(crate) fn spawn_scoped<'scope, F, T>(
    scope: &'scope Scope<'scope, '_>,
    builder: Builder,
    f: F,
) -> io::Result<ScopedJoinHandle<'scope, T>>
where
    F: FnOnce() -> T + Send + 'scope,
    T: Send + 'scope,
{
    let parent = current_cpu();
    builder.spawn_scoped(scope, move || {
        let _ = leave(parent);
        f()
    })
}

/// The CPU this thread runs on, where the system says.
fn current_cpu() -> Option<usize> {
    #[cfg(target_os = "linux")]
    return Some(rustix::thread::sched_getcpu());
    #[cfg(not(target_os = "linux"))]
    return None;
}

/// Moves this thread off CPU `parent` if it is on it and may run elsewhere, then restores
/// its affinity; returns the CPU it moved to. Best effort: a call that fails leaves the
/// thread where it is.
fn leave(parent: Option<usize>) -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        use rustix::thread::{sched_getaffinity, sched_getcpu, sched_setaffinity};
        let parent = parent?;
        if sched_getcpu() != parent {
            return None;
        }
        let allowed = sched_getaffinity(None).ok()?;
        if allowed.count() < 2 || !allowed.is_set(parent) {
            return None;
        }
        let mut elsewhere = allowed;
        elsewhere.unset(parent);
        sched_setaffinity(None, &elsewhere).ok()?;
        // The kernel moved the thread before the call returned.
        let moved_to = sched_getcpu();
        // Back to what it was: once moved, the kernel leaves it where it is.
        let _ = sched_setaffinity(None, &allowed);
        Some(moved_to)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = parent;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_helper_runs_its_job_and_keeps_the_affinity_it_started_with() {
        #[cfg(target_os = "linux")]
        let before = rustix::thread::sched_getaffinity(None).expect("the affinity of this thread");
        let (answer, _after) = std::thread::scope(|s| {
            spawn_scoped(s, Builder::new().name("beside-test".into()), || {
                #[cfg(target_os = "linux")]
                let after = rustix::thread::sched_getaffinity(None).ok();
                #[cfg(not(target_os = "linux"))]
                let after = None::<()>;
                (6 * 7, after)
            })
            .expect("a thread")
            .join()
            .expect("no panic")
        });
        assert_eq!(answer, 42);
        #[cfg(target_os = "linux")]
        assert_eq!(_after, Some(before), "the helper's affinity is restored");
    }

    #[test]
    fn a_scoped_helper_borrows_from_its_scope() {
        let words = ["beside", "its", "parent"];
        let joined = std::thread::scope(|s| {
            spawn_scoped(s, Builder::new(), || words.join(" "))
                .expect("a thread")
                .join()
                .expect("no panic")
        });
        assert_eq!(joined, "beside its parent");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn leaving_the_parents_cpu_moves_a_thread_that_is_on_it() {
        use rustix::thread::{sched_getaffinity, sched_getcpu};
        let allowed = sched_getaffinity(None).expect("the affinity of this thread");
        if allowed.count() < 2 {
            return; // Nowhere else to go.
        }
        // As if the parent were on this thread's CPU: the thread moves off it, and its
        // affinity is the same afterwards. (Tried again if the scheduler moved the thread
        // between reading its CPU and `leave` reading it.)
        let (cpu, moved_to) = (0..100)
            .find_map(|_| {
                let cpu = sched_getcpu();
                leave(Some(cpu)).map(|moved_to| (cpu, moved_to))
            })
            .expect("the thread moves");
        assert_ne!(moved_to, cpu);
        assert_eq!(sched_getaffinity(None).expect("the affinity"), allowed);
        // A thread that is not on the given CPU stays where it is.
        let no_such_cpu = rustix::thread::CpuSet::MAX_CPU - 1;
        assert_eq!(leave(Some(no_such_cpu)), None);
        assert_eq!(sched_getaffinity(None).expect("the affinity"), allowed);
    }
}
