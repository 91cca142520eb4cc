// SPDX-License-Identifier: GPL-2.0

//! The arena's range of kernel virtual space and its page-table entries.
//!
//! 6.12 exports neither `init_mm` nor `get_vm_area()`, so a module cannot
//! walk or populate kernel page tables with the core helpers. What it can
//! do: `vmap()` one dummy page N times. That reserves N pages of vmalloc
//! space (plus vmalloc's own guard page) and makes the kernel allocate every
//! page-table level down to the PTEs. `lookup_address()` then walks init_mm's
//! page tables to each 4K PTE, which we keep: from then on the range is ours.
//! We clear every PTE and flush, so free space is unmapped, and re-point the
//! PTEs to real pages as areas are mapped. At drop every PTE is pointed back
//! at the dummy page, as `vmap()` left it, and `vunmap()` returns the range.
//!
//! # Invariants
//!
//! `ptes[i]` is the 4K PTE of `base + i * PAGE_SIZE` in init_mm; it stays
//! valid until `vunmap()` in `drop` (the kernel never frees the page tables
//! of the vmalloc space). A present PTE maps a page this arena allocated.

use crate::shim::*;
use crate::tlb;
use kernel::bindings;
use kernel::page::{Page, PAGE_SHIFT, PAGE_SIZE};
use kernel::prelude::*;

/// The arena's range and the PTEs behind it.
pub(crate) struct PageTable {
    base: usize,
    ptes: KVVec<usize>,
    dummy: Page,
}

// SAFETY: the PTE pointers are plain addresses into init_mm's page tables,
// valid from any CPU; concurrent callers touch disjoint PTEs (the area
// allocator hands each page to one owner).
unsafe impl Send for PageTable {}
// SAFETY: as above.
unsafe impl Sync for PageTable {}

impl PageTable {
    /// Reserves `pages` pages of kernel virtual space, every PTE cleared.
    pub(crate) fn new(pages: usize) -> Result<Self> {
        let dummy = Page::alloc_page(GFP_KERNEL)?;
        let mut list: KVVec<*mut bindings::page> = KVVec::with_capacity(pages, GFP_KERNEL)?;
        for _ in 0..pages {
            list.push(dummy.as_ptr(), GFP_KERNEL)?;
        }
        // SAFETY: `list` holds `pages` valid page pointers; vmap() takes no
        // reference to the array beyond the call.
        let va = unsafe { lv_vmap(list.as_mut_ptr(), pages as u32) } as usize;
        if va == 0 {
            return Err(ENOMEM);
        }
        drop(list);
        // From here on every error path returns through `Drop`, which
        // releases the range exactly once.
        let mut pt = PageTable { base: va, ptes: KVVec::new(), dummy };
        // SAFETY: reads the test hook's module parameter.
        let fault = unsafe { lv_arena_fault() };
        if fault == 1 {
            return Err(ENOMEM);
        }
        pt.ptes.reserve(pages, GFP_KERNEL)?;
        for i in 0..pages {
            // SAFETY: the address lies in the range vmap() just mapped.
            let mut pte = unsafe { lv_lookup_pte((va + i * PAGE_SIZE) as _) } as usize;
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
            unsafe { lv_clear_pte(pte as *mut _) };
        }
        tlb::flush_all();
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

    /// Kernel virtual address of page number `pn`.
    pub(crate) fn addr(pn: u64) -> usize {
        (pn as usize) << PAGE_SHIFT
    }

    fn pte(&self, pn: u64) -> *mut bindings::pte_t {
        self.ptes[(pn - self.base_pfn()) as usize] as *mut _
    }

    /// Maps `page` at page number `pn` with PAGE_KERNEL. No flush is
    /// needed: the PTE was not present, and x86 never caches a non-present
    /// translation.
    ///
    /// # Safety
    ///
    /// The caller owns page number `pn` (its area) and `page`, a page it
    /// allocated; the PTE is not present.
    pub(crate) unsafe fn map(&self, pn: u64, page: *mut bindings::page) {
        // SAFETY: `pte(pn)` is a valid PTE of our range (type invariant);
        // the rest is the caller's promise.
        unsafe { lv_set_pte(self.pte(pn), page) };
    }

    /// The page mapped at page number `pn`, read from its PTE (null if not
    /// present): the page the arena put there, whatever any TLB caches.
    pub(crate) fn page_at(&self, pn: u64) -> *mut bindings::page {
        // SAFETY: a valid PTE of our range; reading it changes nothing.
        unsafe { lv_pte_page(self.pte(pn)) }
    }

    /// Clears the PTE of page number `pn` *without* a TLB flush and returns
    /// the page it mapped (null if none), which the caller frees. The address
    /// must stay out of use until a flush (the lazy purge) has run: a stale
    /// TLB entry may still point at the page.
    pub(crate) fn unmap(&self, pn: u64) -> *mut bindings::page {
        // SAFETY: a valid PTE of our range, owned by the caller's area.
        unsafe { lv_clear_pte(self.pte(pn)) }
    }

    /// Points every PTE we hold back at the dummy page and returns the
    /// range. On an error path of `new` the PTEs may still map the dummy
    /// page (which is ours, freed with `dummy`) or be partly unknown (a
    /// failed lookup): `vunmap()` clears whatever `vmap()` left.
    fn release(&mut self) {
        let dummy = self.dummy.as_ptr();
        for &pte in self.ptes.iter() {
            // SAFETY: valid PTEs of our range. A present one other than the
            // dummy would be a leak of a mapped page, which the arena rules
            // out before dropping us; it is freed here all the same.
            unsafe {
                let old = lv_clear_pte(pte as *mut _);
                if !old.is_null() && old != dummy {
                    bindings::__free_pages(old, 0);
                }
                lv_set_pte(pte as *mut _, dummy);
            }
        }
        // SAFETY: `base` came from vmap(); vunmap() clears what we set back
        // and flushes the TLB. The dummy page is freed after, with `dummy`.
        unsafe { vunmap(self.base as *const _) };
    }
}

impl Drop for PageTable {
    fn drop(&mut self) {
        self.release();
    }
}
