//! Host tests of the vmap blocks (`src/core/blocks.rs`): `vm_map_ram()`'s per-CPU blocks,
//! `vm_unmap_ram()`'s dirty ranges and `vm_unmap_aliases()`, against a model.
//!
//! The environment keeps what a no-alias check needs: every page `vb_free` unmapped, until a
//! flush whose range covers it *completes*. After `unmap_aliases` returns, in `all-blocks` and
//! `no-reset`, no such page may be left; in `free-list` (the 2.6.28–6.4 walk) the dirty pages of
//! a fully used block are, which is the stale-TLB bug 6.5 fixed. The tree's give-backs are checked
//! by `FlushOrder` as in the lazy tests: a block's area goes back only after its purge's flush.

mod common;
use common::{FlushOrder, Rng};
use lazy_vmap_core::blocks::{
    vmap_bbmap_bits, BlockEnv, BlockSlot, VbMode, VmapBlocks, VMAP_MAX_ALLOC,
};
use lazy_vmap_core::freetree::{nodes_needed, FreeTree, Node};
use lazy_vmap_core::history::Bug;
use lazy_vmap_core::lazy::{slots_needed, AreaSlot, Env, Lazy, Mode, NodeLazy, NodePools, Why};
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

thread_local! {
    static CPU: Cell<usize> = const { Cell::new(0) };
    /// The queue locks this thread holds (for `queue_held`, as lockdep's held locks).
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

struct TestEnv {
    purge: Mutex<()>,
    tree: Mutex<FreeTree<Vec<Node>>>,
    order: FlushOrder,
    blocks: Vec<Mutex<()>>,
    /// The per-CPU block queues' locks (`vbq->lock`).
    queues: Vec<Mutex<()>>,
    /// `Env::bug` (an index of `Bug::ALL`), and `Env::race_window`'s sleep in µs.
    bug: AtomicUsize,
    window_us: AtomicU64,
    nodes: Vec<Mutex<NodeLazy>>,
    pools: Vec<Mutex<NodePools>>,
    /// Pages `vb_free` unmapped that no completed flush has covered yet.
    unflushed: Mutex<BTreeSet<u64>>,
    flushes: Mutex<Vec<(u64, u64)>>,
}

impl Env for TestEnv {
    type Pool = Vec<Node>;
    type PurgeGuard<'a> = MutexGuard<'a, ()>;

    fn purge_lock(&self) -> MutexGuard<'_, ()> {
        self.purge.lock().unwrap()
    }
    fn purge_trylock(&self) -> Option<MutexGuard<'_, ()>> {
        self.purge.try_lock().ok()
    }
    fn with_tree<R>(&self, f: impl FnOnce(&mut FreeTree<Vec<Node>>) -> R) -> R {
        self.order.around(&mut self.tree.lock().unwrap(), f)
    }
    fn flush(&self, start: u64, end: u64) {
        assert!(start < end);
        self.flushes.lock().unwrap().push((start, end));
        self.order.flushed(start, end);
        let mut u = self.unflushed.lock().unwrap();
        let covered: Vec<u64> = u.range(start..end).copied().collect();
        for p in covered {
            u.remove(&p);
        }
    }
    fn wants_batches(&self) -> bool {
        true
    }
    fn purge_took(&self, start: u64, len: u64) {
        self.order.took(start, len);
    }
    fn race_window(&self) {
        let us = self.window_us.load(Relaxed);
        if us > 0 {
            std::thread::sleep(std::time::Duration::from_micros(us));
        }
    }
    fn race(&self, _nr: i64, _lazy: i64) {}
    fn this_cpu(&self) -> usize {
        CPU.with(|c| c.get())
    }
    fn bug(&self) -> Bug {
        Bug::from_index(self.bug.load(Relaxed))
    }
    fn nr_nodes(&self) -> usize {
        self.nodes.len()
    }
    fn with_node_lazy<R>(&self, node: usize, f: impl FnOnce(&mut NodeLazy) -> R) -> R {
        f(&mut self.nodes[node].lock().unwrap())
    }
    fn with_node_pools<R>(&self, node: usize, f: impl FnOnce(&mut NodePools) -> R) -> R {
        f(&mut self.pools[node].lock().unwrap())
    }
}

