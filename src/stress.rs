// SPDX-License-Identifier: GPL-2.0

//! The stress kthreads and their control.
//!
//! `start` spawns `threads` kthreads, bound round-robin to the online CPUs.
//! Each runs one row of the workload table (`lazy_core::workload`) against
//! the selected target, this module's arena or the kernel's
//! `vmalloc()`/`vfree()`: allocate, fill every page, check it, free, with a
//! preemption point per iteration, until `kthread_should_stop()` or until
//! `duration_ms` has passed. A thread whose time is up marks itself done and
//! sleeps until it is stopped, so `kthread_stop()` never races with its exit.
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
//!
//! [`Stress`] owns the threads and the arena behind one mutex; knobs that
//! must not change under a running stress are set through it and refused
//! with `EBUSY` while any thread is still working.

use crate::arena::{drain_quarantine, Arena, ArenaStats};
use crate::knobs::{Knobs, DEFAULT_BUSY_AREAS, MAX_BUSY_AREAS, TARGETS, TARGET_FLOOR, TARGET_LAZY, TARGET_VMALLOC};
use crate::lazy_core::lazy::{Mode, Stats, Why};
use crate::lazy_core::workload::{Busy, Ctx, Req, WORKLOADS};
use crate::pgtable::PageTable;
use crate::shim::*;
use crate::tlb;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use kernel::bindings;
use kernel::ffi::{c_int, c_uint, c_void};
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex, SpinLock};
use kernel::{new_mutex, new_spinlock};

fn now_ns() -> i64 {
    // SAFETY: reads the monotonic clock.
    unsafe { bindings::ktime_get() }
}

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
    /// Stale-TLB detections logged so far (the log is rate-limited).
    stale_logged: AtomicU64,
    /// `ops` when the last run started, and its start and end times.
    pub(crate) run_ops0: AtomicU64,
    pub(crate) run_start_ns: AtomicI64,
    /// Time the threads of the last run spent in their steady loops, summed.
    pub(crate) run_loop_ns: AtomicI64,
    pub(crate) run_end_ns: AtomicI64,
}

/// An area as a stress thread holds it, on either target.
#[derive(Clone, Copy, Default)]
struct Area {
    addr: usize,
    pages: u64,
}

/// Where a thread allocates.
enum Target {
    /// This module's allocator.
    Lazy(Arc<Arena>),
    /// The kernel's vmalloc()/vfree().
    Vmalloc,
    /// The floor: pages mapped and unmapped at a fixed range of the arena
    /// reserved for this thread (`region`, `pages` long), flushed from this
    /// CPU's TLB only (the thread is bound to it); no alignment, no address
    /// management, no cross-CPU flush.
    Floor { arena: Arc<Arena>, region: u64, pages: u64 },
}

impl Target {
    /// The target selected by the `target` knob, for a thread whose areas
    /// are at most `max_pages` long.
    fn new(kind: u32, arena: &Arc<Arena>, max_pages: u64) -> Result<Self> {
        Ok(match kind {
            TARGET_LAZY => Target::Lazy(arena.clone()),
            TARGET_VMALLOC => Target::Vmalloc,
            _ => Target::Floor {
                arena: arena.clone(),
                region: arena.reserve(max_pages, 1)?,
                pages: max_pages,
            },
        })
    }

    fn alloc(&self, r: Req) -> Result<Area> {
        let addr = match self {
            Target::Lazy(a) => PageTable::addr(a.alloc(r.pages, r.align)?),
            Target::Floor { arena, region, pages } => {
                if r.pages > *pages {
                    return Err(ENOMEM);
                }
                arena.map(*region, r.pages)?;
                PageTable::addr(*region)
            }
            Target::Vmalloc => {
                let size = r.pages as usize * PAGE_SIZE;
                // SAFETY: plain vmalloc of `size` bytes.
                let p = unsafe { lv_vmalloc(size as _, (r.align as usize * PAGE_SIZE) as _) };
                if p.is_null() {
                    return Err(ENOMEM);
                }
                p as usize
            }
        };
        Ok(Area { addr, pages: r.pages })
    }

    fn free(&self, a: Area) {
        let start = (a.addr / PAGE_SIZE) as u64;
        match self {
            Target::Lazy(arena) => arena.free(start, a.pages),
            Target::Floor { arena, .. } => {
                arena.unmap(start, a.pages);
                tlb::flush_pages_local(start, start + a.pages);
            }
            // SAFETY: `a` came from `lv_vmalloc` and is freed once.
            Target::Vmalloc => unsafe { lv_vfree(a.addr as *const c_void) },
        }
    }

