// SPDX-License-Identifier: GPL-2.0

//! The arena's range of kernel virtual space, its page-table entries, and
//! the pages mapped there.
//!
//! 6.12 exports neither `init_mm` nor `get_vm_area()`, so a module cannot
//! walk or populate kernel page tables with the core helpers. What it can
//! do: `vmap()` one dummy page N times. That reserves N pages of vmalloc
//! space (plus vmalloc's own guard page) and makes the kernel allocate every
//! page-table level down to the PTEs. `lookup_address()` then walks init_mm's
//! page tables to each 4K PTE, which we keep: from then on the range is ours.
//! We clear every PTE and flush, so free space is unmapped, and point the
//! PTEs at real pages as areas are mapped. At drop every PTE is pointed back
//! at the dummy page, as `vmap()` left it, and `vunmap()` returns the range.
//!
//! Ownership, in types: [`PageTable::map`] allocates the pages itself and
//! returns a [`Mapped`] token for the range; the token is the only way to
//! touch the range's memory (through the area's address, or through the
//! direct map of a page, [`PageView`]) and [`PageTable::unmap`] consumes it.
//! So safe code can neither map a page it does not own nor free one it
//! did not map.
//!
//! Flush before reuse, in types: `unmap` clears PTEs *without* a flush
//! (that is the point of lazy freeing) and frees the pages, so a CPU may
//! still translate the range to them until a flush has run everywhere.
//! It therefore returns a [`Stale`] token, not a free range, and
//! [`PageTable::map`] takes only an [`Unmapped`] one: a range no CPU
//! translates. A `Stale` becomes `Unmapped` again only through a flush,
//! and what no type here can know about that flush is the precondition of
//! an `unsafe fn`: [`Unmapped::new`] (the lazy allocator gives a range back
//! only after the purge's flush covering it has run on every CPU, an order
//! the host tests and loom check) and [`Stale::flush_local`] (only this CPU
//! touched the range, and the caller cannot migrate). So the sequence `map`,
//! `write_words`, `unmap`, `map` of the same range again, `write_words`,
//! which wrote a freed page through a stale entry in safe code, no longer
//! compiles: the second `map` needs an `Unmapped`, and the `Stale` from
//! `unmap` is not one. The stress threads check the rest at run time
//! (`stale_tlb`). With the negative control
//! (`flush off`) the pages are quarantined instead of freed, so that a write
//! through a stale translation lands in a page we still own; the quarantine
//! is freed only after a full flush on every CPU ([`drain_quarantine`]).
//!
//! # Invariants
//!
//! `ptes[i]` is the 4K PTE of `base + i * PAGE_SIZE` in init_mm; it stays
//! valid until `vunmap()` in `drop` (the kernel never frees the page tables
//! of the vmalloc space). A present PTE maps a page allocated by `map` and
//! owned by the table; every present PTE is covered by exactly one live
//! [`Mapped`] of this table, and `mapped` counts them.

use super::{cpu, ffi, tlb};
use core::marker::PhantomData;
use core::sync::atomic::{
    AtomicI64, AtomicU32, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};
use kernel::bindings;
use kernel::ffi::c_ulong;
use kernel::page::{Page, PAGE_SHIFT, PAGE_SIZE};
use kernel::prelude::*;

/// Pages allocated, mapped, unmapped and freed per batch.
const BATCH: usize = 32;

/// Kernel virtual address of page number `pn`.
pub(crate) fn addr(pn: u64) -> usize {
    (pn as usize) << PAGE_SHIFT
}

/// Flushes the whole TLB of every online CPU.
pub(crate) fn flush_all_cpus() {
    cpu::on_each(&tlb::flush_all);
}

/// The arena's range and the PTEs behind it.
pub(crate) struct PageTable {
    base: usize,
    ptes: KVVec<usize>,
    dummy: Page,
    /// Pages currently mapped (present PTEs).
    mapped: AtomicI64,
}

// SAFETY: the PTE pointers are plain addresses into init_mm's page tables,
// valid from any CPU; concurrent callers touch disjoint PTEs (each present
// PTE belongs to one `Mapped`, and `map` takes non-present ones only from a
// range its caller reserved).
unsafe impl Send for PageTable {}
// SAFETY: as above.
unsafe impl Sync for PageTable {}

