//! A deterministic `poll_oneoff` for WASI p1 guests, shadowing wasmtime-wasi's.
//!
//! Inside the sandbox nothing can block: stdin is closed, files are always ready, and there are
//! no sockets. So a poll returns at once:
//!
//! * if any subscription is on a file descriptor, every fd subscription is reported ready
//!   (stdin with `FD_READWRITE_HANGUP`, since it is closed);
//! * otherwise, it is a sleep: the virtual clock jumps to the earliest deadline and every clock
//!   subscription due by then fires.
//!
//! The ABI layout of `subscription` (48 bytes) and `event` (32 bytes) is from
//! `wasi_snapshot_preview1.witx`.

use wasmtime::{Caller, Extern, Linker};

use super::clock::VirtualClock;

const ERRNO_SUCCESS: i32 = 0;
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;

const EVENTTYPE_CLOCK: u8 = 0;
const EVENTTYPE_FD_READ: u8 = 1;
const CLOCKID_REALTIME: u32 = 0;
const CLOCKID_MONOTONIC: u32 = 1;
const SUBCLOCKFLAGS_ABSTIME: u16 = 1;
const EVENTRWFLAGS_HANGUP: u16 = 1;
const SUBSCRIPTION_SIZE: usize = 48;
const EVENT_SIZE: usize = 32;

/// What the store's data must offer for [`add_to_linker`].
pub(crate) trait PollState: 'static {
    fn clock(&self) -> &VirtualClock;
    /// The wall-clock epoch in nanoseconds, to convert realtime deadlines.
    fn epoch_nanos(&self) -> u64;
}

/// Replaces `wasi_snapshot_preview1::poll_oneoff` in `linker`.
pub(crate) fn add_to_linker<T: PollState + Send>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "poll_oneoff",
        |mut caller: Caller<'_, T>, subs: i32, events: i32, n: i32, nevents: i32| -> i32 {
            let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
                return ERRNO_INVAL;
            };
            let clock = caller.data().clock().clone();
            let epoch = caller.data().epoch_nanos();
            let mem = memory.data_mut(&mut caller);
            match poll(
                mem,
                &clock,
                epoch,
                subs as u32,
                events as u32,
                n as u32,
                nevents as u32,
            ) {
                Ok(()) => ERRNO_SUCCESS,
                Err(errno) => errno,
            }
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

struct Sub {
    userdata: u64,
    tag: u8,
    clock_id: u32,
    timeout: u64,
    flags: u16,
    fd: u32,
}

fn poll(
    mem: &mut [u8],
    clock: &VirtualClock,
    epoch: u64,
    subs_ptr: u32,
    events_ptr: u32,
    n: u32,
    nevents_ptr: u32,
) -> Result<(), i32> {
    if n == 0 {
        return Err(ERRNO_INVAL);
    }
    let mut subs = Vec::with_capacity(n.min(1024) as usize);
    for i in 0..n as usize {
        let base = subs_ptr as usize + i * SUBSCRIPTION_SIZE;
        let s = slice(mem, base, SUBSCRIPTION_SIZE)?;
        subs.push(Sub {
            userdata: u64::from_le_bytes(s[0..8].try_into().unwrap_or_default()),
            tag: s[8],
            fd: u32::from_le_bytes(s[16..20].try_into().unwrap_or_default()),
            clock_id: u32::from_le_bytes(s[16..20].try_into().unwrap_or_default()),
            timeout: u64::from_le_bytes(s[24..32].try_into().unwrap_or_default()),
            flags: u16::from_le_bytes(s[40..42].try_into().unwrap_or_default()),
        });
    }

    let mut out: Vec<[u8; EVENT_SIZE]> = Vec::new();
    if subs.iter().any(|s| s.tag != EVENTTYPE_CLOCK) {
        for s in subs.iter().filter(|s| s.tag != EVENTTYPE_CLOCK) {
            if s.tag > 2 {
                return Err(ERRNO_INVAL);
            }
            let hangup = s.tag == EVENTTYPE_FD_READ && s.fd == 0;
            out.push(event(
                s.userdata,
                s.tag,
                1,
                if hangup { EVENTRWFLAGS_HANGUP } else { 0 },
            ));
        }
    } else {
        let now = clock.read();
        let mut deadlines = Vec::with_capacity(subs.len());
        for s in &subs {
            let absolute = s.flags & SUBCLOCKFLAGS_ABSTIME != 0;
            let deadline = match (s.clock_id, absolute) {
                (CLOCKID_MONOTONIC | CLOCKID_REALTIME, false) => now.saturating_add(s.timeout),
                (CLOCKID_MONOTONIC, true) => s.timeout,
                (CLOCKID_REALTIME, true) => s.timeout.saturating_sub(epoch),
                _ => return Err(ERRNO_INVAL),
            };
            deadlines.push(deadline);
        }
        let wake = deadlines.iter().copied().min().unwrap_or(now).max(now);
        clock.advance_to(wake);
        for (s, d) in subs.iter().zip(&deadlines) {
            if *d <= wake {
                out.push(event(s.userdata, EVENTTYPE_CLOCK, 0, 0));
            }
        }
    }

    for (i, e) in out.iter().enumerate() {
        slice(mem, events_ptr as usize + i * EVENT_SIZE, EVENT_SIZE)?.copy_from_slice(e);
    }
    slice(mem, nevents_ptr as usize, 4)?.copy_from_slice(&(out.len() as u32).to_le_bytes());
    Ok(())
}