    /// The page that page `i` of `a` maps according to the page tables (not
    /// to any TLB): the page the arena put in the PTE, or vmalloc's.
    fn page_of(&self, a: &Area, i: u64) -> *mut bindings::page {
        let addr = a.addr + i as usize * PAGE_SIZE;
        match self {
            Target::Lazy(arena) | Target::Floor { arena, .. } => arena.page_at((addr / PAGE_SIZE) as u64),
            // SAFETY: `addr` is in a live vmalloc area of ours.
            Target::Vmalloc => unsafe { bindings::vmalloc_to_page(addr as *const c_void) },
        }
    }

    /// Largest alignment (pages) worth asking for.
    fn max_align(&self) -> u64 {
        match self {
            // 1/64 of the arena: 64 aligned slots, so that concurrent
            // threads rarely take them all (see the README).
            Target::Lazy(a) => 1 << (63 - (a.pages() / 64).max(1).leading_zeros()),
            Target::Vmalloc => 1024,
            Target::Floor { .. } => 1,
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Target::Floor { arena, region, .. } = self {
            arena.release(*region);
        }
    }
}

/// The word written at the start and the end of page `i` of `a`.
fn tag(a: &Area, i: u64, seed: u64) -> u64 {
    (a.addr as u64 + i).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed
}

fn fill(a: &Area, seed: u64) {
    for i in 0..a.pages {
        let p = a.addr + i as usize * PAGE_SIZE;
        // SAFETY: page `i` of a live area of ours, mapped and writable.
        unsafe {
            core::ptr::write_volatile(p as *mut u64, tag(a, i, seed));
            core::ptr::write_volatile((p + PAGE_SIZE - 8) as *mut u64, !tag(a, i, seed));
        }
    }
}

/// The two words `fill` writes in a page, read at kernel address `p`.
///
/// # Safety
///
/// `p` is the start of a mapped, readable page.
unsafe fn words(p: usize) -> (u64, u64) {
    // SAFETY: the caller's promise.
    unsafe { (core::ptr::read_volatile(p as *const u64), core::ptr::read_volatile((p + PAGE_SIZE - 8) as *const u64)) }
}

/// A per-pair queue of the `handoff` workload: areas one thread allocated
/// and filled (with the seed they were filled with), waiting for the thread
/// of the previous CPU to read and free them. A small stack: a full one
/// makes the producer free its area itself.
#[derive(Default)]
struct Ring {
    areas: [(Area, u64); 8],
    len: usize,
}

/// The queues of one `handoff` run: thread `i` puts into `queues[i]` and
/// takes from `queues[(i + 1) % n]`.
struct Handoff {
    queues: KVec<Pin<KBox<SpinLock<Ring>>>>,
}

impl Handoff {
    fn new(n: usize) -> Result<Arc<Self>> {
        let mut queues = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            queues.push(KBox::pin_init(new_spinlock!(Ring::default(), "lazy_vmap_handoff"), GFP_KERNEL)?, GFP_KERNEL)?;
        }
        Ok(Arc::new(Handoff { queues }, GFP_KERNEL)?)
    }

    /// Queues `a` (filled with `seed`) on queue `q`; gives it back if full.
    fn put(&self, q: usize, a: Area, seed: u64) -> core::result::Result<(), Area> {
        let mut r = self.queues[q].lock();
        if r.len == r.areas.len() {
            return Err(a);
        }
        let n = r.len;
        r.areas[n] = (a, seed);
        r.len += 1;
        Ok(())
    }

    /// Takes an area and its seed from queue `q`, if any.
    fn take(&self, q: usize) -> Option<(Area, u64)> {
        let mut r = self.queues[q].lock();
        r.len = r.len.checked_sub(1)?;
        Some(r.areas[r.len])
    }
}

/// One stress thread's parameters; owned by [`Control`], shared with the
/// thread until `kthread_stop_put()` returns.
struct Worker {
    stress: Arc<Stress>,
    target: Target,
    workload: usize,
    nr_pages: u64,
    seed: u64,
    /// `duration_ms` in ns, counted from the end of the busy-set setup.
    duration_ns: Option<i64>,
    /// This thread's number, and the queues of the `handoff` workload.
    index: usize,
    handoff: Option<Arc<Handoff>>,
    busy_budget: u64,
    done: AtomicBool,
}

/// Counters a thread adds up locally and publishes now and then, so the
/// hot loop does not bounce shared cache lines.
#[derive(Default)]
struct Local {
    ops: u64,
    allocs: u64,
    frees: u64,
    freed_pages: u64,
    failures: u64,
    mismatches: u64,
    stale: u64,
}

