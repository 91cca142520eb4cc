# Stale translations: the stress itself catches a missing flush.
#
# Every check of the stress reads each page through the direct map of the
# page its PTE maps, besides the area's address, and counts disagreements in
# `stale_tlb`. With flushes on it stays 0 on every purge path and with both
# flush kinds; with `flush off` (every purge skips its flush, the old pages
# are quarantined) it moves on every path that hands ranges back for reuse.
# TCG keeps stale entries (platform notes), so the negative control is real.
# Also: the flush round counters, the detector switched off, the
# quarantine, two bugs found in review (PageTable::new's error paths,
# thread binding with a hole in the online mask), and CPU hotplug during
# floor and nodes runs.
# shellcheck shell=sh disable=SC2086,SC2046,SC2154 # S_*, S0_*: set by snap, mark; busybox sh: lists split on purpose; knob names, numbers and fixed paths unquoted
cpus=$(grep -c ^processor /proc/cpuinfo)
PATHS="threshold exhaustion demand mode_switch"
# insmod + 2 kinds x 7 + 2 flush values x (1 + 4 paths x 5) + 2 x 4 + 1
# (teardown) + 5 (detector off) + 6 (arena failures) + 6 (binding) + 5
# (flush off after lazy frees) + 4 (unload) + 2 x 6 (hotplug during runs)
plan $((1 + 2 * 7 + 2 * (1 + 4 * 5) + 2 * 4 + 1 + 5 + 6 + 6 + 5 + 4 + 2 * 6))
check "insmod" insmod $LAZY_VMAP_KO
# The kernel's printk rate limit would hide most of the detector's lines.
echo 0 > /proc/sys/kernel/printk_ratelimit
# This shell and every process it starts run on the last CPU only: a process
# scheduled on a CPU loads its page tables, and TCG then drops that CPU's
# whole TLB, the stale entries the negative control leaves included. Thread
# 0 of the stress runs on CPU 0.
taskset -p $((1 << (cpus - 1))) $$ >/dev/null

# stopped: wait for the end of a run, with shell builtins only (no fork).
stopped() { while read -r s < $K/stress && [ "$s" = 1 ]; do :; done; }
# (mark and d, of lib.sh: remember the stats; how far a key moved since.)
report() { echo "# $1: ops $(d ops) purges $(d purges) (threshold $(d purges_threshold)," \
	"exhaustion $(d purges_exhaustion), demand $(d purges_demand), mode_switch $(d purges_mode_switch))" \
	"flush rounds $(d tlb_flushes) (invlpg $(d tlb_flushes_pages), full $(d tlb_flushes_full))" \
	"skipped $(d skipped_flushes) stale_tlb $(d stale_tlb) mismatches $(d mismatches)"; }

# Flush rounds as the stats count them: one per purge, of the kind claimed,
# each run by every CPU. 7 checks.
rounds() {  # NAME KIND(pages|full)
	cmp_ "$1: purged" "$(d purges)" -gt 0
	cmp_ "$1: one flush round per purge" "$(d tlb_flushes)" -eq "$(d purges)"
	cmp_ "$1: invlpg + full rounds = rounds" $(( $(d tlb_flushes_pages) + $(d tlb_flushes_full) )) -eq "$(d tlb_flushes)"
	cmp_ "$1: every CPU ran every round" "$(d tlb_flush_cpus)" -eq $(( $(d tlb_flushes) * cpus ))
	cmp_ "$1: $2 flushes taken" "$(d tlb_flushes_$2)" -gt 0
	cmp_ "$1: no stale translation" "$(d stale_tlb)" -eq 0
	cmp_ "$1: no data mismatch" "$(d mismatches)" -eq 0
}
put threads 4; put workload fix_size
# invlpg per page: one thread's few small areas per purge, union <= 33 pages.
put threads 1; put nr_pages 1; put lazy_max_pages 8
mark; run_stress 1; report "1 thread, 1-page areas, threshold 8"
rounds "invlpg kind" pages
# A full flush: 4 threads of 1..100-page areas, unions far above 33 pages.
put threads 4; put workload random_size; put lazy_max_pages 2048
mark; run_stress 1; report "4 threads, random_size"
rounds "full kind" full

