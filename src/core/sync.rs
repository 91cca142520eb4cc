// SPDX-License-Identifier: GPL-2.0

//! Atomics used by the pure logic: `core`'s in the kernel and in ordinary
//! host tests, `loom`'s when the host tests are built with `--cfg loom`, so
//! the model checker sees every shared access of [`super::lazy`].
#![allow(unexpected_cfgs)]

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};

#[cfg(not(loom))]
pub use core::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};