/// Pages `[start, start + pages)` of a [`PageTable`] whose PTEs are clear
/// and which no CPU translates: the only range [`PageTable::map`] accepts.
///
/// # Invariants
///
/// No CPU's TLB holds a translation of any page of the range: none was
/// mapped since a flush covering it completed on every CPU (or, for
/// [`Stale::flush_local`], on the one CPU that could have one). No other
/// live `Unmapped` or `Mapped` covers any page of it. `table` is the base
/// address of the table it belongs to.
#[must_use = "an Unmapped range is reusable space: map it or give it back"]
pub(crate) struct Unmapped {
    start: u64,
    pages: u64,
    table: usize,
}

impl Unmapped {
    /// The range `[start, start + pages)` of `table`, as the allocator that
    /// reserved it hands it out.
    ///
    /// # Safety
    ///
    /// The caller owns the range (no other live `Unmapped` or `Mapped`
    /// covers it), and no CPU translates any page of it: since its last
    /// unmap (if any), a flush covering it has completed on every CPU. The
    /// lazy allocator promises both for what it hands out (a purge gives a
    /// range back only after its flush; the host tests and loom check that
    /// order, `FlushOrder`), and so does a range never mapped since
    /// `PageTable::new`'s full flush.
    pub(crate) unsafe fn new(table: &PageTable, start: u64, pages: u64) -> Self {
        Unmapped {
            start,
            pages,
            table: table.base,
        }
    }

    /// First page number.
    pub(crate) fn start(&self) -> u64 {
        self.start
    }

    /// The first `n` pages and the rest (`None` if empty); `n` is clamped to
    /// the range.
    pub(crate) fn split(self, n: u64) -> (Unmapped, Option<Unmapped>) {
        let n = n.min(self.pages);
        let rest = (n < self.pages).then_some(Unmapped {
            start: self.start + n,
            pages: self.pages - n,
            table: self.table,
        });
        (
            Unmapped {
                start: self.start,
                pages: n,
                table: self.table,
            },
            rest,
        )
    }

    /// `self` followed by `next`, if `next` starts where `self` ends; else
    /// both back.
    pub(crate) fn join(
        self,
        next: Unmapped,
    ) -> core::result::Result<Unmapped, (Unmapped, Unmapped)> {
        if self.table == next.table && self.start + self.pages == next.start {
            Ok(Unmapped {
                start: self.start,
                pages: self.pages + next.pages,
                table: self.table,
            })
        } else {
            Err((self, next))
        }
    }

    /// Gives the token up: the range goes back to its allocator as numbers.
    pub(crate) fn into_range(self) -> (u64, u64) {
        (self.start, self.pages)
    }
}

/// A place for at most one [`Unmapped`] that threads may share (`Sync`):
/// the token goes in and out whole, so there is still only one of it. For
/// a range a thread keeps between uses (the floor's region), in a structure
/// other threads can see.
///
/// # Invariants
///
/// `state` is `FULL` exactly when `start`, `pages` and `table` are those of
/// an `Unmapped` this slot owns; `WRITING` and `READING` give one caller at a
/// time those fields.
pub(crate) struct UnmappedSlot {
    state: AtomicU32,
    start: AtomicU64,
    pages: AtomicU64,
    table: AtomicUsize,
}

const EMPTY: u32 = 0;
const WRITING: u32 = 1;
const FULL: u32 = 2;
const READING: u32 = 3;

impl UnmappedSlot {
    /// A slot holding `r`.
    pub(crate) fn new(r: Unmapped) -> Self {
        let slot = UnmappedSlot {
            state: AtomicU32::new(EMPTY),
            start: AtomicU64::new(0),
            pages: AtomicU64::new(0),
            table: AtomicUsize::new(0),
        };
        // Cannot fail: empty.
        let _ = slot.put(r);
        slot
    }

