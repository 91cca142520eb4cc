// SPDX-License-Identifier: GPL-2.0

//! The loop of one stress thread: allocate, fill every page, check it,
//! free, one row of the workload table, until stopped or out of time.
//!
//! The check is the stale-TLB detector. A fill writes each page through the
//! area's virtual address, i.e. through this CPU's translation; reading it
//! back the same way would agree with the write even if both went to the
//! page the address mapped *before* (a translation a missing flush left
//! behind). So each page is also read through the direct map of the page
//! its PTE maps now (`vmalloc_to_page()` for vmalloc), and a page whose two
//! views disagree, or whose direct-map view is not what was written, counts
//! in `stale_tlb` (`check_tlb`, on by default). The `handoff` workload
//! reads and frees each area on another CPU than the one that wrote it.

use super::target::{Area, Target};
use super::Stress;
use crate::arena::LATENCY;
use crate::knobs::TARGETS;
use crate::lazy_core::hist::{Event, Hist};
use crate::lazy_core::workload::{Busy, Ctx, Req, WORKLOADS};
use crate::sys::cpu;
use crate::sys::kthread;
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};
use kernel::new_spinlock;
use kernel::prelude::*;
use kernel::sync::{Arc, SpinLock};

pub(super) fn now_ns() -> i64 {
    crate::sys::time::now_ns() as i64
}

/// A per-pair queue of the `handoff` workload: areas one thread allocated
/// and filled (with the seed they were filled with), waiting for the thread
/// of the previous CPU to read and free them. A small stack: a full one
/// makes the producer free its area itself.
struct Ring {
    areas: [Option<(Area, u64)>; 8],
    len: usize,
}

/// The queues of one `handoff` run: thread `i` puts into `queues[i]` and
/// takes from `queues[(i + 1) % n]`.
pub(super) struct Handoff {
    queues: KVec<Pin<KBox<SpinLock<Ring>>>>,
}

impl Handoff {
    pub(super) fn new(n: usize) -> Result<Arc<Self>> {
        let mut queues = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            let ring = Ring {
                areas: core::array::from_fn(|_| None),
                len: 0,
            };
            queues.push(
                KBox::pin_init(new_spinlock!(ring, "lazy_vmap_handoff"), GFP_KERNEL)?,
                GFP_KERNEL,
            )?;
        }
        Ok(Arc::new(Handoff { queues }, GFP_KERNEL)?)
    }

    /// Queues `a` (filled with `seed`) on queue `q`; gives it back if full.
    fn put(&self, q: usize, a: Area, seed: u64) -> core::result::Result<(), Area> {
        let mut r = self.queues[q].lock();
        let n = r.len;
        match r.areas.get_mut(n) {
            Some(slot) => {
                *slot = Some((a, seed));
                r.len += 1;
                Ok(())
            }
            None => Err(a),
        }
    }

    /// Takes an area and its seed from queue `q`, if any.
    fn take(&self, q: usize) -> Option<(Area, u64)> {
        let mut r = self.queues[q].lock();
        r.len = r.len.checked_sub(1)?;
        let n = r.len;
        r.areas[n].take()
    }
}

/// One stress thread's parameters; owned by its [`kthread::Thread`].
pub(super) struct Worker {
    pub(super) stress: Arc<Stress>,
    pub(super) target: Target,
    pub(super) workload: usize,
    pub(super) nr_pages: u64,
    pub(super) seed: u64,
    /// `duration_ms` in ns, counted from the end of the busy-set setup.
    pub(super) duration_ns: Option<i64>,
    /// This thread's number, and the queues of the `handoff` workload.
    pub(super) index: usize,
    pub(super) handoff: Option<Arc<Handoff>>,
    pub(super) busy_budget: u64,
    /// Set when the loop has ended (time up, or stopped).
    pub(super) done: AtomicBool,
}

/// Counters a thread adds up locally and publishes now and then, so the
/// hot loop does not bounce shared cache lines. The two histograms (2.4 KiB
/// each) make it too big for a kthread's stack: it lives in a `KBox`.
#[derive(Default)]
struct Local {
    ops: u64,
    allocs: u64,
    frees: u64,
    freed_pages: u64,
    failures: u64,
    mismatches: u64,
    stale: u64,
    /// Latency of each successful allocation and of each free, ns.
    alloc_ns: Hist,
    free_ns: Hist,
}

