// SPDX-License-Identifier: GPL-2.0

//! The tunables shared by sysfs (writer), the arena and the stress threads
//! (readers). Plain atomics: each knob is one word, validated before it is
//! stored, and the ones that must not move under a running stress are only
//! written with the control lock held and stress stopped (see `sysfs`).

use crate::lazy_core::history::Bug;
use crate::lazy_core::lazy::{Mode, PoolDecay, DRAIN_STUCK_ROUNDS, HOLD_MAX_AREAS};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};

/// What the armed check does when it finds `nr > lazy counter`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnRace {
    /// Count it in `race_detected`, log it rate-limited, go on.
    Count = 0,
    /// A WARN with the numbers, then go on.
    Warn = 1,
    /// A real kernel BUG, as in the seeds' logs.
    Bug = 2,
}

impl OnRace {
    pub(crate) const NAMES: [&'static str; 3] = ["count", "warn", "bug"];
    pub(crate) const ALL: [OnRace; 3] = [OnRace::Count, OnRace::Warn, OnRace::Bug];
}

/// Which allocator the stress threads hammer: this module's, the kernel's
/// vmalloc, the floor (map and unmap real pages at a fixed address of the
/// arena, no address-space management, only the local flush reuse needs),
/// or `vm_map_ram()`, this module's or the kernel's.
pub(crate) const TARGETS: [&str; 5] = ["lazy_vmap", "vmalloc", "floor", "ram", "kram"];
/// Values of the `flush` knob.
pub(crate) const FLUSH: [&str; 2] = ["off", "on"];
/// `target` values.
pub(crate) const TARGET_LAZY: u32 = 0;
pub(crate) const TARGET_VMALLOC: u32 = 1;
pub(crate) const TARGET_FLOOR: u32 = 2;
/// This module's `vm_map_ram()`/`vm_unmap_ram()` (the vmap blocks).
pub(crate) const TARGET_RAM: u32 = 3;
/// The kernel's `vm_map_ram()`/`vm_unmap_ram()` (its vmap blocks).
pub(crate) const TARGET_KRAM: u32 = 4;
/// Largest `unmap_aliases_ms`.
pub(crate) const MAX_UNMAP_ALIASES_MS: u64 = 1000;

/// Largest `duration_ms`: one hour.
pub(crate) const MAX_DURATION_MS: u64 = 3_600_000;
/// Largest `race_delay_us` (10 ms).
pub(crate) const MAX_RACE_DELAY_US: u64 = 10_000;
/// Largest `nr_pages`.
pub(crate) const MAX_NR_PAGES: u64 = 1024;
/// Largest `busy_areas`, and most busy areas of all threads together
/// (400 MiB of pages).
pub(crate) const MAX_BUSY_AREAS: u64 = 100_000;
/// Busy areas per thread when `busy_areas` is 0, as in test_vmalloc.
pub(crate) const DEFAULT_BUSY_AREAS: u64 = 15_000;
/// Largest `purge_hold_areas` (0 is no bound).
pub(crate) const MAX_PURGE_HOLD_AREAS: u64 = 1 << 20;
/// Largest `drain_stuck_rounds` (0 is no bound).
pub(crate) const MAX_DRAIN_STUCK_ROUNDS: u64 = 1 << 20;
/// Smallest and largest `arena_mb`.
pub(crate) const ARENA_MB: (u64, u64) = (4, 1024);

/// The knobs. Defaults as documented in the README.
pub(crate) struct Knobs {
    pub(crate) threads: AtomicU32,
    pub(crate) duration_ms: AtomicU64,
    pub(crate) workload: AtomicU32,
    pub(crate) target: AtomicU32,
    pub(crate) nr_pages: AtomicU64,
    pub(crate) arena_mb: AtomicU64,
    pub(crate) mode: AtomicU8,
    pub(crate) on_race: AtomicU8,
    pub(crate) race_delay_us: AtomicU64,
    pub(crate) busy_areas: AtomicU64,
    pub(crate) check_map: AtomicBool,
    /// Verify every fill through the direct map of the mapped pages too
    /// (the stale-TLB detector, `stale_tlb`).
    pub(crate) check_tlb: AtomicBool,
    /// The no-alias oracle probes every purge ([`crate::oracle`]).
    pub(crate) check_alias: AtomicBool,
    /// Which blocks `unmap_aliases` walks (`VbMode`).
    pub(crate) vb_mode: AtomicU8,
    /// While stress runs, thread 0 calls `unmap_aliases` every this many
    /// ms (0: never), as `set_memory_*()` callers do in a running kernel.
    pub(crate) unmap_aliases_ms: AtomicU64,
    /// Purges flush the TLB (`on`); `off` is the negative control.
    pub(crate) flush: AtomicBool,
    /// Most areas a purge gives back per tree-lock hold (0: all in one
    /// hold, the pre-4.10 behaviour, for the before/after figure).
    pub(crate) purge_hold_areas: AtomicU64,
    /// The historical behaviour brought back (`Bug`, stopped only).
    pub(crate) bug: AtomicU8,
    /// Rounds without progress after which a looping drain gives up
    /// (`drain_stuck`); 0: no bound.
    pub(crate) drain_stuck_rounds: AtomicU64,
    /// How a threshold purge decays the node pools (`PoolDecay`, mode
    /// `nodes`).
    pub(crate) pool_decay: AtomicU8,
}

impl Knobs {
    pub(crate) fn new(threads: u32) -> Self {
        Knobs {
            threads: AtomicU32::new(threads),
            duration_ms: AtomicU64::new(0),
            workload: AtomicU32::new(0),
            target: AtomicU32::new(TARGET_LAZY),
            nr_pages: AtomicU64::new(1),
            arena_mb: AtomicU64::new(128),
            mode: AtomicU8::new(Mode::Ordered as u8),
            on_race: AtomicU8::new(OnRace::Count as u8),
            race_delay_us: AtomicU64::new(0),
            busy_areas: AtomicU64::new(0),
            check_map: AtomicBool::new(true),
            check_tlb: AtomicBool::new(true),
            check_alias: AtomicBool::new(true),
            vb_mode: AtomicU8::new(0),
            unmap_aliases_ms: AtomicU64::new(0),
            flush: AtomicBool::new(true),
            purge_hold_areas: AtomicU64::new(HOLD_MAX_AREAS as u64),
            bug: AtomicU8::new(Bug::None as u8),
            drain_stuck_rounds: AtomicU64::new(DRAIN_STUCK_ROUNDS),
            pool_decay: AtomicU8::new(PoolDecay::Wraps as u8),
        }
    }

    pub(crate) fn mode(&self) -> Mode {
        Mode::ALL[self.mode.load(Relaxed) as usize]
    }

    pub(crate) fn bug(&self) -> Bug {
        Bug::from_index(usize::from(self.bug.load(Relaxed)))
    }

    pub(crate) fn pool_decay(&self) -> PoolDecay {
        PoolDecay::from_index(usize::from(self.pool_decay.load(Relaxed)))
    }

    pub(crate) fn on_race(&self) -> OnRace {
        OnRace::ALL[self.on_race.load(Relaxed) as usize]
    }
}
