// SPDX-License-Identifier: GPL-2.0

//! The stress kthreads and their control.
//!
//! `start` spawns `threads` kthreads, thread i bound to the i-th online CPU.
//! Each runs one row of the workload table (`lazy_core::workload`) against
//! the selected target ([`target`]): this module's arena, the kernel's
//! `vmalloc()`/`vfree()`, or the floor. The loop itself, with its stale-TLB
//! check, is in [`worker`]. A thread whose time is up marks itself done and
//! sleeps until it is stopped, so `kthread_stop()` never races with its exit.
//!
//! [`Stress`] owns the threads and the arena behind one mutex; knobs that
//! must not change under a running stress are set through it and refused
//! with `EBUSY` while any thread is still working.

mod target;
mod worker;

use crate::arena::{Arena, ArenaStats, LATENCY};
use crate::blocks::{kernel_aliases_selftest, AliasesResult};
use crate::knobs::{Knobs, DEFAULT_BUSY_AREAS, MAX_BUSY_AREAS, TARGET_FLOOR};
use crate::lazy_core::lazy::{Mode, Stats, Why};
use crate::lazy_core::workload::WORKLOADS;
use crate::sys::cpu;
use crate::sys::kthread::Thread;
use crate::sys::pgtable::drain_quarantine;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};
use target::Target;
use worker::{now_ns, Handoff, Worker};

/// Counters of the stress loops, cumulative since load.
#[derive(Default)]
pub(crate) struct StressStats {
    /// Alloc + fill + check + free of one area.
    pub(crate) ops: AtomicU64,
    /// Successful allocations and frees of the stress loops, both targets.
    pub(crate) allocs: AtomicU64,
    pub(crate) frees: AtomicU64,
    /// Pages freed by the stress loops (for IPIs per freed page).
    pub(crate) freed_pages: AtomicU64,
    /// Allocations that failed (-ENOMEM after the purge and retry).
    pub(crate) alloc_failures: AtomicU64,
    /// Pages whose contents, read through the area's address, were not
    /// what was written.
    pub(crate) mismatches: AtomicU64,
    /// Pages whose direct-map contents were not what was written through
    /// the area's address, or not what that address read: a translation
    /// that outlived its flush.
    pub(crate) stale_tlb: AtomicU64,
    /// Calls of `vm_unmap_aliases()` (this module's or the kernel's, as the
    /// target) by stress thread 0, every `unmap_aliases_ms`.
    pub(crate) unmap_aliases_calls: AtomicU64,
    /// Stale-TLB detections logged so far (the log is rate-limited).
    pub(crate) stale_logged: AtomicU64,
    /// `ops` when the last run started, and its start and end times.
    pub(crate) run_ops0: AtomicU64,
    pub(crate) run_start_ns: AtomicI64,
    /// Time the threads of the last run spent in their steady loops, summed.
    pub(crate) run_loop_ns: AtomicI64,
    pub(crate) run_end_ns: AtomicI64,
}

/// What the control lock protects.
struct Control {
    threads: KVec<Thread<Worker>>,
    arena: Option<Arc<Arena>>,
    /// Counters of arenas replaced since load (so stats stay cumulative).
    retired: Stats,
    retired_arena: ArenaStats,
}

impl Control {
    /// Stops every thread (waiting for each to exit) and drops its worker.
    fn reap(&mut self) {
        // KVec of 6.12 has no clear(): dropping the vector stops them all.
        self.threads = KVec::new();
    }
}

/// The stress machinery: knobs, counters, threads, arena.
#[pin_data(PinnedDrop)]
pub(crate) struct Stress {
    pub(crate) knobs: Arc<Knobs>,
    pub(crate) stats: StressStats,
    /// Set by [`Stress::stop`] before it waits for any thread, so that
    /// every loop ends before the first thread is joined: a thread that
    /// ends waits for the drain (mode `nodes`), and a drain that loops
    /// while the counter is high (`bug drain-loop`) would otherwise never
    /// end while the threads not yet asked kept freeing.
    pub(super) stopping: AtomicBool,
    #[pin]
    ctl: Mutex<Control>,
}

impl Stress {
    /// Creates the machinery and its arena (`arena_mb`, `mode` knobs).
    pub(crate) fn new(knobs: Arc<Knobs>) -> Result<Arc<Self>> {
        let arena = Arena::new(knobs.arena_mb.load(Relaxed), knobs.mode(), knobs.clone())?;
        // If the rest fails, the arena must still be retired (not leaked).
        let retire_on_error = arena.clone();
        let ctl = Control {
            threads: KVec::new(),
            arena: Some(arena),
            retired: Stats::default(),
            retired_arena: ArenaStats::default(),
        };
        Arc::pin_init(
            pin_init!(Stress {
                knobs,
                stats: StressStats::default(),
                stopping: AtomicBool::new(false),
                ctl <- new_mutex!(ctl, "lazy_vmap_control"),
            }),
            GFP_KERNEL,
        )
        .inspect_err(|_| retire_on_error.retire())
    }

