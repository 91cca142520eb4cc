// SPDX-License-Identifier: GPL-2.0

//! An area of the kernel's own `vmalloc()`, the stress threads' other
//! target: allocated by `__vmalloc_node()`, freed by `vfree()` on drop, which
//! frees it lazily through the kernel's `free_vmap_area_noflush()`.

use super::ffi;
use super::pgtable::{read_words, write_words, PageView};
use core::ptr::NonNull;
use kernel::bindings;
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;

/// A live vmalloc area of `pages` pages.
///
/// # Invariants
///
/// `ptr` came from `__vmalloc_node()` of `pages` pages and is freed only by
/// `drop`: its pages are mapped, writable and ours while the value lives.
pub(crate) struct Vmalloc {
    ptr: NonNull<u8>,
    pages: u64,
}

// SAFETY: vfree() may be called from any thread in process context, and the
// area's memory is ours wherever we are.
unsafe impl Send for Vmalloc {}

impl Vmalloc {
    /// `vmalloc()` of `pages` pages aligned to `align` pages.
    pub(crate) fn new(pages: u64, align: u64) -> Result<Self> {
        let size = (pages as usize).checked_mul(PAGE_SIZE).ok_or(EINVAL)?;
        let align = (align as usize).checked_mul(PAGE_SIZE).ok_or(EINVAL)?;
        if size == 0 {
            return Err(EINVAL);
        }
        // SAFETY: a plain allocation; a null result is an allocation failure.
        let p = unsafe { ffi::lv_vmalloc(size as _, align as _) };
        let ptr = NonNull::new(p.cast::<u8>()).ok_or(ENOMEM)?;
        Ok(Vmalloc { ptr, pages })
    }

    /// Kernel virtual address of the first page.
    pub(crate) fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Number of pages.
    pub(crate) fn pages(&self) -> u64 {
        self.pages
    }

    /// Writes `w.0` at the start and `w.1` at the end of page `i`.
    pub(crate) fn write_words(&mut self, i: u64, w: (u64, u64)) {
        assert!(i < self.pages);
        // SAFETY: page `i` is mapped, writable and ours (type invariant).
        unsafe { write_words(self.addr() + i as usize * PAGE_SIZE, w) };
    }

    /// Reads the two words `write_words` writes in page `i`.
    pub(crate) fn read_words(&self, i: u64) -> (u64, u64) {
        assert!(i < self.pages);
        // SAFETY: as in `write_words`.
        unsafe { read_words(self.addr() + i as usize * PAGE_SIZE) }
    }

    /// Page `i`, as `vmalloc_to_page()` finds it in the page tables.
    pub(crate) fn page(&self, i: u64) -> Option<PageView<'_>> {
        if i >= self.pages {
            return None;
        }
        // SAFETY: the address is in our live area; the page it maps lives as
        // long as the area, which the view borrows.
        unsafe {
            PageView::new(bindings::vmalloc_to_page(
                (self.addr() + i as usize * PAGE_SIZE) as *const _,
            ))
        }
    }
}

impl Drop for Vmalloc {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from vmalloc and is freed once (type invariant).
        unsafe { ffi::lv_vfree(self.ptr.as_ptr().cast()) };
    }
}
