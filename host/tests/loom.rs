//! `loom` model of the lazy free/purge race of `src/core/lazy.rs`.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --release --test loom`.
//!
//! Each model allocates two areas (one page and its guard each) in the main thread, then two
//! threads free one area each while a third purges; after joining, a final synchronous purge
//! must leave the arena as it started. loom runs the closure once per interleaving of the
//! atomic operations and lock acquisitions (within the preemption bound, if any).
//!
//! One variant gives the purged areas back one per tree-lock hold (`Env::hold_max_areas` = 1),
//! so an allocation can find part of a purge's batch back in the tree before the rest.
//!
//! Three more models: a pool decay racing an allocation from that pool (`nodes`); a mode switch
//! racing an allocation and its free (`Lazy::set_mode`'s gate); and areas of several sizes and
//! alignments in every mode, unbounded (`hold_max_areas` 0) and one per hold, where in `nodes`
//! the drain work and the purge helpers run on loom threads of their own, as on kworkers. Broken
//! on purpose, each fails: the switch without its gate (the tree ends short), a `purge_node`
//! that also takes the live lazy list, and a purge that gives back slots taken after its walk
//! under the flush of the walk (both: a page given back before a flush covering it completed).
//!
//! The vmap blocks (`src/core/blocks.rs`) have a model too: `vb_free` racing `unmap_aliases` and
//! an allocation on another CPU, with a block dying during the call or not. When the call returns,
//! every page unmapped before it began must have been covered by a flush (in `all-blocks` and
//! `no-reset`; some `free-list` execution leaves the full block's pages: the 2.6.28–6.4 bug).
//! Broken on purpose, it fails: a dying block's range not flushed (the `DYING` window), and the
//! walk's unlocked read of a block's flags (it found that one: a new block's first free skipped).
//!
//! Per execution, in every mode: each area is purged exactly once, every purged range was
//! flushed before its range went back to the tree (`common::FlushOrder`), the tree is back to one free range covering the arena and the lazy counter is 0.
//! In `PurgeLock` and `Ordered` the armed `BUG_ON(nr > vmap_lazy_nr)` never fires and the
//! counter never goes negative. Across executions: some `Buggy` execution fires the check (the
//! 2010 bug is reachable) and some `DropBugon` execution sees the counter below 0 (the seed's
//! "it could go down to negative value temporarily").
#![cfg(loom)]

mod common;
use common::FlushOrder;
use lazy_vmap_core::blocks::{BlockEnv, BlockSlot, VbMode, VmapBlocks};
use lazy_vmap_core::freetree::{nodes_needed, FreeTree, Node};
use lazy_vmap_core::history::Bug;
use lazy_vmap_core::lazy::{slots_needed, AreaSlot, Env, Lazy, Mode, NodeLazy, NodePools, Why};
use loom::sync::{Mutex, MutexGuard};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{
    AtomicU64 as StdU64, AtomicUsize,
    Ordering::{AcqRel, Relaxed, Release},
};
use std::sync::Arc;
use std::time::Instant;

/// The environment: loom locks, so loom sees and permutes their acquisitions. The flush log and
/// the race counter are plain `std` (test bookkeeping, never held across a loom operation).
struct LoomEnv {
    purge: Mutex<()>,
    tree: Mutex<FreeTree<Vec<Node>>>,
    flushes: std::sync::Mutex<Vec<(u64, u64)>>,
    races: StdU64,
    /// No range goes back to the tree or a node pool before a flush over it has completed.
    order: FlushOrder,
    /// The arena's slots, shared with `Lazy`, to walk the pools for `order`.
    slots: Arc<[AreaSlot]>,
    /// Mode `nodes`: two nodes, each with its lazy lock and its pool lock.
    nodes: Vec<Mutex<NodeLazy>>,
    /// Areas handed out and not yet freed (test bookkeeping).
    live: std::sync::Mutex<Vec<u64>>,
    pools: Vec<Mutex<NodePools>>,
    /// `Env::hold_max_areas`.
    hold: usize,
    /// Set by `Env::resched` (between two holds of a give-back), cleared by the next hold.
    in_gap: std::sync::atomic::AtomicBool,
    /// An allocation took space from the tree between two holds of a give-back.
    gap_alloc: std::sync::atomic::AtomicBool,
    /// Mode `nodes` with `threads` (see `LoomEnv::threads`): the arena, so that the drain work and
    /// the purge helpers can run on loom threads of their own, as work items on kworkers do.
    arena: std::sync::OnceLock<std::sync::Weak<Arena>>,
    /// The drain work is queued and has not started (`work_pending()`), a loom atomic so that
    /// loom permutes a free's queueing with the work's start.
    drain_queued: loom::sync::atomic::AtomicBool,
    /// Threads started for the drain work and the helpers, joined by the model's end.
    workers: std::sync::Mutex<Vec<loom::thread::JoinHandle<()>>>,
    /// Helpers that ran on a thread of their own.
    helpers_run: StdU64,
    /// Drain works started on a thread.
    drains_spawned: StdU64,
    /// The vmap blocks' locks (`vb->lock`).
    blocks: Vec<Mutex<()>>,
    /// The block queues' locks (`vbq->lock`), one per CPU of the model, and who holds each
    /// (CPU + 1; 0: nobody), for `queue_held`.
    queues: Vec<Mutex<()>>,
    queue_holder: Vec<StdU64>,
    /// `Env::bug`, an index of `Bug::ALL` (test setting).
    bug: AtomicUsize,
    /// Pages `vb_free` unmapped that no flush has covered since, each with the number of its
    /// unmap (a page can be unmapped, flushed, reused and unmapped again).
    unflushed: std::sync::Mutex<BTreeMap<u64, u64>>,
    unmaps: StdU64,
    /// What `unmap_aliases` must have flushed when it returns: `unflushed` when it began.
    aliases_due: std::sync::Mutex<BTreeMap<u64, u64>>,
}

/// Vmap nodes of the model.
const NODES: usize = 2;

