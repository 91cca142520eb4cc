// SPDX-License-Identifier: GPL-2.0

//! Latency histograms: log-linear buckets, constant memory, no allocation,
//! integers only.
//!
//! # Buckets and their error
//!
//! Values (nanoseconds) below 32 have a bucket each. Above, every power of
//! two `[2^e, 2^(e+1))` (`e` from 5 to 39) is cut into [`SUB_BUCKETS`] = 16
//! equal buckets of width `2^(e-4)`. Values of `2^40` ns (about 18 minutes)
//! and more share one overflow bucket. [`BUCKETS`] = 593 buckets in all.
//!
//! A percentile is reported as the **upper bound of its bucket** (the
//! conservative choice: never below the true value), capped at the exact
//! maximum. For a value `v < 2^40` the reported value `r` therefore satisfies
//!
//! ```text
//! v <= r <= v + v / 16        (exact for v < 32; relative error < 6.25 %)
//! ```
//!
//! because a bucket of width `2^(e-4)` only holds values `>= 2^e`. In the
//! overflow bucket the reported value is the maximum.
//!
//! # Two types
//!
//! - [`Hist`]: one thread's histogram, plain counters, no atomics, so
//!   [`Hist::record`] costs a few instructions and touches no shared cache
//!   line. The thread publishes it now and then with [`Hist::merge_into`],
//!   which adds it to an [`AtomicHist`] and empties it.
//! - [`AtomicHist`]: the shared histogram, atomic buckets; read with
//!   [`AtomicHist::summary`] or [`AtomicHist::percentile`], emptied with
//!   [`AtomicHist::reset`]. [`AtomicHist::record`] is for rare events
//!   recorded where they happen (purges): it costs two atomic RMWs.
//!
//! [`Latency`] holds one [`AtomicHist`] per [`Event`] and formats the table
//! of `/sys/kernel/lazy_vmap/latency` ([`Latency::write_table`]).
//!
//! # Sizes
//!
//! A [`Hist`] is about 2.4 KiB (`u32` counters), an [`AtomicHist`] about
//! 4.7 KiB, a [`Latency`] about 28 KiB: keep them off the kernel stack
//! (a `static`, or a field of something already on the heap). In the kernel
//! build both `new()`s are `const fn`, so `static LATENCY: Latency =
//! Latency::new();` works and puts the histograms in `.bss`.
//!
//! # Concurrency
//!
//! Readers may run while threads merge or record: every value a summary
//! returns is then approximate (a merge may be half seen), but the summary
//! is always internally ordered: `p50 <= p90 <= p99 <= p999 <= max`, and
//! `count` is the sum of the buckets it walked.

use super::sync::{AtomicU64, Ordering::Relaxed};
use core::fmt;

/// Sub-buckets per power of two: the relative error bound is `1 / SUB_BUCKETS`.
pub const SUB_BUCKETS: usize = 16;
const SUB_BITS: u32 = SUB_BUCKETS.trailing_zeros();
/// Values below this have a bucket each (`2 * SUB_BUCKETS`).
pub const EXACT_BELOW: u64 = 2 * SUB_BUCKETS as u64;
/// Values from this on (`2^40` ns, about 18 minutes) share the overflow bucket.
pub const OVERFLOW_FROM: u64 = 1 << 40;
/// Number of buckets, the overflow bucket included.
pub const BUCKETS: usize = EXACT_BELOW as usize + (40 - 5) * SUB_BUCKETS + 1;
const OVERFLOW: usize = BUCKETS - 1;

/// The bucket of `v` (ns).
pub fn bucket(v: u64) -> usize {
    if v < EXACT_BELOW {
        return v as usize;
    }
    if v >= OVERFLOW_FROM {
        return OVERFLOW;
    }
    let e = 63 - v.leading_zeros(); // 5..=39
    let sub = ((v >> (e - SUB_BITS)) as usize) & (SUB_BUCKETS - 1);
    EXACT_BELOW as usize + (e as usize - 5) * SUB_BUCKETS + sub
}

