//! Tests of `src/core/lazy.rs` (single-threaded and `std` multi-threaded), `parse.rs` and
//! `workload.rs`. The `loom` model of the race is in `tests/loom.rs`.
#![cfg(not(loom))]

mod common;
use common::{reps, FlushOrder, Rng};
use lazy_vmap_core::freetree::{nodes_needed, FreeTree, Node};
use lazy_vmap_core::hist::{Event, Latency};
use lazy_vmap_core::history::Bug;
use lazy_vmap_core::lazy::{
    addr_to_node_id, slots_needed, AreaSlot, AreasBusy, Env, Lazy, Mode, NodeLazy, NodePools,
    PoolDecay, Stats, Why, DRAIN_STUCK_ROUNDS, HOLD_MAX_AREAS,
};
use lazy_vmap_core::parse::{parse_name, parse_u64, Invalid};
use lazy_vmap_core::workload::{names, Busy, Ctx, Req, WORKLOADS};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard};

/// Vmap nodes of the std environment.
const NODES: usize = 4;

thread_local! {
    /// The "CPU" of a test thread (`Env::this_cpu`); `None`: the single-threaded tests, whose
    /// CPU moves every few allocations so that every node gets areas.
    static CPU: Cell<Option<usize>> = const { Cell::new(None) };
}

// --- A std environment ------------------------------------------------------------------------

/// Locks, tree and flush recorder made of `std` primitives.
struct StdEnv {
    purge: Mutex<()>,
    tree: Mutex<FreeTree<Vec<Node>>>,
    /// Every flush, in call order, when `record` is set.
    flushes: Mutex<Vec<(u64, u64)>>,
    record: bool,
    nr_flushes: AtomicU64,
    /// Busy-wait iterations in the race window.
    spins: AtomicU32,
    /// Whether the race window also yields the CPU.
    yields: AtomicBool,
    /// Calls of `Env::race`.
    races: AtomicU64,
    /// Flush-before-give-back checker (off under Miri: it walks the tree twice per operation).
    order: Option<FlushOrder>,
    /// What `Env::hold_max_areas` returns.
    hold_max: AtomicUsize,
    /// Calls of `Env::resched`.
    rescheds: AtomicU64,
    /// Set while a `with_tree` closure runs (single-threaded tests only look at it).
    in_tree: AtomicBool,
    /// When set, `trace` logs flushes, tree holds that gave pages back (with the pages),
    /// rescheds and recorded events, in order.
    tracing: AtomicBool,
    trace: Mutex<Vec<Tr>>,
    /// What `Env::timing` returns.
    timing: AtomicBool,
    /// A fake clock: each `now_ns` reads it and moves it 10 ns on.
    clock: AtomicU64,
    clock_reads: AtomicU64,
    /// What `Env::record` received.
    latency: Latency,
    /// The arena's slots (shared with `Lazy`), to walk the pools for the flush-order check.
    slots: Arc<[AreaSlot]>,
    /// Mode `nodes`: each node's lazy bookkeeping and pools, behind their own locks.
    nodes: Vec<Mutex<NodeLazy>>,
    pools: Vec<Mutex<NodePools>>,
    /// Most areas one hold of a pool lock took out of the pools.
    pool_hold_taken_max: AtomicU64,
    /// Calls of `this_cpu` from threads with no CPU (the single-threaded tests).
    cpu_calls: AtomicUsize,
    /// `queue_drain` queues (sets `drain_pending`) instead of letting the free purge inline.
    workqueue: AtomicBool,
    drain_pending: AtomicBool,
    drains_queued: AtomicU64,
    /// `run_helpers` runs helpers on threads of their own.
    helper_threads: AtomicBool,
    /// Helpers run on another thread than the purger's.
    helpers_elsewhere: AtomicU64,
    /// `Env::bug` (an index of `Bug::ALL`) and `Env::drain_stuck_rounds`.
    bug: AtomicUsize,
    stuck_rounds: AtomicU64,
    /// `Env::pool_decay` (an index of `PoolDecay::ALL`).
    pool_decay: AtomicUsize,
}

/// One step of a purge as the environment saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tr {
    Flush,
    /// A tree hold that freed this many pages.
    Hold(u64),
    Resched,
    Record(Event),
}

impl StdEnv {
    fn trace(&self, t: Tr) {
        if self.tracing.load(Relaxed) {
            self.trace.lock().unwrap().push(t);
        }
    }
}

impl Env for StdEnv {
    type Pool = Vec<Node>;
    type PurgeGuard<'a>
        = MutexGuard<'a, ()>
    where
        Self: 'a;

    fn purge_lock(&self) -> MutexGuard<'_, ()> {
        self.purge.lock().unwrap()
    }

    fn purge_trylock(&self) -> Option<MutexGuard<'_, ()>> {
        self.purge.try_lock().ok()
    }

    fn with_tree<R>(&self, f: impl FnOnce(&mut FreeTree<Vec<Node>>) -> R) -> R {
        let mut tree = self.tree.lock().unwrap();
        let before = tree.free_pages();
        self.in_tree.store(true, Relaxed);
        let r = match &self.order {
            Some(o) => o.around(&mut tree, f),
            None => f(&mut tree),
        };
        self.in_tree.store(false, Relaxed);
        let after = tree.free_pages();
        if after > before {
            self.trace(Tr::Hold(after - before));
        }
        r
    }

    fn flush(&self, start: u64, end: u64) {
        assert!(start < end, "empty flush [{start:#x}, {end:#x})");
        self.nr_flushes.fetch_add(1, Relaxed);
        if self.record {
            self.flushes.lock().unwrap().push((start, end));
        }
        if let Some(o) = &self.order {
            // A flush takes time: frees may unmap pages while it runs (not covered).
            let c = o.flush_begin(start, end);
            o.flush_end(c);
        }
        self.trace(Tr::Flush);
    }

    fn race_window(&self) {
        for _ in 0..self.spins.load(Relaxed) {
            std::hint::spin_loop();
        }
        if self.yields.load(Relaxed) {
            std::thread::yield_now();
        }
    }

    fn race(&self, nr: i64, lazy: i64) {
        assert!(nr > lazy);
        self.races.fetch_add(1, Relaxed);
    }

    fn wants_batches(&self) -> bool {
        self.order.is_some()
    }

    fn purge_took(&self, start: u64, len: u64) {
        if let Some(o) = &self.order {
            o.took(start, len);
        }
    }

    fn resched(&self) {
        self.rescheds.fetch_add(1, Relaxed);
        self.trace(Tr::Resched);
    }

    fn hold_max_areas(&self) -> usize {
        self.hold_max.load(Relaxed)
    }

    fn timing(&self) -> bool {
        self.timing.load(Relaxed)
    }

    fn now_ns(&self) -> u64 {
        assert!(self.timing.load(Relaxed), "the clock read with timing off");
        self.clock_reads.fetch_add(1, Relaxed);
        self.clock.fetch_add(10, Relaxed) + 10
    }

    fn record(&self, ev: Event, ns: u64) {
        assert!(
            self.timing.load(Relaxed),
            "an event recorded with timing off"
        );
        assert!(ns > 0, "{ev:?}: no clock read inside the timed section");
        // Only the give-back hold is timed under the tree lock. (`in_tree` is meaningful in the
        // single-threaded tests, which trace.)
        if self.tracing.load(Relaxed) {
            let held = self.in_tree.load(Relaxed);
            assert_eq!(
                held,
                ev == Event::PurgeHold,
                "{ev:?} recorded with the tree lock held: {held}"
            );
        }
        self.latency.record(ev, ns);
        self.trace(Tr::Record(ev));
    }

    fn this_cpu(&self) -> usize {
        CPU.with(|c| c.get())
            .unwrap_or_else(|| self.cpu_calls.fetch_add(1, Relaxed) / 3)
    }

    fn bug(&self) -> Bug {
        Bug::from_index(self.bug.load(Relaxed))
    }

    fn drain_stuck_rounds(&self) -> u64 {
        self.stuck_rounds.load(Relaxed)
    }

    fn pool_decay(&self) -> PoolDecay {
        PoolDecay::from_index(self.pool_decay.load(Relaxed))
    }

    fn nr_nodes(&self) -> usize {
        self.nodes.len()
    }

    fn with_node_lazy<R>(&self, node: usize, f: impl FnOnce(&mut NodeLazy) -> R) -> R {
        f(&mut self.nodes[node].lock().unwrap())
    }

    fn with_node_pools<R>(&self, node: usize, f: impl FnOnce(&mut NodePools) -> R) -> R {
        let mut pools = self.pools[node].lock().unwrap();
        let before = pools.areas();
        let r = match &self.order {
            Some(o) => o.around_pools(&self.slots, &mut pools, f),
            None => f(&mut pools),
        };
        let after = pools.areas();
        if after < before {
            self.pool_hold_taken_max.fetch_max(before - after, Relaxed);
        }
        r
    }

    fn queue_drain(&self) -> bool {
        if !self.workqueue.load(Relaxed) {
            return false;
        }
        self.drains_queued.fetch_add(1, Relaxed);
        self.drain_pending.store(true, Release);
        true
    }

    fn run_helpers(
        &self,
        helpers: &[u8],
        inline: &[u8],
        give_back: &(dyn Fn(usize) + Sync),
    ) -> u64 {
        if !self.helper_threads.load(Relaxed) {
            for &n in inline.iter().chain(helpers) {
                give_back(usize::from(n));
            }
            return 0;
        }
        let me = std::thread::current().id();
        std::thread::scope(|sc| {
            for &n in helpers {
                sc.spawn(move || {
                    if std::thread::current().id() != me {
                        self.helpers_elsewhere.fetch_add(1, Relaxed);
                    }
                    give_back(usize::from(n))
                });
            }
            for &n in inline {
                give_back(usize::from(n));
            }
        });
        helpers.len() as u64
    }
}

/// One arena: `[base, base + pages)`.
struct Arena {
    env: StdEnv,
    lazy: Lazy<Arc<[AreaSlot]>>,
    base: u64,
    pages: u64,
    /// Length of each live area, by start (for the flush-order check).
    lens: Mutex<std::collections::HashMap<u64, u64>>,
    /// Used by one thread only (the arenas that record their flushes; the multi-threaded
    /// stress does not).
    single: bool,
}

impl Arena {
    fn new(base: u64, pages: u64, mode: Mode, lazy_max_pages: u64) -> Self {
        Self::with_record(base, pages, mode, lazy_max_pages, true)
    }

