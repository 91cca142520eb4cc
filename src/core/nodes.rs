// SPDX-License-Identifier: GPL-2.0

//! Mode `nodes`: the 6.9+ design of `mm/vmalloc.c` (Linux 6.12), per-CPU
//! vmap nodes with size-segregated pools, and a purge drained from a
//! workqueue with per-node helpers.
//!
//! # Nodes
//!
//! [`Env::nr_nodes`] nodes, one per online CPU capped at [`MAX_NODES`] (6.12's
//! `vmap_init_nodes()`: possible CPUs, capped at 128). The arena is cut into
//! [`ZONE_PAGES`]-page zones and zone `z` belongs to node `z % nodes`
//! ([`addr_to_node_id`]). An allocation records the node of the CPU it runs
//! on (`this_cpu % nodes`, 6.12's `vn_id`); a free puts the area on the lazy
//! list of that node, or of [`addr_to_node_id`] for an area allocated in
//! another mode (no `vn_id`), as `free_vmap_area_noflush()` does.
//!
//! # What each lock protects
//!
//! - A node's **lazy lock** ([`Env::with_node_lazy`], `vn->lazy.lock`): its
//!   [`NodeLazy`], the list of areas freed to it and not yet detached by a
//!   purge (with their page count and hull), and the list the running purge
//!   detached from it (`vn->purge_list`), which the purger or that node's
//!   helper takes out again to give it back.
//! - A node's **pool lock** ([`Env::with_node_pools`], `vn->pool_lock`): its
//!   [`NodePools`], [`POOL_SIZES`] lists of ready free areas, list `i`
//!   holding areas of exactly `i + 1` pages (guard page included).
//! - The **tree lock** ([`Env::with_tree`], `free_vmap_area_lock`): the
//!   global free tree, as in the other modes.
//! - The **purge mutex** ([`Env::purge_lock`], `vmap_purge_lock`): one purge
//!   at a time; it decays the pools and detaches the lazy lists of every
//!   node, and nothing but a purge (or its helpers, which it waits for) adds
//!   to a pool.
//!
//! No two of these spinlocks are ever held together. The busy bookkeeping
//! (6.12's per-node busy trees, there for `find_vmap_area()`) is the slot
//! array: one atomic state per area, found by address, no lock.
//!
//! # Free, allocation, purge
//!
//! - **Free** (`free_vmap_area_noflush()`): add the pages to the counter
//!   first (`atomic_long_add_return(&vmap_lazy_nr)`), then insert the area
//!   into the node's lazy list under its lazy lock. Past `lazy_max_pages`,
//!   queue the drain work ([`Env::queue_drain`], `schedule_work(&drain_vmap_work)`),
//!   which runs [`Lazy::drain`]; without a workqueue the free purges inline.
//! - **Allocation** (`node_alloc()`): the pool of this CPU's node for the
//!   exact size, first entry only; if it is not aligned it goes to the tail
//!   and the allocation falls back to the tree (a miss), as
//!   `node_pool_del_va()` does. Then the tree; then a synchronous purge
//!   (which decays every pool fully) and the tree again.
//! - **Purge** (`__purge_vmap_area_lazy()`), under the purge mutex: for every
//!   node, decay its pools (a quarter of each, or all of them on every path
//!   but the threshold drain, see [`Lazy::purge_nodes`]) and detach its lazy
//!   list; then **one** flush over the union of every node's hull; then give
//!   each node's areas back ([`Lazy::purge_node`], `purge_vmap_node()`): into
//!   that node's pools if the area came from a node allocation of at most
//!   [`POOL_SIZES`] pages and the pools are not being emptied
//!   (`skip_populate`), to the tree otherwise; subtract the node's pages.
//!   `clamp(lazy / lazy_max_pages, 1, busy nodes) - 1` nodes are given back by
//!   helper work items on their own CPUs, the rest inline, and the purge
//!   waits for the helpers ([`Env::run_helpers`]).
//!
//! # Why the seed's check cannot fire
//!
//! The purge still checks `BUG_ON(nr > vmap_lazy_nr)` after detaching, `nr`
//! being the pages of every detached area. Each of them was added to the
//! counter *before* it was inserted into a lazy list (so before any purge
//! could see it), and pages leave the counter only when a purge gives back
//! areas it detached; the purge mutex and the wait for the helpers make
//! every earlier purge's subtractions complete, and this purge subtracts
//! nothing before the check. So `nr <= counter` whatever a freer's
//! preemption does. Areas go back to the pools before their node's pages are
//! subtracted, so the counter may count a reused area twice for a moment,
//! never too few.
//!
//! # Flush before give-back
//!
//! A purged area becomes allocatable again, from a pool or from the tree,
//! only in [`Lazy::purge_node`], which runs after the flush over the union
//! (helpers are started after it too). Pool decay moves areas from pools to
//! the tree: they were flushed by the purge that pooled them.

