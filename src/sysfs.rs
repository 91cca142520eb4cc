// SPDX-License-Identifier: GPL-2.0

//! `/sys/kernel/lazy_vmap/`: the knobs, as a table of `{name, mode, show,
//! store}`.
//!
//! The directory and the dispatch of every read and write to this table, by
//! index, are in [`crate::sys::sysfs`]. A write is parsed strictly (`lazy_core::parse`)
//! before anything changes, so a malformed one fails with `EINVAL` and leaves
//! the knob as it was; a knob that must not change under a running stress
//! fails with `EBUSY`. Writes are root-only through the file modes.

use crate::arena::LATENCY;
use crate::knobs::*;
use crate::lazy_core::blocks::VbMode;
use crate::lazy_core::history::{Bug, HISTORY};
use crate::lazy_core::lazy::Env;
use crate::lazy_core::lazy::{Mode, PoolDecay, Why};
use crate::lazy_core::parse;
use crate::lazy_core::workload::{self, WORKLOADS};
use crate::stress::Stress;
use crate::sys::cpu;
use crate::sys::pgtable::{LOCAL_FLUSHES_FULL, LOCAL_FLUSHES_PAGES, QUARANTINE_FREED};
use crate::sys::sysfs::{Buf, Dir, Handler};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering::*};
use kernel::c_str;
use kernel::prelude::*;
use kernel::sync::Arc;