/// The smallest value of bucket `i`.
pub fn lower(i: usize) -> u64 {
    if i < EXACT_BELOW as usize {
        return i as u64;
    }
    if i >= OVERFLOW {
        return OVERFLOW_FROM;
    }
    let j = i - EXACT_BELOW as usize;
    let e = (j / SUB_BUCKETS) as u32 + 5;
    let sub = (j % SUB_BUCKETS) as u64;
    (SUB_BUCKETS as u64 + sub) << (e - SUB_BITS)
}

/// The largest value of bucket `i` (`u64::MAX` for the overflow bucket).
pub fn upper(i: usize) -> u64 {
    if i >= OVERFLOW {
        return u64::MAX;
    }
    lower(i + 1) - 1
}

/// Quantiles in parts per million, for [`Hist::percentile`] and
/// [`AtomicHist::percentile`].
pub const P50: u32 = 500_000;
/// 90th percentile.
pub const P90: u32 = 900_000;
/// 99th percentile.
pub const P99: u32 = 990_000;
/// 99.9th percentile.
pub const P999: u32 = 999_000;
const QUANTILES: [u32; 4] = [P50, P90, P99, P999];

/// The nearest rank of quantile `ppm` (parts per million) among `count`
/// values: `max(1, ceil(count * ppm / 10^6))`, without overflow and
/// without a 128-bit division (the kernel has none).
fn rank(count: u64, ppm: u32) -> u64 {
    const M: u64 = 1_000_000;
    let q = u64::from(ppm.min(M as u32));
    ((count / M) * q + ((count % M) * q).div_ceil(M)).max(1)
}

/// What a histogram says about its values, in ns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Values recorded.
    pub count: u64,
    /// Median (upper bound of its bucket, capped at `max`).
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest value recorded (exact).
    pub max: u64,
}

/// Walks the buckets once (`load(i)`: count of bucket `i`) and computes the
/// values at the nearest ranks of `qs` (ascending) among `total` values.
/// Ordered whatever `load` returns: the walk only moves up, and a quantile
/// whose rank is never reached (counts changed under the reader) gets `max`.
fn walk<const N: usize>(
    total: u64,
    max: u64,
    qs: [u32; N],
    load: impl Fn(usize) -> u64,
) -> [u64; N] {
    let mut out = [max; N];
    if total == 0 {
        return [0; N];
    }
    let mut k = 0;
    let mut seen = 0u64;
    for i in 0..BUCKETS {
        let c = load(i);
        if c == 0 {
            continue;
        }
        seen = seen.saturating_add(c);
        while k < N && seen >= rank(total, qs[k]) {
            out[k] = upper(i).min(max);
            k += 1;
        }
        if k == N {
            break;
        }
    }
    out
}

fn summarize(max: u64, load: impl Fn(usize) -> u64) -> Summary {
    let count = (0..BUCKETS).map(&load).fold(0u64, u64::saturating_add);
    let [p50, p90, p99, p999] = walk(count, max, QUANTILES, load);
    Summary {
        count,
        p50,
        p90,
        p99,
        p999,
        max: if count == 0 { 0 } else { max },
    }
}

/// One thread's histogram: plain counters, for the hot path.
///
/// A `u32` per bucket: merge (publish) at least every `2^32 - 1` records;
/// a bucket saturates rather than wraps if one does not.
#[derive(Clone)]
pub struct Hist {
    buckets: [u32; BUCKETS],
    count: u64,
    max: u64,
    /// Lowest and highest bucket touched since the last merge, so merging
    /// a histogram of a few buckets reads only those.
    lo: u16,
    hi: u16,
}

impl Default for Hist {
    fn default() -> Self {
        Self::new()
    }
}

impl Hist {
    /// An empty histogram.
    pub const fn new() -> Self {
        Hist {
            buckets: [0; BUCKETS],
            count: 0,
            max: 0,
            lo: BUCKETS as u16,
            hi: 0,
        }
    }

