// SPDX-License-Identifier: GPL-2.0

//! Free-range allocator for kernel virtual address space.
//!
//! This is a `core`-only rendition of the free-area bookkeeping of the vmap allocator in
//! Linux 6.12 (C file: [`mm/vmalloc.c`](srctree/mm/vmalloc.c)). Addresses are absolute page
//! numbers (`VA >> PAGE_SHIFT`) and ranges are half-open `[start, end)`.
//!
//! Like `free_vmap_area_root`, the free ranges live in a balanced search tree keyed by `start`
//! (here an AVL tree) where every node is augmented with `max`, the largest free range length
//! in its subtree (`subtree_max_size`). That lets [`FreeTree::alloc`] find the lowest-address
//! fitting range in `O(log n)` (`find_vmap_lowest_match`), then carve the request out of it in
//! one of four ways (`adjust_va_to_fit_type`): full fit, left edge, right edge or middle split.
//! [`FreeTree::free`] gives a range back and merges it with free neighbours on either side
//! (`merge_or_add_vmap_area`), so two free ranges are never adjacent.
//!
//! # Fit rule
//!
//! A request for `len` pages aligned to `align` pages searches for the lowest-address free range
//! of length at least `len + align - 1` (just `len` when `align == 1`). Any such range is
//! guaranteed to hold an aligned block, so the search never has to backtrack. The block starts
//! at the range start rounded up to `align`.
//!
//! # Storage
//!
//! Nodes come from a caller-provided pool (any `DerefMut<Target = [Node]>`, e.g. a `KVec<Node>`
//! or a `Vec<Node>`), are linked by `u32` indices and unused ones form a free list. Nothing is
//! allocated after [`FreeTree::new`]; see [`nodes_needed`] for the pool size that guarantees the
//! pool never runs dry.

use core::cmp::max;
use core::ops::DerefMut;

/// The "no node" index.
pub const NIL: u32 = u32::MAX;

/// Deepest recursion [`FreeTree::check`] accepts; an AVL tree of `u32::MAX` nodes is shallower.
const MAX_DEPTH: u32 = 64;

/// Number of pool nodes needed to manage an arena of `pages` pages.
///
/// Every allocation reserves at least 2 pages (one page plus its guard page) and free ranges are
/// always separated by allocated ranges, so there are at most `#allocated + 1 <= pages / 2 + 1`
/// free ranges. A middle split needs at most one more node, hence `pages / 2 + 2`.
pub const fn nodes_needed(pages: u64) -> usize {
    let n = pages / 2 + 2;
    if n > usize::MAX as u64 {
        usize::MAX
    } else {
        n as usize
    }
}

/// A pool slot: either a free range in the tree or a link in the pool's free list.
#[derive(Clone, Copy, Debug, Default)]
pub struct Node {
    start: u64,
    end: u64,
    /// Largest `end - start` in the subtree rooted here.
    max: u64,
    left: u32,
    /// Unused while the node is on the free list (which is linked through `left`).
    right: u32,
    height: u8,
}

/// Allocator of page ranges inside a fixed arena, backed by the node pool `S`.
pub struct FreeTree<S> {
    pool: S,
    root: u32,
    /// Head of the list of unused pool nodes, linked through `Node::left`.
    free_list: u32,
    span: (u64, u64),
    free_pages: u64,
    nr_ranges: usize,
    /// Times the lock guarding this tree was taken, counted by the holder
    /// ([`FreeTree::note_locked`]): a plain add under the lock, so the
    /// count costs no shared atomic of its own.
    locked: u64,
}

impl<S: DerefMut<Target = [Node]>> FreeTree<S> {
    /// Creates an allocator whose only free range is the arena `[start, end)`.
    ///
    /// Returns `None` if `start >= end`, or if `pool` holds fewer than
    /// [`nodes_needed`]`(end - start)` nodes or more than [`NIL`] nodes.
    pub fn new(mut pool: S, start: u64, end: u64) -> Option<Self> {
        if start >= end || pool.len() < nodes_needed(end - start) || pool.len() > NIL as usize {
            return None;
        }
        let n = pool.len();
        for (i, node) in pool.iter_mut().enumerate() {
            *node = Node {
                left: if i + 1 < n { (i + 1) as u32 } else { NIL },
                right: NIL,
                ..Node::default()
            };
        }
        let mut tree = Self {
            pool,
            root: NIL,
            free_list: 0,
            span: (start, end),
            free_pages: end - start,
            nr_ranges: 1,
            locked: 0,
        };
        tree.root = tree.take_node(start, end)?;
        Some(tree)
    }