loom::thread_local! {
    /// The model thread's CPU (`Env::this_cpu`).
    static CPU: Cell<usize> = Cell::new(0);
}

fn on_cpu(cpu: usize) {
    CPU.with(|c| c.set(cpu));
}

impl Env for LoomEnv {
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
        let r = self.order.around(&mut tree, f);
        let after = tree.free_pages();
        if after > before {
            self.in_gap.store(false, Relaxed);
        } else if after < before && self.in_gap.load(Relaxed) {
            self.gap_alloc.store(true, Relaxed);
        }
        r
    }

    fn flush(&self, start: u64, end: u64) {
        assert!(start < end);
        self.flushes.lock().unwrap().push((start, end));
        self.order.flushed(start, end);
        self.unflushed
            .lock()
            .unwrap()
            .retain(|p, _| !(start..end).contains(p));
    }

    fn wants_batches(&self) -> bool {
        true
    }

    fn purge_took(&self, start: u64, len: u64) {
        self.order.took(start, len);
    }

    /// Nothing: loom already considers a switch at every atomic operation.
    fn race_window(&self) {}

    fn race(&self, nr: i64, lazy: i64) {
        assert!(nr > lazy);
        self.races.fetch_add(1, Relaxed);
    }

    fn hold_max_areas(&self) -> usize {
        self.hold
    }

    fn resched(&self) {
        self.in_gap.store(true, Relaxed);
    }

    fn bug(&self) -> Bug {
        Bug::from_index(self.bug.load(Relaxed))
    }

    fn this_cpu(&self) -> usize {
        CPU.with(|c| c.get())
    }

    fn nr_nodes(&self) -> usize {
        NODES
    }

    fn with_node_lazy<R>(&self, node: usize, f: impl FnOnce(&mut NodeLazy) -> R) -> R {
        f(&mut self.nodes[node].lock().unwrap())
    }

    fn with_node_pools<R>(&self, node: usize, f: impl FnOnce(&mut NodePools) -> R) -> R {
        self.order
            .around_pools(&self.slots, &mut self.pools[node].lock().unwrap(), f)
    }

    /// With `threads`: `schedule_work(&drain_vmap_work)`, a loom thread that runs the drain, or
    /// nothing if the work is already queued and not started.
    fn queue_drain(&self) -> bool {
        let Some(a) = self.threaded() else {
            return false;
        };
        if self.drain_queued.swap(true, AcqRel) {
            return true;
        }
        // At most two drain works per execution (the thread bound of loom): a third free past
        // the threshold purges inline, as where there is no workqueue.
        if self.drains_spawned.fetch_add(1, Relaxed) >= 2 {
            self.drain_queued.store(false, Release);
            return false;
        }
        let h = loom::thread::spawn(move || {
            a.env.drain_queued.store(false, Release);
            a.lazy.drain(&a.env);
        });
        self.workers.lock().unwrap().push(h);
        true
    }

    /// With `threads`: each helper node's give-back on a loom thread of its own (6.12's
    /// `schedule_work_on()` of `purge_vmap_node()`), the inline ones here, then the wait for the
    /// helpers (`flush_work()`).
    fn run_helpers(
        &self,
        helpers: &[u8],
        inline: &[u8],
        give_back: &(dyn Fn(usize) + Sync),
    ) -> u64 {
        // loom allows 5 threads per execution (main, A, two drain works): one purge's helpers
        // get threads, later ones run inline.
        let a = self
            .threaded()
            .filter(|_| !helpers.is_empty() && self.helpers_run.load(Relaxed) == 0);
        let Some(a) = a else {
            for &n in inline.iter().chain(helpers) {
                give_back(usize::from(n));
            }
            return 0;
        };
        let hs: Vec<_> = helpers
            .iter()
            .map(|&n| {
                let a = a.clone();
                loom::thread::spawn(move || {
                    a.lazy.purge_node(&a.env, usize::from(n));
                })
            })
            .collect();
        for &n in inline {
            give_back(usize::from(n));
        }
        let spawned = hs.len() as u64;
        for h in hs {
            h.join().unwrap();
        }
        self.helpers_run.fetch_add(spawned, Relaxed);
        spawned
    }
}

impl LoomEnv {
    fn new(pages: u64, slots: &Arc<[AreaSlot]>, hold: usize) -> Self {
        let pool = vec![Node::default(); nodes_needed(pages)];
        LoomEnv {
            purge: Mutex::new(()),
            tree: Mutex::new(FreeTree::new(pool, BASE, BASE + pages).unwrap()),
            flushes: std::sync::Mutex::new(Vec::new()),
            races: StdU64::new(0),
            order: FlushOrder::default(),
            slots: slots.clone(),
            nodes: (0..NODES).map(|_| Mutex::new(NodeLazy::new())).collect(),
            pools: (0..NODES).map(|_| Mutex::new(NodePools::new())).collect(),
            live: std::sync::Mutex::new(Vec::new()),
            hold,
            in_gap: Default::default(),
            gap_alloc: Default::default(),
            arena: std::sync::OnceLock::new(),
            drain_queued: loom::sync::atomic::AtomicBool::new(false),
            workers: std::sync::Mutex::new(Vec::new()),
            helpers_run: StdU64::new(0),
            drains_spawned: StdU64::new(0),
            blocks: (0..BLOCK_SLOTS).map(|_| Mutex::new(())).collect(),
            queues: (0..NODES).map(|_| Mutex::new(())).collect(),
            queue_holder: (0..NODES).map(|_| StdU64::new(0)).collect(),
            bug: AtomicUsize::new(Bug::None as usize),
            unflushed: Default::default(),
            unmaps: StdU64::new(0),
            aliases_due: Default::default(),
        }
    }

    /// The arena, when the drain and the helpers run on threads of their own.
    fn threaded(&self) -> Option<Arc<Arena>> {
        self.arena.get().and_then(|w| w.upgrade())
    }

