# The vmap blocks: this module's vm_map_ram()/vm_unmap_ram() (target ram)
# and vm_unmap_aliases() (the unmap_aliases knob, and every
# unmap_aliases_ms from stress thread 0), beside the kernel's own (target
# kram, selftest kernel-aliases). Checked: mappings come from blocks of
# 6.12's size, data and translations stay right (mismatches, stale_tlb),
# the no-alias oracle reads no stale alias after any unmap_aliases in
# all-blocks and reads them in free-list (selftest aliases: a fully used
# block, skipped by the free-list walk; under the stress, TCG's full
# flushes, above 33 pages, wipe what free-list leaves: printed only),
# no-reset (6.5 before a09fad96ffb1) flushes the same ranges again on every
# call and all-blocks does not, the kernel's 6.12 leaves no stale alias and
# its control (no call) does, bad input is refused, the counters go back to
# 0 after stop + purge, unload with live dirty blocks.
# shellcheck shell=sh disable=SC2086,SC2046 # busybox sh: lists split on purpose; knob names, numbers and fixed paths unquoted
plan 52
cpus=$(grep -c ^processor /proc/cpuinfo)
# selftest_field NAME: NAME=N of the last self-test's line.
selftest_field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" $K/selftest; }
check "insmod" insmod $LAZY_VMAP_KO
echo 0 > /proc/sys/kernel/printk_ratelimit
taskset -p $((1 << (cpus - 1))) $$ >/dev/null
check "default vb_mode all-blocks" is vb_mode all-blocks
check "default unmap_aliases_ms 0" is unmap_aliases_ms 0
# 128 MiB = 32768 pages, NR_CPUS 8: 32768 / 8 / 16 = 256 pages per block.
check "blocks of 256 pages (6.12's VMAP_BBMAP_BITS formula)" [ "$(stat vb_block_pages)" = 256 ]

# all-blocks, 4 threads of fix_size, 4-page mappings, unmap_aliases every 10 ms.
put target ram; put threads 4; put workload fix_size; put nr_pages 4; put unmap_aliases_ms 10
mark; check "ram: stress runs" run_stress 2
echo "# all-blocks: ops $(d ops) vb_allocs $(d vb_allocs) blocks new $(d vb_blocks_new) freed $(d vb_blocks_freed) aliases $(d aliases_calls) flushes $(d aliases_flushes) probes $(d aliases_probes) aliases_stale $(d aliases_stale)"
cmp_ "all-blocks: mappings from blocks" "$(d vb_allocs)" -gt 0
cmp_ "all-blocks: unmap_aliases called" "$(d aliases_calls)" -gt 0
cmp_ "all-blocks: the oracle probed unmap_aliases" "$(d aliases_probes)" -gt 0
cmp_ "all-blocks: no stale alias after a purge or an unmap_aliases, no stale translation, no mismatch" \
	"$(d stale_alias)/$(d aliases_stale)/$(d stale_tlb)/$(d mismatches)" = 0/0/0/0
cmp_ "all-blocks: no allocation failure" "$(d alloc_failures)" -eq 0

# unmap_aliases by hand, while stress runs and stopped.
put duration_ms 0
check "stress starts" put stress 1
check "unmap_aliases while stress runs" put unmap_aliases 1
check "vb_mode refused EBUSY while running" fails put vb_mode free-list
check "stop" put stress 0
check "unmap_aliases while stopped" put unmap_aliases 1
put duration_ms 0

# free-list: full blocks are skipped; their dirty pages stay translated
# on the CPUs that wrote them, which the oracle reads. 64-page mappings fill
# a block in 4 and leave it fully used while its pages are freed one by one.
check "vb_mode free-list" put vb_mode free-list
put nr_pages 64
mark; run_stress 2
echo "# free-list: ops $(d ops) aliases $(d aliases_calls) probes $(d aliases_probes) aliases_stale $(d aliases_stale)"
cmp_ "free-list: ran" "$(d ops)" -gt 0
cmp_ "free-list: no data mismatch, no stale translation" "$(d mismatches)/$(d stale_tlb)" = 0/0
# The self-test: a block of this CPU filled with 64-page mappings, read
# everywhere, all but one unmapped, unmap_aliases, a probe of every page
# unmapped from every CPU.
mark
check "selftest aliases (free-list)" put selftest aliases
echo "# free-list: $(cat $K/selftest); the oracle: probes $(d aliases_probes) aliases_stale $(d aliases_stale)"
cmp_ "free-list: the full block's dirty pages still read on some CPU" "$(selftest_field stale)" -gt 0
cmp_ "free-list: the oracle saw them too" "$(d aliases_stale)" -gt 0
check "vb_mode all-blocks" put vb_mode all-blocks
mark
check "selftest aliases (all-blocks)" put selftest aliases
echo "# all-blocks: $(cat $K/selftest)"
cmp_ "all-blocks: every page probed on every CPU" "$(selftest_field probed)" -eq $(( cpus * 3 * 64 ))
cmp_ "all-blocks: none readable" "$(selftest_field stale)" -eq 0
cmp_ "all-blocks: the oracle read no stale alias" "$(d aliases_stale)" -eq 0
mark; run_stress 2
echo "# all-blocks, 64 pages: ops $(d ops) aliases $(d aliases_calls) probes $(d aliases_probes) aliases_stale $(d aliases_stale)"
cmp_ "all-blocks, 64-page mappings: no mismatch, no stale alias" "$(d mismatches)/$(d aliases_stale)/$(d stale_alias)" = 0/0/0