use super::super::history::Bug;
use super::super::sync::{AtomicU64, Ordering::*};
use super::{AreaSlot, Env, Lazy, Mode, Why, NIL, SLOT_FREE, SLOT_LAZY, SLOT_POOLED, SLOT_PURGING};
use core::ops::Deref;

/// Most vmap nodes (6.12: 128; node ids fit a `u8`).
pub const MAX_NODES: usize = 128;
/// Pages of a zone: consecutive zones belong to consecutive nodes (6.12: 16).
pub const ZONE_PAGES: u64 = 16;
/// Sizes that have a pool, in pages with the guard page (6.12's
/// `MAX_VA_SIZE_PAGES`, 256).
pub const POOL_SIZES: usize = 256;

/// How a threshold purge decays a node's pools ([`Env::pool_decay`]; every
/// other purge empties them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolDecay {
    /// 6.12's `decay_va_pool_node()`: a quarter of each pool, rounded down,
    /// but all of a pool shorter than four: its `n_decay` starts at 0 and the
    /// loop's `if (!--n_decay) break;` wraps it instead of stopping.
    Wraps,
    /// Baoquan He's rework ("mm/vmalloc.c: optimize code in
    /// decay_va_pool_node() a little bit", v2 of 2025-04-18), whose
    /// `if (!n_decay--) break;` checks before it takes: a quarter, rounded
    /// down, so a pool shorter than four keeps every area.
    Quarter,
}

impl PoolDecay {
    /// Every choice, in knob order.
    pub const ALL: [PoolDecay; 2] = [PoolDecay::Wraps, PoolDecay::Quarter];
    /// Knob names, in the order of [`PoolDecay::ALL`].
    pub const NAMES: [&'static str; 2] = ["wraps", "quarter"];

    /// The choice at `i` of [`PoolDecay::ALL`] (the first if out of range).
    pub fn from_index(i: usize) -> PoolDecay {
        *PoolDecay::ALL.get(i).unwrap_or(&PoolDecay::Wraps)
    }

    /// Its knob name.
    pub fn name(self) -> &'static str {
        PoolDecay::NAMES[self as usize]
    }
}

/// The node of page `page` among `nodes` nodes: `(addr / zone) % nodes`.
pub fn addr_to_node_id(page: u64, nodes: usize) -> usize {
    ((page / ZONE_PAGES) % nodes.max(1) as u64) as usize
}

/// A singly linked list of slots, through `AreaSlot::next`.
#[derive(Clone, Copy, Debug)]
struct Chain {
    head: u32,
    tail: u32,
    len: u32,
}

impl Chain {
    const EMPTY: Chain = Chain {
        head: NIL,
        tail: NIL,
        len: 0,
    };

    fn take(&mut self) -> Chain {
        core::mem::replace(self, Chain::EMPTY)
    }

    fn push_back(&mut self, slots: &[AreaSlot], idx: u32) {
        slots[idx as usize].next.store(NIL, Relaxed);
        if self.tail == NIL {
            self.head = idx;
        } else {
            slots[self.tail as usize].next.store(idx, Relaxed);
        }
        self.tail = idx;
        self.len += 1;
    }

