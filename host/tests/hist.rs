//! Tests of `src/core/hist.rs`: the bucket error bound, percentiles, merging, resetting and
//! the latency table.
#![cfg(not(loom))]

mod common;
use common::{reps, Rng};
use lazy_vmap_core::hist::{
    bucket, lower, upper, AtomicHist, Event, Hist, Latency, Summary, BUCKETS, EXACT_BELOW,
    OVERFLOW_FROM, P50, P90, P99, P999, TABLE_HEADER,
};

/// Values to check bounds on: every value below 2^16, every power of two and its neighbours,
/// and random values of every magnitude up to 2^40 and beyond.
fn sweep() -> Vec<u64> {
    let mut v: Vec<u64> = (0..reps(1 << 16)).collect();
    for e in 0..64 {
        let p = 1u64 << e;
        v.extend([p - 1, p, p + 1, p.saturating_add(p / 2)]);
    }
    v.push(u64::MAX);
    let mut rng = Rng::new(13);
    for _ in 0..reps(200_000) {
        let bits = rng.below(45);
        v.push(rng.next() >> (64 - bits.max(1)));
    }
    v
}

/// The claim of the module documentation: the reported value (the bucket's upper bound) is
/// never below the value and at most v/16 above it; exact below 32.
#[test]
fn bucket_error_bound() {
    for v in sweep() {
        let i = bucket(v);
        assert!(i < BUCKETS, "{v}: bucket {i}");
        assert!(
            lower(i) <= v && v <= upper(i),
            "{v} outside bucket {i} [{}, {}]",
            lower(i),
            upper(i)
        );
        if v < OVERFLOW_FROM {
            let err = upper(i) - v;
            assert!(
                err * 16 <= v,
                "{v}: upper {} is {err} above, more than v/16",
                upper(i)
            );
            assert!(err * 16 < v || v == 0, "{v}: the bound is strict");
        } else {
            assert_eq!(i, BUCKETS - 1, "{v}: not in the overflow bucket");
        }
        if v < EXACT_BELOW {
            assert_eq!((lower(i), upper(i)), (v, v), "{v}: not exact");
        }
    }
}

/// The buckets tile 0..u64::MAX: each starts right after the previous one, in order, and the
/// width over the lower bound never exceeds 1/16.
#[test]
fn buckets_tile_the_range() {
    assert_eq!(lower(0), 0);
    for i in 1..BUCKETS {
        assert_eq!(
            lower(i),
            upper(i - 1) + 1,
            "gap or overlap before bucket {i}"
        );
        assert_eq!(bucket(lower(i)), i);
        assert_eq!(bucket(upper(i - 1)), i - 1);
        if i < BUCKETS - 1 && lower(i) >= EXACT_BELOW {
            let width = upper(i) - lower(i) + 1;
            assert!(
                width * 16 <= lower(i),
                "bucket {i}: width {width} at {}",
                lower(i)
            );
        }
    }
    assert_eq!(upper(BUCKETS - 1), u64::MAX);
    assert_eq!(lower(BUCKETS - 1), OVERFLOW_FROM);
    assert_eq!(BUCKETS, 593);
}

/// Sorted values and their true nearest-rank percentile.
fn true_percentile(sorted: &[u64], ppm: u32) -> u64 {
    let n = sorted.len() as u64;
    let rank = (n * u64::from(ppm)).div_ceil(1_000_000).max(1);
    sorted[(rank - 1) as usize]
}

fn check_summary(s: &Summary, values: &[u64]) {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    assert_eq!(s.count, values.len() as u64);
    assert_eq!(s.max, *sorted.last().unwrap(), "max exact");
    assert!(
        s.p50 <= s.p90 && s.p90 <= s.p99 && s.p99 <= s.p999 && s.p999 <= s.max,
        "{s:?}"
    );
    for (got, ppm) in [(s.p50, P50), (s.p90, P90), (s.p99, P99), (s.p999, P999)] {
        let want = true_percentile(&sorted, ppm);
        if want >= OVERFLOW_FROM {
            assert_eq!(got, s.max, "p{ppm}: the overflow bucket reads as the max");
            continue;
        }
        assert!(
            want <= got && got - want <= want / 16,
            "p{ppm}: {got} for true {want} ({s:?})"
        );
    }
}

