// SPDX-License-Identifier: GPL-2.0

//! Lazy freeing and purging of vmap areas, and the 2010 race.
//!
//! Freeing a vmap area for real needs a TLB flush on every CPU, which is
//! expensive, so the kernel frees lazily: the area's PTEs are cleared with no
//! flush, its pages counted in `vmap_lazy_nr`, and the range kept out of the
//! allocator until a *purge* has flushed it. A purge takes every lazily freed
//! area, does **one** flush over the union of their ranges and gives the
//! ranges back. It runs when the counter passes `lazy_max_pages`, when an
//! allocation finds no space (synchronously, then the allocation retries
//! once), on demand, and at unload.
//!
//! Four [`Mode`]s differ only in how a free publishes the area and how the
//! purge finds it:
//!
//! - [`Mode::Buggy`], 2.6.28: `free_unmap_vmap_area_noflush()` sets
//!   `VM_LAZY_FREE` on the area, *then* adds its pages to the counter, with
//!   nothing in between. `__purge_vmap_area_lazy()` (under the static purge
//!   lock, trylock when not synchronous) walks every area, takes the flagged
//!   ones, sums their pages into `nr` and does `BUG_ON(nr > vmap_lazy_nr)`
//!   before subtracting `nr`. A freer preempted between its two steps lets
//!   the purger see the flag without the count: the check fires.
//! - [`Mode::DropBugon`], the upstream fix (seed 000): the same order with the
//!   check removed; the signed counter dips below zero for a moment.
//! - [`Mode::PurgeLock`], seed 001's proposal: flag and count updated under
//!   the purge lock, so a purger sees both or neither.
//! - [`Mode::Ordered`], the 4.9–5.x kernels: count first, publish second
//!   (push on a lock-free purge list), and the purge detaches the whole list
//!   and subtracts exactly what it took.
//! - [`Mode::Nodes`], 6.9+ (6.12): count first, then insert into the lazy
//!   list of a per-CPU vmap node under that node's lock; per-node pools of
//!   ready areas; the purge drains every node (see [`nodes`]).
//!
//! The check stays armed in every mode but `DropBugon`; what happens when it
//! fires is up to [`Env::race`] (count, WARN or a real BUG).
//!
//! In every mode a purge gives its batch back to the tree in holds of the
//! tree lock of at most [`Env::hold_max_areas`] areas ([`HOLD_MAX_AREAS`] =
//! 64 by default), calling [`Env::resched`] between two holds, so the
//! non-preemptible part of a purge is bounded whatever the batch (issue 13;
//! 4.10 did the same with `cond_resched_lock()`). `purge_holds` and
//! `purge_hold_max_areas` in [`Stats`] count the holds. With
//! [`Env::timing`] on, the purge reports its latencies through
//! [`Env::record`] (see [`super::hist::Event`]).
//!
//! Areas are described by [`AreaSlot`]s indexed by `(start - base) / 2`:
//! every reservation is at least two pages long (one page and its guard), so
//! two live areas never share a slot. The slot array plays the role of
//! 2.6.28's `vmap_area_list`, the list the buggy purge walks.

use super::freetree::{FreeTree, Node};
use super::hist::Event;
use super::history::Bug;
// (`addr_to_node_id`, `POOL_SIZES` and `ZONE_PAGES`: for the host tests.)
use super::sync::{smp_mb_after_atomic, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering::*};
use core::ops::{Deref, DerefMut};
#[allow(unused_imports)]
pub use nodes::{
    addr_to_node_id, NodeLazy, NodePools, PoolDecay, MAX_NODES, POOL_SIZES, ZONE_PAGES,
};

#[path = "nodes.rs"]
pub mod nodes;

/// How lazy frees are published and purged; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 2.6.28: flag, then count; the purge walks flagged areas; check armed.
    Buggy = 0,
    /// Seed 000: as `Buggy` with the check removed.
    DropBugon = 1,
    /// Seed 001: flag and count under the purge lock; check armed.
    PurgeLock = 2,
    /// 4.9–5.x: count, then publish on a list the purge detaches; check armed.
    Ordered = 3,
    /// 6.9+ (6.12): count, then insert into a per-CPU node's lazy list;
    /// per-node pools; purge drained from a workqueue; check armed.
    Nodes = 4,
}

impl Mode {
    /// Every mode, in the order of the table in the README.
    pub const ALL: [Mode; 5] = [
        Mode::Buggy,
        Mode::DropBugon,
        Mode::PurgeLock,
        Mode::Ordered,
        Mode::Nodes,
    ];

    /// The name used by the `mode` knob.
    pub fn name(self) -> &'static str {
        ["buggy", "drop-bugon", "purge-lock", "ordered", "nodes"][self as usize]
    }

    /// The mode called `name`, if any.
    pub fn from_name(name: &[u8]) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name().as_bytes() == name)
    }

    fn from_u8(v: u8) -> Mode {
        Mode::ALL[(v & !SWITCHING) as usize % Mode::ALL.len()]
    }

    /// Whether the seed's `BUG_ON(nr > vmap_lazy_nr)` is checked.
    pub fn check_armed(self) -> bool {
        self != Mode::DropBugon
    }
}

/// Why a purge runs: the five paths of the kernel's `__purge_vmap_area_lazy()`
/// callers that this module has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// A free pushed the counter past `lazy_max_pages` (trylock: a purge
    /// already running makes this one return at once).
    Threshold = 0,
    /// An allocation found no space: purge synchronously, then retry once.
    Exhaustion = 1,
    /// On demand (`echo 1 > purge`).
    Demand = 2,
    /// Before a switch of the lazy mode, or of `flush` to off, so the new
    /// setting starts with nothing lazy.
    ModeSwitch = 3,
    /// The arena is being replaced or the module unloaded.
    Teardown = 4,
    /// `vm_unmap_aliases()` (the vmap blocks, [`super::blocks`]): the flush
    /// also covers the blocks' dirty ranges, and runs even when nothing is
    /// lazy.
    Aliases = 5,
}

