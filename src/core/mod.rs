// SPDX-License-Identifier: GPL-2.0

//! The module's pure logic: no kernel calls, so the same source builds into
//! the kernel module and into the host test crate (`host/`), where it runs
//! under property tests and the `loom` model checker.
//!
//! - [`blocks`]: vmap blocks (`vm_map_ram()`) and `vm_unmap_aliases()`.
//! - [`freetree`]: the vmap-area allocator (free ranges in an augmented tree).
//! - [`hist`]: latency histograms (log-linear, constant memory, no allocation).
//! - [`history`]: the `bug` knob: the kernel's real lazy-vmap bugs, brought back.
//! - [`lazy`]: lazy free and purge, with the 2010 bug and its three fixes.
//! - [`parse`]: strict parsing of sysfs knob writes.
//! - [`workload`]: the stress workloads, shaped like `lib/test_vmalloc.c`.
#![allow(unreachable_pub, dead_code)]

pub mod blocks;
pub mod freetree;
pub mod hist;
pub mod history;
pub mod lazy;
pub mod parse;
pub mod sync;
pub mod workload;