    /// Counts one value of `ns` nanoseconds.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        let i = bucket(ns);
        self.buckets[i] = self.buckets[i].saturating_add(1);
        self.count += 1;
        self.max = self.max.max(ns);
        self.lo = self.lo.min(i as u16);
        self.hi = self.hi.max(i as u16);
    }

    /// Values recorded since the last merge or reset.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Largest value recorded since the last merge or reset (0 if none).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `ppm` (parts per million, e.g. [`P99`]): the
    /// upper bound of the bucket of the nearest-rank value, capped at
    /// [`Hist::max`]; 0 when empty.
    pub fn percentile(&self, ppm: u32) -> u64 {
        walk(self.count, self.max, [ppm], |i| u64::from(self.buckets[i]))[0]
    }

    /// Count, p50, p90, p99, p999 and max.
    pub fn summary(&self) -> Summary {
        summarize(self.max, |i| u64::from(self.buckets[i]))
    }

    /// Adds this histogram to `into` (atomically, bucket by bucket) and
    /// empties it. Cost: one atomic add per bucket touched since the last
    /// merge, plus one `fetch_max`; nothing when empty.
    pub fn merge_into(&mut self, into: &AtomicHist) {
        if self.count == 0 {
            return;
        }
        for i in self.lo as usize..=self.hi as usize {
            let c = self.buckets[i];
            if c != 0 {
                into.buckets[i].fetch_add(u64::from(c), Relaxed);
                self.buckets[i] = 0;
            }
        }
        into.max.fetch_max(self.max, Relaxed);
        self.count = 0;
        self.max = 0;
        self.lo = BUCKETS as u16;
        self.hi = 0;
    }

    /// Empties the histogram (without publishing it).
    pub fn reset(&mut self) {
        if self.count != 0 {
            self.buckets[self.lo as usize..=self.hi as usize].fill(0);
        }
        self.count = 0;
        self.max = 0;
        self.lo = BUCKETS as u16;
        self.hi = 0;
    }
}

/// A histogram shared by threads: atomic buckets.
pub struct AtomicHist {
    buckets: [AtomicU64; BUCKETS],
    max: AtomicU64,
}

impl AtomicHist {
    /// An empty histogram.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        AtomicHist {
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
            max: AtomicU64::new(0),
        }
    }

    /// An empty histogram (loom's atomics have no `const` constructor).
    #[cfg(loom)]
    pub fn new() -> Self {
        AtomicHist {
            buckets: core::array::from_fn(|_| AtomicU64::new(0)),
            max: AtomicU64::new(0),
        }
    }

    /// Counts one value of `ns` nanoseconds: two atomic RMWs on shared
    /// lines, for rare events; frequent ones go through a [`Hist`].
    pub fn record(&self, ns: u64) {
        self.buckets[bucket(ns)].fetch_add(1, Relaxed);
        self.max.fetch_max(ns, Relaxed);
    }

    /// Empties the histogram. Merges racing with it may be half kept.
    pub fn reset(&self) {
        for b in &self.buckets {
            b.store(0, Relaxed);
        }
        self.max.store(0, Relaxed);
    }

    /// Values recorded (the sum of the buckets).
    pub fn count(&self) -> u64 {
        self.buckets
            .iter()
            .map(|b| b.load(Relaxed))
            .fold(0, u64::saturating_add)
    }

    /// Largest value recorded (exact; 0 if none).
    pub fn max(&self) -> u64 {
        self.max.load(Relaxed)
    }

    /// The value at quantile `ppm` (parts per million, e.g. [`P99`]): the
    /// upper bound of the bucket of the nearest-rank value, capped at the
    /// maximum; 0 when empty. For several quantiles use [`Self::summary`],
    /// which is ordered even against concurrent updates.
    pub fn percentile(&self, ppm: u32) -> u64 {
        let max = self.max();
        walk(self.count(), max, [ppm], |i| self.buckets[i].load(Relaxed))[0]
    }

    /// Count, p50, p90, p99, p999 and max, from one reading of the
    /// maximum and two walks over the buckets; `p50 <= p90 <= p99 <= p999
    /// <= max` even when other threads update the histogram meanwhile.
    pub fn summary(&self) -> Summary {
        summarize(self.max(), |i| self.buckets[i].load(Relaxed))
    }
}

