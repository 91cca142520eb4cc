// SPDX-License-Identifier: GPL-2.0

//! The kernel's own vmalloc layer, the stress threads' other targets: an
//! area of `vmalloc()` (allocated by `__vmalloc_node()`, freed by `vfree()`
//! on drop, which frees it lazily through the kernel's
//! `free_vmap_area_noflush()`), and a mapping of `vm_map_ram()` (the
//! kernel's vmap blocks, unmapped by `vm_unmap_ram()`, whose stale
//! translations the kernel's `vm_unmap_aliases()` flushes).

use super::ffi;
use super::pgtable::{read_words, write_words, PageView};
use core::ptr::NonNull;
use kernel::bindings;
use kernel::ffi::{c_uint, c_ulong};
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
        let p = unsafe { ffi::lv_vmalloc(size as c_ulong, align as c_ulong) };
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

/// A mapping of the kernel's own `vm_map_ram()` (target `kram`, and the
/// `kernel-aliases` self-test) over pages it allocated: the kernel's vmap
/// blocks for up to `VMAP_MAX_ALLOC` (64) pages, a plain vmap area above.
///
/// # Invariants
///
/// `addr` came from `vm_map_ram()` of the `pages.len()` pages of `pages`,
/// each of which we hold one reference on; it is unmapped only once, by
/// [`KernelRam::unmap`] or `drop` (`vm_unmap_ram()`), and the pages are
/// released only after that.
pub(crate) struct KernelRam {
    addr: NonNull<u8>,
    pages: KVec<*mut bindings::page>,
}

// SAFETY: vm_unmap_ram() and release_pages() may be called from any thread
// in process context; the pages are ours wherever we are.
unsafe impl Send for KernelRam {}

// SAFETY: through `&KernelRam` the mapping is only read (`read_words`,
// `page`, `addr`), which any CPU may do while it is mapped.
unsafe impl Sync for KernelRam {}

/// The pages of a [`KernelRam`] after `vm_unmap_ram()`, kept alive (a
/// stale translation reads them, never a page reused by someone else),
/// released on drop.
///
/// # Invariants
///
/// We hold one reference on each page of `pages`.
pub(crate) struct KernelPages {
    pages: KVec<*mut bindings::page>,
}

impl Drop for KernelPages {
    fn drop(&mut self) {
        // SAFETY: one reference each is ours (type invariant).
        unsafe { ffi::lv_free_pages_bulk(self.pages.as_mut_ptr(), self.pages.len() as c_ulong) };
    }
}

impl KernelRam {
    /// `vm_map_ram()` of `n` fresh pages (`NUMA_NO_NODE`: any node).
    pub(crate) fn new(n: u64) -> Result<Self> {
        let n = usize::try_from(n).map_err(|_| EINVAL)?;
        if n == 0 || n > u32::MAX as usize {
            return Err(EINVAL);
        }
        let mut v = KVec::from_elem(core::ptr::null_mut(), n, GFP_KERNEL)?;
        // SAFETY: `v` holds `n` pointers, all null: the bulk allocator
        // fills null slots in order, so the pages it got are a prefix.
        let got = unsafe { ffi::lv_alloc_pages_bulk(n as c_ulong, v.as_mut_ptr()) } as usize;
        if got != n {
            // SAFETY: the first `got.min(n)` slots hold one reference each
            // to a page of ours, nothing else does.
            unsafe { ffi::lv_free_pages_bulk(v.as_mut_ptr(), got.min(n) as c_ulong) };
            return Err(ENOMEM);
        }
        let mut pages = KernelPages { pages: v };
        // SAFETY: `n` live pages of ours, mapped on any node.
        let a = unsafe {
            ffi::vm_map_ram(
                pages.pages.as_mut_ptr(),
                n as c_uint,
                bindings::NUMA_NO_NODE,
            )
        };
        let addr = NonNull::new(a.cast::<u8>()).ok_or(ENOMEM)?;
        let pages = core::mem::take(&mut pages.pages);
        Ok(KernelRam { addr, pages })
    }

    /// Kernel virtual address of the first page.
    pub(crate) fn addr(&self) -> usize {
        self.addr.as_ptr() as usize
    }

    /// Number of pages.
    pub(crate) fn pages(&self) -> u64 {
        self.pages.len() as u64
    }

    /// Writes `w.0` at the start and `w.1` at the end of page `i`.
    pub(crate) fn write_words(&mut self, i: u64, w: (u64, u64)) {
        assert!(i < self.pages());
        // SAFETY: page `i` is mapped, writable and ours (type invariant).
        unsafe { write_words(self.addr() + i as usize * PAGE_SIZE, w) };
    }

    /// Reads the two words `write_words` writes in page `i`.
    pub(crate) fn read_words(&self, i: u64) -> (u64, u64) {
        assert!(i < self.pages());
        // SAFETY: as in `write_words`.
        unsafe { read_words(self.addr() + i as usize * PAGE_SIZE) }
    }

    /// Page `i`, the one we mapped (not what any TLB says).
    pub(crate) fn page(&self, i: u64) -> Option<PageView<'_>> {
        let p = *self.pages.get(usize::try_from(i).ok()?)?;
        // SAFETY: a page of ours, alive while the mapping (borrowed) is.
        unsafe { PageView::new(p) }
    }

    /// `vm_unmap_ram()`: the PTEs cleared with no flush (the kernel's
    /// `vb_free()` only widens its block's dirty range). Returns the
    /// address and the pages, still ours: a stale translation reads them.
    pub(crate) fn unmap(self) -> (usize, KernelPages) {
        let mut me = core::mem::ManuallyDrop::new(self);
        let addr = me.addr();
        // SAFETY: the mapping is live and unmapped once (type invariant:
        // `drop` will not run).
        unsafe { ffi::vm_unmap_ram(me.addr.as_ptr().cast(), me.pages.len() as c_uint) };
        let pages = core::mem::take(&mut me.pages);
        (addr, KernelPages { pages })
    }
}

impl Drop for KernelRam {
    fn drop(&mut self) {
        // SAFETY: the mapping is live and unmapped only here (type
        // invariant); the pages are released after it, by `KernelPages`.
        unsafe { ffi::vm_unmap_ram(self.addr.as_ptr().cast(), self.pages.len() as c_uint) };
        drop(KernelPages {
            pages: core::mem::take(&mut self.pages),
        });
    }
}

/// The kernel's `vm_unmap_aliases()`: after it returns, no CPU translates
/// any page the kernel's vmap layer lazily unmapped before the call.
pub(crate) fn unmap_aliases() {
    // SAFETY: process context, no lock held (it takes the purge mutex).
    unsafe { ffi::vm_unmap_aliases() };
}
