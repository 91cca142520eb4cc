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
/// clears the PTEs). A flush is a sequence of per-CPU events, not an instant: it covers a page
/// only if the page was unmapped before the round began, so the environment calls
/// [`FlushOrder::flush_begin`] when a flush starts (which snapshots the pages it covers) and
/// [`FlushOrder::flush_end`] when it has completed on every CPU (which marks exactly those
/// *flushed*); a page unmapped in between stays unflushed. And a purge's flush covers its own
/// batch: when the environment hears of each area a purge takes ([`FlushOrder::took`], from
/// `Env::purge_took`), only the batch's pages inside the flushed range are covered, not every
/// page of `[start, end)` (holes between the batch's areas belong to areas the purge did not
/// take). Around every tree and pool operation the environment compares the free ranges
/// before and after: a page that became free while still unflushed was handed back while some
/// CPU could still translate it to its old page. That panics, naming the page.
#[derive(Default)]
pub struct FlushOrder {
    state: std::sync::Mutex<OrderState>,
}

#[derive(Default)]
struct OrderState {
    unflushed: std::collections::BTreeSet<u64>,
    /// Pages of the running purge's batch (reported by `took`), until its flush ends.
    batch: std::collections::BTreeSet<u64>,
    /// Whether purges report their batches (then only batch pages are covered).
    batches: bool,
}

/// The pages a flush that has begun covers: what [`FlushOrder::flush_end`] marks flushed.
pub struct Covered(Vec<u64>);

impl FlushOrder {
    /// Pages `[start, start + len)` lost their PTEs (no flush yet).
    pub fn unmapped(&self, start: u64, len: u64) {
        self.state
            .lock()
            .unwrap()
            .unflushed
            .extend(start..start + len);
    }

    /// The running purge took the area `[start, start + len)` into its batch.
    pub fn took(&self, start: u64, len: u64) {
        let mut st = self.state.lock().unwrap();
        st.batches = true;
        st.batch.extend(start..start + len);
    }

    /// A flush of `[start, end)` begins: the pages it covers are those unmapped by now, of the
    /// running purge's batch when purges report their batches.
    pub fn flush_begin(&self, start: u64, end: u64) -> Covered {
        let st = self.state.lock().unwrap();
        let pages: Vec<u64> = if st.batches {
            st.batch
                .range(start..end)
                .filter(|p| st.unflushed.contains(p))
                .copied()
                .collect()
        } else {
            st.unflushed.range(start..end).copied().collect()
        };
        Covered(pages)
    }

    /// The flush that began with `c` has completed on every CPU. The batch it served is over:
    /// a page of it outside the flushed range stays unflushed (a union computed short).
    pub fn flush_end(&self, c: Covered) {
        let mut st = self.state.lock().unwrap();
        for p in c.0 {
            st.unflushed.remove(&p);
        }
        st.batch.clear();
    }

    /// A flush of `[start, end)` that begins and completes at once.
    pub fn flushed(&self, start: u64, end: u64) {
        let c = self.flush_begin(start, end);
        self.flush_end(c);
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
        for &p in self.state.lock().unwrap().unflushed.iter() {
            if free_in(after, p) && !free_in(before, p) {
                panic!("page {p:#x} given back to {what} before a flush covering it completed");
            }
        }
    }
}
