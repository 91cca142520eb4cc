/* SPDX-License-Identifier: GPL-2.0 */
/* Prototypes of the C helpers of shim.c; the Rust side is src/shim.rs. */
#ifndef LAZY_VMAP_SHIM_H
#define LAZY_VMAP_SHIM_H

#include <linux/mm.h>

struct kobject;
struct task_struct;

void *lv_vmap(struct page **pages, unsigned int count);
pte_t *lv_lookup_pte(unsigned long addr);
void lv_set_pte(pte_t *ptep, struct page *page);
bool lv_set_pte_if_none(pte_t *ptep, struct page *page);
struct page *lv_clear_pte(pte_t *ptep);
struct page *lv_pte_page(pte_t *ptep);
bool lv_probe_word(unsigned long addr);
unsigned int lv_nr_cpus_config(void);
unsigned int lv_nr_cpu_ids(void);
int lv_flush_skip_cpu(void);
unsigned long lv_quarantine_add(struct page **pages, unsigned long n);
unsigned long lv_quarantine_detach(struct list_head *list);
void lv_quarantine_free(struct list_head *list);
unsigned long lv_alloc_pages_bulk(unsigned long n, struct page **pages);
void lv_free_pages_bulk(struct page **pages, unsigned long n);
bool lv_pti_enabled(void);
void lv_flush_tlb_all_local(void);
void lv_invlpg(unsigned long addr);
void *lv_vmalloc(unsigned long size, unsigned long align);
void lv_vfree(void *addr);
void lv_purge_lock(void);
bool lv_purge_trylock(void);
void lv_purge_unlock(void);
void lv_race_bug(long nr, long lazy);
void lv_race_warn(long nr, long lazy);
void lv_cond_resched(void);
struct task_struct *lv_kthread_start(int (*fn)(void *), void *data, int cpu,
				     int id);
void lv_wait_for_stop(void);
unsigned int lv_online_cpus(void);
int lv_nth_online_cpu(unsigned int n);
bool lv_cpu_possible(unsigned int cpu);
void lv_migrate_enable(void);
int lv_this_cpu(void);
struct workqueue_struct *lv_alloc_unbound_wq(const char *name);
bool lv_current_bound_to_one_cpu(void);
unsigned long lv_totalram_pages(void);
unsigned int lv_arena_fault(void);
struct kobject *lv_sysfs_create(const char *dir, const char *const *names,
				const umode_t *modes, unsigned int n);
void lv_sysfs_remove(struct kobject *kobj);
void lv_get_page(struct page *page);
void lv_put_page(struct page *page);
void *lv_page_address(struct page *page);
int lv_init_fault_arm(void);
unsigned int lv_init_fault_disarm(void);

/* trace_events.c: the lazy_vmap:* events, as 6.12's vmalloc:* ones. */
void lv_trace_alloc_vmap_area(unsigned long addr, unsigned long size,
			      unsigned long align, unsigned long vstart,
			      unsigned long vend, int failed);
void lv_trace_free_vmap_area_noflush(unsigned long va_start,
				     unsigned long nr_lazy,
				     unsigned long nr_lazy_max);
void lv_trace_purge_vmap_area_lazy(unsigned long start, unsigned long end,
				   unsigned int npurged);

/* Implemented in Rust (src/sysfs.rs). */
ssize_t lv_sysfs_show(unsigned int idx, char *buf);
ssize_t lv_sysfs_store(unsigned int idx, const char *buf, size_t len);

#endif
