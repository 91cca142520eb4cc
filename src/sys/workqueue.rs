// SPDX-License-Identifier: GPL-2.0

//! What mode `nodes` needs of the workqueues beyond the kernel crate's
//! `kernel::workqueue` (which can enqueue on `system_wq` and the unbound
//! queue, not on `system_percpu_wq`, and in 6.12 has no `flush_work()`):
//!
//! - [`system_percpu`]: `system_percpu_wq`, where 6.12 and 7.3 queue
//!   `schedule_work()`;
//!
//! - [`flush`]: waits for a [`Work`] item to finish (`flush_work()`), so that
//!   nothing of the module runs on a worker after the owner is gone;
//! - [`scoped_on_cpus`]: runs a borrowed closure once per `(cpu, arg)` on
//!   `system_percpu_wq` workers bound to those CPUs (`schedule_work_on()`), or on
//!   a queue of the module's own, while the caller does its own share, and
//!   returns only once every one of them has finished: the borrow outlives
//!   the work, as with scoped threads;
//! - [`OwnedQueue`]: a workqueue of the module's own, `WQ_UNBOUND`
//!   (`alloc_workqueue()`, `destroy_workqueue()`), as the vmalloc drain got
//!   in 2026.

use core::ptr::NonNull;
use kernel::bindings;
use kernel::ffi::c_int;
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::workqueue::{new_work, Queue, RawWorkItem, Work, WorkItem};

/// A workqueue of the module's own: `WQ_UNBOUND | WQ_MEM_RECLAIM`, so that
/// a long work item runs on an unbound worker the scheduler balances, not
/// on a per-CPU worker it holds (the "hogged CPU" report of
/// `WQ_CPU_INTENSIVE_REPORT` is about the latter).
///
/// # Invariants
///
/// `ptr` is a workqueue made by `alloc_workqueue()`, destroyed only by
/// `drop`.
pub(crate) struct OwnedQueue {
    ptr: NonNull<bindings::workqueue_struct>,
}

