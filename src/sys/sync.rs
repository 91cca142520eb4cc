// SPDX-License-Identifier: GPL-2.0

//! The static purge lock of `__purge_vmap_area_lazy()`: `purge_lock` of
//! 2.6.28, a mutex since 4.9 so that it may be held across the cross-CPU
//! flush. The purge of `ordered` (and the threshold purge of every mode)
//! only *tries* it, as 2.6.28 did, and 6.12's `kernel::sync::Mutex` has no
//! `try_lock()` (it came later), so the mutex is a C `DEFINE_MUTEX` in the
//! shim (static, as lockdep likes it), held here through a guard.

use super::ffi;
use core::marker::PhantomData;

/// Holds the purge lock; dropping it unlocks.
///
/// # Invariants
///
/// The purge mutex is held by the task that made this guard, until drop.
pub(crate) struct PurgeGuard {
    /// A mutex is released by the task that took it: not `Send`.
    _not_send: PhantomData<*mut ()>,
}

/// Takes the purge lock, sleeping until it is free. Process context only.
pub(crate) fn purge_lock() -> PurgeGuard {
    // SAFETY: a sleeping lock, taken from process context (every caller is
    // a kthread or a sysfs write); unlocked by the guard's drop.
    unsafe { ffi::lv_purge_lock() };
    PurgeGuard {
        _not_send: PhantomData,
    }
}

/// Takes the purge lock if it is free.
pub(crate) fn purge_trylock() -> Option<PurgeGuard> {
    // SAFETY: as above; never sleeps.
    unsafe { ffi::lv_purge_trylock() }.then(|| PurgeGuard {
        _not_send: PhantomData,
    })
}

impl Drop for PurgeGuard {
    fn drop(&mut self) {
        // SAFETY: the lock is held by this task (type invariant).
        unsafe { ffi::lv_purge_unlock() };
    }
}
