// SPDX-License-Identifier: GPL-2.0

//! The platform layer: every `unsafe` of the module lives in this folder.
//!
//! 6.12's kernel crate has no abstraction for kthreads, sysfs attributes,
//! kernel page tables, cross-CPU calls or TLB flushes, so the module reaches
//! them through `bindings` and the C helpers of `src/shim.c` ([`ffi`]). Each
//! file here wraps one of them once, in a small safe API whose types carry
//! the ownership the C side leaves implicit, so that the rest of the module
//! (the arena, the stress threads, sysfs, the module struct and the pure
//! logic of `src/core/`) is safe Rust:
//!
//! - [`pgtable`]: the arena's range of kernel virtual space and its PTEs;
//!   pages mapped there are owned by the table, and a [`pgtable::Mapped`]
//!   token is the only way to read, write or unmap them;
//! - [`vmalloc`]: an area of the kernel's own `vmalloc()`, freed on drop;
//! - [`tlb`]: this CPU's TLB flush primitives (`invlpg`, full flush);
//! - [`cpu`]: online CPUs, running a function on every one, preemption
//!   points, busy waits, RAM size;
//! - [`kthread`]: a CPU-bound kernel thread owning its data;
//! - [`sysfs`]: a `/sys/kernel/<dir>` table of attributes dispatched to a
//!   handler;
//! - [`sync`]: the static purge lock;
//! - [`time`]: the monotonic clock, read without lockdep's cost;
//! - [`trace`]: the `lazy_vmap:*` trace events (defined in C);
//! - [`workqueue`]: `flush_work()`, and scoped work items on given CPUs
//!   (the purge helpers of mode `nodes`);
//! - [`debug`]: BUG, WARN and the test hooks (fault injection).
//!
//! Where the kernel crate has the abstraction it is used directly by the
//! rest of the module (`SpinLock`, `Mutex`, `Arc`, `KVec`, `Ktime`).

pub(crate) mod cpu;
pub(crate) mod debug;
mod ffi;
pub(crate) mod kthread;
pub(crate) mod pgtable;
pub(crate) mod sync;
pub(crate) mod sysfs;
pub(crate) mod time;
pub(crate) mod tlb;
pub(crate) mod trace;
pub(crate) mod vmalloc;
pub(crate) mod workqueue;
