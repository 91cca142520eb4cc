// SPDX-License-Identifier: GPL-2.0

//! What the stress threads allocate from: this module's arena (areas, or
//! `vm_map_ram()` from its vmap blocks), the kernel's `vmalloc()` or
//! `vm_map_ram()`, or the floor; and the areas they hold.

use crate::arena::Arena;
use crate::blocks::RamMapping;
use crate::knobs::{TARGET_KRAM, TARGET_LAZY, TARGET_RAM, TARGET_VMALLOC};
use crate::lazy_core::workload::Req;
use crate::sys::pgtable::{Mapped, PageView, Unmapped, UnmappedSlot};
use crate::sys::vmalloc::{self, KernelRam, Vmalloc};
use kernel::prelude::*;
use kernel::sync::Arc;

/// An area as a stress thread holds it: owning its pages, on either target.
pub(crate) enum Area {
    /// Pages of the arena (the `lazy_vmap` target and the floor).
    Arena(Mapped),
    /// An area of the kernel's vmalloc.
    Vmalloc(Vmalloc),
    /// A `vm_map_ram()` mapping of this module (target `ram`).
    Ram(RamMapping),
    /// A `vm_map_ram()` mapping of the kernel (target `kram`).
    Kram(KernelRam),
}

impl Area {
    /// Kernel virtual address of the first page.
    pub(crate) fn addr(&self) -> usize {
        match self {
            Area::Arena(m) => m.addr(),
            Area::Vmalloc(v) => v.addr(),
            Area::Ram(r) => r.m.addr(),
            Area::Kram(k) => k.addr(),
        }
    }

    /// Number of pages.
    pub(crate) fn pages(&self) -> u64 {
        match self {
            Area::Arena(m) => m.pages(),
            Area::Vmalloc(v) => v.pages(),
            Area::Ram(r) => r.m.pages(),
            Area::Kram(k) => k.pages(),
        }
    }

    /// Writes the two check words of page `i`, through the area's address.
    pub(crate) fn write_words(&mut self, i: u64, w: (u64, u64)) {
        match self {
            Area::Arena(m) => m.write_words(i, w),
            Area::Vmalloc(v) => v.write_words(i, w),
            Area::Ram(r) => r.m.write_words(i, w),
            Area::Kram(k) => k.write_words(i, w),
        }
    }

    /// Reads the two check words of page `i`, through the area's address.
    pub(crate) fn read_words(&self, i: u64) -> (u64, u64) {
        match self {
            Area::Arena(m) => m.read_words(i),
            Area::Vmalloc(v) => v.read_words(i),
            Area::Ram(r) => r.m.read_words(i),
            Area::Kram(k) => k.read_words(i),
        }
    }
}

/// Where a thread allocates.
pub(crate) enum Target {
    /// This module's allocator.
    Lazy(Arc<Arena>),
    /// The kernel's vmalloc()/vfree().
    Vmalloc,
    /// This module's `vm_map_ram()`/`vm_unmap_ram()`: the vmap blocks.
    Ram(Arc<Arena>),
    /// The kernel's `vm_map_ram()`/`vm_unmap_ram()` over pages of ours.
    Kram,
    /// The floor: pages mapped and unmapped at a fixed range of the arena
    /// reserved for this thread (`region`, `pages` long), flushed from this
    /// CPU's TLB only; no alignment, no address management, no cross-CPU
    /// flush. The thread holds a [`crate::sys::cpu::Pinned`] from each
    /// `alloc` to its `free` (the worker's `one()`), so the local flush is
    /// a proof; its areas never reach another thread (no handoff, no busy
    /// set). `idle` holds the region's reusable part: all of it between
    /// two areas, the part after the area while one is mapped.
    Floor {
        arena: Arc<Arena>,
        region: u64,
        pages: u64,
        idle: UnmappedSlot,
    },
}

impl Target {
    /// The target selected by the `target` knob, for a thread whose areas
    /// are at most `max_pages` long.
    pub(crate) fn new(kind: u32, arena: &Arc<Arena>, max_pages: u64) -> Result<Self> {
        Ok(match kind {
            TARGET_LAZY => Target::Lazy(arena.clone()),
            TARGET_VMALLOC => Target::Vmalloc,
            TARGET_RAM => Target::Ram(arena.clone()),
            TARGET_KRAM => Target::Kram,
            _ => {
                let r = arena.reserve_region(max_pages)?;
                Target::Floor {
                    arena: arena.clone(),
                    region: r.start(),
                    pages: max_pages,
                    idle: UnmappedSlot::new(r),
                }
            }
        })
    }

    /// Waits until no drain of the arena's lazy areas is queued or running
    /// (mode `nodes`; nothing to wait for otherwise).
    pub(crate) fn settle(&self) {
        if let Target::Lazy(a) | Target::Ram(a) = self {
            a.wait_drain();
        }
    }