    fn with_record(base: u64, pages: u64, mode: Mode, lazy_max: u64, record: bool) -> Self {
        let pool = vec![Node::default(); nodes_needed(pages)];
        let slots: Arc<[AreaSlot]> = (0..slots_needed(pages)).map(|_| AreaSlot::new()).collect();
        let env = StdEnv {
            purge: Mutex::new(()),
            tree: Mutex::new(FreeTree::new(pool, base, base + pages).unwrap()),
            flushes: Mutex::new(Vec::new()),
            record,
            nr_flushes: AtomicU64::new(0),
            spins: AtomicU32::new(0),
            yields: AtomicBool::new(false),
            races: AtomicU64::new(0),
            order: (!cfg!(miri)).then(FlushOrder::default),
            hold_max: AtomicUsize::new(HOLD_MAX_AREAS),
            rescheds: AtomicU64::new(0),
            in_tree: AtomicBool::new(false),
            tracing: AtomicBool::new(false),
            trace: Mutex::new(Vec::new()),
            timing: AtomicBool::new(false),
            clock: AtomicU64::new(1_000_000),
            clock_reads: AtomicU64::new(0),
            latency: Latency::new(),
            slots: slots.clone(),
            nodes: (0..NODES).map(|_| Mutex::new(NodeLazy::new())).collect(),
            pools: (0..NODES).map(|_| Mutex::new(NodePools::new())).collect(),
            pool_hold_taken_max: AtomicU64::new(0),
            cpu_calls: AtomicUsize::new(0),
            workqueue: AtomicBool::new(false),
            drain_pending: AtomicBool::new(false),
            drains_queued: AtomicU64::new(0),
            helper_threads: AtomicBool::new(false),
            helpers_elsewhere: AtomicU64::new(0),
            bug: AtomicUsize::new(Bug::None as usize),
            stuck_rounds: AtomicU64::new(DRAIN_STUCK_ROUNDS),
            pool_decay: AtomicUsize::new(0),
        };
        Arena {
            env,
            lazy: Lazy::new(slots, base, mode, lazy_max),
            base,
            pages,
            lens: Mutex::default(),
            single: record,
        }
    }

    fn alloc(&self, len: u64, align: u64) -> Option<u64> {
        let s = self.lazy.alloc(&self.env, len, align)?;
        self.lens.lock().unwrap().insert(s, len);
        Some(s)
    }

    /// Lazily frees the area at `start`; its pages are "unmapped" first, as the module clears
    /// the PTEs before the lazy free.
    fn free(&self, start: u64) {
        if let Some(o) = &self.env.order {
            o.unmapped(start, self.len_of(start));
        }
        self.lazy.free(&self.env, start)
    }

    /// The length of the live area at `start`, as allocated.
    fn len_of(&self, start: u64) -> u64 {
        self.lens
            .lock()
            .unwrap()
            .remove(&start)
            .expect("free of an area not allocated")
    }

    /// A purge: synchronous (on demand) or not (as from a free past the threshold).
    fn purge(&self, sync: bool) -> u64 {
        self.lazy
            .purge(&self.env, if sync { Why::Demand } else { Why::Threshold })
    }

    /// Purges that took at least one area, all modes together.
    fn purges(&self) -> u64 {
        self.lazy.stats.purges.iter().map(|p| p.load(Relaxed)).sum()
    }

    fn flushes(&self) -> Vec<(u64, u64)> {
        self.env.flushes.lock().unwrap().clone()
    }

    fn free_ranges(&self) -> Vec<(u64, u64)> {
        let mut v = Vec::new();
        self.env
            .with_tree(|t| t.for_each_range(|s, e| v.push((s, e))));
        v
    }

    /// Checks the state of a quiescent arena with nothing allocated and nothing lazy.
    #[track_caller]
    fn assert_empty(&self) {
        assert_eq!(self.lazy.lazy_pages(), 0);
        assert_eq!(self.lazy.live_areas(), 0);
        assert_eq!(self.lazy.pooled_areas(), 0, "areas left in the node pools");
        for n in 0..NODES {
            assert_eq!(self.env.with_node_lazy(n, |l| l.lazy_areas()), 0);
            assert_eq!(self.env.with_node_pools(n, |p| p.areas()), 0);
        }
        self.env.with_tree(|t| {
            t.check().unwrap();
            assert_eq!(t.nr_ranges(), 1);
            assert_eq!(t.free_pages(), self.pages);
        });
        assert_eq!(self.free_ranges(), [(self.base, self.base + self.pages)]);
        let st = &self.lazy.stats;
        assert_eq!(st.allocs.load(Relaxed), st.frees.load(Relaxed));
        assert_eq!(st.frees.load(Relaxed), st.purged_areas.load(Relaxed));
        assert_eq!(self.env.nr_flushes.load(Relaxed), self.purges());
    }
}

/// xorshift64*.

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.0 + b.1 && b.0 < a.0 + a.1
}

/// A threshold no counter reaches. (`u64::MAX` would not do: the comparison is signed, so it
/// reads as -1 and every free would purge.)
const NEVER: u64 = 1 << 40;

// --- Single-threaded --------------------------------------------------------------------------

/// Random allocs and frees against a model of what is live and what is lazy: the counter is the
/// sum of the lazy areas' lengths, a lazy range is never handed out again before a purge, every
/// purge that takes areas flushes once over exactly their union and takes all of them.
fn random_single(mode: Mode, lazy_max: u64, seed: u64) {
    let (base, pages) = (0x1000, 512);
    let a = Arena::new(base, pages, mode, lazy_max);
    // Odd seeds time the purges; the accounting must not change.
    let timing = seed % 2 == 1;
    a.env.timing.store(timing, Relaxed);
    let mut rng = Rng::new(seed);
    let mut live: Vec<(u64, u64)> = Vec::new();
    let mut lazy: Vec<(u64, u64)> = Vec::new();
    let mut auto_purges = 0;

    // Accounts for the purges an operation may have started (0 or 1 when single-threaded).
    let settle = |a: &Arena, lazy: &mut Vec<(u64, u64)>, before: u64| -> u64 {
        let after = a.purges();
        assert!(
            after <= before + 1,
            "one operation did {} purges",
            after - before
        );
        if after == before + 1 {
            assert!(!lazy.is_empty(), "a purge that took nothing was counted");
            let f = a.flushes();
            assert_eq!(f.len() as u64, after, "one flush per purge");
            let (s, e) = *f.last().unwrap();
            let lo = lazy.iter().map(|l| l.0).min().unwrap();
            let hi = lazy.iter().map(|l| l.0 + l.1).max().unwrap();
            assert_eq!((s, e), (lo, hi), "flush is the hull of the purged ranges");
            lazy.clear();
        }
        after - before
    };

    for _ in 0..reps(20_000) {
        let before = a.purges();
        if live.is_empty() || rng.below(100) < 55 {
            let max_len = if rng.below(8) == 0 { 40 } else { 6 };
            let len = 2 + rng.below(max_len);
            let align = 1 << rng.below(4);
            let got = a.alloc(len, align);
            auto_purges += settle(&a, &mut lazy, before);
            if let Some(s) = got {
                assert_eq!(s % align, 0);
                assert!(s >= base && s + len <= base + pages);
                for &l in live.iter().chain(lazy.iter()) {
                    assert!(
                        !overlaps((s, len), l),
                        "{:?} handed out over {:?}",
                        (s, len),
                        l
                    );
                }
                live.push((s, len));
            }
        } else {
            let (s, len) = live.swap_remove(rng.below(live.len() as u64) as usize);
            lazy.push((s, len));
            a.free(s);
            auto_purges += settle(&a, &mut lazy, before);
        }
        let want: u64 = lazy.iter().map(|l| l.1).sum();
        assert_eq!(a.lazy.lazy_pages(), want as i64);
        assert_eq!(a.lazy.live_areas(), live.len() + lazy.len());
        assert_eq!(a.lazy.stats.race_detected.load(Relaxed), 0);
        assert!(a.lazy.stats.lazy_min.load(Relaxed) >= 0);
    }
    assert!(auto_purges > 0, "{mode:?}: no purge in the whole run");

    for (s, _) in live.drain(..) {
        a.free(s);
    }
    a.purge(true);
    a.assert_empty();
    assert_eq!(a.env.races.load(Relaxed), 0);
    let st = &a.lazy.stats;
    let holds = st.purge_holds.load(Relaxed);
    // (`nodes` may pool a purge's areas: no hold.)
    assert!(holds >= a.purges() || mode == Mode::Nodes);
    let max_hold = st.purge_hold_max_areas.load(Relaxed);
    assert!(max_hold <= HOLD_MAX_AREAS as u64 && (max_hold >= 1 || mode == Mode::Nodes));
    let decay_holds = st.decay_holds.load(Relaxed);
    if mode == Mode::Nodes {
        // Each node's areas (and each decayed pool) go back in their own bounded give-back.
        assert!(a.env.rescheds.load(Relaxed) <= holds + decay_holds);
    } else {
        assert_eq!(decay_holds, 0, "{mode:?}: no pools, no decay");
    }
    if mode != Mode::Nodes {
        assert_eq!(
            a.env.rescheds.load(Relaxed),
            holds - a.purges(),
            "one resched between two holds"
        );
    }
    check_events(&a, timing);
}

/// With timing, one `purge` and one `purge_flush` per purge that took areas, one `purge_hold`
/// per hold, one `alloc_wait` per allocation that had to purge (at least one per exhaustion
/// purge that took areas; single-threaded, at most that plus the failures: an exhaustion
/// purge that finds nothing leaves no space for the retry); without, no event and no clock
/// read.
fn check_events(a: &Arena, timing: bool) {
    let st = &a.lazy.stats;
    let count = |e: Event| a.env.latency.hist(e).count();
    if !timing {
        assert_eq!(
            a.env.clock_reads.load(Relaxed),
            0,
            "the clock read with timing off"
        );
        assert!(Event::ALL.iter().all(|&e| count(e) == 0));
        return;
    }
    assert_eq!(count(Event::Purge), a.purges());
    assert_eq!(count(Event::PurgeFlush), a.env.nr_flushes.load(Relaxed));
    // Decay gives back in tree-lock holds too, timed as the purges' are.
    assert_eq!(
        count(Event::PurgeHold),
        st.purge_holds.load(Relaxed) + st.decay_holds.load(Relaxed)
    );
    let exhaustion = st.purges_by[Why::Exhaustion as usize].load(Relaxed);
    let failures = st.alloc_failures.load(Relaxed);
    let waits = count(Event::AllocWait);
    assert!(
        waits >= exhaustion,
        "{waits} alloc_wait for {exhaustion} exhaustion purges"
    );
    // (In `nodes` an exhaustion purge with nothing lazy may still make room: it decays the pools.)
    if a.single && a.lazy.mode() != Mode::Nodes {
        assert!(
            waits <= exhaustion + failures,
            "{waits} alloc_wait, {exhaustion} + {failures}"
        );
    }
    assert_eq!(
        count(Event::Alloc) + count(Event::Free),
        0,
        "the core does not time allocs or frees"
    );
    for e in Event::ALL {
        let s = a.env.latency.hist(e).summary();
        assert!(
            s.count == 0 || s.p50 >= 10,
            "{e:?}: {s:?}: a timed section read the clock once"
        );
    }
}

