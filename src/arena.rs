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
//! quarantined (`lv_quarantine_*` in the shim), so a write through a stale
//! translation lands in a page nobody else owns; the quarantine is drained,
//! after a full flush on every CPU, when `flush` goes back on, at arena
//! replacement and at unload, and when it holds more than an eighth of RAM.

use crate::knobs::{Knobs, OnRace};
use crate::lazy_core::freetree::{nodes_needed, FreeTree, Node};
use crate::lazy_core::lazy::{slots_needed, AreaSlot, Env, Lazy, Mode, Why};
use crate::pgtable::PageTable;
use crate::shim::*;
use crate::tlb;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};
use kernel::bindings;
use kernel::new_spinlock;
use kernel::prelude::*;
use kernel::sync::{Arc, SpinLock};

/// The kernel's `lazy_max_pages()` is `fls(num_online_cpus()) * 32 MiB` of
/// pages, sized for a 32 TiB vmalloc space; we cap it at a quarter of the
/// arena so that purges happen in a small one too.
pub(crate) fn default_lazy_max_pages(arena_pages: u64) -> u64 {
    // SAFETY: reads the online CPU count.
    let cpus = unsafe { lv_online_cpus() };
    let fls = u64::from(32 - cpus.leading_zeros());
    (fls * (32 << 20) / 4096).min(arena_pages / 4).max(1)
}

/// Pages allocated, mapped, unmapped and freed per batch.
const BATCH: usize = 32;

/// Counters the arena keeps besides the lazy ones.
#[derive(Default)]
pub(crate) struct ArenaStats {
    /// Pages currently mapped.
    pub(crate) mapped: AtomicI64,
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
    }
}

/// Most pages the quarantine holds before a free drains it (with its full
/// flush): an eighth of RAM, so that `flush off` runs for minutes without
/// exhausting memory, while the translations left between two drains are
/// plenty for the detector to meet.
fn quarantine_max() -> u64 {
    // SAFETY: reads the number of RAM pages.
    (unsafe { lv_totalram_pages() }) as u64 / 8
}

/// Pages freed from the quarantine since load, after their flush.
pub(crate) static QUARANTINE_FREED: AtomicU64 = AtomicU64::new(0);

/// Frees the quarantined pages after a full flush on every CPU (nothing
/// if none is quarantined); returns how many. Only the pages detached
/// before the flush are freed: their PTEs were cleared before they were
/// quarantined, so after the flush no CPU translates to them.
pub(crate) fn drain_quarantine() -> u64 {
    let mut list = core::mem::MaybeUninit::<bindings::list_head>::uninit();
    // SAFETY: initializes `list` (which does not move until the free below)
    // and moves the quarantined pages onto it.
    let n = unsafe { lv_quarantine_detach(list.as_mut_ptr()) } as u64;
    if n > 0 {
        tlb::flush_all();
        // SAFETY: the pages on `list` are ours, and no CPU translates to
        // them any more (flushed above).
        unsafe { lv_quarantine_free(list.as_mut_ptr()) };
        QUARANTINE_FREED.fetch_add(n, Relaxed);
    }
    n
}

/// See the module documentation.
#[pin_data(PinnedDrop)]
pub(crate) struct Arena {
    pt: PageTable,
    pub(crate) lazy: Lazy<KVVec<AreaSlot>>,
    #[pin]
    tree: SpinLock<FreeTree<KVVec<Node>>>,
    knobs: Arc<Knobs>,
    pub(crate) stats: ArenaStats,
    /// Negative control of the stale-TLB self-test: skip the next flush.
    skip_flush: AtomicBool,
    races_logged: AtomicU32,
}

/// Holds the static purge lock (`purge_lock` of 2.6.28, a mutex as it has
/// been since 4.9 so that it may be held across the cross-CPU flush).
pub(crate) struct PurgeGuard(());

impl Drop for PurgeGuard {
    fn drop(&mut self) {
        // SAFETY: a `PurgeGuard` exists only while the lock is held.
        unsafe { lv_purge_unlock() };
    }
}

