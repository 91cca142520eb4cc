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
use crate::lazy_core::lazy::Why;
use crate::sys::pgtable::{drain_quarantine, Mapped, Unmapped};
use crate::sys::vmalloc::{self, KernelPages, KernelRam};
use crate::sys::{cpu, tlb};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use kernel::page::{PAGE_SHIFT, PAGE_SIZE};
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

    /// `vbq->lock` of CPU `q`, recording its holder for
    /// [`BlockEnv::queue_held`] (a spinlock: the holder cannot migrate).
    fn with_queue<R>(&self, q: usize, f: impl FnOnce() -> R) -> R {
        let _guard = self.vbq_locks[q].lock();
        self.vbq_holder[q].store(cpu::this() + 1, Relaxed);
        let r = f();
        self.vbq_holder[q].store(0, Relaxed);
        r
    }

    /// `lockdep_assert_held(&vbq->lock)`: held by this CPU.
    fn queue_held(&self, q: usize) -> bool {
        self.vbq_holder
            .get(q)
            .is_some_and(|h| h.load(Relaxed) == cpu::this() + 1)
    }

    fn nr_queues(&self) -> usize {
        self.vbq_locks.len()
    }

    fn vb_unmapped(&self, start: u64, n: u64) {
        if self.knobs.check_alias.load(Relaxed) {
            self.oracle.dirty.offer(start, n);
        }
    }

    /// What `vb_free` unmapped until now becomes what this call must flush
    /// (probed at its flush, before its purge hands any range back); with
    /// `check_alias` off, nothing.
    fn aliases_begin(&self) {
        if self.knobs.check_alias.load(Relaxed) {
            self.oracle.begin_aliases(&self.pt);
        } else {
            self.oracle.skip_aliases();
        }
    }

    /// `alloc_vmap_area` of a block's area, as 6.12's `new_vmap_block()`
    /// fires it (a block has no guard page).
    fn trace_block_area(&self, start: Option<u64>, pages: u64) {
        let base = self.pt.base_pfn();
        crate::sys::trace::alloc_vmap_area(start, pages, pages, base, base + self.pages());
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
    /// quarantined), the range dirty in its block (or a lazy area). With
    /// `bug lazy-pte` the PTEs stay until the next flush (2.6.28–2.6.36:
    /// `vm_unmap_aliases()` or the block's purge cleared them).
    pub(crate) fn unmap_ram(&self, r: RamMapping) {
        if !r.block {
            self.free(r.m);
            return;
        }
        let (s, n) = (r.m.start(), r.m.pages());
        if let Some(stale) = self.unmap_or_defer(r.m) {
            let _ = stale.into_lazy();
        }
        self.check_unmapped(s, n);
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

/// What an aliases self-test found: CPUs, reads made (summed over the
/// CPUs), reads that went through a stale alias.
pub(crate) type AliasesResult = (u32, u64, u64);

/// Most mappings of [`VMAP_MAX_ALLOC`] pages one block holds (1024 pages).
const MAX_PER_BLOCK: usize = 16;

/// Mappings of [`VMAP_MAX_ALLOC`] pages that fill a block of `bits` pages.
fn per_block(bits: u64) -> usize {
    ((bits / VMAP_MAX_ALLOC) as usize).clamp(1, MAX_PER_BLOCK)
}

/// Reads one word of every page of `ranges` (start address, pages) on every
/// online CPU, counting the reads that succeed where `gone(addr)` says the
/// PTE is none.
fn probe_everywhere(
    ranges: &[(usize, u64)],
    gone: &(dyn Fn(usize) -> bool + Sync),
) -> AliasesResult {
    let (cpus, probed, stale) = (AtomicU32::new(0), AtomicU64::new(0), AtomicU64::new(0));
    cpu::on_each(&|| {
        cpus.fetch_add(1, Relaxed);
        for &(a, n) in ranges {
            for i in 0..n as usize {
                let addr = a + i * PAGE_SIZE;
                if gone(addr) {
                    probed.fetch_add(1, Relaxed);
                    if tlb::probe(addr) && gone(addr) {
                        stale.fetch_add(1, Relaxed);
                    }
                }
            }
        }
    });
    (cpus.into_inner(), probed.into_inner(), stale.into_inner())
}

impl Arena {
    /// The `aliases` self-test (stress stopped): one block of this CPU
    /// filled with mappings of 64 pages, read on every CPU, all but the
    /// last unmapped (the block is fully used: on no free list, its dirty
    /// pages translated everywhere); then, if `call`, `unmap_aliases` as
    /// the `vb_mode` knob says; then every unmapped page probed on every
    /// CPU. `all-blocks` must leave none readable; `free-list` skips the
    /// full block and leaves them readable (as many as TCG keeps).
    pub(crate) fn aliases_selftest(&self, call: bool) -> Result<AliasesResult> {
        self.retire_blocks();
        self.purge(Why::Demand);
        let n = per_block(self.vb.bits());
        let mut maps: [Option<RamMapping>; MAX_PER_BLOCK] = Default::default();
        let pin = cpu::Pinned::new();
        let mut result = Ok((0, 0, 0));
        for m in &mut maps[..n] {
            match self.map_ram(VMAP_MAX_ALLOC) {
                Ok(r) => *m = Some(r),
                Err(e) => result = Err(e),
            }
        }
        if result.is_ok() {
            cpu::on_each(&|| {
                for r in maps.iter().flatten() {
                    (0..r.m.pages()).for_each(|i| {
                        let _ = r.m.read_words(i);
                    });
                }
            });
            let mut ranges = [(0usize, 0u64); MAX_PER_BLOCK];
            for (m, range) in maps[..n - 1].iter_mut().zip(&mut ranges) {
                if let Some(r) = m.take() {
                    *range = (r.m.addr(), r.m.pages());
                    self.unmap_ram(r);
                }
            }
            if call {
                self.unmap_aliases();
            }
            let pt = &self.pt;
            let gone = |a: usize| !pt.present((a >> PAGE_SHIFT) as u64);
            result = Ok(probe_everywhere(&ranges[..n - 1], &gone));
        }
        drop(pin);
        for r in maps.iter_mut().filter_map(Option::take) {
            self.unmap_ram(r);
        }
        // Leave nothing stale and nothing live behind.
        self.retire_blocks();
        self.purge(Why::Demand);
        tlb::flush_all();
        drain_quarantine();
        result
    }
}

/// The `kernel-aliases` self-test: the same on the kernel's own 6.12 vmap
/// blocks (`vm_map_ram()` of 16 mappings of 64 pages, a block of 1024
/// pages on x86-64), with the kernel's `vm_unmap_aliases()` if `call`
/// (`kernel-noaliases`, without it, is the control: the probe must see the
/// kernel's stale aliases). The addresses probed stay dirty in a live
/// block (the last mapping is kept until after the probe), so the kernel
/// reuses none of them meanwhile.
pub(crate) fn kernel_aliases_selftest(call: bool) -> Result<AliasesResult> {
    const KERNEL_BLOCK: u64 = 1024; // 6.12's VMAP_BBMAP_BITS on x86-64
    let n = per_block(KERNEL_BLOCK);
    let mut maps: [Option<KernelRam>; MAX_PER_BLOCK] = Default::default();
    let pin = cpu::Pinned::new();
    for m in &mut maps[..n] {
        *m = Some(KernelRam::new(VMAP_MAX_ALLOC)?);
    }
    cpu::on_each(&|| {
        for r in maps.iter().flatten() {
            (0..r.pages()).for_each(|i| {
                let _ = r.read_words(i);
            });
        }
    });
    let mut ranges = [(0usize, 0u64); MAX_PER_BLOCK];
    let mut kept: [Option<KernelPages>; MAX_PER_BLOCK] = Default::default();
    for ((m, range), k) in maps[..n - 1].iter_mut().zip(&mut ranges).zip(&mut kept) {
        if let Some(r) = m.take() {
            let (a, pages) = r.unmap();
            *range = (a, VMAP_MAX_ALLOC);
            *k = Some(pages);
        }
    }
    if call {
        vmalloc::unmap_aliases();
    }
    // vm_unmap_ram() cleared these PTEs, and the block keeps them dirty.
    let found = probe_everywhere(&ranges[..n - 1], &|_| true);
    drop(pin);
    drop(maps);
    // No stale alias of our pages is left when they are freed.
    vmalloc::unmap_aliases();
    drop(kept);
    Ok(found)
}
