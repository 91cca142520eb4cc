// SPDX-License-Identifier: GPL-2.0
/*
 * Thin C helpers for lazy_vmap: only what Rust cannot reach in 6.12 because
 * it is a static inline or a macro (PTE accessors, PAGE_KERNEL, vmalloc's
 * allocation-profiling macros, set_current_state, BUG/WARN), plus what
 * must be C objects: the static purge mutex (lockdep wants a static key),
 * the static sysfs attribute table and the one module parameter (6.12's
 * `module!` takes none). Every decision is made in Rust.
 */
#include <linux/cpu.h>
#include <linux/kobject.h>
#include <linux/kthread.h>
#include <linux/moduleparam.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/sched/task.h>
#include <linux/smp.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/sysfs.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>
#include <asm/invpcid.h>
#include <asm/tlbflush.h>

#include "shim.h"

/*
 * 6.12's module! takes `author:`, 7.3's only `authors: [..]`: the C side
 * says it once for both.
 */
MODULE_AUTHOR("lazy_vmap developers");

/* --- arena reservation and PTEs (src/pgtable.rs) --- */

void *lv_vmap(struct page **pages, unsigned int count)
{
	return vmap(pages, count, VM_MAP, PAGE_KERNEL);
}

/* The 4K PTE of a kernel address, or NULL if it is not mapped by one. */
pte_t *lv_lookup_pte(unsigned long addr)
{
	unsigned int level;
	pte_t *pte = lookup_address(addr, &level);

	return pte && level == PG_LEVEL_4K ? pte : NULL;
}

void lv_set_pte(pte_t *ptep, struct page *page)
{
	set_pte(ptep, mk_pte(page, PAGE_KERNEL));
}

/* Map @page at an empty PTE (one cmpxchg); false if the PTE was not empty. */
bool lv_set_pte_if_none(pte_t *ptep, struct page *page)
{
	pteval_t none = 0;

	return try_cmpxchg(&ptep->pte, &none, pte_val(mk_pte(page, PAGE_KERNEL)));
}

/* Clear a PTE with no TLB flush; return the page it mapped, if any. */
struct page *lv_clear_pte(pte_t *ptep)
{
	pte_t old = native_ptep_get_and_clear(ptep);

	return pte_present(old) ? pte_page(old) : NULL;
}

/* The page a PTE maps, or NULL if it is not present (no change to it). */
struct page *lv_pte_page(pte_t *ptep)
{
	pte_t pte = ptep_get(ptep);

	return pte_present(pte) ? pte_page(pte) : NULL;
}

/*
 * The no-alias oracle's probe: reads one word at @addr, returning true if
 * the read succeeded. copy_from_kernel_nofault() fixes a fault up instead of
 * oopsing and may be called with interrupts off (the oracle calls it in
 * on_each_cpu()'s callback). The oracle probes only addresses whose PTE is
 * none, so a read that succeeds went through a TLB entry left from before.
 */
bool lv_probe_word(unsigned long addr)
{
	unsigned long v;

	return copy_from_kernel_nofault(&v, (const void *)addr, sizeof(v)) == 0;
}

/*
 * flush_skip_cpu (rw, root): a test hook of the no-alias oracle. -1 (the
 * default): off. N: every flush round of the module skips CPU N but counts
 * it as done, and pages are quarantined as with `flush off`, so a write
 * through the stale entries it keeps lands in a page nobody else owns.
 */
static int flush_skip_cpu = -1;
module_param(flush_skip_cpu, int, 0600);
MODULE_PARM_DESC(flush_skip_cpu,
		 "Test hook: flush rounds skip this CPU, pages quarantined (-1 = off)");

int lv_flush_skip_cpu(void)
{
	return READ_ONCE(flush_skip_cpu);
}

/*
 * The quarantine of the `flush off` negative control: pages unmapped while
 * purges skip their TLB flush stay here, owned by the module, so a write
 * through a stale translation lands in a page nobody else uses. Linked
 * through page->lru (ours: the pages come from the page allocator and are
 * on no list). Drained only after a full flush on every CPU.
 */
static LIST_HEAD(lv_quarantine);
static DEFINE_SPINLOCK(lv_quarantine_lock);

static unsigned long lv_quarantine_nr;

/* Quarantine @pages[0..n); returns how many pages the quarantine holds. */
unsigned long lv_quarantine_add(struct page **pages, unsigned long n)
{
	unsigned long i, nr;

	spin_lock(&lv_quarantine_lock);
	for (i = 0; i < n; i++)
		list_add(&pages[i]->lru, &lv_quarantine);
	nr = lv_quarantine_nr += n;
	spin_unlock(&lv_quarantine_lock);
	return nr;
}