    fn working(ctl: &Control) -> bool {
        ctl.threads.iter().any(|t| !t.data().done.load(Relaxed))
    }

    /// Whether any stress thread is still working.
    pub(crate) fn running(&self) -> bool {
        Self::working(&self.ctl.lock())
    }

    /// Starts the stress threads; `EBUSY` if they are running.
    pub(crate) fn start(self: &Arc<Self>) -> Result {
        let mut ctl = self.ctl.lock();
        if Self::working(&ctl) {
            return Err(EBUSY);
        }
        ctl.reap(); // threads whose time ran out
        self.stopping.store(false, Relaxed);
        let k = &self.knobs;
        let arena = ctl.arena.clone().ok_or(ENOMEM)?;
        let n = k.threads.load(Relaxed) as usize;
        ctl.threads.reserve(n, GFP_KERNEL)?;
        let duration = k.duration_ms.load(Relaxed) as i64;
        let start = now_ns();
        let s = &self.stats;
        s.run_ops0.store(s.ops.load(Relaxed), Relaxed);
        s.run_start_ns.store(start, Relaxed);
        s.run_loop_ns.store(0, Relaxed);
        s.run_end_ns.store(start, Relaxed);
        arena.lazy.reset_extremes();
        LATENCY.reset();
        // Areas of a thread are at most 100 pages (random_size,
        // long_busy_list) or nr_pages (fix_size), 10 for the aligned ones.
        let max_pages = k.nr_pages.load(Relaxed).max(100);
        let n64 = n.max(1) as u64;
        let workload = k.workload.load(Relaxed) as usize;
        // The floor has one fixed range per thread: nothing to hand over.
        let handoff = if WORKLOADS[workload].handoff && k.target.load(Relaxed) != TARGET_FLOOR {
            Some(Handoff::new(n)?)
        } else {
            None
        };
        let busy_budget = match k.busy_areas.load(Relaxed) {
            // By default the busy sets take at most half the arena.
            0 => DEFAULT_BUSY_AREAS.min(arena.pages() / (4 * n64)),
            // Each busy area holds a real page, on either target: all
            // threads together hold at most MAX_BUSY_AREAS.
            b => b.min(MAX_BUSY_AREAS / n64),
        };
        let spawned = (|| -> Result {
            for i in 0..n {
                let worker = Worker {
                    stress: self.clone(),
                    target: Target::new(k.target.load(Relaxed), &arena, max_pages)?,
                    workload,
                    nr_pages: k.nr_pages.load(Relaxed),
                    seed: (start as u64) ^ ((i as u64 + 1) << 32),
                    duration_ns: (duration > 0).then_some(duration * 1_000_000),
                    busy_budget,
                    index: i,
                    handoff: handoff.clone(),
                    done: AtomicBool::new(false),
                };
                // Thread i on the i-th online CPU (round robin): the online
                // mask may have holes (a CPU taken offline).
                let thread =
                    Thread::spawn(worker, Worker::thread, cpu::nth_online(i as u32), i as u32)?;
                // Cannot fail: reserved above.
                let _ = ctl.threads.push(thread, GFP_KERNEL);
            }
            Ok(())
        })();
        if spawned.is_err() {
            ctl.reap();
        }
        spawned
    }

    /// Stops the stress threads and waits for them to exit.
    pub(crate) fn stop(&self) {
        let mut ctl = self.ctl.lock();
        if Self::working(&ctl) {
            self.stats.run_end_ns.fetch_max(now_ns(), Relaxed);
        }
        self.stopping.store(true, Relaxed);
        ctl.reap();
    }

    /// Runs `f` with the control lock held and stress stopped (`EBUSY`
    /// otherwise), with the arena.
    fn stopped<R>(&self, f: impl FnOnce(&mut Control, &Arc<Arena>) -> Result<R>) -> Result<R> {
        let mut ctl = self.ctl.lock();
        if Self::working(&ctl) {
            return Err(EBUSY);
        }
        ctl.reap();
        let arena = ctl.arena.clone().ok_or(ENOMEM)?;
        f(&mut ctl, &arena)
    }

    /// Sets a knob that must not change under a running stress.
    pub(crate) fn set_stopped(&self, f: impl FnOnce(&Knobs)) -> Result {
        self.stopped(|_, _| {
            f(&self.knobs);
            Ok(())
        })
    }

    /// Replaces the arena with one of `mb` MiB; the old one stays if that fails.
    pub(crate) fn set_arena_mb(&self, mb: u64) -> Result {
        self.stopped(|ctl, old| {
            let new = Arena::new(mb, self.knobs.mode(), self.knobs.clone())?;
            old.retire();
            old.purge(Why::Teardown);
            drain_quarantine();
            old.lazy.stats.add_to(&ctl.retired);
            old.stats.add_to(&ctl.retired_arena);
            ctl.arena = Some(new);
            self.knobs.arena_mb.store(mb, Relaxed);
            Ok(())
        })
    }

