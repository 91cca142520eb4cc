// SPDX-License-Identifier: GPL-2.0

//! The stress workloads, shaped like the cases of `lib/test_vmalloc.c`.
//!
//! A workload is a row of [`WORKLOADS`]: an optional set of areas a thread
//! keeps busy while it runs ([`Busy`]), and a step function that says which
//! areas one loop iteration allocates (each is then filled, checked and
//! freed). The stress thread runs the same table against either target (this
//! module's allocator or the kernel's vmalloc).

/// One area request: `pages` pages aligned to `align` pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Req {
    /// Number of pages to map.
    pub pages: u64,
    /// Alignment of the start, in pages (a power of two).
    pub align: u64,
}

/// What a thread allocates before its loop and frees after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Busy {
    /// Nothing.
    None,
    /// `n` one-page areas stay allocated (`long_busy_list_alloc_test`).
    List(u64),
    /// `n` one-page areas stay allocated, with a one-page hole freed after
    /// each, so loop allocations fit holes exactly (`full_fit_alloc_test`).
    Holes(u64),
}

/// Up to two requests of one loop iteration.
pub type Step = [Option<Req>; 2];

/// Inputs of a step: the thread's random state, the `nr_pages` knob, the
/// iteration number and the largest alignment the target can serve.
pub struct Ctx {
    /// xorshift64 state; never zero.
    pub rng: u64,
    /// The `nr_pages` knob (for `fix_size`).
    pub nr_pages: u64,
    /// Iteration number.
    pub iter: u64,
    /// Largest alignment, in pages, worth asking for.
    pub max_align: u64,
}

impl Ctx {
    /// A context seeded with `seed` (any value).
    pub fn new(seed: u64, nr_pages: u64, max_align: u64) -> Self {
        Ctx {
            rng: seed | 1,
            nr_pages,
            iter: 0,
            max_align: max_align.max(1),
        }
    }

    /// Next pseudo-random number (xorshift64).
    pub fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

/// A workload: its name for the `workload` knob, its busy set and its step.
pub struct Workload {
    /// Name used by the `workload` knob.
    pub name: &'static str,
    /// Areas kept busy while the loop runs, given the thread's budget of
    /// busy areas.
    pub busy: fn(budget: u64) -> Busy,
    /// The requests of one iteration.
    pub step: fn(&mut Ctx) -> Step,
    /// Cross-CPU frees: each area is handed to the thread on the previous
    /// CPU, which reads it and frees it (as the kernel frees from a
    /// workqueue or an RCU callback), so a stale translation may live on
    /// the allocating, the reading and the freeing CPU.
    pub handoff: bool,
}

const fn one(pages: u64, align: u64) -> Step {
    [Some(Req { pages, align }), None]
}

fn fix_size(c: &mut Ctx) -> Step {
    one(c.nr_pages, 1)
}

fn random_size(c: &mut Ctx) -> Step {
    one(c.random() % 100 + 1, 1)
}

fn long_busy_list(_: &mut Ctx) -> Step {
    [
        Some(Req {
            pages: 100,
            align: 1,
        }),
        Some(Req { pages: 1, align: 1 }),
    ]
}

fn full_fit(_: &mut Ctx) -> Step {
    one(1, 1)
}

/// `__vmalloc_node(5 * PAGE_SIZE, THREAD_ALIGN << 1, ...)`: 32 KiB on x86_64.
fn fix_align(_: &mut Ctx) -> Step {
    one(5, 8)
}

/// 1..10 pages aligned to 1 << (0..=10) pages (test_vmalloc goes up to
/// 1 << 22 bytes), capped at what the target can serve.
fn random_size_align(c: &mut Ctx) -> Step {
    let r = c.random();
    let align = (1u64 << (r % 11)).min(c.max_align);
    one((r >> 8) % 10 + 1, align)
}

/// One page at every power-of-two alignment in turn, up to the largest the
/// target can serve (test_vmalloc tries all 64 and expects the big ones to
/// fail; an allocator failure here would be counted, so we stop at the cap).
fn align_shift(c: &mut Ctx) -> Step {
    let shifts = u64::from(64 - c.max_align.leading_zeros()).max(1); // log2(max) + 1
    one(1, 1u64.wrapping_shl((c.iter % shifts) as u32))
}

/// 1..8 pages: a union of a few of these stays under the `invlpg` ceiling.
fn handoff(c: &mut Ctx) -> Step {
    one(c.random() % 8 + 1, 1)
}

fn no_busy(_: u64) -> Busy {
    Busy::None
}

/// All of the thread's budget of busy areas (test_vmalloc keeps 15000).
fn busy_list(budget: u64) -> Busy {
    Busy::List(budget)
}

/// Half the budget kept, half freed to make the holes.
fn holes(budget: u64) -> Busy {
    Busy::Holes(budget / 2)
}

/// The workload table.
pub static WORKLOADS: [Workload; 8] = [
    Workload {
        name: "fix_size",
        busy: no_busy,
        step: fix_size,
        handoff: false,
    },
    Workload {
        name: "random_size",
        busy: no_busy,
        step: random_size,
        handoff: false,
    },
    Workload {
        name: "long_busy_list",
        busy: busy_list,
        step: long_busy_list,
        handoff: false,
    },
    Workload {
        name: "full_fit",
        busy: holes,
        step: full_fit,
        handoff: false,
    },
    Workload {
        name: "fix_align",
        busy: no_busy,
        step: fix_align,
        handoff: false,
    },
    Workload {
        name: "random_size_align",
        busy: no_busy,
        step: random_size_align,
        handoff: false,
    },
    Workload {
        name: "align_shift",
        busy: no_busy,
        step: align_shift,
        handoff: false,
    },
    Workload {
        name: "handoff",
        busy: no_busy,
        step: handoff,
        handoff: true,
    },
];

/// Names of the workloads, in table order.
pub fn names() -> [&'static str; 8] {
    let mut n = [""; 8];
    for (i, w) in WORKLOADS.iter().enumerate() {
        n[i] = w.name;
    }
    n
}
