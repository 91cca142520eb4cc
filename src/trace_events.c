// SPDX-License-Identifier: GPL-2.0
/*
 * The lazy_vmap:* trace events (lazy_vmap_trace.h) and plain functions that
 * fire them, for Rust, which cannot call the static inline trace_*()
 * helpers. While its event is disabled each costs a call and a test of the
 * event's static key (a patched jump with CONFIG_JUMP_LABEL; a load and a
 * compare in the guest kernels, which lack it), and with CONFIG_LOCKDEP
 * the tracepoint's rcu_is_watching() check as well.
 */
#include "shim.h"

#define CREATE_TRACE_POINTS
#include "lazy_vmap_trace.h"

void lv_trace_alloc_vmap_area(unsigned long addr, unsigned long size,
			      unsigned long align, unsigned long vstart,
			      unsigned long vend, int failed)
{
	trace_alloc_vmap_area(addr, size, align, vstart, vend, failed);
}

void lv_trace_free_vmap_area_noflush(unsigned long va_start,
				     unsigned long nr_lazy,
				     unsigned long nr_lazy_max)
{
	trace_free_vmap_area_noflush(va_start, nr_lazy, nr_lazy_max);
}

void lv_trace_purge_vmap_area_lazy(unsigned long start, unsigned long end,
				   unsigned int npurged)
{
	trace_purge_vmap_area_lazy(start, end, npurged);
}
