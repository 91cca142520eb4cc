// SPDX-License-Identifier: GPL-2.0

//! The arena: this module's vmap allocator on real kernel page tables.
//!
//! It puts together the range and PTEs of [`PageTable`], the area allocator
//! ([`FreeTree`], under `vmap_area_lock`), and the lazy-free state ([`Lazy`]),
//! and gives the lazy logic its environment ([`Env`]): the static purge lock,
//! the TLB flush of [`tlb`] and the race policy of the knobs.
//!
//! An allocation reserves the pages and a guard page, then maps a fresh page
//! at each with PAGE_KERNEL; any failure part way goes back through the lazy
//! free, as vmalloc's error path goes through `vfree()`. A free clears the
//! PTEs with no flush, frees the pages at once and hands the range to the
//! lazy logic, which keeps it out of the allocator until a purge has flushed
//! it on every CPU.
//!
//! The negative control (`flush off`, stress stopped to change it): every
//! purge skips its flush, so ranges go back to the allocator while CPUs may
//! still translate them to their old pages. Those pages are not freed but
//! quarantined ([`crate::sys::pgtable`]), so a write through a stale
//! translation lands in a page nobody else owns; the quarantine is drained,
//! after a full flush on every CPU, when `flush` goes back on, at arena
//! replacement and at unload, and when it holds more than an eighth of RAM.
//!
//! Mode `nodes` (see `lazy_core::lazy::nodes`) gets one lazy lock and one
//! pool lock per vmap node (one node per online CPU at creation), the drain
//! work (`drain_work`, queued by a free past the threshold on the arena's
//! own unbound workqueue, as the proposed 2026 fix does (in no release through
//! 7.3), or on `system_percpu_wq` with `bug
//! system-wq`, holding a reference to the arena until it has run) and the
//! purge helpers (work items on a second unbound queue, or on the nodes'
//! CPUs of `system_percpu_wq` with `bug system-wq`, [`crate::sys::workqueue`]).
//!
//! `bug lazy-pte` (2.6.28–2.6.36, [`crate::lazy_core::history`]): a free
//! leaves the area's PTEs and pages in place (`deferred`); the next flush
//! clears them first, as `__purge_vmap_area_lazy()` then did. The general
//! detector, on in every mode: after every unmap, its range must have no
//! present PTE (`live_ptes`). The arena
//! hands out references to itself for the drain only while it is active:
//! [`Arena::retire`] stops that and waits for a queued drain, and must be
//! called before the arena is let go (else it leaks: a reference cycle).

use crate::knobs::{Knobs, OnRace};
use crate::lazy_core::blocks::{vmap_bbmap_bits, BlockSlot, VmapBlocks};
use crate::lazy_core::freetree::{nodes_needed, FreeTree, Node};
use crate::lazy_core::hist::{Event, Latency};
use crate::lazy_core::history::Bug;
use crate::lazy_core::lazy::{
    slots_needed, AreaSlot, Env, Lazy, Mode, NodeLazy, NodePools, PoolDecay, Why, MAX_NODES,
};
use crate::oracle::{AliasOracle, Probed};
use crate::sys::pgtable::{drain_quarantine, Dispose, Mapped, PageTable, Stale, Unmapped};
use crate::sys::workqueue::OwnedQueue;
use crate::sys::{cpu, debug, sync, workqueue};
use crate::tlb;
use core::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU32, AtomicU64,
    Ordering::{AcqRel, Relaxed, Release},
};
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex, SpinLock};
use kernel::workqueue::{new_work, Work, WorkItem};
use kernel::{c_str, new_mutex, new_spinlock};

/// The kernel's `lazy_max_pages()` is `fls(num_online_cpus()) * 32 MiB` of
/// pages, sized for a 32 TiB vmalloc space; we cap it at a quarter of the
/// arena so that purges happen in a small one too.
pub(crate) fn default_lazy_max_pages(arena_pages: u64) -> u64 {
    let fls = u64::from(32 - cpu::online().leading_zeros());
    (fls * (32 << 20) / 4096).min(arena_pages / 4).max(1)
}

