// SPDX-License-Identifier: GPL-2.0

//! The no-alias oracle: once a purge's flush round has returned, no CPU
//! may still read through an address of the areas that purge took.
//!
//! The stale-TLB detector of the stress ([`crate::stress`]) sees a stale
//! translation only when a range is handed out again and read; this oracle
//! checks the flush itself, at the moment it claims to be done. Each purge
//! tells it (through `Env::purge_took`, the core's report of every area it
//! detached) which areas it took: that is what the round *had to* cover,
//! decided from the areas, never from the union range the purge computed,
//! so a union one page short is caught. After the round (or where `flush
//! off` skipped it), and before the purge gives any range back, every online
//! CPU reads one word of each sampled page whose PTE is none with
//! `copy_from_kernel_nofault()`. x86 never caches a non-present PTE, so a
//! read that succeeds went through a translation from before the unmap: a
//! stale alias (`stale_alias`, and the CPU in `stale_alias_cpumask`). TCG
//! keeps stale entries as hardware may (platform notes), so the negative
//! controls are real: `flush off`, and the test hook `flush_skip_cpu`.
//!
//! What is probed: the lowest and the highest page of the areas taken
//! (where an off-by-one union would miss), and a deterministic sample of
//! [`SAMPLE`] of every page taken (reservoir sampling seeded by the purge's
//! number), guard pages excluded (never mapped). Writers are the purges,
//! which hold the purge lock, so the atomics below are only for `Sync`.
//!
//! `unmap_aliases` (the vmap blocks, `src/blocks.rs`) is checked the same
//! way, from the oracle's own record: every page `vb_free` unmapped is
//! offered to a second sample, which a call takes when it begins; once the
//! call has returned, those pages (whose PTEs are still none) must fault on
//! every CPU. So a walk that skips a block (`vb_mode free-list`) is caught,
//! whatever range it computed.

use crate::sys::{cpu, pgtable, tlb};
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// No `unmap_aliases` under way.
const NONE: usize = usize::MAX;

/// Pages sampled per purge, besides its lowest and highest.
pub(crate) const SAMPLE: usize = 30;

/// What one probe round found.
pub(crate) struct Probed {
    /// Reads made, summed over the CPUs.
    pub(crate) probes: u64,
    /// Reads that succeeded (stale aliases).
    pub(crate) stale: u64,
    /// CPUs with at least one.
    pub(crate) cpumask: u64,
    /// The pages probed: lowest and highest taken.
    pub(crate) lo: u64,
    pub(crate) hi: u64,
}

/// A deterministic sample of the pages offered since it was last taken.
///
/// # Invariants
///
/// `seen` pages were offered since the last [`Sample::take`];
/// `pages[..min(seen, SAMPLE)]` holds a sample of them, `lo` and `hi` their
/// extremes (`u64::MAX`, 0 when none). Offers may race a take: a page
/// offered meanwhile lands in this sample or the next, and is probed once
/// its flush must have happened either way (see the users).
pub(crate) struct Sample {
    pages: [AtomicU64; SAMPLE],
    seen: AtomicU64,
    lo: AtomicU64,
    hi: AtomicU64,
    /// Samples taken since load: the seed.
    seq: AtomicU64,
}

/// The pages probed after a flush, PTE none only.
pub(crate) struct Taken {
    list: [u64; SAMPLE + 2],
    n: usize,
    lo: u64,
    hi: u64,
}

/// The oracle: what the running purge took, and what `vb_free` unmapped
/// since the last `unmap_aliases`.
///
/// # Invariants
///
/// `aliases_n` is `NONE` but between [`AliasOracle::begin_aliases`] and
/// [`AliasOracle::probe_aliases`] (both with the purge lock held, which
/// serializes them); then `aliases[..aliases_n]` are the pages to probe.
pub(crate) struct AliasOracle {
    pub(crate) purge: Sample,
    pub(crate) dirty: Sample,
    /// What the running `unmap_aliases` must flush.
    aliases: [AtomicU64; SAMPLE + 2],
    aliases_n: AtomicUsize,
    aliases_lo_hi: [AtomicU64; 2],
    /// The running purge's path (`Why as u32`), for the log.
    pub(crate) why: AtomicU32,
}