    /// Puts `r` in; gives it back if the slot is not empty.
    pub(crate) fn put(&self, r: Unmapped) -> core::result::Result<(), Unmapped> {
        if self
            .state
            .compare_exchange(EMPTY, WRITING, Acquire, Relaxed)
            .is_err()
        {
            return Err(r);
        }
        self.start.store(r.start, Relaxed);
        self.pages.store(r.pages, Relaxed);
        self.table.store(r.table, Relaxed);
        self.state.store(FULL, Release);
        Ok(())
    }

    /// Takes the token out, if there is one.
    pub(crate) fn take(&self) -> Option<Unmapped> {
        self.state
            .compare_exchange(FULL, READING, Acquire, Relaxed)
            .ok()?;
        let r = Unmapped {
            start: self.start.load(Relaxed),
            pages: self.pages.load(Relaxed),
            table: self.table.load(Relaxed),
        };
        self.state.store(EMPTY, Release);
        Some(r)
    }
}

/// Pages whose PTEs `unmap` just cleared, with no flush: a CPU may still
/// translate them to the pages they mapped, which are freed. The range can
/// be mapped again only after a flush has turned this into an [`Unmapped`]:
/// [`Stale::flush_local`], or the lazy purge (`into_lazy`, then
/// [`Unmapped::new`] once the purge's flush has run).
///
/// # Invariants
///
/// `[start, start + pages)` is a range of the table at `table` that the
/// holder owns and that some CPU may still translate.
#[must_use = "a Stale range is not reusable: flush it, or hand it to the lazy free"]
pub(crate) struct Stale {
    start: u64,
    pages: u64,
    table: usize,
}

impl Stale {
    /// Flushes the range from this CPU's TLB only and returns it reusable.
    /// With PTI (kernel entries per PCID, `invlpg` reaching only the current
    /// one) it flushes this CPU's whole TLB, every PCID.
    ///
    /// # Safety
    ///
    /// Since the range was last made `Unmapped`, only this CPU can have
    /// translated it: the caller mapped, used and unmapped it without
    /// migrating (migration disabled, [`cpu::Pinned`], across all of it),
    /// and never let the `Mapped` token or the range's address reach
    /// another thread.
    pub(crate) unsafe fn flush_local(self) -> Unmapped {
        let full = tlb::pti() || self.pages > crate::tlb::SINGLE_PAGE_CEILING;
        flush_local_range(self.start, self.start + self.pages, full);
        Unmapped {
            start: self.start,
            pages: self.pages,
            table: self.table,
        }
    }

    /// Hands the range to a lazy free as numbers. It stays out of use until
    /// a purge has flushed it: the only way back to a mapping is
    /// [`Unmapped::new`], whose caller promises that flush.
    pub(crate) fn into_lazy(self) -> (u64, u64) {
        (self.start, self.pages)
    }
}

/// Local flushes ([`Stale::flush_local`]) since load: with `invlpg` per
/// page, and of this CPU's whole TLB (always, under PTI). The PTI boot
/// asserts on them.
pub(crate) static LOCAL_FLUSHES_PAGES: AtomicU64 = AtomicU64::new(0);
pub(crate) static LOCAL_FLUSHES_FULL: AtomicU64 = AtomicU64::new(0);

/// This CPU: `invlpg` of pages `[start, end)`, or a full flush.
fn flush_local_range(start: u64, end: u64, full: bool) {
    if full {
        tlb::flush_all();
        LOCAL_FLUSHES_FULL.fetch_add(1, Relaxed);
    } else {
        (start..end).for_each(|pn| tlb::invlpg(addr(pn)));
        LOCAL_FLUSHES_PAGES.fetch_add(1, Relaxed);
    }
}

/// Pages `[start, start + pages)` of a [`PageTable`], mapped to pages the
/// table owns, for as long as this token lives.
///
/// Reading needs `&self`, writing `&mut self`: a `&Mapped` shared with
/// other CPUs (the self-test reads an area on every CPU) can only read, so
/// no two CPUs race on the area's memory.
///
/// # Invariants
///
/// Every PTE of the range is present, maps a page `map` allocated, and is
/// cleared only by `PageTable::unmap` consuming this token; `table` is the
/// base address of the table that made it. So the range's memory is mapped
/// and ours while the token lives (the table never goes away under a live
/// token: its drop leaks the range instead, see `Drop for PageTable`).
#[must_use = "dropping a Mapped leaks its pages: unmap it"]
pub(crate) struct Mapped {
    start: u64,
    pages: u64,
    table: usize,
}