type Show = fn(&Stress, &mut Buf<'_>) -> fmt::Result;
type Store = fn(&Arc<Stress>, &[u8]) -> Result;

struct Knob {
    name: &'static CStr,
    mode: u16,
    show: Show,
    store: Option<Store>,
}

const RW: u16 = 0o644;
const RO: u16 = 0o444;
const WO: u16 = 0o200;

/// A number in `min..=max`, or `EINVAL`.
fn parse_u64(buf: &[u8], min: u64, max: u64) -> Result<u64> {
    parse::parse_u64(buf, min, max).map_err(|_| EINVAL)
}

/// The index of one of `names`, or `EINVAL`.
fn parse_name(buf: &[u8], names: &[&str]) -> Result<usize> {
    parse::parse_name(buf, names).map_err(|_| EINVAL)
}

fn max_threads() -> u64 {
    4 * u64::from(cpu::online())
}

static KNOBS: [Knob; 29] = [
    Knob {
        name: c_str!("stress"),
        mode: RW,
        show: |s, b| writeln!(b, "{}", u8::from(s.running())),
        store: Some(|s, buf| match parse_u64(buf, 0, 1)? {
            1 => s.start(),
            _ => {
                s.stop();
                Ok(())
            }
        }),
    },
    Knob {
        name: c_str!("threads"),
        mode: RW,
        show: |s, b| writeln!(b, "{}", s.knobs.threads.load(Relaxed)),
        store: Some(|s, buf| {
            let v = parse_u64(buf, 1, max_threads())? as u32;
            s.set_stopped(|k| k.threads.store(v, Relaxed))
        }),
    },
    Knob {
        name: c_str!("duration_ms"),
        mode: RW,
        show: |s, b| writeln!(b, "{}", s.knobs.duration_ms.load(Relaxed)),
        store: Some(|s, buf| {
            let v = parse_u64(buf, 0, MAX_DURATION_MS)?;
            s.set_stopped(|k| k.duration_ms.store(v, Relaxed))
        }),
    },
    Knob {
        name: c_str!("workload"),
        mode: RW,
        show: |s, b| {
            writeln!(
                b,
                "{}",
                WORKLOADS[s.knobs.workload.load(Relaxed) as usize].name
            )
        },
        store: Some(|s, buf| {
            let v = parse_name(buf, &workload::names())? as u32;
            s.set_stopped(|k| k.workload.store(v, Relaxed))
        }),
    },
    Knob {
        name: c_str!("target"),
        mode: RW,
        show: |s, b| writeln!(b, "{}", TARGETS[s.knobs.target.load(Relaxed) as usize]),
        store: Some(|s, buf| {
            let v = parse_name(buf, &TARGETS)? as u32;
            s.set_stopped(|k| k.target.store(v, Relaxed))
        }),
    },
    Knob {
        name: c_str!("nr_pages"),
        mode: RW,
        show: |s, b| writeln!(b, "{}", s.knobs.nr_pages.load(Relaxed)),
        store: Some(|s, buf| {
            let v = parse_u64(buf, 1, MAX_NR_PAGES)?;
            s.set_stopped(|k| k.nr_pages.store(v, Relaxed))
        }),
    },
    Knob {
        name: c_str!("busy_areas"),
        mode: RW,
        show: |s, b| writeln!(b, "{}", s.knobs.busy_areas.load(Relaxed)),
        store: Some(|s, buf| {
            let v = parse_u64(buf, 0, MAX_BUSY_AREAS)?;
            s.set_stopped(|k| k.busy_areas.store(v, Relaxed))
        }),
    },
    Knob {
        name: c_str!("arena_mb"),
        mode: RW,
        show: |s, b| writeln!(b, "{}", s.knobs.arena_mb.load(Relaxed)),
        store: Some(|s, buf| s.set_arena_mb(parse_u64(buf, ARENA_MB.0, ARENA_MB.1)?)),
    },
    Knob {
        name: c_str!("lazy_max_pages"),
        mode: RW,
        show: |s, b| writeln!(b, "{}", s.arena().map_or(0, |a| a.lazy.lazy_max_pages())),
        store: Some(|s, buf| s.set_lazy_max_pages(parse_u64(buf, 1, u64::from(u32::MAX))?)),
    },
    Knob {
        name: c_str!("mode"),
        mode: RW,
        show: |s, b| writeln!(b, "{}", s.knobs.mode().name()),
        store: Some(|s, buf| {
            let names = Mode::ALL.map(|m| m.name());
            s.set_mode(Mode::ALL[parse_name(buf, &names)?])
        }),
    },
    Knob {
        name: c_str!("on_race"),
        mode: RW,
        show: |s, b| writeln!(b, "{}", OnRace::NAMES[s.knobs.on_race() as usize]),
        store: Some(|s, buf| {
            let v = parse_name(buf, &OnRace::NAMES)? as u8;
            s.knobs.on_race.store(v, Relaxed);
            Ok(())
        }),
    },
    Knob {
        name: c_str!("race_delay_us"),
        mode: RW,
        show: |s, b| writeln!(b, "{}", s.knobs.race_delay_us.load(Relaxed)),
        store: Some(|s, buf| {
            let v = parse_u64(buf, 0, MAX_RACE_DELAY_US)?;
            s.knobs.race_delay_us.store(v, Relaxed);
            Ok(())
        }),
    },
    Knob {
        name: c_str!("vb_mode"),
        mode: RW,
        show: |s, b| {
            let m = VbMode::ALL[s.knobs.vb_mode.load(Relaxed) as usize % VbMode::ALL.len()];
            writeln!(b, "{}", m.name())
        },
        store: Some(|s, buf| {
            let names = VbMode::ALL.map(|m| m.name());
            let v = parse_name(buf, &names)? as u8;
            s.set_stopped(|k| k.vb_mode.store(v, Relaxed))
        }),
    },
    Knob {
        name: c_str!("unmap_aliases"),
        mode: WO,
        show: |_, _| Err(fmt::Error),
        store: Some(|s, buf| {
            parse_u64(buf, 1, 1)?;
            s.unmap_aliases()
        }),
    },
    Knob {
        name: c_str!("unmap_aliases_ms"),
        mode: RW,
        show: |s, b| writeln!(b, "{}", s.knobs.unmap_aliases_ms.load(Relaxed)),
        store: Some(|s, buf| {
            let v = parse_u64(buf, 0, MAX_UNMAP_ALIASES_MS)?;
            s.knobs.unmap_aliases_ms.store(v, Relaxed);
            Ok(())
        }),
    },
    Knob {
        name: c_str!("check_map"),
        mode: RW,
        show: |s, b| writeln!(b, "{}", u8::from(s.knobs.check_map.load(Relaxed))),
        store: Some(|s, buf| {
            s.knobs.check_map.store(parse_u64(buf, 0, 1)? == 1, Relaxed);
            Ok(())
        }),
    },
    Knob {
        name: c_str!("check_tlb"),
        mode: RW,
        show: |s, b| writeln!(b, "{}", u8::from(s.knobs.check_tlb.load(Relaxed))),
        store: Some(|s, buf| {
            s.knobs.check_tlb.store(parse_u64(buf, 0, 1)? == 1, Relaxed);
            Ok(())
        }),
    },
    Knob {
        name: c_str!("check_alias"),
        mode: RW,
        show: |s, b| writeln!(b, "{}", u8::from(s.knobs.check_alias.load(Relaxed))),
        store: Some(|s, buf| {
            s.knobs
                .check_alias
                .store(parse_u64(buf, 0, 1)? == 1, Relaxed);
            Ok(())
        }),
    },
    Knob {
        name: c_str!("flush"),
        mode: RW,
        show: |s, b| writeln!(b, "{}", FLUSH[usize::from(s.knobs.flush.load(Relaxed))]),
        store: Some(|s, buf| s.set_flush(parse_name(buf, &FLUSH)? == 1)),
    },
    Knob {
        name: c_str!("purge"),
        mode: WO,
        show: |_, _| Err(fmt::Error),
        store: Some(|s, buf| {
            parse_u64(buf, 1, 1)?;
            s.purge_on_demand()
        }),
    },
    Knob {
        name: c_str!("selftest"),
        mode: RW,
        show: show_selftest,
        store: Some(store_selftest),
    },
    Knob {
        name: c_str!("purge_hold_areas"),
        mode: RW,
        show: |s, b| writeln!(b, "{}", s.knobs.purge_hold_areas.load(Relaxed)),
        store: Some(|s, buf| {
            let v = parse_u64(buf, 0, MAX_PURGE_HOLD_AREAS)?;
            s.knobs.purge_hold_areas.store(v, Relaxed);
            Ok(())
        }),
    },
    Knob {
        name: c_str!("bug"),
        mode: RW,
        show: |s, b| writeln!(b, "{}", s.knobs.bug().name()),
        store: Some(|s, buf| {
            let v = parse_name(buf, &Bug::NAMES)? as u8;
            s.set_stopped(|k| k.bug.store(v, Relaxed))
        }),
    },
    Knob {
        name: c_str!("drain_stuck_rounds"),
        mode: RW,
        show: |s, b| writeln!(b, "{}", s.knobs.drain_stuck_rounds.load(Relaxed)),
        store: Some(|s, buf| {
            let v = parse_u64(buf, 0, MAX_DRAIN_STUCK_ROUNDS)?;
            s.knobs.drain_stuck_rounds.store(v, Relaxed);
            Ok(())
        }),
    },
    Knob {
        name: c_str!("pool_decay"),
        mode: RW,
        show: |s, b| writeln!(b, "{}", s.knobs.pool_decay().name()),
        store: Some(|s, buf| {
            let v = parse_name(buf, &PoolDecay::NAMES)? as u8;
            s.knobs.pool_decay.store(v, Relaxed);
            Ok(())
        }),
    },
    Knob {
        name: c_str!("nonlazy"),
        mode: WO,
        show: |_, _| Err(fmt::Error),
        store: Some(|s, buf| s.set_nonlazy(parse_u64(buf, 0, 1)? == 1)),
    },
    Knob {
        name: c_str!("history"),
        mode: RO,
        show: show_history,
        store: None,
    },
    Knob {
        name: c_str!("stats"),
        mode: RO,
        show: show_stats,
        store: None,
    },
    Knob {
        name: c_str!("latency"),
        mode: RO,
        show: |_, b| LATENCY.write_table(b),
        store: None,
    },
];

/// Last self-test: kind (0 none, else 1 + its index in `SELFTESTS`), CPUs,
/// and two counts: fresh and stale reads (`tlb*`), or reads made and stale
/// ones (`*aliases`).
static SELFTEST: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
const SELFTESTS: [&str; 5] = [
    "tlb",
    "tlb-noflush",
    "aliases",
    "kernel-aliases",
    "kernel-noaliases",
];

fn store_selftest(s: &Arc<Stress>, buf: &[u8]) -> Result {
    let kind = parse_name(buf, &SELFTESTS)?;
    let (cpus, a, b) = match kind {
        0 | 1 => {
            let (c, fresh, stale) = s.tlb_selftest(kind == 1)?;
            (c, u64::from(fresh), u64::from(stale))
        }
        2 => s.aliases_selftest(false, true)?,
        k => s.aliases_selftest(true, k == 3)?,
    };
    for (slot, v) in SELFTEST
        .iter()
        .zip([kind as u64 + 1, u64::from(cpus), a, b])
    {
        slot.store(v, Relaxed);
    }
    Ok(())
}

fn show_selftest(_: &Stress, b: &mut Buf<'_>) -> fmt::Result {
    let [kind, cpus, x, y] = SELFTEST.each_ref().map(|v| v.load(Relaxed));
    match kind {
        0 => writeln!(b, "none"),
        1 | 2 => writeln!(
            b,
            "{} cpus={cpus} fresh={x} stale={y}",
            SELFTESTS[kind as usize - 1]
        ),
        k => writeln!(
            b,
            "{} cpus={cpus} probed={x} stale={y}",
            SELFTESTS[k as usize - 1]
        ),
    }
}

/// The exhibits of the `bug` knob: one line each, with the kernels that
/// had the behaviour, the commits that brought it and fixed it, and the
/// stat of its detector.
fn show_history(_: &Stress, b: &mut Buf<'_>) -> fmt::Result {
    writeln!(b, "exhibit kernels introduced fixed_by detector")?;
    for e in &HISTORY {
        writeln!(
            b,
            "{} {} {} {} {}",
            e.bug.name(),
            e.kernels,
            e.introduced,
            e.fixed_by,
            e.detector
        )?;
    }
    Ok(())
}

fn show_stats(s: &Stress, b: &mut Buf<'_>) -> fmt::Result {
    let k = &s.knobs;
    let st = &s.stats;
    let ld = |a: &core::sync::atomic::AtomicU64| a.load(Relaxed);
    let running = s.running();
    writeln!(b, "running {}", u8::from(running))?;
    writeln!(b, "mode {}", k.mode().name())?;
    writeln!(b, "target {}", TARGETS[k.target.load(Relaxed) as usize])?;
    writeln!(
        b,
        "workload {}",
        WORKLOADS[k.workload.load(Relaxed) as usize].name
    )?;
    writeln!(b, "threads {}", k.threads.load(Relaxed))?;
    let end = if running {
        crate::sys::time::now_ns() as i64
    } else {
        st.run_end_ns.load(Relaxed)
    };
    let elapsed_us = ((end - st.run_start_ns.load(Relaxed)) / 1000).max(0) as u64;
    let elapsed_ms = elapsed_us / 1000;
    let run_ops = ld(&st.ops) - ld(&st.run_ops0);
    writeln!(b, "ops {}", ld(&st.ops))?;
    writeln!(b, "allocs {}", ld(&st.allocs))?;
    writeln!(b, "frees {}", ld(&st.frees))?;
    writeln!(b, "freed_pages {}", ld(&st.freed_pages))?;
    writeln!(b, "alloc_failures {}", ld(&st.alloc_failures))?;
    writeln!(b, "mismatches {}", ld(&st.mismatches))?;
    writeln!(b, "stale_tlb {}", ld(&st.stale_tlb))?;
    writeln!(b, "unmap_aliases_calls {}", ld(&st.unmap_aliases_calls))?;
    writeln!(b, "run_ops {run_ops}")?;
    writeln!(b, "run_elapsed_ms {elapsed_ms}")?;
    writeln!(b, "run_elapsed_us {elapsed_us}")?;
    writeln!(b, "run_loop_us {}", st.run_loop_ns.load(Relaxed) / 1000)?;
    writeln!(b, "run_ops_per_sec {}", run_ops * 1000 / elapsed_ms.max(1))?;
    s.with_totals(|lz, ar, arena| {
        let purges: u64 = lz.purges.iter().map(ld).sum();
        writeln!(b, "purges {purges}")?;
        writeln!(b, "alloc_failures_busy {}", ld(&lz.alloc_failures_busy))?;
        for m in Mode::ALL {
            writeln!(b, "purges_{} {}", m.name(), ld(&lz.purges[m as usize]))?;
        }
        for w in Why::ALL {
            writeln!(b, "purges_{} {}", w.name(), ld(&lz.purges_by[w as usize]))?;
        }
        writeln!(b, "purged_areas {}", ld(&lz.purged_areas))?;
        writeln!(b, "purged_pages {}", ld(&lz.purged_pages))?;
        writeln!(b, "purge_holds {}", ld(&lz.purge_holds))?;
        writeln!(b, "tlb_flushes {}", ld(&ar.flushes))?;
        writeln!(b, "tlb_flushes_pages {}", ld(&ar.page_flushes))?;
        writeln!(b, "tlb_flushes_full {}", ld(&ar.full_flushes))?;
        writeln!(b, "tlb_flush_cpus {}", ld(&ar.flush_cpus))?;
        writeln!(b, "flushed_span_pages {}", ld(&ar.flushed_span))?;
        writeln!(b, "skipped_flushes {}", ld(&ar.skipped_flushes))?;
        writeln!(b, "alias_rounds {}", ld(&ar.alias_rounds))?;
        writeln!(b, "alias_probes {}", ld(&ar.alias_probes))?;
        writeln!(b, "stale_alias {}", ld(&ar.stale_alias))?;
        writeln!(b, "stale_alias_cpumask {:#x}", ld(&ar.stale_alias_cpumask))?;
        writeln!(b, "quarantined_pages {}", ld(&ar.quarantined))?;
        writeln!(b, "quarantine_freed {}", QUARANTINE_FREED.load(Relaxed))?;
        writeln!(
            b,
            "local_flushes_pages {}",
            LOCAL_FLUSHES_PAGES.load(Relaxed)
        )?;
        writeln!(b, "local_flushes_full {}", LOCAL_FLUSHES_FULL.load(Relaxed))?;
        writeln!(b, "race_detected {}", ld(&lz.race_detected))?;
        writeln!(b, "pool_hits {}", ld(&lz.pool_hits))?;
        writeln!(b, "pool_misses {}", ld(&lz.pool_misses))?;
        writeln!(b, "purge_helpers {}", ld(&lz.purge_helpers))?;
        writeln!(b, "decayed_areas {}", ld(&lz.decayed_areas))?;
        writeln!(b, "decay_holds {}", ld(&lz.decay_holds))?;
        writeln!(b, "drains_queued {}", ld(&ar.drains_queued))?;
        writeln!(b, "drains_run {}", ld(&ar.drains_run))?;
        writeln!(b, "drain_ns_total {}", ld(&ar.drain_ns_total))?;
        writeln!(b, "drain_ns_max {}", ld(&ar.drain_ns_max))?;
        writeln!(b, "drains_over_10ms {}", ld(&ar.drains_over_10ms))?;
        writeln!(b, "drains_bound {}", ld(&ar.drains_bound))?;
        writeln!(b, "drain_rounds {}", ld(&lz.drain_rounds))?;
        writeln!(b, "drain_stuck {}", ld(&lz.drain_stuck))?;
        writeln!(b, "purge_counter_subs {}", ld(&lz.purge_counter_subs))?;
        writeln!(b, "live_ptes {}", ld(&ar.live_ptes))?;
        writeln!(b, "map_mismatches {}", ld(&ar.map_mismatches))?;
        if let Some(a) = arena {
            writeln!(b, "lazy_pages {}", a.lazy.lazy_pages())?;
            writeln!(b, "lazy_pages_min {}", a.lazy.stats.lazy_min.load(Relaxed))?;
            writeln!(b, "lazy_pages_max {}", a.lazy.stats.lazy_max.load(Relaxed))?;
            writeln!(
                b,
                "purge_hold_max_areas {}",
                a.lazy.stats.purge_hold_max_areas.load(Relaxed)
            )?;
            writeln!(b, "lazy_max_pages {}", a.lazy.lazy_max_pages())?;
            writeln!(b, "mapped_pages {}", a.mapped())?;
            writeln!(b, "arena_pages {}", a.pages())?;
            writeln!(b, "live_areas {}", a.lazy.live_areas())?;
            writeln!(b, "tree_locks {}", a.tree_locks())?;
            writeln!(b, "pooled_areas {}", a.pooled())?;
            writeln!(b, "vmap_nodes {}", a.nr_nodes())?;
            let vs = &a.vb.stats;
            writeln!(b, "vb_block_pages {}", a.vb.bits())?;
            writeln!(b, "vb_blocks {}", a.vb.live_blocks())?;
            writeln!(b, "vb_dirty_pages {}", a.vb.dirty_pages())?;
            writeln!(b, "vb_allocs {}", ld(&vs.vb_allocs))?;
            writeln!(b, "vb_frees {}", ld(&vs.vb_frees))?;
            writeln!(b, "vb_alloc_failures {}", ld(&vs.vb_alloc_failures))?;
            writeln!(b, "vb_blocks_new {}", ld(&vs.blocks_new))?;
            writeln!(b, "vb_blocks_freed {}", ld(&vs.blocks_freed))?;
            writeln!(b, "vb_fragmented_purged {}", ld(&vs.fragmented_purged))?;
            writeln!(b, "aliases_calls {}", ld(&vs.aliases_calls))?;
            writeln!(b, "aliases_flushes {}", ld(&vs.aliases_flushes))?;
            writeln!(b, "aliases_span_pages {}", ld(&vs.aliases_span_pages))?;
            writeln!(b, "aliases_probes {}", ld(&ar.aliases_probes))?;
            writeln!(b, "aliases_stale {}", ld(&ar.aliases_stale))?;
            writeln!(b, "lock_violations {}", ld(&vs.lock_violations))?;
            writeln!(b, "uninit_blocks {}", ld(&vs.uninit_blocks))?;
            writeln!(b, "nonlazy_pages {}", a.nonlazy_pages.load(Relaxed))?;
            writeln!(b, "bug {}", k.bug().name())?;
        }
        Ok(())
    })
}

/// `/sys/kernel/lazy_vmap`, acting on the module's [`Stress`].
pub(crate) struct Registration {
    _dir: Dir,
}

struct Table(Arc<Stress>);

impl Handler for Table {
    fn show(&self, idx: usize, b: &mut Buf<'_>) -> fmt::Result {
        (KNOBS.get(idx).ok_or(fmt::Error)?.show)(&self.0, b)
    }

    fn store(this: &Arc<Self>, idx: usize, input: &[u8]) -> Result {
        match KNOBS.get(idx).and_then(|k| k.store) {
            Some(store) => store(&this.0, input),
            None => Err(EINVAL),
        }
    }
}

impl Registration {
    /// Creates `/sys/kernel/lazy_vmap` acting on `stress`; dropping the
    /// registration removes it, waiting for callbacks in flight.
    pub(crate) fn register(stress: &Arc<Stress>) -> Result<Self> {
        let attrs = KNOBS.each_ref().map(|k| (k.name, k.mode));
        let handler = Arc::new(Table(stress.clone()), GFP_KERNEL)?;
        Ok(Registration {
            _dir: Dir::register(c_str!("lazy_vmap"), &attrs, handler)?,
        })
    }
}