/*
 * Move every quarantined page to @list (the caller's, initialized here);
 * returns how many. The caller flushes every CPU, then frees them with
 * lv_quarantine_free(): pages quarantined meanwhile stay for the next drain.
 */
unsigned long lv_quarantine_detach(struct list_head *list)
{
	unsigned long n;

	INIT_LIST_HEAD(list);
	spin_lock(&lv_quarantine_lock);
	list_splice_init(&lv_quarantine, list);
	n = lv_quarantine_nr;
	lv_quarantine_nr = 0;
	spin_unlock(&lv_quarantine_lock);
	return n;
}

/*
 * Frees the detached quarantine: up to an eighth of RAM, so a preemption
 * point every 512 pages (process context: the drain runs from a write, a
 * purge or unload, never under a spinlock).
 */
void lv_quarantine_free(struct list_head *list)
{
	struct page *page, *next;
	unsigned long n = 0;

	list_for_each_entry_safe(page, next, list, lru) {
		list_del(&page->lru);
		__free_page(page);
		if (!(++n % 512))
			cond_resched();
	}
}

/*
 * Fill the NULL slots of @pages[0..n) with fresh pages; returns how many
 * slots are filled (the bulk allocator may give fewer than asked).
 */
unsigned long lv_alloc_pages_bulk(unsigned long n, struct page **pages)
{
#ifdef alloc_pages_bulk_array	/* 6.12; renamed alloc_pages_bulk() in 6.14 */
	return alloc_pages_bulk_array(GFP_KERNEL, n, pages);
#else
	return alloc_pages_bulk(GFP_KERNEL, n, pages);
#endif
}

void lv_free_pages_bulk(struct page **pages, unsigned long n)
{
	release_pages(pages, n);
}

/* --- TLB (src/tlb.rs) --- */

bool lv_pti_enabled(void)
{
	return boot_cpu_has(X86_FEATURE_PTI);
}

/*
 * Every TLB entry of this CPU, global ones and every PCID included, from
 * preemptible context: __flush_tlb_all() where the kernel exports it to
 * modules (6.12). 7.3 exports it to KVM only
 * (EXPORT_SYMBOL_FOR_KVM); Kbuild then leaves LV_HAVE_FLUSH_TLB_ALL
 * undefined (it reads the tree's Module.symvers) and this does what
 * __flush_tlb_all() does on bare metal and under TCG or KVM
 * (native_flush_tlb_global(); a Xen PV guest, whose CR4 writes trap, is
 * not supported):
 * INVPCID's all-context flush, or CR4.PGE toggled off and back with
 * interrupts off, each of which drops global entries and every PCID's, so
 * PTI's user twins too (SDM 4.10.4.1). Without PGE there are no global
 * entries and no PCIDs (the kernel enables PCID only with PGE): a CR3
 * reload drops everything.
 */
void lv_flush_tlb_all_local(void)
{
#ifdef LV_HAVE_FLUSH_TLB_ALL
	preempt_disable();
	__flush_tlb_all();
	preempt_enable();
#else
	unsigned long flags, cr4;

	if (boot_cpu_has(X86_FEATURE_INVPCID)) {
		invpcid_flush_all();
		return;
	}
	raw_local_irq_save(flags);
	if (boot_cpu_has(X86_FEATURE_PGE)) {
		/*
		 * native_write_cr4() is exported only to LKDTM in 7.x: the
		 * two writes here are its own `mov` (PGE is not a pinned bit,
		 * and CR4 ends as it was, so the per-CPU shadow stays right).
		 */
		cr4 = native_read_cr4();
		asm volatile("mov %0,%%cr4" : : "r" (cr4 ^ X86_CR4_PGE) : "memory");
		asm volatile("mov %0,%%cr4" : : "r" (cr4) : "memory");
	} else {
		native_write_cr3(__native_read_cr3());
	}
	raw_local_irq_restore(flags);
#endif
}

void lv_invlpg(unsigned long addr)
{
	asm volatile("invlpg (%0)" ::"r" (addr) : "memory");
}

/* --- the kernel's own allocator, as a stress target (src/stress.rs) --- */

void *lv_vmalloc(unsigned long size, unsigned long align)
{
	return __vmalloc_node(size, align, GFP_KERNEL, NUMA_NO_NODE,
			      __builtin_return_address(0));
}

void lv_vfree(void *addr)
{
	vfree(addr);
}

/* --- the static purge lock of __purge_vmap_area_lazy() (src/arena.rs) --- */

static DEFINE_MUTEX(lv_purge_mutex);

void lv_purge_lock(void)
{
	mutex_lock(&lv_purge_mutex);
}

bool lv_purge_trylock(void)
{
	return mutex_trylock(&lv_purge_mutex);
}