    /// Joins the drain work threads (a drain may queue none, one, or one per free).
    fn join_workers(&self) {
        loop {
            let Some(h) = self.workers.lock().unwrap().pop() else {
                return;
            };
            h.join().unwrap();
        }
    }

    /// An allocation returned `s`: no live area may start there.
    fn take(&self, s: u64) {
        let mut live = self.live.lock().unwrap();
        assert!(!live.contains(&s), "{s:#x} handed out twice");
        live.push(s);
    }

    /// The area at `s` is about to be freed.
    fn give(&self, s: u64) {
        self.live.lock().unwrap().retain(|&x| x != s);
    }
}

/// The vmap blocks of the model (`src/core/blocks.rs`): the lock of each block is a loom lock;
/// the no-alias record is plain `std` bookkeeping, as the flush log.
impl BlockEnv for LoomEnv {
    fn with_block<R>(&self, idx: usize, f: impl FnOnce() -> R) -> R {
        let _g = self.blocks[idx].lock().unwrap();
        f()
    }

    fn with_queue<R>(&self, q: usize, f: impl FnOnce() -> R) -> R {
        let _g = self.queues[q].lock().unwrap();
        self.queue_holder[q].store(self.this_cpu() as u64 + 1, Relaxed);
        let r = f();
        self.queue_holder[q].store(0, Relaxed);
        r
    }

    fn queue_held(&self, q: usize) -> bool {
        self.queue_holder[q].load(Relaxed) == self.this_cpu() as u64 + 1
    }

    fn nr_queues(&self) -> usize {
        self.queues.len()
    }

    fn vb_unmapped(&self, start: u64, n: u64) {
        self.order.unmapped(start, n);
        let mut u = self.unflushed.lock().unwrap();
        for p in start..start + n {
            u.insert(p, self.unmaps.fetch_add(1, Relaxed));
        }
    }

    fn aliases_begin(&self) {
        *self.aliases_due.lock().unwrap() = self.unflushed.lock().unwrap().clone();
    }
}

struct Arena {
    env: LoomEnv,
    lazy: Lazy<Arc<[AreaSlot]>>,
    vb: VmapBlocks<Vec<BlockSlot>>,
}

/// Pages per vmap block of the model (the least 6.12's formula gives: `2 * VMAP_MAX_ALLOC`).
const BLOCK: u64 = 128;
/// Block slots of the largest model arena (`blocks_execution`'s 512 pages from `BASE`).
const BLOCK_SLOTS: usize = 4;

impl Arena {
    fn new(pages: u64, mode: Mode, lazy_max: u64, hold: usize) -> Arc<Self> {
        let slots: Arc<[AreaSlot]> = (0..slots_needed(pages)).map(|_| AreaSlot::new()).collect();
        let nb = VmapBlocks::<Vec<BlockSlot>>::slots_needed(BASE, pages, BLOCK);
        assert!(nb <= BLOCK_SLOTS);
        Arc::new(Arena {
            env: LoomEnv::new(pages, &slots, hold),
            lazy: Lazy::new(slots, BASE, mode, lazy_max),
            vb: VmapBlocks::new((0..nb).map(|_| BlockSlot::new()).collect(), BASE, BLOCK),
        })
    }

    /// `vm_unmap_aliases()`, then the no-alias check: no page `vb_free` unmapped before the call
    /// began (and not unmapped again since) is left without a flush covering it.
    /// Returns the pages left, and the flushes so far (for the failure's message).
    fn unmap_aliases(&self, mode: VbMode) -> (Vec<u64>, Vec<(u64, u64)>) {
        self.vb.unmap_aliases(&self.lazy, &self.env, mode);
        let due = std::mem::take(&mut *self.env.aliases_due.lock().unwrap());
        let u = self.env.unflushed.lock().unwrap();
        let left = due
            .iter()
            .filter(|&(p, n)| u.get(p) == Some(n))
            .map(|(&p, _)| p)
            .collect();
        (left, self.env.flushes.lock().unwrap().clone())
    }
}

const BASE: u64 = 0x100;
/// One page plus its guard page.
const LEN: u64 = 2;
/// Default preemption bound of the exploration.
const PREEMPTION_BOUND: usize = 3;
/// A threshold the counter never passes (`u64::MAX` would read as -1 in the signed compare).
const NEVER: u64 = 1 << 40;

/// How the model's threads behave.
#[derive(Clone, Copy, Debug)]
struct Variant {
    /// `lazy_max_pages`: `NEVER` (only the purger thread and the final purge purge), or small
    /// so the frees purge (trylock) by themselves.
    lazy_max: u64,
    /// The purger thread waits for the purge lock instead of trying it.
    sync: bool,
    /// Arena size in pages.
    pages: u64,
    /// The first freer then allocates again and frees what it got. With a 4-page arena the
    /// allocation finds no space and purges synchronously, racing with the purger thread, and
    /// a slot is reused while the other free may still be in flight.
    realloc: bool,
    /// Areas per give-back hold (`Env::hold_max_areas`): 64 (the default) never splits these
    /// batches; 1 gives each area back in its own hold, so the reallocation can find the first
    /// one back in the tree while the purger still holds the second.
    hold: usize,
}

const VARIANTS: [Variant; 6] = [
    Variant {
        lazy_max: NEVER,
        sync: false,
        pages: 8,
        realloc: false,
        hold: 64,
    },
    Variant {
        lazy_max: NEVER,
        sync: true,
        pages: 8,
        realloc: false,
        hold: 64,
    },
    // The second free to be counted passes the threshold (4 > 2) and purges.
    Variant {
        lazy_max: 2,
        sync: false,
        pages: 8,
        realloc: false,
        hold: 64,
    },
    // Every free purges.
    Variant {
        lazy_max: 0,
        sync: true,
        pages: 8,
        realloc: false,
        hold: 64,
    },
    // A full arena: the reallocation must purge to find space.
    Variant {
        lazy_max: NEVER,
        sync: false,
        pages: 4,
        realloc: true,
        hold: 64,
    },
    // The same with one area per hold: the give-back is chunked and races the reallocation.
    Variant {
        lazy_max: NEVER,
        sync: false,
        pages: 4,
        realloc: true,
        hold: 1,
    },
];

