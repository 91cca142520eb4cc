// SPDX-License-Identifier: GPL-2.0

//! This CPU's TLB flush primitives. Invalidating a translation is always
//! safe: at worst the next access walks the page tables again. The policy
//! (which primitive, on which CPUs) is in `src/tlb.rs`.

use super::ffi;

/// Whether page-table isolation is on (kernel mappings not global, each
/// address space with a user PCID twin: `invlpg` is not enough).
pub(crate) fn pti() -> bool {
    // SAFETY: reads a boot-time CPU feature bit.
    unsafe { ffi::lv_pti_enabled() }
}

/// `invlpg` of the page at kernel address `addr`, on this CPU.
pub(crate) fn invlpg(addr: usize) {
    // SAFETY: invalidating any address is safe.
    unsafe { ffi::lv_invlpg(addr as _) };
}

/// `__flush_tlb_all()` on this CPU: every entry, global ones included, every
/// PCID. The helper disables preemption around it, as the kernel insists.
pub(crate) fn flush_all() {
    // SAFETY: flushing this CPU's TLB is always safe.
    unsafe { ffi::lv_flush_tlb_all_local() };
}