/// Counters the arena keeps besides the lazy ones.
#[derive(Default)]
pub(crate) struct ArenaStats {
    /// Pages whose `vmalloc_to_page()` was not the page we mapped.
    pub(crate) map_mismatches: AtomicU64,
    /// Flush rounds the purges issued (IPIs to every CPU, see `tlb`).
    pub(crate) flushes: AtomicU64,
    /// Of those, rounds done with `invlpg` per page / with a full flush.
    pub(crate) page_flushes: AtomicU64,
    pub(crate) full_flushes: AtomicU64,
    /// CPUs that ran a purge's flush, summed over the rounds.
    pub(crate) flush_cpus: AtomicU64,
    /// Pages covered by the rounds (the union ranges, holes included).
    pub(crate) flushed_span: AtomicU64,
    /// Purges whose flush was skipped (`flush off`, or the self-test's
    /// negative control).
    pub(crate) skipped_flushes: AtomicU64,
    /// Pages quarantined instead of freed while `flush` was off.
    pub(crate) quarantined: AtomicU64,
    /// Drain work items queued by frees past the threshold (mode `nodes`;
    /// a free while one is queued does not count).
    pub(crate) drains_queued: AtomicU64,
    /// The no-alias oracle ([`crate::oracle`]): probe rounds, reads made
    /// (summed over the CPUs), reads that succeeded through a stale alias,
    /// and the CPUs that made one (a mask, OR-ed).
    pub(crate) alias_rounds: AtomicU64,
    pub(crate) alias_probes: AtomicU64,
    pub(crate) stale_alias: AtomicU64,
    pub(crate) stale_alias_cpumask: AtomicU64,
    /// The same oracle on `unmap_aliases` (pages `vb_free` unmapped before
    /// a call, probed at its flush): reads, and reads that succeeded.
    pub(crate) aliases_probes: AtomicU64,
    pub(crate) aliases_stale: AtomicU64,
    /// Present PTEs found in a range right after its unmap returned (the
    /// detector of `bug lazy-pte`).
    pub(crate) live_ptes: AtomicU64,
    /// Drain work items run, their run time summed and the longest (ns).
    pub(crate) drains_run: AtomicU64,
    pub(crate) drain_ns_total: AtomicU64,
    pub(crate) drain_ns_max: AtomicU64,
    /// Of those, the ones that ran longer than 10 ms (the workqueue's
    /// `cpu_intensive_thresh_us`), and the ones that ran on a worker bound
    /// to one CPU (`system_percpu_wq`'s, not an unbound one).
    pub(crate) drains_over_10ms: AtomicU64,
    pub(crate) drains_bound: AtomicU64,
}

impl ArenaStats {
    /// Adds the cumulative counters to `into` (not `mapped`, a gauge).
    pub(crate) fn add_to(&self, into: &ArenaStats) {
        let add = |a: &AtomicU64, b: &AtomicU64| {
            b.fetch_add(a.load(Relaxed), Relaxed);
        };
        add(&self.map_mismatches, &into.map_mismatches);
        add(&self.flushes, &into.flushes);
        add(&self.page_flushes, &into.page_flushes);
        add(&self.full_flushes, &into.full_flushes);
        add(&self.flush_cpus, &into.flush_cpus);
        add(&self.flushed_span, &into.flushed_span);
        add(&self.skipped_flushes, &into.skipped_flushes);
        add(&self.quarantined, &into.quarantined);
        add(&self.drains_queued, &into.drains_queued);
        add(&self.alias_rounds, &into.alias_rounds);
        add(&self.alias_probes, &into.alias_probes);
        add(&self.stale_alias, &into.stale_alias);
        add(&self.aliases_probes, &into.aliases_probes);
        add(&self.aliases_stale, &into.aliases_stale);
        add(&self.live_ptes, &into.live_ptes);
        add(&self.drains_run, &into.drains_run);
        add(&self.drain_ns_total, &into.drain_ns_total);
        add(&self.drains_over_10ms, &into.drains_over_10ms);
        add(&self.drains_bound, &into.drains_bound);
        into.drain_ns_max
            .fetch_max(self.drain_ns_max.load(Relaxed), Relaxed);
        into.stale_alias_cpumask
            .fetch_or(self.stale_alias_cpumask.load(Relaxed), Relaxed);
    }
}

/// The latency histograms of the module (`/sys/kernel/lazy_vmap/latency`):
/// the purge's events recorded here by the lazy logic, `alloc` and `free`
/// merged in by the stress threads. Reset when stress starts.
pub(crate) static LATENCY: Latency = Latency::new();