impl Mapped {
    /// First page number.
    pub(crate) fn start(&self) -> u64 {
        self.start
    }

    /// Number of pages.
    pub(crate) fn pages(&self) -> u64 {
        self.pages
    }

    /// Kernel virtual address of the first page.
    pub(crate) fn addr(&self) -> usize {
        addr(self.start)
    }

    /// Writes `w.0` at the start and `w.1` at the end of page `i`, through
    /// the area's address (this CPU's translation). Panics if `i` is out of
    /// range.
    pub(crate) fn write_words(&mut self, i: u64, w: (u64, u64)) {
        assert!(i < self.pages);
        // SAFETY: page `i` is mapped and ours while the token lives (type
        // invariant); `&mut self` excludes any other access through it.
        unsafe { write_words(addr(self.start + i), w) };
    }

    /// Reads the two words `write_words` writes in page `i`, through the
    /// area's address.
    pub(crate) fn read_words(&self, i: u64) -> (u64, u64) {
        assert!(i < self.pages);
        // SAFETY: as in `write_words`.
        unsafe { read_words(addr(self.start + i)) }
    }
}

/// A page of a live [`Mapped`] (or of a [`super::vmalloc::Vmalloc`] area),
/// seen through its direct-map address, which does not depend on the area's
/// translation.
///
/// # Invariants
///
/// `page` is a page mapped in an area borrowed for `'a`, so it is alive
/// and ours for `'a`.
pub(crate) struct PageView<'a> {
    page: *mut bindings::page,
    _area: PhantomData<&'a ()>,
}

impl PageView<'_> {
    /// # Safety
    ///
    /// `page` is a live page of an area borrowed for the view's lifetime.
    pub(super) unsafe fn new(page: *mut bindings::page) -> Option<Self> {
        (!page.is_null()).then_some(PageView {
            page,
            _area: PhantomData,
        })
    }

    /// Reads the two words `Mapped::write_words` writes, through the page's
    /// direct map.
    pub(crate) fn read_words(&self) -> (u64, u64) {
        // SAFETY: the page is alive and ours (type invariant); its
        // direct-map address is always mapped.
        unsafe { read_words(ffi::lv_page_address(self.page) as usize) }
    }

    /// Writes `w` as `Mapped::write_words` would, through the direct map.
    pub(crate) fn write_words(&self, w: (u64, u64)) {
        // SAFETY: as in `read_words`.
        unsafe { write_words(ffi::lv_page_address(self.page) as usize, w) };
    }

    /// Takes a reference on the page, which then outlives its unmapping.
    pub(crate) fn get(&self) -> PageRef {
        // SAFETY: the page is alive (type invariant).
        unsafe { ffi::lv_get_page(self.page) };
        PageRef { page: self.page }
    }

    /// Whether this is the page `r` refers to.
    pub(crate) fn is(&self, r: &PageRef) -> bool {
        self.page == r.page
    }
}

/// A reference on a page (`get_page()`), dropped with `put_page()`.
///
/// # Invariants
///
/// We hold one reference on `page`.
pub(crate) struct PageRef {
    page: *mut bindings::page,
}

// SAFETY: a page reference may be dropped from any thread.
unsafe impl Send for PageRef {}

impl Drop for PageRef {
    fn drop(&mut self) {
        // SAFETY: drops the reference we hold (type invariant).
        unsafe { ffi::lv_put_page(self.page) };
    }
}

/// Writes the two words of a page at kernel address `p`.
///
/// # Safety
///
/// `p` is the start of a mapped, writable page of ours.
pub(super) unsafe fn write_words(p: usize, w: (u64, u64)) {
    // SAFETY: the caller's promise; volatile, as another CPU's view of the
    // same page through another translation is what we test.
    unsafe {
        core::ptr::write_volatile(p as *mut u64, w.0);
        core::ptr::write_volatile((p + PAGE_SIZE - 8) as *mut u64, w.1);
    }
}

