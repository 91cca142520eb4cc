// SPDX-License-Identifier: GPL-2.0

//! CPUs: how many are online, which one runs us, running a function on
//! every one of them, preemption points and busy waits.

use super::ffi;
use kernel::bindings;
use kernel::ffi::{c_ulong, c_void};

/// `NR_CPUS`, the kernel's compile-time bound on CPUs.
pub(crate) fn nr_cpus_config() -> u32 {
    // SAFETY: returns a constant.
    unsafe { ffi::lv_nr_cpus_config() }
}

/// `nr_cpu_ids`: every possible CPU's number is below it (set at boot).
pub(crate) fn nr_cpu_ids() -> u32 {
    // SAFETY: reads a variable fixed at boot.
    unsafe { ffi::lv_nr_cpu_ids() }
}

/// Number of online CPUs.
pub(crate) fn online() -> u32 {
    // SAFETY: reads `num_online_cpus()`.
    unsafe { ffi::lv_online_cpus() }
}

/// The `n`-th online CPU, counting from 0, modulo the online count (the
/// online mask may have holes: a CPU taken offline). Read under
/// `cpus_read_lock()`, so the count and the mask agree: always a CPU that
/// was online at the call (it may go offline right after; a caller that
/// binds to it or queues work on it must cope, as the kernel does).
pub(crate) fn nth_online(n: u32) -> u32 {
    // SAFETY: reads the online mask; the result is a CPU number.
    unsafe { ffi::lv_nth_online_cpu(n) as u32 }
}

/// Migration disabled for as long as this lives: the task stays on the CPU
/// it runs on (it may still be preempted and sleep, and comes back to that
/// CPU). A CPU-bound kthread is not enough: when its CPU goes offline the
/// scheduler moves it for good. Hotplug waits for a pinned task to unpin
/// before the CPU goes (`balance_push()`), so keep it short; dropping the
/// guard on a CPU going offline schedules, so that hotplug can move the
/// task then (a hot loop that pins every operation is otherwise preempted
/// only while pinned, and held an offline off for as long as it ran: the
/// hung-task detector fired in the `tlb` suite's hotplug test).
///
/// # Invariants
///
/// `migrate_disable()` was called by the task that holds this;
/// the guard is neither `Send` nor `Sync`, so the matching
/// `migrate_enable()` in `drop` runs on the same task.
pub(crate) struct Pinned {
    _task: core::marker::PhantomData<*mut ()>,
}

impl Pinned {
    /// Disables migration of the current task.
    pub(crate) fn new() -> Self {
        // SAFETY: process context; balanced by `drop` on this task.
        unsafe { bindings::migrate_disable() };
        Pinned {
            _task: core::marker::PhantomData,
        }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: balances the `migrate_disable()` of `new`, on the same
        // task (type invariant); the helper may then schedule (process
        // context: `Pinned` is only made by `new`, which may sleep too).
        unsafe { ffi::lv_migrate_enable() };
    }
}

/// The CPU running the caller (may change right after, unless the caller
/// is bound to it).
pub(crate) fn this() -> u32 {
    // SAFETY: `raw_smp_processor_id()`, valid in any context.
    unsafe { ffi::lv_this_cpu() as u32 }
}

/// Pages of RAM.
pub(crate) fn totalram_pages() -> u64 {
    // SAFETY: reads a counter.
    unsafe { ffi::lv_totalram_pages() as u64 }
}

/// A preemption point (`cond_resched()`). Must not be called with a
/// spinlock held; Rust code cannot hold a `SpinLock` guard across a call
/// that does not take it, so only the caller's own locks matter.
pub(crate) fn cond_resched() {
    // SAFETY: may sleep; called from process context.
    unsafe { ffi::lv_cond_resched() };
}

/// Busy-waits `us` microseconds (preemptible, unless the caller holds a
/// lock).
pub(crate) fn udelay(us: u32) {
    // SAFETY: a busy wait.
    unsafe { bindings::__udelay(us as c_ulong) };
}

/// Runs `f` on every online CPU (in IPI context on the others, with
/// preemption off on this one) and waits for all of them. Must not be
/// called with interrupts off or a spinlock held.
pub(crate) fn on_each<F: Fn() + Sync>(f: &F) {
    /// # Safety
    ///
    /// `info` is a `&F` alive for the whole call.
    unsafe extern "C" fn call<F: Fn() + Sync>(info: *mut c_void) {
        // SAFETY: `info` is the `&F` passed below, alive until all CPUs return.
        unsafe { (*(info as *const F))() }
    }
    // SAFETY: `call::<F>` only calls `f`, which outlives the call because
    // `wait` is true; `F: Sync` makes running it on several CPUs at once
    // sound; `__cpu_online_mask` is the kernel's mask of online CPUs.
    unsafe {
        bindings::on_each_cpu_cond_mask(
            None,
            Some(call::<F>),
            core::ptr::from_ref(f).cast_mut().cast::<c_void>(),
            true,
            &raw const bindings::__cpu_online_mask,
        )
    };
}