// SAFETY: a workqueue may be used and destroyed from any task.
unsafe impl Send for OwnedQueue {}
// SAFETY: queueing on a workqueue is thread-safe.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    /// A new unbound workqueue named `name`.
    pub(crate) fn new_unbound(name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is a NUL-terminated string that lives for ever
        // (alloc_workqueue() copies it in any case).
        let ptr = unsafe { super::ffi::lv_alloc_unbound_wq(name.as_char_ptr()) };
        Ok(OwnedQueue {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// The queue, to enqueue work items on.
    pub(crate) fn queue(&self) -> &Queue {
        // SAFETY: `ptr` is a valid workqueue until `self` is dropped (type
        // invariant), which the returned borrow cannot outlive.
        unsafe { Queue::from_raw(self.ptr.as_ptr()) }
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: made by alloc_workqueue() and not destroyed yet (type
        // invariant); destroy_workqueue() drains what is still queued.
        unsafe { bindings::destroy_workqueue(self.ptr.as_ptr()) };
    }
}

/// The kernel's per-CPU system workqueue, `system_percpu_wq`: what
/// `schedule_work()` queues on in 6.12 and 7.3. (`kernel::workqueue::system()`
/// is `system_wq`, which 7.3 deprecates: queueing there warns once.)
pub(crate) fn system_percpu() -> &'static Queue {
    // SAFETY: `system_percpu_wq` is created at boot and never destroyed;
    // `Queue` is a transparent wrapper of `workqueue_struct`.
    unsafe { Queue::from_raw(bindings::system_percpu_wq) }
}

/// Waits until the last queueing of `work` has finished running
/// (`flush_work()`); returns whether it had to wait. Process context.
pub(crate) fn flush<T: ?Sized, const ID: u64>(work: &Work<T, ID>) -> bool {
    // SAFETY: `work` is a valid, initialized `Work` (the only constructor
    // is its pin-initializer) and lives for the whole call.
    unsafe { bindings::flush_work(Work::raw_get(work)) }
}

/// Whether the current task is bound to one CPU (a per-CPU worker of
/// `system_percpu_wq`, not an unbound worker).
pub(crate) fn on_bound_worker() -> bool {
    // SAFETY: reads the current task's CPU count.
    unsafe { super::ffi::lv_current_bound_to_one_cpu() }
}

/// One helper of [`scoped_on_cpus`].
///
/// # Invariants
///
/// `f` points to a closure that stays alive until this helper's work has
/// finished running (`scoped_on_cpus` flushes it before returning).
#[pin_data]
struct Helper {
    #[pin]
    work: Work<Helper>,
    f: *const (dyn Fn(usize) + Sync + 'static),
    arg: usize,
}

// SAFETY: `f` is `Sync` and alive while the work may run (type invariant);
// `arg` is plain data.
unsafe impl Send for Helper {}
// SAFETY: as above; nothing in a `Helper` is mutated after creation.
unsafe impl Sync for Helper {}

kernel::impl_has_work! {
    impl HasWork<Helper> for Helper { self.work }
}

impl WorkItem for Helper {
    type Pointer = Arc<Helper>;

    fn run(this: Arc<Helper>) {
        // SAFETY: the closure outlives the work (type invariant).
        let f = unsafe { &*this.f };
        f(this.arg);
    }
}

/// Enqueues `w` on `on` (`system_percpu_wq` if `None`), on `cpu`
/// (`queue_work_on()`; for an unbound queue, a hint); false if it was
/// already queued, or if `cpu` is no possible CPU (`queue_work_on()`
/// indexes per-CPU pools with it). A CPU that went offline since it was
/// chosen is fine: its work runs on another CPU, as the kernel's does.
fn enqueue_on(cpu: u32, w: Arc<Helper>, on: Option<&OwnedQueue>) -> bool {
    // SAFETY: reads `nr_cpu_ids` and the possible mask.
    if !unsafe { super::ffi::lv_cpu_possible(cpu) } {
        return false;
    }
    let queue = match on {
        Some(q) => q.ptr.as_ptr(),
        // SAFETY: `system_percpu_wq` is a C global, always valid.
        None => unsafe { bindings::system_percpu_wq },
    };
    // SAFETY: as `Queue::enqueue`: the closure only calls `queue_work_on()`
    // with the pointer it is given, valid for the duration of the closure
    // and, once queued, until the work function has run (`Arc` keeps it);
    // `Helper` is `Send` and `'static`.
    unsafe { w.__enqueue(move |work| bindings::queue_work_on(cpu as c_int, queue, work)) }.is_ok()
}

/// Runs `f(arg)` for each `(cpu, arg)` of `jobs` on a `system_percpu_wq` worker
/// bound to `cpu` (`on` is `None`, 6.9's `schedule_work_on()`) or on a
/// worker of `on` near `cpu`, runs `inline()` here meanwhile, and waits for
/// them all.
/// A job that cannot be queued (no memory) runs here, after `inline`.
/// Returns how many ran on a worker. Process context (it sleeps).
pub(crate) fn scoped_on_cpus(
    jobs: &[(u32, usize)],
    f: &(dyn Fn(usize) + Sync),
    inline: impl FnOnce(),
    on: Option<&OwnedQueue>,
) -> u64 {
    // SAFETY: only the lifetime bound changes; every helper holding this
    // pointer is flushed below, before `f`'s borrow ends.
    let fp: *const (dyn Fn(usize) + Sync + 'static) = unsafe { core::mem::transmute(f) };
    let mut queued: KVec<Arc<Helper>> = KVec::new();
    let mut here: KVec<usize> = KVec::new();
    let _ = here.reserve(jobs.len(), GFP_KERNEL);
    let _ = queued.reserve(jobs.len(), GFP_KERNEL);
    for &(cpu, arg) in jobs {
        let helper = Arc::pin_init(
            pin_init!(Helper { work <- new_work!("lazy_vmap_purge_helper"), f: fp, arg }),
            GFP_KERNEL,
        );
        match helper {
            Ok(h) if queued.len() < queued.capacity() && enqueue_on(cpu, h.clone(), on) => {
                // Cannot allocate: capacity checked.
                let _ = queued.push(h, GFP_KERNEL);
            }
            _ => {
                if here.push(arg, GFP_KERNEL).is_err() {
                    f(arg);
                }
            }
        }
    }
    inline();
    for &arg in here.iter() {
        f(arg);
    }
    for h in queued.iter() {
        flush(&h.work);
    }
    queued.len() as u64
}