/// What the executions of one model saw.
#[derive(Default)]
struct Seen {
    executions: AtomicUsize,
    /// Executions in which the armed check fired.
    raced: AtomicUsize,
    /// Executions in which the counter went below 0.
    negative: AtomicUsize,
    /// Executions in which an allocation took a range between two holds of a give-back.
    gap_allocs: AtomicUsize,
}

fn one_execution(mode: Mode, v: Variant, seen: &Seen) {
    let pages = v.pages;
    let a = Arena::new(pages, mode, v.lazy_max, v.hold);

    // In mode `nodes`, area i is allocated on CPU i: one area per node.
    on_cpu(0);
    let first = a.lazy.alloc(&a.env, LEN, 1).unwrap();
    on_cpu(1);
    let areas = [first, a.lazy.alloc(&a.env, LEN, 1).unwrap()];
    on_cpu(0);
    assert_eq!(areas, [BASE, BASE + LEN]);

    let freers: Vec<_> = areas
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let a = a.clone();
            loom::thread::spawn(move || {
                on_cpu(i);
                a.env.order.unmapped(s, LEN);
                a.lazy.free(&a.env, s);
                if v.realloc && i == 0 {
                    // The arena is full, so this purges synchronously if nothing was purged yet;
                    // the purge waits for any other purge, so it cannot fail.
                    let s2 = a
                        .lazy
                        .alloc(&a.env, LEN, 1)
                        .expect("realloc after a purge failed");
                    a.env.order.unmapped(s2, LEN);
                    a.lazy.free(&a.env, s2);
                    return Some(s2);
                }
                None
            })
        })
        .collect();
    let purger = {
        let a = a.clone();
        let why = if v.sync { Why::Demand } else { Why::Threshold };
        loom::thread::spawn(move || a.lazy.purge(&a.env, why))
    };
    let mut all = areas.to_vec();
    for f in freers {
        all.extend(f.join().unwrap());
    }
    let n = all.len() as u64;
    let by_purger = purger.join().unwrap();
    let by_final = a.lazy.purge(&a.env, Why::Teardown);
    assert!(by_purger <= n && by_final <= n);

    // Quiescent: everything given back exactly once.
    let lazy = &a.lazy;
    let st = &lazy.stats;
    assert_eq!(lazy.lazy_pages(), 0, "{mode:?} {v:?}");
    assert_eq!(lazy.live_areas(), 0, "{mode:?} {v:?}");
    assert_eq!(
        lazy.pooled_areas(),
        0,
        "{mode:?} {v:?}: the teardown purge left pooled areas"
    );
    assert_eq!(st.allocs.load(Relaxed), n);
    assert_eq!(st.frees.load(Relaxed), n);
    assert_eq!(
        st.purged_areas.load(Relaxed),
        n,
        "{mode:?} {v:?}: an area purged twice or never"
    );
    assert_eq!(st.purged_pages.load(Relaxed), n * LEN);
    assert_eq!(st.alloc_failures.load(Relaxed), 0);
    a.env.with_tree(|t| {
        t.check().unwrap();
        assert_eq!(t.nr_ranges(), 1);
        assert_eq!(t.free_pages(), pages);
        let mut r = Vec::new();
        t.for_each_range(|s, e| r.push((s, e)));
        assert_eq!(r, [(BASE, BASE + pages)]);
    });
    // One flush per purge that took areas, and every area was under one of them.
    let flushes = a.env.flushes.lock().unwrap().clone();
    let purges: u64 = st.purges.iter().map(|p| p.load(Relaxed)).sum();
    assert_eq!(st.purges[mode as usize].load(Relaxed), purges);
    assert_eq!(flushes.len() as u64, purges);
    let by_path: u64 = st.purges_by.iter().map(|p| p.load(Relaxed)).sum();
    assert_eq!(by_path, purges);
    assert!((1..=n).contains(&purges));
    let holds = st.purge_holds.load(Relaxed);
    let max_hold = st.purge_hold_max_areas.load(Relaxed);
    assert!(max_hold <= v.hold as u64, "{max_hold} areas in a hold");
    // Mode `nodes` may give a purge's areas to the node pools, in no hold.
    if mode != Mode::Nodes {
        assert!(
            holds >= purges && max_hold >= 1,
            "{holds} holds, {max_hold}"
        );
        if v.hold == 1 {
            assert_eq!(holds, n, "one hold per area");
        }
    }
    if v.realloc {
        assert!(
            purges >= 2,
            "the reallocation reused a range before it was purged"
        );
    }
    for s in all {
        assert!(
            flushes.iter().any(|&(fs, fe)| fs <= s && s + LEN <= fe),
            "{s:#x} never flushed"
        );
    }
    if purges == 1 {
        assert_eq!(flushes, [(BASE, BASE + 2 * LEN)]);
    }

    let races = st.race_detected.load(Relaxed);
    assert_eq!(races, a.env.races.load(Relaxed));
    let min = st.lazy_min.load(Relaxed);
    match mode {
        Mode::PurgeLock | Mode::Ordered | Mode::Nodes => {
            assert_eq!(races, 0, "{mode:?} {v:?}: BUG_ON(nr > vmap_lazy_nr) fired");
            assert!(min >= 0, "{mode:?} {v:?}: counter reached {min}");
        }
        Mode::DropBugon => assert_eq!(races, 0, "the check is disarmed"),
        Mode::Buggy => {}
    }
    assert!(min >= -(2 * LEN as i64));
    // At most two areas are lazy at once, but the counter may say more: Ordered (like 6.12)
    // subtracts a batch only after giving its ranges back, so a range reused and freed again
    // meanwhile is counted twice for a moment (realloc variant: 3 * LEN).
    let max = st.lazy_max.load(Relaxed);
    let late_sub = matches!(mode, Mode::Ordered | Mode::Nodes);
    assert!(
        max <= if late_sub { n } else { 2 } as i64 * LEN as i64,
        "max {max}"
    );
    seen.executions.fetch_add(1, Relaxed);
    if races > 0 {
        seen.raced.fetch_add(1, Relaxed);
    }
    if min < 0 {
        seen.negative.fetch_add(1, Relaxed);
    }
    if a.env.gap_alloc.load(Relaxed) {
        seen.gap_allocs.fetch_add(1, Relaxed);
    }
}