    fn push_front(&mut self, slots: &[AreaSlot], idx: u32) {
        slots[idx as usize].next.store(self.head, Relaxed);
        if self.tail == NIL {
            self.tail = idx;
        }
        self.head = idx;
        self.len += 1;
    }

    fn pop_front(&mut self, slots: &[AreaSlot]) -> Option<u32> {
        let idx = self.head;
        if idx == NIL {
            return None;
        }
        self.head = slots[idx as usize].next.load(Relaxed);
        if self.head == NIL {
            self.tail = NIL;
        }
        self.len -= 1;
        Some(idx)
    }

    /// Appends `other` (its links are kept).
    fn append(&mut self, slots: &[AreaSlot], other: Chain) {
        if other.head == NIL {
            return;
        }
        if self.tail == NIL {
            *self = other;
        } else {
            slots[self.tail as usize].next.store(other.head, Relaxed);
            self.tail = other.tail;
            self.len += other.len;
        }
    }
}

/// A node's lazy bookkeeping, behind its lazy lock (`vn->lazy`, and
/// `vn->purge_list` for the running purge).
pub struct NodeLazy {
    /// Areas freed to this node, not yet detached.
    lazy: Chain,
    /// Their pages (guard pages included) and hull.
    lazy_nr: i64,
    start: u64,
    end: u64,
    /// What the running purge detached, until it is given back.
    purge: Chain,
    /// The running purge empties the pools: purged areas go to the tree.
    skip_populate: bool,
}

impl NodeLazy {
    /// An empty node.
    pub const fn new() -> Self {
        NodeLazy {
            lazy: Chain::EMPTY,
            lazy_nr: 0,
            start: u64::MAX,
            end: 0,
            purge: Chain::EMPTY,
            skip_populate: false,
        }
    }

    /// Areas on the lazy list.
    pub fn lazy_areas(&self) -> u32 {
        self.lazy.len
    }
}

impl Default for NodeLazy {
    fn default() -> Self {
        Self::new()
    }
}

/// A node's pools, behind its pool lock (`vn->pool`).
pub struct NodePools {
    pools: [Chain; POOL_SIZES],
}

impl NodePools {
    /// Empty pools.
    pub const fn new() -> Self {
        NodePools {
            pools: [Chain::EMPTY; POOL_SIZES],
        }
    }

    /// Areas in all pools of this node.
    pub fn areas(&self) -> u64 {
        self.pools.iter().map(|p| u64::from(p.len)).sum()
    }

    /// Calls `f(start, len)` for every pooled area (for tests; `slots` are
    /// the arena's).
    pub fn for_each_area(&self, slots: &[AreaSlot], mut f: impl FnMut(u64, u64)) {
        for p in &self.pools {
            let mut idx = p.head;
            while idx != NIL {
                let s = &slots[idx as usize];
                f(s.start.load(Relaxed), u64::from(s.len.load(Relaxed)));
                idx = s.next.load(Relaxed);
            }
        }
    }
}

impl Default for NodePools {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Deref<Target = [AreaSlot]> + Sync> Lazy<S> {
    fn idx(&self, start: u64) -> u32 {
        ((start - self.base) / 2) as u32
    }

    /// The node an allocation records: this CPU's in mode `nodes`, `NIL`
    /// otherwise.
    pub(super) fn alloc_node<E: Env>(&self, env: &E) -> u32 {
        if self.mode() == Mode::Nodes {
            (env.this_cpu() % env.nr_nodes().max(1)) as u32
        } else {
            NIL
        }
    }