#[test]
fn single_random_no_threshold() {
    for mode in Mode::ALL {
        for seed in 1..=reps(3) {
            random_single(mode, NEVER, seed);
        }
    }
}

#[test]
fn single_random_small_threshold() {
    for mode in Mode::ALL {
        for (seed, max) in [(7, 0), (8, 16), (9, 64)] {
            random_single(mode, max, seed);
        }
    }
}

/// Fills an arena with `n` areas of `len` pages; returns their starts.
fn fill(a: &Arena, len: u64) -> Vec<u64> {
    let n = a.pages / len;
    let v: Vec<u64> = (0..n).map(|_| a.alloc(len, 1).unwrap()).collect();
    assert_eq!(a.env.with_tree(|t| t.free_pages()), a.pages % len);
    v
}

#[test]
fn freed_range_not_reused_before_purge() {
    for mode in Mode::ALL {
        let a = Arena::new(0x40, 64, mode, NEVER);
        let starts = fill(&a, 4);
        assert_eq!(starts.len(), 16);
        a.free(starts[5]);
        assert_eq!(a.lazy.lazy_pages(), 4);
        // The range is lazy: not in the tree, nothing flushed, the slot still live.
        assert_eq!(a.env.with_tree(|t| t.free_pages()), 0);
        assert_eq!(a.purges(), 0);
        assert!(a.flushes().is_empty());
        assert_eq!(a.lazy.live_areas(), 16);
        // The next allocation of that size finds no space, purges synchronously and retries.
        assert_eq!(a.alloc(4, 1), Some(starts[5]));
        assert_eq!(a.purges(), 1);
        assert_eq!(a.lazy.stats.purges[mode as usize].load(Relaxed), 1);
        assert_eq!(a.flushes(), [(starts[5], starts[5] + 4)]);
        assert_eq!(a.lazy.stats.alloc_failures.load(Relaxed), 0);
        assert_eq!(a.lazy.stats.purged_areas.load(Relaxed), 1);
        assert_eq!(a.lazy.stats.purged_pages.load(Relaxed), 4);
        assert_eq!(a.lazy.lazy_pages(), 0);
        for s in starts {
            a.free(s);
        }
        a.purge(true);
        a.assert_empty();
    }
}

/// Every purge path gives ranges back only after the flush over them has completed (the
/// `FlushOrder` checker in `StdEnv::with_tree` panics otherwise), and each path is counted as
/// itself. Reverse the two steps of `flush_and_release` and this fails at the first purge.
#[test]
fn flush_before_give_back_on_every_path() {
    for mode in Mode::ALL {
        let a = Arena::new(0x100, 64, mode, NEVER);
        assert!(a.env.order.is_some() || cfg!(miri));
        let by = |w: Why| a.lazy.stats.purges_by[w as usize].load(Relaxed);
        // Exhaustion: fill the arena, free two areas, allocate: purge, then retry.
        let starts = fill(&a, 4);
        a.free(starts[3]);
        a.free(starts[7]);
        let s = a
            .alloc(4, 1)
            .expect("the retry after the purge finds the freed space");
        assert_eq!(by(Why::Exhaustion), 1);
        // Demand.
        a.free(s);
        assert_eq!(a.purge(true), 1);
        assert_eq!(by(Why::Demand), 1);
        // Threshold: a free that pushes the counter past lazy_max_pages purges (trylock).
        a.lazy.set_lazy_max_pages(6);
        a.free(starts[0]);
        assert_eq!(by(Why::Threshold), 0);
        a.free(starts[1]);
        assert_eq!(by(Why::Threshold), 1);
        // Mode switch, once nothing is allocated.
        a.lazy.set_lazy_max_pages(NEVER);
        a.free(starts[2]);
        for &s in &starts[4..] {
            if s != starts[7] {
                a.free(s);
            }
        }
        a.lazy.set_mode(&a.env, mode).unwrap();
        assert_eq!(by(Why::ModeSwitch), 1);
        // Teardown.
        let s = a.alloc(4, 1).unwrap();
        a.free(s);
        a.lazy.purge(&a.env, Why::Teardown);
        assert_eq!(by(Why::Teardown), 1);
        a.assert_empty();
        assert_eq!(a.purges(), 5);
    }
}

#[test]
fn purge_flushes_once_over_the_union() {
    for mode in Mode::ALL {
        let a = Arena::new(0x100, 64, mode, NEVER);
        let starts = fill(&a, 4);
        // Non-adjacent areas, freed out of order: one flush over [first, last + len).
        let freed = [starts[9], starts[2], starts[13], starts[6]];
        for s in freed {
            a.free(s);
        }
        assert_eq!(a.lazy.lazy_pages(), 16);
        assert_eq!(a.purge(false), 4);
        assert_eq!(a.flushes(), [(starts[2], starts[13] + 4)]);
        let st = &a.lazy.stats;
        assert_eq!(a.env.nr_flushes.load(Relaxed), 1);
        assert_eq!(st.purges_by[Why::Threshold as usize].load(Relaxed), 1);
        assert_eq!(st.purged_areas.load(Relaxed), 4);
        assert_eq!(st.purged_pages.load(Relaxed), 16);
        assert_eq!(a.lazy.lazy_pages(), 0);
        assert_eq!(a.lazy.live_areas(), 12);
        let mut want: Vec<(u64, u64)> = freed.iter().map(|&s| (s, s + 4)).collect();
        want.sort();
        if mode == Mode::Nodes {
            // The threshold purge (the drain) put them in their nodes' pools.
            assert!(a.free_ranges().is_empty());
            assert_eq!(a.lazy.pooled_areas(), 4);
            let mut pooled = Vec::new();
            for n in 0..NODES {
                a.env.with_node_pools(n, |p| {
                    p.for_each_area(&a.env.slots, |s, l| pooled.push((s, s + l)))
                });
            }
            pooled.sort();
            assert_eq!(pooled, want);
        } else {
            assert_eq!(a.free_ranges(), want);
        }
        // Nothing lazy: a purge takes nothing, flushes nothing and is not counted (but in mode
        // `nodes` it empties the pools: a synchronous purge decays them fully).
        assert_eq!(a.purge(true), 0);
        assert_eq!(a.lazy.pooled_areas(), 0);
        assert_eq!(a.free_ranges(), want);
        assert_eq!(a.purge(false), 0);
        assert_eq!(a.flushes().len(), 1);
        assert_eq!(a.purges(), 1);
        for (i, s) in starts.into_iter().enumerate() {
            if !freed.contains(&s) {
                a.free(s);
                assert_eq!(a.lazy.lazy_pages(), 4 * (1 + i as i64 - freed_before(i)));
            }
        }
        assert_eq!(a.purge(true), 12);
        assert_eq!(a.flushes().len(), 2);
        assert_eq!(a.flushes()[1], (0x100, 0x100 + 64));
        a.assert_empty();
    }

    /// Number of areas among 0..=i that were freed in the first batch (2, 6, 9, 13).
    fn freed_before(i: usize) -> i64 {
        [2, 6, 9, 13].iter().filter(|&&j| j <= i).count() as i64
    }
}

#[test]
fn threshold_triggers_purge() {
    for mode in Mode::ALL {
        let a = Arena::new(0, 128, mode, 8);
        assert_eq!(a.lazy.lazy_max_pages(), 8);
        let starts = fill(&a, 4);
        a.free(starts[0]);
        a.free(starts[1]); // 8 pages: not above the threshold.
        assert_eq!(a.purges(), 0);
        assert_eq!(a.lazy.lazy_pages(), 8);
        a.free(starts[2]); // 12 > 8: this free purges.
        assert_eq!(a.purges(), 1);
        assert_eq!(a.lazy.lazy_pages(), 0);
        assert_eq!(a.flushes(), [(starts[0], starts[2] + 4)]);
        assert_eq!(a.lazy.stats.lazy_max.load(Relaxed), 12);
        assert_eq!(a.lazy.stats.lazy_min.load(Relaxed), 0);
        // Lower the threshold to 0: every free purges.
        a.lazy.set_lazy_max_pages(0);
        for (i, &s) in starts[3..].iter().enumerate() {
            a.free(s);
            assert_eq!(a.purges(), 2 + i as u64);
            assert_eq!(a.lazy.lazy_pages(), 0);
            assert_eq!(*a.flushes().last().unwrap(), (s, s + 4));
        }
        // Mode `nodes`: the threshold purges left areas in the pools; this empties them.
        assert_eq!(a.purge(true), 0);
        a.assert_empty();
        // A trylock purge does nothing while another purge holds the lock.
        let s = a.alloc(4, 1).unwrap();
        {
            let _held = a.env.purge_lock();
            if mode == Mode::PurgeLock {
                // The free itself takes the purge lock: it would deadlock here.
            } else {
                a.lazy.set_lazy_max_pages(NEVER);
                a.free(s);
                a.lazy.set_lazy_max_pages(0);
                assert_eq!(a.purge(false), 0);
                assert_eq!(a.lazy.lazy_pages(), 4);
            }
        }
        if mode == Mode::PurgeLock {
            a.free(s);
        } else {
            assert_eq!(a.purge(false), 1);
        }
        a.purge(true);
        a.assert_empty();
    }
}

