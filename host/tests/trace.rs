//! The trace hooks of `src/core/lazy.rs` (`Env::trace_free`, `Env::trace_purge`), which the
//! module turns into its `lazy_vmap:free_vmap_area_noflush` and `lazy_vmap:purge_vmap_area_lazy`
//! events: one per free with the counter after the free and the threshold, one per purge that ran
//! with the union it flushed and the areas it gave back (`u64::MAX, 0, 0` when it found nothing,
//! as 6.12's `__purge_vmap_area_lazy()` reports), none for a threshold purge that found the lock
//! taken; in every mode, single-threaded against a model and under threads against the counters.
#![cfg(not(loom))]

mod common;
use common::{reps, Rng};
use lazy_vmap_core::freetree::{nodes_needed, FreeTree, Node};
use lazy_vmap_core::lazy::{slots_needed, AreaSlot, Env, Lazy, Mode, NodeLazy, NodePools, Why};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

/// What the environment saw, in call order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ev {
    Flush(u64, u64),
    Free {
        va_start: u64,
        nr_lazy: u64,
        nr_lazy_max: u64,
    },
    Purge {
        start: u64,
        end: u64,
        npurged: u64,
    },
}

/// A `std` environment that counts the hooks and, when `record` is set, logs every call.
struct TraceEnv {
    purge: Mutex<()>,
    tree: Mutex<FreeTree<Vec<Node>>>,
    record: bool,
    log: Mutex<Vec<Ev>>,
    frees: AtomicU64,
    purges: AtomicU64,
    empty_purges: AtomicU64,
    npurged: AtomicU64,
    flushed_span: AtomicU64,
    /// Mode `nodes`: two nodes, each with its lazy lock and its pool lock.
    nodes: Vec<Mutex<NodeLazy>>,
    pools: Vec<Mutex<NodePools>>,
}

impl TraceEnv {
    fn push(&self, e: Ev) {
        if self.record {
            self.log.lock().unwrap().push(e);
        }
    }
}

impl Env for TraceEnv {
    type Pool = Vec<Node>;
    type PurgeGuard<'a>
        = MutexGuard<'a, ()>
    where
        Self: 'a;

    fn purge_lock(&self) -> MutexGuard<'_, ()> {
        self.purge.lock().unwrap()
    }

    fn purge_trylock(&self) -> Option<MutexGuard<'_, ()>> {
        self.purge.try_lock().ok()
    }

    fn with_tree<R>(&self, f: impl FnOnce(&mut FreeTree<Vec<Node>>) -> R) -> R {
        f(&mut self.tree.lock().unwrap())
    }

    fn flush(&self, start: u64, end: u64) {
        self.push(Ev::Flush(start, end));
    }

    fn race_window(&self) {}

    fn race(&self, _nr: i64, _lazy: i64) {}

    fn nr_nodes(&self) -> usize {
        self.nodes.len()
    }

    fn with_node_lazy<R>(&self, node: usize, f: impl FnOnce(&mut NodeLazy) -> R) -> R {
        f(&mut self.nodes[node].lock().unwrap())
    }

    fn with_node_pools<R>(&self, node: usize, f: impl FnOnce(&mut NodePools) -> R) -> R {
        f(&mut self.pools[node].lock().unwrap())
    }

    fn trace_free(&self, va_start: u64, nr_lazy: u64, nr_lazy_max: u64) {
        self.frees.fetch_add(1, Relaxed);
        self.push(Ev::Free {
            va_start,
            nr_lazy,
            nr_lazy_max,
        });
    }

    fn trace_purge(&self, start: u64, end: u64, npurged: u64) {
        if npurged == 0 {
            assert_eq!(
                (start, end),
                (u64::MAX, 0),
                "an empty purge reports ULONG_MAX, 0"
            );
            self.empty_purges.fetch_add(1, Relaxed);
        } else {
            assert!(start < end, "purge range [{start:#x}, {end:#x})");
            self.purges.fetch_add(1, Relaxed);
            self.npurged.fetch_add(npurged, Relaxed);
            self.flushed_span.fetch_add(end - start, Relaxed);
        }
        self.push(Ev::Purge {
            start,
            end,
            npurged,
        });
    }
}

struct Arena {
    env: TraceEnv,
    lazy: Lazy<Vec<AreaSlot>>,
}