/// See the module documentation.
#[pin_data(PinnedDrop)]
pub(crate) struct Arena {
    pub(crate) pt: PageTable,
    pub(crate) lazy: Lazy<KVVec<AreaSlot>>,
    #[pin]
    tree: SpinLock<FreeTree<KVVec<Node>>>,
    pub(crate) knobs: Arc<Knobs>,
    /// The vmap blocks of `vm_map_ram()` (see `src/blocks.rs`), each with
    /// its lock (`vb->lock`).
    pub(crate) vb: VmapBlocks<KVVec<BlockSlot>>,
    pub(crate) vb_locks: KVec<Pin<KBox<SpinLock<()>>>>,
    /// The blocks' per-CPU queue locks (`vbq->lock`), one per possible CPU,
    /// and who holds each (CPU + 1; 0: nobody), for `lockdep_assert_held`.
    pub(crate) vbq_locks: KVec<Pin<KBox<SpinLock<()>>>>,
    pub(crate) vbq_holder: KVec<AtomicU32>,
    pub(crate) stats: ArenaStats,
    /// Negative control of the stale-TLB self-test: skip the next flush.
    skip_flush: AtomicBool,
    /// The no-alias oracle's samples.
    pub(crate) oracle: AliasOracle,
    aliases_logged: AtomicU32,
    races_logged: AtomicU32,
    /// Mode `nodes`: each node's lazy bookkeeping and pools, each behind
    /// its own spinlock.
    nodes: KVec<Pin<KBox<SpinLock<NodeLazy>>>>,
    pools: KVec<Pin<KBox<SpinLock<NodePools>>>>,
    /// The drain work (6.12's `drain_vmap_work`), and the arena's own
    /// unbound queues for it and for the purge helpers.
    #[pin]
    drain_work: Work<Arena>,
    drain_wq: OwnedQueue,
    helpers_wq: OwnedQueue,
    /// `bug lazy-pte`: freed mappings whose PTEs the next flush clears.
    deferred: Pin<KBox<Mutex<KVec<Mapped>>>>,
    /// Pages `nonlazy` put into the lazy counter with no area behind them.
    pub(crate) nonlazy_pages: AtomicI64,
    /// A reference to this arena, lent to the drain work while active.
    #[pin]
    me: SpinLock<Option<Arc<Arena>>>,
    /// The drain work is queued and has not started: the work's pending
    /// bit, which `schedule_work()` tests and sets, kept here so that a
    /// free past the threshold while the drain waits for a worker costs a
    /// read, not the `me` lock and a reference (lock_stat, 8 vCPUs,
    /// fix_size: 26,967 contentions of that lock per 10^6 ops, half the
    /// tree lock's, before this).
    drain_pending: AtomicBool,
}

kernel::impl_has_work! {
    impl HasWork<Arena> for Arena { self.drain_work }
}

impl WorkItem for Arena {
    type Pointer = Arc<Arena>;

    /// `drain_vmap_area_work()`, timed.
    fn run(this: Arc<Arena>) {
        // As the workqueue clears the pending bit before it calls the
        // work: a free from here on queues the drain again.
        this.drain_pending.store(false, Release);
        let t0 = crate::sys::time::now_ns();
        if workqueue::on_bound_worker() {
            this.stats.drains_bound.fetch_add(1, Relaxed);
        }
        this.lazy.drain(&*this);
        let ns = crate::sys::time::now_ns().saturating_sub(t0);
        let st = &this.stats;
        st.drains_run.fetch_add(1, Relaxed);
        st.drain_ns_total.fetch_add(ns, Relaxed);
        st.drain_ns_max.fetch_max(ns, Relaxed);
        if ns > 10_000_000 {
            st.drains_over_10ms.fetch_add(1, Relaxed);
        }
    }
}

impl Env for Arena {
    type Pool = KVVec<Node>;
    type PurgeGuard<'a> = sync::PurgeGuard;

    fn purge_lock(&self) -> sync::PurgeGuard {
        sync::purge_lock()
    }

    fn purge_trylock(&self) -> Option<sync::PurgeGuard> {
        sync::purge_trylock()
    }

    fn with_tree<R>(&self, f: impl FnOnce(&mut FreeTree<KVVec<Node>>) -> R) -> R {
        let mut t = self.tree.lock();
        t.note_locked();
        f(&mut t)
    }

    fn flush(&self, start: u64, end: u64) {
        // bug lazy-pte: the PTEs of freed mappings go now, before the flush.
        self.drain_deferred();
        let off = !self.knobs.flush.load(Relaxed);
        if self.skip_flush.swap(false, Relaxed) || off {
            self.stats.skipped_flushes.fetch_add(1, Relaxed);
        } else {
            if crate::sys::tlb::flush_skip_cpu().is_none() {
                // A complete round: what vb_free offered in its range is
                // clean once it returns (the oracle's record).
                self.oracle.dirty.forget(start, end);
            }
            let round = tlb::flush_pages(start, end);
            let st = &self.stats;
            st.flushes.fetch_add(1, Relaxed);
            match round.kind {
                tlb::Kind::Pages => st.page_flushes.fetch_add(1, Relaxed),
                tlb::Kind::Full => st.full_flushes.fetch_add(1, Relaxed),
            };
            st.flush_cpus.fetch_add(u64::from(round.cpus), Relaxed);
            st.flushed_span.fetch_add(end - start, Relaxed);
        }
        // The round is done (or skipped), no range given back yet.
        self.check_aliases();
    }