# Each purge path, flushes on then off. 5 checks per path and value.
# stress_on PATH: stress during which PATH, and no other path, hands ranges
# back for reuse; it takes the snapshot the checks compare with.
stress_on() {
	case $1 in
	threshold)
		put arena_mb 128; put workload fix_size; put nr_pages 1; put lazy_max_pages 64
		mark; run_stress 2 ;;
	exhaustion)
		# 4096 pages hold 40 areas of 100 pages: the 41st purges and retries.
		# Runs of 1 s until 10 such purges (a loaded host may give a 2 s
		# run only 3, too few for a stale entry to be met), at most 10 s.
		put arena_mb 16; put workload fix_size; put nr_pages 100; put lazy_max_pages 4096
		mark; i=0
		while [ $i -lt 10 ] && [ "$(d purges_exhaustion)" -lt 10 ]; do
			run_stress 1 || return 1; i=$((i + 1))
		done ;;
	demand)
		# Threshold = whole arena (65536 pages); `purge` every 0.05 s
		# empties the lazy list long before the arena fills. The race
		# delay (100 us in each free) slows the frees down so that the
		# quarantine (an eighth of RAM) is not drained, with its flush,
		# in the middle.
		put arena_mb 256; put workload fix_size; put nr_pages 1
		put lazy_max_pages 65536; put duration_ms 0; put race_delay_us 100
		mark; put stress 1 || return 1
		i=0; while [ $i -lt 10 ]; do nap 0.05; put purge 1; i=$((i + 1)); done
		put stress 0; put race_delay_us 0 ;;
	mode_switch)
		# One thread (on CPU 0) runs 2 ms: every area it frees stays lazy
		# (no purge: the threshold is the whole arena) and its translation
		# stays in CPU 0's TLB (a few hundred at most: more, and the TLB
		# evicts the first ones, which lowest-fit hands out first); the
		# switch purges them; the next 2 ms run reuses their ranges on the
		# same CPU. The shell runs on the last CPU (see the top) and forks
		# nothing in between (builtins only). Stale entries do not always
		# survive the thread's exit and the new thread's start (a switch of
		# address space on CPU 0 drops its whole TLB under TCG; on the
		# debug kernel, under load, 10 switches once caught none), so:
		# switches until the detector caught one (snap: no fork), at most
		# 40; with `flush on` all 40, none of which may catch one.
		put arena_mb 256; put workload fix_size; put nr_pages 1; put lazy_max_pages 65536
		put threads 1; put duration_ms 2
		mark
		echo 1 > $K/stress && stopped || return 1
		i=0
		while [ $i -lt 40 ]; do
			for m in purge-lock ordered; do
				echo $m > $K/mode && echo 1 > $K/stress && stopped || return 1
			done
			i=$((i + 2)); snap
			[ "$S_stale_tlb" = "$S0_stale_tlb" ] || break
		done
		put threads 4 ;;
	esac
}
for f in on off; do
	check "flush $f" put flush $f
	for p in $PATHS; do
		# Start with an empty quarantine (going back on drains it).
		[ $f = off ] && put flush on && put flush off
		check "flush $f, $p: stress ran" stress_on $p
		report "flush $f, $p"
		cmp_ "flush $f, $p: the $p path purged" "$(d purges_$p)" -gt 0
		other=0
		for q in $PATHS; do [ $q = $p ] || other=$((other + $(d purges_$q))); done
		cmp_ "flush $f, $p: no other path purged" $other -eq 0
		if [ $f = on ]; then
			cmp_ "flush on, $p: one flush round per purge" "$(d tlb_flushes)" -eq "$(d purges)"
			cmp_ "flush on, $p: no stale translation" "$(d stale_tlb)" -eq 0
		else
			cmp_ "flush off, $p: no flush round, every purge's flush skipped" \
				"$(d tlb_flushes)/$(d skipped_flushes)" = "0/$(d purges)"
			cmp_ "flush off, $p: stale translations caught" "$(d stale_tlb)" -gt 0
		fi
		put stress 0; put purge 1
	done
