# The no-alias oracle (src/oracle.rs): after every purge's flush round, each
# online CPU reads, with copy_from_kernel_nofault(), sampled pages of the
# areas the purge took whose PTE is none; a read that succeeds is a stale
# alias. With flushes on: none, in every fixed mode, while the oracle ran.
# Negative controls: `flush off` (purges skip their flush, pages
# quarantined) and the hook `flush_skip_cpu` (every round skips one CPU but
# counts it; pages quarantined): stale aliases, on that CPU only. And the
# oracle off probes nothing; bad input is refused.
# shellcheck shell=sh disable=SC2086,SC2046 # busybox sh: lists split on purpose; knob names, numbers and fixed paths unquoted
plan 37
cpus=$(grep -c ^processor /proc/cpuinfo)
check "insmod" insmod $LAZY_VMAP_KO
echo 0 > /proc/sys/kernel/printk_ratelimit
# This shell runs on the last CPU only (as in the tlb suite): a process
# scheduled on a CPU loads its page tables, and TCG then drops that CPU's
# whole TLB, the stale entries the negative controls leave included.
taskset -p $((1 << (cpus - 1))) $$ >/dev/null
check "default check_alias 1" is check_alias 1
P=/sys/module/lazy_vmap/parameters/flush_skip_cpu
check "default flush_skip_cpu -1" [ "$(cat $P)" = -1 ]

# Flushes on: 4 threads, fix_size, every fixed mode (and the seed's buggy
# mode: its race is in the counter, not in the flush). 3 checks per mode.
put threads 4; put workload fix_size; put nr_pages 1; put lazy_max_pages 256
for m in buggy purge-lock ordered nodes; do
	put mode $m
	mark; run_stress 1
	echo "# $m: purges $(d purges) alias rounds $(d alias_rounds) probes $(d alias_probes) stale_alias $(d stale_alias)"
	cmp_ "$m: the oracle ran after every purge" "$(d alias_rounds)" -eq "$(d purges)"
	cmp_ "$m: it probed every CPU" "$(d alias_probes)" -ge $(( $(d alias_rounds) * cpus ))
	cmp_ "$m: no stale alias" "$(d stale_alias)" -eq 0
done
put mode ordered

# Rounds of invlpg per page (1 thread, 1-page areas, threshold 8: unions
# under the 33-page ceiling), where a union one page short would leave the
# last page stale: the oracle probes the highest page taken.
put threads 1; put lazy_max_pages 8
mark; run_stress 1
echo "# invlpg rounds: purges $(d purges) invlpg $(d tlb_flushes_pages) probes $(d alias_probes) stale_alias $(d stale_alias)"
cmp_ "invlpg: rounds of invlpg per page" "$(d tlb_flushes_pages)" -gt 0
cmp_ "invlpg: no stale alias" "$(d stale_alias)" -eq 0
put threads 4; put lazy_max_pages 256

# The oracle off: it probes nothing.
put check_alias 0
mark; run_stress 1
cmp_ "check_alias 0: purged" "$(d purges)" -gt 0
cmp_ "check_alias 0: no probe" "$(d alias_probes)/$(d alias_rounds)" = 0/0
put check_alias 1

# flush_skip_cpu: every round skips CPU 1 and counts it. Only CPU 1 can
# keep a stale entry, so the stale aliases are CPU 1's alone (the mask is
# cumulative since load, and nothing was stale before).
mask0=$(stat stale_alias_cpumask)
check "flush_skip_cpu 1" sh -c "echo 1 > $P"
mark; run_stress 2
m=$(stat stale_alias_cpumask)
echo "# flush_skip_cpu 1: purges $(d purges) rounds $(d tlb_flushes) stale_alias $(d stale_alias) mask $mask0 -> $m"
cmp_ "skip cpu 1: rounds counted every CPU" "$(d tlb_flush_cpus)" -eq $(( $(d tlb_flushes) * cpus ))
cmp_ "skip cpu 1: pages quarantined" "$(d quarantined_pages)" -gt 0
cmp_ "skip cpu 1: stale aliases seen" "$(d stale_alias)" -gt 0
check "skip cpu 1: nothing stale before" [ "$mask0" = 0x0 ]
check "skip cpu 1: the stale aliases were CPU 1's alone (mask 0x2)" [ "$m" = 0x2 ]
check "flush_skip_cpu -1" sh -c "echo -1 > $P"
put flush off; put flush on
mark; run_stress 1
cmp_ "hook off: no stale alias" "$(d stale_alias)" -eq 0

# flush off: purges skip their flush; the oracle sees the stale aliases
# the threads' CPUs kept.
check "flush off" put flush off
mark; run_stress 2
echo "# flush off: purges $(d purges) skipped $(d skipped_flushes) probes $(d alias_probes) stale_alias $(d stale_alias) cpus $(stat stale_alias_cpumask)"
cmp_ "flush off: every purge skipped its flush" "$(d skipped_flushes)" -eq "$(d purges)"
cmp_ "flush off: stale aliases seen" "$(d stale_alias)" -gt 0
check "flush on (the quarantine drained after a full flush)" put flush on
mark; run_stress 1
cmp_ "flush on again: no stale alias" "$(d stale_alias)" -eq 0

# Bad input: refused, unchanged.
check "check_alias refuses 2" refused check_alias 2 "Invalid argument"
check "check_alias refuses 'x'" refused check_alias x "Invalid argument"
check "check_alias still 1" is check_alias 1

check "quiesced" quiesced
check "rmmod" rmmod lazy_vmap
finish