    /// With `check_alias`, the oracle hears of every area a purge takes.
    fn wants_batches(&self) -> bool {
        self.knobs.check_alias.load(Relaxed)
    }

    fn purge_took(&self, start: u64, len: u64) {
        self.oracle.took(start, len);
    }

    fn purge_path(&self, why: Why) {
        self.oracle.why.store(why as u32, Relaxed);
    }

    fn resched(&self) {
        cpu::cond_resched();
    }

    fn hold_max_areas(&self) -> usize {
        self.knobs.purge_hold_areas.load(Relaxed) as usize
    }

    fn timing(&self) -> bool {
        true
    }

    fn now_ns(&self) -> u64 {
        crate::sys::time::now_ns()
    }

    fn record(&self, ev: Event, ns: u64) {
        LATENCY.record(ev, ns);
    }

    fn race_window(&self) {
        let us = self.knobs.race_delay_us.load(Relaxed);
        if us > 0 {
            cpu::udelay(us as u32);
        }
    }

    fn this_cpu(&self) -> usize {
        cpu::this() as usize
    }

    fn bug(&self) -> Bug {
        self.knobs.bug()
    }

    fn drain_stuck_rounds(&self) -> u64 {
        self.knobs.drain_stuck_rounds.load(Relaxed)
    }

    fn pool_decay(&self) -> PoolDecay {
        self.knobs.pool_decay()
    }

    fn nr_nodes(&self) -> usize {
        self.nodes.len()
    }

    fn with_node_lazy<R>(&self, node: usize, f: impl FnOnce(&mut NodeLazy) -> R) -> R {
        f(&mut self.nodes[node].lock())
    }

    fn with_node_pools<R>(&self, node: usize, f: impl FnOnce(&mut NodePools) -> R) -> R {
        f(&mut self.pools[node].lock())
    }

    fn queue_drain(&self) -> bool {
        // `schedule_work()` of a work already pending does nothing; a read
        // first keeps the line shared while it is (then the test-and-set).
        if self.drain_pending.load(Relaxed) || self.drain_pending.swap(true, AcqRel) {
            return true;
        }
        let Some(me) = self.me.lock().clone() else {
            self.drain_pending.store(false, Release);
            return false;
        };
        // Already queued: this reference comes back and is dropped (the
        // arena holds another, so not the last one).
        let queue = match self.knobs.bug() {
            Bug::SystemWq => crate::sys::workqueue::system_percpu(),
            _ => self.drain_wq.queue(),
        };
        if queue.enqueue(me).is_ok() {
            self.stats.drains_queued.fetch_add(1, Relaxed);
        }
        true
    }

    fn run_helpers(
        &self,
        helpers: &[u8],
        inline: &[u8],
        give_back: &(dyn Fn(usize) + Sync),
    ) -> u64 {
        // Node i's helper runs on the i-th online CPU (6.12: CPU i).
        let mut jobs = [(0u32, 0usize); MAX_NODES];
        for (j, &n) in jobs.iter_mut().zip(helpers) {
            *j = (cpu::nth_online(u32::from(n)), usize::from(n));
        }
        let on = match self.knobs.bug() {
            Bug::SystemWq => None,
            _ => Some(&self.helpers_wq),
        };
        workqueue::scoped_on_cpus(
            &jobs[..helpers.len()],
            give_back,
            || {
                for &n in inline {
                    give_back(usize::from(n));
                }
            },
            on,
        )
    }

    fn race(&self, nr: i64, lazy: i64) {
        match self.knobs.on_race() {
            OnRace::Count => {
                let n = self.races_logged.fetch_add(1, Relaxed) + 1;
                if n <= 5 || n.is_power_of_two() {
                    pr_warn!(
                        "race #{}: purge took {} lazy pages, counter says {}\n",
                        n,
                        nr,
                        lazy
                    );
                }
            }
            OnRace::Warn => debug::race_warn(nr, lazy),
            // On explicit request of `on_race=bug`.
            OnRace::Bug => debug::race_bug(nr, lazy),
        }
    }

    fn trace_free(&self, va_start: u64, nr_lazy: u64, nr_lazy_max: u64) {
        crate::sys::trace::free_vmap_area_noflush(va_start, nr_lazy, nr_lazy_max);
    }

