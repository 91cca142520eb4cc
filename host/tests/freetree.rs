//! Tests of `src/core/freetree.rs`: targeted cases plus randomized comparison with a bitmap model.

mod common;
use common::{reps, Rng};
use lazy_vmap_core::freetree::{nodes_needed, FreeTree, Node};

type Tree = FreeTree<Vec<Node>>;

fn tree(start: u64, end: u64) -> Tree {
    let t = FreeTree::new(vec![Node::default(); nodes_needed(end - start)], start, end).unwrap();
    t.check().unwrap();
    t
}

fn ranges(t: &Tree) -> Vec<(u64, u64)> {
    let mut v = Vec::new();
    t.for_each_range(|s, e| v.push((s, e)));
    v
}

/// Checks the invariants and that the free ranges are exactly `want`.
#[track_caller]
fn expect(t: &Tree, want: &[(u64, u64)]) {
    t.check().unwrap();
    assert_eq!(ranges(t), want);
    assert_eq!(t.nr_ranges(), want.len());
    assert_eq!(t.free_pages(), want.iter().map(|(s, e)| e - s).sum::<u64>());
    assert_eq!(
        t.largest(),
        want.iter().map(|(s, e)| e - s).max().unwrap_or(0)
    );
}

// --- Targeted tests ---------------------------------------------------------------------------

#[test]
fn new_rejects_bad_arguments() {
    assert!(FreeTree::new(vec![Node::default(); nodes_needed(100) - 1], 0, 100).is_none());
    assert!(FreeTree::new(vec![Node::default(); 10], 5, 5).is_none());
    assert!(FreeTree::new(vec![Node::default(); 10], 6, 5).is_none());
    let t = FreeTree::new(vec![Node::default(); 100], 7, 107).unwrap();
    assert_eq!(t.span(), (7, 107));
    expect(&t, &[(7, 107)]);
}

#[test]
fn nodes_needed_formula() {
    assert_eq!(nodes_needed(1), 2);
    assert_eq!(nodes_needed(2), 3);
    assert_eq!(nodes_needed(101), 52);
}

#[test]
fn fit_full() {
    let mut t = tree(0x12345, 0x12345 + 10);
    assert_eq!(t.alloc(10, 1), Some(0x12345));
    expect(&t, &[]);
    assert_eq!(t.alloc(1, 1), None);
    t.free(0x12345, 10);
    expect(&t, &[(0x12345, 0x12345 + 10)]);
}

#[test]
fn fit_full_aligned() {
    // Range [8, 16) of length 8 == need for len 5, align 4: start 8 is aligned, takes [8, 13).
    let mut t = tree(0, 16);
    assert_eq!(t.alloc(8, 1), Some(0));
    assert_eq!(t.alloc(5, 4), Some(8));
    expect(&t, &[(13, 16)]);
    // [13, 16): need for len 3 align 1 is 3 -> full fit.
    assert_eq!(t.alloc(3, 1), Some(13));
    expect(&t, &[]);
}

#[test]
fn fit_left_edge() {
    let mut t = tree(100, 110);
    assert_eq!(t.alloc(4, 1), Some(100));
    expect(&t, &[(104, 110)]);
    assert_eq!(t.alloc(2, 4), Some(104));
    expect(&t, &[(106, 110)]);
}

#[test]
fn fit_right_edge() {
    // Misalignment of exactly align - 1 consumes the range up to its end.
    let mut t = tree(5, 11);
    assert_eq!(t.alloc(3, 4), Some(8));
    expect(&t, &[(5, 8)]);
}

#[test]
fn fit_middle() {
    let mut t = tree(5, 20);
    assert_eq!(t.alloc(3, 4), Some(8));
    expect(&t, &[(5, 8), (11, 20)]);
    // The 3-page hole is the lowest fit for a 3-page request.
    assert_eq!(t.alloc(3, 1), Some(5));
    expect(&t, &[(11, 20)]);
}

#[test]
fn fit_rule_skips_tight_ranges() {
    // [1, 4) holds an aligned 2-block at 2, but need = 2 + 4 - 1 = 5 > 3, so it is skipped.
    let mut t = tree(1, 40);
    assert_eq!(t.alloc(3, 1), Some(1));
    assert_eq!(t.alloc(1, 1), Some(4));
    t.free(1, 3);
    expect(&t, &[(1, 4), (5, 40)]);
    assert_eq!(t.alloc(2, 4), Some(8));
    expect(&t, &[(1, 4), (5, 8), (10, 40)]);
}

