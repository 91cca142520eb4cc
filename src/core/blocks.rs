// SPDX-License-Identifier: GPL-2.0

//! vmap blocks: the other half of lazy freeing (`vm_map_ram()`,
//! `vm_unmap_ram()`, `vm_unmap_aliases()` of 6.12's `mm/vmalloc.c`).
//!
//! Small mappings (up to [`VMAP_MAX_ALLOC`] pages) do not get an area each:
//! they are carved out of per-CPU *blocks* of [`vmap_bbmap_bits`] pages,
//! each block one lazy area of the arena, aligned to its size. `vb_alloc`
//! bumps through the first block of this CPU with room (a power of two of
//! pages, as `get_order()` rounds); a new block when none has. `vb_free`
//! (after the caller cleared the PTEs, with no flush) marks the pages
//! *dirty*: it widens the block's dirty range, `dirty_min..dirty_max`. A
//! block entirely dirty dies: its area goes to the lazy free, and the purge
//! flushes it like any other. A *fragmented* block (every page free or
//! dirty, not all dirty) can be retired early, as one lazy area, by
//! `purge_fragmented` (on exhaustion, and from `unmap_aliases` when fewer
//! than a quarter of its pages are free).
//!
//! Until then the dirty pages of a live block may still be translated by
//! some CPU. `unmap_aliases` (6.12's `_vm_unmap_aliases()`) is what makes
//! them safe: under the purge lock it walks the blocks, collects every
//! dirty range into one `[start, end)`, resets them, and purges the lazy
//! areas with a flush over the union of their ranges and that range,
//! flushing even when nothing is lazy. After it returns no CPU may
//! translate any page the vmap layer ever lazily unmapped.
//!
//! [`VbMode`] brings back the history: `free-list` walks only the blocks on
//! the per-CPU free lists (2.6.28–6.4; a fully used block is on no list, so
//! its dirty pages were never flushed: fc1e0d980037 fixed it in 6.5),
//! `no-reset` does not reset the ranges it took (6.5 before a09fad96ffb1:
//! every call flushes them again).
//!
//! Differences from 6.12, on purpose: the per-CPU free list is a flag of the
//! block (`on_free_list`), and "the first block with room" is the first by
//! index, not by list order; the per-CPU xarrays are one table indexed by
//! `addr_to_vb_idx()`, whose hash over the CPUs (`addr_to_vb_xa()`) only
//! says whose lock 6.12 would take. Each block has its own lock (the
//! environment's [`BlockEnv::with_block`]), as `vb->lock`, and each CPU's
//! queue its lock ([`BlockEnv::with_queue`], `vbq->lock`), which guards the
//! queue's free list: a block's `ON_FREE_LIST` flag changes only under the
//! lock of the queue of the block's CPU, nested in the block's lock.
//!
//! Two general detectors run in every mode ([`super::history`]): every
//! change of a free list asserts that its queue's lock is held (as
//! `lockdep_assert_held(&vbq->lock)`; `lock_violations`), and every block
//! a walk reads from the index is checked to be initialised (its CPU a
//! queue, its fields in range; `uninit_blocks`), a block found otherwise
//! being skipped. A block slot no block owns is *poisoned*, as freed slab
//! memory is, so that a block read before its fields are set shows it.

use super::history::Bug;
use super::lazy::{AreaSlot, Env, Lazy};
use super::sync::{AtomicU32, AtomicU64, Ordering::*};
use core::ops::Deref;

/// Largest `vm_map_ram()` served by a block (6.12: `BITS_PER_LONG`).
pub const VMAP_MAX_ALLOC: u64 = 64;
/// Words of a block's used map (1024 pages at most).
const MAP_WORDS: usize = 16;

/// 6.12's `VMAP_BBMAP_BITS`: pages per block, from the arena's size (in
/// place of `VMALLOC_SPACE`) and `NR_CPUS`: at least 16 blocks per CPU,
/// clamped to `[2 * VMAP_MAX_ALLOC, 1024]`.
pub fn vmap_bbmap_bits(arena_pages: u64, nr_cpus: u64) -> u64 {
    (arena_pages / nr_cpus.max(1).next_power_of_two() / 16).clamp(2 * VMAP_MAX_ALLOC, 1024)
}