impl BlockEnv for TestEnv {
    fn with_block<R>(&self, idx: usize, f: impl FnOnce() -> R) -> R {
        let _g = self.blocks[idx].lock().unwrap();
        f()
    }
    fn with_queue<R>(&self, q: usize, f: impl FnOnce() -> R) -> R {
        let _g = self.queues[q].lock().unwrap();
        HELD.with(|h| h.borrow_mut().push(q));
        let r = f();
        HELD.with(|h| h.borrow_mut().pop());
        r
    }
    fn queue_held(&self, q: usize) -> bool {
        HELD.with(|h| h.borrow().contains(&q))
    }
    fn nr_queues(&self) -> usize {
        self.queues.len()
    }
    fn vb_unmapped(&self, start: u64, n: u64) {
        self.order.unmapped(start, n);
        self.unflushed.lock().unwrap().extend(start..start + n);
    }
}

const BASE: u64 = 0x1000;

struct Arena {
    env: TestEnv,
    lazy: Lazy<Vec<AreaSlot>>,
    vb: VmapBlocks<Vec<BlockSlot>>,
    pages: u64,
}

impl Arena {
    fn new(pages: u64, cpus: u64, mode: Mode, lazy_max: u64) -> Self {
        let bits = vmap_bbmap_bits(pages, cpus);
        let nb = VmapBlocks::<Vec<BlockSlot>>::slots_needed(BASE, pages, bits);
        Arena {
            env: TestEnv {
                purge: Mutex::new(()),
                tree: Mutex::new(
                    FreeTree::new(
                        vec![Node::default(); nodes_needed(pages)],
                        BASE,
                        BASE + pages,
                    )
                    .unwrap(),
                ),
                order: FlushOrder::default(),
                blocks: (0..nb).map(|_| Mutex::new(())).collect(),
                // Possible CPUs: the tests run "CPUs" up to 99.
                queues: (0..128).map(|_| Mutex::new(())).collect(),
                bug: AtomicUsize::new(Bug::None as usize),
                window_us: AtomicU64::new(0),
                nodes: (0..2).map(|_| Mutex::new(NodeLazy::new())).collect(),
                pools: (0..2).map(|_| Mutex::new(NodePools::new())).collect(),
                unflushed: Mutex::new(BTreeSet::new()),
                flushes: Mutex::new(Vec::new()),
            },
            lazy: Lazy::new(
                (0..slots_needed(pages)).map(|_| AreaSlot::new()).collect(),
                BASE,
                mode,
                lazy_max,
            ),
            vb: VmapBlocks::new((0..nb).map(|_| BlockSlot::new()).collect(), BASE, bits),
            pages,
        }
    }
    fn alloc(&self, n: u64) -> Option<u64> {
        self.vb.alloc(&self.lazy, &self.env, n)
    }
    fn free(&self, p: u64, n: u64) -> bool {
        self.vb.free(&self.lazy, &self.env, p, n)
    }
    fn aliases(&self, mode: VbMode) -> (u64, u64) {
        self.vb.unmap_aliases(&self.lazy, &self.env, mode)
    }
    fn unflushed(&self) -> usize {
        self.env.unflushed.lock().unwrap().len()
    }
    /// Everything back: no live block, nothing lazy, the tree whole.
    fn assert_empty(&self) {
        self.vb.retire_unused(&self.lazy, &self.env);
        self.lazy.purge(&self.env, Why::Teardown);
        assert_eq!(self.vb.live_blocks(), 0);
        assert_eq!(self.lazy.live_areas(), 0);
        assert_eq!(self.lazy.lazy_pages(), 0);
        self.env.with_tree(|t| {
            t.check().unwrap();
            assert_eq!(t.free_pages(), self.pages);
        });
    }
}

const NEVER: u64 = 1 << 40;

#[test]
fn bbmap_bits_follows_6_12() {
    // 128 GiB of vmalloc space (2^25 pages), NR_CPUS 8192 (Debian): 2^25 / 8192 / 16 = 256.
    assert_eq!(vmap_bbmap_bits(1 << 25, 8192), 256);
    // The clamps: at least 2 * VMAP_MAX_ALLOC, at most 1024.
    assert_eq!(vmap_bbmap_bits(4096, 8), 128);
    assert_eq!(vmap_bbmap_bits(1 << 30, 1), 1024);
    // This module's default arena (128 MiB) with NR_CPUS 8: 256-page blocks.
    assert_eq!(vmap_bbmap_bits(32768, 8), 256);
    // Not a power of two of CPUs: rounded up, as roundup_pow_of_two(NR_CPUS).
    assert_eq!(vmap_bbmap_bits(32768, 6), 256);
}