/// The events whose latency is measured, and who measures them:
///
/// - `alloc`, `free`: the stress threads (kernel side, both targets), per
///   operation, in a per-thread [`Hist`] merged at each publish. A free's
///   time includes the threshold purge it may run inline.
/// - `purge`: `lazy.rs` through [`super::lazy::Env::record`]: a purge that
///   took areas, from holding the purge lock to its end (lock wait excluded).
/// - `purge_flush`: `lazy.rs`: the purge's [`super::lazy::Env::flush`].
/// - `purge_hold`: `lazy.rs`: one tree-lock hold giving areas back
///   (measured inside the hold).
/// - `alloc_wait`: `lazy.rs`: an allocation's synchronous purge on the
///   exhaustion path, the wait for the purge lock included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// One allocation.
    Alloc = 0,
    /// One free.
    Free = 1,
    /// A whole purge.
    Purge = 2,
    /// The purge's TLB flush.
    PurgeFlush = 3,
    /// One tree-lock hold giving areas back.
    PurgeHold = 4,
    /// An allocation waiting on or doing a purge.
    AllocWait = 5,
}

impl Event {
    /// Every event, in the order of the latency table.
    pub const ALL: [Event; 6] = [
        Event::Alloc,
        Event::Free,
        Event::Purge,
        Event::PurgeFlush,
        Event::PurgeHold,
        Event::AllocWait,
    ];

    /// The name in the latency table.
    pub fn name(self) -> &'static str {
        [
            "alloc",
            "free",
            "purge",
            "purge_flush",
            "purge_hold",
            "alloc_wait",
        ][self as usize]
    }
}

/// The header line of [`Latency::write_table`].
pub const TABLE_HEADER: &str = "event count p50 p90 p99 p999 max";

/// One [`AtomicHist`] per [`Event`]: what `/sys/kernel/lazy_vmap/latency`
/// shows.
pub struct Latency {
    hists: [AtomicHist; Event::ALL.len()],
}

impl Latency {
    /// Empty histograms.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Latency {
            hists: [const { AtomicHist::new() }; Event::ALL.len()],
        }
    }

    /// Empty histograms.
    #[cfg(loom)]
    pub fn new() -> Self {
        Latency {
            hists: core::array::from_fn(|_| AtomicHist::new()),
        }
    }

    /// The histogram of `ev` (to merge a thread's [`Hist`] into).
    pub fn hist(&self, ev: Event) -> &AtomicHist {
        &self.hists[ev as usize]
    }

    /// Records one value of `ev` directly (rare events: purges).
    pub fn record(&self, ev: Event, ns: u64) {
        self.hist(ev).record(ns)
    }

    /// Empties every histogram (at stress start).
    pub fn reset(&self) {
        for h in &self.hists {
            h.reset();
        }
    }

    /// Writes the table: the line [`TABLE_HEADER`], then one line per event
    /// in [`Event::ALL`] order, `name count p50 p90 p99 p999 max`, values in
    /// ns, single spaces, every line ending in `\n`. An event never recorded
    /// reads `name 0 0 0 0 0 0`. About 400 bytes at most.
    pub fn write_table<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        writeln!(w, "{TABLE_HEADER}")?;
        for ev in Event::ALL {
            let s = self.hist(ev).summary();
            writeln!(
                w,
                "{} {} {} {} {} {} {}",
                ev.name(),
                s.count,
                s.p50,
                s.p90,
                s.p99,
                s.p999,
                s.max
            )?;
        }
        Ok(())
    }
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Default for AtomicHist {
    fn default() -> Self {
        Self::new()
    }
}