/// Which blocks `unmap_aliases` walks, and whether it resets what it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VbMode {
    /// 6.5+: every block (6.12 walks the per-CPU xarrays).
    AllBlocks = 0,
    /// 2.6.28–6.4: only blocks on a free list; a full block is skipped.
    FreeList = 1,
    /// 6.5 before a09fad96ffb1: every block, dirty ranges never reset.
    NoReset = 2,
}

impl VbMode {
    /// Every mode, in the order of the `vb_mode` knob.
    pub const ALL: [VbMode; 3] = [VbMode::AllBlocks, VbMode::FreeList, VbMode::NoReset];

    /// The knob's name of the mode.
    pub fn name(self) -> &'static str {
        ["all-blocks", "free-list", "no-reset"][self as usize]
    }
}

/// One block (`struct vmap_block`). Its fields change only under the
/// block's lock; the unlocked reads (`free`, `flags`) are hints, as 6.12's
/// `READ_ONCE(vb->free)`.
pub struct BlockSlot {
    /// First page of the block's area (meaningful while live).
    start: AtomicU64,
    free: AtomicU64,
    dirty: AtomicU64,
    dirty_min: AtomicU64,
    dirty_max: AtomicU64,
    /// The CPU whose queue holds the block (`vb->cpu`).
    cpu: AtomicU32,
    /// `LIVE`, `ON_FREE_LIST`.
    flags: AtomicU32,
    used: [AtomicU64; MAP_WORDS],
}

/// The CPU of a slot no block owns (slab poison: `POISON_FREE` bytes).
const POISON_CPU: u32 = 0x6b6b_6b6b;
/// `free` and `dirty` of a slot no block owns.
const POISON_PAGES: u64 = 0x6b6b_6b6b_6b6b_6b6b;

const LIVE: u32 = 1;
const ON_FREE_LIST: u32 = 2;
/// The block has died (all dirty, or retired) and its area is on its way
/// to the lazy free: `unmap_aliases` flushes its whole range meanwhile.
const DYING: u32 = 4;

