// SPDX-License-Identifier: GPL-2.0

//! The seed's `BUG()`, its `WARN()` variant, and the module's test hooks
//! (module parameters of the shim).

use super::ffi;
use kernel::ffi::c_long;
use kernel::prelude::*;

/// `WARN()` with the purge's `nr` and the lazy counter.
pub(crate) fn race_warn(nr: i64, lazy: i64) {
    // SAFETY: WARN(1, ...) with two numbers.
    unsafe { ffi::lv_race_warn(nr as c_long, lazy as c_long) };
}

/// The seed's `BUG_ON(nr > vmap_lazy_nr)` when it fires: a real kernel BUG
/// (an oops that kills the calling thread). Only on explicit request
/// (`on_race=bug`).
pub(crate) fn race_bug(nr: i64, lazy: i64) {
    // SAFETY: BUG() from process context, as the seed's kernel did.
    unsafe { ffi::lv_race_bug(nr as c_long, lazy as c_long) };
}

/// The test hook `inject_arena_failure`: 0 off, 1 fail before the PTE
/// array is allocated, 2 fail the PTE lookup half way.
pub(crate) fn arena_fault() -> u32 {
    // SAFETY: reads a module parameter.
    unsafe { ffi::lv_arena_fault() }
}

/// The test hook `inject_init_failure=N`: the N-th fault-injectable
/// allocation of the module's init fails (`/proc/self/fail-nth` of the
/// insmod task, scoped to init). Dropping the value disarms what is left.
pub(crate) struct InitFault {
    armed: u32,
    left: Option<u32>,
}

impl InitFault {
    /// Arms the hook if the parameter is set; `EINVAL` if it cannot be
    /// (no fault injection in this kernel, or N > INT_MAX).
    pub(crate) fn arm() -> Result<Self> {
        // SAFETY: sets the fail-nth count of the current task, the insmod
        // running the module's init, as a write to /proc/self/fail-nth would.
        let armed = unsafe { ffi::lv_init_fault_arm() };
        let armed = u32::try_from(armed).map_err(|_| EINVAL)?;
        Ok(InitFault { armed, left: None })
    }

    /// N, or 0 when the hook is off.
    pub(crate) fn armed(&self) -> u32 {
        self.armed
    }

    /// Clears what is left of the count, so nothing after init fails;
    /// returns how many allocations were left (0: the failure was injected).
    pub(crate) fn disarm(&mut self) -> u32 {
        if self.armed == 0 {
            return 0;
        }
        // SAFETY: as in `arm`, on the same task.
        *self
            .left
            .get_or_insert_with(|| unsafe { ffi::lv_init_fault_disarm() })
    }
}

impl Drop for InitFault {
    fn drop(&mut self) {
        self.disarm();
    }
}