/// Random distributions (uniform, heavy-tailed, one value, few values): counts, max and
/// percentiles within the bound of the true ones, ordered; Hist and AtomicHist agree.
#[test]
fn percentiles_ordered_and_within_bound() {
    let mut rng = Rng::new(7);
    for round in 0..reps(300) {
        let n = 1 + rng.below(if round % 3 == 0 { 5 } else { 5000 });
        let shape = round % 4;
        let values: Vec<u64> = (0..n)
            .map(|_| match shape {
                0 => rng.below(1 << 20),
                // Heavy tail: a few huge values among many small ones.
                1 => {
                    if rng.below(1000) == 0 {
                        rng.below(1 << 42)
                    } else {
                        100 + rng.below(2000)
                    }
                }
                2 => 12_345,
                _ => rng.next() >> (20 + rng.below(44)),
            })
            .collect();
        let mut h = Hist::new();
        let a = AtomicHist::new();
        for &v in &values {
            h.record(v);
            a.record(v);
        }
        assert_eq!(h.count(), n);
        assert_eq!(a.count(), n);
        check_summary(&h.summary(), &values);
        check_summary(&a.summary(), &values);
        assert_eq!(h.summary(), a.summary());
        for ppm in [0, 1, P50, P90, P99, P999, 999_999, 1_000_000] {
            assert_eq!(h.percentile(ppm), a.percentile(ppm));
        }
        let s = h.summary();
        assert_eq!(
            (h.percentile(P50), h.percentile(P99), h.percentile(P999)),
            (s.p50, s.p99, s.p999)
        );
        assert_eq!(h.percentile(1_000_000), s.max.min(upper(bucket(s.max))));
    }
}

#[test]
fn empty_and_single() {
    let h = Hist::new();
    assert_eq!(h.summary(), Summary::default());
    assert_eq!(h.percentile(P99), 0);
    let a = AtomicHist::new();
    assert_eq!(a.summary(), Summary::default());
    // One value: every percentile is that value (the bucket's upper bound is capped at max).
    for v in [
        0,
        1,
        31,
        32,
        33,
        1000,
        123_456_789,
        OVERFLOW_FROM + 5,
        u64::MAX,
    ] {
        let mut h = Hist::new();
        h.record(v);
        let s = h.summary();
        assert_eq!(
            s,
            Summary {
                count: 1,
                p50: v,
                p90: v,
                p99: v,
                p999: v,
                max: v
            }
        );
    }
    // The tail: 1000 values of 100 and one of 10^6: p999 is 100 (rank 1000 of 1001), max 10^6.
    let mut h = Hist::new();
    for _ in 0..1000 {
        h.record(100);
    }
    h.record(1_000_000);
    let s = h.summary();
    assert_eq!(
        (s.p50, s.p999, s.max),
        (upper(bucket(100)), upper(bucket(100)), 1_000_000)
    );
    // One more slow value: rank 1001 of 1002 falls in the slow bucket, capped at max.
    h.record(999_999);
    assert_eq!(h.summary().p999, 1_000_000);
}

/// Merging adds counts bucket by bucket, keeps the larger max and empties the thread's
/// histogram; merging an empty one changes nothing; reset zeroes.
#[test]
fn merge_and_reset() {
    let a = AtomicHist::new();
    let mut all = Vec::new();
    let mut rng = Rng::new(3);
    let mut hs = [Hist::new(), Hist::new(), Hist::new()];
    for round in 0..20 {
        for (t, h) in hs.iter_mut().enumerate() {
            for _ in 0..rng.below(200) {
                let v = rng.below(1 << (10 + 3 * t as u64 + round % 5));
                h.record(v);
                all.push(v);
            }
        }
        for h in hs.iter_mut() {
            let before = a.count();
            let n = h.count();
            h.merge_into(&a);
            assert_eq!(a.count(), before + n, "merge adds counts");
            assert_eq!(h.count(), 0);
            assert_eq!(h.max(), 0);
            assert_eq!(
                h.summary(),
                Summary::default(),
                "merge empties the thread's histogram"
            );
        }
        if !all.is_empty() {
            check_summary(&a.summary(), &all);
        }
    }
    // The same values recorded into one Hist give the same summary as the merged ones.
    let mut one = Hist::new();
    all.iter().for_each(|&v| one.record(v));
    assert_eq!(one.summary(), a.summary());
    let before = a.summary();
    Hist::new().merge_into(&a);
    assert_eq!(a.summary(), before);
    a.reset();
    assert_eq!(a.summary(), Summary::default());
    assert_eq!((a.count(), a.max()), (0, 0));
    one.reset();
    assert_eq!(one.summary(), Summary::default());
    // A reset histogram records afresh (no stale lo/hi range hiding a bucket).
    one.record(5);
    one.record(1 << 30);
    one.merge_into(&a);
    assert_eq!(a.count(), 2);
    assert_eq!(a.max(), 1 << 30);
    assert_eq!(a.summary().p50, 5);
}

