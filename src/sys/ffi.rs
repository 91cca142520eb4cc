// SPDX-License-Identifier: GPL-2.0

//! Declarations of the C helpers in `src/shim.c` (static inlines and macros
//! of 6.12 that Rust cannot call). Private to [`crate::sys`]: only its safe
//! wrappers call them.

// `struct page` and `task_struct` contain fields bindgen renders as empty
// structs; we only pass pointers to them, as the kernel crate does.
#![allow(improper_ctypes)]

use kernel::bindings::{kobject, list_head, page, pte_t, task_struct};
use kernel::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void};

extern "C" {
    // Exported by mm/vmalloc.c but missing from 6.12's `bindings`.
    pub(super) fn vunmap(addr: *const c_void);
    pub(super) fn vm_map_ram(pages: *mut *mut page, count: c_uint, node: c_int) -> *mut c_void;
    pub(super) fn vm_unmap_ram(mem: *const c_void, count: c_uint);
    pub(super) fn vm_unmap_aliases();
    pub(super) fn lv_vmap(pages: *mut *mut page, count: c_uint) -> *mut c_void;
    pub(super) fn lv_lookup_pte(addr: c_ulong) -> *mut pte_t;
    pub(super) fn lv_set_pte(ptep: *mut pte_t, page: *mut page);
    pub(super) fn lv_set_pte_if_none(ptep: *mut pte_t, page: *mut page) -> bool;
    pub(super) fn lv_clear_pte(ptep: *mut pte_t) -> *mut page;
    pub(super) fn lv_pte_page(ptep: *mut pte_t) -> *mut page;
    pub(super) fn lv_probe_word(addr: c_ulong) -> bool;
    pub(super) fn lv_nr_cpus_config() -> c_uint;
    pub(super) fn lv_nr_cpu_ids() -> c_uint;
    pub(super) fn lv_flush_skip_cpu() -> c_int;
    pub(super) fn lv_quarantine_add(pages: *mut *mut page, n: c_ulong) -> c_ulong;
    pub(super) fn lv_quarantine_detach(list: *mut list_head) -> c_ulong;
    pub(super) fn lv_quarantine_free(list: *mut list_head);
    pub(super) fn lv_alloc_pages_bulk(n: c_ulong, pages: *mut *mut page) -> c_ulong;
    pub(super) fn lv_free_pages_bulk(pages: *mut *mut page, n: c_ulong);
    pub(super) fn lv_get_page(page: *mut page);
    pub(super) fn lv_put_page(page: *mut page);
    pub(super) fn lv_page_address(page: *mut page) -> *mut c_void;
    pub(super) fn lv_pti_enabled() -> bool;
    pub(super) fn lv_flush_tlb_all_local();
    pub(super) fn lv_invlpg(addr: c_ulong);
    pub(super) fn lv_vmalloc(size: c_ulong, align: c_ulong) -> *mut c_void;
    pub(super) fn lv_vfree(addr: *const c_void);
    pub(super) fn lv_purge_lock();
    pub(super) fn lv_purge_trylock() -> bool;
    pub(super) fn lv_purge_unlock();
    pub(super) fn lv_race_bug(nr: c_long, lazy: c_long);
    pub(super) fn lv_race_warn(nr: c_long, lazy: c_long);
    pub(super) fn lv_cond_resched();
    pub(super) fn lv_kthread_start(
        f: unsafe extern "C" fn(*mut c_void) -> c_int,
        data: *mut c_void,
        cpu: c_int,
        id: c_int,
    ) -> *mut task_struct;
    pub(super) fn lv_wait_for_stop();
    pub(super) fn lv_online_cpus() -> c_uint;
    pub(super) fn lv_nth_online_cpu(n: c_uint) -> c_int;
    pub(super) fn lv_this_cpu() -> c_int;
    pub(super) fn lv_current_bound_to_one_cpu() -> bool;
    pub(super) fn lv_alloc_unbound_wq(
        name: *const c_char,
    ) -> *mut kernel::bindings::workqueue_struct;
    pub(super) fn lv_cpu_possible(cpu: c_uint) -> bool;
    pub(super) fn lv_migrate_enable();
    pub(super) fn lv_totalram_pages() -> c_ulong;
    pub(super) fn lv_arena_fault() -> c_uint;
    pub(super) fn lv_sysfs_create(
        dir: *const c_char,
        names: *const *const c_char,
        modes: *const u16,
        n: c_uint,
    ) -> *mut kobject;
    pub(super) fn lv_sysfs_remove(kobj: *mut kobject);
    pub(super) fn lv_init_fault_arm() -> c_int;
    pub(super) fn lv_init_fault_disarm() -> c_uint;
    pub(super) fn lv_trace_alloc_vmap_area(
        addr: c_ulong,
        size: c_ulong,
        align: c_ulong,
        vstart: c_ulong,
        vend: c_ulong,
        failed: c_int,
    );
    pub(super) fn lv_trace_free_vmap_area_noflush(
        va_start: c_ulong,
        nr_lazy: c_ulong,
        nr_lazy_max: c_ulong,
    );
    pub(super) fn lv_trace_purge_vmap_area_lazy(start: c_ulong, end: c_ulong, npurged: c_uint);
}
