// SPDX-License-Identifier: GPL-2.0

//! The history of lazy vmap freeing: the `bug` knob.
//!
//! Each [`Bug`] brings back one behaviour the kernel really had, on this
//! module's code, next to today's ([`Bug::None`]). Each is caught by a
//! *general* detector, an invariant correct code keeps in every mode,
//! checked in every run whether or not an exhibit is selected:
//!
//! | exhibit | detector (stat) | invariant |
//! |---|---|---|
//! | `lazy-pte` | `live_ptes` | after an unmap returns, its range has no present PTE |
//! | `drain-loop` | `drain_stuck` | a drain makes progress, or stops |
//! | `vbq-lock` | `lock_violations` | a block queue's free list changes under that queue's lock |
//! | `vb-publish` | `uninit_blocks` | a block read from the index is initialised |
//! | `per-area-sub` | `purge_counter_subs` per purge | (a cost, not a fault: the counter's atomics) |
//! | `system-wq` | `drains_bound` | (a cost: drains run on a worker bound to one CPU) |
//!
//! [`HISTORY`] is the table the README and `make run` print.

/// One historical behaviour, or none. The discriminant is the knob's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// Today's code.
    None = 0,
    /// 2.6.28–2.6.36: an unmap (`vunmap()`, `vfree()`, `vm_unmap_ram()`)
    /// left its PTEs in place until the purge or `vm_unmap_aliases()`
    /// cleared them (fixed by 64141da58724 in 2.6.37).
    LazyPte = 1,
    /// 5.18-rc1..rc2: the drain work looped while the counter was above
    /// the threshold; `set_iounmap_nonlazy()` made it spin (690467c81b1a,
    /// fixed by c12cd77cb028).
    DrainLoop = 2,
    /// 6.5–6.9: `purge_fragmented_block()` took the lock of the queue whose
    /// xarray held the block, not of the block's CPU (fixed by 8c61291fd850).
    VbqLock = 3,
    /// 6.10: a new block was put into the index before its `cpu` field was
    /// set (fixed by 3e3de7947c75 in 6.11).
    VbPublish = 4,
    /// 6.9–6.10: the purge subtracted from the shared counter once per
    /// area, not once per node (fixed by 409faf8c97d5 in 6.11).
    PerAreaSub = 5,
    /// 6.9–7.3 (the newest release; checked in 7.3.4): the drain and its
    /// helpers run on `system_percpu_wq` (`schedule_work()`,
    /// `schedule_work_on()`), per-CPU workers. The fix, "mm/vmalloc: use
    /// dedicated unbound workqueues for vmap drain" (2026, Fixes:
    /// 72210662c5a2), is a proposed patch in no release yet; `bug none`
    /// here runs it.
    SystemWq = 6,
}

impl Bug {
    /// Every value, in the order of the knob.
    pub const ALL: [Bug; 7] = [
        Bug::None,
        Bug::LazyPte,
        Bug::DrainLoop,
        Bug::VbqLock,
        Bug::VbPublish,
        Bug::PerAreaSub,
        Bug::SystemWq,
    ];

    /// The knob's names, in the order of [`Bug::ALL`].
    pub const NAMES: [&'static str; 7] = [
        "none",
        "lazy-pte",
        "drain-loop",
        "vbq-lock",
        "vb-publish",
        "per-area-sub",
        "system-wq",
    ];

    /// The knob's name.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The value of index `v` (an unknown index is [`Bug::None`]).
    pub fn from_index(v: usize) -> Bug {
        Self::ALL.get(v).copied().unwrap_or(Bug::None)
    }
}

/// One row of the history table.
pub struct Exhibit {
    pub bug: Bug,
    /// The releases that had it: `A-B` is A through B; a bare version
    /// is that release alone. A range ending at the newest release (7.3)
    /// is a behaviour no release has fixed.
    pub kernels: &'static str,
    /// The commit that brought it in (12 hex digits).
    pub introduced: &'static str,
    /// The commit that fixed it (12 hex digits), or [`UNRELEASED`] when
    /// no release has the fix.
    pub fixed_by: &'static str,
    /// The detector (a stat of `/sys/kernel/lazy_vmap/stats`).
    pub detector: &'static str,
}

/// `fixed_by` of a behaviour whose fix is in no release (a patch still
/// on its way; `docs/history.md` names it).
pub const UNRELEASED: &str = "unreleased";

/// The exhibits of the `bug` knob, with the commits they come from (read
/// in the kernel's history; `docs/history.md` has what each says).
pub const HISTORY: [Exhibit; 6] = [
    Exhibit {
        bug: Bug::LazyPte,
        kernels: "2.6.28-2.6.36",
        introduced: "db64fe02258f",
        fixed_by: "64141da58724",
        detector: "live_ptes",
    },
    Exhibit {
        bug: Bug::DrainLoop,
        kernels: "5.18-rc1..rc2",
        introduced: "690467c81b1a",
        fixed_by: "c12cd77cb028",
        detector: "drain_stuck",
    },
    Exhibit {
        bug: Bug::VbqLock,
        kernels: "6.5-6.9",
        introduced: "fc1e0d980037",
        fixed_by: "8c61291fd850",
        detector: "lock_violations",
    },
    Exhibit {
        bug: Bug::VbPublish,
        kernels: "6.10",
        introduced: "8c61291fd850",
        fixed_by: "3e3de7947c75",
        detector: "uninit_blocks",
    },
    Exhibit {
        bug: Bug::PerAreaSub,
        kernels: "6.9-6.10",
        introduced: "72210662c5a2",
        fixed_by: "409faf8c97d5",
        detector: "purge_counter_subs",
    },
    Exhibit {
        bug: Bug::SystemWq,
        kernels: "6.9-7.3",
        introduced: "72210662c5a2",
        fixed_by: UNRELEASED,
        detector: "drains_bound",
    },
];
