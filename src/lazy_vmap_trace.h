/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Trace events of lazy_vmap: the same three events, fields and formats as
 * 6.12's vmalloc:* events (include/trace/events/vmalloc.h), under the
 * lazy_vmap system, so that one tool reads both allocators' traces.
 * Addresses are byte addresses in the module's arena. Read by
 * trace_events.c only (CREATE_TRACE_POINTS); Kbuild puts this directory on
 * its include path for define_trace.h.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM lazy_vmap

#if !defined(_LAZY_VMAP_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _LAZY_VMAP_TRACE_H

#include <linux/tracepoint.h>

/*
 * alloc_vmap_area - an area was reserved, or could not be
 * @addr:	the area's first byte; @vend if the reservation failed
 * @size:	its size in bytes, guard page included
 * @align:	the requested alignment in bytes
 * @vstart:	the arena's first byte
 * @vend:	the byte after the arena
 * @failed:	1 if the reservation failed (-ENOMEM), else 0
 */
TRACE_EVENT(alloc_vmap_area,
	    TP_PROTO(unsigned long addr, unsigned long size,
		     unsigned long align, unsigned long vstart,
		     unsigned long vend, int failed),
	    TP_ARGS(addr, size, align, vstart, vend, failed),
	    TP_STRUCT__entry(__field(unsigned long, addr)
			     __field(unsigned long, size)
			     __field(unsigned long, align)
			     __field(unsigned long, vstart)
			     __field(unsigned long, vend)
			     __field(int, failed)),
	    TP_fast_assign(__entry->addr = addr;
			   __entry->size = size;
			   __entry->align = align;
			   __entry->vstart = vstart;
			   __entry->vend = vend;
			   __entry->failed = failed;),
	    TP_printk("va_start: %lu size=%lu align=%lu vstart=0x%lx vend=0x%lx failed=%d",
		      __entry->addr, __entry->size, __entry->align,
		      __entry->vstart, __entry->vend, __entry->failed)
);

/*
 * purge_vmap_area_lazy - a purge ran (under the purge lock)
 * @start:	first byte of the union range flushed (ULONG_MAX if none)
 * @end:	byte after it (0 if none)
 * @npurged:	areas given back (0: the purge found nothing lazy)
 */
TRACE_EVENT(purge_vmap_area_lazy,
	    TP_PROTO(unsigned long start, unsigned long end,
		     unsigned int npurged),
	    TP_ARGS(start, end, npurged),
	    TP_STRUCT__entry(__field(unsigned long, start)
			     __field(unsigned long, end)
			     __field(unsigned int, npurged)),
	    TP_fast_assign(__entry->start = start;
			   __entry->end = end;
			   __entry->npurged = npurged;),
	    TP_printk("start=0x%lx end=0x%lx num_purged=%u",
		      __entry->start, __entry->end, __entry->npurged)
);

/*
 * free_vmap_area_noflush - an area was freed lazily
 * @va_start:		its first byte
 * @nr_lazy:		the lazy counter after this free, in pages
 * @nr_lazy_max:	the purge threshold (lazy_max_pages), in pages
 */
TRACE_EVENT(free_vmap_area_noflush,
	    TP_PROTO(unsigned long va_start, unsigned long nr_lazy,
		     unsigned long nr_lazy_max),
	    TP_ARGS(va_start, nr_lazy, nr_lazy_max),
	    TP_STRUCT__entry(__field(unsigned long, va_start)
			     __field(unsigned long, nr_lazy)
			     __field(unsigned long, nr_lazy_max)),
	    TP_fast_assign(__entry->va_start = va_start;
			   __entry->nr_lazy = nr_lazy;
			   __entry->nr_lazy_max = nr_lazy_max;),
	    TP_printk("va_start=0x%lx nr_lazy=%lu nr_lazy_max=%lu",
		      __entry->va_start, __entry->nr_lazy,
		      __entry->nr_lazy_max)
);

#endif /* _LAZY_VMAP_TRACE_H */

/* Outside the guard: define_trace.h reads this file again. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE lazy_vmap_trace
#include <trace/define_trace.h>