#[test]
fn alloc_failure_when_full() {
    for mode in Mode::ALL {
        let a = Arena::new(0x10, 32, mode, NEVER);
        let starts = fill(&a, 8);
        assert_eq!(a.alloc(2, 1), None);
        assert_eq!(a.lazy.stats.alloc_failures.load(Relaxed), 1);
        assert_eq!(a.purges(), 0, "an empty synchronous purge is not counted");
        assert!(a.flushes().is_empty());
        // Space that is lazy does not help a request larger than it...
        a.free(starts[1]);
        assert_eq!(a.alloc(9, 1), None);
        assert_eq!(a.lazy.stats.alloc_failures.load(Relaxed), 2);
        // ...but the failed attempt did purge it.
        assert_eq!(a.purges(), 1);
        assert_eq!(a.lazy.lazy_pages(), 0);
        // An impossible alignment fails too.
        assert_eq!(a.alloc(2, 64), None);
        assert_eq!(a.lazy.stats.alloc_failures.load(Relaxed), 3);
        // No range has len + align - 1 = 15 pages, but the hole of exactly 8 is 8-aligned:
        // the exact search finds it, with no purge (nothing is lazy) and no failure.
        assert_eq!(starts[1] % 8, 0);
        assert_eq!(a.alloc(8, 8), Some(starts[1]));
        assert_eq!(a.lazy.stats.alloc_failures.load(Relaxed), 3);
        assert_eq!(a.lazy.stats.allocs.load(Relaxed), 5);
        assert_eq!(a.purges(), 1);
        for s in starts {
            a.free(s);
        }
        a.purge(true);
        a.assert_empty();
    }
}

#[test]
fn set_mode_purges_what_the_old_mode_left() {
    for from in Mode::ALL {
        for to in Mode::ALL {
            let a = Arena::new(0x200, 64, from, NEVER);
            let starts = fill(&a, 2);
            for &s in starts.iter().step_by(3) {
                a.free(s);
            }
            let lazy = a.lazy.lazy_pages();
            assert!(lazy > 0);
            // Refused while areas are allocated (a free could race the switch),
            // with nothing changed.
            assert_eq!(a.lazy.set_mode(&a.env, to), Err(AreasBusy));
            assert_eq!(a.lazy.mode(), from);
            assert_eq!(a.lazy.lazy_pages(), lazy);
            assert_eq!(a.purges(), 0);
            for (i, &s) in starts.iter().enumerate() {
                if i % 3 != 0 {
                    a.free(s);
                }
            }
            a.lazy.set_mode(&a.env, to).unwrap();
            assert_eq!(a.lazy.mode(), to);
            assert_eq!(a.lazy.lazy_pages(), 0);
            assert_eq!(a.lazy.stats.purges[from as usize].load(Relaxed), 1);
            assert_eq!(a.purges(), 1);
            assert_eq!(
                a.lazy.stats.purged_areas.load(Relaxed) as usize,
                starts.len()
            );
            // The new mode allocates, frees and purges.
            let starts = fill(&a, 2);
            for &s in &starts {
                a.free(s);
            }
            assert_eq!(a.purge(true) as usize, starts.len());
            assert_eq!(
                a.lazy.stats.purges[to as usize].load(Relaxed),
                1 + (from == to) as u64
            );
            a.assert_empty();
        }
    }
}

#[test]
fn mode_names() {
    let names: Vec<_> = Mode::ALL.iter().map(|m| m.name()).collect();
    assert_eq!(
        names,
        ["buggy", "drop-bugon", "purge-lock", "ordered", "nodes"]
    );
    for m in Mode::ALL {
        assert_eq!(Mode::from_name(m.name().as_bytes()), Some(m));
        assert_eq!(m.check_armed(), m != Mode::DropBugon);
    }
    assert_eq!(Mode::from_name(b"Buggy"), None);
    assert_eq!(Mode::from_name(b"buggy\n"), None);
    assert_eq!(Mode::from_name(b""), None);
}

#[test]
fn extremes_reset() {
    let a = Arena::new(0, 16, Mode::Ordered, NEVER);
    let s = a.alloc(6, 1).unwrap();
    a.free(s);
    assert_eq!(a.lazy.stats.lazy_max.load(Relaxed), 6);
    a.lazy.reset_extremes();
    assert_eq!(a.lazy.stats.lazy_min.load(Relaxed), 6);
    assert_eq!(a.lazy.stats.lazy_max.load(Relaxed), 6);
    a.purge(true);
    assert_eq!(a.lazy.stats.lazy_min.load(Relaxed), 0);
    assert_eq!(a.lazy.stats.lazy_max.load(Relaxed), 6);
    assert_eq!(a.lazy.stats.purge_hold_max_areas.load(Relaxed), 1);
    a.assert_empty();
    // purge_hold_max_areas is an extreme too: reset with the others, not added up by add_to
    // (purge_holds is).
    a.lazy.reset_extremes();
    assert_eq!(a.lazy.stats.purge_hold_max_areas.load(Relaxed), 0);
    assert_eq!(a.lazy.stats.purge_holds.load(Relaxed), 1);
    let (s1, s2) = (a.alloc(2, 1).unwrap(), a.alloc(2, 1).unwrap());
    a.free(s1);
    a.free(s2);
    a.purge(true);
    assert_eq!(a.lazy.stats.purge_hold_max_areas.load(Relaxed), 2);
    let total = Stats::default();
    a.lazy.stats.add_to(&total);
    a.lazy.stats.add_to(&total);
    assert_eq!(total.purge_holds.load(Relaxed), 4);
    assert_eq!(total.purge_hold_max_areas.load(Relaxed), 0);
}

// --- Bounded give-back and timing ------------------------------------------------------------

/// An arena with `n` two-page areas, all lazily freed (nothing purged yet).
fn lazy_batch(mode: Mode, n: u64) -> Arena {
    let a = Arena::new(0x1000, 2 * n + 6, mode, NEVER);
    let starts: Vec<u64> = (0..n).map(|_| a.alloc(2, 1).unwrap()).collect();
    for s in starts {
        a.free(s);
    }
    assert_eq!(a.lazy.lazy_pages(), 2 * n as i64);
    assert_eq!(a.purges(), 0);
    a
}

/// What a purge of `n` two-page areas must look like with `bound` areas per hold: the flush,
/// then holds of at most `bound` areas, a resched between each two and none after the last.
fn want_trace(n: u64, bound: u64, timing: bool) -> Vec<Tr> {
    let mut t = vec![Tr::Flush];
    if timing {
        t.push(Tr::Record(Event::PurgeFlush));
    }
    let mut left = n;
    while left > 0 {
        if left < n {
            t.push(Tr::Resched);
        }
        let k = left.min(bound);
        if timing {
            t.push(Tr::Record(Event::PurgeHold)); // recorded inside the hold
        }
        t.push(Tr::Hold(2 * k));
        left -= k;
    }
    if timing {
        t.push(Tr::Record(Event::Purge));
    }
    t
}

/// A purge of 1000 lazily freed areas gives them back in ceil(1000/64) = 16 holds of at most
/// 64 areas, with a resched between two holds, all after the flush (`FlushOrder` checks every
/// hold); other bounds likewise, and 0 is one unbounded hold.
#[test]
fn purge_gives_back_in_bounded_holds() {
    for mode in Mode::ALL {
        let bounds = [
            (64, 16),
            (0, 1),
            (1, 1000),
            (100, 10),
            (999, 2),
            (1000, 1),
            (5000, 1),
        ];
        // Under Miri the default and the unbounded hold only: the same code paths.
        for (hold, holds) in bounds
            .into_iter()
            .take(if cfg!(miri) { 2 } else { bounds.len() })
        {
            let a = lazy_batch(mode, 1000);
            let bound = if hold == 0 { 1000 } else { hold.min(1000) };
            a.env.hold_max.store(hold as usize, Relaxed);
            a.env.tracing.store(true, Relaxed);
            assert_eq!(a.purge(true), 1000);
            a.env.tracing.store(false, Relaxed);
            let trace = a.env.trace.lock().unwrap().clone();
            let st = &a.lazy.stats;
            if mode == Mode::Nodes {
                // Per node, in holds of at most `bound` areas, all after the one flush.
                assert_eq!(trace[0], Tr::Flush, "hold {hold}");
                let holds: Vec<u64> = trace
                    .iter()
                    .filter_map(|t| if let Tr::Hold(p) = t { Some(*p) } else { None })
                    .collect();
                assert!(
                    holds.iter().all(|&p| p <= 2 * bound),
                    "hold {hold}: {holds:?}"
                );
                assert_eq!(holds.iter().sum::<u64>(), 2000, "hold {hold}");
                assert_eq!(
                    st.purge_hold_max_areas.load(Relaxed),
                    *holds.iter().max().unwrap() / 2
                );
                assert_eq!(a.purges(), 1);
                a.assert_empty();
                continue;
            }
            assert_eq!(
                trace,
                want_trace(1000, bound, false),
                "{mode:?} hold {hold}"
            );
            assert_eq!(st.purge_holds.load(Relaxed), holds, "{mode:?} hold {hold}");
            assert_eq!(st.purge_hold_max_areas.load(Relaxed), bound);
            assert_eq!(a.env.rescheds.load(Relaxed), holds - 1);
            assert_eq!(st.purged_areas.load(Relaxed), 1000);
            assert_eq!(a.purges(), 1);
            a.assert_empty();
            check_events(&a, false);
        }
    }
}

