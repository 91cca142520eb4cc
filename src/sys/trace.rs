// SPDX-License-Identifier: GPL-2.0

//! The module's trace events, `lazy_vmap:alloc_vmap_area`,
//! `lazy_vmap:free_vmap_area_noflush` and `lazy_vmap:purge_vmap_area_lazy`:
//! the fields and formats of 6.12's `vmalloc:*` events, fired at the
//! equivalent points (see `Env::trace_free` and `Env::trace_purge` in
//! `core/lazy.rs`, and `Arena::reserve`). The events live in C
//! (`lazy_vmap_trace.h`, `trace_events.c`); these wrappers take page numbers
//! and page counts, as the rest of the module does, and pass byte addresses
//! and sizes, as the kernel's events do. A disabled event costs a call and a
//! test of its static key (see `trace_events.c`).

use super::ffi::{
    lv_trace_alloc_vmap_area, lv_trace_free_vmap_area_noflush, lv_trace_purge_vmap_area_lazy,
};
use kernel::ffi::{c_int, c_uint, c_ulong};
use kernel::page::PAGE_SHIFT;

/// Byte address of page number `pn`; `u64::MAX` (the kernel's `ULONG_MAX`,
/// the start of an empty purge) stays as it is.
fn bytes(pn: u64) -> u64 {
    if pn == u64::MAX {
        pn
    } else {
        pn << PAGE_SHIFT
    }
}

/// `alloc_vmap_area`: a reservation of `len` pages (guard included) aligned
/// to `align` pages in the arena `[vstart, vend)`, at page `start`, or
/// `None` if it failed (the kernel then reports `addr == vend`).
pub(crate) fn alloc_vmap_area(start: Option<u64>, len: u64, align: u64, vstart: u64, vend: u64) {
    let addr = bytes(start.unwrap_or(vend));
    // SAFETY: a C function of plain integers, callable from any context
    // (the tracepoint takes no lock that a caller of ours could hold).
    unsafe {
        lv_trace_alloc_vmap_area(
            addr as c_ulong,
            bytes(len) as c_ulong,
            bytes(align) as c_ulong,
            bytes(vstart) as c_ulong,
            bytes(vend) as c_ulong,
            c_int::from(start.is_none()),
        )
    };
}

/// `free_vmap_area_noflush`: the area at page `va_start` was freed lazily;
/// the counter is now `nr_lazy` pages, the threshold `nr_lazy_max` pages.
pub(crate) fn free_vmap_area_noflush(va_start: u64, nr_lazy: u64, nr_lazy_max: u64) {
    // SAFETY: as above.
    unsafe {
        lv_trace_free_vmap_area_noflush(
            bytes(va_start) as c_ulong,
            nr_lazy as c_ulong,
            nr_lazy_max as c_ulong,
        )
    };
}

/// `purge_vmap_area_lazy`: a purge flushed pages `[start, end)` and gave
/// back `npurged` areas (`u64::MAX`, 0 and 0 when it found nothing).
pub(crate) fn purge_vmap_area_lazy(start: u64, end: u64, npurged: u64) {
    // SAFETY: as above.
    unsafe {
        lv_trace_purge_vmap_area_lazy(
            bytes(start) as c_ulong,
            bytes(end) as c_ulong,
            npurged as c_uint,
        )
    };
}