#[test]
fn fit_exact_aligned_hole_when_nothing_else_fits() {
    // Only [4, 8) and [9, 12) are free: no range has 4 + 4 - 1 = 7 pages, but [4, 8) holds a
    // 4-aligned 4-page block exactly (the kernel's `is_within_this_va()` test).
    let mut t = tree(0, 16);
    assert_eq!(t.alloc(4, 1), Some(0));
    assert_eq!(t.alloc(4, 1), Some(4));
    assert_eq!(t.alloc(1, 1), Some(8));
    assert_eq!(t.alloc(3, 1), Some(9));
    assert_eq!(t.alloc(4, 1), Some(12));
    t.free(4, 4);
    t.free(9, 3);
    expect(&t, &[(4, 8), (9, 12)]);
    // [9, 12) holds no 4-aligned 2-page block (12 is past it); [4, 8) does, at 4.
    assert_eq!(t.alloc(4, 4), Some(4));
    expect(&t, &[(9, 12)]);
    assert_eq!(t.alloc(2, 4), None);
    assert_eq!(t.alloc(2, 2), Some(10));
    expect(&t, &[(9, 10)]);
    t.check().unwrap();
}

/// Arena [0, 100) with A = [0, 10), B = [10, 20), C = [20, 30) allocated.
fn abc() -> Tree {
    let mut t = tree(0, 100);
    for want in [0, 10, 20] {
        assert_eq!(t.alloc(10, 1), Some(want));
    }
    expect(&t, &[(30, 100)]);
    t
}

#[test]
fn merge_none() {
    let mut t = abc();
    t.free(0, 10);
    expect(&t, &[(0, 10), (30, 100)]);
    t.free(10, 5);
    expect(&t, &[(0, 15), (30, 100)]);
    t.free(16, 2);
    expect(&t, &[(0, 15), (16, 18), (30, 100)]);
}

#[test]
fn merge_left() {
    let mut t = abc();
    t.free(0, 10);
    t.free(10, 10);
    expect(&t, &[(0, 20), (30, 100)]);
}

#[test]
fn merge_right() {
    let mut t = abc();
    t.free(20, 10);
    expect(&t, &[(20, 100)]);
    t.free(5, 5);
    t.free(0, 5);
    expect(&t, &[(0, 10), (20, 100)]);
}

#[test]
fn merge_both() {
    let mut t = abc();
    t.free(0, 10);
    t.free(20, 10);
    expect(&t, &[(0, 10), (20, 100)]);
    t.free(10, 10);
    expect(&t, &[(0, 100)]);
}

#[test]
fn exhaustion() {
    let mut t = tree(0x12345, 0x12345 + 64);
    assert_eq!(t.alloc(65, 1), None);
    assert_eq!(t.alloc(u64::MAX, 1), None);
    assert_eq!(t.alloc(2, u64::MAX / 2 + 1), None);
    let mut n = 0;
    while t.alloc(3, 1).is_some() {
        n += 1;
    }
    assert_eq!(n, 21);
    expect(&t, &[(0x12345 + 63, 0x12345 + 64)]);
    assert_eq!(t.alloc(2, 1), None);
    assert_eq!(t.alloc(1, 1), Some(0x12345 + 63));
    assert_eq!(t.alloc(1, 1), None);
    expect(&t, &[]);
}

#[test]
fn bad_free_is_rejected() {
    // Debug builds trip a `debug_assert!`; release builds ignore the call. Either way the tree is
    // left untouched.
    let mut t = abc();
    t.free(0, 10);
    let before = ranges(&t);
    for (s, len) in [(5, 10), (0, 1), (25, 10), (95, 10), (0, 0), (u64::MAX, 2)] {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.free(s, len)));
        assert_eq!(r.is_err(), cfg!(debug_assertions), "free({s}, {len})");
        expect(&t, &before);
    }
}

#[test]
fn exact_pool_worst_case() {
    for (base, pages) in [
        (0, 1000),
        (1, 1001),
        (0x12345, 777),
        (0xf_fffc_9000_0001, 4097),
    ] {
        let pages = reps(pages); // (smaller arenas under Miri)
                                 // Pattern 1: tile the arena with 2-page blocks, free every other one.
        let mut t = tree(base, base + pages);
        let mut blocks = Vec::new();
        while let Some(s) = t.alloc(2, 1) {
            blocks.push(s);
        }
        assert_eq!(blocks.len() as u64, pages / 2);
        for &s in blocks.iter().step_by(2) {
            t.free(s, 2);
        }
        t.check().unwrap();
        // Refill the holes, then free everything.
        for &s in blocks.iter().step_by(2) {
            assert_eq!(t.alloc(2, 1), Some(s));
        }
        for &s in &blocks {
            t.free(s, 2);
        }
        expect(&t, &[(base, base + pages)]);

        // Pattern 2: every alloc is a middle split leaving a 1-page hole.
        let mut t = tree(base | 1, (base | 1) + pages);
        let mut blocks = Vec::new();
        while let Some(s) = t.alloc(2, 2) {
            blocks.push(s);
            t.check().unwrap();
        }
        // Then fill the single-page holes with 1-page blocks, and free every other 2-block.
        while t.alloc(1, 1).is_some() {
            t.check().unwrap();
        }
        assert_eq!(t.free_pages(), 0);
        for &s in blocks.iter().step_by(2) {
            t.free(s, 2);
        }
        t.check().unwrap();
    }
}