impl Why {
    /// Every path, in the order of the `purges_<path>` stats.
    pub const ALL: [Why; 6] = [
        Why::Threshold,
        Why::Exhaustion,
        Why::Demand,
        Why::ModeSwitch,
        Why::Teardown,
        Why::Aliases,
    ];

    /// The name in the stats file (`purges_<name>`).
    pub fn name(self) -> &'static str {
        [
            "threshold",
            "exhaustion",
            "demand",
            "mode_switch",
            "teardown",
            "aliases",
        ][self as usize]
    }

    /// Whether the purge waits for the purge lock.
    pub fn sync(self) -> bool {
        self != Why::Threshold
    }
}

/// A slot is unused.
const SLOT_FREE: u32 = 0;
/// The area is allocated.
const SLOT_BUSY: u32 = 1;
/// The area is lazily freed and waits for a purge (2.6.28's `VM_LAZY_FREE`).
const SLOT_LAZY: u32 = 2;
/// A purger has taken the area (2.6.28's `VM_LAZY_FREEING`).
const SLOT_PURGING: u32 = 3;
/// The area waits in a node's pool, ready to be handed out (mode `nodes`).
const SLOT_POOLED: u32 = 4;
/// End of a chain of slots.
const NIL: u32 = u32::MAX;
/// Set in [`Lazy`]'s mode byte while [`Lazy::set_mode`] switches: an
/// allocation that sees it fails (see there).
const SWITCHING: u8 = 0x80;

/// [`Lazy::set_mode`] found an area allocated (or an allocation under
/// way), so a free could race the switch; nothing was changed.
#[derive(Debug, PartialEq, Eq)]
pub struct AreasBusy;

/// The descriptor of one area (`struct vmap_area`).
pub struct AreaSlot {
    state: AtomicU32,
    start: AtomicU64,
    len: AtomicU32,
    /// Link in the purge list (ordered) or in a purger's private batch; in
    /// a node's lazy list, purge list or pool (nodes).
    next: AtomicU32,
    /// The node whose pool the allocation tried (6.12's `vn_id`), or `NIL`.
    node: AtomicU32,
}

impl AreaSlot {
    /// An unused slot.
    pub fn new() -> Self {
        AreaSlot {
            state: AtomicU32::new(SLOT_FREE),
            start: AtomicU64::new(0),
            len: AtomicU32::new(0),
            next: AtomicU32::new(NIL),
            node: AtomicU32::new(NIL),
        }
    }
}

/// Number of [`AreaSlot`]s an arena of `pages` pages needs.
pub fn slots_needed(pages: u64) -> usize {
    (pages / 2 + 1) as usize
}

/// What the lazy logic needs from its surroundings: locks, the TLB flush and
/// the race policy. The kernel module implements it on its arena; the host
/// tests implement it with `std` or `loom` primitives.
pub trait Env: Sync {
    /// Storage of the free tree's nodes.
    type Pool: DerefMut<Target = [Node]>;
    /// Held while the static purge lock is held.
    type PurgeGuard<'a>
    where
        Self: 'a;
    /// Takes the purge lock, waiting for it.
    fn purge_lock(&self) -> Self::PurgeGuard<'_>;
    /// Takes the purge lock if it is free.
    fn purge_trylock(&self) -> Option<Self::PurgeGuard<'_>>;
    /// Runs `f` on the free tree under `vmap_area_lock`.
    fn with_tree<R>(&self, f: impl FnOnce(&mut FreeTree<Self::Pool>) -> R) -> R;
    /// Flushes the kernel TLB for pages `[start, end)` on every CPU, and
    /// returns once every CPU has done so. Called with no spinlock held.
    /// The purge gives the ranges back to the tree only after it returns.
    fn flush(&self, start: u64, end: u64);
    /// The race window of a free: between its two steps (`race_delay_us`).
    fn race_window(&self);
    /// The armed check found `nr > lazy` (already counted in `race_detected`).
    fn race(&self, nr: i64, lazy: i64);
    /// A free has published the area at page `va_start` as lazy (every
    /// mode): the counter after its add, `nr_lazy` pages (a negative count,
    /// possible in `drop-bugon`, wraps as the kernel's `unsigned long` does),
    /// and the threshold `nr_lazy_max`. Called before the threshold check,
    /// where 6.12's `free_vmap_area_noflush()` calls
    /// `trace_free_vmap_area_noflush(va_start, nr_lazy, nr_lazy_max)`.
    fn trace_free(&self, va_start: u64, nr_lazy: u64, nr_lazy_max: u64) {
        let _ = (va_start, nr_lazy, nr_lazy_max);
    }
    /// A purge ran (it held the purge lock, in every mode): it flushed the
    /// pages `[start, end)`, the union of the `npurged` areas it gave back.
    /// A purge that found nothing lazy reports `u64::MAX, 0, 0`, as 6.12's
    /// `__purge_vmap_area_lazy(ULONG_MAX, 0, ...)` calls
    /// `trace_purge_vmap_area_lazy(start, end, nr_purged_areas)` at its end
    /// whether it purged or not. A threshold purge that finds the lock
    /// taken does not run and does not report (the kernel's drain work is
    /// then already queued).
    fn trace_purge(&self, start: u64, end: u64, npurged: u64) {
        let _ = (start, end, npurged);
    }

