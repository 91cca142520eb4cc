// SPDX-License-Identifier: GPL-2.0

//! What mode `nodes` needs of the workqueues beyond 6.12's
//! `kernel::workqueue` (which can enqueue on `system_wq`, unbound, and has
//! no `flush_work()`):
//!
//! - [`flush`]: waits for a [`Work`] item to finish (`flush_work()`), so that
//!   nothing of the module runs on a worker after the owner is gone;
//! - [`scoped_on_cpus`]: runs a borrowed closure once per `(cpu, arg)` on
//!   `system_wq` workers bound to those CPUs (`schedule_work_on()`), while
//!   the caller does its own share, and returns only once every one of them
//!   has finished: the borrow outlives the work, as with scoped threads.

use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::workqueue::{new_work, RawWorkItem, Work, WorkItem};

/// Waits until the last queueing of `work` has finished running
/// (`flush_work()`); returns whether it had to wait. Process context.
pub(crate) fn flush<T: ?Sized, const ID: u64>(work: &Work<T, ID>) -> bool {
    // SAFETY: `work` is a valid, initialized `Work` (the only constructor
    // is its pin-initializer) and lives for the whole call.
    unsafe { bindings::flush_work(Work::raw_get(work)) }
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

/// Enqueues `w` on `system_wq`, on `cpu` (`queue_work_on()`); false if it
/// was already queued, or if `cpu` is no possible CPU (`queue_work_on()`
/// indexes per-CPU pools with it). A CPU that went offline since it was
/// chosen is fine: its work runs on another CPU, as the kernel's does.
fn enqueue_on(cpu: u32, w: Arc<Helper>) -> bool {
    // SAFETY: reads `nr_cpu_ids` and the possible mask.
    if !unsafe { super::ffi::lv_cpu_possible(cpu) } {
        return false;
    }
    // SAFETY: `system_wq` is a C global, always valid.
    let queue = unsafe { bindings::system_wq };
    // SAFETY: as `Queue::enqueue`: the closure only calls `queue_work_on()`
    // with the pointer it is given, valid for the duration of the closure
    // and, once queued, until the work function has run (`Arc` keeps it);
    // `Helper` is `Send` and `'static`.
    unsafe { w.__enqueue(move |work| bindings::queue_work_on(cpu as _, queue, work)) }.is_ok()
}

/// Runs `f(arg)` for each `(cpu, arg)` of `jobs` on a `system_wq` worker
/// bound to `cpu`, runs `inline()` here meanwhile, and waits for them all.
/// A job that cannot be queued (no memory) runs here, after `inline`.
/// Returns how many ran on a worker. Process context (it sleeps).
pub(crate) fn scoped_on_cpus(
    jobs: &[(u32, usize)],
    f: &(dyn Fn(usize) + Sync),
    inline: impl FnOnce(),
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
            Ok(h) if queued.len() < queued.capacity() && enqueue_on(cpu, h.clone()) => {
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