done

# Arena replacement and unload with `flush off`: the teardown purge skips its
# flush, the quarantine's drain flushes every CPU before freeing the pages,
# and the kernel flushes the old range at vunmap(); the new arena starts
# with no stale translation (a short run that purges nothing, so that only
# the teardown could have left one). 4 checks per value, and 1.
for f in on off; do
	# One thread for 150 ms frees far fewer pages than the threshold (the
	# whole arena), so lazy areas are left for certain: with 4 threads for
	# 300 ms under a loaded host, the last frees once set off a threshold
	# purge that left none, and the teardown found nothing to count.
	put flush $f; put arena_mb 128; put workload fix_size; put nr_pages 1; put lazy_max_pages 32768
	put threads 1; run_ms 150
	mark
	echo "# flush $f: $(stat lazy_pages) lazy pages at the replacement"
	check "flush $f: arena replaced after stress" put arena_mb 256
	cmp_ "flush $f: the teardown path purged" "$(d purges_teardown)" -gt 0
	put lazy_max_pages 65536; put threads 1
	mark; run_ms 100; report "flush $f, new arena"
	cmp_ "flush $f, new arena: no purge in the run" "$(d purges)" -eq 0
	cmp_ "flush $f: no stale translation in the new arena" "$(d stale_tlb)" -eq 0
done
put threads 4
cmp_ "flush off: pages were quarantined, then freed after a flush" "$(stat quarantine_freed)" -gt 0
put stress 0; put flush on; put purge 1

# The detector off: the same negative control catches nothing. 5 checks.
put flush off; put check_tlb 0; put arena_mb 128; put workload fix_size; put lazy_max_pages 64
mark
check "check_tlb 0, flush off: stress runs" run_stress 2
cmp_ "check_tlb 0: purges skipped their flush" "$(d skipped_flushes)" -gt 0
cmp_ "check_tlb 0: nothing detected" "$(d stale_tlb)" -eq 0
put check_tlb 1; mark
check "check_tlb 1, flush off: stress runs" run_stress 2
cmp_ "check_tlb 1: detected again" "$(d stale_tlb)" -gt 0
put stress 0; put flush on; put purge 1

# PageTable::new's error paths give the vmap range and the dummy page back
# once (they used to vunmap() twice, a WARN, and free the dummy page once
# per PTE): the test hook makes the next arena fail. 6 checks.
P=/sys/module/lazy_vmap/parameters/inject_arena_failure
echo 1 > $P
check "arena PTE array failure: arena_mb refused ENOMEM" refused arena_mb 32 "memory"
echo 2 > $P
check "arena PTE lookup failure: arena_mb refused EINVAL" refused arena_mb 32 "Invalid argument"
echo 0 > $P
check "the old arena still runs" run_stress 1
check "arena_mb accepted without the hook" put arena_mb 32
check "rmmod" rmmod lazy_vmap
check "insmod inject_arena_failure=2 fails cleanly" fails insmod $LAZY_VMAP_KO inject_arena_failure=2