impl AliasOracle {
    pub(crate) const fn new() -> Self {
        AliasOracle {
            purge: Sample::new(),
            dirty: Sample::new(),
            why: AtomicU32::new(0),
            aliases: [ZERO; SAMPLE + 2],
            aliases_n: AtomicUsize::new(NONE),
            aliases_lo_hi: [ZERO; 2],
        }
    }

    /// An `unmap_aliases` call begins (purge lock held): what `vb_free`
    /// unmapped until now is what it must flush.
    pub(crate) fn begin_aliases(&self, pt: &pgtable::PageTable) {
        let Some(t) = self.dirty.take(pt) else {
            self.aliases_n.store(NONE, Relaxed);
            return;
        };
        for (a, &p) in self.aliases.iter().zip(&t.list[..t.n]) {
            a.store(p, Relaxed);
        }
        self.aliases_lo_hi[0].store(t.lo, Relaxed);
        self.aliases_lo_hi[1].store(t.hi, Relaxed);
        self.aliases_n.store(t.n, Relaxed);
    }

    /// An `unmap_aliases` call begins with `check_alias` off: nothing to
    /// probe, and what was offered before is dropped (the next call with
    /// the oracle on must not probe pages unmapped while it was off).
    pub(crate) fn skip_aliases(&self) {
        self.dirty.clear();
        self.aliases_n.store(NONE, Relaxed);
    }

    /// Probes what the running `unmap_aliases` had to flush, once (`None`
    /// if nothing, or already probed). Purge lock held.
    pub(crate) fn probe_aliases(&self, pt: &pgtable::PageTable) -> Option<Probed> {
        let n = self.aliases_n.swap(NONE, Relaxed);
        if n == NONE {
            return None;
        }
        let mut t = Taken {
            list: [0; SAMPLE + 2],
            n,
            lo: self.aliases_lo_hi[0].load(Relaxed),
            hi: self.aliases_lo_hi[1].load(Relaxed),
        };
        for (l, a) in t.list.iter_mut().zip(&self.aliases[..n]) {
            *l = a.load(Relaxed);
        }
        Some(t.probe(pt))
    }

    /// The purge took the area `[start, start + len)` (its guard page, the
    /// last, included; it is never mapped and not offered).
    pub(crate) fn took(&self, start: u64, len: u64) {
        self.purge.offer(start, len.saturating_sub(1));
    }

    /// Probes what the running purge took from every online CPU, then
    /// forgets it; `None` if it took nothing. Must not be called with a
    /// spinlock held or interrupts off (it runs `on_each_cpu()`).
    pub(crate) fn probe(&self, pt: &pgtable::PageTable) -> Option<Probed> {
        self.purge.take(pt).map(|t| t.probe(pt))
    }
}

/// A sampled page a complete flush has covered since (page 0 is never an
/// arena page).
const FORGOTTEN: u64 = 0;

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);