    /// Counts one acquisition of the lock that guards the tree (called by
    /// its holder, the environment's `with_tree`).
    pub fn note_locked(&mut self) {
        self.locked += 1;
    }

    /// Acquisitions counted by [`FreeTree::note_locked`].
    pub fn locked(&self) -> u64 {
        self.locked
    }

    /// Reserves `len` pages whose first page number is a multiple of `align`.
    ///
    /// `len` must be at least 1 (callers include the guard page in it) and `align` must be a
    /// power of two. Picks the lowest-address free range of length at least `len + align - 1`
    /// (`len` if `align == 1`) and returns its start rounded up to `align`; if there is none, the
    /// lowest range that holds `len` pages at a multiple of `align` (an exactly aligned hole).
    /// Returns `None` if no range fits, if the arguments are invalid, or if a middle split finds the pool empty (which
    /// cannot happen with a [`nodes_needed`] pool and `len >= 2`).
    pub fn alloc(&mut self, len: u64, align: u64) -> Option<u64> {
        debug_assert!(len >= 1 && align.is_power_of_two());
        if len == 0 || !align.is_power_of_two() {
            return None;
        }
        let need = len.checked_add(align - 1)?;
        let n = if self.largest() >= need {
            let n = self.lowest_fit(need);
            if n == NIL {
                debug_assert!(false, "freetree: augmented max is stale");
                return None;
            }
            n
        } else if align > 1 && self.largest() >= len {
            // No range is long enough for every alignment, but one may be
            // aligned well enough: the exact search (6.12 checks each range
            // it visits with `is_within_this_va()`, but prunes subtrees by
            // `len + align - 1` and so can miss it too).
            let n = self.lowest_aligned_fit(self.root, len, align);
            if n == NIL {
                return None;
            }
            n
        } else {
            return None;
        };
        let Node {
            start: rs, end: re, ..
        } = self.pool[n as usize];
        // Either `re - rs >= need >= align`, so neither sum overflows and `e <= re`, or the
        // exact search checked `s + len <= re`.
        let s = (rs + (align - 1)) & !(align - 1);
        let e = s + len;
        match (s == rs, e == re) {
            // Full fit: the range disappears.
            (true, true) => {
                self.root = self.remove_at(self.root, rs);
                self.nr_ranges -= 1;
            }
            // Left edge: the key moves right, but no other key lies in `(rs, e]`.
            (true, false) => {
                self.pool[n as usize].start = e;
                self.propagate(self.root, e);
            }
            // Right edge.
            (false, true) => {
                self.pool[n as usize].end = s;
                self.propagate(self.root, rs);
            }
            // Middle: keep the left remainder in place, insert the right one.
            (false, false) => {
                let new = self.take_node(e, re)?;
                self.pool[n as usize].end = s;
                self.propagate(self.root, rs);
                self.root = self.insert_at(self.root, new);
                self.nr_ranges += 1;
            }
        }
        self.free_pages -= len;
        Some(s)
    }