    fn trace_purge(&self, start: u64, end: u64, npurged: u64) {
        crate::sys::trace::purge_vmap_area_lazy(start, end, npurged);
    }
}

impl Arena {
    /// An arena of `mb` MiB in `mode`.
    pub(crate) fn new(mb: u64, mode: Mode, knobs: Arc<Knobs>) -> Result<Arc<Self>> {
        let pages = mb * 256;
        let pt = PageTable::new(pages as usize, debug::arena_fault())?;
        let base = pt.base_pfn();
        let mut slots = KVVec::with_capacity(slots_needed(pages), GFP_KERNEL)?;
        for _ in 0..slots_needed(pages) {
            slots.push(AreaSlot::new(), GFP_KERNEL)?;
        }
        let nodes = KVVec::from_elem(Node::default(), nodes_needed(pages), GFP_KERNEL)?;
        let tree = FreeTree::new(nodes, base, base + pages).ok_or(EINVAL)?;
        let lazy = Lazy::new(slots, base, mode, default_lazy_max_pages(pages));
        let bits = vmap_bbmap_bits(pages, u64::from(cpu::nr_cpus_config()));
        let nb = VmapBlocks::<KVVec<BlockSlot>>::slots_needed(base, pages, bits);
        let mut blocks = KVVec::with_capacity(nb, GFP_KERNEL)?;
        let mut vb_locks = KVec::with_capacity(nb, GFP_KERNEL)?;
        for _ in 0..nb {
            blocks.push(BlockSlot::new(), GFP_KERNEL)?;
            vb_locks.push(
                KBox::pin_init(new_spinlock!((), "lazy_vmap_vb_lock"), GFP_KERNEL)?,
                GFP_KERNEL,
            )?;
        }
        let vb = VmapBlocks::new(blocks, base, bits);
        // One queue per possible CPU (6.12: per-CPU `vmap_block_queue`).
        let nq = cpu::nr_cpu_ids() as usize;
        let mut vbq_locks = KVec::with_capacity(nq, GFP_KERNEL)?;
        let mut vbq_holder = KVec::with_capacity(nq, GFP_KERNEL)?;
        for _ in 0..nq {
            vbq_locks.push(
                KBox::pin_init(new_spinlock!((), "lazy_vmap_vbq_lock"), GFP_KERNEL)?,
                GFP_KERNEL,
            )?;
            vbq_holder.push(AtomicU32::new(0), GFP_KERNEL)?;
        }
        let deferred = KBox::pin_init(new_mutex!(KVec::new(), "lazy_vmap_deferred"), GFP_KERNEL)?;
        let drain_wq = OwnedQueue::new_unbound(c_str!("lazy_vmap_drain"))?;
        let helpers_wq = OwnedQueue::new_unbound(c_str!("lazy_vmap_drain_helpers"))?;
        // 6.12: one node per possible CPU, capped; here per online CPU.
        let nr_nodes = (cpu::online() as usize).clamp(1, MAX_NODES);
        let mut nodes = KVec::with_capacity(nr_nodes, GFP_KERNEL)?;
        let mut pools = KVec::with_capacity(nr_nodes, GFP_KERNEL)?;
        for _ in 0..nr_nodes {
            nodes.push(
                KBox::pin_init(
                    new_spinlock!(NodeLazy::new(), "lazy_vmap_node_lazy"),
                    GFP_KERNEL,
                )?,
                GFP_KERNEL,
            )?;
            pools.push(
                KBox::pin_init(
                    new_spinlock!(NodePools::new(), "lazy_vmap_node_pool"),
                    GFP_KERNEL,
                )?,
                GFP_KERNEL,
            )?;
        }
        let arena = Arc::pin_init(
            try_pin_init!(Arena {
                pt,
                lazy,
                tree <- new_spinlock!(tree, "lazy_vmap_area_lock"),
                knobs,
                vb,
                vb_locks,
                vbq_locks,
                vbq_holder,
                stats: ArenaStats::default(),
                skip_flush: AtomicBool::new(false),
                oracle: AliasOracle::new(),
                aliases_logged: AtomicU32::new(0),
                races_logged: AtomicU32::new(0),
                nodes,
                pools,
                drain_work <- new_work!("lazy_vmap_drain"),
                drain_wq,
                helpers_wq,
                deferred,
                nonlazy_pages: AtomicI64::new(0),
                me <- new_spinlock!(None, "lazy_vmap_arena_me"),
                drain_pending: AtomicBool::new(false),
            }),
            GFP_KERNEL,
        )?;
        *arena.me.lock() = Some(arena.clone());
        Ok(arena)
    }