impl Worker {
    fn publish(&self, l: &mut Local) {
        let s = &self.stress.stats;
        s.ops.fetch_add(l.ops, Relaxed);
        s.allocs.fetch_add(l.allocs, Relaxed);
        s.frees.fetch_add(l.frees, Relaxed);
        s.freed_pages.fetch_add(l.freed_pages, Relaxed);
        s.alloc_failures.fetch_add(l.failures, Relaxed);
        s.mismatches.fetch_add(l.mismatches, Relaxed);
        s.stale_tlb.fetch_add(l.stale, Relaxed);
        *l = Local::default();
    }

    fn should_stop(&self, deadline: Option<i64>) -> bool {
        // SAFETY: called from the kthread itself.
        let stop = unsafe { bindings::kthread_should_stop() };
        stop || deadline.is_some_and(|d| now_ns() >= d)
    }

    /// Checks that `a` holds what `fill` wrote with `seed`: through the
    /// area's address (`mismatches`) and, with `check_tlb`, through the
    /// direct map of the pages its PTEs map (`stale_tlb`).
    fn check(&self, a: &Area, seed: u64, l: &mut Local) {
        let tlb = self.stress.knobs.check_tlb.load(Relaxed);
        let mut stale = 0;
        for i in 0..a.pages {
            let want = (tag(a, i, seed), !tag(a, i, seed));
            // SAFETY: page `i` of a live area of ours, mapped.
            let seen = unsafe { words(a.addr + i as usize * PAGE_SIZE) };
            l.mismatches += u64::from(seen != want);
            if tlb {
                let page = self.target.page_of(a, i);
                // SAFETY: `page` is mapped in the area, so it is a live page
                // of ours; its direct-map address is always mapped.
                let direct = (!page.is_null()).then(|| unsafe { words(lv_page_address(page) as usize) });
                stale += u64::from(direct != Some(want) || direct != Some(seen));
            }
        }
        if stale > 0 {
            l.stale += stale;
            self.log_stale(stale, a.pages);
        }
    }