void lv_purge_unlock(void)
{
	mutex_unlock(&lv_purge_mutex);
}

/* --- the seed's BUG_ON, and its WARN variant (src/arena.rs) --- */

void lv_race_bug(long nr, long lazy)
{
	pr_emerg("lazy_vmap: nr %ld > vmap_lazy_nr %ld in __purge_vmap_area_lazy\n",
		 nr, lazy);
	BUG();
}

void lv_race_warn(long nr, long lazy)
{
	WARN(1, "lazy_vmap: nr %ld > vmap_lazy_nr %ld\n", nr, lazy);
}

/* --- kthreads (src/stress.rs) --- */

void lv_cond_resched(void)
{
	cond_resched();
}

/*
 * Create a kthread bound to @cpu and start it; the caller owns a reference
 * and stops it with kthread_stop_put().
 */
struct task_struct *lv_kthread_start(int (*fn)(void *), void *data, int cpu,
				     int id)
{
	struct task_struct *t;

	/*
	 * A CPU number from safe Rust: in range, and possible (cpu_to_node()
	 * and kthread_bind() index per-CPU data with it).
	 */
	if (cpu < 0 || cpu >= nr_cpu_ids || !cpu_possible(cpu))
		return ERR_PTR(-EINVAL);
	t = kthread_create_on_node(fn, data, cpu_to_node(cpu), "lazy_vmap/%d", id);
	if (IS_ERR(t))
		return t;
	kthread_bind(t, cpu);
	get_task_struct(t);
	wake_up_process(t);
	return t;
}

/* Sleep until kthread_stop() (a stress thread whose duration ran out). */
void lv_wait_for_stop(void)
{
	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (kthread_should_stop())
			break;
		schedule();
	}
	__set_current_state(TASK_RUNNING);
}

unsigned int lv_online_cpus(void)
{
	return num_online_cpus();
}

/* The @n-th online CPU (counting from 0, modulo the online count). */
/*
 * The n-th online CPU (mod the online count). Without cpus_read_lock() the
 * count and the mask can disagree during an offline, and cpumask_nth()
 * then returns nr_cpu_ids, which queue_work_on() would index per-CPU data
 * with. Under it they agree; a result out of range still falls back to this
 * CPU's number.
 */
int lv_nth_online_cpu(unsigned int n)
{
	unsigned int cpus, cpu;

	cpus_read_lock();
	cpus = num_online_cpus();
	cpu = cpumask_nth(n % (cpus ? cpus : 1), cpu_online_mask);
	cpus_read_unlock();
	if (WARN_ON_ONCE(cpu >= nr_cpu_ids))
		cpu = raw_smp_processor_id();
	return cpu;
}

unsigned long lv_totalram_pages(void)
{
	return totalram_pages();
}

/*
 * migrate_enable(), then, on a CPU going offline, a schedule(): hotplug
 * moves a task off the outgoing CPU only when it is current there and not
 * migration-disabled (balance_push()), and waits for that. A thread that
 * pins itself for every operation of a hot loop is preempted, if at all,
 * while pinned, and would hold the offline off until it stops.
 */
void lv_migrate_enable(void)
{
	migrate_enable();
	if (!cpu_active(raw_smp_processor_id()))
		schedule();
}

/* Whether cpu is a CPU number per-CPU data may be indexed with. */
bool lv_cpu_possible(unsigned int cpu)
{
	return cpu < nr_cpu_ids && cpu_possible(cpu);
}

int lv_this_cpu(void)
{
	return raw_smp_processor_id();
}

/* --- sysfs (src/sysfs.rs): a static attribute table, dispatched to Rust --- */

#define LV_MAX_ATTRS 32

static struct kobj_attribute lv_attrs[LV_MAX_ATTRS];
static struct attribute *lv_attr_ptrs[LV_MAX_ATTRS + 1];
static const struct attribute_group lv_group = { .attrs = lv_attr_ptrs };

static ssize_t lv_show(struct kobject *kobj, struct kobj_attribute *attr,
		       char *buf)
{
	return lv_sysfs_show(attr - lv_attrs, buf);
}

static ssize_t lv_store(struct kobject *kobj, struct kobj_attribute *attr,
			const char *buf, size_t len)
{
	return lv_sysfs_store(attr - lv_attrs, buf, len);
}