# Thread i runs on the i-th online CPU, also with a hole in the online mask.
# 6 checks.
check "insmod" insmod $LAZY_VMAP_KO
check "cpu1 offline" sh -c "echo 0 > /sys/devices/system/cpu/cpu1/online"
online=$(cat /sys/devices/system/cpu/online)
put threads $((cpus - 1)); put duration_ms 0; put workload fix_size
check "stress with cpu1 offline" put stress 1
sleep 0.5
bound=$(for p in /proc/[0-9]*; do
	case "$(cat $p/comm 2>/dev/null)" in lazy_vmap/*) sed -n 's/^Cpus_allowed_list:\t*//p' $p/status ;; esac
done | sort -n | tr '\n' ' ')
echo "# online CPUs $online, stress threads bound to: $bound"
want=$(seq 0 $((cpus - 1)) | grep -vx 1 | tr '\n' ' ')
check "one thread on each online CPU ($want)" [ "$bound" = "$want" ]
check "stop" put stress 0
check "cpu1 back online" sh -c "echo 1 > /sys/devices/system/cpu/cpu1/online"

# CPUs going offline and back *during* a run, on the floor (whose free
# flushes only its own CPU: its thread is pinned with migrate_disable()
# from alloc to free, so an offline cannot move it in between) and on mode
# `nodes` (whose purge helpers are queued on the nodes' CPUs, chosen under
# cpus_read_lock()). The kernel moves the threads of an offline CPU for
# good; nothing may be stale, mismatched or leaked. 2 x 6 checks.
hotplug() {  # cycles: cpu1 then cpu2 offline and back, 150 ms apart
	for _c in 1 2 3; do
		for _cpu in 1 2; do
			echo 0 > /sys/devices/system/cpu/cpu$_cpu/online || return 1
			nap 0.15
			echo 1 > /sys/devices/system/cpu/cpu$_cpu/online || return 1
			nap 0.15
		done
	done
}
put threads 4; put duration_ms 0; put workload fix_size
for t in floor nodes; do
	if [ $t = floor ]; then put target floor; else put target lazy_vmap; put mode nodes; fi
	mark
	check "hotplug $t: stress starts" put stress 1
	check "hotplug $t: cpu1 and cpu2 offline and back 3 times during the run" hotplug
	check "hotplug $t: stop" put stress 0
	cmp_ "hotplug $t: ops made" "$(d ops)" -gt 0
	cmp_ "hotplug $t: no stale translation, no mismatch" "$(d stale_tlb)/$(d mismatches)" = 0/0
	check "hotplug $t: quiesced" quiesced
done
put target lazy_vmap; put mode ordered

# `flush off` with lazy areas left by frees made while it was on: their
# pages went back to the page allocator, not to the quarantine, so a purge
# without a flush would reuse their ranges while a CPU may still map the
# freed pages (the debug kernel once caught the write: SLUB "Padding
# overwritten"). The switch purges them first, with one flush. 5 checks.
# One thread for 150 ms under a threshold no run reaches, so no threshold
# purge empties the lazy list at the end (with 4 threads for 1 s, one did:
# make test, 2026-12-07, "lazy pages left (0 -gt 0 is false)").
put threads 1; put lazy_max_pages 65536
check "flush on: stress leaves lazy areas" run_ms 150
cmp_ "flush on: lazy pages left" "$(stat lazy_pages)" -gt 0
mark
check "flush off" put flush off
cmp_ "flush off: the lazy areas of flush on are purged first" "$(stat lazy_pages)" -eq 0
cmp_ "flush off: by one purge, with its flush round" "$(d purges_mode_switch)/$(d tlb_flushes)" = 1/1

# Unload with `flush off` and lazy areas left: purged, quarantine drained
# after its flush, nothing leaked or touched after free (the debug kernel's
# page poisoning would say). One thread for 150 ms frees far fewer than the
# 65536 pages of the threshold, so no purge runs: lazy areas are left for
# certain (a threshold purge set off by the threads' last frees could leave
# none). 4 checks.
put threads 1; put arena_mb 256; put lazy_max_pages 65536
check "flush off: stress leaves lazy areas" run_ms 150
cmp_ "flush off: lazy pages left for unload" "$(stat lazy_pages)" -gt 0
check "rmmod with flush off" rmmod lazy_vmap
check "reload" insmod $LAZY_VMAP_KO
rmmod lazy_vmap
finish