// --- Randomized comparison against a bitmap model ---------------------------------------------

fn align_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

/// Page bitmap: `free[i]` is page `base + i`.
struct Model {
    base: u64,
    free: Vec<bool>,
}

impl Model {
    fn runs(&self) -> Vec<(u64, u64)> {
        let mut v = Vec::new();
        let mut i = 0;
        while i < self.free.len() {
            if self.free[i] {
                let s = i;
                while i < self.free.len() && self.free[i] {
                    i += 1;
                }
                v.push((self.base + s as u64, self.base + i as u64));
            } else {
                i += 1;
            }
        }
        v
    }

    fn alloc(&mut self, len: u64, align: u64) -> Option<u64> {
        let need = if align == 1 { len } else { len + align - 1 };
        let runs = self.runs();
        // The lowest run long enough for any alignment; else the lowest that holds an aligned
        // block exactly.
        let s = match runs.iter().find(|&&(s, e)| e - s >= need) {
            Some(&(rs, _)) => align_up(rs, align),
            None => runs.iter().find_map(|&(s, e)| {
                let a = s.checked_next_multiple_of(align)?;
                (a.checked_add(len)? <= e).then_some(a)
            })?,
        };
        self.set(s, len, false);
        Some(s)
    }

    fn set(&mut self, s: u64, len: u64, free: bool) {
        for p in s..s + len {
            let i = (p - self.base) as usize;
            assert_ne!(
                self.free[i], free,
                "model: page {p:#x} already in that state"
            );
            self.free[i] = free;
        }
    }

    fn free_pages(&self) -> u64 {
        self.free.iter().filter(|&&f| f).count() as u64
    }
}

struct Live {
    start: u64,
    len: u64,
}

fn run_random(seed: u64, base: u64, pages: u64, ops: u64) {
    let mut rng = Rng::new(seed);
    let mut t = tree(base, base + pages);
    let mut m = Model {
        base,
        free: vec![true; pages as usize],
    };
    let mut live: Vec<Live> = Vec::new();
    // Bias towards allocation or freeing in phases so the arena fills up and drains.
    let mut alloc_pct = 70;

    for op in 0..reps(ops) {
        if op % 500 == 0 {
            alloc_pct = 30 + rng.below(50);
        }
        let ctx = format!("seed {seed} base {base:#x} op {op}");
        if live.is_empty() || rng.below(100) < alloc_pct {
            let max_len = if rng.below(4) == 0 { 100 } else { 10 };
            let len = 1 + rng.below(max_len) + 1; // + guard page
            let align = 1u64 << rng.below(7);
            let got = t.alloc(len, align);
            let want = m.alloc(len, align);
            assert_eq!(got, want, "{ctx}: alloc({len}, {align})");
            if let Some(s) = got {
                assert_eq!(s % align, 0, "{ctx}: misaligned");
                assert!(s >= base && s + len <= base + pages, "{ctx}: outside arena");
                for l in &live {
                    assert!(s + len <= l.start || l.start + l.len <= s, "{ctx}: overlap");
                    let guard = l.start + l.len - 1;
                    assert!(
                        !(s..s + len).contains(&guard),
                        "{ctx}: guard page handed out"
                    );
                }
                live.push(Live { start: s, len });
            }
        } else {
            let l = live.swap_remove(rng.below(live.len() as u64) as usize);
            t.free(l.start, l.len);
            m.set(l.start, l.len, true);
        }
        t.check().unwrap_or_else(|e| panic!("{ctx}: check: {e}"));
        assert_eq!(t.free_pages(), m.free_pages(), "{ctx}: free_pages");
        let runs = m.runs();
        assert_eq!(ranges(&t), runs, "{ctx}: ranges");
        assert_eq!(t.nr_ranges(), runs.len(), "{ctx}: nr_ranges");
    }

    while !live.is_empty() {
        let l = live.swap_remove(rng.below(live.len() as u64) as usize);
        t.free(l.start, l.len);
        t.check().unwrap();
    }
    expect(&t, &[(base, base + pages)]);
}

#[test]
fn random_vs_model() {
    let bases = [0x12345, 0, 1, 0x7f_ffff, 0xf_fffc_9000_0003];
    for seed in 0..reps(40) {
        let base = bases[seed as usize % bases.len()];
        let pages = [512, 1000, 2049, 4096][seed as usize % 4];
        run_random(seed, base, pages, 4000);
    }
}

#[test]
fn random_small_arena() {
    // Tiny arenas hit exhaustion, full fits and merges constantly.
    for seed in 100..100 + reps(200) {
        run_random(seed, 0x12345 + seed, 64 + seed % 64, 1500);
    }
}

#[test]
fn random_arena_at_top_of_u64() {
    let pages = if cfg!(miri) { 200 } else { 3000 };
    run_random(7, u64::MAX - pages, pages, 5000);
}