impl Env for Arena {
    type Pool = KVVec<Node>;
    type PurgeGuard<'a> = PurgeGuard;

    fn purge_lock(&self) -> PurgeGuard {
        // SAFETY: a sleeping lock, taken from process context.
        unsafe { lv_purge_lock() };
        PurgeGuard(())
    }

    fn purge_trylock(&self) -> Option<PurgeGuard> {
        // SAFETY: as above.
        unsafe { lv_purge_trylock() }.then(|| PurgeGuard(()))
    }

    fn with_tree<R>(&self, f: impl FnOnce(&mut FreeTree<KVVec<Node>>) -> R) -> R {
        f(&mut self.tree.lock())
    }

    fn flush(&self, start: u64, end: u64) {
        let off = !self.knobs.flush.load(Relaxed);
        if self.skip_flush.swap(false, Relaxed) || off {
            self.stats.skipped_flushes.fetch_add(1, Relaxed);
            return;
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

    fn race_window(&self) {
        let us = self.knobs.race_delay_us.load(Relaxed);
        if us > 0 {
            // SAFETY: a busy wait; preemptible unless the caller holds a lock.
            unsafe { bindings::__udelay(us as _) };
        }
    }

    fn race(&self, nr: i64, lazy: i64) {
        match self.knobs.on_race() {
            OnRace::Count => {
                let n = self.races_logged.fetch_add(1, Relaxed) + 1;
                if n <= 5 || n.is_power_of_two() {
                    pr_warn!("race #{}: purge took {} lazy pages, counter says {}\n", n, nr, lazy);
                }
            }
            // SAFETY: WARN() with two numbers.
            OnRace::Warn => unsafe { lv_race_warn(nr as _, lazy as _) },
            // SAFETY: BUG(), on explicit request of `on_race=bug`.
            OnRace::Bug => unsafe { lv_race_bug(nr as _, lazy as _) },
        }
    }

    fn trace_free(&self, va_start: u64, nr_lazy: u64, nr_lazy_max: u64) {
        crate::trace::free_vmap_area_noflush(va_start, nr_lazy, nr_lazy_max);
    }

    fn trace_purge(&self, start: u64, end: u64, npurged: u64) {
        crate::trace::purge_vmap_area_lazy(start, end, npurged);
    }
}

impl Arena {
    /// An arena of `mb` MiB in `mode`.
    pub(crate) fn new(mb: u64, mode: Mode, knobs: Arc<Knobs>) -> Result<Arc<Self>> {
        let pages = mb * 256;
        let pt = PageTable::new(pages as usize)?;
        let base = pt.base_pfn();
        let mut slots = KVVec::with_capacity(slots_needed(pages), GFP_KERNEL)?;
        for _ in 0..slots_needed(pages) {
            slots.push(AreaSlot::new(), GFP_KERNEL)?;
        }
        let nodes = KVVec::from_elem(Node::default(), nodes_needed(pages), GFP_KERNEL)?;
        let tree = FreeTree::new(nodes, base, base + pages).ok_or(EINVAL)?;
        let lazy = Lazy::new(slots, base, mode, default_lazy_max_pages(pages));
        Arc::pin_init(
            try_pin_init!(Arena {
                pt,
                lazy,
                tree <- new_spinlock!(tree, "lazy_vmap_area_lock"),
                knobs,
                stats: ArenaStats::default(),
                skip_flush: AtomicBool::new(false),
                races_logged: AtomicU32::new(0),
            }),
            GFP_KERNEL,
        )
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
        crate::trace::alloc_vmap_area(start, pages + 1, align, base, base + self.pages());
        start.ok_or(ENOMEM)
    }

    /// Gives a reservation back, lazily: it is reusable after a purge.
    pub(crate) fn release(&self, start: u64) {
        self.lazy.free(self, start);
    }

    /// Maps a fresh page at each of `pages` pages from `start`, allocating
    /// them in batches with the bulk page allocator; on failure unmaps what
    /// it mapped. With `check_map`, checks that `vmalloc_to_page()` of every
    /// page returns the page just mapped (a page-table walk per page).
    pub(crate) fn map(&self, start: u64, pages: u64) -> Result {
        let check = self.knobs.check_map.load(Relaxed);
        let mut done = 0;
        while done < pages {
            let n = (pages - done).min(BATCH as u64) as usize;
            let mut batch = [core::ptr::null_mut(); BATCH];
            // SAFETY: `batch` has `n` null slots to fill.
            let got = unsafe { lv_alloc_pages_bulk(n as _, batch.as_mut_ptr()) } as usize;
            if got < n {
                // SAFETY: the first `got` slots hold pages we own.
                unsafe { lv_free_pages_bulk(batch.as_mut_ptr(), got as _) };
                self.unmap(start, done);
                return Err(ENOMEM);
            }
            for (i, &page) in batch[..n].iter().enumerate() {
                let pn = start + done + i as u64;
                // SAFETY: `pn` belongs to the caller's area, its PTE is not
                // present, and `page` is ours.
                unsafe { self.pt.map(pn, page) };
                if check {
                    // SAFETY: the address is mapped (by us, just now).
                    let seen = unsafe { bindings::vmalloc_to_page(PageTable::addr(pn) as *const _) };
                    if seen != page {
                        self.stats.map_mismatches.fetch_add(1, Relaxed);
                    }
                }
            }
            self.stats.mapped.fetch_add(n as i64, Relaxed);
            done += n as u64;
        }
        Ok(())
    }

    /// Clears the PTEs of `pages` pages from `start` with no TLB flush and
    /// frees their pages in batches (quarantines them while `flush` is off).
    pub(crate) fn unmap(&self, start: u64, pages: u64) {
        let quarantine = !self.knobs.flush.load(Relaxed);
        let mut done = 0;
        while done < pages {
            let n = (pages - done).min(BATCH as u64);
            let mut batch = [core::ptr::null_mut(); BATCH];
            let mut got = 0;
            for pn in start + done..start + done + n {
                let page = self.pt.unmap(pn);
                if !page.is_null() {
                    batch[got] = page;
                    got += 1;
                }
            }
            if quarantine {
                // SAFETY: the pages are ours, unmapped, on no list; the
                // quarantine owns them until a flush has run everywhere.
                let held = unsafe { lv_quarantine_add(batch.as_mut_ptr(), got as _) };
                self.stats.quarantined.fetch_add(got as u64, Relaxed);
                if held as u64 > quarantine_max() {
                    drain_quarantine();
                }
            } else {
                // SAFETY: the pages were ours and are no longer mapped; only
                // a stale TLB entry of an address no one touches before the
                // purge may still point at them.
                unsafe { lv_free_pages_bulk(batch.as_mut_ptr(), got as _) };
            }
            self.stats.mapped.fetch_sub(got as i64, Relaxed);
            done += n;
        }
    }

    /// Allocates and maps an area of `pages` pages (plus a guard page)
    /// aligned to `align` pages; returns its first page number. A failure
    /// part way goes back through the lazy free, like vmalloc's error path.
    pub(crate) fn alloc(&self, pages: u64, align: u64) -> Result<u64> {
        let start = self.reserve(pages, align)?;
        self.map(start, pages).inspect_err(|_| self.release(start))?;
        Ok(start)
    }

    /// Frees the area at `start` of `pages` mapped pages, lazily.
    pub(crate) fn free(&self, start: u64, pages: u64) {
        self.unmap(start, pages);
        self.release(start);
    }

    /// Purges every lazy area now, waiting for a running purge.
    pub(crate) fn purge(&self, why: Why) -> u64 {
        self.lazy.purge(self, why)
    }

    /// The page mapped at page number `pn` (its PTE), for the stale-TLB
    /// check of the stress threads.
    pub(crate) fn page_at(&self, pn: u64) -> *mut bindings::page {
        self.pt.page_at(pn)
    }

    /// Switches the lazy mode (stress must be stopped).
    pub(crate) fn set_mode(&self, mode: Mode) {
        self.lazy.set_mode(self, mode);
    }

    /// The stale-TLB test: map an area, read it on every CPU (so every TLB
    /// caches the translation), free it, purge (one flush, or none when
    /// `skip_flush`), get the same address back mapped to a new page, read it
    /// on every CPU again. Returns (CPUs, CPUs that read the new page, CPUs
    /// that still read the old page through a stale TLB entry). Stress must
    /// be stopped so the allocator hands the same address back.
    pub(crate) fn tlb_selftest(&self, skip_flush: bool) -> Result<(u32, u32, u32)> {
        const OLD: u64 = 0x6f6c_6421_6f6c_6421;
        const NEW: u64 = 0x6e65_7721_6e65_7721;
        self.purge(Why::Demand);
        let a = self.alloc(1, 1)?;
        let addr = PageTable::addr(a);
        // SAFETY: `addr` is a mapped page of our area.
        let old_page = unsafe {
            core::ptr::write_volatile(addr as *mut u64, OLD);
            bindings::vmalloc_to_page(addr as *const _)
        };
        // Keep the old page alive after the free, so a stale read shows OLD.
        // SAFETY: the page is mapped and ours.
        unsafe { lv_get_page(old_page) };
        let warm = AtomicU32::new(0);
        tlb::on_every_cpu(&|| {
            // SAFETY: mapped until the free below, which runs after this returns.
            if unsafe { core::ptr::read_volatile(addr as *const u64) } == OLD {
                warm.fetch_add(1, Relaxed);
            }
        });
        self.skip_flush.store(skip_flush, Relaxed);
        self.free(a, 1);
        self.purge(Why::Demand);
        self.skip_flush.store(false, Relaxed);
        let result = match self.alloc(1, 1) {
            Ok(b) if b == a => {
                // Write through the new page's direct map, not through
                // `addr`: this CPU may itself hold a stale entry for `addr`.
                // SAFETY: `addr` is mapped again, to a new page of ours.
                unsafe {
                    let page = bindings::vmalloc_to_page(addr as *const _);
                    core::ptr::write_volatile(lv_page_address(page) as *mut u64, NEW);
                }
                let (cpus, fresh, stale) = (AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0));
                tlb::on_every_cpu(&|| {
                    cpus.fetch_add(1, Relaxed);
                    // SAFETY: mapped; a stale entry still points at the old
                    // page, which we hold a reference on.
                    match unsafe { core::ptr::read_volatile(addr as *const u64) } {
                        NEW => fresh.fetch_add(1, Relaxed),
                        OLD => stale.fetch_add(1, Relaxed),
                        _ => 0,
                    };
                });
                self.free(b, 1);
                let cpus = cpus.into_inner();
                if warm.into_inner() != cpus {
                    Err(EIO)
                } else {
                    Ok((cpus, fresh.into_inner(), stale.into_inner()))
                }
            }
            Ok(b) => {
                self.free(b, 1);
                Err(EAGAIN)
            }
            Err(e) => Err(e),
        };
        self.purge(Why::Demand);
        // Leave no stale entry behind, whatever the test did.
        tlb::flush_all();
        drain_quarantine();
        // SAFETY: drops the reference taken above; the page is unmapped.
        unsafe { lv_put_page(old_page) };
        result
    }
}

#[pinned_drop]
impl PinnedDrop for Arena {
    fn drop(self: Pin<&mut Self>) {
        self.purge(Why::Teardown);
        // With `flush off` the purge skipped its flush: the drain flushes.
        drain_quarantine();
        let live = self.lazy.live_areas();
        if live != 0 {
            // Cannot happen: stress threads are stopped before an arena is
            // dropped. PageTable's drop still frees any page left mapped.
            pr_err!("arena dropped with {} live areas\n", live);
        }
    }
}