/// With timing on: the events of a purge in order (purge_flush after the flush, purge_hold
/// inside each hold, purge at the end), and alloc_wait for allocations that purge, whether
/// or not the purge finds anything.
#[test]
fn timing_records_each_event() {
    // `nodes` gives back per node (its holds are checked in purge_gives_back_in_bounded_holds).
    for mode in Mode::ALL.into_iter().filter(|&m| m != Mode::Nodes) {
        let a = lazy_batch(mode, 200);
        a.env.timing.store(true, Relaxed);
        a.env.tracing.store(true, Relaxed);
        assert_eq!(a.purge(true), 200);
        let trace = std::mem::take(&mut *a.env.trace.lock().unwrap());
        assert_eq!(trace, want_trace(200, 64, true), "{mode:?}");
        let count = |e: Event| a.env.latency.hist(e).count();
        let counts = || Event::ALL.map(count);
        // alloc, free, purge, purge_flush, purge_hold, alloc_wait
        assert_eq!(counts(), [0, 0, 1, 1, 4, 0]);
        // Fill the arena: the allocation that finds no space purges (nothing) and fails.
        let starts: Vec<u64> = std::iter::from_fn(|| a.alloc(2, 1)).collect();
        assert_eq!(starts.len(), 203);
        assert_eq!(
            counts(),
            [0, 0, 1, 1, 4, 1],
            "an empty exhaustion purge waits, nothing else"
        );
        // Free one and allocate: the exhaustion purge takes it, the retry gets it.
        a.free(starts[7]);
        a.env.trace.lock().unwrap().clear();
        assert_eq!(a.alloc(2, 1), Some(starts[7]));
        assert_eq!(counts(), [0, 0, 2, 2, 5, 2]);
        let trace = std::mem::take(&mut *a.env.trace.lock().unwrap());
        let mut want = want_trace(1, 64, true);
        want.push(Tr::Record(Event::AllocWait));
        assert_eq!(trace, want);
        a.env.tracing.store(false, Relaxed);
        // The clock moves 10 ns per read. The empty purge's wait spans one read (the purge's
        // start, taken before it knows the batch is empty): 20 ns. This wait spans the
        // purge's six (purge, flush, flush, hold, hold, purge): 70 ns.
        let wait = a.env.latency.hist(Event::AllocWait).summary();
        assert_eq!((wait.p50, wait.max), (20, 70));
        for s in starts {
            a.free(s);
        }
        a.purge(true);
        a.assert_empty();
        check_events(&a, true);
        // Timing off again: no clock read from here on.
        a.env.timing.store(false, Relaxed);
        let reads = a.env.clock_reads.load(Relaxed);
        let s = a.alloc(2, 1).unwrap();
        a.free(s);
        a.purge(true);
        assert_eq!(a.env.clock_reads.load(Relaxed), reads);
    }
}

// --- Multi-threaded ---------------------------------------------------------------------------

const THREADS: u64 = 4;

/// Result of one stress round.
struct Round {
    races: u64,
    lazy_min: i64,
}

/// `THREADS` threads do `ops` random allocs and frees each while a purger thread purges
/// (trylock) in a loop; then a final synchronous purge must leave the arena empty. With
/// `window`, every free spins and yields between its two steps.
fn stress(mode: Mode, ops: u64, window: bool, seed: u64) -> Round {
    stress_hold(mode, ops, window, seed, HOLD_MAX_AREAS)
}

/// `stress` with `hold` areas per give-back hold, and timing on when `hold` is not the default.
fn stress_hold(mode: Mode, ops: u64, window: bool, seed: u64, hold: usize) -> Round {
    // Under Miri a smaller arena: the purger's scan of every slot is what
    // the interpreter spends its time on.
    let pages = if cfg!(miri) { 512 } else { 2048 };
    let a = Arena::with_record(0x10_0000, pages, mode, 32, false);
    if window {
        a.env.spins.store(1000, Relaxed);
        a.env.yields.store(true, Relaxed);
    }
    a.env.hold_max.store(hold, Relaxed);
    let timing = hold != HOLD_MAX_AREAS;
    a.env.timing.store(timing, Relaxed);
    // Mode `nodes`: frees past the threshold queue the drain, which the purger thread runs (the
    // workqueue); helpers run on threads of their own.
    a.env.workqueue.store(mode == Mode::Nodes, Relaxed);
    a.env.helper_threads.store(mode == Mode::Nodes, Relaxed);
    let stop = AtomicBool::new(false);
    std::thread::scope(|sc| {
        let purger = sc.spawn(|| {
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                if a.env.drain_pending.swap(false, AcqRel) {
                    n += a.lazy.drain(&a.env);
                }
                n += a.purge(n % 16 == 15);
                std::thread::yield_now();
            }
            n
        });
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let a = &a;
                sc.spawn(move || {
                    CPU.with(|c| c.set(Some(t as usize)));
                    let mut rng = Rng::new(seed * 1000 + t);
                    let mut live: Vec<(u64, u64)> = Vec::new();
                    for _ in 0..reps(ops) {
                        if live.is_empty() || (live.len() < 16 && rng.below(2) == 0) {
                            let len = 2 + rng.below(8);
                            let align = 1 << rng.below(3);
                            // This can fail: the single retry after the synchronous purge
                            // loses when the other workers, with the purge lock held by a
                            // preempted thread, fill the arena with lazy areas meanwhile.
                            let Some(s) = a.alloc(len, align) else {
                                continue;
                            };
                            assert_eq!(s % align, 0);
                            live.push((s, len));
                        } else {
                            let (s, _) = live.swap_remove(rng.below(live.len() as u64) as usize);
                            a.free(s);
                        }
                    }
                    for (s, _) in live {
                        a.free(s);
                    }
                })
            })
            .collect();
        // Stop the purger even if a worker panicked, then report the panic.
        let results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        stop.store(true, Relaxed);
        purger.join().unwrap();
        for r in results {
            if let Err(e) = r {
                std::panic::resume_unwind(e);
            }
        }
    });
    a.purge(true);
    a.assert_empty();
    let st = &a.lazy.stats;
    assert_eq!(st.allocs.load(Relaxed), st.frees.load(Relaxed));
    let failures = st.alloc_failures.load(Relaxed);
    if failures > 0 {
        eprintln!("{mode:?}: {failures} allocation failures under contention");
    }
    let races = st.race_detected.load(Relaxed);
    assert_eq!(races, a.env.races.load(Relaxed));
    let max_hold = st.purge_hold_max_areas.load(Relaxed);
    assert!(
        (max_hold >= 1 || mode == Mode::Nodes) && (hold == 0 || max_hold <= hold as u64),
        "{max_hold} areas in a hold"
    );
    check_events(&a, timing);
    if mode == Mode::Nodes && !cfg!(miri) {
        let hits = st.pool_hits.load(Relaxed);
        let (helpers, queued) = (
            st.purge_helpers.load(Relaxed),
            a.env.drains_queued.load(Relaxed),
        );
        eprintln!("nodes: {hits} pool hits, {helpers} helpers, {queued} drains queued");
        assert!(
            hits > 0 && queued > 0,
            "nodes: the pools or the drain never used"
        );
    }
    Round {
        races,
        lazy_min: st.lazy_min.load(Relaxed),
    }
}

#[test]
fn stress_fixed_modes_never_race() {
    for mode in [Mode::PurgeLock, Mode::Ordered, Mode::Nodes] {
        for (seed, window) in [(1, false), (2, true), (3, false), (4, true)] {
            let r = stress(mode, if window { 3000 } else { 20_000 }, window, seed);
            assert_eq!(r.races, 0, "{mode:?}: the armed check fired");
            assert!(
                r.lazy_min >= 0,
                "{mode:?}: the counter went negative: {}",
                r.lazy_min
            );
        }
    }
}

/// Chunked give-backs racing allocations and frees (an allocation may get a range of a chunk
/// given back while the rest of the batch is still out), and unbounded ones: the flush order
/// holds (`FlushOrder`), nothing is lost, every mode keeps its behaviour (the fixed modes,
/// `nodes` included, never race and never go negative), and the timed events add up.
#[test]
fn stress_chunked_give_back() {
    for mode in Mode::ALL {
        // (hold 0: no bound, the whole batch in one hold.)
        for (seed, hold) in [(30, 1), (31, 3), (32, 0)] {
            let r = stress_hold(mode, 5000, seed % 2 == 1, seed, hold);
            if matches!(mode, Mode::PurgeLock | Mode::Ordered | Mode::Nodes) {
                assert_eq!(r.races, 0, "{mode:?}: the armed check fired");
                assert!(
                    r.lazy_min >= 0,
                    "{mode:?}: the counter went negative: {}",
                    r.lazy_min
                );
            }
        }
    }
}

#[test]
fn stress_buggy_races() {
    // Without a window the race is rare; just check everything is given back.
    stress(Mode::Buggy, 20_000, false, 10);
    let mut rounds = 0;
    let mut races = 0;
    while races == 0 {
        rounds += 1;
        assert!(rounds <= 50, "Buggy: no race in {} rounds", rounds - 1);
        races += stress(Mode::Buggy, 2000, true, 10 + rounds).races;
    }
    eprintln!("buggy: {races} races detected in {rounds} round(s)");
}

#[test]
fn stress_drop_bugon_goes_negative() {
    let r = stress(Mode::DropBugon, 20_000, false, 20);
    assert_eq!(r.races, 0);
    let mut rounds = 0;
    let mut min = 0;
    while min >= 0 {
        rounds += 1;
        assert!(
            rounds <= 50,
            "DropBugon: counter never negative in {} rounds",
            rounds - 1
        );
        let r = stress(Mode::DropBugon, 2000, true, 20 + rounds);
        assert_eq!(r.races, 0, "DropBugon: the check is disarmed");
        min = min.min(r.lazy_min);
    }
    eprintln!("drop-bugon: counter reached {min} in {rounds} round(s)");
}

// --- parse.rs ---------------------------------------------------------------------------------

#[test]
fn parse_u64_accepts() {
    assert_eq!(parse_u64(b"0", 0, 10), Ok(0));
    assert_eq!(parse_u64(b"0\n", 0, 10), Ok(0));
    assert_eq!(parse_u64(b"42\n", 0, 100), Ok(42));
    assert_eq!(parse_u64(b"42", 42, 42), Ok(42));
    assert_eq!(parse_u64(b"007", 0, 10), Ok(7));
    assert_eq!(parse_u64(b"1", 1, 1024), Ok(1));
    assert_eq!(parse_u64(b"1024\n", 1, 1024), Ok(1024));
    assert_eq!(
        parse_u64(b"18446744073709551615", 0, u64::MAX),
        Ok(u64::MAX)
    );
    assert_eq!(
        parse_u64(b"18446744073709551615\n", u64::MAX, u64::MAX),
        Ok(u64::MAX)
    );
    assert_eq!(parse_u64(b"00000000000000000001", 0, 9), Ok(1)); // 20 digits
}

#[test]
fn parse_u64_rejects() {
    let bad: &[&[u8]] = &[
        b"",
        b"\n",
        b"\n\n",
        b"-1",
        b"+1",
        b" 1",
        b"1 ",
        b"1\t",
        b"1\n\n",
        b"\n1",
        b"1\r\n",
        b"0x10",
        b"1a",
        b"a1",
        b"1\0",
        b"1\0\n",
        b"\x001",
        b"1.0",
        b"1_000",
        b"99999999999999999999",
        b"99999999999999999999999",
        b"18446744073709551616",
        b"000000000000000000001", // 21 digits
        "１".as_bytes(),
    ];
    for &b in bad {
        assert_eq!(
            parse_u64(b, 0, u64::MAX),
            Err(Invalid),
            "{:?}",
            String::from_utf8_lossy(b)
        );
    }
    // Out of range on either side.
    assert_eq!(parse_u64(b"0", 1, 10), Err(Invalid));
    assert_eq!(parse_u64(b"11\n", 1, 10), Err(Invalid));
    assert_eq!(parse_u64(b"1025", 1, 1024), Err(Invalid));
    assert_eq!(
        parse_u64(b"18446744073709551615", 0, u64::MAX - 1),
        Err(Invalid)
    );
    assert_eq!(parse_u64(b"5", 6, 4), Err(Invalid));
}

