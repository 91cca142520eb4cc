# The history of lazy vmap freeing (the `bug` knob, src/core/history.rs):
# each exhibit brought back on this module's code is caught by its general
# detector under stress, with the time to the first detection printed;
# the two performance exhibits show their cost beside today's code; with
# `bug none` the same loads leave every detector at 0 over 10^6 ops; the
# counters return to 0 after stop + purge; `bug` is refused while stress
# runs and on bad input. The detectors, all on in every mode:
#   live_ptes        a range unmapped still has a present PTE (lazy-pte)
#   drain_stuck      a drain made no progress for drain_stuck_rounds rounds
#   lock_violations  a block queue's free list changed without its lock
#   uninit_blocks    a walk read a block whose fields are not set
# (The drain loop with its bound off, which only the kernel's hung-task
# detector sees, is history-hung.sh: the guest dies there.)
# shellcheck shell=sh disable=SC2086,SC2046 # busybox sh: lists split on purpose; knob names, numbers and fixed paths unquoted
plan 47
cpus=$(grep -c ^processor /proc/cpuinfo)
check "insmod" insmod $LAZY_VMAP_KO
echo 0 > /proc/sys/kernel/printk_ratelimit
taskset -p $((1 << (cpus - 1))) $$ >/dev/null

# now_ms: the uptime in ms into $NOW, without a fork.
now_ms() {
	read -r _up _ < /proc/uptime
	_f=${_up#*.}; _f=${_f#0}
	NOW=$(( ${_up%.*} * 1000 + _f * 10 ))
}
# detect STAT MAX_MS [RUN_MS]: runs stress (for RUN_MS, default until the
# end) until STAT moves (polled every 50 ms) or MAX_MS pass, then stops it;
# the ms from the start to the first detection into $DET ("none").
# Succeeds iff STAT moved.
detect() {
	mark; DET=none
	put duration_ms ${3:-0} && put stress 1 || return 1
	now_ms; _t0=$NOW
	while :; do
		nap 0.05; now_ms
		[ "$(d $1)" -gt 0 ] && { DET=$((NOW - _t0)); break; }
		[ $((NOW - _t0)) -gt $2 ] && break
	done
	put stress 0
	[ "$DET" != none ]
}
# clean: the four detectors' movements since the mark, as a/b/c/d.
clean() { echo "$(d live_ptes)/$(d drain_stuck)/$(d lock_violations)/$(d uninit_blocks)"; }

check "default bug none" is bug none
check "default drain_stuck_rounds 100" is drain_stuck_rounds 100
check "bug: unknown name refused EINVAL, unchanged" refused bug lazy_pte "Invalid argument"
check "bug: trailing garbage refused EINVAL" refused bug "none\n\n" "Invalid argument"
# refused_wo KNOB VALUE: a write-only knob refuses VALUE (its error text not printed).
refused_wo() { ! put "$1" "$2" >/dev/null; }
check "nonlazy 2 refused EINVAL" refused_wo nonlazy 2
check "drain_stuck_rounds -1 refused EINVAL, unchanged" refused drain_stuck_rounds -1 "Invalid argument"
every=1
for b in lazy-pte drain-loop vbq-lock vb-publish per-area-sub system-wq none; do
	put bug $b && is bug $b || every=0
done
check "every exhibit selectable, and back to none" [ $every = 1 ]
put threads 4; put workload fix_size; put nr_pages 1
put duration_ms 0; put stress 1
check "bug refused EBUSY while stress runs, unchanged" refused bug lazy-pte "busy"
put stress 0

# 1. lazy-pte (2.6.28-2.6.36, fixed by 64141da58724): a free leaves its
# PTEs until the purge; the general detector checks every range when its
# unmap returns. On both kinds of unmap: an area, and a block mapping.
put mode ordered; put target lazy_vmap; put bug lazy-pte
check "lazy-pte, lazy_vmap: live_ptes fires" detect live_ptes 10000
echo "# lazy-pte, lazy_vmap: first detection after $DET ms; live_ptes $(d live_ptes) in $(d ops) ops"
cmp_ "lazy-pte: no mismatch, no stale translation, no stale alias" "$(d mismatches)/$(d stale_tlb)/$(d stale_alias)" = 0/0/0
put target ram; put nr_pages 4; put unmap_aliases_ms 10
check "lazy-pte, ram: live_ptes fires" detect live_ptes 10000
echo "# lazy-pte, ram: first detection after $DET ms; live_ptes $(d live_ptes) in $(d ops) ops"
cmp_ "lazy-pte, ram: no mismatch, no stale alias" "$(d mismatches)/$(d aliases_stale)" = 0/0
check "lazy-pte: quiesced (every kept mapping unmapped by the purge)" quiesced
put bug none

# 2. drain-loop (5.18-rc1..rc2, 690467c81b1a, fixed by c12cd77cb028): with
# the counter holding pages no area has (set_iounmap_nonlazy()), the drain
# loops without progress once the frees stop (while they go on, each round
# finds new areas); the bound stops it and counts it. One thread for 300 ms,
# whose end waits for the drain, as the commit's reader of /proc/vmcore
# freed a few areas and left the worker spinning.
put mode nodes; put target lazy_vmap; put nr_pages 1; put unmap_aliases_ms 0; put threads 1
put bug drain-loop
check "nonlazy 1" put nonlazy 1
cmp_ "nonlazy: the counter holds lazy_max_pages + 1" "$(stat lazy_pages)" -eq $(( $(stat lazy_max_pages) + 1 ))
check "drain-loop: drain_stuck fires" detect drain_stuck 20000 300
echo "# drain-loop: first detection after $DET ms; drain_stuck $(d drain_stuck), drain rounds $(d drain_rounds) in $(d drains_run) drains"
cmp_ "drain-loop: the stuck drains looped drain_stuck_rounds times" "$(d drain_rounds)" -ge 100
check "nonlazy 0" put nonlazy 0
check "drain-loop: quiesced" quiesced
cmp_ "nonlazy_pages back to 0" "$(stat nonlazy_pages)" -eq 0
put bug none; put nonlazy 1
mark; run_stress 2
echo "# drain-loop fixed: drains $(d drains_run), rounds $(d drain_rounds), drain_stuck $(d drain_stuck)"
cmp_ "none + nonlazy: the drain runs, one round each, never stuck" "$(d drain_stuck)/$(( $(d drains_run) > 0 ))/$(( $(d drain_rounds) == $(d drains_run) ))" = 0/1/1
put nonlazy 0
check "none + nonlazy: quiesced" quiesced
put threads 4

# 3. vbq-lock (6.5-6.9, fixed by 8c61291fd850): retiring a fragmented
# block takes the lock of the queue whose index holds it, not of its CPU.
# Random sizes leave blocks fragmented; unmap_aliases every ms retires them.
put mode ordered; put target ram; put workload random_size; put nr_pages 16; put unmap_aliases_ms 1
put bug vbq-lock
check "vbq-lock: lock_violations fires" detect lock_violations 20000
echo "# vbq-lock: first detection after $DET ms; lock_violations $(d lock_violations), fragmented blocks retired $(d vb_fragmented_purged)"
cmp_ "vbq-lock: no mismatch, no stale alias" "$(d mismatches)/$(d aliases_stale)" = 0/0
check "vbq-lock: quiesced" quiesced

# 4. vb-publish (6.10, fixed by 3e3de7947c75): a new block is in the index
# before its CPU is set; race_delay_us widens the window.
put workload fix_size; put nr_pages 64; put race_delay_us 200; put bug vb-publish
check "vb-publish: uninit_blocks fires" detect uninit_blocks 20000
echo "# vb-publish: first detection after $DET ms; uninit_blocks $(d uninit_blocks), new blocks $(d vb_blocks_new)"
cmp_ "vb-publish: no mismatch, no stale alias" "$(d mismatches)/$(d aliases_stale)" = 0/0
check "vb-publish: quiesced" quiesced
put race_delay_us 0; put bug none; put unmap_aliases_ms 0

# 5. per-area-sub (6.9-6.10, fixed by 409faf8c97d5): the purge's give-back
# subtracts from the shared counter once per area, not once per node.
put mode nodes; put target lazy_vmap; put nr_pages 1
nodes=$(stat vmap_nodes)
for b in none per-area-sub; do
	put bug $b
	mark; run_stress 2
	subs=$(d purge_counter_subs); purges=$(d purges); areas=$(d purged_areas)
	echo "# $b: $purges purges of $areas areas, $subs counter subtractions ($(( subs / (purges + (purges == 0)) )) per purge); purge p99 $(lat purge p99) ns"
	if [ $b = none ]; then
		cmp_ "none: at most one subtraction per node per purge" "$subs" -le $(( purges * nodes ))
	else
		cmp_ "per-area-sub: one subtraction per area" "$subs" -eq "$areas"
	fi
	check "$b: quiesced" quiesced
done
cmp_ "per-area-sub: the purges took areas" "$areas" -gt "$purges"

# 6. system-wq (6.9 through 7.3; the proposed fix, "mm/vmalloc: use dedicated
# unbound workqueues for vmap drain", is in no release): the drain on the
# per-CPU system_percpu_wq runs on a worker
# bound to one CPU; today's on the module's own unbound queue. Each runs
# until 8 drains have run (at most 30 s): the kernel reports a work
# function once it has hogged a CPU 4 times, then at every power of 2.
for b in none system-wq; do
	put bug $b
	mark; put duration_ms 0; put stress 1; i=0
	while [ "$(d drains_run)" -lt 8 ] && [ $i -lt 300 ]; do nap 0.1; i=$((i + 1)); done
	put stress 0
	n=$(d drains_run)
	echo "# $b: drains $n (on a bound worker: $(d drains_bound)), mean $(( $(d drain_ns_total) / (n + (n == 0)) / 1000 )) us, $(d drains_over_10ms) over 10 ms"
	reports=$(dmesg | grep -c 'lazy_vmap\] hogged CPU')
	if [ $b = none ]; then
		cmp_ "none: every drain on an unbound worker" "$(( n > 0 ))/$(d drains_bound)" = 1/0
		cmp_ "none: the kernel never reports the drain hogging a CPU" "$reports" -eq 0
	else
		cmp_ "system-wq: every drain on a per-CPU worker" "$(d drains_bound)" -eq "$n"
		echo "# the kernel's report (WQ_CPU_INTENSIVE_REPORT): $(dmesg | grep 'lazy_vmap\] hogged CPU' | tail -n 1)"
		# (Expected once 4 drains ran over 10 ms: on a fast machine none may.)
		o=$(d drains_over_10ms)
		check "system-wq: the kernel reports the drain hogging its CPU ($reports lines, $o drains over 10 ms)" \
			sh -c "[ $o -lt 4 ] || [ $reports -gt 0 ]"
	fi
done
put bug none
check "system-wq: quiesced" quiesced

# The fix of each, under one load that exercises every detector's path:
# blocks (ram) with unmap_aliases every 2 ms, mode nodes with the drain
# and set_iounmap_nonlazy(), 4 threads, at least 10^6 ops (3 * 10^4 on the
# debug kernel, where a clean-clone make test made 43,003 in 300 s), for
# at most 600 s (a doubly loaded machine made 634,196 in 300 s);
# then areas.
want=1000000
dmesg | grep -q 'KernelAddressSanitizer initialized' && want=30000
put mode nodes; put target ram; put workload random_size; put nr_pages 16; put unmap_aliases_ms 2
put nonlazy 1
mark; put duration_ms 0; put stress 1
now_ms; t0=$NOW
while [ "$(d ops)" -lt $want ] && [ $((NOW - t0)) -lt 600000 ]; do nap 0.5; now_ms; done
put stress 0
echo "# bug none: $(d ops) ops, drains $(d drains_run), aliases $(d aliases_calls), fragmented retired $(d vb_fragmented_purged), new blocks $(d vb_blocks_new)"
cmp_ "bug none: at least $want ops" "$(d ops)" -ge $want
cmp_ "bug none: live_ptes/drain_stuck/lock_violations/uninit_blocks all 0" "$(clean)" = 0/0/0/0
cmp_ "bug none: the paths ran (drains, unmap_aliases, retired blocks)" \
	"$(( $(d drains_run) > 0 ))/$(( $(d aliases_calls) > 0 ))/$(( $(d vb_fragmented_purged) > 0 ))" = 1/1/1
put nonlazy 0
check "bug none, ram: quiesced" quiesced
put target lazy_vmap; put workload fix_size; put nr_pages 1; put unmap_aliases_ms 0
mark; run_stress 2
cmp_ "bug none, lazy_vmap: no live PTE after any unmap" "$(d live_ptes)/$(( $(d ops) > 0 ))" = 0/1
check "counters back to 0 after stop + purge" quiesced
cmp_ "no mismatch, no stale translation, no stale alias in the whole suite" \
	"$(stat mismatches)/$(stat stale_tlb)/$(stat stale_alias)/$(stat aliases_stale)" = 0/0/0/0
check "rmmod" rmmod lazy_vmap
finish