/// A loom model builder: the environment's settings (`LOOM_MAX_PREEMPTIONS` and the rest, which
/// `Builder::new()` reads), else at most `bound` preemptions. Without a bound the exploration of
/// even these small models takes far too long (the purge walks every slot).
fn builder(bound: usize) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        b.preemption_bound = Some(bound);
    }
    b
}

/// Explores one mode and variant; returns what the executions saw.
fn explore(mode: Mode, v: Variant) -> Arc<Seen> {
    let seen = Arc::new(Seen::default());
    // 3 preemptions cover the reported interleaving (one preemption inside a free) and more.
    let b = builder(PREEMPTION_BOUND);
    let t = Instant::now();
    {
        let seen = seen.clone();
        b.check(move || one_execution(mode, v, &seen));
    }
    eprintln!(
        "{:<10} lazy_max={:<5} sync={:<5} pages={} realloc={:<5} hold={:<2}: {:>6} executions in \
         {:>6.2?}, {:>6} raced, {:>5} negative, {:>5} allocated between holds",
        mode.name(),
        if v.lazy_max == NEVER {
            "never".to_string()
        } else {
            v.lazy_max.to_string()
        },
        v.sync,
        v.pages,
        v.realloc,
        v.hold,
        seen.executions.load(Relaxed),
        t.elapsed(),
        seen.raced.load(Relaxed),
        seen.negative.load(Relaxed),
        seen.gap_allocs.load(Relaxed),
    );
    // The chunked variant reaches its point: an allocation between two holds of a purge (in the
    // four modes whose purges give back to the tree; `nodes` may pool them instead).
    let gaps = seen.gap_allocs.load(Relaxed) > 0;
    assert!(!gaps || v.hold == 1, "{mode:?} {v:?}: a gap with one hold");
    assert!(
        gaps || v.hold != 1 || mode == Mode::Nodes,
        "{mode:?} {v:?}: no allocation between holds"
    );
    seen
}

#[test]
fn loom_buggy_check_fires() {
    let mut raced = 0;
    for v in VARIANTS {
        let seen = explore(Mode::Buggy, v);
        assert!(seen.executions.load(Relaxed) > 0);
        raced += seen.raced.load(Relaxed);
        // The interleaving of the report: the purger sees the flag of a free not yet counted.
        assert!(
            seen.raced.load(Relaxed) > 0,
            "buggy {v:?}: no execution fired the check"
        );
    }
    assert!(raced > 0);
}

#[test]
fn loom_drop_bugon_goes_negative() {
    for v in VARIANTS {
        let seen = explore(Mode::DropBugon, v);
        assert_eq!(seen.raced.load(Relaxed), 0);
        assert!(
            seen.negative.load(Relaxed) > 0,
            "drop-bugon {v:?}: counter never negative"
        );
    }
}

/// A fixed mode: in no execution of any variant does the armed check fire or the counter go
/// below 0.
fn never_races(mode: Mode) {
    for v in VARIANTS {
        let seen = explore(mode, v);
        assert_eq!(
            seen.raced.load(Relaxed),
            0,
            "{mode:?} {v:?}: the check fired"
        );
        assert_eq!(
            seen.negative.load(Relaxed),
            0,
            "{mode:?} {v:?}: the counter went negative"
        );
    }
}

#[test]
fn loom_purge_lock_never_races() {
    never_races(Mode::PurgeLock);
}

#[test]
fn loom_ordered_never_races() {
    never_races(Mode::Ordered);
}

#[test]
fn loom_nodes_never_races() {
    never_races(Mode::Nodes);
}

