// SPDX-License-Identifier: GPL-2.0

//! Atomics used by the pure logic: `core`'s in the kernel and in ordinary
//! host tests, `loom`'s when the host tests are built with `--cfg loom`, so
//! the model checker sees every shared access of [`super::lazy`].
#![allow(unexpected_cfgs)]

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};

#[cfg(not(loom))]
pub use core::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};

/// The store-load barrier of a Dekker pair whose two sides are `SeqCst`
/// atomics (see `Lazy::set_mode`): a `SeqCst` read-modify-write then a
/// `SeqCst` load of another location, on each side. That is enough in
/// Rust's (C++20's) memory model, and on x86 the RMW is a `lock`ed
/// instruction, a full barrier (the kernel's `smp_mb__after_atomic()` is a
/// no-op there), so nothing is emitted. loom does not model `SeqCst` on
/// accesses (it treats them as `AcqRel`, tokio-rs/loom#180) but does model
/// `SeqCst` fences, so under loom the barrier is a real fence: the model
/// checks the fence form of the same protocol.
#[inline(always)]
pub fn smp_mb_after_atomic() {
    #[cfg(loom)]
    loom::sync::atomic::fence(Ordering::SeqCst);
}