/// Reads the two words of a page at kernel address `p`.
///
/// # Safety
///
/// `p` is the start of a mapped, readable page.
pub(super) unsafe fn read_words(p: usize) -> (u64, u64) {
    // SAFETY: the caller's promise.
    unsafe {
        (
            core::ptr::read_volatile(p as *const u64),
            core::ptr::read_volatile((p + PAGE_SIZE - 8) as *const u64),
        )
    }
}

/// What `unmap` does with the pages it takes out of the PTEs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dispose {
    /// Free them at once (lazy freeing: their translations are flushed by
    /// the purge before the range is used again).
    Free,
    /// Keep them in the quarantine until [`drain_quarantine`] (the
    /// negative control, whose purges do not flush).
    Quarantine,
}

impl PageTable {
    /// Reserves `pages` pages of kernel virtual space, every PTE cleared.
    /// `fault` is the test hook `inject_arena_failure` (0: off).
    pub(crate) fn new(pages: usize, fault: u32) -> Result<Self> {
        let dummy = Page::alloc_page(GFP_KERNEL)?;
        let mut list = KVVec::from_elem(dummy.as_ptr(), pages, GFP_KERNEL)?;
        // SAFETY: `list` holds `pages` valid page pointers; vmap() takes no
        // reference to the array beyond the call.
        let va = unsafe { ffi::lv_vmap(list.as_mut_ptr(), pages as u32) } as usize;
        if va == 0 {
            return Err(ENOMEM);
        }
        drop(list);
        // From here on every error path returns through `Drop`, which
        // releases the range exactly once.
        let mut pt = PageTable {
            base: va,
            ptes: KVVec::new(),
            dummy,
            mapped: AtomicI64::new(0),
        };
        if fault == 1 {
            return Err(ENOMEM);
        }
        pt.ptes.reserve(pages, GFP_KERNEL)?;
        for i in 0..pages {
            // SAFETY: the address lies in the range vmap() just mapped.
            let mut pte = unsafe { ffi::lv_lookup_pte((va + i * PAGE_SIZE) as c_ulong) } as usize;
            if fault == 2 && i == pages / 2 {
                pte = 0;
            }
            if pte == 0 {
                pr_err!("lazy_vmap: no 4K PTE behind the vmap range\n");
                return Err(EINVAL);
            }
            // Cannot fail: reserved above.
            let _ = pt.ptes.push(pte, GFP_KERNEL);
        }
        for &pte in pt.ptes.iter() {
            // SAFETY: a valid PTE of our range (type invariant); it maps the
            // dummy page, which we own and which is not freed by clearing.
            unsafe { ffi::lv_clear_pte(pte as *mut _) };
        }
        flush_all_cpus();
        Ok(pt)
    }

    /// First page number (address >> PAGE_SHIFT) of the range.
    pub(crate) fn base_pfn(&self) -> u64 {
        (self.base >> PAGE_SHIFT) as u64
    }

    /// Number of pages in the range.
    pub(crate) fn pages(&self) -> usize {
        self.ptes.len()
    }

    /// Pages currently mapped.
    pub(crate) fn mapped(&self) -> i64 {
        self.mapped.load(Relaxed)
    }

    /// Whether the PTE of page number `pn` (in the range) is present.
    pub(crate) fn present(&self, pn: u64) -> bool {
        // SAFETY: a valid PTE of our range (type invariant); reading it
        // changes nothing.
        !unsafe { ffi::lv_pte_page(self.pte(pn)) }.is_null()
    }

    /// The PTE of page number `pn`; panics outside the range.
    fn pte(&self, pn: u64) -> *mut bindings::pte_t {
        let i = pn
            .checked_sub(self.base_pfn())
            .expect("page below the arena");
        self.ptes[i as usize] as *mut _
    }