/// Mode `nodes`: a pool decay racing an allocation from that pool. Two areas sit in node 0's
/// pool (a threshold purge put them there); thread A, on CPU 0, allocates one of their size and
/// frees it; thread B either purges on the threshold path (which decays the pool: shorter than
/// 4, all of it) or, with `full` and a full arena, allocates on CPU 1 (a miss: node 1's pool is
/// empty), finds no space and purges synchronously (full decay), then frees. Every execution:
/// A gets a pooled area or a range of the tree, never one twice; everything is purged once, the
/// counter ends at 0, the check never fires, no area becomes allocatable before its flush.
fn decay_execution(full: bool, seen: &Seen) {
    let pages = if full { 4 } else { 8 };
    let a = Arena::new(pages, Mode::Nodes, NEVER, 64);
    on_cpu(0);
    let pooled = [
        a.lazy.alloc(&a.env, LEN, 1).unwrap(),
        a.lazy.alloc(&a.env, LEN, 1).unwrap(),
    ];
    for s in pooled {
        a.env.order.unmapped(s, LEN);
        a.lazy.free(&a.env, s);
    }
    assert_eq!(a.lazy.purge(&a.env, Why::Threshold), 2);
    assert_eq!(a.lazy.pooled_areas(), 2);
    let t_a = {
        let a = a.clone();
        loom::thread::spawn(move || {
            on_cpu(0);
            let s = a.lazy.alloc(&a.env, LEN, 1).expect("alloc next to a decay");
            a.env.take(s);
            a.env.order.unmapped(s, LEN);
            a.env.give(s);
            a.lazy.free(&a.env, s);
            s
        })
    };
    let t_b = {
        let a = a.clone();
        loom::thread::spawn(move || {
            if full {
                on_cpu(1);
                let s = a
                    .lazy
                    .alloc(&a.env, LEN, 1)
                    .expect("alloc after the exhaustion purge");
                a.env.take(s);
                a.env.order.unmapped(s, LEN);
                a.env.give(s);
                a.lazy.free(&a.env, s);
                Some(s)
            } else {
                a.lazy.purge(&a.env, Why::Threshold);
                None
            }
        })
    };
    let _s_a = t_a.join().unwrap();
    let s_b = t_b.join().unwrap();
    a.lazy.purge(&a.env, Why::Teardown);
    let st = &a.lazy.stats;
    let n = 3 + u64::from(s_b.is_some());
    assert_eq!(a.lazy.lazy_pages(), 0);
    assert_eq!(a.lazy.live_areas(), 0);
    assert_eq!(a.lazy.pooled_areas(), 0);
    assert_eq!(st.allocs.load(Relaxed), n);
    assert_eq!(st.frees.load(Relaxed), n);
    assert_eq!(
        st.purged_areas.load(Relaxed),
        n,
        "an area purged twice or never"
    );
    assert_eq!(st.race_detected.load(Relaxed), 0);
    assert!(st.lazy_min.load(Relaxed) >= 0);
    // One pool lookup per allocation, and one more for each that went through the exhaustion
    // purge (its retry looks at the pool again, as 6.12's `goto retry`).
    let lookups = st.pool_hits.load(Relaxed) + st.pool_misses.load(Relaxed);
    assert!(
        (n..=2 * n).contains(&lookups),
        "{lookups} pool lookups for {n} allocations"
    );
    // Every decayed area was pooled once: at most every area.
    assert!(st.decayed_areas.load(Relaxed) <= n);
    a.env.with_tree(|t| {
        t.check().unwrap();
        assert_eq!(t.nr_ranges(), 1);
        assert_eq!(t.free_pages(), pages);
    });
    seen.executions.fetch_add(1, Relaxed);
    if st.pool_hits.load(Relaxed) > 0 {
        seen.raced.fetch_add(1, Relaxed); // here: executions with a pool hit
    }
    if st.decayed_areas.load(Relaxed) > 0 {
        seen.negative.fetch_add(1, Relaxed); // here: executions with a decay
    }
}

#[test]
fn loom_nodes_decay_races_alloc() {
    for full in [false, true] {
        let seen = Arc::new(Seen::default());
        let b = builder(PREEMPTION_BOUND);
        let t = Instant::now();
        {
            let seen = seen.clone();
            b.check(move || decay_execution(full, &seen));
        }
        let (ex, hits, decays) = (
            seen.executions.load(Relaxed),
            seen.raced.load(Relaxed),
            seen.negative.load(Relaxed),
        );
        eprintln!("nodes decay full={full}: {ex} executions in {:.2?}, {hits} with a pool hit, {decays} with a decay", t.elapsed());
        // Both orders happen: the allocation before the decay (a hit) and after it.
        assert!(
            hits > 0 && hits < ex,
            "full={full}: the allocation never raced the decay"
        );
        assert!(decays > 0);
    }
}

/// `Lazy::set_mode` racing an allocation and its free. Thread A allocates one area and frees it;
/// thread B switches `from` → `to`. Whatever the interleaving: the switch happens only when it
/// saw no area allocated (else `AreasBusy` and nothing changed), an allocation that meets a
/// switch fails (and counts nothing), and after the teardown purge of the final mode every area
/// is back in the tree once. Without the gate of `set_mode` (the `SWITCHING` bit and the
/// `allocs`/`frees` check), a free of the old mode publishing after the switch's purge leaves
/// its area on the old mode's list, which no purge of the new mode walks: the tree ends short.
fn set_mode_execution(from: Mode, to: Mode, seen: &Seen) {
    let pages = 8;
    let a = Arena::new(pages, from, NEVER, 64);
    on_cpu(0);
    let t_a = {
        let a = a.clone();
        loom::thread::spawn(move || {
            on_cpu(0);
            let s = a.lazy.alloc(&a.env, LEN, 1)?;
            a.env.order.unmapped(s, LEN);
            a.lazy.free(&a.env, s);
            Some(s)
        })
    };
    let t_b = {
        let a = a.clone();
        loom::thread::spawn(move || {
            on_cpu(1);
            a.lazy.set_mode(&a.env, to).is_ok()
        })
    };
    let got = t_a.join().unwrap();
    let switched = t_b.join().unwrap();
    assert_eq!(a.lazy.mode(), if switched { to } else { from });
    a.lazy.purge(&a.env, Why::Teardown);
    let st = &a.lazy.stats;
    let n = u64::from(got.is_some());
    assert_eq!(st.allocs.load(Relaxed), n);
    assert_eq!(st.frees.load(Relaxed), n);
    assert_eq!(st.alloc_failures.load(Relaxed), 1 - n);
    assert_eq!(
        a.lazy.lazy_pages(),
        0,
        "{from:?} -> {to:?} switched={switched} got={got:?}"
    );
    assert_eq!(
        a.lazy.live_areas(),
        0,
        "{from:?} -> {to:?}: an area was left lazy"
    );
    assert_eq!(a.lazy.pooled_areas(), 0);
    assert_eq!(st.purged_areas.load(Relaxed), n, "purged twice or never");
    a.env.with_tree(|t| {
        t.check().unwrap();
        assert_eq!(
            t.free_pages(),
            pages,
            "{from:?} -> {to:?}: the tree ends short"
        );
    });
    seen.executions.fetch_add(1, Relaxed);
    if switched {
        seen.raced.fetch_add(1, Relaxed); // here: executions where the switch happened
    }
    if got.is_none() {
        seen.negative.fetch_add(1, Relaxed); // here: allocations refused by a switch
    }
}