    /// Whether [`Env::purge_took`] wants to hear of every area a purge
    /// takes: a checker's (the host tests' flush-order check); the
    /// kernel's says no, and the core then does not walk its batches.
    fn wants_batches(&self) -> bool {
        false
    }
    /// A purge took the area `[start, start + len)` (pages, guard included)
    /// into its batch, after detaching it and before its flush. Only when
    /// [`Env::wants_batches`].
    fn purge_took(&self, start: u64, len: u64) {
        let _ = (start, len);
    }
    /// A purge on path `why` begins (purge lock held), before it takes
    /// anything: for checkers and logs. Default: nothing.
    fn purge_path(&self, why: Why) {
        let _ = why;
    }

    /// A preemption point, called by a purge between two tree-lock holds of
    /// its give-back (never while holding the tree lock; the purge lock is
    /// held, which is a sleeping lock in the kernel). The kernel calls
    /// `cond_resched()`. Default: nothing.
    fn resched(&self) {}

    /// Most areas a purge gives back to the tree in one [`Env::with_tree`]
    /// call; [`Env::resched`] runs between two such holds. `0` means no
    /// bound: the whole batch in one hold, as before issue 13 (for
    /// before/after measurements only). Default: [`HOLD_MAX_AREAS`] (64).
    /// (4.10's `__purge_vmap_area_lazy()` has a `cond_resched_lock()` after
    /// every area; a fixed chunk keeps the lock traffic low and the hold
    /// bounded all the same.)
    fn hold_max_areas(&self) -> usize {
        HOLD_MAX_AREAS
    }

    /// Whether the core measures latencies ([`Env::now_ns`] and
    /// [`Env::record`]). When `false` (the default) the core never reads the
    /// clock.
    fn timing(&self) -> bool {
        false
    }

    /// A monotonic clock in ns (the kernel: `ktime_get()`); only called when
    /// [`Env::timing`] is true. It may be called with the tree lock held.
    fn now_ns(&self) -> u64 {
        0
    }

    /// One latency of `ev`, in ns; only called when [`Env::timing`] is
    /// true. The core records [`Event::Purge`], [`Event::PurgeFlush`],
    /// [`Event::PurgeHold`] (with the tree lock held: keep it short, e.g.
    /// [`super::hist::AtomicHist::record`]) and [`Event::AllocWait`].
    /// Default: nothing.
    fn record(&self, ev: Event, ns: u64) {
        let _ = (ev, ns);
    }

    /// The historical behaviour selected (the `bug` knob, see
    /// [`super::history`]). Default: none, today's code.
    fn bug(&self) -> Bug {
        Bug::None
    }
    /// Rounds without progress after which a looping drain gives up and
    /// counts itself in `drain_stuck` (0: no bound). Default:
    /// [`DRAIN_STUCK_ROUNDS`].
    fn drain_stuck_rounds(&self) -> u64 {
        DRAIN_STUCK_ROUNDS
    }

    // --- Mode `nodes` (see [`nodes`]) ---

    /// How a threshold purge decays the pools. Default:
    /// [`PoolDecay::Wraps`], 6.12's.
    fn pool_decay(&self) -> PoolDecay {
        PoolDecay::Wraps
    }

    /// The CPU running the caller (`raw_smp_processor_id()`).
    fn this_cpu(&self) -> usize {
        0
    }
    /// Number of vmap nodes, 1..=[`MAX_NODES`], fixed for the arena's life.
    fn nr_nodes(&self) -> usize;
    /// Runs `f` on node `node`'s lazy bookkeeping under that node's lazy lock.
    fn with_node_lazy<R>(&self, node: usize, f: impl FnOnce(&mut NodeLazy) -> R) -> R;
    /// Runs `f` on node `node`'s pools under that node's pool lock.
    fn with_node_pools<R>(&self, node: usize, f: impl FnOnce(&mut NodePools) -> R) -> R;
    /// Queues the drain work (6.12's `schedule_work(&drain_vmap_work)`),
    /// which calls [`Lazy::drain`]; false if there is no workqueue, and the
    /// free purges inline instead.
    fn queue_drain(&self) -> bool {
        false
    }
    /// Runs `give_back(node)` for every node of `helpers` on that node's
    /// CPU (6.12's `schedule_work_on()`) and for every node of `inline` on
    /// this one, then waits for the helpers (`flush_work()`). Returns how
    /// many nodes helpers did. The default does everything here.
    fn run_helpers(
        &self,
        helpers: &[u8],
        inline: &[u8],
        give_back: &(dyn Fn(usize) + Sync),
    ) -> u64 {
        for &n in inline.iter().chain(helpers) {
            give_back(usize::from(n));
        }
        0
    }
}

/// Default bound of [`Env::hold_max_areas`]: areas given back per
/// tree-lock hold.
pub const HOLD_MAX_AREAS: usize = 64;

/// Default of [`Env::drain_stuck_rounds`].
pub const DRAIN_STUCK_ROUNDS: u64 = 100;

/// The start of a timed section: `Some(now)` when the environment times.
fn clock<E: Env>(env: &E, timing: bool) -> Option<u64> {
    timing.then(|| env.now_ns())
}

/// Records `ev` as the time since `t0`, if timing.
fn since<E: Env>(env: &E, ev: Event, t0: Option<u64>) {
    if let Some(t0) = t0 {
        env.record(ev, env.now_ns().saturating_sub(t0));
    }
}