impl BlockSlot {
    /// An unused block slot.
    pub fn new() -> Self {
        BlockSlot {
            start: AtomicU64::new(0),
            free: AtomicU64::new(POISON_PAGES),
            dirty: AtomicU64::new(POISON_PAGES),
            dirty_min: AtomicU64::new(0),
            dirty_max: AtomicU64::new(0),
            cpu: AtomicU32::new(POISON_CPU),
            flags: AtomicU32::new(0),
            used: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// The words of `used` that pages `[off, off + n)` fall in, each with
    /// its mask (at most two words: `n` is at most 64).
    fn used_words(off: u64, n: u64) -> impl Iterator<Item = (usize, u64)> {
        let end = off + n;
        let mut p = off;
        core::iter::from_fn(move || {
            if p >= end {
                return None;
            }
            let w = p / 64;
            let (lo, hi) = (p % 64, (end - w * 64).min(64));
            p = w * 64 + hi;
            Some((w as usize, (u64::MAX >> (64 - (hi - lo))) << lo))
        })
    }

    /// Whether every page of `[off, off + n)` is handed out and not freed.
    fn all_used(&self, off: u64, n: u64) -> bool {
        Self::used_words(off, n).all(|(w, m)| self.used[w].load(Relaxed) & m == m)
    }

    /// Poisons the fields a new block sets (the slot is no block's).
    fn poison(&self) {
        self.cpu.store(POISON_CPU, Relaxed);
        self.free.store(POISON_PAGES, Relaxed);
        self.dirty.store(POISON_PAGES, Relaxed);
    }

    /// Marks pages `[off, off + n)` handed out (`on`) or freed.
    fn set_used(&self, off: u64, n: u64, on: bool) {
        for (w, m) in Self::used_words(off, n) {
            if on {
                self.used[w].fetch_or(m, Relaxed);
            } else {
                self.used[w].fetch_and(!m, Relaxed);
            }
        }
    }
}

/// What the blocks need from their surroundings, besides [`Env`].
pub trait BlockEnv: Env {
    /// Runs `f` with block `idx`'s lock held (`vb->lock`, a spinlock).
    fn with_block<R>(&self, idx: usize, f: impl FnOnce() -> R) -> R;
    /// Runs `f` with CPU `q`'s queue lock held (`vbq->lock`, a spinlock,
    /// taken inside a block's lock). `q` is below [`BlockEnv::nr_queues`].
    fn with_queue<R>(&self, q: usize, f: impl FnOnce() -> R) -> R;
    /// Whether the caller holds CPU `q`'s queue lock
    /// (`lockdep_assert_held()`).
    fn queue_held(&self, q: usize) -> bool;
    /// Number of queues, one per possible CPU: every CPU [`Env::this_cpu`]
    /// returns is below it.
    fn nr_queues(&self) -> usize;
    /// Pages `[start, start + n)` were unmapped by `vb_free` and are not
    /// flushed yet (called with the block's lock held; the no-alias oracle
    /// records them). Default: nothing.
    fn vb_unmapped(&self, start: u64, n: u64) {
        let _ = (start, n);
    }
    /// An `unmap_aliases` call begins, the purge lock held, before its
    /// walk: every page [`BlockEnv::vb_unmapped`] reported until now must
    /// be flushed when it returns. Default: nothing.
    fn aliases_begin(&self) {}
    /// A block's area was asked of the lazy allocator (`new_vmap_block()`'s
    /// `alloc_vmap_area()`, which 6.12 traces): its first page, or `None`
    /// if there was no room even after purging. Default: nothing.
    fn trace_block_area(&self, start: Option<u64>, pages: u64) {
        let _ = (start, pages);
    }
}

/// Counters of the blocks.
#[derive(Default)]
pub struct BlockStats {
    pub vb_allocs: AtomicU64,
    pub vb_frees: AtomicU64,
    pub vb_alloc_failures: AtomicU64,
    pub blocks_new: AtomicU64,
    pub blocks_freed: AtomicU64,
    pub fragmented_purged: AtomicU64,
    pub aliases_calls: AtomicU64,
    /// Calls that flushed (something was dirty or lazy).
    pub aliases_flushes: AtomicU64,
    /// Dirty pages the calls' ranges covered (`dirty_max - dirty_min`,
    /// summed over the blocks).
    pub aliases_span_pages: AtomicU64,
    /// Free-list changes made without the lock of the list's queue (the
    /// detector of `bug vbq-lock`).
    pub lock_violations: AtomicU64,
    /// Blocks a walk found in the index with fields not yet set (the
    /// detector of `bug vb-publish`); skipped.
    pub uninit_blocks: AtomicU64,
}

/// The blocks of one arena.
///
/// # Invariants
///
/// A live block's area `[start, start + bits)` is an area of `lazy`, busy,
/// aligned to `bits`, and at slot `(start - base) / bits`; `free + dirty +
/// (pages in use) = bits`; the pages `0..bits - free` were handed out once
/// each since the block was made; a page is set in `used` iff handed out
/// and not freed.
pub struct VmapBlocks<S> {
    blocks: S,
    /// The arena's first page rounded down to `bits`.
    base: u64,
    bits: u64,
    /// The counters.
    pub stats: BlockStats,
}

impl<S: Deref<Target = [BlockSlot]> + Sync> VmapBlocks<S> {
    /// Blocks for an arena of `pages` pages from page `arena_base`, with
    /// `blocks` from [`Self::slots_needed`] and `bits` pages per block.
    pub fn new(blocks: S, arena_base: u64, bits: u64) -> Self {
        VmapBlocks {
            blocks,
            base: arena_base / bits * bits,
            bits,
            stats: BlockStats::default(),
        }
    }

    /// Block slots an arena of `pages` pages from `arena_base` needs.
    pub fn slots_needed(arena_base: u64, pages: u64, bits: u64) -> usize {
        ((arena_base + pages).div_ceil(bits) - arena_base / bits) as usize
    }

    /// Pages per block.
    pub fn bits(&self) -> u64 {
        self.bits
    }

    /// The slot of the block holding `page` (`addr_to_vb_idx()`); out of
    /// range below the arena. (`bits` is never 0: the division is checked
    /// only so that no panic path is generated.)
    fn idx(&self, page: u64) -> usize {
        page.wrapping_sub(self.base)
            .checked_div(self.bits)
            .unwrap_or(u64::MAX) as usize
    }

    /// `vb_alloc()`: `pages` pages (1..=[`VMAP_MAX_ALLOC`], rounded up to
    /// a power of two) from a block of this CPU; the first page, or `None`
    /// if the arena has no room for a new block even after purging.
    pub fn alloc<E: BlockEnv, A: Deref<Target = [AreaSlot]> + Sync>(
        &self,
        lazy: &Lazy<A>,
        env: &E,
        pages: u64,
    ) -> Option<u64> {
        if !(1..=VMAP_MAX_ALLOC).contains(&pages) {
            self.stats.vb_alloc_failures.fetch_add(1, Relaxed);
            return None;
        }
        let n = pages.next_power_of_two();
        let cpu = env.this_cpu() as u32;
        let got = self.blocks.iter().enumerate().find_map(|(idx, b)| {
            let hint = b.flags.load(Relaxed) == LIVE | ON_FREE_LIST
                && b.cpu.load(Relaxed) == cpu
                && b.free.load(Relaxed) >= n;
            if !hint {
                return None;
            }
            env.with_block(idx, || {
                let free = b.free.load(Relaxed);
                if b.flags.load(Relaxed) != LIVE | ON_FREE_LIST || free < n {
                    return None;
                }
                if !self.initialised(env, idx, b) {
                    return None;
                }
                let off = self.bits - free;
                b.set_used(off, n, true);
                b.free.store(free - n, Relaxed);
                if free == n {
                    // Full: off this CPU's free list, under its queue lock.
                    let q = cpu as usize;
                    env.with_queue(q, || self.list_op(env, b, q, LIVE));
                }
                Some(b.start.load(Relaxed) + off)
            })
        });
        let got = got.or_else(|| self.new_block(lazy, env, n, cpu));
        match got {
            Some(_) => self.stats.vb_allocs.fetch_add(1, Relaxed),
            None => self.stats.vb_alloc_failures.fetch_add(1, Relaxed),
        };
        got
    }

    /// `new_vmap_block()`: a block's area from the lazy allocator (on
    /// exhaustion, after retiring the fragmented blocks, as the kernel's
    /// `reclaim_and_purge_vmap_areas()` does), its first `n` pages used.
    fn new_block<E: BlockEnv, A: Deref<Target = [AreaSlot]> + Sync>(
        &self,
        lazy: &Lazy<A>,
        env: &E,
        n: u64,
        cpu: u32,
    ) -> Option<u64> {
        let start = lazy.alloc(env, self.bits, self.bits).or_else(|| {
            if self.purge_fragmented(lazy, env, true, None) == 0 {
                return None;
            }
            lazy.alloc(env, self.bits, self.bits)
        });
        env.trace_block_area(start, self.bits);
        let start = start?;
        let idx = self.idx(start);
        let b = &self.blocks[idx];
        let init = || {
            b.start.store(start, Relaxed);
            for w in &b.used {
                w.store(0, Relaxed);
            }
            b.set_used(0, n, true);
            b.free.store(self.bits - n, Relaxed);
            b.dirty.store(0, Relaxed);
            b.dirty_min.store(self.bits, Relaxed);
            b.dirty_max.store(0, Relaxed);
        };
        let publish = || {
            b.cpu.store(cpu, Relaxed);
            // On this CPU's free list, under its queue lock.
            let q = cpu as usize;
            env.with_queue(q, || self.list_op(env, b, q, LIVE | ON_FREE_LIST));
        };
        if env.bug() == Bug::VbPublish {
            // 6.10 before 3e3de7947c75: the block is initialised and put
            // into the index (xa_insert()), and only then is `vb->cpu`
            // set; meanwhile a walk of the index finds a block whose CPU
            // is garbage.
            env.with_block(idx, || {
                init();
                b.flags.store(LIVE, Relaxed);
            });
            env.race_window();
            env.with_block(idx, publish);
        } else {
            env.with_block(idx, || {
                debug_assert!(b.flags.load(Relaxed) & LIVE == 0, "a block slot in use");
                init();
                publish();
            });
        }
        self.stats.blocks_new.fetch_add(1, Relaxed);
        Some(start)
    }

    /// `vb_free()`: the `pages` pages at `page` (as passed to
    /// [`Self::alloc`]), whose PTEs the caller has cleared with no flush,
    /// become dirty; a block entirely dirty dies and its area goes to the
    /// lazy free. `false` (and nothing changed) if they were not handed out.
    pub fn free<E: BlockEnv, A: Deref<Target = [AreaSlot]> + Sync>(
        &self,
        lazy: &Lazy<A>,
        env: &E,
        page: u64,
        pages: u64,
    ) -> bool {
        if !(1..=VMAP_MAX_ALLOC).contains(&pages) || page < self.base {
            return false;
        }
        let n = pages.next_power_of_two();
        let idx = self.idx(page);
        let Some(b) = self.blocks.get(idx) else {
            return false;
        };
        let dead = env.with_block(idx, || {
            let start = b.start.load(Relaxed);
            let off = page.wrapping_sub(start);
            if b.flags.load(Relaxed) & LIVE == 0 || off + n > self.bits - b.free.load(Relaxed) {
                return None;
            }
            if !b.all_used(off, n) {
                return None;
            }
            b.set_used(off, n, false);
            env.vb_unmapped(page, n);
            b.dirty_min.fetch_min(off, Relaxed);
            b.dirty_max.fetch_max(off + n, Relaxed);
            let dirty = b.dirty.fetch_add(n, Relaxed) + n;
            if dirty == self.bits {
                debug_assert_eq!(b.free.load(Relaxed), 0);
                b.flags.store(DYING, Relaxed);
                Some(Some(start))
            } else {
                Some(None)
            }
        });
        let Some(dead) = dead else {
            return false;
        };
        self.stats.vb_frees.fetch_add(1, Relaxed);
        if let Some(start) = dead {
            self.stats.blocks_freed.fetch_add(1, Relaxed);
            self.bury(lazy, env, idx, start, false);
        }
        true
    }

    /// The end of a block's life: its area to the lazy free, then (if the
    /// slot was not made a new block meanwhile) no longer `DYING`.
    ///
    /// Between the block's death (under its lock) and the area's arrival
    /// on the lazy list, `unmap_aliases` would find neither a live block
    /// nor a lazy area, and return with the block's dirty pages unflushed:
    /// the no-alias oracle saw this here. 6.12 has the same window by
    /// reading (`vb_free()` and `purge_fragmented_block()` mark the block
    /// all dirty under `vb->lock`, `_vm_unmap_aliases()` then skips it, and
    /// `free_vmap_block()` puts its area on the lazy list only later). The
    /// `DYING` state closes it: the walk flushes a dying block's range.
    fn bury<E: BlockEnv, A: Deref<Target = [AreaSlot]> + Sync>(
        &self,
        lazy: &Lazy<A>,
        env: &E,
        idx: usize,
        start: u64,
        locked: bool,
    ) {
        if locked {
            lazy.free_purge_locked(env, start);
        } else {
            lazy.free(env, start);
        }
        env.with_block(idx, || {
            let b = &self.blocks[idx];
            if b.flags.compare_exchange(DYING, 0, Relaxed, Relaxed).is_ok() {
                b.poison();
            }
        });
    }

    /// `purge_fragmented_block()` of block `idx`, its lock held: retires it
    /// if every page is free or dirty, not all dirty, and (unless `force`)
    /// fewer than a quarter are free, taking it off its CPU's free list.
    /// Returns its start if retired.
    ///
    /// With `bug vbq-lock` it takes the lock of the queue whose index holds
    /// the block (6.9–6.10: the caller's `vbq`, which since the per-CPU
    /// xarrays of 062eacf57ad9 is `addr_to_vb_xa()`'s, a hash of the
    /// address), not of the block's CPU (8c61291fd850).
    fn retire_fragmented<E: BlockEnv>(&self, env: &E, b: &BlockSlot, force: bool) -> Option<u64> {
        let (free, dirty) = (b.free.load(Relaxed), b.dirty.load(Relaxed));
        if b.flags.load(Relaxed) & LIVE == 0 || free + dirty != self.bits || dirty == self.bits {
            return None;
        }
        if !(force || free < self.bits / 4) {
            return None;
        }
        b.free.store(0, Relaxed);
        b.dirty.store(self.bits, Relaxed);
        let own = b.cpu.load(Relaxed) as usize;
        let locked = match env.bug() {
            Bug::VbqLock => self.xa_queue(env, b.start.load(Relaxed)),
            _ => own,
        };
        env.with_queue(locked, || self.list_op(env, b, own, DYING));
        Some(b.start.load(Relaxed))
    }

    /// The queue whose per-CPU index holds the block at `start`
    /// (`addr_to_vb_xa()`: the block's number modulo the CPUs).
    fn xa_queue<E: BlockEnv>(&self, env: &E, start: u64) -> usize {
        // (Checked: no panic path, as in `idx`.)
        let block = start.checked_div(self.bits).unwrap_or(0);
        block.checked_rem(env.nr_queues() as u64).unwrap_or(0) as usize
    }

    /// A change of block `b`'s free-list membership on CPU `q`'s queue
    /// (its flags become `flags`), with the detector: the caller must hold
    /// that queue's lock (`lockdep_assert_held(&vbq->lock)`).
    fn list_op<E: BlockEnv>(&self, env: &E, b: &BlockSlot, q: usize, flags: u32) {
        if !env.queue_held(q) {
            self.stats.lock_violations.fetch_add(1, Relaxed);
        }
        b.flags.store(flags, Relaxed);
    }

    /// Whether live block `idx`, read from the index with its lock held,
    /// is initialised: its CPU is a queue, its area is the slot's, its
    /// counts fit the block. Counts `uninit_blocks` if not.
    fn initialised<E: BlockEnv>(&self, env: &E, idx: usize, b: &BlockSlot) -> bool {
        let start = b.start.load(Relaxed);
        let ok = (b.cpu.load(Relaxed) as usize) < env.nr_queues()
            && start.checked_rem(self.bits) == Some(0)
            && self.idx(start) == idx
            && b.free.load(Relaxed).saturating_add(b.dirty.load(Relaxed)) <= self.bits;
        if !ok {
            self.stats.uninit_blocks.fetch_add(1, Relaxed);
        }
        ok
    }

    /// `purge_fragmented_blocks_allcpus()` (the blocks on a free list), or
    /// with `walk` the blocks [`Self::unmap_aliases`] walks: retires the
    /// fragmented ones into the lazy free. Returns how many.
    fn purge_fragmented<E: BlockEnv, A: Deref<Target = [AreaSlot]> + Sync>(
        &self,
        lazy: &Lazy<A>,
        env: &E,
        force: bool,
        mut range: Option<(&mut u64, &mut u64, VbMode)>,
    ) -> u64 {
        // With a range, the caller (`unmap_aliases`) holds the purge lock.
        let locked = range.is_some();
        let mut retired = 0;
        for (idx, b) in self.blocks.iter().enumerate() {
            let walk = match range {
                Some((_, _, VbMode::FreeList)) | None => ON_FREE_LIST,
                Some(_) => LIVE | DYING,
            };
            // The exhaustion path reads the flags unlocked first, as 6.12's
            // purge_fragmented_blocks() reads vb->free and vb->dirty; the
            // aliases walk takes every block's lock, as _vm_unmap_aliases()
            // does: an unlocked read need not see a vb_free that completed
            // before the call (loom found one: a new block's first free,
            // skipped as a block not yet made).
            if range.is_none() && b.flags.load(Relaxed) & walk == 0 {
                continue;
            }
            let dead = env.with_block(idx, || {
                if b.flags.load(Relaxed) & walk == 0 {
                    return None;
                }
                if b.flags.load(Relaxed) & LIVE != 0 && !self.initialised(env, idx, b) {
                    return None;
                }
                if let Some(s) = self.retire_fragmented(env, b, force) {
                    return Some(s);
                }
                let (start, end, mode) = range.as_mut()?;
                if b.flags.load(Relaxed) == DYING {
                    let s = b.start.load(Relaxed);
                    **start = (**start).min(s);
                    **end = (**end).max(s + self.bits);
                    return None;
                }
                let (dmin, dmax) = (b.dirty_min.load(Relaxed), b.dirty_max.load(Relaxed));
                if b.flags.load(Relaxed) & LIVE != 0
                    && dmax > 0
                    && b.dirty.load(Relaxed) != self.bits
                {
                    let s = b.start.load(Relaxed);
                    **start = (**start).min(s + dmin);
                    **end = (**end).max(s + dmax);
                    self.stats
                        .aliases_span_pages
                        .fetch_add(dmax - dmin, Relaxed);
                    if *mode != VbMode::NoReset {
                        b.dirty_min.store(self.bits, Relaxed);
                        b.dirty_max.store(0, Relaxed);
                    }
                }
                None
            });
            if let Some(start) = dead {
                retired += 1;
                self.stats.fragmented_purged.fetch_add(1, Relaxed);
                // Its pages are unmapped (in use: none; free: never mapped
                // since the block was made; dirty: cleared by vb_free).
                self.bury(lazy, env, idx, start, locked);
            }
        }
        retired
    }

    /// `vm_unmap_aliases()`: under the purge lock, the dirty range of every
    /// block walked by `mode` (fragmented blocks retired, as
    /// `purge_fragmented_block(.., false)`), then a synchronous purge of
    /// the lazy areas whose flush covers that range too, and a flush of
    /// the range alone if nothing was lazy. Returns the range flushed
    /// (`u64::MAX, 0` if none).
    pub fn unmap_aliases<E: BlockEnv, A: Deref<Target = [AreaSlot]> + Sync>(
        &self,
        lazy: &Lazy<A>,
        env: &E,
        mode: VbMode,
    ) -> (u64, u64) {
        let _guard = env.purge_lock();
        env.aliases_begin();
        self.stats.aliases_calls.fetch_add(1, Relaxed);
        let (mut start, mut end) = (u64::MAX, 0u64);
        self.purge_fragmented(lazy, env, false, Some((&mut start, &mut end, mode)));
        let extra = (start < end).then_some((start, end));
        let (s, e) = lazy.purge_aliases_locked(env, extra);
        if s < e {
            self.stats.aliases_flushes.fetch_add(1, Relaxed);
        }
        (s, e)
    }

    /// Live blocks.
    pub fn live_blocks(&self) -> usize {
        self.blocks
            .iter()
            .filter(|b| b.flags.load(Relaxed) & LIVE != 0)
            .count()
    }

    /// Dirty pages of the live blocks (not yet flushed or not, as counted
    /// by `vb_free`).
    pub fn dirty_pages(&self) -> u64 {
        self.blocks
            .iter()
            .filter(|b| b.flags.load(Relaxed) & LIVE != 0)
            .map(|b| b.dirty.load(Relaxed))
            .filter(|&d| d <= self.bits)
            .sum()
    }

    /// Retires every live block whose pages are all free or dirty (none in
    /// use), forced: for teardown. Returns how many.
    pub fn retire_unused<E: BlockEnv, A: Deref<Target = [AreaSlot]> + Sync>(
        &self,
        lazy: &Lazy<A>,
        env: &E,
    ) -> u64 {
        let mut n = 0;
        for (idx, b) in self.blocks.iter().enumerate() {
            let dead = env.with_block(idx, || {
                let (free, dirty) = (b.free.load(Relaxed), b.dirty.load(Relaxed));
                if b.flags.load(Relaxed) & LIVE == 0 || !self.initialised(env, idx, b) {
                    return None;
                }
                if free + dirty != self.bits {
                    return None;
                }
                if b.flags.load(Relaxed) & ON_FREE_LIST != 0 {
                    let q = b.cpu.load(Relaxed) as usize;
                    env.with_queue(q, || self.list_op(env, b, q, DYING));
                } else {
                    b.flags.store(DYING, Relaxed);
                }
                Some(b.start.load(Relaxed))
            });
            if let Some(start) = dead {
                n += 1;
                self.stats.blocks_freed.fetch_add(1, Relaxed);
                self.bury(lazy, env, idx, start, false);
            }
        }
        n
    }
}