#[test]
fn parse_name_exact() {
    let names = ["buggy", "drop-bugon", "purge-lock", "ordered"];
    for (i, n) in names.iter().enumerate() {
        assert_eq!(parse_name(n.as_bytes(), &names), Ok(i));
        assert_eq!(parse_name(format!("{n}\n").as_bytes(), &names), Ok(i));
        for bad in [
            format!("{n}\n\n"),
            format!("{n} "),
            format!("{n} \n"),
            format!(" {n}"),
            format!("\n{n}"),
            format!("{n}\0"),
            format!("{n}\0\n"),
            format!("{n}x"),
            n[..n.len() - 1].to_string(),
            n.to_uppercase(),
            n[..1].to_uppercase() + &n[1..],
        ] {
            assert_eq!(parse_name(bad.as_bytes(), &names), Err(Invalid), "{bad:?}");
        }
    }
    let mut embedded = b"drop".to_vec();
    embedded.push(0);
    embedded.extend_from_slice(b"-bugon");
    assert_eq!(parse_name(&embedded, &names), Err(Invalid));
    for bad in [&b""[..], b"\n", b"drop", b"purge", b"-"] {
        assert_eq!(parse_name(bad, &names), Err(Invalid));
    }
    assert_eq!(parse_name(b"a", &[]), Err(Invalid));
    // The workload names: a name that is a prefix of another one still matches exactly.
    let w = WORKLOAD_NAMES;
    assert_eq!(parse_name(b"random_size\n", &w), Ok(1));
    assert_eq!(parse_name(b"random_size_align\n", &w), Ok(5));
    assert_eq!(parse_name(b"random_size_", &w), Err(Invalid));
}

// --- workload.rs ------------------------------------------------------------------------------

const WORKLOAD_NAMES: [&str; 8] = [
    "fix_size",
    "random_size",
    "long_busy_list",
    "full_fit",
    "fix_align",
    "random_size_align",
    "align_shift",
    "handoff",
];

fn workload(name: &str) -> &'static lazy_vmap_core::workload::Workload {
    WORKLOADS.iter().find(|w| w.name == name).unwrap()
}

fn reqs(name: &str, c: &mut Ctx) -> Vec<Req> {
    let step = (workload(name).step)(c);
    assert!(step[0].is_some(), "{name}: a step without a first request");
    step.iter().flatten().copied().collect()
}

#[test]
fn workload_table() {
    assert_eq!(names(), WORKLOAD_NAMES);
    let w: Vec<_> = WORKLOADS.iter().map(|w| w.name).collect();
    assert_eq!(w, WORKLOAD_NAMES);
}