    fn log_stale(&self, stale: u64, pages: u64) {
        let n = self.stress.stats.stale_logged.fetch_add(1, Relaxed) + 1;
        if n <= 5 || n.is_power_of_two() {
            let k = &self.stress.knobs;
            // SAFETY: reads this CPU's number (the thread is bound to it).
            let cpu = unsafe { lv_this_cpu() };
            pr_warn!(
                "stale TLB #{}: CPU {}, workload {}, target {}, flush {}: {} of {} pages\n",
                n,
                cpu,
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
        let Some(a) = self.alloc(r, l) else { return };
        fill(&a, self.seed);
        self.check(&a, self.seed, l);
        l.ops += 1;
        let Some(h) = &self.handoff else { return self.free(a, l) };
        if let Err(a) = h.put(self.index, a, self.seed) {
            self.free(a, l);
        }
        if let Some((b, seed)) = h.take((self.index + 1) % h.queues.len()) {
            self.check(&b, seed, l);
            self.free(b, l);
        }
    }

    fn alloc(&self, r: Req, l: &mut Local) -> Option<Area> {
        let a = self.target.alloc(r).ok();
        l.allocs += u64::from(a.is_some());
        l.failures += u64::from(a.is_none());
        a
    }

    fn free(&self, a: Area, l: &mut Local) {
        self.target.free(a);
        l.frees += 1;
        l.freed_pages += a.pages;
    }

    /// Allocates the busy set of the workload; on failure keeps what it got.
    fn setup_busy(&self, busy: Busy, l: &mut Local) -> KVVec<Area> {
        let (n, holes) = match (busy, &self.target) {
            // The floor has one fixed range: nothing can stay busy in it.
            (_, Target::Floor { .. }) | (Busy::None, _) => return KVVec::new(),
            (Busy::List(n), _) => (n, false),
            (Busy::Holes(n), _) => (n, true),
        };
        let mut kept = KVVec::new();
        if kept.reserve(n as usize, GFP_KERNEL).is_err() {
            return kept;
        }
        let one = Req { pages: 1, align: 1 };
        for _ in 0..n {
            if self.should_stop(None) {
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
            // SAFETY: a preemption point.
            unsafe { lv_cond_resched() };
        }
        kept
    }

    fn run(&self) {
        let w = &WORKLOADS[self.workload];
        let mut l = Local::default();
        let busy = self.setup_busy((w.busy)(self.busy_budget), &mut l);
        let mut ctx = Ctx::new(self.seed, self.nr_pages, self.target.max_align());
        // The clock of the steady loop starts after the busy-set setup.
        let t0 = now_ns();
        let deadline = self.duration_ns.map(|d| t0 + d);
        while !self.should_stop(deadline) {
            for r in (w.step)(&mut ctx).into_iter().flatten() {
                self.one(r, &mut l);
            }
            ctx.iter += 1;
            if ctx.iter % 64 == 0 {
                self.publish(&mut l);
            }
            // SAFETY: a preemption point.
            unsafe { lv_cond_resched() };
        }
        self.stress.stats.run_loop_ns.fetch_add(now_ns() - t0, Relaxed);
        // What the previous CPU's thread did not take of ours.
        if let Some(h) = &self.handoff {
            while let Some((a, _)) = h.take(self.index) {
                self.free(a, &mut l);
            }
        }
        for (i, a) in busy.iter().enumerate() {
            self.free(*a, &mut l);
            if i % 64 == 63 {
                // SAFETY: a preemption point (tens of thousands of frees).
                unsafe { lv_cond_resched() };
            }
        }
        self.publish(&mut l);
    }
}

/// The kthread body.
///
/// # Safety
///
/// `data` points to a `Worker` that outlives the thread (see [`Thread`]).
unsafe extern "C" fn thread_fn(data: *mut c_void) -> c_int {
    // SAFETY: `data` is the `Worker` that `Control` keeps alive until
    // `kthread_stop_put()` on this thread has returned.
    let w = unsafe { &*(data as *const Worker) };
    w.run();
    w.stress.stats.run_end_ns.fetch_max(now_ns(), Relaxed);
    w.done.store(true, Relaxed);
    // SAFETY: we are a kthread; sleeps until kthread_stop().
    unsafe { lv_wait_for_stop() };
    0
}

/// A started kthread and the worker it runs.
struct Thread {
    task: NonNull<bindings::task_struct>,
    worker: KBox<Worker>,
}

// SAFETY: the task pointer is a counted reference, usable from any thread.
unsafe impl Send for Thread {}

impl Drop for Thread {
    fn drop(&mut self) {
        // SAFETY: we hold a reference from `lv_kthread_start`; this waits
        // for the thread to exit and drops the reference, after which the
        // thread no longer uses `worker`.
        unsafe { bindings::kthread_stop_put(self.task.as_ptr()) };
    }
}

/// What the control lock protects.
struct Control {
    threads: KVec<Thread>,
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
#[pin_data]
pub(crate) struct Stress {
    pub(crate) knobs: Arc<Knobs>,
    pub(crate) stats: StressStats,
    #[pin]
    ctl: Mutex<Control>,
}

impl Stress {
    /// Creates the machinery and its arena (`arena_mb`, `mode` knobs).
    pub(crate) fn new(knobs: Arc<Knobs>) -> Result<Arc<Self>> {
        let arena = Arena::new(knobs.arena_mb.load(Relaxed), knobs.mode(), knobs.clone())?;
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
                ctl <- new_mutex!(ctl, "lazy_vmap_control"),
            }),
            GFP_KERNEL,
        )
    }

    fn working(ctl: &Control) -> bool {
        ctl.threads.iter().any(|t| !t.worker.done.load(Relaxed))
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
                let worker = KBox::new(
                    Worker {
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
                    },
                    GFP_KERNEL,
                )?;
                let data = &*worker as *const Worker as *mut c_void;
                // SAFETY: `data` stays valid until the thread is stopped (the
                // `Thread` owns both); the thread function matches the ABI.
                // Thread i on the i-th online CPU (round robin): the online
                // mask may have holes (a CPU taken offline).
                // SAFETY: reads the online mask.
                let cpu = unsafe { lv_nth_online_cpu(i as c_uint) };
                // SAFETY: as above.
                let task = unsafe { lv_kthread_start(thread_fn, data, cpu, i as c_int) };
                // Error pointers are the top 4095 addresses.
                let task = NonNull::new(task).filter(|t| (t.as_ptr() as usize) < usize::MAX - 4095);
                let task = task.ok_or(ENOMEM)?;
                // Cannot fail: reserved above.
                let _ = ctl.threads.push(Thread { task, worker }, GFP_KERNEL);
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
            arena.set_mode(mode);
            self.knobs.mode.store(mode as u8, Relaxed);
            Ok(())
        })
    }

    /// Turns the purges' TLB flush on or off (the negative control). Back
    /// on, the pages quarantined meanwhile are freed after a full flush.
    pub(crate) fn set_flush(&self, on: bool) -> Result {
        self.stopped(|_, _| {
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
        self.arena().ok_or(ENOMEM)?.purge(Why::Demand);
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

    /// Calls `f` with the counters of every arena since load added up.
    pub(crate) fn with_totals<R>(&self, f: impl FnOnce(&Stats, &ArenaStats, Option<&Arena>) -> R) -> R {
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