impl Arena {
    fn new(base: u64, pages: u64, mode: Mode, lazy_max: u64, record: bool) -> Self {
        let pool = vec![Node::default(); nodes_needed(pages)];
        let env = TraceEnv {
            purge: Mutex::new(()),
            tree: Mutex::new(FreeTree::new(pool, base, base + pages).unwrap()),
            record,
            log: Mutex::new(Vec::new()),
            frees: AtomicU64::new(0),
            purges: AtomicU64::new(0),
            empty_purges: AtomicU64::new(0),
            npurged: AtomicU64::new(0),
            flushed_span: AtomicU64::new(0),
            nodes: (0..2).map(|_| Mutex::new(NodeLazy::new())).collect(),
            pools: (0..2).map(|_| Mutex::new(NodePools::new())).collect(),
        };
        let slots = (0..slots_needed(pages))
            .map(|_| AreaSlot::new())
            .collect::<Vec<_>>();
        Arena {
            env,
            lazy: Lazy::new(slots, base, mode, lazy_max),
        }
    }

    /// Takes the log recorded so far.
    fn take(&self) -> Vec<Ev> {
        std::mem::take(&mut *self.env.log.lock().unwrap())
    }

    /// Purges that took at least one area, all modes together (the `purges` stat).
    fn purges(&self) -> u64 {
        self.lazy.stats.purges.iter().map(|p| p.load(Relaxed)).sum()
    }

    /// The hooks' counters agree with the lazy logic's own.
    #[track_caller]
    fn assert_counters(&self) {
        let (e, st) = (&self.env, &self.lazy.stats);
        assert_eq!(
            e.frees.load(Relaxed),
            st.frees.load(Relaxed),
            "one trace_free per free"
        );
        assert_eq!(
            e.purges.load(Relaxed),
            self.purges(),
            "one trace_purge per purge that purged"
        );
        assert_eq!(
            e.npurged.load(Relaxed),
            st.purged_areas.load(Relaxed),
            "sum of npurged"
        );
    }
}

/// The purge of a batch of lazy areas `lazy` (start, len): its flush, then its event, both over
/// their hull.
fn purge_of(lazy: &[(u64, u64)]) -> [Ev; 2] {
    let lo = lazy.iter().map(|l| l.0).min().unwrap();
    let hi = lazy.iter().map(|l| l.0 + l.1).max().unwrap();
    [
        Ev::Flush(lo, hi),
        Ev::Purge {
            start: lo,
            end: hi,
            npurged: lazy.len() as u64,
        },
    ]
}

/// Random allocs, frees and purges on demand against a model: each free's events are exactly
/// its `trace_free` (address, counter after the add, threshold) and, past the threshold, the
/// purge's flush and `trace_purge`; an allocation's events are nothing or the exhaustion
/// purge's; a purge on demand of nothing reports the empty purge.
fn random_single(mode: Mode, lazy_max: u64, seed: u64) {
    let (base, pages) = (0x1000, 512);
    let a = Arena::new(base, pages, mode, lazy_max, true);
    let mut rng = Rng::new(seed);
    let mut live: Vec<(u64, u64)> = Vec::new();
    let mut lazy: Vec<(u64, u64)> = Vec::new();
    let mut nr: u64 = 0;
    let mut seen = [0u64; 3];
    for _ in 0..reps(5000) {
        let r = rng.below(100);
        if r < 2 {
            let n = a.lazy.purge(&a.env, Why::Demand);
            let want: Vec<Ev> = if lazy.is_empty() {
                seen[2] += 1;
                vec![Ev::Purge {
                    start: u64::MAX,
                    end: 0,
                    npurged: 0,
                }]
            } else {
                purge_of(&lazy).to_vec()
            };
            assert_eq!(a.take(), want);
            assert_eq!(n, lazy.len() as u64);
            lazy.clear();
            nr = 0;
        } else if live.is_empty() || r < 55 {
            let max_len = if rng.below(8) == 0 { 40 } else { 6 };
            let len = 2 + rng.below(max_len);
            let got = a.lazy.alloc(&a.env, len, 1 << rng.below(3));
            let ev = a.take();
            if ev.is_empty() {
                assert!(got.is_some());
            } else {
                // Exhaustion: the synchronous purge of everything lazy (or of nothing).
                let want: Vec<Ev> = if lazy.is_empty() {
                    vec![Ev::Purge {
                        start: u64::MAX,
                        end: 0,
                        npurged: 0,
                    }]
                } else {
                    purge_of(&lazy).to_vec()
                };
                assert_eq!(ev, want);
                lazy.clear();
                nr = 0;
            }
            if let Some(s) = got {
                live.push((s, len));
            }
        } else {
            let (s, len) = live.swap_remove(rng.below(live.len() as u64) as usize);
            a.lazy.free(&a.env, s);
            nr += len;
            lazy.push((s, len));
            let ev = a.take();
            assert_eq!(
                ev[0],
                Ev::Free {
                    va_start: s,
                    nr_lazy: nr,
                    nr_lazy_max: lazy_max
                }
            );
            seen[0] += 1;
            if nr > lazy_max {
                assert_eq!(ev[1..], purge_of(&lazy));
                seen[1] += 1;
                lazy.clear();
                nr = 0;
            } else {
                assert_eq!(ev.len(), 1, "{ev:?}");
            }
        }
        a.assert_counters();
    }
    let threshold = lazy_max < pages;
    let all = seen[0] > 0 && (seen[1] > 0) == threshold && seen[2] > 0;
    assert!(
        all || cfg!(miri),
        "{mode:?}: frees, threshold purges, empty purges: {seen:?}"
    );
}