    /// Stops lending references to the drain work and waits for a queued
    /// one. Call before letting the arena go, with stress stopped (nothing
    /// frees any more): afterwards a free past the threshold purges inline.
    pub(crate) fn retire(&self) {
        let me = self.me.lock().take();
        drop(me);
        self.wait_drain();
    }

    /// Waits for a queued or running drain work (mode `nodes`) to finish.
    pub(crate) fn wait_drain(&self) {
        workqueue::flush(&self.drain_work);
    }

    /// Areas waiting in the node pools (mode `nodes`).
    pub(crate) fn pooled(&self) -> usize {
        self.lazy.pooled_areas()
    }

    /// Acquisitions of the tree lock (`free_area_lock`) since the arena
    /// was made (this read's own not counted).
    pub(crate) fn tree_locks(&self) -> u64 {
        self.tree.lock().locked()
    }

    /// Pages in the arena.
    pub(crate) fn pages(&self) -> u64 {
        self.pt.pages() as u64
    }

    /// Reserves `pages` pages (plus a guard page) aligned to `align` pages,
    /// unmapped; returns the first page number. Fires `alloc_vmap_area`
    /// once, with the outcome (the kernel's fires once more, `failed=1`,
    /// before the purge and retry an allocation that finds no space makes).
    pub(crate) fn reserve(&self, pages: u64, align: u64) -> Result<u64> {
        let start = self.lazy.alloc(self, pages + 1, align);
        let base = self.pt.base_pfn();
        crate::sys::trace::alloc_vmap_area(start, pages + 1, align, base, base + self.pages());
        start.ok_or(ENOMEM)
    }

    /// The no-alias oracle's probe of what the running purge took (nothing
    /// if `check_alias` was off when it took them), counted in the stats;
    /// a stale alias is logged, rate-limited.
    fn check_aliases(&self) {
        let why = Why::ALL[self.oracle.why.load(Relaxed) as usize % Why::ALL.len()];
        if why == Why::Aliases {
            // What vb_free unmapped before the call, before any give-back.
            if let Some(p) = self.oracle.probe_aliases(&self.pt) {
                self.count_probe(&p, "unmap_aliases");
            }
        }
        let Some(p) = self.oracle.probe(&self.pt) else {
            return;
        };
        self.count_probe(&p, why.name());
    }

    /// Counts a probe round of the oracle after the flush of `path`.
    pub(crate) fn count_probe(&self, p: &Probed, path: &str) {
        let st = &self.stats;
        if path == "unmap_aliases" {
            st.aliases_probes.fetch_add(p.probes, Relaxed);
            st.aliases_stale.fetch_add(p.stale, Relaxed);
            return;
        }
        st.alias_rounds.fetch_add(1, Relaxed);
        st.alias_probes.fetch_add(p.probes, Relaxed);
        if p.stale == 0 {
            return;
        }
        st.stale_alias.fetch_add(p.stale, Relaxed);
        st.stale_alias_cpumask.fetch_or(p.cpumask, Relaxed);
        if self.aliases_logged.fetch_add(1, Relaxed) < 10 {
            pr_warn!(
                "stale alias: {} reads on CPUs {:#x} after the {} flush (mode {}, pages {:#x}..={:#x} of the arena)\n",
                p.stale,
                p.cpumask,
                path,
                self.lazy.mode().name(),
                p.lo - self.pt.base_pfn(),
                p.hi - self.pt.base_pfn()
            );
        }
    }

    /// Gives a reservation back, lazily: it is reusable after a purge.
    pub(crate) fn release(&self, start: u64) {
        self.lazy.free(self, start);
    }

    /// Reserves `pages` pages (plus a guard page) as an [`Unmapped`]
    /// range: the floor's fixed region.
    pub(crate) fn reserve_region(&self, pages: u64) -> Result<Unmapped> {
        let start = self.reserve(pages, 1)?;
        // SAFETY: the lazy allocator just reserved the range for us alone,
        // and gives a range back only after the purge's flush covering it
        // has run on every CPU (`flush_and_release` flushes before the
        // give-back; `FlushOrder` in the host tests and loom checks it), or
        // never mapped it since `PageTable::new` flushed everything. With
        // `flush off` (the negative control) that flush is skipped on
        // purpose, and the pages are quarantined instead of freed.
        Ok(unsafe { Unmapped::new(&self.pt, start, pages) })
    }