    /// `node_alloc()`: the first area of `node`'s pool for `len` pages, if
    /// it is aligned; a misaligned one moves to the tail (a miss).
    pub(super) fn pool_alloc<E: Env>(
        &self,
        env: &E,
        node: u32,
        len: u64,
        align: u64,
    ) -> Option<u64> {
        if node == NIL {
            return None;
        }
        let got = if (1..=POOL_SIZES as u64).contains(&len) {
            env.with_node_pools(node as usize, |p| {
                let pool = &mut p.pools[len as usize - 1];
                let idx = pool.pop_front(&self.slots)?;
                let slot = &self.slots[idx as usize];
                let start = slot.start.load(Relaxed);
                if start & align.wrapping_sub(1) == 0 {
                    debug_assert_eq!(slot.state.load(Relaxed), SLOT_POOLED);
                    debug_assert_eq!(u64::from(slot.len.load(Relaxed)), len);
                    // Taken: the allocation marks it busy.
                    slot.state.store(SLOT_FREE, Relaxed);
                    Some(start)
                } else {
                    pool.push_back(&self.slots, idx);
                    None
                }
            })
        } else {
            None
        };
        // Sizes above the largest pool have no pool to miss (6.12's
        // `node_alloc()` does not look): neither a hit nor a miss.
        if (1..=POOL_SIZES as u64).contains(&len) {
            let st = &self.stats;
            match got {
                Some(_) => st.pool_hits.fetch_add(1, Relaxed),
                None => st.pool_misses.fetch_add(1, Relaxed),
            };
        }
        got
    }

    /// The second step of a free in mode `nodes` (the count is done): the
    /// area goes on its node's lazy list.
    pub(super) fn node_insert_lazy<E: Env>(&self, env: &E, start: u64) {
        let idx = self.idx(start);
        let slot = &self.slots[idx as usize];
        let nodes = env.nr_nodes();
        let recorded = slot.node.load(Relaxed) as usize;
        let node = if recorded < nodes {
            recorded
        } else {
            addr_to_node_id(start, nodes)
        };
        let len = u64::from(slot.len.load(Relaxed));
        env.with_node_lazy(node, |nl| {
            slot.state.store(SLOT_LAZY, Relaxed);
            nl.lazy.push_back(&self.slots, idx);
            nl.lazy_nr += len as i64;
            nl.start = nl.start.min(start);
            nl.end = nl.end.max(start + len);
        });
    }

    /// Areas waiting in the pools of every node.
    pub fn pooled_areas(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.state.load(Relaxed) == SLOT_POOLED)
            .count()
    }

    /// The drain work (`drain_vmap_area_work()`): a purge that waits for
    /// the purge mutex, counted as a threshold purge, in whatever mode is
    /// current when it runs.
    ///
    /// With `bug drain-loop` it is 690467c81b1a's loop (5.18-rc1..rc2): purge,
    /// then purge again while the counter is above `lazy_max_pages()`. A
    /// purge subtracts only what it took, so pages the counter holds with
    /// no area behind them (what `set_iounmap_nonlazy()` put there,
    /// [`Lazy::set_nonlazy`]) keep it above for ever, and the work spun
    /// (c12cd77cb028). The general detector: whatever the loop, a drain
    /// that makes no progress (takes no area) for
    /// [`Env::drain_stuck_rounds`] rounds in a row gives up and counts in
    /// `drain_stuck`; with the bound 0 it spins, for the kernel's hung-task
    /// detector to see.
    pub fn drain<E: Env>(&self, env: &E) -> u64 {
        let bound = env.drain_stuck_rounds();
        let (mut total, mut idle) = (0u64, 0u64);
        loop {
            let took = {
                let _guard = env.purge_lock();
                self.purge_locked(env, Why::Threshold)
            };
            self.stats.drain_rounds.fetch_add(1, Relaxed);
            total += took;
            if env.bug() != Bug::DrainLoop {
                return total;
            }
            // Recheck if further work is required.
            let max = i64::try_from(self.lazy_max_pages()).unwrap_or(i64::MAX);
            if self.lazy_nr.load(Relaxed) <= max {
                return total;
            }
            idle = if took == 0 { idle + 1 } else { 0 };
            if bound != 0 && idle >= bound {
                self.stats.drain_stuck.fetch_add(1, Relaxed);
                return total;
            }
            env.resched();
        }
    }

