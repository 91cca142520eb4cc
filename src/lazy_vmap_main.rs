// SPDX-License-Identifier: GPL-2.0

//! lazy_vmap: the kernel's lazy vmap-area freeing and purging, reimplemented
//! in Rust on real kernel page tables and real TLB flushes, with the 2010
//! `BUG_ON(nr > vmap_lazy_nr)` race and its three fixes.
//!
//! Layout, bottom up:
//! - [`sys`]: the platform layer, where all FFI and raw memory access live: the arena's
//!   kernel virtual range and its PTEs in init_mm, pages, vmalloc areas,
//!   CPUs and cross-CPU calls, TLB primitives, kthreads, sysfs, the purge
//!   lock, BUG/WARN and test hooks;
//! - [`tlb`]: kernel TLB flushes on every CPU (which flush, where);
//! - [`lazy_core`]: the pure logic, also built and tested on the host:
//!   the area allocator, lazy free and purge with its modes, knob parsing,
//!   the workload table;
//! - [`arena`]: allocator + lazy state on the real page tables;
//! - [`blocks`]: the vmap blocks (`vm_map_ram()`, `vm_unmap_aliases()`)
//!   on the arena;
//! - [`oracle`]: the no-alias oracle, which probes every purge's flush;
//! - [`stress`]: per-CPU kthreads hammering the arena or vmalloc: targets,
//!   the worker loop, control;
//! - [`sysfs`]: the directory `/sys/kernel/lazy_vmap/`.
//!
//! The trace events `lazy_vmap:*` (6.12's `vmalloc:*` fields and formats)
//! are fired through [`sys::trace`].

// The arena's `try_pin_init!` has more fields than the default limit expands.
#![recursion_limit = "256"]

use kernel::prelude::*;
use kernel::sync::Arc;

mod arena;
mod blocks;
mod knobs;
#[path = "core/mod.rs"]
mod lazy_core;
mod oracle;
mod stress;
mod sys;
mod sysfs;
mod tlb;

module! {
    type: LazyVmap,
    name: "lazy_vmap",
    description: "Lazy vmap area freeing and purging, the 2010 race and its fixes",
    license: "GPL",
}

/// Stops the stress threads when dropped.
struct StressHandle(Arc<stress::Stress>);

impl Drop for StressHandle {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Everything the module owns. Fields drop in order: the sysfs directory
/// first (no new commands), then the threads; the arena goes with the last
/// reference to the `Stress`, purging and returning every page and PTE.
struct LazyVmap {
    _sysfs: sysfs::Registration,
    _stress: StressHandle,
}

impl kernel::Module for LazyVmap {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let cpus = sys::cpu::online();
        let mut fault = sys::debug::InitFault::arm().inspect_err(|_| {
            pr_err!("inject_init_failure: needs CONFIG_FAULT_INJECTION and N <= INT_MAX\n");
        })?;
        let module = (|| {
            let knobs = Arc::new(knobs::Knobs::new(cpus), GFP_KERNEL)?;
            let stress = stress::Stress::new(knobs)?;
            let sysfs = sysfs::Registration::register(&stress)?;
            Ok(LazyVmap {
                _sysfs: sysfs,
                _stress: StressHandle(stress),
            })
        })();
        let armed = fault.armed();
        if armed > 0 {
            // Clears what is left of the count so that nothing after init fails.
            match fault.disarm() {
                0 => pr_info!("inject_init_failure={armed}: allocation {armed} of init failed\n"),
                left => pr_info!(
                    "inject_init_failure={armed}: not reached, init made {} allocations\n",
                    armed - left
                ),
            }
        }
        match &module {
            Ok(_) => pr_info!("loaded: {} CPUs, /sys/kernel/lazy_vmap\n", cpus),
            // Everything built so far was dropped on the way out.
            Err(e) => pr_warn!("init failed ({:?}), nothing left behind\n", e),
        }
        module
    }
}
