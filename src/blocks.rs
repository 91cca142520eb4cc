// SPDX-License-Identifier: GPL-2.0

//! The kernel side of the vmap blocks ([`crate::lazy_core::blocks`]):
//! this module's `vm_map_ram()`, `vm_unmap_ram()` and `vm_unmap_aliases()`
//! on the arena's real page tables.
//!
//! `map_ram` takes pages from a block of this CPU (or, above
//! `VMAP_MAX_ALLOC` pages, a plain area, as 6.12 does) and maps fresh pages
//! there; `unmap_ram` clears the PTEs with no flush and hands the range to
//! `vb_free` as dirty. The range is not reused until its block dies and the
//! purge has flushed the block's area, so a dirty page's only risk is a CPU
//! that still translates it to the freed page: what `unmap_aliases` is for,
//! and what the no-alias oracle checks after every call.

use crate::arena::Arena;
use crate::lazy_core::blocks::{BlockEnv, VbMode, VMAP_MAX_ALLOC};
use crate::sys::pgtable::{Mapped, Unmapped};
use core::sync::atomic::Ordering::Relaxed;
use kernel::prelude::*;

/// A `vm_map_ram()` mapping: from a block, or a plain area above
/// `VMAP_MAX_ALLOC` pages.
pub(crate) struct RamMapping {
    pub(crate) m: Mapped,
    block: bool,
}

impl BlockEnv for Arena {
    fn with_block<R>(&self, idx: usize, f: impl FnOnce() -> R) -> R {
        let _guard = self.vb_locks[idx].lock();
        f()
    }

    fn vb_unmapped(&self, start: u64, n: u64) {
        if self.knobs.check_alias.load(Relaxed) {
            self.oracle.dirty.offer(start, n);
        }
    }

    /// What `vb_free` unmapped until now becomes what this call must flush
    /// (probed at its flush, before its purge hands any range back).
    fn aliases_begin(&self) {
        self.oracle.begin_aliases(&self.pt);
    }
}

impl Arena {
    /// `vm_map_ram()` of `pages` fresh pages.
    pub(crate) fn map_ram(&self, pages: u64) -> Result<RamMapping> {
        if pages > VMAP_MAX_ALLOC {
            return Ok(RamMapping {
                m: self.alloc(pages, 1)?,
                block: false,
            });
        }
        let start = self.vb.alloc(&self.lazy, self, pages).ok_or(ENOMEM)?;
        // SAFETY: the block's area came from the lazy allocator, which gives
        // a range back only after the purge's flush over it (see
        // `reserve_region`), and `vb_alloc` hands each page of a block out
        // once in the block's life: nothing has translated these pages
        // since that flush.
        let r = unsafe { Unmapped::new(&self.pt, start, pages) };
        match self.map(r) {
            Ok(m) => Ok(RamMapping { m, block: true }),
            Err((e, stale)) => {
                // Back to the block as dirty, as an unmap would.
                let (s, n) = stale.into_lazy();
                self.vb.free(&self.lazy, self, s, n);
                Err(e)
            }
        }
    }

    /// `vm_unmap_ram()`: PTEs cleared with no flush, the pages freed (or
    /// quarantined), the range dirty in its block (or a lazy area).
    pub(crate) fn unmap_ram(&self, r: RamMapping) {
        if !r.block {
            self.free(r.m);
            return;
        }
        let (s, n) = self.unmap(r.m).into_lazy();
        if !self.vb.free(&self.lazy, self, s, n) {
            // Cannot happen: the mapping came from `map_ram`.
            pr_err!(
                "blocks: vb_free refused {} pages at {:#x}; range lost\n",
                n,
                s
            );
        }
    }

    /// `vm_unmap_aliases()` as the `vb_mode` knob says, then the no-alias
    /// oracle's probe of every page `vb_free` unmapped before the call.
    ///
    /// The probe runs at the call's flush (`Env::flush`, before the purge
    /// gives ranges back: a range handed out again and mapped would read
    /// back, falsely, as an alias), or after the call if it flushed
    /// nothing. Each page is probed only while its PTE is none.
    pub(crate) fn unmap_aliases(&self) {
        let mode = VbMode::ALL[self.knobs.vb_mode.load(Relaxed) as usize % VbMode::ALL.len()];
        self.vb.unmap_aliases(&self.lazy, self, mode);
        if let Some(p) = self.oracle.probe_aliases(&self.pt) {
            self.count_probe(&p, "unmap_aliases");
        }
    }

    /// Retires every block with no page in use (stress stopped): their
    /// areas go to the lazy free, for the purge that follows.
    pub(crate) fn retire_blocks(&self) -> u64 {
        self.vb.retire_unused(&self.lazy, self)
    }
}