/// The words written at the start and the end of page `i` of `a`.
fn tag(a: &Area, i: u64, seed: u64) -> (u64, u64) {
    let t = (a.addr() as u64 + i).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed;
    (t, !t)
}

fn fill(a: &mut Area, seed: u64) {
    for i in 0..a.pages() {
        let w = tag(a, i, seed);
        a.write_words(i, w);
    }
}

impl Worker {
    /// The kthread body: runs the loop, waits for the drain its last frees
    /// may have queued (mode `nodes`), then marks the thread done. Every
    /// thread waits after its last free, so once all are done no purge of
    /// theirs is still running, and a reader of the stats sees whole ones
    /// (`purges` and `tlb_flushes` are counted at two points of a purge).
    pub(super) fn thread(&self, ctx: &kthread::Ctx) {
        self.run(ctx);
        self.stress.stats.run_end_ns.fetch_max(now_ns(), Relaxed);
        self.target.settle();
        self.done.store(true, Relaxed);
    }

    fn publish(&self, l: &mut Local) {
        let s = &self.stress.stats;
        s.ops.fetch_add(l.ops, Relaxed);
        s.allocs.fetch_add(l.allocs, Relaxed);
        s.frees.fetch_add(l.frees, Relaxed);
        s.freed_pages.fetch_add(l.freed_pages, Relaxed);
        s.alloc_failures.fetch_add(l.failures, Relaxed);
        s.mismatches.fetch_add(l.mismatches, Relaxed);
        s.stale_tlb.fetch_add(l.stale, Relaxed);
        // Empties the histograms.
        l.alloc_ns.merge_into(LATENCY.hist(Event::Alloc));
        l.free_ns.merge_into(LATENCY.hist(Event::Free));
        (l.ops, l.allocs, l.frees, l.freed_pages) = (0, 0, 0, 0);
        (l.failures, l.mismatches, l.stale) = (0, 0, 0);
    }

    fn should_stop(&self, ctx: &kthread::Ctx, deadline: Option<i64>) -> bool {
        ctx.should_stop()
            || self.stress.stopping.load(Relaxed)
            || deadline.is_some_and(|d| now_ns() >= d)
    }

    /// Checks that `a` holds what `fill` wrote with `seed`: through the
    /// area's address (`mismatches`) and, with `check_tlb`, through the
    /// direct map of the pages its PTEs map (`stale_tlb`).
    fn check(&self, a: &Area, seed: u64, l: &mut Local) {
        let tlb = self.stress.knobs.check_tlb.load(Relaxed);
        let mut stale = 0;
        for i in 0..a.pages() {
            let want = tag(a, i, seed);
            let seen = a.read_words(i);
            l.mismatches += u64::from(seen != want);
            if tlb {
                let direct = self.target.page(a, i).map(|p| p.read_words());
                stale += u64::from(direct != Some(want) || direct != Some(seen));
            }
        }
        if stale > 0 {
            l.stale += stale;
            self.log_stale(stale, a.pages());
        }
    }

    fn log_stale(&self, stale: u64, pages: u64) {
        let n = self.stress.stats.stale_logged.fetch_add(1, Relaxed) + 1;
        if n <= 5 || n.is_power_of_two() {
            let k = &self.stress.knobs;
            pr_warn!(
                "stale TLB #{}: CPU {}, workload {}, target {}, flush {}: {} of {} pages\n",
                n,
                cpu::this(),
                WORKLOADS[self.workload].name,
                TARGETS[k.target.load(Relaxed) as usize],
                if k.flush.load(Relaxed) { "on" } else { "off" },
                stale,
                pages
            );
        }
    }

    /// Allocates, fills and checks one area, then frees it, or (`handoff`)
    /// queues it for the previous CPU's thread and reads and frees one the
    /// next CPU's thread queued.
    fn one(&self, r: Req, l: &mut Local) {
        // The floor flushes only this CPU: the thread must not migrate from
        // its alloc to its free (a bound kthread does when its CPU goes
        // offline).
        let _pin = self.target.is_floor().then(cpu::Pinned::new);
        let Some(mut a) = self.alloc(r, l) else {
            return;
        };
        fill(&mut a, self.seed);
        self.check(&a, self.seed, l);
        l.ops += 1;
        let Some(h) = &self.handoff else {
            return self.free(a, l);
        };
        if let Err(a) = h.put(self.index, a, self.seed) {
            self.free(a, l);
        }
        if let Some((b, seed)) = h.take((self.index + 1) % h.queues.len()) {
            self.check(&b, seed, l);
            self.free(b, l);
        }
    }