/// Bump allocation in one block per CPU, power-of-two rounding, a second block when the first is
/// full, another CPU's own block, bad sizes refused.
#[test]
fn alloc_bumps_through_this_cpus_blocks() {
    let a = Arena::new(4096, 8, Mode::Ordered, NEVER);
    let bits = a.vb.bits();
    assert_eq!(bits, 128);
    let p0 = a.alloc(1).unwrap();
    assert_eq!(p0 % bits, 0, "a block is aligned to its size");
    assert_eq!(a.alloc(3).unwrap(), p0 + 1, "bump");
    assert_eq!(a.alloc(1).unwrap(), p0 + 5, "3 pages take 4 (get_order)");
    CPU.with(|c| c.set(1));
    let q = a.alloc(1).unwrap();
    assert_ne!(q / bits, p0 / bits, "CPU 1 has its own block");
    CPU.with(|c| c.set(0));
    assert_eq!(a.vb.live_blocks(), 2);
    // Fill CPU 0's block: 122 pages left; 64 + 32 + 16 + 8 + 2 = 122.
    for n in [64, 32, 16, 8, 2] {
        assert!(a.alloc(n).unwrap() / bits == p0 / bits);
    }
    let r = a.alloc(1).unwrap();
    assert_ne!(r / bits, p0 / bits, "full: a new block");
    assert_eq!(a.vb.live_blocks(), 3);
    for n in [0, 65, 1000] {
        assert_eq!(a.alloc(n), None, "{n} pages refused");
    }
    assert_eq!(a.vb.stats.vb_alloc_failures.load(Relaxed), 3);
}

/// `vb_free` widens the dirty range; a double free or a free of pages never handed out is
/// refused and changes nothing; a block all dirty dies into the lazy free, and its area comes
/// back only after the purge's flush (FlushOrder).
#[test]
fn free_dirties_and_a_full_dirty_block_dies() {
    let a = Arena::new(4096, 8, Mode::Ordered, NEVER);
    let bits = a.vb.bits();
    let ps: Vec<u64> = (0..bits / 8).map(|_| a.alloc(8).unwrap()).collect();
    assert_eq!(a.vb.live_blocks(), 1);
    assert!(a.free(ps[3], 8));
    assert!(!a.free(ps[3], 8), "double free refused");
    assert!(!a.free(ps[0] + bits, 8), "no block there");
    // Half freed, half in use: refused, and the half in use stays in use (a refusal that marked
    // the freed half used again would make the block never die below).
    assert!(
        !a.free(ps[2] + 4, 8),
        "a range straddling a freed mapping refused"
    );
    assert!(!a.free(ps[3], 8), "still freed");
    assert!(!a.free(ps[3], 4), "its first half still freed too");
    assert_eq!(a.vb.dirty_pages(), 8);
    for &p in ps.iter().filter(|&&p| p != ps[3]) {
        assert!(a.free(p, 8));
    }
    assert_eq!(a.vb.live_blocks(), 0, "all dirty: the block died");
    assert_eq!(a.vb.stats.blocks_freed.load(Relaxed), 1);
    assert_eq!(a.lazy.lazy_pages() as u64, bits, "its area is lazy");
    assert_eq!(a.unflushed() as u64, bits);
    assert_eq!(a.lazy.purge(&a.env, Why::Demand), 1);
    assert_eq!(a.unflushed(), 0, "the purge's flush covered the block");
    a.assert_empty();
}

/// `unmap_aliases` flushes every block's dirty range even with nothing lazy, resets it, and
/// includes the lazy areas; with `no-reset` the same range is flushed again on every call.
#[test]
fn unmap_aliases_flushes_dirty_ranges() {
    for mode in [Mode::Ordered, Mode::Nodes, Mode::Buggy] {
        let a = Arena::new(4096, 8, mode, NEVER);
        let p = a.alloc(4).unwrap();
        let q = a.alloc(4).unwrap();
        let r = a.alloc(4).unwrap();
        assert!(a.free(q, 4));
        assert_eq!(a.unflushed(), 4);
        assert_eq!(a.aliases(VbMode::AllBlocks), (q, q + 4), "{mode:?}");
        assert_eq!(a.unflushed(), 0);
        assert_eq!(
            a.aliases(VbMode::AllBlocks),
            (u64::MAX, 0),
            "reset: nothing to flush"
        );
        assert!(a.free(p, 4));
        assert_eq!(a.aliases(VbMode::NoReset), (p, p + 4));
        assert_eq!(
            a.aliases(VbMode::NoReset),
            (p, p + 4),
            "no-reset flushes it again"
        );
        let span = a.vb.stats.aliases_span_pages.load(Relaxed);
        assert_eq!(span, 4 + 4 + 4);
        assert_eq!(a.vb.stats.aliases_calls.load(Relaxed), 4);
        assert_eq!(a.vb.stats.aliases_flushes.load(Relaxed), 3);
        assert_eq!(
            a.lazy.stats.purges_by[Why::Aliases as usize].load(Relaxed),
            0,
            "nothing lazy"
        );
        assert!(a.free(r, 4));
        a.assert_empty();
    }
}