    /// Allocates and maps an area.
    pub(crate) fn alloc(&self, r: Req) -> Result<Area> {
        Ok(match self {
            Target::Lazy(a) => Area::Arena(a.alloc(r.pages, r.align)?),
            Target::Floor {
                arena, pages, idle, ..
            } => {
                if r.pages > *pages {
                    return Err(ENOMEM);
                }
                // Taken only here, and put back by `free` (or below).
                let (area, rest) = idle.take().ok_or(EBUSY)?.split(r.pages);
                match arena.map(area) {
                    Ok(m) => {
                        if let Some(rest) = rest {
                            put_back(idle, rest);
                        }
                        Area::Arena(m)
                    }
                    Err((e, stale)) => {
                        // SAFETY: the floor's thread is pinned from this
                        // alloc on (worker `one()`), and the failed range
                        // never left it: only this CPU can translate it.
                        let back = unsafe { stale.flush_local() };
                        put_back(idle, rejoin(back, rest));
                        return Err(e);
                    }
                }
            }
            Target::Vmalloc => Area::Vmalloc(Vmalloc::new(r.pages, r.align)?),
            // vm_map_ram() has no alignment (blocks hand out pages in order).
            Target::Ram(a) => Area::Ram(a.map_ram(r.pages)?),
            Target::Kram => Area::Kram(KernelRam::new(r.pages)?),
        })
    }

    /// Frees an area of this target.
    pub(crate) fn free(&self, a: Area) {
        match (self, a) {
            (Target::Lazy(arena), Area::Arena(m)) => arena.free(m),
            (Target::Floor { arena, idle, .. }, Area::Arena(m)) => {
                // SAFETY: the floor's thread has been pinned since it
                // mapped `m` (worker `one()` holds a `Pinned` across alloc,
                // fill, check and free) and floor areas never reach another
                // thread, so only this CPU can translate the range; a flush
                // of this CPU (all of it, with PTI) makes it reusable.
                let back = unsafe { arena.unmap(m).flush_local() };
                put_back(idle, rejoin(back, idle.take()));
            }
            (Target::Ram(arena), Area::Ram(r)) => arena.unmap_ram(r),
            // vfree() / vm_unmap_ram() on drop.
            (_, Area::Vmalloc(v)) => drop(v),
            (_, Area::Kram(k)) => drop(k),
            (Target::Vmalloc | Target::Ram(_) | Target::Kram, Area::Arena(m)) => {
                // Cannot happen: a thread frees only what its target made.
                pr_err!(
                    "stress: arena area {:#x} freed on another target, leaked\n",
                    m.addr()
                );
                // Dropping the token leaves its pages mapped for good.
                let _ = m;
            }
            (_, Area::Ram(r)) => {
                // Cannot happen either.
                pr_err!(
                    "stress: vm_map_ram area {:#x} freed on another target, leaked\n",
                    r.m.addr()
                );
                let _ = r;
            }
        }
    }

    /// The page that page `i` of `a` maps according to the page tables (not
    /// to any TLB): the page the arena put in the PTE, or vmalloc's.
    pub(crate) fn page<'a>(&self, a: &'a Area, i: u64) -> Option<PageView<'a>> {
        match (self, a) {
            (Target::Lazy(arena) | Target::Floor { arena, .. }, Area::Arena(m)) => {
                arena.page_table().page(m, i)
            }
            (Target::Ram(arena), Area::Ram(r)) => arena.page_table().page(&r.m, i),
            (_, Area::Vmalloc(v)) => v.page(i),
            (_, Area::Kram(k)) => k.page(i),
            _ => None,
        }
    }

    /// Largest alignment (pages) worth asking for.
    pub(crate) fn max_align(&self) -> u64 {
        match self {
            // 1/64 of the arena: 64 aligned slots, so that concurrent
            // threads rarely take them all (see the README).
            Target::Lazy(a) => 1 << (63 - (a.pages() / 64).max(1).leading_zeros()),
            Target::Vmalloc => 1024,
            Target::Floor { .. } | Target::Ram(_) | Target::Kram => 1,
        }
    }

    /// What a `set_memory_*()` caller does every `unmap_aliases_ms`: the
    /// `vm_unmap_aliases()` of the side this target allocates from (this
    /// module's, or the kernel's for `vmalloc` and `kram`). The floor has
    /// no lazy area and nothing to call.
    pub(crate) fn unmap_aliases(&self) {
        match self {
            Target::Lazy(a) | Target::Ram(a) => a.unmap_aliases(),
            Target::Vmalloc | Target::Kram => vmalloc::unmap_aliases(),
            Target::Floor { .. } => {}
        }
    }

    /// Whether the target is the floor (one fixed range per thread).
    pub(crate) fn is_floor(&self) -> bool {
        matches!(self, Target::Floor { .. })
    }
}

/// Puts the floor's reusable range back (its slot is empty: only the
/// floor's own thread takes and puts).
fn put_back(idle: &UnmappedSlot, r: Unmapped) {
    if let Err(r) = idle.put(r) {
        // Cannot happen: one thread, one token.
        pr_err!("stress: floor region slot taken; range lost until unload\n");
        let _ = r.into_range();
    }
}

/// The floor's region whole again: `area` (its start) followed by `rest`.
fn rejoin(area: Unmapped, rest: Option<Unmapped>) -> Unmapped {
    match rest {
        None => area,
        Some(rest) => area.join(rest).unwrap_or_else(|(a, rest)| {
            // Cannot happen: `rest` is what `split` left after `area`.
            pr_err!("stress: floor region split apart; its tail is lost until unload\n");
            let _ = rest.into_range();
            a
        }),
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Target::Floor {
            arena,
            region,
            idle,
            ..
        } = self
        {
            // The region goes back through the lazy free; a purge flushes
            // it everywhere before it is reused.
            if let Some(r) = idle.take() {
                let _ = r.into_range();
            }
            arena.release(*region);
        }
    }
}