/// Threads merging while a reader summarizes: every summary is ordered, and the final one
/// counts everything.
#[test]
fn concurrent_merges_stay_ordered() {
    let a = AtomicHist::new();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let per_thread = reps(200_000);
    std::thread::scope(|sc| {
        let reader = sc.spawn(|| {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let s = a.summary();
                assert!(
                    s.p50 <= s.p90 && s.p90 <= s.p99 && s.p99 <= s.p999 && s.p999 <= s.max,
                    "{s:?}"
                );
                reads += 1;
            }
            reads
        });
        let workers: Vec<_> = (0..4u64)
            .map(|t| {
                let a = &a;
                sc.spawn(move || {
                    let mut rng = Rng::new(100 + t);
                    let mut h = Hist::new();
                    for i in 0..per_thread {
                        h.record(rng.below(1 << (8 + t * 6)));
                        if i % 64 == 63 {
                            h.merge_into(a);
                        }
                    }
                    h.merge_into(a);
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    });
    assert_eq!(a.count(), 4 * per_thread);
}

#[test]
fn event_names() {
    let names: Vec<_> = Event::ALL.iter().map(|e| e.name()).collect();
    assert_eq!(
        names,
        [
            "alloc",
            "free",
            "purge",
            "purge_flush",
            "purge_hold",
            "alloc_wait"
        ]
    );
    for (i, e) in Event::ALL.iter().enumerate() {
        assert_eq!(*e as usize, i);
    }
}

/// The table of `/sys/kernel/lazy_vmap/latency`: the header, then one line per event with 7
/// space-separated fields, numbers parse, an empty histogram reads all zeros.
#[test]
fn latency_table() {
    let l = Latency::new();
    let mut s = String::new();
    l.write_table(&mut s).unwrap();
    let want: String = std::iter::once(format!("{TABLE_HEADER}\n"))
        .chain(
            Event::ALL
                .iter()
                .map(|e| format!("{} 0 0 0 0 0 0\n", e.name())),
        )
        .collect();
    assert_eq!(s, want);
    assert_eq!(TABLE_HEADER, "event count p50 p90 p99 p999 max");

    let mut h = Hist::new();
    for v in 1..=1000u64 {
        h.record(v * 1000);
    }
    h.merge_into(l.hist(Event::Free));
    l.record(Event::Purge, 5_000_000);
    l.record(Event::Purge, 7);
    let mut s = String::new();
    l.write_table(&mut s).unwrap();
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 1 + Event::ALL.len());
    for (line, ev) in lines[1..].iter().zip(Event::ALL) {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 7, "{line}");
        assert_eq!(f[0], ev.name());
        let n: Vec<u64> = f[1..].iter().map(|x| x.parse().unwrap()).collect();
        let sm = l.hist(ev).summary();
        assert_eq!(n, [sm.count, sm.p50, sm.p90, sm.p99, sm.p999, sm.max]);
    }
    let free = l.hist(Event::Free).summary();
    assert_eq!(free.count, 1000);
    assert_eq!(free.max, 1_000_000);
    assert!(
        (500_000..=500_000 + 500_000 / 16).contains(&free.p50),
        "{free:?}"
    );
    assert!((990_000..=1_000_000).contains(&free.p99), "{free:?}");
    assert_eq!(lines[3], "purge 2 7 5000000 5000000 5000000 5000000");
    // A writer too small for the table reports the error (the kernel's Buf does so).
    struct Small(usize);
    impl std::fmt::Write for Small {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0 = self.0.checked_sub(s.len()).ok_or(std::fmt::Error)?;
            Ok(())
        }
    }
    assert!(l.write_table(&mut Small(50)).is_err());
    assert!(l.write_table(&mut Small(4096)).is_ok());
    l.reset();
    let mut s = String::new();
    l.write_table(&mut s).unwrap();
    assert_eq!(s, want, "reset zeroes every event");
}