#[test]
fn loom_set_mode_races_alloc_free() {
    for (from, to) in [
        (Mode::Ordered, Mode::Nodes),
        (Mode::Nodes, Mode::Buggy),
        (Mode::Buggy, Mode::Ordered),
    ] {
        let seen = Arc::new(Seen::default());
        let b = builder(PREEMPTION_BOUND);
        let t = Instant::now();
        {
            let seen = seen.clone();
            b.check(move || set_mode_execution(from, to, &seen));
        }
        let (ex, switched, refused) = (
            seen.executions.load(Relaxed),
            seen.raced.load(Relaxed),
            seen.negative.load(Relaxed),
        );
        eprintln!(
            "set_mode {} -> {}: {ex} executions in {:.2?}, {switched} switched, {refused} \
             allocations refused",
            from.name(),
            to.name(),
            t.elapsed()
        );
        // Each outcome is reached: a switch refused (an area allocated), a switch done, and an
        // allocation refused by a switch under way.
        assert!(switched > 0 && switched < ex, "{from:?} -> {to:?}");
        assert!(
            refused > 0,
            "{from:?} -> {to:?}: no allocation met the switch"
        );
    }
}

/// Areas of several sizes and alignments, in every mode, with the give-back unbounded
/// (`hold_max_areas` 0, the whole batch in one hold) or one area per hold; in mode `nodes` the
/// drain work and the purge helpers run on loom threads of their own, as on kworkers. The main
/// thread allocates a 2-page area on CPU 0 and a 4-page area aligned to 4 pages on CPU 1; thread
/// A frees the first, then allocates 3 pages aligned to 2 and frees them; the main thread
/// (B) frees the second. The threshold (2 pages) makes every free purge, or queue the drain in `nodes`.
/// Every execution: nothing handed out twice, every range flushed before reuse
/// (`FlushOrder`), everything back in the tree once, the counter at 0, and in the fixed modes no
/// race. Across executions (nodes): a helper ran on its own thread, so the model reaches it.
fn sizes_execution(mode: Mode, hold: usize, seen: &Seen) {
    let pages = 16;
    let a = Arena::new(pages, mode, 2, hold);
    a.env.arena.set(Arc::downgrade(&a)).unwrap();
    on_cpu(0);
    let s0 = a.lazy.alloc(&a.env, 2, 1).unwrap();
    on_cpu(1);
    let s1 = a.lazy.alloc(&a.env, 4, 4).unwrap();
    assert_eq!(s1 % 4, 0);
    on_cpu(0);
    for s in [s0, s1] {
        a.env.take(s);
    }
    let t_a = {
        let a = a.clone();
        loom::thread::spawn(move || {
            on_cpu(0);
            a.env.order.unmapped(s0, 2);
            a.env.give(s0);
            a.lazy.free(&a.env, s0);
            let s = a.lazy.alloc(&a.env, 3, 2)?;
            assert_eq!(s % 2, 0);
            a.env.take(s);
            a.env.order.unmapped(s, 3);
            a.env.give(s);
            a.lazy.free(&a.env, s);
            Some(s)
        })
    };
    // B is the main thread (loom allows 5 threads: main, A, two drain works, one helper).
    on_cpu(1);
    a.env.order.unmapped(s1, 4);
    a.env.give(s1);
    a.lazy.free(&a.env, s1);
    on_cpu(0);
    let got = t_a.join().unwrap();
    a.env.join_workers();
    a.lazy.purge(&a.env, Why::Teardown);
    a.env.join_workers();
    let st = &a.lazy.stats;
    let n = 2 + u64::from(got.is_some());
    assert_eq!(
        st.alloc_failures.load(Relaxed),
        3 - n,
        "16 pages hold 2 + 4 + 3 of them"
    );
    assert_eq!(a.lazy.lazy_pages(), 0, "{mode:?} hold {hold}");
    assert_eq!(a.lazy.live_areas(), 0);
    assert_eq!(a.lazy.pooled_areas(), 0);
    assert_eq!(
        st.purged_areas.load(Relaxed),
        n,
        "{mode:?}: purged twice or never"
    );
    a.env.with_tree(|t| {
        t.check().unwrap();
        assert_eq!(t.free_pages(), pages);
        assert_eq!(t.nr_ranges(), 1);
    });
    let max_hold = st.purge_hold_max_areas.load(Relaxed);
    if hold > 0 {
        assert!(max_hold <= hold as u64);
    }
    if matches!(mode, Mode::PurgeLock | Mode::Ordered | Mode::Nodes) {
        assert_eq!(st.race_detected.load(Relaxed), 0, "{mode:?}: BUG_ON fired");
        assert!(st.lazy_min.load(Relaxed) >= 0);
    }
    seen.executions.fetch_add(1, Relaxed);
    if a.env.helpers_run.load(Relaxed) > 0 {
        seen.raced.fetch_add(1, Relaxed); // here: executions with a helper thread
    }
    if st.purges_by[Why::Threshold as usize].load(Relaxed) > 0 {
        seen.negative.fetch_add(1, Relaxed); // here: executions with a threshold purge or drain
    }
}

#[test]
fn loom_sizes_helpers_drain() {
    for mode in Mode::ALL {
        for hold in [0, 1] {
            let seen = Arc::new(Seen::default());
            let b = builder(2);
            let t = Instant::now();
            {
                let seen = seen.clone();
                b.check(move || sizes_execution(mode, hold, &seen));
            }
            let (ex, helpers, threshold) = (
                seen.executions.load(Relaxed),
                seen.raced.load(Relaxed),
                seen.negative.load(Relaxed),
            );
            eprintln!(
                "sizes {:<10} hold={hold}: {ex} executions in {:.2?}, {helpers} with a helper \
                 thread, {threshold} with a threshold purge",
                mode.name(),
                t.elapsed()
            );
            assert!(threshold > 0, "{mode:?}: no threshold purge");
            if mode == Mode::Nodes {
                assert!(helpers > 0, "nodes: no helper ran on a thread of its own");
            }
        }
    }
}