#[test]
// Single-threaded arithmetic over 10^5 draws: nothing for Miri to find that
// the native run does not, and hours in the interpreter.
#[cfg_attr(miri, ignore)]
fn workload_requests_are_valid() {
    // The module's max_align is (pages / 8).next_power_of_two() / 2, at least 1 (Ctx::new). Note
    // that fix_align asks for 8 pages whatever max_align says, so start at 8 here.
    for max_align in [8, 16, 64, 1024, 1 << 20] {
        for nr_pages in [1, 2, 7, 1024] {
            for seed in [0, 1, 42, u64::MAX] {
                for w in WORKLOADS.iter() {
                    let mut c = Ctx::new(seed, nr_pages, max_align);
                    for iter in 0..2000 {
                        c.iter = iter;
                        for r in reqs(w.name, &mut c) {
                            assert!(r.pages >= 1, "{}: {r:?}", w.name);
                            assert!(r.align.is_power_of_two(), "{}: {r:?}", w.name);
                            assert!(r.align <= max_align, "{}: {r:?} > {max_align}", w.name);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn workload_small_max_align() {
    // Everything but fix_align respects any max_align, including the floor of 1.
    for max_align in [0, 1, 2, 4] {
        let mut c = Ctx::new(3, 1, max_align);
        assert_eq!(c.max_align, max_align.max(1));
        for w in WORKLOADS.iter().filter(|w| w.name != "fix_align") {
            for iter in 0..500 {
                c.iter = iter;
                for r in reqs(w.name, &mut c) {
                    assert!(r.pages >= 1 && r.align.is_power_of_two());
                    assert!(r.align <= max_align.max(1), "{}: {r:?}", w.name);
                }
            }
        }
    }
}

#[test]
fn workload_fixed_steps() {
    let mut c = Ctx::new(1, 37, 1024);
    assert_eq!(
        reqs("fix_size", &mut c),
        [Req {
            pages: 37,
            align: 1
        }]
    );
    assert_eq!(
        reqs("long_busy_list", &mut c),
        [
            Req {
                pages: 100,
                align: 1
            },
            Req { pages: 1, align: 1 }
        ]
    );
    assert_eq!(reqs("full_fit", &mut c), [Req { pages: 1, align: 1 }]);
    assert_eq!(reqs("fix_align", &mut c), [Req { pages: 5, align: 8 }]);
}

#[test]
#[cfg_attr(miri, ignore)] // (see workload_requests_are_valid)
fn workload_random_size_range() {
    let mut c = Ctx::new(99, 1, 1024);
    let mut seen = [false; 101];
    for _ in 0..100_000 {
        let r = reqs("random_size", &mut c);
        assert_eq!(r.len(), 1);
        assert!((1..=100).contains(&r[0].pages), "{:?}", r[0]);
        assert_eq!(r[0].align, 1);
        seen[r[0].pages as usize] = true;
    }
    assert!(
        seen[1..].iter().all(|&s| s),
        "not every size in 1..=100 drawn"
    );
}

#[test]
#[cfg_attr(miri, ignore)] // (see workload_requests_are_valid)
fn workload_random_size_align_range() {
    let mut c = Ctx::new(5, 1, 1024);
    let mut pages = [false; 11];
    let mut aligns = std::collections::BTreeSet::new();
    for _ in 0..100_000 {
        let r = reqs("random_size_align", &mut c);
        assert_eq!(r.len(), 1);
        assert!((1..=10).contains(&r[0].pages), "{:?}", r[0]);
        pages[r[0].pages as usize] = true;
        aligns.insert(r[0].align);
    }
    assert!(pages[1..].iter().all(|&s| s));
    assert_eq!(
        aligns.into_iter().collect::<Vec<_>>(),
        (0..=10).map(|s| 1 << s).collect::<Vec<u64>>()
    );
    // Capped at max_align.
    let mut c = Ctx::new(5, 1, 4);
    for _ in 0..10_000 {
        assert!(reqs("random_size_align", &mut c)[0].align <= 4);
    }
}

#[test]
fn workload_align_shift_cycles() {
    for max_align in [1u64, 2, 8, 1024, 1 << 40] {
        let mut c = Ctx::new(1, 1, max_align);
        let want: Vec<u64> = (0..=max_align.trailing_zeros()).map(|s| 1 << s).collect();
        let mut got = Vec::new();
        for iter in 0..(2 * want.len()) as u64 {
            c.iter = iter;
            let r = reqs("align_shift", &mut c);
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].pages, 1);
            got.push(r[0].align);
        }
        let twice: Vec<u64> = want.iter().chain(want.iter()).copied().collect();
        assert_eq!(got, twice, "max_align {max_align}");
    }
}

#[test]
fn workload_busy() {
    let busy = |name: &str, b: u64| (workload(name).busy)(b);
    for name in [
        "fix_size",
        "random_size",
        "fix_align",
        "random_size_align",
        "align_shift",
        "handoff",
    ] {
        assert_eq!(busy(name, 0), Busy::None);
        assert_eq!(busy(name, 1 << 20), Busy::None);
    }
    // The whole per-thread budget (the caller caps it; test_vmalloc keeps 15000).
    for b in [0, 1, 100, 15000, 1 << 20] {
        assert_eq!(busy("long_busy_list", b), Busy::List(b));
        // Half kept busy, half freed to make the holes.
        assert_eq!(busy("full_fit", b), Busy::Holes(b / 2));
    }
    assert_eq!(busy("full_fit", 101), Busy::Holes(50));
}

/// Only `handoff` passes its areas to another thread; its areas are 1..=8 pages, so the union
/// of two neighbours' areas (with guard pages) usually stays under the `invlpg` ceiling (33).
#[test]
fn workload_handoff() {
    for w in WORKLOADS.iter() {
        assert_eq!(w.handoff, w.name == "handoff", "{}", w.name);
    }
    let mut c = Ctx::new(7, 1, 1);
    let mut seen = [false; 9];
    for _ in 0..reps(10_000) {
        let r = reqs("handoff", &mut c);
        assert_eq!(r.len(), 1);
        assert!(
            (1..=8).contains(&r[0].pages) && r[0].align == 1,
            "{:?}",
            r[0]
        );
        seen[r[0].pages as usize] = true;
    }
    assert!(
        cfg!(miri) || seen[1..].iter().all(|&x| x),
        "every size 1..=8 drawn"
    );
}

#[test]
fn workload_rng() {
    let mut c = Ctx::new(0, 1, 1);
    assert_ne!(c.rng, 0);
    let first: Vec<u64> = (0..1000).map(|_| c.random()).collect();
    assert!(first.iter().all(|&x| x != 0));
    let mut d = Ctx::new(0, 1, 1);
    assert_eq!(
        (0..1000).map(|_| d.random()).collect::<Vec<_>>(),
        first,
        "deterministic"
    );
}

// --- Mode `nodes` -----------------------------------------------------------------------------

/// Allocates `len` pages on `cpu`.
fn alloc_on(a: &Arena, cpu: usize, len: u64, align: u64) -> Option<u64> {
    CPU.with(|c| c.set(Some(cpu)));
    let s = a.alloc(len, align);
    CPU.with(|c| c.set(None));
    s
}

fn pool_len(a: &Arena, node: usize) -> u64 {
    a.env.with_node_pools(node, |p| p.areas())
}

#[test]
fn nodes_addr_to_node_id() {
    for nodes in [1, 2, 3, 4, 128] {
        for page in [0u64, 1, 15, 16, 31, 32, 1000, 1 << 40] {
            assert_eq!(
                addr_to_node_id(page, nodes),
                ((page / 16) % nodes as u64) as usize
            );
        }
    }
    assert_eq!(addr_to_node_id(16, 4), 1);
    assert_eq!(addr_to_node_id(64, 4), 0);
    assert_eq!(addr_to_node_id(5, 0), 0, "no division by zero");
}

/// A free goes on the lazy list of the node its allocation recorded; the threshold purge (the
/// drain) gives it to that node's pool; the next allocation of that size on a CPU of that node
/// gets it back, on another node's CPU it misses.
#[test]
fn nodes_pool_reuse() {
    let a = Arena::new(0x1000, 256, Mode::Nodes, NEVER);
    let x = alloc_on(&a, 1, 4, 1).unwrap();
    let y = alloc_on(&a, 2 + NODES, 4, 1).unwrap(); // CPU 6: node 2
    assert_eq!(a.lazy.stats.pool_misses.load(Relaxed), 2);
    a.free(x);
    a.free(y);
    assert_eq!(a.env.with_node_lazy(1, |l| l.lazy_areas()), 1);
    assert_eq!(a.env.with_node_lazy(2, |l| l.lazy_areas()), 1);
    assert_eq!(a.env.with_node_lazy(0, |l| l.lazy_areas()), 0);
    assert_eq!(a.purge(false), 2);
    assert_eq!(a.flushes(), [(x.min(y), x.max(y) + 4)]);
    assert_eq!(
        (pool_len(&a, 1), pool_len(&a, 2), a.lazy.pooled_areas()),
        (1, 1, 2)
    );
    assert_eq!(a.lazy.live_areas(), 0);
    assert_eq!(a.lazy.lazy_pages(), 0);
    // Node 0 has nothing; node 1 hands x out; a different size misses.
    assert_ne!(alloc_on(&a, 0, 4, 1), Some(x));
    assert_eq!(alloc_on(&a, 1, 5, 1).map(|s| s == x), Some(false));
    assert_eq!(alloc_on(&a, 1, 4, 1), Some(x));
    assert_eq!(a.lazy.stats.pool_hits.load(Relaxed), 1);
    assert_eq!(a.lazy.stats.pool_misses.load(Relaxed), 4);
    assert_eq!(pool_len(&a, 1), 0);
    // A misaligned head goes to the tail and the allocation misses.
    let align = if y % 8 == 0 { 16 } else { 8 };
    assert!(y % align != 0);
    let z = alloc_on(&a, 2, 4, align).unwrap();
    assert_ne!(z, y);
    assert_eq!(pool_len(&a, 2), 1);
    assert_eq!(alloc_on(&a, 2, 4, 1), Some(y));
    let misses = a.lazy.stats.pool_misses.load(Relaxed);
    // A size with an empty pool misses.
    let big = a.alloc(257 - 250, 1).unwrap();
    assert_eq!(a.lazy.stats.pool_misses.load(Relaxed), misses + 1);
    let mut live: Vec<u64> = a.lens.lock().unwrap().keys().copied().collect();
    live.sort();
    for s in live {
        a.free(s);
    }
    let _ = big;
    a.purge(true);
    a.assert_empty();
}

/// Node 0's pools filled by a threshold purge: eight areas of 2 pages, three of 3.
fn pool_eight_and_three(a: &Arena) {
    let eights: Vec<u64> = (0..8).map(|_| alloc_on(a, 0, 2, 1).unwrap()).collect();
    let threes: Vec<u64> = (0..3).map(|_| alloc_on(a, 0, 3, 1).unwrap()).collect();
    for &s in eights.iter().chain(&threes) {
        a.free(s);
    }
    assert_eq!(a.purge(false), 11);
    assert_eq!(pool_len(a, 0), 11);
}

/// 6.12's `decay_va_pool_node()`: a threshold purge decays a quarter of each pool (all of a pool
/// shorter than 4), a synchronous one all; decayed areas go to the tree.
#[test]
fn nodes_pool_decay() {
    let a = Arena::new(0x1000, 512, Mode::Nodes, NEVER);
    pool_eight_and_three(&a);
    assert_eq!(a.lazy.stats.decayed_areas.load(Relaxed), 0);
    // Another threshold purge: 8 -> 6 (a quarter), 3 -> 0 (shorter than 4). It needs a lazy area
    // to be counted, but decays either way.
    let t = alloc_on(&a, 1, 2, 1).unwrap();
    a.free(t);
    assert_eq!(a.purge(false), 1);
    assert_eq!(a.lazy.stats.decayed_areas.load(Relaxed), 5);
    assert_eq!(pool_len(&a, 0), 6);
    assert_eq!(pool_len(&a, 1), 1);
    // Decay with nothing lazy: 6 -> 5 (6 / 4 = 1), 1 -> 0.
    assert_eq!(a.purge(false), 0);
    assert_eq!(a.lazy.stats.decayed_areas.load(Relaxed), 7);
    assert_eq!(a.lazy.pooled_areas(), 5);
    // A synchronous purge empties them.
    assert_eq!(a.purge(true), 0);
    assert_eq!(a.lazy.stats.decayed_areas.load(Relaxed), 12);
    // Decay holds are counted apart: one per node and decay that gave areas back (all its pools
    // at once, up to 64 areas): node 0 three times, node 1 once. Purge holds count only purged
    // areas given to the tree: none, here, since every purged area went to a pool.
    assert_eq!(a.lazy.stats.decay_holds.load(Relaxed), 4);
    assert_eq!(a.lazy.stats.purge_holds.load(Relaxed), 0);
    a.assert_empty();
}

/// `PoolDecay::Quarter` (Baoquan He's 2025 `decay_va_pool_node()`): a threshold purge takes a
/// quarter of each pool, rounded down, so a pool shorter than 4 keeps every area; a synchronous
/// purge still empties them all.
#[test]
fn nodes_pool_decay_quarter() {
    let a = Arena::new(0x1000, 512, Mode::Nodes, NEVER);
    a.env.pool_decay.store(PoolDecay::Quarter as usize, Relaxed);
    pool_eight_and_three(&a);
    // 8 -> 6, 3 -> 3 (6.12: 3 -> 0).
    assert_eq!(a.purge(false), 0);
    assert_eq!(a.lazy.stats.decayed_areas.load(Relaxed), 2);
    assert_eq!(a.lazy.pooled_areas(), 9);
    // 6 -> 5, 3 -> 3; then 5 -> 4, 4 -> 3: the pools settle at 3 each.
    for _ in 0..4 {
        a.purge(false);
    }
    assert_eq!(a.lazy.pooled_areas(), 6);
    // The three-page areas still come from the pool, not the tree.
    let hits = a.lazy.stats.pool_hits.load(Relaxed);
    let again: Vec<u64> = (0..3).map(|_| alloc_on(&a, 0, 3, 1).unwrap()).collect();
    assert_eq!(a.lazy.stats.pool_hits.load(Relaxed), hits + 3);
    for s in again {
        a.free(s);
    }
    assert_eq!(a.purge(true), 3);
    assert_eq!(a.lazy.pooled_areas(), 0);
    a.assert_empty();
}

/// An area allocated in another mode cannot reach mode `nodes` (where it would have no node): the
/// switch is refused while it is allocated, and an allocation that races the switch fails.
#[test]
fn nodes_no_area_of_another_mode() {
    let a = Arena::new(0x1000, 256, Mode::Ordered, NEVER);
    let starts: Vec<u64> = (0..6).map(|_| a.alloc(16, 1).unwrap()).collect();
    assert_eq!(a.lazy.set_mode(&a.env, Mode::Nodes), Err(AreasBusy));
    for &s in &starts {
        a.free(s);
    }
    a.lazy.set_mode(&a.env, Mode::Nodes).unwrap();
    // Every area of mode `nodes` records the node of its allocating CPU.
    let starts: Vec<u64> = (0..6).map(|_| a.alloc(16, 1).unwrap()).collect();
    for &s in &starts {
        a.free(s);
    }
    let lazy: u32 = (0..NODES)
        .map(|n| a.env.with_node_lazy(n, |l| l.lazy_areas()))
        .sum();
    assert_eq!(lazy, 6);
    assert_eq!(a.purge(false), 6);
    a.purge(true);
    a.assert_empty();
}

/// The exhaustion path decays every pool fully and gives the purged areas to the tree
/// (`skip_populate`), so that the retry finds them.
#[test]
fn nodes_exhaustion_empties_the_pools() {
    let a = Arena::new(0x100, 64, Mode::Nodes, NEVER);
    let starts = fill(&a, 4);
    a.free(starts[0]);
    a.free(starts[1]);
    assert_eq!(a.purge(false), 2);
    assert_eq!(a.lazy.pooled_areas(), 2);
    a.free(starts[2]);
    // 8 pages: no pool has it, the tree has no space until the pools decay.
    let s = a.alloc(8, 1).expect("the pools decay on exhaustion");
    assert_eq!(s, starts[0]);
    assert_eq!(
        a.lazy.stats.purges_by[Why::Exhaustion as usize].load(Relaxed),
        1
    );
    assert_eq!(
        a.lazy.pooled_areas(),
        0,
        "exhaustion: nothing goes back to a pool"
    );
    assert_eq!(a.env.with_tree(|t| t.free_pages()), 4);
    a.free(s);
    for &s in &starts[3..] {
        a.free(s);
    }
    a.purge(true);
    a.assert_empty();
}

/// Past the threshold a free queues the drain instead of purging; the drain purges (waiting for
/// the lock) and counts as a threshold purge.
#[test]
fn nodes_free_queues_the_drain() {
    let a = Arena::new(0x100, 64, Mode::Nodes, 6);
    a.env.workqueue.store(true, Relaxed);
    let starts = fill(&a, 4);
    a.free(starts[0]);
    assert!(!a.env.drain_pending.load(Relaxed));
    a.free(starts[1]);
    assert!(
        a.env.drain_pending.swap(false, Relaxed),
        "8 > 6: the drain is queued"
    );
    assert_eq!(a.purges(), 0, "nothing purged inline");
    assert_eq!(a.lazy.drain(&a.env), 2);
    assert_eq!(
        a.lazy.stats.purges_by[Why::Threshold as usize].load(Relaxed),
        1
    );
    assert_eq!(a.lazy.stats.purges[Mode::Nodes as usize].load(Relaxed), 1);
    // In another mode the free purges inline, as before.
    for &s in &starts[2..] {
        a.free(s);
    }
    assert!(a.env.drain_pending.swap(false, Relaxed));
    a.lazy.set_mode(&a.env, Mode::Ordered).unwrap();
    let starts = fill(&a, 4);
    a.free(starts[0]);
    a.free(starts[1]);
    assert!(!a.env.drain_pending.load(Relaxed));
    assert_eq!(a.lazy.stats.purges[Mode::Ordered as usize].load(Relaxed), 1);
    for &s in &starts[2..] {
        a.free(s);
    }
    a.purge(true);
    a.assert_empty();
}

/// `clamp(lazy / lazy_max_pages, 1, busy nodes) - 1` nodes are given back by helpers on other
/// threads, the rest by the purger; every area comes back once.
#[test]
fn nodes_purge_helpers() {
    for (lazy_max, busy, want) in [
        (4, 4, 3),
        (32, 4, 1),
        (16, 4, 3),
        (1000, 4, 0),
        (1, 2, 1),
        (1, 1, 0),
    ] {
        let a = Arena::new(0x1000, 512, Mode::Nodes, NEVER);
        a.env.helper_threads.store(true, Relaxed);
        // Two 8-page areas per node: 64 lazy pages with 4 busy nodes.
        let mut starts = Vec::new();
        for n in 0..busy {
            for _ in 0..2 {
                starts.push(alloc_on(&a, n, 8, 1).unwrap());
            }
        }
        for &s in &starts {
            a.free(s);
        }
        a.lazy.set_lazy_max_pages(lazy_max);
        assert_eq!(a.purge(false), 2 * busy as u64);
        let st = &a.lazy.stats;
        assert_eq!(
            st.purge_helpers.load(Relaxed),
            want,
            "lazy_max {lazy_max}, {busy} busy"
        );
        assert_eq!(a.env.helpers_elsewhere.load(Relaxed), want);
        assert_eq!(a.lazy.lazy_pages(), 0);
        assert_eq!(a.lazy.pooled_areas(), 2 * busy);
        for n in 0..busy {
            assert_eq!(pool_len(&a, n), 2);
        }
        a.purge(true);
        a.assert_empty();
    }
}

/// The seed's check stays armed in mode `nodes` and the race window sits between the count and
/// the insertion: a purge never sees an area that is not counted yet.
#[test]
fn nodes_check_armed_never_fires() {
    assert!(Mode::Nodes.check_armed());
    let r = stress(Mode::Nodes, 3000, true, 77);
    assert_eq!(r.races, 0);
    assert!(r.lazy_min >= 0);
}

/// Above 256 pages there is no pool: such an allocation is neither a pool hit nor a miss (6.12's
/// `node_alloc()` does not look), and comes from the tree.
#[test]
fn nodes_no_pool_above_256_pages() {
    let a = Arena::new(0x1000, 2048, Mode::Nodes, NEVER);
    let x = alloc_on(&a, 1, 300, 1).unwrap();
    assert_eq!(a.lazy.stats.pool_misses.load(Relaxed), 0);
    assert_eq!(a.lazy.stats.pool_hits.load(Relaxed), 0);
    let y = alloc_on(&a, 1, 256, 1).unwrap();
    assert_eq!(a.lazy.stats.pool_misses.load(Relaxed), 1);
    a.free(x);
    a.free(y);
    a.purge(true);
    a.assert_empty();
}

/// The partial pool decay takes at most `hold_max_areas` areas per hold of a pool lock (6.12
/// pops a pool's quarter in one hold), and still a quarter of each pool in all; with the bound
/// off (0) it takes the quarter in one hold.
#[test]
fn nodes_pool_decay_bounded_holds() {
    for (bound, want_max) in [(3usize, 3u64), (0, 25)] {
        let a = Arena::new(0x1000, 1024, Mode::Nodes, NEVER);
        a.env.hold_max.store(bound, Relaxed);
        let areas: Vec<u64> = (0..100).map(|_| alloc_on(&a, 0, 2, 1).unwrap()).collect();
        for &s in &areas {
            a.free(s);
        }
        // Into the pool (nothing to decay yet), then a threshold purge decays a quarter.
        assert_eq!(a.purge(false), 100);
        assert_eq!(pool_len(&a, 0), 100);
        a.env.pool_hold_taken_max.store(0, Relaxed);
        assert_eq!(a.purge(false), 0);
        assert_eq!(
            a.lazy.stats.decayed_areas.load(Relaxed),
            25,
            "bound {bound}"
        );
        assert_eq!(pool_len(&a, 0), 75);
        assert_eq!(
            a.env.pool_hold_taken_max.load(Relaxed),
            want_max,
            "bound {bound}: most areas decayed in one hold"
        );
        a.purge(true);
        a.assert_empty();
    }
}

/// `Lazy::alloc` refuses what it cannot represent, instead of truncating it: an area shorter
/// than 2 pages (a page and its guard share a slot), longer than `u32::MAX` pages, or an
/// alignment that is not a power of two. Nothing is reserved, and each counts as a failure.
#[test]
fn alloc_refuses_bad_lengths_and_alignments() {
    let a = Arena::new(0x1000, 256, Mode::Ordered, NEVER);
    let free = a.env.tree.lock().unwrap().free_pages();
    for (len, align) in [(0, 1), (1, 1), (u64::from(u32::MAX) + 1, 1), (2, 3), (2, 0)] {
        assert_eq!(
            a.lazy.alloc(&a.env, len, align),
            None,
            "len {len} align {align}"
        );
    }
    assert_eq!(a.lazy.stats.alloc_failures.load(Relaxed), 5);
    assert_eq!(a.lazy.live_areas(), 0);
    assert_eq!(a.env.tree.lock().unwrap().free_pages(), free);
    // The smallest valid area still works.
    let s = a.alloc(2, 1).unwrap();
    a.free(s);
    a.purge(true);
    a.assert_empty();
}

/// `alloc_failures_busy` counts a failed allocation when every position of its size and
/// alignment overlaps an allocated area (no purge could have helped), even with pages free
/// elsewhere; not a request larger than the arena, which has no position at all.
#[test]
fn alloc_failures_busy_counts_genuine_exhaustion() {
    for mode in Mode::ALL {
        let a = Arena::new(0x100, 16, mode, NEVER);
        let st = &a.lazy.stats;
        // Busy [0, 2) and [8, 10): 12 pages free, but both 8-aligned positions of 4 pages taken.
        let x = a.alloc(2, 1).unwrap();
        let y = a.alloc(6, 1).unwrap();
        let z = a.alloc(2, 1).unwrap();
        assert_eq!((x, y, z), (0x100, 0x102, 0x108));
        a.free(y);
        assert_eq!(a.alloc(4, 8), None);
        assert_eq!(st.alloc_failures.load(Relaxed), 1);
        assert_eq!(st.alloc_failures_busy.load(Relaxed), 1, "{mode:?}");
        // Too large for the arena: a failure, not an exhaustion among busy areas.
        assert_eq!(a.alloc(32, 1), None);
        assert_eq!(st.alloc_failures.load(Relaxed), 2);
        assert_eq!(st.alloc_failures_busy.load(Relaxed), 1);
        // Free one blocker: the position at 8 is free again and the allocation succeeds.
        a.free(z);
        let w = a.alloc(4, 8).expect("the purge gives [8, 10) back");
        assert_eq!(w, 0x108);
        a.free(w);
        a.free(x);
        a.purge(true);
        a.assert_empty();
    }
}

// --- The history exhibits of the lazy core (`src/core/history.rs`) ---

/// `bug drain-loop` (690467c81b1a): after `set_iounmap_nonlazy()` the counter holds pages no
/// area has, so a drain that loops while the counter is above the threshold makes no progress;
/// the general detector stops it after `drain_stuck_rounds` idle rounds. Today's drain runs one
/// round whatever the counter. Taking the phantom pages out brings the counter back to 0.
#[test]
fn history_drain_loop_is_caught() {
    for bug in [Bug::None, Bug::DrainLoop] {
        let a = Arena::new(0x1000, 1024, Mode::Nodes, 64);
        a.env.bug.store(bug as usize, Relaxed);
        let phantom = a.lazy.set_nonlazy();
        assert_eq!((phantom, a.lazy.lazy_pages()), (65, 65));
        let x = alloc_on(&a, 0, 2, 1).unwrap();
        a.free(x); // past the threshold: purges inline (no workqueue), takes x
        assert_eq!(
            a.lazy.lazy_pages(),
            65,
            "a purge subtracts only what it took"
        );
        a.lazy.drain(&a.env);
        let st = &a.lazy.stats;
        let (rounds, stuck) = (st.drain_rounds.load(Relaxed), st.drain_stuck.load(Relaxed));
        match bug {
            Bug::None => assert_eq!((rounds, stuck), (1, 0), "{bug:?}"),
            _ => assert_eq!((rounds, stuck), (DRAIN_STUCK_ROUNDS, 1), "{bug:?}"),
        }
        // With the counter back under the threshold the loop ends after one round.
        a.lazy.unset_nonlazy(phantom);
        assert_eq!(a.lazy.lazy_pages(), 0);
        a.env.stuck_rounds.store(0, Relaxed);
        a.lazy.drain(&a.env);
        assert_eq!(st.drain_rounds.load(Relaxed), rounds + 1);
        assert_eq!(st.drain_stuck.load(Relaxed), stuck);
    }
}

/// `bug per-area-sub` (6.9, fixed by 409faf8c97d5): the purge subtracts from the shared
/// counter once per area instead of once per node; the counter ends right either way.
#[test]
fn history_per_area_sub_counts_its_atomics() {
    for (bug, subs) in [(Bug::None, 2u64), (Bug::PerAreaSub, 20)] {
        let a = Arena::new(0x1000, 1024, Mode::Nodes, NEVER);
        a.env.bug.store(bug as usize, Relaxed);
        let xs: Vec<u64> = (0..20)
            .map(|i| alloc_on(&a, i % 2, 2, 1).unwrap())
            .collect();
        for x in xs {
            a.free(x);
        }
        assert_eq!(a.purge(true), 20);
        assert_eq!(
            a.lazy.stats.purge_counter_subs.load(Relaxed),
            subs,
            "{bug:?}: one per busy node, or one per area"
        );
        assert_eq!(a.lazy.lazy_pages(), 0);
    }
}
