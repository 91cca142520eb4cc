// SPDX-License-Identifier: GPL-2.0

//! Kernel TLB flushes on every CPU, built from what 6.12 exports.
//!
//! `flush_tlb_kernel_range()` is not exported to modules, so we rebuild it:
//! `on_each_cpu_cond_mask()` runs a callback on every online CPU (an IPI to
//! each other CPU, waiting for all), and the callback invalidates the range
//! with `invlpg` page by page, or flushes everything with `__flush_tlb_all()`
//! above a ceiling of [`SINGLE_PAGE_CEILING`] pages, the same trade-off as the
//! kernel's `tlb_single_page_flush_ceiling` (33).
//!
//! Why that is enough, per x86 feature:
//! - Global pages (PGE): kernel mappings are global, so a CR3 write does not
//!   drop them; `invlpg` does invalidate global entries for its address, and
//!   `__flush_tlb_all()` toggles CR4.PGE (or INVPCID all-context), which drops
//!   every entry, global or not.
//! - PCID without PTI: the kernel uses PCID only together with global kernel
//!   mappings, and `invlpg` of a global entry invalidates it in every PCID.
//! - PTI: kernel mappings are *not* global and each address space has a user
//!   PCID twin; `invlpg` only reaches the current PCID, and the kernel's own
//!   `flush_tlb_one_kernel()` sets a per-CPU `invalidate_other` flag we cannot
//!   reach. So with PTI we always use `__flush_tlb_all()`, which invalidates
//!   all PCIDs.
//! - Lazy-TLB and idle CPUs are in the online mask and get the IPI too, so no
//!   CPU keeps a stale kernel translation.

use crate::sys::{cpu, pgtable, tlb};
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// Above this many pages a full flush is cheaper than `invlpg` per page.
pub(crate) const SINGLE_PAGE_CEILING: u64 = 33;

/// What a flush did.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `invlpg` of each page of the range, on every CPU.
    Pages,
    /// `__flush_tlb_all()` on every CPU.
    Full,
}

/// One flush round: the IPI to every online CPU, and what it did.
pub(crate) struct Round {
    /// How each CPU flushed.
    pub(crate) kind: Kind,
    /// CPUs that ran the flush (each counts itself after flushing), so a
    /// round that missed a CPU shows in the stats.
    pub(crate) cpus: u32,
}

/// Flushes pages `[start, end)` (page numbers) from every CPU's TLB.
/// Must not be called with a spinlock held or interrupts off. The test hook
/// `flush_skip_cpu` makes one CPU skip the flush and count itself anyway
/// (a round that lies: the no-alias oracle's negative control).
pub(crate) fn flush_pages(start: u64, end: u64) -> Round {
    let kind = if tlb::pti() || end - start > SINGLE_PAGE_CEILING {
        Kind::Full
    } else {
        Kind::Pages
    };
    let cpus = AtomicU32::new(0);
    let skip = tlb::flush_skip_cpu();
    cpu::on_each(&|| {
        if skip != Some(cpu::this()) {
            match kind {
                Kind::Full => tlb::flush_all(),
                Kind::Pages => (start..end).for_each(|pn| tlb::invlpg(pgtable::addr(pn))),
            }
        }
        cpus.fetch_add(1, Relaxed);
    });
    Round {
        kind,
        cpus: cpus.into_inner(),
    }
}

/// Flushes the whole TLB of every CPU.
pub(crate) fn flush_all() {
    pgtable::flush_all_cpus();
}
