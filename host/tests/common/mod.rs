//! Helpers shared by the host test files.
// Each test file uses a part of this module.
#![allow(dead_code)]

/// xorshift64*: a small deterministic PRNG for randomized tests.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (any value).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next pseudo-random number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` repetitions, or a hundredth of them (at least 1) under Miri, which
/// interprets every step: the same paths, fewer rounds.
pub fn reps(n: u64) -> u64 {
    if cfg!(miri) {
        (n / 100).max(1)
    } else {
        n
    }
}

/// The order a purge must keep: flush first, give back second.
///
/// The test marks an area's pages *unmapped* right before its lazy free (where the module
/// clears the PTEs); a completed [`Env::flush`](lazy_vmap_core::lazy::Env::flush) over a range
/// makes its unmapped pages *flushed*. Around every tree operation the environment compares the
/// free ranges before and after: a page that became free while still unmapped-but-not-flushed
/// was handed back to the allocator while some CPU could still translate it to its old page.
/// That panics, naming the page.
#[derive(Default)]
pub struct FlushOrder {
    unflushed: std::sync::Mutex<std::collections::BTreeSet<u64>>,
}

impl FlushOrder {
    /// Pages `[start, start + len)` lost their PTEs (no flush yet).
    pub fn unmapped(&self, start: u64, len: u64) {
        self.unflushed.lock().unwrap().extend(start..start + len);
    }

    /// A flush of `[start, end)` has completed on every CPU.
    pub fn flushed(&self, start: u64, end: u64) {
        let mut u = self.unflushed.lock().unwrap();
        let gone: Vec<u64> = u.range(start..end).copied().collect();
        for p in gone {
            u.remove(&p);
        }
    }

    /// Runs `f` on `tree` and checks that no unflushed page became free in it.
    pub fn around<T, R>(
        &self,
        tree: &mut lazy_vmap_core::freetree::FreeTree<T>,
        f: impl FnOnce(&mut lazy_vmap_core::freetree::FreeTree<T>) -> R,
    ) -> R
    where
        T: std::ops::DerefMut<Target = [lazy_vmap_core::freetree::Node]>,
    {
        let ranges = |t: &lazy_vmap_core::freetree::FreeTree<T>| {
            let mut v = Vec::new();
            t.for_each_range(|s, e| v.push((s, e)));
            v
        };
        let before = ranges(tree);
        let r = f(tree);
        let after = ranges(tree);
        self.check_new(&before, &after, "the allocator");
        r
    }

    /// Runs `f` on a node's `pools` and checks that no unflushed page became allocatable from
    /// them (mode `nodes`: a purged area may go to a pool instead of the tree). `slots` are the
    /// arena's area slots, through which the pools are linked.
    pub fn around_pools<R>(
        &self,
        slots: &[lazy_vmap_core::lazy::AreaSlot],
        pools: &mut lazy_vmap_core::lazy::NodePools,
        f: impl FnOnce(&mut lazy_vmap_core::lazy::NodePools) -> R,
    ) -> R {
        let ranges = |p: &lazy_vmap_core::lazy::NodePools| {
            let mut v = Vec::new();
            p.for_each_area(slots, |s, len| v.push((s, s + len)));
            v
        };
        let before = ranges(pools);
        let r = f(pools);
        let after = ranges(pools);
        self.check_new(&before, &after, "a node pool");
        r
    }

    /// Panics if an unflushed page is in `after` but not in `before` (ranges `[start, end)`).
    fn check_new(&self, before: &[(u64, u64)], after: &[(u64, u64)], what: &str) {
        let free_in = |v: &[(u64, u64)], p: u64| v.iter().any(|&(s, e)| s <= p && p < e);
        for &p in self.unflushed.lock().unwrap().iter() {
            if free_in(after, p) && !free_in(before, p) {
                panic!("page {p:#x} given back to {what} before a flush covering it completed");
            }
        }
    }
}