    /// Maps a fresh page at each of `pages` pages from `start` with
    /// PAGE_KERNEL, allocating them in batches with the bulk page allocator.
    /// No flush is needed: the PTEs were not present, and x86 never caches a
    /// non-present translation. With `check`, also counts the pages whose
    /// `vmalloc_to_page()` (a page-table walk) is not the page just mapped.
    ///
    /// Fails with `ENOMEM` if pages run out, `EEXIST` if a PTE of the range
    /// is already present (the caller's range was not free), `EINVAL` if the
    /// range leaves the table or is another table's; on failure nothing
    /// stays mapped, and the range comes back [`Stale`] (a page mapped and
    /// unmapped again may have been translated meanwhile).
    pub(crate) fn map(
        &self,
        r: Unmapped,
        check: bool,
    ) -> core::result::Result<(Mapped, u64), (Error, Stale)> {
        let (start, pages) = (r.start, r.pages);
        let stale = || Stale {
            start,
            pages,
            table: r.table,
        };
        if r.table != self.base
            || start < self.base_pfn()
            || start + pages > self.base_pfn() + self.pages() as u64
        {
            return Err((EINVAL, stale()));
        }
        let mut done = 0;
        let mut mismatches = 0;
        let undo = |done: u64| {
            // The pages mapped so far are ours and never reached a caller;
            // the whole range comes back stale.
            let (_partial, _) = self.unmap(
                Mapped {
                    start,
                    pages: done,
                    table: self.base,
                },
                Dispose::Free,
            );
        };
        while done < pages {
            let n = (pages - done).min(BATCH as u64) as usize;
            let mut batch = [core::ptr::null_mut(); BATCH];
            // SAFETY: `batch` has `n` null slots to fill.
            let got =
                unsafe { ffi::lv_alloc_pages_bulk(n as c_ulong, batch.as_mut_ptr()) } as usize;
            if got < n {
                // SAFETY: the first `got` slots hold pages we own, mapped nowhere.
                unsafe { ffi::lv_free_pages_bulk(batch.as_mut_ptr(), got as c_ulong) };
                undo(done);
                return Err((ENOMEM, stale()));
            }
            for (i, &page) in batch[..n].iter().enumerate() {
                let pn = start + done + i as u64;
                // SAFETY: a valid PTE of our range; `page` is ours. The PTE
                // is set only if it was empty (one atomic cmpxchg), so a
                // range that is not free cannot lose its page: from then on
                // the table owns `page` (type invariant).
                if !unsafe { ffi::lv_set_pte_if_none(self.pte(pn), page) } {
                    // SAFETY: the slots from `i` on hold pages we own,
                    // mapped nowhere; the first `i` are mapped (undone below).
                    unsafe { ffi::lv_free_pages_bulk(batch[i..].as_mut_ptr(), (n - i) as c_ulong) };
                    self.mapped.fetch_add(i as i64, Relaxed);
                    undo(done + i as u64);
                    return Err((EEXIST, stale()));
                }
                // SAFETY: the address is mapped, by us, just now.
                if check && unsafe { bindings::vmalloc_to_page(addr(pn) as *const _) } != page {
                    mismatches += 1;
                }
            }
            self.mapped.fetch_add(n as i64, Relaxed);
            done += n as u64;
        }
        Ok((
            Mapped {
                start,
                pages,
                table: self.base,
            },
            mismatches,
        ))
    }