/// The 2.6.28–6.4 walk (free lists only) misses a fully used block: its dirty pages are still
/// unflushed when `unmap_aliases` returns. Today's walk (every block) flushes them.
#[test]
fn free_list_walk_misses_full_blocks() {
    for vb_mode in [VbMode::FreeList, VbMode::AllBlocks] {
        let a = Arena::new(4096, 8, Mode::Ordered, NEVER);
        let bits = a.vb.bits();
        let ps: Vec<u64> = (0..bits / 16).map(|_| a.alloc(16).unwrap()).collect();
        assert_eq!(a.vb.live_blocks(), 1, "one block, fully used");
        assert!(a.free(ps[1], 16));
        a.aliases(vb_mode);
        let left = a.unflushed();
        if vb_mode == VbMode::FreeList {
            assert_eq!(left, 16, "the full block's dirty pages were not flushed");
        } else {
            assert_eq!(left, 0);
        }
        for (i, &p) in ps.iter().enumerate() {
            if i != 1 {
                a.free(p, 16);
            }
        }
        a.assert_empty();
    }
}

/// A fragmented block (all free or dirty) with fewer than a quarter free is retired by
/// `unmap_aliases`, and by exhaustion when a new block finds no room.
#[test]
fn fragmented_blocks_are_retired() {
    let a = Arena::new(4096, 8, Mode::Ordered, NEVER);
    let bits = a.vb.bits();
    let ps: Vec<u64> = (0..(bits - 16) / 16)
        .map(|_| a.alloc(16).unwrap())
        .collect();
    for &p in &ps {
        assert!(a.free(p, 16));
    }
    // 16 free (< a quarter), the rest dirty: fragmented.
    a.aliases(VbMode::AllBlocks);
    assert_eq!(a.vb.stats.fragmented_purged.load(Relaxed), 1);
    assert_eq!(a.vb.live_blocks(), 0);
    assert_eq!(
        a.lazy.stats.purges_by[Why::Aliases as usize].load(Relaxed),
        1,
        "its area purged"
    );
    assert_eq!(a.unflushed(), 0);
    // Exhaustion: fill the arena with blocks, each with one page in use, then make one
    // fragmented: the next new block retires it and takes its space after the purge.
    let n = a.pages / bits;
    let mut one = Vec::new();
    for cpu in 0..n as usize {
        CPU.with(|c| c.set(cpu));
        one.push(a.alloc(64).unwrap());
    }
    assert_eq!(a.vb.live_blocks() as u64, n);
    CPU.with(|c| c.set(0));
    assert!(a.free(one[0], 64));
    CPU.with(|c| c.set(99));
    let got = a
        .alloc(1)
        .expect("the fragmented block is retired, its area purged and reused");
    assert_eq!(got, one[0]);
    CPU.with(|c| c.set(0));
    assert!(a.free(got, 1));
    for &p in &one[1..] {
        a.free(p, 64);
    }
    a.assert_empty();
}

