// SPDX-License-Identifier: GPL-2.0

//! A kernel thread bound to one CPU, owning the data it runs on.
//!
//! [`Thread::spawn`] creates `lazy_vmap/<id>` on a CPU and runs
//! `f(&data, &ctx)` in it; when `f` returns, the thread sleeps until it is
//! stopped, so `kthread_stop()` never races with its exit. Dropping the
//! [`Thread`] stops it, waits for it, and only then drops the data.

use super::ffi;
use core::ptr::NonNull;
use kernel::bindings;
use kernel::error::from_err_ptr;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::task::Task;
// The same type on both kernels; 6.18 moved it from `types` to `sync::aref`
// (Kbuild's `lv_aref_in_sync` says which this tree has).
#[cfg(lv_aref_in_sync)]
use kernel::sync::aref::ARef;
#[cfg(not(lv_aref_in_sync))]
use kernel::types::ARef;

/// What only the thread itself may ask.
pub(crate) struct Ctx(());

impl Ctx {
    /// Whether the thread was asked to stop (`kthread_should_stop()`).
    pub(crate) fn should_stop(&self) -> bool {
        // SAFETY: a `Ctx` exists only in the body of a thread made by
        // `Thread::spawn`, i.e. on a kthread.
        unsafe { bindings::kthread_should_stop() }
    }
}

struct Inner<T> {
    f: fn(&T, &Ctx),
    data: T,
}

/// A running kthread and its data.
///
/// # Invariants
///
/// `task` is a kthread created by `spawn`, running `trampoline::<T>` on
/// `inner`, and not yet stopped; `inner` outlives it (dropped after
/// `kthread_stop()` returned).
pub(crate) struct Thread<T: Send + Sync> {
    task: ARef<Task>,
    inner: KBox<Inner<T>>,
}

/// The kthread body.
///
/// # Safety
///
/// `p` points to an `Inner<T>` that outlives the thread.
unsafe extern "C" fn trampoline<T>(p: *mut c_void) -> c_int {
    // SAFETY: the caller's promise (see `Thread`'s invariants).
    let inner = unsafe { &*(p as *const Inner<T>) };
    (inner.f)(&inner.data, &Ctx(()));
    // SAFETY: we are a kthread; sleeps until kthread_stop().
    unsafe { ffi::lv_wait_for_stop() };
    0
}

impl<T: Send + Sync> Thread<T> {
    /// Starts `lazy_vmap/<id>` bound to `cpu`, running `f(&data, ctx)`.
    pub(crate) fn spawn(data: T, f: fn(&T, &Ctx), cpu: u32, id: u32) -> Result<Self> {
        let inner = KBox::new(Inner { f, data }, GFP_KERNEL)?;
        let p = core::ptr::from_ref(&*inner).cast_mut().cast::<c_void>();
        // SAFETY: `trampoline::<T>` matches the ABI and gets `p`, which
        // stays valid until the thread is stopped (the `Thread` owns it);
        // `cpu` is a CPU number. The helper returns a counted reference or
        // an error pointer.
        let task = from_err_ptr(unsafe {
            ffi::lv_kthread_start(trampoline::<T>, p, cpu as c_int, id as c_int)
        })?;
        let task = NonNull::new(task.cast::<Task>()).ok_or(ENOMEM)?;
        // SAFETY: `Task` is a transparent wrapper of `task_struct`, and the
        // helper took the reference we hand over to `ARef`.
        let task = unsafe { ARef::from_raw(task) };
        Ok(Thread { task, inner })
    }

    /// The thread's data.
    pub(crate) fn data(&self) -> &T {
        &self.inner.data
    }
}

impl<T: Send + Sync> Drop for Thread<T> {
    fn drop(&mut self) {
        let task: &Task = &self.task;
        let task = core::ptr::from_ref(task)
            .cast_mut()
            .cast::<bindings::task_struct>();
        // SAFETY: a kthread not yet stopped (type invariant), kept alive by
        // our reference; this waits for it to exit, after which it no
        // longer uses `inner`. The reference is dropped by `ARef`.
        unsafe { bindings::kthread_stop(task) };
    }
}