    /// Clears the PTEs of `m` *without* a TLB flush and frees or quarantines
    /// their pages in batches. Returns the range as [`Stale`]: a stale TLB
    /// entry may still point at the old pages until a flush has run on every
    /// CPU (the lazy purge, or [`Stale::flush_everywhere`]); and how many
    /// pages went to the quarantine.
    pub(crate) fn unmap(&self, m: Mapped, dispose: Dispose) -> (Stale, u64) {
        let stale = Stale {
            start: m.start,
            pages: m.pages,
            table: m.table,
        };
        if m.table != self.base {
            // A token of another table: leave its pages mapped (a leak, not
            // a page freed under someone's feet).
            pr_err!("lazy_vmap: unmap of a range of another page table\n");
            return (stale, 0);
        }
        let mut done = 0;
        let mut quarantined = 0;
        while done < m.pages {
            let n = (m.pages - done).min(BATCH as u64);
            let mut batch = [core::ptr::null_mut(); BATCH];
            let mut got = 0;
            for pn in m.start + done..m.start + done + n {
                // SAFETY: a valid PTE of our range, covered by `m`, which we
                // consume: nothing else clears or reads it as memory.
                let page = unsafe { ffi::lv_clear_pte(self.pte(pn)) };
                if !page.is_null() {
                    batch[got] = page;
                    got += 1;
                }
            }
            match dispose {
                Dispose::Quarantine => {
                    // SAFETY: the pages are ours, unmapped, on no list; the
                    // quarantine owns them until a flush has run everywhere.
                    let held = unsafe { ffi::lv_quarantine_add(batch.as_mut_ptr(), got as c_ulong) }
                        as u64;
                    quarantined += got as u64;
                    if held > quarantine_max() {
                        drain_quarantine();
                    }
                }
                // SAFETY: the pages were ours and are no longer mapped; only
                // a stale TLB entry of an address no one touches before the
                // purge may still point at them.
                Dispose::Free => unsafe {
                    ffi::lv_free_pages_bulk(batch.as_mut_ptr(), got as c_ulong)
                },
            }
            self.mapped.fetch_sub(got as i64, Relaxed);
            done += n;
        }
        (stale, quarantined)
    }

    /// Page `i` of `m`, read from its PTE (not from any TLB): the page the
    /// table put there.
    pub(crate) fn page<'a>(&self, m: &'a Mapped, i: u64) -> Option<PageView<'a>> {
        if m.table != self.base || i >= m.pages {
            return None;
        }
        // SAFETY: a valid PTE of our range; reading it changes nothing. The
        // page it maps stays alive while `m` is borrowed (type invariant of
        // `Mapped`).
        unsafe { PageView::new(ffi::lv_pte_page(self.pte(m.start + i))) }
    }

    /// Points every PTE we hold back at the dummy page and returns the
    /// range. On an error path of `new` the PTEs may still map the dummy
    /// page (which is ours, freed with `dummy`) or be partly unknown (a
    /// failed lookup): `vunmap()` clears whatever `vmap()` left.
    fn release(&mut self) {
        let dummy = self.dummy.as_ptr();
        for &pte in self.ptes.iter() {
            // SAFETY: valid PTEs of our range, no `Mapped` left (checked by
            // `drop`): every present one other than the dummy is a page of
            // ours nobody uses.
            unsafe {
                let old = ffi::lv_clear_pte(pte as *mut _);
                if !old.is_null() && old != dummy {
                    bindings::__free_pages(old, 0);
                }
                ffi::lv_set_pte(pte as *mut _, dummy);
            }
        }
        // SAFETY: `base` came from vmap(); vunmap() clears what we set back
        // and flushes the TLB. The dummy page is freed after, with `dummy`.
        unsafe { ffi::vunmap(self.base as *const _) };
    }
}

impl Drop for PageTable {
    fn drop(&mut self) {
        let live = self.mapped();
        if live != 0 {
            // Cannot happen: the arena is dropped after every stress thread
            // freed its areas. A token may still point into the range, so
            // leave it mapped for good rather than free pages under it.
            pr_err!(
                "lazy_vmap: page table dropped with {} pages mapped; range leaked\n",
                live
            );
            return;
        }
        self.release();
    }
}

/// Most pages the quarantine holds before an unmap drains it (with its full
/// flush): an eighth of RAM, so that `flush off` runs for minutes without
/// exhausting memory, while the translations left between two drains are
/// plenty for the detector to meet.
fn quarantine_max() -> u64 {
    cpu::totalram_pages() / 8
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
    let n = unsafe { ffi::lv_quarantine_detach(list.as_mut_ptr()) } as u64;
    if n > 0 {
        flush_all_cpus();
        // SAFETY: the pages on `list` are ours, and no CPU translates to
        // them any more (flushed above).
        unsafe { ffi::lv_quarantine_free(list.as_mut_ptr()) };
        QUARANTINE_FREED.fetch_add(n, Relaxed);
    }
    n
}