    fn alloc(&self, r: Req, l: &mut Local) -> Option<Area> {
        let t0 = now_ns();
        let a = self.target.alloc(r).ok();
        if a.is_some() {
            l.alloc_ns.record((now_ns() - t0) as u64);
            l.allocs += 1;
        } else {
            l.failures += 1;
        }
        a
    }

    fn free(&self, a: Area, l: &mut Local) {
        l.frees += 1;
        l.freed_pages += a.pages();
        let t0 = now_ns();
        self.target.free(a);
        l.free_ns.record((now_ns() - t0) as u64);
    }

    /// Allocates the busy set of the workload; on failure keeps what it got.
    fn setup_busy(&self, ctx: &kthread::Ctx, busy: Busy, l: &mut Local) -> KVVec<Area> {
        let (n, holes) = match busy {
            // The floor has one fixed range: nothing can stay busy in it.
            _ if self.target.is_floor() => return KVVec::new(),
            Busy::None => return KVVec::new(),
            Busy::List(n) => (n, false),
            Busy::Holes(n) => (n, true),
        };
        let mut kept = KVVec::new();
        if kept.reserve(n as usize, GFP_KERNEL).is_err() {
            return kept;
        }
        let one = Req { pages: 1, align: 1 };
        for _ in 0..n {
            if self.should_stop(ctx, None) {
                break;
            }
            if let Some(a) = self.alloc(one, l) {
                // Cannot fail: reserved above.
                let _ = kept.push(a, GFP_KERNEL);
            }
            if holes {
                // The hole: an area freed right after its neighbour is kept.
                if let Some(junk) = self.alloc(one, l) {
                    self.free(junk, l);
                }
            }
            cpu::cond_resched();
        }
        kept
    }

    fn run(&self, ctx: &kthread::Ctx) {
        let w = &WORKLOADS[self.workload];
        let Ok(mut l) = KBox::new(Local::default(), GFP_KERNEL) else {
            pr_err!("stress: no memory for a thread's counters\n");
            return;
        };
        let l = &mut *l;
        let busy = self.setup_busy(ctx, (w.busy)(self.busy_budget), l);
        let mut wctx = Ctx::new(self.seed, self.nr_pages, self.target.max_align());
        // The clock of the steady loop starts after the busy-set setup.
        let t0 = now_ns();
        let deadline = self.duration_ns.map(|d| t0 + d);
        let mut last_aliases = t0;
        while !self.should_stop(ctx, deadline) {
            for r in (w.step)(&mut wctx).into_iter().flatten() {
                self.one(r, l);
            }
            // Thread 0 plays a `set_memory_*()` caller: `vm_unmap_aliases()`
            // every `unmap_aliases_ms`, of the target's side.
            let every = self.stress.knobs.unmap_aliases_ms.load(Relaxed);
            if self.index == 0 && every > 0 && now_ns() - last_aliases >= every as i64 * 1_000_000 {
                self.target.unmap_aliases();
                self.stress.stats.unmap_aliases_calls.fetch_add(1, Relaxed);
                last_aliases = now_ns();
            }
            wctx.iter += 1;
            if wctx.iter % 64 == 0 {
                self.publish(l);
            }
            cpu::cond_resched();
        }
        self.stress
            .stats
            .run_loop_ns
            .fetch_add(now_ns() - t0, Relaxed);
        // What the previous CPU's thread did not take of ours.
        if let Some(h) = &self.handoff {
            while let Some((a, _)) = h.take(self.index) {
                self.free(a, l);
            }
        }
        for (i, a) in busy.into_iter().enumerate() {
            self.free(a, l);
            if i % 64 == 63 {
                // A preemption point (tens of thousands of frees).
                cpu::cond_resched();
            }
        }
        self.publish(l);
    }
}