/// splitmix64: the sample's deterministic "random" choice.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Sample {
    pub(crate) const fn new() -> Self {
        Sample {
            pages: [ZERO; SAMPLE],
            seen: AtomicU64::new(0),
            lo: AtomicU64::new(u64::MAX),
            hi: AtomicU64::new(0),
            seq: AtomicU64::new(0),
        }
    }

    /// Offers pages `[start, start + n)`.
    pub(crate) fn offer(&self, start: u64, n: u64) {
        let seed = self.seq.load(Relaxed);
        for pn in start..start + n {
            let i = self.seen.fetch_add(1, Relaxed);
            self.lo.fetch_min(pn, Relaxed);
            self.hi.fetch_max(pn, Relaxed);
            let j = if (i as usize) < SAMPLE {
                i as usize
            } else {
                (mix(seed ^ i.rotate_left(32)) % (i + 1)) as usize
            };
            if j < SAMPLE {
                self.pages[j].store(pn, Relaxed);
            }
        }
    }

    /// Drops what was offered (a take with nothing to probe).
    pub(crate) fn clear(&self) {
        self.seen.store(0, Relaxed);
        self.lo.store(u64::MAX, Relaxed);
        self.hi.store(0, Relaxed);
    }

    /// A complete flush round over `[start, end)` is about to run (purge
    /// lock held, as every take): the sampled pages in it stop being an
    /// obligation of the next take. They were offered before the round
    /// began, so after their PTEs were cleared, and the round leaves no
    /// CPU translating them. Without this, a page offered, flushed by a
    /// purge, handed out again by a new block on the same area and mapped,
    /// touched and unmapped *after* the next take would be probed by that
    /// take as if the call had had to flush it: a false stale alias (seen:
    /// 86 of 8,320 probes in `all-blocks`).
    pub(crate) fn forget(&self, start: u64, end: u64) {
        let n = (self.seen.load(Relaxed) as usize).min(SAMPLE);
        for p in &self.pages[..n] {
            let pn = p.load(Relaxed);
            if (start..end).contains(&pn) {
                let _ = p.compare_exchange(pn, FORGOTTEN, Relaxed, Relaxed);
            }
        }
        let lo = self.lo.load(Relaxed);
        if (start..end).contains(&lo) {
            let _ = self.lo.compare_exchange(lo, u64::MAX, Relaxed, Relaxed);
        }
        let hi = self.hi.load(Relaxed);
        if (start..end).contains(&hi) {
            let _ = self.hi.compare_exchange(hi, 0, Relaxed, Relaxed);
        }
    }

    /// Takes the sample (and starts a new one): the lowest and highest
    /// page and the sampled ones whose PTE (`pt`) is none; `None` if
    /// nothing was offered.
    pub(crate) fn take(&self, pt: &pgtable::PageTable) -> Option<Taken> {
        let seen = self.seen.swap(0, Relaxed);
        let (lo, hi) = (self.lo.swap(u64::MAX, Relaxed), self.hi.swap(0, Relaxed));
        if seen == 0 {
            return None;
        }
        self.seq.fetch_add(1, Relaxed);
        let mut list = [0u64; SAMPLE + 2];
        let mut n = 0;
        let sampled = self.pages.iter().take((seen as usize).min(SAMPLE));
        for pn in [lo, hi].into_iter().chain(sampled.map(|p| p.load(Relaxed))) {
            let forgotten = pn == FORGOTTEN || pn == u64::MAX;
            if !forgotten && !pt.present(pn) && !list[..n].contains(&pn) {
                list[n] = pn;
                n += 1;
            }
        }
        Some(Taken { list, n, lo, hi })
    }
}

impl Taken {
    /// Reads one word of each page from every online CPU. Must not be
    /// called with a spinlock held or interrupts off.
    ///
    /// A page whose PTE is present again is skipped (its range was handed
    /// out again meanwhile: a read would succeed through the new mapping).
    pub(crate) fn probe(&self, pt: &pgtable::PageTable) -> Probed {
        let (probes, stale, mask) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
        let list = &self.list[..self.n];
        cpu::on_each(&|| {
            let me = cpu::this();
            let (mut got, mut n) = (0, 0);
            for &pn in list {
                if pt.present(pn) {
                    continue;
                }
                n += 1;
                if tlb::probe(pgtable::addr(pn)) && !pt.present(pn) {
                    got += 1;
                }
            }
            probes.fetch_add(n, Relaxed);
            if got > 0 {
                stale.fetch_add(got, Relaxed);
                mask.fetch_or(1u64.checked_shl(me).unwrap_or(0), Relaxed);
            }
        });
        Probed {
            probes: probes.into_inner(),
            stale: stale.into_inner(),
            cpumask: mask.into_inner(),
            lo: self.lo,
            hi: self.hi,
        }
    }
}