#[test]
fn hooks_single_threaded_every_mode() {
    for mode in Mode::ALL {
        for (seed, max) in [(1, 16), (2, 64), (3, 1 << 40)] {
            random_single(mode, max, seed);
        }
    }
}

/// A threshold purge that finds the purge lock taken does not run, and reports nothing; a
/// synchronous one of nothing reports the empty purge; a mode switch purges and reports.
#[test]
fn hooks_skipped_and_empty_purges() {
    for mode in Mode::ALL {
        let a = Arena::new(0x100, 64, mode, 1 << 40, true);
        let s = a.lazy.alloc(&a.env, 4, 1).unwrap();
        a.lazy.free(&a.env, s);
        a.take();
        {
            let _held = a.env.purge_lock();
            assert_eq!(a.lazy.purge(&a.env, Why::Threshold), 0);
        }
        assert_eq!(a.take(), [], "{mode:?}: a purge that did not run reported");
        a.lazy.set_mode(&a.env, mode).unwrap();
        assert_eq!(a.take(), purge_of(&[(s, 4)]));
        a.lazy.purge(&a.env, Why::Teardown);
        assert_eq!(
            a.take(),
            [Ev::Purge {
                start: u64::MAX,
                end: 0,
                npurged: 0
            }]
        );
        a.assert_counters();
        assert_eq!(a.env.empty_purges.load(Relaxed), 1);
    }
}

/// Four threads allocate and free while a fifth purges (trylock, and now and then on demand):
/// the hooks fire once per free and once per purge, the non-empty purges' areas and spans add
/// up to the lazy logic's counters.
#[test]
fn hooks_under_threads_every_mode() {
    for mode in Mode::ALL {
        let pages = if cfg!(miri) { 512 } else { 2048 };
        let a = Arena::new(0x10_0000, pages, mode, 32, false);
        let stop = AtomicBool::new(false);
        std::thread::scope(|sc| {
            let purger = sc.spawn(|| {
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    a.lazy.purge(
                        &a.env,
                        if n % 16 == 15 {
                            Why::Demand
                        } else {
                            Why::Threshold
                        },
                    );
                    n += 1;
                    std::thread::yield_now();
                }
            });
            let workers: Vec<_> = (0..4)
                .map(|t| {
                    let a = &a;
                    sc.spawn(move || {
                        let mut rng = Rng::new(100 + t);
                        let mut live = Vec::new();
                        for _ in 0..reps(10_000) {
                            if live.is_empty() || (live.len() < 16 && rng.below(2) == 0) {
                                if let Some(s) = a.lazy.alloc(&a.env, 2 + rng.below(8), 1) {
                                    live.push(s);
                                }
                            } else {
                                let s = live.swap_remove(rng.below(live.len() as u64) as usize);
                                a.lazy.free(&a.env, s);
                            }
                        }
                        for s in live {
                            a.lazy.free(&a.env, s);
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().unwrap();
            }
            stop.store(true, Relaxed);
            purger.join().unwrap();
        });
        a.lazy.purge(&a.env, Why::Demand);
        assert_eq!(a.lazy.lazy_pages(), 0);
        // Whether the purger met an empty list during the run depends on
        // timing; this one finds nothing for sure, and must still report.
        let empty = a.env.empty_purges.load(Relaxed);
        a.lazy.purge(&a.env, Why::Demand);
        assert_eq!(
            a.env.empty_purges.load(Relaxed),
            empty + 1,
            "{mode:?}: empty purge not reported"
        );
        a.assert_counters();
        let st = &a.lazy.stats;
        assert_eq!(
            a.env.frees.load(Relaxed),
            st.allocs.load(Relaxed),
            "{mode:?}"
        );
        assert!(a.env.purges.load(Relaxed) > 0, "{mode:?}: no purge");
        assert!(
            a.env.empty_purges.load(Relaxed) > 0,
            "{mode:?}: no empty purge"
        );
        // Each purge's span covers its areas: the spans add up to at least the purged pages.
        assert!(
            a.env.flushed_span.load(Relaxed) >= st.purged_pages.load(Relaxed),
            "{mode:?}"
        );
    }
}