    /// `__purge_vmap_area_lazy()` of 6.12, purge mutex held. Decays the
    /// pools by a quarter on the threshold path (the drain), fully on every
    /// other path: 6.12 decays fully only on exhaustion; here demand, mode
    /// switch and teardown do too, so that they leave every area in the
    /// tree, as the other modes do.
    pub(super) fn purge_nodes<E: Env>(&self, env: &E, why: Why, timing: bool) -> u64 {
        let full = why != Why::Threshold;
        let nodes = env.nr_nodes();
        let (mut areas, mut nr, mut start, mut end) = (0u64, 0i64, u64::MAX, 0u64);
        let mut busy = [0u64; MAX_NODES / 64];
        let mut nr_busy = 0u64;
        for node in 0..nodes {
            self.decay_pools(env, node, full);
            let (n, pages, s, e) = env.with_node_lazy(node, |nl| {
                debug_assert_eq!(nl.purge.len, 0, "a purge left a node's purge list behind");
                nl.skip_populate = full;
                let chain = nl.lazy.take();
                nl.purge = chain;
                let r = (chain.len, nl.lazy_nr, nl.start, nl.end);
                (nl.lazy_nr, nl.start, nl.end) = (0, u64::MAX, 0);
                r
            });
            if n == 0 {
                continue;
            }
            busy[node / 64] |= 1 << (node % 64);
            nr_busy += 1;
            areas += u64::from(n);
            nr += pages;
            start = start.min(s);
            end = end.max(e);
        }
        if nr_busy == 0 {
            // Nothing lazy: unmap_aliases still flushes its range.
            self.purge_flush(env, u64::MAX, 0, timing);
            env.trace_purge(u64::MAX, 0, 0);
            return 0;
        }
        if env.wants_batches() {
            for node in (0..nodes).filter(|&n| busy[n / 64] & (1 << (n % 64)) != 0) {
                let head = env.with_node_lazy(node, |nl| nl.purge.head);
                self.report_chain(env, head);
            }
        }
        // BUG_ON(nr > atomic_read(&vmap_lazy_nr)): armed, cannot fire (see
        // the module documentation).
        let lazy = self.lazy_nr.load(Acquire);
        if nr > lazy {
            self.stats.race_detected.fetch_add(1, Relaxed);
            env.race(nr, lazy);
        }
        self.purge_flush(env, start, end, timing);
        // One extra worker per lazy_max_pages() full set, minus one.
        let per = self.lazy_max_pages().max(1);
        let sets = u64::try_from(self.lazy_nr.load(Relaxed)).unwrap_or(0) / per;
        let nr_helpers = (sets.clamp(1, nr_busy) - 1) as usize;
        let (mut ids, mut n) = ([0u8; MAX_NODES], 0);
        for node in (0..nodes).filter(|&n| busy[n / 64] & (1 << (n % 64)) != 0) {
            ids[n] = node as u8;
            n += 1;
        }
        let (helpers, inline) = ids[..n].split_at(nr_helpers);
        let spawned = env.run_helpers(helpers, inline, &|node| {
            self.purge_node(env, node);
        });
        let st = &self.stats;
        st.purge_helpers.fetch_add(spawned, Relaxed);
        st.purges[Mode::Nodes as usize].fetch_add(1, Relaxed);
        st.purges_by[why as usize].fetch_add(1, Relaxed);
        st.purged_areas.fetch_add(areas, Relaxed);
        st.purged_pages.fetch_add(nr as u64, Relaxed);
        env.trace_purge(start, end, areas);
        areas
    }