    /// Maps a fresh page at each page of `r`; on failure nothing stays
    /// mapped and the range comes back stale. With `check_map`, checks that
    /// `vmalloc_to_page()` of every page returns the page just mapped (a
    /// page-table walk per page).
    pub(crate) fn map(&self, r: Unmapped) -> core::result::Result<Mapped, (Error, Stale)> {
        let (m, mismatches) = self.pt.map(r, self.knobs.check_map.load(Relaxed))?;
        if mismatches > 0 {
            self.stats.map_mismatches.fetch_add(mismatches, Relaxed);
        }
        Ok(m)
    }

    /// Clears the PTEs of `m` with no TLB flush and frees its pages
    /// (quarantines them while `flush` is off); the range comes back stale.
    pub(crate) fn unmap(&self, m: Mapped) -> Stale {
        let dispose =
            if self.knobs.flush.load(Relaxed) && crate::sys::tlb::flush_skip_cpu().is_none() {
                Dispose::Free
            } else {
                Dispose::Quarantine
            };
        let (stale, q) = self.pt.unmap(m, dispose);
        if q > 0 {
            self.stats.quarantined.fetch_add(q, Relaxed);
        }
        stale
    }

    /// Allocates and maps an area of `pages` pages (plus a guard page)
    /// aligned to `align` pages. A failure part way goes back through the
    /// lazy free, like vmalloc's error path.
    pub(crate) fn alloc(&self, pages: u64, align: u64) -> Result<Mapped> {
        let start = self.reserve(pages, align)?;
        // SAFETY: as in `reserve_region`: ours alone, and not translated by
        // any CPU since the purge that gave it back flushed it everywhere.
        let r = unsafe { Unmapped::new(&self.pt, start, pages) };
        self.map(r).map_err(|(e, stale)| {
            let _ = stale.into_lazy();
            self.release(start);
            e
        })
    }

    /// Frees the area `m`, lazily: its stale range goes to the lazy free,
    /// to be reused only after a purge has flushed it. With `bug lazy-pte`
    /// its PTEs stay until that purge.
    pub(crate) fn free(&self, m: Mapped) {
        let (start, pages) = (m.start(), m.pages());
        if let Some(stale) = self.unmap_or_defer(m) {
            let _ = stale.into_lazy();
        }
        self.check_unmapped(start, pages);
        self.release(start);
    }

    /// Clears the PTEs of `m` as [`Arena::unmap`] does, or, with `bug
    /// lazy-pte` (2.6.28–2.6.36, before 64141da58724), keeps the mapping,
    /// pages and PTEs, until the next flush (`None`). A mapping that cannot
    /// be kept (no memory for the list) is unmapped.
    pub(crate) fn unmap_or_defer(&self, m: Mapped) -> Option<Stale> {
        if self.knobs.bug() != Bug::LazyPte {
            return Some(self.unmap(m));
        }
        let mut d = self.deferred.lock();
        let more = d.len().max(16);
        if d.len() == d.capacity() && d.reserve(more, GFP_KERNEL).is_err() {
            drop(d);
            return Some(self.unmap(m));
        }
        // Cannot allocate: capacity reserved above.
        let _ = d.push(m, GFP_KERNEL);
        None
    }

    /// Clears the PTEs of every mapping `bug lazy-pte` kept, freeing their
    /// pages, with no flush (the caller flushes, or the ranges are dirty
    /// blocks' pages, which `unmap_aliases` flushes). Returns how many.
    pub(crate) fn drain_deferred(&self) -> usize {
        let taken = core::mem::take(&mut *self.deferred.lock());
        let n = taken.len();
        for m in taken {
            let _ = self.unmap(m).into_lazy();
        }
        n
    }

    /// The general detector of `bug lazy-pte`, after every unmap: no page
    /// of `[start, start + pages)` may still have a present PTE.
    pub(crate) fn check_unmapped(&self, start: u64, pages: u64) {
        let live = (start..start + pages)
            .filter(|&p| self.pt.present(p))
            .count() as u64;
        if live > 0 && self.stats.live_ptes.fetch_add(live, Relaxed) == 0 {
            pr_warn!(
                "live PTEs: {} of {} pages at {:#x} still mapped after their unmap returned\n",
                live,
                pages,
                start - self.pt.base_pfn()
            );
        }
    }

    /// What `set_iounmap_nonlazy()` did: the lazy counter set to
    /// `lazy_max_pages() + 1`, with no area behind the pages it adds
    /// (`on`), or those pages taken out again (`!on`). Returns the pages
    /// the counter now holds with no area behind them.
    pub(crate) fn set_nonlazy(&self, on: bool) -> i64 {
        if on {
            let added = self.lazy.set_nonlazy();
            self.nonlazy_pages.fetch_add(added, Relaxed) + added
        } else {
            let phantom = self.nonlazy_pages.swap(0, Relaxed);
            self.lazy.unset_nonlazy(phantom);
            0
        }
    }

