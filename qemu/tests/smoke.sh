# make check's guest: the module loads, purges lazily with one flush round
# per purge under 4 threads, the stale-TLB self-test passes, the kernel's own
# vmalloc runs beside it, and it unloads with nothing left. About 20 s of
# guest time; make test's suites are the real tests.
# shellcheck shell=sh disable=SC2086,SC2046,SC2154 # busybox sh: lists split on purpose; S_* are set by snap
plan 12
cpus=$(grep -c ^processor /proc/cpuinfo)
check "insmod" insmod $LAZY_VMAP_KO
put threads 4; put workload fix_size; put target lazy_vmap
snap; p0=$S_purges f0=$S_tlb_flushes o0=$S_ops
check "stress on this module's arena, 2 s" run_stress 2
snap
cmp_ "operations done" "$((S_ops - o0))" -gt 0
cmp_ "purged lazily" "$((S_purges - p0))" -gt 0
cmp_ "at most one flush round per purge" "$((S_tlb_flushes - f0))" -le "$((S_purges - p0))"
cmp_ "no stale translation seen" "$S_stale_tlb" -eq 0
cmp_ "no data mismatch" "$S_mismatches" -eq 0
check "selftest tlb runs" put selftest tlb
set -- $(cat $K/selftest)
check "tlb: all $cpus CPUs read the new page" [ "$2 $3 $4" = "cpus=$cpus fresh=$cpus stale=0" ]
put target vmalloc; o0=$S_ops
check "stress on the kernel's vmalloc, 1 s" run_stress 1
check "quiesced: nothing mapped, nothing lazy" quiesced
check "rmmod" rmmod lazy_vmap
finish