/// Counters of the lazy logic. All cumulative except the two extremes.
#[derive(Default)]
pub struct Stats {
    /// Areas allocated.
    pub allocs: AtomicU64,
    /// Areas lazily freed.
    pub frees: AtomicU64,
    /// Allocations that failed even after a synchronous purge.
    pub alloc_failures: AtomicU64,
    /// Of those, the ones where every aligned position of the arena
    /// overlapped an allocated area when the allocation gave up (no purge
    /// could have made room; see `Lazy::no_room_among_busy`).
    pub alloc_failures_busy: AtomicU64,
    /// Purges that took at least one area, per mode.
    pub purges: [AtomicU64; 5],
    /// The same purges, per path ([`Why`]).
    pub purges_by: [AtomicU64; 6],
    /// Areas given back by purges.
    pub purged_areas: AtomicU64,
    /// Pages (with guard pages) given back by purges.
    pub purged_pages: AtomicU64,
    /// Times the armed check found `nr > lazy counter`.
    pub race_detected: AtomicU64,
    /// Lowest value of the lazy counter since the last reset.
    pub lazy_min: AtomicI64,
    /// Highest value of the lazy counter since the last reset.
    pub lazy_max: AtomicI64,
    /// Tree-lock holds of purges giving areas back (cumulative).
    pub purge_holds: AtomicU64,
    /// Most areas given back in one tree-lock hold since the last reset
    /// ([`Lazy::reset_extremes`]); an extreme like `lazy_min`/`lazy_max`.
    pub purge_hold_max_areas: AtomicU64,
    /// Allocations (mode `nodes`) served by a node's pool / not served.
    pub pool_hits: AtomicU64,
    pub pool_misses: AtomicU64,
    /// Helper work items that gave a node's areas back (mode `nodes`).
    pub purge_helpers: AtomicU64,
    /// Pooled areas given back to the tree by pool decay (mode `nodes`).
    pub decayed_areas: AtomicU64,
    /// Tree-lock holds in which pool decay gave areas back (mode `nodes`;
    /// bounded as `purge_holds` are, and not counted in them).
    pub decay_holds: AtomicU64,
    /// Subtractions from the lazy counter made by purges: one per purge
    /// (per node in mode `nodes`), one per area with `bug per-area-sub`.
    pub purge_counter_subs: AtomicU64,
    /// Rounds of the drain work (one per drain, more with
    /// `bug drain-loop`).
    pub drain_rounds: AtomicU64,
    /// Drains that made no progress for [`Env::drain_stuck_rounds`]
    /// rounds and gave up (the detector of `bug drain-loop`).
    pub drain_stuck: AtomicU64,
}

impl Stats {
    /// Adds these counters to `into` (all but the extremes `lazy_min`,
    /// `lazy_max` and `purge_hold_max_areas`, which describe one arena
    /// since its last [`Lazy::reset_extremes`] and do not add up).
    pub fn add_to(&self, into: &Stats) {
        let add = |a: &AtomicU64, b: &AtomicU64| {
            b.fetch_add(a.load(Relaxed), Relaxed);
        };
        add(&self.allocs, &into.allocs);
        add(&self.frees, &into.frees);
        add(&self.alloc_failures, &into.alloc_failures);
        add(&self.alloc_failures_busy, &into.alloc_failures_busy);
        for (a, b) in self.purges.iter().zip(into.purges.iter()) {
            add(a, b);
        }
        for (a, b) in self.purges_by.iter().zip(into.purges_by.iter()) {
            add(a, b);
        }
        add(&self.purged_areas, &into.purged_areas);
        add(&self.purged_pages, &into.purged_pages);
        add(&self.race_detected, &into.race_detected);
        add(&self.purge_holds, &into.purge_holds);
        add(&self.pool_hits, &into.pool_hits);
        add(&self.pool_misses, &into.pool_misses);
        add(&self.purge_helpers, &into.purge_helpers);
        add(&self.decayed_areas, &into.decayed_areas);
        add(&self.decay_holds, &into.decay_holds);
        add(&self.purge_counter_subs, &into.purge_counter_subs);
        add(&self.drain_rounds, &into.drain_rounds);
        add(&self.drain_stuck, &into.drain_stuck);
    }
}

/// The lazy-free state of one arena.
///
/// # Invariants
///
/// - `lazy_nr` equals the pages counted by frees minus the pages subtracted
///   by purges; at quiescence (no free or purge running) it equals the pages
///   of the areas in state `SLOT_LAZY`.
/// - An area is in the free tree, or in exactly one slot as busy, lazy,
///   purging or pooled, never two of these; a pooled area is in exactly one
///   node pool.
pub struct Lazy<S> {
    slots: S,
    base: u64,
    mode: AtomicU8,
    lazy_nr: AtomicI64,
    lazy_max_pages: AtomicU64,
    /// Head of the lock-free purge list (ordered mode), an `llist`.
    purge_list: AtomicU32,
    /// The range `unmap_aliases` adds to the running purge's flush, and
    /// the range that purge flushed (`u64::MAX, 0`: none); written and read
    /// with the purge lock held.
    extra: [AtomicU64; 2],
    flushed: [AtomicU64; 2],
    /// The counters.
    pub stats: Stats,
}

impl<S: Deref<Target = [AreaSlot]> + Sync> Lazy<S> {
    /// Lazy state for an arena starting at page `base`, with `slots` from
    /// [`slots_needed`].
    pub fn new(slots: S, base: u64, mode: Mode, lazy_max_pages: u64) -> Self {
        Lazy {
            slots,
            base,
            mode: AtomicU8::new(mode as u8),
            lazy_nr: AtomicI64::new(0),
            lazy_max_pages: AtomicU64::new(lazy_max_pages),
            purge_list: AtomicU32::new(NIL),
            extra: [AtomicU64::new(u64::MAX), AtomicU64::new(0)],
            flushed: [AtomicU64::new(u64::MAX), AtomicU64::new(0)],
            stats: Stats::default(),
        }
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        Mode::from_u8(self.mode.load(Relaxed))
    }