fn event(userdata: u64, kind: u8, nbytes: u64, flags: u16) -> [u8; EVENT_SIZE] {
    let mut e = [0; EVENT_SIZE];
    e[0..8].copy_from_slice(&userdata.to_le_bytes());
    // e[8..10] is the errno: success.
    e[10] = kind;
    e[16..24].copy_from_slice(&nbytes.to_le_bytes());
    e[24..26].copy_from_slice(&flags.to_le_bytes());
    e
}

fn slice(mem: &mut [u8], at: usize, len: usize) -> Result<&mut [u8], i32> {
    mem.get_mut(at..at.checked_add(len).ok_or(ERRNO_FAULT)?)
        .ok_or(ERRNO_FAULT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock_sub(mem: &mut [u8], at: usize, userdata: u64, id: u32, timeout: u64, flags: u16) {
        mem[at..at + 8].copy_from_slice(&userdata.to_le_bytes());
        mem[at + 8] = EVENTTYPE_CLOCK;
        mem[at + 16..at + 20].copy_from_slice(&id.to_le_bytes());
        mem[at + 24..at + 32].copy_from_slice(&timeout.to_le_bytes());
        mem[at + 40..at + 42].copy_from_slice(&flags.to_le_bytes());
    }

    #[test]
    fn a_sleep_advances_the_clock_and_fires_only_due_timers() {
        let clock = VirtualClock::default();
        let mut mem = vec![0u8; 1024];
        clock_sub(&mut mem, 0, 11, CLOCKID_MONOTONIC, 5_000_000_000, 0);
        clock_sub(&mut mem, 48, 22, CLOCKID_MONOTONIC, 9_000_000_000, 0);
        poll(&mut mem, &clock, 0, 0, 200, 2, 500).unwrap();
        assert_eq!(u32::from_le_bytes(mem[500..504].try_into().unwrap()), 1);
        assert_eq!(u64::from_le_bytes(mem[200..208].try_into().unwrap()), 11);
        assert!(clock.peek() >= 5_000_000_000 && clock.peek() < 5_000_100_000);
    }

    #[test]
    fn out_of_bounds_is_efault_and_zero_subscriptions_einval() {
        let clock = VirtualClock::default();
        let mut mem = vec![0u8; 64];
        assert_eq!(poll(&mut mem, &clock, 0, 40, 0, 1, 0), Err(ERRNO_FAULT));
        assert_eq!(poll(&mut mem, &clock, 0, 0, 0, 0, 0), Err(ERRNO_INVAL));
    }
}