    /// Switches the lazy mode, after purging what the old mode left.
    pub(crate) fn set_mode(&self, mode: Mode) -> Result {
        self.stopped(|_, arena| {
            arena.set_mode(mode)?;
            self.knobs.mode.store(mode as u8, Relaxed);
            Ok(())
        })
    }

    /// Turns the purges' TLB flush on or off (the negative control). Back
    /// on, the pages quarantined meanwhile are freed after a full flush.
    ///
    /// Going off, what is lazy is purged first, with its flush: those areas
    /// were freed while `flush` was on, so their pages went back to the page
    /// allocator, not to the quarantine. A purge without a flush would hand
    /// their ranges out again while a CPU may still translate them to the
    /// freed pages, and a write through that stale entry would land in
    /// someone else's memory (the debug kernel caught one: SLUB's "Padding
    /// overwritten" in a vmap_area slab). Only areas freed while `flush` is
    /// off, whose pages the quarantine holds, may go without a flush.
    pub(crate) fn set_flush(&self, on: bool) -> Result {
        self.stopped(|_, arena| {
            if !on && self.knobs.flush.load(Relaxed) {
                arena.purge(Why::ModeSwitch);
            }
            self.knobs.flush.store(on, Relaxed);
            if on {
                drain_quarantine();
            }
            Ok(())
        })
    }

    /// `echo 1 > purge`: purges every lazy area. With `flush off` it skips
    /// its flush like every purge, and leaves the quarantine alone: draining
    /// it means a full flush on every CPU, which would wipe the very
    /// translations the negative control is there to leave behind.
    pub(crate) fn purge_on_demand(&self) -> Result {
        let arena = self.arena().ok_or(ENOMEM)?;
        // With stress stopped, the vmap blocks with no page in use go too
        // (their areas are lazy then), so a quiesced arena has none left.
        if !self.running() {
            arena.retire_blocks();
        }
        arena.purge(Why::Demand);
        Ok(())
    }

    /// `echo 1 > unmap_aliases`: `vm_unmap_aliases()`; allowed while stress
    /// runs, as the kernel's callers do.
    pub(crate) fn unmap_aliases(&self) -> Result {
        self.arena().ok_or(ENOMEM)?.unmap_aliases();
        Ok(())
    }

    /// `echo 1 > nonlazy`: what `set_iounmap_nonlazy()` did (the counter
    /// set to `lazy_max_pages() + 1`); `echo 0` takes the pages it added
    /// out again. Allowed while stress runs, as /proc/vmcore's readers
    /// called it. Queues the drain as the next free would.
    pub(crate) fn set_nonlazy(&self, on: bool) -> Result {
        self.arena().ok_or(ENOMEM)?.set_nonlazy(on);
        Ok(())
    }

    /// Sets the purge threshold of the arena.
    pub(crate) fn set_lazy_max_pages(&self, pages: u64) -> Result {
        self.stopped(|_, arena| {
            if pages > arena.pages() {
                return Err(EINVAL);
            }
            arena.lazy.set_lazy_max_pages(pages);
            Ok(())
        })
    }

    /// The arena, for purges and stats; usable while stress runs.
    pub(crate) fn arena(&self) -> Option<Arc<Arena>> {
        self.ctl.lock().arena.clone()
    }

    /// Runs the stale-TLB self-test (stress must be stopped).
    pub(crate) fn tlb_selftest(&self, skip_flush: bool) -> Result<(u32, u32, u32)> {
        self.stopped(|_, arena| arena.tlb_selftest(skip_flush))
    }

    /// Runs an aliases self-test (stress must be stopped): this module's
    /// `unmap_aliases`, or with `kernel` the kernel's `vm_unmap_aliases()`;
    /// without `call`, none (the control).
    pub(crate) fn aliases_selftest(&self, kernel: bool, call: bool) -> Result<AliasesResult> {
        self.stopped(|_, arena| match kernel {
            false => arena.aliases_selftest(call),
            true => kernel_aliases_selftest(call),
        })
    }

    /// Calls `f` with the counters of every arena since load added up.
    pub(crate) fn with_totals<R>(
        &self,
        f: impl FnOnce(&Stats, &ArenaStats, Option<&Arena>) -> R,
    ) -> R {
        let ctl = self.ctl.lock();
        let (lazy, arena) = (Stats::default(), ArenaStats::default());
        ctl.retired.add_to(&lazy);
        ctl.retired_arena.add_to(&arena);
        if let Some(a) = &ctl.arena {
            a.lazy.stats.add_to(&lazy);
            a.stats.add_to(&arena);
        }
        f(&lazy, &arena, ctl.arena.as_deref())
    }
}

#[pinned_drop]
impl PinnedDrop for Stress {
    /// The threads are gone (each held a reference to us); the arena goes
    /// once its drain work has finished.
    fn drop(self: Pin<&mut Self>) {
        let arena = self.ctl.lock().arena.take();
        if let Some(a) = arena {
            a.retire();
        }
    }
}