    /// Switches mode after purging everything the old mode left lazy, or
    /// refuses ([`AreasBusy`], nothing changed) while an area is allocated.
    ///
    /// Safe by construction against any allocation or free that races it.
    /// A free publishes its area in the structure of the mode it read (a
    /// flag, the purge list, a node's lazy list), and only that mode's purge
    /// finds it there: a free of the old mode that published after the
    /// switch's purge would leave its area on an old list while a purge of
    /// the new mode gives the same range back another way (a double
    /// allocation). So the switch runs only when no area can be freed: it
    /// sets [`SWITCHING`] in the mode byte, then requires `allocs == frees`.
    /// An allocation counts itself in `allocs` *before* it reads the mode
    /// byte, and fails if it sees [`SWITCHING`]; a free counts in `frees`
    /// *after* it has published. Both sides are `SeqCst` (a Dekker pair):
    /// either the allocation is counted when the switch reads `allocs`
    /// (then `allocs > frees` until its free has published, and the switch
    /// refuses), or it sees the bit (and fails). Equal counts therefore mean
    /// that every area ever allocated has been freed and published in the
    /// old mode, so the purge below takes all of them. The purge lock is
    /// held from that purge to the new mode's store, so no other purge runs
    /// between. The cost on the hot path is the `SeqCst` order of two
    /// counters that were already atomic adds (on x86 the same `lock xadd`)
    /// and one load of the mode byte, which every allocation read anyway
    /// (see [`smp_mb_after_atomic`] for what loom checks).
    pub fn set_mode<E: Env>(&self, env: &E, mode: Mode) -> Result<(), AreasBusy> {
        let _guard = env.purge_lock();
        self.mode.fetch_or(SWITCHING, SeqCst);
        smp_mb_after_atomic();
        // `allocs` first: a free is counted only after its allocation, so
        // `frees` read later cannot pass an `allocs` read earlier.
        let allocs = self.stats.allocs.load(SeqCst);
        if self.stats.frees.load(SeqCst) != allocs {
            self.mode.fetch_and(!SWITCHING, SeqCst);
            return Err(AreasBusy);
        }
        self.purge_locked(env, Why::ModeSwitch);
        self.mode.store(mode as u8, SeqCst);
        Ok(())
    }

    /// The lazy counter (`vmap_lazy_nr`), in pages.
    pub fn lazy_pages(&self) -> i64 {
        self.lazy_nr.load(Relaxed)
    }

    /// The purge threshold.
    pub fn lazy_max_pages(&self) -> u64 {
        self.lazy_max_pages.load(Relaxed)
    }

    /// Sets the purge threshold.
    pub fn set_lazy_max_pages(&self, pages: u64) {
        self.lazy_max_pages.store(pages, Relaxed);
    }

    /// Starts a new observation of the extremes: the counter's
    /// (`lazy_min`, `lazy_max`) and `purge_hold_max_areas`.
    pub fn reset_extremes(&self) {
        let v = self.lazy_nr.load(Relaxed);
        self.stats.lazy_min.store(v, Relaxed);
        self.stats.lazy_max.store(v, Relaxed);
        self.stats.purge_hold_max_areas.store(0, Relaxed);
    }

    /// Whether every position of `len` pages aligned to `align` in the
    /// arena overlaps an allocated area (state busy), so that no purge
    /// could have made room: a genuine exhaustion, not a lost race with
    /// lazy areas. One sweep of the slots, which are in address order; the
    /// slots change meanwhile, so this is a diagnosis of a failure (the
    /// `alloc_failures_busy` stat), never a decision.
    fn no_room_among_busy(&self, len: u64, align: u64) -> bool {
        let up = |p: u64| p.div_ceil(align) * align;
        let end = self.base + 2 * (self.slots.len() as u64 - 1);
        let mut cursor = up(self.base);
        if cursor + len > end {
            return false; // no position at all: too large, not exhausted
        }
        for slot in self.slots.iter() {
            if slot.state.load(Relaxed) != SLOT_BUSY {
                continue;
            }
            let s = slot.start.load(Relaxed);
            let e = s + u64::from(slot.len.load(Relaxed));
            if cursor + len <= s {
                return false;
            }
            if cursor < e {
                cursor = up(e);
            }
        }
        cursor + len > end
    }