    /// `purge_vmap_node()`: gives back what the running purge detached from
    /// `node` (after its flush), into the node's pools or the tree, then
    /// subtracts its pages. Called by the purge itself or by the node's
    /// helper work item. Returns the number of areas.
    pub fn purge_node<E: Env>(&self, env: &E, node: usize) -> u64 {
        let (chain, skip) = env.with_node_lazy(node, |nl| (nl.purge.take(), nl.skip_populate));
        let nodes = env.nr_nodes();
        let mut to_tree = Chain::EMPTY;
        let mut nr = 0i64;
        let per_area = env.bug() == Bug::PerAreaSub;
        let mut idx = chain.head;
        while idx != NIL {
            let slot = &self.slots[idx as usize];
            let next = slot.next.load(Relaxed);
            let ok = slot
                .state
                .compare_exchange(SLOT_LAZY, SLOT_PURGING, Relaxed, Relaxed);
            debug_assert!(ok.is_ok(), "an area purged twice");
            let len = u64::from(slot.len.load(Relaxed));
            nr += len as i64;
            if per_area {
                // 6.9: atomic_long_sub(nr, &vmap_lazy_nr) for every area.
                self.sub_lazy(len as i64);
            }
            let poolable =
                !skip && (slot.node.load(Relaxed) as usize) < nodes && len as usize <= POOL_SIZES;
            if poolable {
                env.with_node_pools(node, |p| {
                    slot.state.store(SLOT_POOLED, Relaxed);
                    p.pools[len as usize - 1].push_front(&self.slots, idx);
                });
            } else {
                to_tree.push_back(&self.slots, idx);
            }
            idx = next;
        }
        if !per_area {
            // 409faf8c97d5: once per node.
            self.sub_lazy(nr);
        }
        let subs = if per_area { u64::from(chain.len) } else { 1 };
        self.stats.purge_counter_subs.fetch_add(subs, Relaxed);
        self.give_to_tree(env, to_tree, &self.stats.purge_holds);
        u64::from(chain.len)
    }

    /// `decay_va_pool_node()`: moves pooled areas of `node` to the tree,
    /// all of them when `full`, else a quarter of each pool, rounded down,
    /// and with [`PoolDecay::Wraps`] (6.12) all of a pool shorter than four.
    /// In bounded holds of the pool lock: a whole pool is taken in
    /// O(1), but a quarter is popped one area at a time, at most
    /// [`Env::hold_max_areas`] per hold (6.12 pops a quarter in one hold),
    /// with [`Env::resched`] between two holds. A pool's quarter is fixed
    /// when its decay begins.
    fn decay_pools<E: Env>(&self, env: &E, node: usize, full: bool) {
        let bound = match env.hold_max_areas() {
            0 => u32::MAX,
            n => n.min(u32::MAX as usize) as u32,
        };
        let wraps = env.pool_decay() == PoolDecay::Wraps;
        // The pool being decayed, and what is left of its quarter.
        let mut next = 0usize;
        let mut left: Option<u32> = None;
        let mut first = true;
        while next < POOL_SIZES {
            if !first {
                env.resched();
            }
            first = false;
            let decay = env.with_node_pools(node, |p| {
                let mut decay = Chain::EMPTY;
                let mut budget = bound;
                while next < POOL_SIZES && budget > 0 {
                    let pool = &mut p.pools[next];
                    let quarter = match left {
                        Some(q) => q,
                        None if pool.len == 0 => 0,
                        None if full || (wraps && pool.len < 4) => {
                            decay.append(&self.slots, pool.take());
                            0
                        }
                        None => pool.len / 4,
                    };
                    let n = quarter.min(budget);
                    for _ in 0..n {
                        if let Some(idx) = pool.pop_front(&self.slots) {
                            decay.push_back(&self.slots, idx);
                        }
                    }
                    budget -= n;
                    if quarter > n {
                        left = Some(quarter - n);
                    } else {
                        left = None;
                        next += 1;
                    }
                }
                decay
            });
            if decay.len > 0 {
                self.stats
                    .decayed_areas
                    .fetch_add(u64::from(decay.len), Relaxed);
                self.give_to_tree(env, decay, &self.stats.decay_holds);
            }
        }
    }

    /// Frees every area of `chain` into the tree, in bounded holds.
    fn give_to_tree<E: Env>(&self, env: &E, chain: Chain, holds: &AtomicU64) {
        if chain.head == NIL {
            return;
        }
        // In bounded holds, as every mode's purge gives back.
        self.give_back(env, chain.head, env.timing(), holds);
    }
}