    /// Returns `[start, start + len)` to the allocator, merging it with adjacent free ranges.
    ///
    /// The range must lie inside [`Self::span`] and must not overlap a free range. Violations
    /// trip a `debug_assert!`; in release builds the call is then ignored so the tree stays
    /// consistent (the pages are leaked).
    pub fn free(&mut self, start: u64, len: u64) {
        let end = match start.checked_add(len) {
            Some(end) if len > 0 && start >= self.span.0 && end <= self.span.1 => end,
            _ => {
                debug_assert!(false, "freetree: freeing a range outside the arena");
                return;
            }
        };
        let (pi, ni) = self.neighbours(start);
        let prev = (pi != NIL).then(|| self.pool[pi as usize]);
        let next = (ni != NIL).then(|| self.pool[ni as usize]);
        if prev.is_some_and(|p| p.end > start) || next.is_some_and(|n| n.start < end) {
            debug_assert!(false, "freetree: freeing a range that is already free");
            return;
        }
        match (
            prev.filter(|p| p.end == start),
            next.filter(|n| n.start == end),
        ) {
            (Some(p), Some(n)) => {
                // Absorb both: `prev` grows over the hole and `next`.
                self.root = self.remove_at(self.root, n.start);
                self.pool[pi as usize].end = n.end;
                self.propagate(self.root, p.start);
                self.nr_ranges -= 1;
            }
            (Some(p), None) => {
                self.pool[pi as usize].end = end;
                self.propagate(self.root, p.start);
            }
            (None, Some(_)) => {
                // The key moves left, but no other key lies in `[start, next.start)`.
                self.pool[ni as usize].start = start;
                self.propagate(self.root, start);
            }
            (None, None) => match self.take_node(start, end) {
                Some(new) => {
                    self.root = self.insert_at(self.root, new);
                    self.nr_ranges += 1;
                }
                None => {
                    debug_assert!(false, "freetree: node pool exhausted");
                    return;
                }
            },
        }
        self.free_pages += len;
    }

    /// Total number of free pages.
    pub fn free_pages(&self) -> u64 {
        self.free_pages
    }

    /// Number of free ranges.
    pub fn nr_ranges(&self) -> usize {
        self.nr_ranges
    }

    /// Length of the largest free range, 0 if there is none.
    pub fn largest(&self) -> u64 {
        self.max_of(self.root)
    }

    /// The arena `[start, end)` given to [`Self::new`].
    pub fn span(&self) -> (u64, u64) {
        self.span
    }

    /// Calls `f(start, end)` for every free range, in address order.
    pub fn for_each_range(&self, mut f: impl FnMut(u64, u64)) {
        self.walk(self.root, &mut f);
    }