    /// Pages currently mapped.
    pub(crate) fn mapped(&self) -> i64 {
        self.pt.mapped()
    }

    /// The page table, for the stale-TLB check of the stress threads.
    pub(crate) fn page_table(&self) -> &PageTable {
        &self.pt
    }

    /// Purges every lazy area now, waiting for a running purge. Mappings
    /// `bug lazy-pte` kept that no flush cleared are unmapped too, and
    /// flushed.
    pub(crate) fn purge(&self, why: Why) -> u64 {
        let n = self.lazy.purge(self, why);
        if self.drain_deferred() > 0 {
            tlb::flush_all();
        }
        n
    }

    /// Switches the lazy mode; `EBUSY` while an area is allocated (the core
    /// refuses then, see `Lazy::set_mode`), with nothing changed.
    pub(crate) fn set_mode(&self, mode: Mode) -> Result {
        self.lazy.set_mode(self, mode).map_err(|_| EBUSY)
    }

    /// The stale-TLB test: map an area, read it on every CPU (so every TLB
    /// caches the translation), free it, purge (one flush, or none when
    /// `skip_flush`), get the same address back mapped to a new page, read it
    /// on every CPU again. Returns (CPUs, CPUs that read the new page, CPUs
    /// that still read the old page through a stale TLB entry). Stress must
    /// be stopped so the allocator hands the same address back.
    pub(crate) fn tlb_selftest(&self, skip_flush: bool) -> Result<(u32, u32, u32)> {
        const OLD: (u64, u64) = (0x6f6c_6421_6f6c_6421, !0x6f6c_6421_6f6c_6421);
        const NEW: (u64, u64) = (0x6e65_7721_6e65_7721, !0x6e65_7721_6e65_7721);
        self.purge(Why::Demand);
        let mut a = self.alloc(1, 1)?;
        let start = a.start();
        a.write_words(0, OLD);
        // Keep the old page alive after the free, so a stale read shows OLD.
        let Some(old_page) = self.pt.page(&a, 0).map(|p| p.get()) else {
            self.free(a);
            return Err(EIO);
        };
        let warm = AtomicU32::new(0);
        cpu::on_each(&|| {
            if a.read_words(0) == OLD {
                warm.fetch_add(1, Relaxed);
            }
        });
        self.skip_flush.store(skip_flush, Relaxed);
        self.free(a);
        self.purge(Why::Demand);
        self.skip_flush.store(false, Relaxed);
        let result = match self.alloc(1, 1) {
            Ok(b) => {
                let r = match self.pt.page(&b, 0) {
                    // Same address, a new page: read it on every CPU.
                    Some(new_page) if b.start() == start && !new_page.is(&old_page) => {
                        // Write through the new page's direct map, not through
                        // the address: this CPU may itself hold a stale entry.
                        new_page.write_words(NEW);
                        let (cpus, fresh, stale) =
                            (AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0));
                        cpu::on_each(&|| {
                            cpus.fetch_add(1, Relaxed);
                            // A stale entry still points at the old page,
                            // which we hold a reference on.
                            match b.read_words(0) {
                                NEW => fresh.fetch_add(1, Relaxed),
                                OLD => stale.fetch_add(1, Relaxed),
                                _ => 0,
                            };
                        });
                        let cpus = cpus.into_inner();
                        if warm.into_inner() != cpus {
                            Err(EIO)
                        } else {
                            Ok((cpus, fresh.into_inner(), stale.into_inner()))
                        }
                    }
                    // Another address, or the old page again: the test
                    // cannot tell stale from fresh.
                    _ => Err(EAGAIN),
                };
                self.free(b);
                r
            }
            Err(e) => Err(e),
        };
        self.purge(Why::Demand);
        // Leave no stale entry behind, whatever the test did.
        tlb::flush_all();
        drain_quarantine();
        drop(old_page);
        result
    }
}

#[pinned_drop]
impl PinnedDrop for Arena {
    fn drop(self: Pin<&mut Self>) {
        self.retire_blocks();
        self.purge(Why::Teardown);
        // With `flush off` the purge skipped its flush: the drain flushes.
        drain_quarantine();
        let live = self.lazy.live_areas();
        if live != 0 {
            // Cannot happen: stress threads are stopped before an arena is
            // dropped. With pages still mapped, PageTable's drop leaks the
            // range rather than free pages a token may point to.
            pr_err!("arena dropped with {} live areas\n", live);
        }
    }
}
