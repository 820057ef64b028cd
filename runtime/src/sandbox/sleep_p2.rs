//! Virtual sleeps for WASI p2 components, shadowing `wasi:clocks/monotonic-clock`'s
//! `subscribe-duration` and `subscribe-instant`.
//!
//! wasmtime-wasi's pollables wait in real time whatever clock is installed. Ours resolve at once
//! and move the virtual clock to the wake-up time, the same as the p1 `poll_oneoff` in
//! [`super::poll`]: a guest that sleeps wakes up, sees the time it slept for, and costs nothing.

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};

use super::clock::VirtualClock;
use super::state::P2State;

/// The interface wasmtime-wasi 48 defines; guests importing any 0.2.x version link to it.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

struct VirtualSleep {
    until: u64,
    clock: VirtualClock,
}

#[async_trait::async_trait]
impl Pollable for VirtualSleep {
    async fn ready(&mut self) {
        self.clock.advance_to(self.until);
    }
}

fn sleep_until(
    mut store: StoreContextMut<'_, P2State>,
    until: impl FnOnce(u64) -> u64,
) -> wasmtime::Result<(Resource<DynPollable>,)> {
    let state = store.data_mut();
    let until = until(state.clock.peek());
    let sleep = state.table.push(VirtualSleep {
        until,
        clock: state.clock.clone(),
    })?;
    Ok((subscribe(&mut state.table, sleep)?,))
}

/// Replaces the two subscribe functions in `linker`, which must already hold WASI p2.
pub(crate) fn add_to_linker(linker: &mut Linker<P2State>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap("subscribe-duration", |store, (duration,): (u64,)| {
        sleep_until(store, |now| now.saturating_add(duration))
    })?;
    clock.func_wrap("subscribe-instant", |store, (when,): (u64,)| {
        sleep_until(store, |_| when)
    })?;
    linker.allow_shadowing(false);
    Ok(())
}
