// SPDX-License-Identifier: GPL-2.0

//! This CPU's TLB flush primitives. Invalidating a translation is always
//! safe: at worst the next access walks the page tables again. The policy
//! (which primitive, on which CPUs) is in `src/tlb.rs`.

use super::ffi;
use kernel::ffi::c_ulong;

/// Whether page-table isolation is on (kernel mappings not global, each
/// address space with a user PCID twin: `invlpg` is not enough).
pub(crate) fn pti() -> bool {
    // SAFETY: reads a boot-time CPU feature bit.
    unsafe { ffi::lv_pti_enabled() }
}

/// `invlpg` of the page at kernel address `addr`, on this CPU.
pub(crate) fn invlpg(addr: usize) {
    // SAFETY: invalidating any address is safe.
    unsafe { ffi::lv_invlpg(addr as c_ulong) };
}

/// `__flush_tlb_all()` on this CPU: every entry, global ones included, every
/// PCID. The helper disables preemption around it, as the kernel insists.
pub(crate) fn flush_all() {
    // SAFETY: flushing this CPU's TLB is always safe.
    unsafe { ffi::lv_flush_tlb_all_local() };
}

/// The test hook `flush_skip_cpu` (module parameter): the CPU every flush
/// round skips while counting it as done, or `None` (the default, -1).
pub(crate) fn flush_skip_cpu() -> Option<u32> {
    // SAFETY: reads a module parameter.
    u32::try_from(unsafe { ffi::lv_flush_skip_cpu() }).ok()
}

/// Whether a read of one word at kernel address `addr` succeeds on this
/// CPU (`copy_from_kernel_nofault()`: a fault is fixed up, never an oops).
/// Callable with interrupts off. For the no-alias oracle, which probes only
/// addresses whose PTE is none: a read that succeeds went through a stale
/// TLB entry.
pub(crate) fn probe(addr: usize) -> bool {
    // SAFETY: copy_from_kernel_nofault() accepts any kernel address and
    // returns an error instead of faulting.
    unsafe { ffi::lv_probe_word(addr as c_ulong) }
}