    /// Checks every invariant of the tree and the pool, returning the first violation found.
    ///
    /// Verifies BST order, AVL heights and balance, the augmented `max`, that ranges are
    /// non-empty, non-overlapping, never adjacent and inside the arena, that the cached counters
    /// match, and that tree nodes plus free-list nodes account for the whole pool.
    pub fn check(&self) -> Result<(), &'static str> {
        let mut st = CheckState {
            last_end: None,
            count: 0,
            pages: 0,
        };
        self.check_at(self.root, 0, &mut st)?;
        if st.count != self.nr_ranges {
            return Err("nr_ranges does not match the tree");
        }
        if st.pages != self.free_pages {
            return Err("free_pages does not match the tree");
        }
        let mut unused = 0usize;
        let mut i = self.free_list;
        while i != NIL {
            if i as usize >= self.pool.len() {
                return Err("free-list index out of bounds");
            }
            unused += 1;
            if unused > self.pool.len() {
                return Err("free list has a cycle");
            }
            i = self.pool[i as usize].left;
        }
        if unused + st.count != self.pool.len() {
            return Err("tree nodes + free-list nodes != pool size");
        }
        Ok(())
    }

    // --- Search ------------------------------------------------------------------------------

    /// Lowest-address node of length `>= need` (`find_vmap_lowest_match`). Every step moves into
    /// a subtree whose `max >= need`, so no backtracking is needed.
    /// The lowest range of the subtree at `n` that holds `len` pages starting at a multiple of
    /// `align`, or `NIL`: an in-order walk that skips every subtree with no range of `len`
    /// pages. Linear in the ranges of at least `len` pages at worst; [`Self::alloc`] uses it only
    /// when no range has `len + align - 1` pages. Recursion depth: the AVL height.
    fn lowest_aligned_fit(&self, n: u32, len: u64, align: u64) -> u32 {
        if n == NIL || self.max_of(n) < len {
            return NIL;
        }
        let node = &self.pool[n as usize];
        let found = self.lowest_aligned_fit(node.left, len, align);
        if found != NIL {
            return found;
        }
        let fits = node
            .start
            .checked_add(align - 1)
            .map(|a| a & !(align - 1))
            .and_then(|s| s.checked_add(len))
            .is_some_and(|e| e <= node.end);
        if fits {
            return n;
        }
        self.lowest_aligned_fit(node.right, len, align)
    }

    fn lowest_fit(&self, need: u64) -> u32 {
        let mut n = self.root;
        while n != NIL {
            let node = &self.pool[n as usize];
            if self.max_of(node.left) >= need {
                n = node.left;
            } else if node.end - node.start >= need {
                return n;
            } else if self.max_of(node.right) >= need {
                n = node.right;
            } else {
                return NIL;
            }
        }
        NIL
    }

    /// The last node with `start <= key` and the first with `start > key`.
    fn neighbours(&self, key: u64) -> (u32, u32) {
        let (mut prev, mut next, mut n) = (NIL, NIL, self.root);
        while n != NIL {
            let node = &self.pool[n as usize];
            if node.start <= key {
                prev = n;
                n = node.right;
            } else {
                next = n;
                n = node.left;
            }
        }
        (prev, next)
    }

    fn walk<F: FnMut(u64, u64)>(&self, n: u32, f: &mut F) {
        if n != NIL {
            let node = &self.pool[n as usize];
            self.walk(node.left, f);
            f(node.start, node.end);
            self.walk(node.right, f);
        }
    }

    // --- Pool --------------------------------------------------------------------------------

    fn take_node(&mut self, start: u64, end: u64) -> Option<u32> {
        let n = self.free_list;
        if n == NIL {
            return None;
        }
        self.free_list = self.pool[n as usize].left;
        self.pool[n as usize] = Node {
            start,
            end,
            max: end - start,
            left: NIL,
            right: NIL,
            height: 1,
        };
        Some(n)
    }

    fn release(&mut self, n: u32) {
        self.pool[n as usize] = Node {
            left: self.free_list,
            right: NIL,
            ..Node::default()
        };
        self.free_list = n;
    }

    // --- AVL with augmented max --------------------------------------------------------------

    fn height_of(&self, n: u32) -> u8 {
        if n == NIL {
            0
        } else {
            self.pool[n as usize].height
        }
    }

    fn max_of(&self, n: u32) -> u64 {
        if n == NIL {
            0
        } else {
            self.pool[n as usize].max
        }
    }

    /// Recomputes `height` and `max` of `n` from its children.
    fn update(&mut self, n: u32) {
        let Node {
            start,
            end,
            left,
            right,
            ..
        } = self.pool[n as usize];
        let height = 1 + max(self.height_of(left), self.height_of(right));
        let m = max(end - start, max(self.max_of(left), self.max_of(right)));
        let node = &mut self.pool[n as usize];
        node.height = height;
        node.max = m;
    }

    /// Recomputes `max` on the path from `n` down to the node keyed `key`, bottom-up
    /// (`augment_tree_propagate_from`).
    fn propagate(&mut self, n: u32, key: u64) {
        if n == NIL {
            return;
        }
        let node = self.pool[n as usize];
        if key < node.start {
            self.propagate(node.left, key);
        } else if key > node.start {
            self.propagate(node.right, key);
        }
        self.update(n);
    }

    fn rotate_right(&mut self, n: u32) -> u32 {
        let l = self.pool[n as usize].left;
        self.pool[n as usize].left = self.pool[l as usize].right;
        self.pool[l as usize].right = n;
        self.update(n);
        self.update(l);
        l
    }

    fn rotate_left(&mut self, n: u32) -> u32 {
        let r = self.pool[n as usize].right;
        self.pool[n as usize].right = self.pool[r as usize].left;
        self.pool[r as usize].left = n;
        self.update(n);
        self.update(r);
        r
    }

    /// Updates `n` and restores the AVL balance at it; returns the new subtree root.
    fn rebalance(&mut self, n: u32) -> u32 {
        self.update(n);
        let Node { left, right, .. } = self.pool[n as usize];
        let (hl, hr) = (self.height_of(left), self.height_of(right));
        if hl > hr + 1 {
            let l = self.pool[left as usize];
            if self.height_of(l.left) < self.height_of(l.right) {
                self.pool[n as usize].left = self.rotate_left(left);
            }
            self.rotate_right(n)
        } else if hr > hl + 1 {
            let r = self.pool[right as usize];
            if self.height_of(r.right) < self.height_of(r.left) {
                self.pool[n as usize].right = self.rotate_right(right);
            }
            self.rotate_left(n)
        } else {
            n
        }
    }

    /// Inserts the detached node `new` into the subtree `n`; returns the new subtree root.
    fn insert_at(&mut self, n: u32, new: u32) -> u32 {
        if n == NIL {
            return new;
        }
        if self.pool[new as usize].start < self.pool[n as usize].start {
            let child = self.insert_at(self.pool[n as usize].left, new);
            self.pool[n as usize].left = child;
        } else {
            let child = self.insert_at(self.pool[n as usize].right, new);
            self.pool[n as usize].right = child;
        }
        self.rebalance(n)
    }

    /// Removes the node keyed `key` from the subtree `n` and releases it to the pool; returns the
    /// new subtree root. Other nodes keep their indices.
    fn remove_at(&mut self, n: u32, key: u64) -> u32 {
        if n == NIL {
            debug_assert!(false, "freetree: removing a missing key");
            return NIL;
        }
        let Node {
            start, left, right, ..
        } = self.pool[n as usize];
        if key < start {
            let child = self.remove_at(left, key);
            self.pool[n as usize].left = child;
        } else if key > start {
            let child = self.remove_at(right, key);
            self.pool[n as usize].right = child;
        } else {
            self.release(n);
            if left == NIL || right == NIL {
                return if left == NIL { right } else { left };
            }
            // Replace `n` by its in-order successor.
            let (rest, succ) = self.detach_min(right);
            self.pool[succ as usize].left = left;
            self.pool[succ as usize].right = rest;
            return self.rebalance(succ);
        }
        self.rebalance(n)
    }

    /// Unlinks the leftmost node of the non-empty subtree `n`; returns (new root, that node).
    fn detach_min(&mut self, n: u32) -> (u32, u32) {
        let Node { left, right, .. } = self.pool[n as usize];
        if left == NIL {
            return (right, n);
        }
        let (rest, min) = self.detach_min(left);
        self.pool[n as usize].left = rest;
        (self.rebalance(n), min)
    }

    fn check_at(&self, n: u32, depth: u32, st: &mut CheckState) -> Result<(u8, u64), &'static str> {
        if n == NIL {
            return Ok((0, 0));
        }
        if n as usize >= self.pool.len() {
            return Err("tree index out of bounds");
        }
        if depth > MAX_DEPTH {
            return Err("tree too deep (cycle?)");
        }
        let node = self.pool[n as usize];
        let (hl, ml) = self.check_at(node.left, depth + 1, st)?;
        if node.start >= node.end {
            return Err("empty range");
        }
        if node.start < self.span.0 || node.end > self.span.1 {
            return Err("range outside the arena");
        }
        match st.last_end {
            Some(e) if e == node.start => return Err("adjacent free ranges not merged"),
            Some(e) if e > node.start => return Err("ranges overlap or out of order"),
            _ => {}
        }
        st.last_end = Some(node.end);
        st.count += 1;
        st.pages += node.end - node.start;
        if st.count > self.pool.len() {
            return Err("tree has more nodes than the pool");
        }
        let (hr, mr) = self.check_at(node.right, depth + 1, st)?;
        if node.height != 1 + max(hl, hr) {
            return Err("wrong height");
        }
        if hl > hr + 1 || hr > hl + 1 {
            return Err("AVL balance violated");
        }
        if node.max != max(node.end - node.start, max(ml, mr)) {
            return Err("wrong subtree max");
        }
        Ok((node.height, node.max))
    }
}

struct CheckState {
    last_end: Option<u64>,
    count: usize,
    pages: u64,
}