/* Create /sys/kernel/@dir with @n attributes; NULL on failure. */
struct kobject *lv_sysfs_create(const char *dir, const char *const *names,
				const umode_t *modes, unsigned int n)
{
	struct kobject *kobj;
	unsigned int i;

	if (n > LV_MAX_ATTRS)
		return NULL;
	for (i = 0; i < n; i++) {
		lv_attrs[i].attr.name = names[i];
		lv_attrs[i].attr.mode = modes[i];
		lv_attrs[i].show = lv_show;
		lv_attrs[i].store = (modes[i] & 0200) ? lv_store : NULL;
		lv_attr_ptrs[i] = &lv_attrs[i].attr;
	}
	lv_attr_ptrs[n] = NULL;
	kobj = kobject_create_and_add(dir, kernel_kobj);
	if (!kobj)
		return NULL;
	if (sysfs_create_group(kobj, &lv_group)) {
		kobject_put(kobj);
		return NULL;
	}
	return kobj;
}

void lv_sysfs_remove(struct kobject *kobj)
{
	sysfs_remove_group(kobj, &lv_group);
	kobject_put(kobj);
}

/* --- page references for the stale-TLB self-test (src/arena.rs) --- */

void lv_get_page(struct page *page)
{
	get_page(page);
}

void lv_put_page(struct page *page)
{
	put_page(page);
}

/* The direct-map address of a page (writes that bypass the area's TLB entries). */
void *lv_page_address(struct page *page)
{
	return page_address(page);
}

/*
 * --- test hook: arena creation failing part way (src/pgtable.rs) ---
 *
 * inject_arena_failure (rw, root): 1 makes the next arena's PTE array
 * allocation fail (-ENOMEM), 2 makes its PTE lookup fail half way
 * (-EINVAL), as if lookup_address() found no 4K PTE. Both error paths give
 * back the vmap() range and the dummy page exactly once.
 */
static unsigned int inject_arena_failure;
module_param(inject_arena_failure, uint, 0600);
MODULE_PARM_DESC(inject_arena_failure,
		 "Test hook: 1 = arena PTE array allocation fails, 2 = arena PTE lookup fails (0 = off)");

unsigned int lv_arena_fault(void)
{
	return READ_ONCE(inject_arena_failure);
}

/*
 * --- fault injection into module init (src/lazy_vmap_main.rs) ---
 *
 * inject_init_failure=N makes the Nth fault-injectable allocation of our
 * init fail: /proc/self/fail-nth, scoped to init instead of the whole
 * insmod (whose loader makes thousands of allocations first). The failure
 * is a real one, from the page or slab allocator, wherever it lands: our
 * arena setup, the kernel's vmap(), kvmalloc(), sysfs creation. Which
 * allocations count is set by the failslab / fail_page_alloc debugfs knobs
 * (ignore-gfp-wait, min-order).
 */
static unsigned int inject_init_failure;
module_param(inject_init_failure, uint, 0400);
MODULE_PARM_DESC(inject_init_failure,
		 "Test hook: fail the Nth fault-injectable allocation of init (needs CONFIG_FAULT_INJECTION; 0 = off)");

/*
 * Arm; returns the parameter (0: unset), or -EINVAL (too big, or no
 * fault injection in this kernel).
 */
int lv_init_fault_arm(void)
{
	if (!inject_init_failure)
		return 0;
	if (inject_init_failure > INT_MAX)
		return -EINVAL;
#ifdef CONFIG_FAULT_INJECTION
	WRITE_ONCE(current->fail_nth, inject_init_failure);
	return inject_init_failure;
#else
	return -EINVAL;
#endif
}

/* Disarm; returns how many of the armed count were left (0: injected). */
unsigned int lv_init_fault_disarm(void)
{
#ifdef CONFIG_FAULT_INJECTION
	unsigned int left = READ_ONCE(current->fail_nth);

	WRITE_ONCE(current->fail_nth, 0);
	return left;
#else
	return 0;
#endif
}

/*
 * The compile-time CPU bound (NR_CPUS) that 6.12's VMAP_BBMAP_BITS is
 * computed from: a size formula, not a CPU count, so it is what we want.
 */
unsigned int lv_nr_cpus_config(void)
{
	return CONFIG_NR_CPUS;
}

unsigned int lv_nr_cpu_ids(void)
{
	return nr_cpu_ids;
}

/*
 * A workqueue of the module's own, unbound and usable in reclaim, as the
 * 2026 fix gave the vmalloc drain and its helpers ("vmap_drain",
 * "vmap_drain_helpers"). alloc_workqueue() is a variadic macro.
 */
struct workqueue_struct *lv_alloc_unbound_wq(const char *name)
{
	return alloc_workqueue("%s", WQ_UNBOUND | WQ_MEM_RECLAIM, 0, name);
}

/*
 * Whether the current task may run on one CPU only: a per-CPU kworker
 * (system_percpu_wq's), not an unbound one (whose mask is its pod's or wider).
 */
bool lv_current_bound_to_one_cpu(void)
{
	return current->nr_cpus_allowed == 1;
}