    /// Number of areas that are allocated, lazy or being purged.
    pub fn live_areas(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| !matches!(s.state.load(Relaxed), SLOT_FREE | SLOT_POOLED))
            .count()
    }

    fn slot(&self, start: u64) -> &AreaSlot {
        &self.slots[((start - self.base) / 2) as usize]
    }

    fn track(&self, v: i64) {
        self.stats.lazy_min.fetch_min(v, Relaxed);
        self.stats.lazy_max.fetch_max(v, Relaxed);
    }

    /// A purge subtracts `nr` pages it took from the counter: one atomic
    /// on the shared cache line. (The caller counts it in
    /// `purge_counter_subs`, once per purge: a count per subtraction would
    /// double the atomics `bug per-area-sub` is there to show.)
    pub(super) fn sub_lazy(&self, nr: i64) {
        self.track(self.lazy_nr.fetch_sub(nr, AcqRel) - nr);
    }

    /// What `set_iounmap_nonlazy()` did (3ee48b6af49c, removed by
    /// c12cd77cb028): `atomic_long_set(&vmap_lazy_nr, lazy_max_pages() + 1)`,
    /// so that the next free purges. The counter then holds pages no area
    /// has; returns how many were added (negative if the counter was
    /// higher), so that the caller can take them out again
    /// ([`Self::unset_nonlazy`]).
    pub fn set_nonlazy(&self) -> i64 {
        let target = i64::try_from(self.lazy_max_pages()).unwrap_or(i64::MAX - 1) + 1;
        let mut cur = self.lazy_nr.load(Relaxed);
        loop {
            match self
                .lazy_nr
                .compare_exchange_weak(cur, target, AcqRel, Relaxed)
            {
                Ok(_) => return target - cur,
                Err(c) => cur = c,
            }
        }
    }

    /// Takes `phantom` pages, added by [`Self::set_nonlazy`], out of the
    /// counter again (a purge subtracts only what it took, so they stay
    /// there until then).
    pub fn unset_nonlazy(&self, phantom: i64) {
        self.track(self.lazy_nr.fetch_sub(phantom, AcqRel) - phantom);
    }

    /// Reserves `len` pages (guard included) aligned to `align` pages, and
    /// returns the first page. Purges synchronously and retries once when
    /// there is no space, as both 2.6.28 and 6.12 do; when timing, the
    /// synchronous purge (the wait for the purge lock included) is recorded
    /// as [`Event::AllocWait`].
    pub fn alloc<E: Env>(&self, env: &E, len: u64, align: u64) -> Option<u64> {
        // An area is at least 2 pages (one and its guard: a slot per 2
        // pages, see [`slots_needed`]) and its length is kept in a `u32`;
        // the tree takes power-of-two alignments only. Anything else is
        // refused, not truncated.
        if !(2..=u64::from(u32::MAX)).contains(&len) || !align.is_power_of_two() {
            self.stats.alloc_failures.fetch_add(1, Relaxed);
            return None;
        }
        // The mode-switch gate (see [`Self::set_mode`]): counted first,
        // then the mode byte read; uncounted again if this fails.
        self.stats.allocs.fetch_add(1, SeqCst);
        smp_mb_after_atomic();
        if self.mode.load(SeqCst) & SWITCHING != 0 {
            return self.alloc_failed();
        }
        // Mode `nodes`: this CPU's node pool first (`node_alloc()`).
        let node = self.alloc_node(env);
        let start = self
            .pool_alloc(env, node, len, align)
            .or_else(|| env.with_tree(|t| t.alloc(len, align)))
            .or_else(|| {
                let t0 = clock(env, env.timing());
                self.purge(env, Why::Exhaustion);
                since(env, Event::AllocWait, t0);
                // As 6.12's `goto retry`: this CPU's pool, then the tree.
                // The exhaustion purge decayed every pool, but a drain may
                // have refilled this one since.
                self.pool_alloc(env, node, len, align)
                    .or_else(|| env.with_tree(|t| t.alloc(len, align)))
            });
        let Some(start) = start else {
            if self.no_room_among_busy(len, align) {
                self.stats.alloc_failures_busy.fetch_add(1, Relaxed);
            }
            return self.alloc_failed();
        };
        let slot = self.slot(start);
        debug_assert_eq!(slot.state.load(Relaxed), SLOT_FREE);
        slot.start.store(start, Relaxed);
        slot.len.store(len as u32, Relaxed);
        slot.node.store(node, Relaxed);
        slot.state.store(SLOT_BUSY, Release);
        Some(start)
    }

    /// An allocation that had counted itself in `allocs` failed.
    fn alloc_failed(&self) -> Option<u64> {
        self.stats.allocs.fetch_sub(1, SeqCst);
        self.stats.alloc_failures.fetch_add(1, Relaxed);
        None
    }

    /// Lazily frees the area starting at `start`, whose pages the caller has
    /// already unmapped without a flush. Triggers a non-blocking purge when
    /// the counter passes `lazy_max_pages`.
    pub fn free<E: Env>(&self, env: &E, start: u64) {
        self.free_inner(env, start, false);
    }

    /// [`Self::free`] by a caller that holds the purge lock
    /// (`unmap_aliases` retiring blocks, as 6.12's `free_purged_blocks()`
    /// under `vmap_purge_lock`): mode `purge-lock` does not take it again,
    /// and no threshold purge runs (the caller purges next).
    pub fn free_purge_locked<E: Env>(&self, env: &E, start: u64) {
        self.free_inner(env, start, true);
    }

    fn free_inner<E: Env>(&self, env: &E, start: u64, locked: bool) {
        let slot = self.slot(start);
        debug_assert_eq!(slot.state.load(Relaxed), SLOT_BUSY);
        let pages = i64::from(slot.len.load(Relaxed));
        let mode = self.mode();
        let nr = match mode {
            Mode::Buggy | Mode::DropBugon => {
                // va->flags |= VM_LAZY_FREE; ... atomic_add(pages, &vmap_lazy_nr);
                slot.state.store(SLOT_LAZY, Release);
                env.race_window();
                self.lazy_nr.fetch_add(pages, AcqRel) + pages
            }
            Mode::PurgeLock => {
                let _guard = (!locked).then(|| env.purge_lock());
                slot.state.store(SLOT_LAZY, Release);
                env.race_window();
                self.lazy_nr.fetch_add(pages, AcqRel) + pages
            }
            Mode::Ordered => {
                let nr = self.lazy_nr.fetch_add(pages, AcqRel) + pages;
                env.race_window();
                slot.state.store(SLOT_LAZY, Relaxed);
                self.push_purge_list(start);
                nr
            }
            Mode::Nodes => {
                let nr = self.lazy_nr.fetch_add(pages, AcqRel) + pages;
                env.race_window();
                self.node_insert_lazy(env, start);
                nr
            }
        };
        self.track(nr);
        // After the area is published: the mode-switch gate (see
        // [`Self::set_mode`]).
        self.stats.frees.fetch_add(1, SeqCst);
        let max = self.lazy_max_pages();
        env.trace_free(start, nr as u64, max);
        if !locked && nr > i64::try_from(max).unwrap_or(i64::MAX) {
            // Mode `nodes` drains from a workqueue, where there is one.
            if mode != Mode::Nodes || !env.queue_drain() {
                self.purge(env, Why::Threshold);
            }
        }
    }

    /// `llist_add()` of the area's slot onto the purge list.
    fn push_purge_list(&self, start: u64) {
        let idx = ((start - self.base) / 2) as u32;
        let slot = self.slot(start);
        let mut head = self.purge_list.load(Relaxed);
        loop {
            slot.next.store(head, Relaxed);
            match self
                .purge_list
                .compare_exchange_weak(head, idx, Release, Relaxed)
            {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }

    /// Purges every lazily freed area with one TLB flush over their union.
    /// A synchronous purge (every path but [`Why::Threshold`]) waits for the
    /// purge lock; otherwise a purge already running makes this one return
    /// at once. Returns the number of areas purged.
    ///
    /// The ranges go back to the tree in holds of at most
    /// [`Env::hold_max_areas`] areas, with [`Env::resched`] between two
    /// holds. When timing ([`Env::timing`]), a purge that took areas records
    /// [`Event::Purge`] (from holding the purge lock to the end), one
    /// [`Event::PurgeFlush`] and one [`Event::PurgeHold`] per hold.
    pub fn purge<E: Env>(&self, env: &E, why: Why) -> u64 {
        let _guard = if why.sync() {
            env.purge_lock()
        } else {
            match env.purge_trylock() {
                Some(g) => g,
                None => return 0,
            }
        };
        self.purge_locked(env, why)
    }

    /// The tail of `vm_unmap_aliases()`, with the purge lock held (the
    /// caller, [`super::blocks::VmapBlocks::unmap_aliases`], holds it): a
    /// synchronous purge whose flush also covers `extra` (the blocks' dirty
    /// range), or, if nothing is lazy, a flush of `extra` alone (6.12:
    /// `if (!__purge_vmap_area_lazy(start, end, false) && flush)
    /// flush_tlb_kernel_range(start, end)`). Returns the range flushed
    /// (`u64::MAX, 0` if none).
    pub fn purge_aliases_locked<E: Env>(&self, env: &E, extra: Option<(u64, u64)>) -> (u64, u64) {
        let (s, e) = extra.unwrap_or((u64::MAX, 0));
        self.extra[0].store(s, Relaxed);
        self.extra[1].store(e, Relaxed);
        self.flushed[0].store(u64::MAX, Relaxed);
        self.flushed[1].store(0, Relaxed);
        self.purge_locked(env, Why::Aliases);
        (self.flushed[0].load(Relaxed), self.flushed[1].load(Relaxed))
    }

    /// The range `unmap_aliases` asked the running purge to flush too
    /// (none for every other caller), cleared.
    pub(super) fn take_extra(&self) -> (u64, u64) {
        (
            self.extra[0].swap(u64::MAX, Relaxed),
            self.extra[1].swap(0, Relaxed),
        )
    }

    /// The flush of a purge: `[start, end)` widened by the extra range of
    /// `unmap_aliases`, recorded; nothing if both are empty.
    pub(super) fn purge_flush<E: Env>(&self, env: &E, start: u64, end: u64, timing: bool) {
        let (xs, xe) = self.take_extra();
        let (s, e) = (start.min(xs), end.max(xe));
        if s >= e {
            return;
        }
        let t0 = clock(env, timing);
        env.flush(s, e);
        since(env, Event::PurgeFlush, t0);
        self.flushed[0].store(s, Relaxed);
        self.flushed[1].store(e, Relaxed);
    }

    /// [`Self::purge`], with the purge lock held.
    fn purge_locked<E: Env>(&self, env: &E, why: Why) -> u64 {
        env.purge_path(why);
        let timing = env.timing();
        let t0 = clock(env, timing);
        let mode = self.mode();
        if mode == Mode::Nodes {
            let areas = self.purge_nodes(env, why, timing);
            if areas > 0 {
                since(env, Event::Purge, t0);
            }
            return areas;
        }
        let batch = match mode {
            Mode::Ordered => self.take_purge_list(),
            _ => self.take_flagged(),
        };
        if batch.head == NIL {
            // Nothing lazy: unmap_aliases still flushes its range.
            self.purge_flush(env, u64::MAX, 0, timing);
            env.trace_purge(batch.start, batch.end, 0);
            return 0;
        }
        if env.wants_batches() {
            self.report_chain(env, batch.head);
        }
        if mode.check_armed() {
            // BUG_ON(nr > atomic_read(&vmap_lazy_nr));
            let lazy = self.lazy_nr.load(Acquire);
            if batch.nr > lazy {
                self.stats.race_detected.fetch_add(1, Relaxed);
                env.race(batch.nr, lazy);
            }
        }
        if mode == Mode::Ordered {
            // 6.12: flush, give the ranges back, then subtract what was taken.
            self.flush_and_release(env, &batch, timing);
            self.sub_lazy(batch.nr);
        } else {
            // 2.6.28: atomic_sub(nr, &vmap_lazy_nr) before the flush.
            self.sub_lazy(batch.nr);
            self.flush_and_release(env, &batch, timing);
        }
        let st = &self.stats;
        st.purge_counter_subs.fetch_add(1, Relaxed);
        st.purges[mode as usize].fetch_add(1, Relaxed);
        st.purges_by[why as usize].fetch_add(1, Relaxed);
        st.purged_areas.fetch_add(batch.areas, Relaxed);
        st.purged_pages.fetch_add(batch.nr as u64, Relaxed);
        env.trace_purge(batch.start, batch.end, batch.areas);
        since(env, Event::Purge, t0);
        batch.areas
    }

    /// Tells [`Env::purge_took`] of every area of the chain from `head`
    /// (the purge holds the purge lock: the chain is its own).
    pub(super) fn report_chain<E: Env>(&self, env: &E, head: u32) {
        let mut idx = head;
        while idx != NIL {
            let slot = &self.slots[idx as usize];
            env.purge_took(slot.start.load(Relaxed), u64::from(slot.len.load(Relaxed)));
            idx = slot.next.load(Relaxed);
        }
    }

    /// 2.6.28: walk every area and take the ones flagged lazy.
    fn take_flagged(&self) -> Batch {
        let mut batch = Batch::new();
        for (idx, slot) in self.slots.iter().enumerate() {
            if slot
                .state
                .compare_exchange(SLOT_LAZY, SLOT_PURGING, Acquire, Relaxed)
                .is_ok()
            {
                slot.next.store(batch.head, Relaxed);
                batch.head = idx as u32;
                batch.add(slot);
            }
        }
        batch
    }

    /// 6.12: detach the whole purge list (`llist_del_all()`).
    fn take_purge_list(&self) -> Batch {
        let mut batch = Batch::new();
        let mut idx = self.purge_list.swap(NIL, Acquire);
        batch.head = idx;
        while idx != NIL {
            let slot = &self.slots[idx as usize];
            let ok = slot
                .state
                .compare_exchange(SLOT_LAZY, SLOT_PURGING, Relaxed, Relaxed);
            debug_assert!(ok.is_ok());
            batch.add(slot);
            idx = slot.next.load(Relaxed);
        }
        batch
    }

    /// One flush over the batch's union, then its ranges back to the tree.
    ///
    /// The order is the whole point of the lazy scheme: until the flush has
    /// returned, some CPU may still translate an address of the batch to
    /// the page it mapped before, so the range must not be handed out again
    /// (the host tests and the loom model check this order).
    ///
    /// The give-back takes the tree lock once per chunk of at most
    /// [`Env::hold_max_areas`] areas, with a preemption point between
    /// chunks, so the non-preemptible work is bounded whatever the batch.
    /// An allocation between two chunks may get a range of an earlier
    /// chunk: it was flushed with the rest before the first chunk. The
    /// next link of each slot is read before the slot is freed (an
    /// allocation may reuse a freed slot as soon as the lock drops).
    fn flush_and_release<E: Env>(&self, env: &E, batch: &Batch, timing: bool) {
        self.purge_flush(env, batch.start, batch.end, timing);
        self.give_back(env, batch.head, timing, &self.stats.purge_holds);
    }

    /// Gives the chain of slots from `head` back to the tree, in holds of at
    /// most [`Env::hold_max_areas`] areas with [`Env::resched`] between two
    /// (see [`Self::flush_and_release`]); `nodes` gives back this way too.
    /// Each hold counts in `holds`: `purge_holds` for purged areas,
    /// `decay_holds` for decayed ones (mode `nodes`); only the first kind
    /// moves `purge_hold_max_areas`.
    pub(super) fn give_back<E: Env>(&self, env: &E, head: u32, timing: bool, holds: &AtomicU64) {
        let max = match env.hold_max_areas() {
            0 => u64::MAX,
            n => n as u64,
        };
        let mut idx = head;
        let mut first = true;
        while idx != NIL {
            if !first {
                env.resched();
            }
            first = false;
            let n;
            (idx, n) = env.with_tree(|tree| {
                let t0 = clock(env, timing);
                let mut idx = idx;
                let mut n = 0;
                while idx != NIL && n < max {
                    let slot = &self.slots[idx as usize];
                    idx = slot.next.load(Relaxed);
                    let (start, len) = (slot.start.load(Relaxed), slot.len.load(Relaxed));
                    slot.next.store(NIL, Relaxed);
                    slot.state.store(SLOT_FREE, Relaxed);
                    tree.free(start, u64::from(len));
                    n += 1;
                }
                since(env, Event::PurgeHold, t0);
                (idx, n)
            });
            holds.fetch_add(1, Relaxed);
            if core::ptr::eq(holds, &self.stats.purge_holds) {
                self.stats.purge_hold_max_areas.fetch_max(n, Relaxed);
            }
        }
    }
}

/// A purger's batch: a chain of slots in state `SLOT_PURGING`.
struct Batch {
    head: u32,
    areas: u64,
    /// Pages, guard pages included, as the counter counts them.
    nr: i64,
    start: u64,
    end: u64,
}

impl Batch {
    fn new() -> Self {
        Batch {
            head: NIL,
            areas: 0,
            nr: 0,
            start: u64::MAX,
            end: 0,
        }
    }

    /// Accounts for `slot`, which the caller has linked into the chain.
    fn add(&mut self, slot: &AreaSlot) {
        let (start, len) = (slot.start.load(Relaxed), u64::from(slot.len.load(Relaxed)));
        self.areas += 1;
        self.nr += len as i64;
        self.start = self.start.min(start);
        self.end = self.end.max(start + len);
    }
}