/// Random vm_map_ram/vm_unmap_ram on 4 "CPUs" against a model of the pages in use, with
/// `unmap_aliases` now and then: no page handed out twice while in use, every page unmapped
/// before a call is flushed when it returns, everything back at the end, in every lazy mode.
#[test]
fn random_against_a_model() {
    for mode in [Mode::Ordered, Mode::Nodes, Mode::PurgeLock] {
        for seed in 1..4 {
            let a = Arena::new(8192, 8, mode, 512);
            let mut rng = Rng::new(seed);
            let mut live: Vec<(u64, u64)> = Vec::new();
            let mut used = BTreeSet::new();
            for _ in 0..20_000 {
                CPU.with(|c| c.set(rng.below(4) as usize));
                match rng.below(16) {
                    0 => {
                        a.aliases(VbMode::AllBlocks);
                        assert_eq!(a.unflushed(), 0, "{mode:?}: a page left unflushed");
                    }
                    1..=8 if live.len() < 200 => {
                        let n = 1 + rng.below(64);
                        let Some(p) = a.alloc(n) else { continue };
                        let r = n.next_power_of_two();
                        for q in p..p + r {
                            assert!(used.insert(q), "{mode:?}: page {q:#x} handed out twice");
                        }
                        live.push((p, n));
                    }
                    _ if !live.is_empty() => {
                        let (p, n) = live.swap_remove(rng.below(live.len() as u64) as usize);
                        assert!(a.free(p, n));
                        for q in p..p + n.next_power_of_two() {
                            used.remove(&q);
                        }
                    }
                    _ => {}
                }
            }
            for (p, n) in live {
                assert!(a.free(p, n));
            }
            a.aliases(VbMode::AllBlocks);
            assert_eq!(a.unflushed(), 0);
            a.assert_empty();
        }
    }
}

// --- The history exhibits of the blocks (`src/core/history.rs`) ---

/// Fragmented blocks of one CPU, retired by `unmap_aliases`: `lock_violations` counts the
/// free-list changes made without the lock of the block's own queue.
fn retire_fragmented_on(a: &Arena, cpu: usize) -> u64 {
    CPU.with(|c| c.set(cpu));
    let bits = a.vb.bits();
    // Two blocks of this CPU, each all free or dirty but a few pages free: fragmented. (A
    // 16-page mapping does not fit the first block's last 8 pages: it starts the second.)
    let mut ps: Vec<(u64, u64)> = (0..(bits - 8) / 8)
        .map(|_| (a.alloc(8).unwrap(), 8))
        .collect();
    ps.extend((0..(bits - 16) / 16).map(|_| (a.alloc(16).unwrap(), 16)));
    for &(p, n) in &ps {
        assert!(a.free(p, n));
    }
    CPU.with(|c| c.set(0));
    a.aliases(VbMode::AllBlocks);
    assert_eq!(a.vb.stats.fragmented_purged.load(Relaxed), 2);
    a.vb.stats.lock_violations.load(Relaxed)
}

/// `bug vbq-lock` (6.5–6.9, fixed by 8c61291fd850): `purge_fragmented_block()` took the lock of
/// the queue whose index held the block (a hash of its address), not of the block's CPU; the
/// general detector (`lockdep_assert_held` of the list's queue) sees it. Today: none.
#[test]
fn history_vbq_lock_is_caught() {
    for (bug, caught) in [(Bug::None, false), (Bug::VbqLock, true)] {
        let a = Arena::new(4096, 8, Mode::Ordered, NEVER);
        a.env.bug.store(bug as usize, Relaxed);
        // CPU 5's blocks sit at indexes whose hash is some other queue (128 queues, 32 blocks).
        let v = retire_fragmented_on(&a, 5);
        assert_eq!(v > 0, caught, "{bug:?}: {v} lock violations");
        a.assert_empty();
    }
}

/// `bug vb-publish` (6.10, fixed by 3e3de7947c75): a new block is in the index before its CPU is
/// set; an `unmap_aliases` meanwhile reads a block of garbage. The detector validates every
/// block a walk reads and skips it (`uninit_blocks`); today none is ever seen.
#[test]
fn history_vb_publish_is_caught() {
    for (bug, caught) in [(Bug::None, false), (Bug::VbPublish, true)] {
        let a = Arena::new(4096, 8, Mode::Ordered, NEVER);
        a.env.bug.store(bug as usize, Relaxed);
        a.env.window_us.store(2000, Relaxed);
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(Relaxed) {
                    a.aliases(VbMode::AllBlocks);
                }
            });
            // New blocks, each with a 2 ms window between publication and its CPU.
            let ps: Vec<u64> = (0..8).map(|_| a.alloc(VMAP_MAX_ALLOC).unwrap()).collect();
            done.store(true, Relaxed);
            for p in ps {
                assert!(a.free(p, VMAP_MAX_ALLOC));
            }
        });
        let n = a.vb.stats.uninit_blocks.load(Relaxed);
        assert_eq!(n > 0, caught, "{bug:?}: {n} uninitialised blocks seen");
        a.assert_empty();
    }
}
