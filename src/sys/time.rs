// SPDX-License-Identifier: GPL-2.0

//! The clock of the latency histograms and the stress's run times.
//!
//! `ktime_get_mono_fast_ns()` reads CLOCK_MONOTONIC, the clock of
//! `ktime_get()` (6.12's `kernel::time::Ktime`), through the timekeeper's
//! latch instead of its seqcount. That matters here: with lockdep (both guest
//! kernels) every seqcount read is a lockdep acquire and release, and four
//! `ktime_get()` per stress op (alloc and free timed) cost ~40% of a 1-page
//! op under TCG (measured with `make ab`); the fast read costs nothing
//! measurable. Its only weakness, a value slightly off across a concurrent
//! timekeeping update, is far below a histogram bucket.

use kernel::bindings;

/// Nanoseconds of CLOCK_MONOTONIC.
pub(crate) fn now_ns() -> u64 {
    // SAFETY: callable from any context (NMI included).
    unsafe { bindings::ktime_get_mono_fast_ns() }
}