/// The vmap blocks: `vb_free` racing `unmap_aliases` and an allocation. The main thread fills
/// one block of CPU 0 with two 64-page mappings (fully used: on no free list). Thread F frees
/// the first (its pages dirty in a full block) and, with `die`, the second too (the block dies
/// while the call may be walking: the `DYING` window); thread U calls `unmap_aliases`; thread A,
/// on CPU 1, maps 1 page (a new block of CPU 1, from the lazy allocator) and unmaps it.
/// Every execution in `all-blocks` and `no-reset`: when `unmap_aliases` returns, every page
/// unmapped before it began has been covered by a flush; no range reused before its flush
/// (`FlushOrder`); everything back at the end. Across executions in `free-list`: some leaves the
/// full block's dirty pages unflushed (the 2.6.28–6.4 bug; fc1e0d980037).
fn blocks_execution(mode: Mode, vb_mode: VbMode, die: bool, missed: &AtomicUsize) {
    let pages = 512;
    let a = Arena::new(pages, mode, NEVER, 64);
    on_cpu(0);
    let m0 = a.vb.alloc(&a.lazy, &a.env, 64).unwrap();
    let m1 = a.vb.alloc(&a.lazy, &a.env, 64).unwrap();
    assert_eq!(m1, m0 + 64, "one block, bumped");
    let t_f = {
        let a = a.clone();
        loom::thread::spawn(move || {
            on_cpu(0);
            assert!(a.vb.free(&a.lazy, &a.env, m0, 64));
            if die {
                assert!(a.vb.free(&a.lazy, &a.env, m1, 64));
            }
        })
    };
    let t_u = {
        let a = a.clone();
        loom::thread::spawn(move || a.unmap_aliases(vb_mode))
    };
    on_cpu(1);
    // A block of its own (at m0's if that block died and was purged first).
    let p = a.vb.alloc(&a.lazy, &a.env, 1).unwrap();
    assert!(a.vb.free(&a.lazy, &a.env, p, 1));
    on_cpu(0);
    t_f.join().unwrap();
    let (left, flushes) = t_u.join().unwrap();
    if vb_mode == VbMode::FreeList {
        missed.fetch_add(usize::from(!left.is_empty()), Relaxed);
    } else {
        assert!(
            left.is_empty(),
            "{mode:?} {vb_mode:?} die={die}: pages {left:#x?} left translated (flushes {flushes:#x?})"
        );
    }
    if !die {
        assert!(a.vb.free(&a.lazy, &a.env, m1, 64));
    }
    a.vb.retire_unused(&a.lazy, &a.env);
    a.lazy.purge(&a.env, Why::Teardown);
    assert_eq!(a.vb.live_blocks(), 0);
    assert_eq!(a.lazy.live_areas(), 0);
    assert_eq!(a.lazy.lazy_pages(), 0);
    assert!(
        a.env.unflushed.lock().unwrap().is_empty(),
        "a dirty page never flushed"
    );
    a.env.with_tree(|t| {
        t.check().unwrap();
        assert_eq!(t.free_pages(), pages);
    });
}

#[test]
fn loom_blocks_free_races_unmap_aliases() {
    for mode in [Mode::Ordered, Mode::Nodes] {
        for vb_mode in VbMode::ALL {
            for die in [false, true] {
                let missed = Arc::new(AtomicUsize::new(0));
                let runs = Arc::new(AtomicUsize::new(0));
                let mut b = builder(3);
                // A teardown purge in `nodes` decays the pools of 512 pages: long, not a spin.
                b.max_branches = 20_000;
                let t = Instant::now();
                {
                    let (missed, runs) = (missed.clone(), runs.clone());
                    b.check(move || {
                        runs.fetch_add(1, Relaxed);
                        blocks_execution(mode, vb_mode, die, &missed)
                    });
                }
                let missed = missed.load(Relaxed);
                eprintln!(
                    "blocks {:<8} {:<10} die={die:<5}: {} executions in {:.2?}, {missed} left \
                     dirty pages translated",
                    mode.name(),
                    vb_mode.name(),
                    runs.load(Relaxed),
                    t.elapsed()
                );
                if vb_mode == VbMode::FreeList {
                    assert!(
                        missed > 0,
                        "{mode:?} die={die}: free-list never missed the full block"
                    );
                }
            }
        }
    }
}

/// `bug vb-publish` (6.10, fixed by 3e3de7947c75): a new block is in the index before its CPU
/// is set. loom finds the interleaving in which a concurrent `vm_unmap_aliases()` walk reads it
/// there, and the general detector (`uninit_blocks`) sees it and skips the block; with today's
/// order no execution lets a walk see one.
#[test]
fn loom_vb_publish_walk_reads_an_uninitialised_block() {
    for (bug, caught) in [(Bug::None, false), (Bug::VbPublish, true)] {
        let seen = Arc::new(AtomicUsize::new(0));
        let runs = Arc::new(AtomicUsize::new(0));
        let b = builder(2);
        {
            let (seen, runs) = (seen.clone(), runs.clone());
            b.check(move || {
                runs.fetch_add(1, Relaxed);
                let a = Arena::new(256, Mode::Ordered, NEVER, 64);
                a.env.bug.store(bug as usize, Relaxed);
                let walker = {
                    let a = a.clone();
                    loom::thread::spawn(move || {
                        on_cpu(1);
                        a.vb.unmap_aliases(&a.lazy, &a.env, VbMode::AllBlocks);
                    })
                };
                on_cpu(0);
                let p = a.vb.alloc(&a.lazy, &a.env, 1).expect("a new block");
                walker.join().unwrap();
                if a.vb.stats.uninit_blocks.load(Relaxed) > 0 {
                    seen.fetch_add(1, Relaxed);
                }
                assert!(a.vb.free(&a.lazy, &a.env, p, 1));
                a.vb.retire_unused(&a.lazy, &a.env);
                a.lazy.purge(&a.env, Why::Teardown);
                assert_eq!(a.vb.live_blocks(), 0);
                assert_eq!(a.lazy.lazy_pages(), 0);
            });
        }
        let seen = seen.load(Relaxed);
        eprintln!(
            "vb-publish {}: {} executions, {seen} with a walk reading an uninitialised block",
            bug.name(),
            runs.load(Relaxed)
        );
        assert_eq!(seen > 0, caught, "{bug:?}");
    }
}
