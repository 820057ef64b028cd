//! The per-store host state of a guest: its WASI context, its limiter and its clock.

use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use super::clock::VirtualClock;
use super::host_calls::{HostCallState, HostCalls};
use super::limits::MemoryLimiter;
use super::poll::PollState;

/// Host state of a core-module (WASI p1) guest.
pub struct P1State {
    /// Taken (and dropped) once the guest has ended, before the rest of the store is (see
    /// [`GuestState::end_wasi`]).
    pub(crate) wasi: Option<WasiP1Ctx>,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) clock: VirtualClock,
    pub(crate) epoch_nanos: u64,
    /// Set by the epoch callback when the wall-clock deadline passed.
    pub(crate) timed_out: bool,
    /// Where the guest's `hermetic_v1` calls go.
    pub(crate) calls: HostCalls,
    /// Faults injected at the WASI boundary (`hermetic chaos` only).
    pub(crate) faults: super::faults::WasiFaultState,
}

/// Host state of a component (WASI p2) guest.
pub struct P2State {
    /// Taken, with `table`, once the guest has ended (see [`GuestState::end_wasi`]).
    pub(crate) ctx: Option<WasiCtx>,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) clock: VirtualClock,
    pub(crate) timed_out: bool,
    /// Faults injected at the WASI boundary (`hermetic chaos` only), shared with the file
    /// streams the guest opens.
    pub(crate) faults: super::faults::SharedFaults,
}

impl WasiView for P2State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: self.ctx.as_mut().expect(ENDED),
            table: &mut self.table,
        }
    }
}

impl HostCallState for P1State {
    fn host_calls(&self) -> &HostCalls {
        &self.calls
    }
}

impl PollState for P1State {
    fn clock(&self) -> &VirtualClock {
        &self.clock
    }
    fn epoch_nanos(&self) -> u64 {
        self.epoch_nanos
    }
}

/// Why a WASI context can be missing: no host call runs after the guest ended.
pub(crate) const ENDED: &str = "a WASI call after the guest ended";

impl P1State {
    /// The guest's WASI context, which exists while the guest runs.
    pub(crate) fn wasi(&mut self) -> &mut WasiP1Ctx {
        self.wasi.as_mut().expect(ENDED)
    }
}

/// Access shared by both kinds of state, so the runner is written once.
pub(crate) trait GuestState: Send + 'static {
    fn limiter(&mut self) -> &mut MemoryLimiter;
    fn timed_out(&mut self) -> &mut bool;
    /// Drops everything of the guest's WASI context: its open files, directories and
    /// streams. Called once the guest has ended, so that what is left of the store holds
    /// nothing of the host's but its pool slots.
    fn end_wasi(&mut self);
}

impl GuestState for P1State {
    fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }
    fn timed_out(&mut self) -> &mut bool {
        &mut self.timed_out
    }
    fn end_wasi(&mut self) {
        self.wasi = None;
    }
}

impl GuestState for P2State {
    fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }
    fn timed_out(&mut self) -> &mut bool {
        &mut self.timed_out
    }
    fn end_wasi(&mut self) {
        self.ctx = None;
        self.table = ResourceTable::new();
    }
}