# The kernel's own vmap blocks, same boot: the self-test on 6.12, its
# control without vm_unmap_aliases(), and the stress on target kram.
check "selftest kernel-noaliases" put selftest kernel-noaliases
echo "# kernel, no call: $(cat $K/selftest)"
cmp_ "kernel, no call: every page probed on every CPU" "$(selftest_field probed)" -eq $(( cpus * 15 * 64 ))
cmp_ "kernel, no call: its stale aliases read (the probe sees the kernel's)" "$(selftest_field stale)" -gt 0
check "selftest kernel-aliases" put selftest kernel-aliases
echo "# kernel: $(cat $K/selftest)"
cmp_ "kernel 6.12: vm_unmap_aliases() leaves none" "$(selftest_field stale)/$(selftest_field probed)" = 0/$(( cpus * 15 * 64 ))
put target kram; put nr_pages 4; put unmap_aliases_ms 10
mark; check "kram: stress runs" run_stress 2
echo "# kram: ops $(d ops) vm_unmap_aliases calls $(d unmap_aliases_calls)"
cmp_ "kram: ran, vm_unmap_aliases() called" "$(d ops)/$(( $(d unmap_aliases_calls) > 0 ))" != 0/0
cmp_ "kram: no data mismatch, no stale translation, no failure" \
	"$(d mismatches)/$(d stale_tlb)/$(d alloc_failures)" = 0/0/0
cmp_ "kram: none of ours touched" "$(d vb_allocs)/$(d purges)" = 0/0
put target ram

# The oracle off: unmap_aliases still runs, nothing is probed.
put check_alias 0; put nr_pages 4
mark; run_stress 1
cmp_ "check_alias 0: unmap_aliases called" "$(d aliases_calls)" -gt 0
cmp_ "check_alias 0: nothing probed, after a purge or an unmap_aliases" "$(d alias_probes)/$(d aliases_probes)" = 0/0
put check_alias 1

# no-reset: with nothing freed in between, every call flushes the same
# dirty ranges again; all-blocks flushes them once.
put unmap_aliases_ms 0; put nr_pages 4
check "vb_mode no-reset" put vb_mode no-reset
run_stress 1
put unmap_aliases 1
s1=$(stat aliases_span_pages); put unmap_aliases 1
s2=$(stat aliases_span_pages); put unmap_aliases 1
s3=$(stat aliases_span_pages)
echo "# no-reset: aliases_span_pages $s1 -> $s2 -> $s3"
cmp_ "no-reset: the second call flushed dirty pages again" $((s2 - s1)) -gt 0
cmp_ "no-reset: the third as many" $((s3 - s2)) -eq $((s2 - s1))
put vb_mode all-blocks
run_stress 1
put unmap_aliases 1
s1=$(stat aliases_span_pages); put unmap_aliases 1
cmp_ "all-blocks: a second call has nothing left to flush" "$(stat aliases_span_pages)" -eq "$s1"

# Bad input: refused, unchanged.
check "selftest refuses 'aliasez'" refused selftest aliasez "Invalid argument"
put duration_ms 0; put stress 1
check "selftest aliases refused while stress runs" fails put selftest aliases
put stress 0; put duration_ms 0
check "vb_mode refuses 'nope'" refused vb_mode nope "Invalid argument"
check "vb_mode still all-blocks" is vb_mode all-blocks
check "unmap_aliases refuses 2" refused unmap_aliases 2 "Invalid argument"
check "unmap_aliases_ms refuses 1001" refused unmap_aliases_ms 1001 "Invalid argument"

# Stop + purge: the blocks with no page in use retire, their areas purged.
check "quiesced" quiesced
cmp_ "no block left" "$(stat vb_blocks)" -eq 0
# Unload with live dirty blocks.
mark; run_stress 1
cmp_ "blocks live before unload" "$(stat vb_blocks)" -gt 0
check "rmmod with dirty blocks" rmmod lazy_vmap
finish
