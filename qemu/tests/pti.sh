# Page table isolation: make test boots this suite with `pti=on`, on both
# kernels (both build MITIGATION_PAGE_TABLE_ISOLATION; the guest's qemu64 CPU
# is not affected by Meltdown, so without `pti=on` PTI is off).
#
# With PTI, kernel mappings are not global and every address space has a
# user twin, so `invlpg` of a kernel address reaches only the current
# context: every flush this module issues must then flush the whole TLB.
# The purges' rounds (src/tlb.rs, `tlb_flushes_full`) and the floor's local
# flush (`Stale::flush_local`, `local_flushes_full`) are checked to do so,
# with areas small enough that without PTI they would use `invlpg`; and the
# stale-TLB checks still see nothing stale, while the self-test's negative
# control still sees stale entries. QEMU's TCG has no PCID (it warns
# "TCG doesn't support requested feature: CPUID.01H:ECX.pcid"), so this is
# PTI without PCID; with PCID (KVM, real hardware) the same full flushes
# reach every PCID.
# shellcheck shell=sh disable=SC2086,SC2046 # busybox sh: lists split on purpose; knob names, numbers and fixed paths unquoted
plan 18
cpus=$(grep -c ^processor /proc/cpuinfo)
check "PTI is on (dmesg: Kernel/User page tables isolation: enabled)" \
	sh -c "dmesg | grep -q 'page tables isolation: enabled'"
check "insmod" insmod $LAZY_VMAP_KO

check "selftest tlb runs" put selftest tlb
set -- $(cat $K/selftest)
echo "# $(cat $K/selftest)"
check "tlb: all $cpus CPUs read the new page" [ "$2 $3 $4" = "cpus=$cpus fresh=$cpus stale=0" ]
check "selftest tlb-noflush runs" put selftest tlb-noflush
check "tlb-noflush: stale entries detected without the flush (within 5 tries)" noflush_sees_stale

# Purges: 1-page areas, threshold 8, one thread: every union is far under
# the 33 pages above which a round flushes everything anyway.
put workload fix_size; put threads 1; put nr_pages 1; put lazy_max_pages 8
mark; check "lazy_vmap: stress runs" run_stress 1
echo "# lazy_vmap: ops $(d ops) purges $(d purges) rounds $(d tlb_flushes) (invlpg $(d tlb_flushes_pages), full $(d tlb_flushes_full))"
cmp_ "lazy_vmap: purged" "$(d purges)" -gt 0
cmp_ "lazy_vmap: no invlpg round under PTI" "$(d tlb_flushes_pages)" -eq 0
cmp_ "lazy_vmap: every round a full flush" "$(d tlb_flushes_full)" -eq "$(d tlb_flushes)"
cmp_ "lazy_vmap: no stale translation, no mismatch" "$(d stale_tlb)/$(d mismatches)" = 0/0

# The floor: each thread flushes only its own CPU (pinned), 1-page areas.
put target floor; put threads 2
mark; check "floor: stress runs" run_stress 1
echo "# floor: ops $(d ops) local flushes (invlpg $(d local_flushes_pages), full $(d local_flushes_full))"
cmp_ "floor: ops made" "$(d ops)" -gt 0
cmp_ "floor: no invlpg local flush under PTI" "$(d local_flushes_pages)" -eq 0
cmp_ "floor: a full local flush per free" "$(d local_flushes_full)" -ge "$(d frees)"
cmp_ "floor: no stale translation, no mismatch" "$(d stale_tlb)/$(d mismatches)" = 0/0
put target lazy_vmap

check "quiesced" quiesced
check "rmmod" rmmod lazy_vmap
finish
