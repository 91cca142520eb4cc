# make soak, guest side (debug kernel). Set before this by scripts/soak.sh:
# SOAK_OPS (alloc/free pairs per fixed mode), SOAK_MIN (minutes each fixed
# mode runs at least), DELAY_OPS (pairs per mode with
# the race delay on), CYCLE_S (seconds between rmmod/insmod during stress).
# Each fixed mode runs under 4 kthreads on 4 vCPUs with purges on demand
# every few seconds and rmmod/insmod cycles during stress; then the delay
# phase. Prints progress, and the totals for scripts/soak.sh.
#
# Loads alternate the target between this module's areas and its
# vm_map_ram() (the vmap blocks, with an unmap_aliases every 10 ms).
# Every module load is judged before it goes (its counters die with it): no
# race detected (the fixed modes never fire the armed check, and drop-bugon
# has none), no data or map mismatch, no stale translation, no stale alias
# after a purge or an unmap_aliases; every start of stress and every purge
# must be accepted, and stress must keep running until stopped. Each failure
# is an error, said on a "soak: ERROR ..." line (stderr); the last line,
# "SOAK ... errors=N ... kmemleak=N ...", sums them up, and the script fails
# unless errors=0 and kmemleak=0 (a kmemleak that cannot be scanned or read
# is "kmemleak=unreadable", a failure).
# shellcheck shell=sh disable=SC2086,SC2046,SC2154 # S_*: set by snap; busybox sh: lists split on purpose; knob names, numbers and fixed paths unquoted
F=/sys/kernel/debug
memfree() { sed -n 's/^MemFree: *\([0-9]*\).*/\1/p' /proc/meminfo; }
echo clear 2>/dev/null > $F/kmemleak
free0=$(memfree)
total=0 reloads=0 loads=0 bad=0 races=0 mism=0

# error WHAT: one more error, said on stderr.
error() { echo "soak: ERROR $mode delay=$delay: $*" >&2; bad=$((bad + 1)); }
# load MODE DELAY: (re)load the module and set it up.
load() {
	tg=lazy_vmap; [ $((loads % 2)) = 0 ] || tg=ram
	insmod $LAZY_VMAP_KO && put threads 4 && put mode $1 && put race_delay_us $2 && put duration_ms 0 &&
		put unmap_aliases_ms 10 && put target $tg
}
# judge_load WHEN: the counters of the loaded module, before it goes: no
# race, no mismatch, nothing stale (an unreadable counter is an error too).
judge_load() {
	snap; r=$S_race_detected m=$S_mismatches mm=$S_map_mismatches
	stale="${S_stale_tlb:-?}/${S_stale_alias:-?}/${S_aliases_stale:-?}"
	# The history's general detectors (docs/history.md) count as stale.
	stale="$stale/${S_live_ptes:-?}/${S_drain_stuck:-?}/${S_lock_violations:-?}/${S_uninit_blocks:-?}"
	loads=$((loads + 1))
	races=$((races + ${r:-0})) mism=$((mism + ${m:-0} + ${mm:-0}))
	# shellcheck disable=SC2015 # the error when any of them is not 0
	[ "$r" = 0 ] && [ "$m" = 0 ] && [ "$mm" = 0 ] && [ "$stale" = 0/0/0/0/0/0/0 ] ||
		error "$1: races=${r:-unreadable} mismatches=${m:-unreadable} map_mismatches=${mm:-unreadable} stale_tlb/stale_alias/aliases_stale/live_ptes/drain_stuck/lock_violations/uninit_blocks=$stale"
}
# soak MODE DELAY OPS [SECONDS]: run until OPS pairs were done in MODE, and
# for at least SECONDS.
soak() {
	# t: seconds slept, paces the reloads; t0: the start, for SECONDS.
	mode=$1 delay=$2 want=$3 min_s=${4:-0} done_=0 t=0 t0=$(date +%s)
	load $mode $delay || { error "load"; return; }
	# Small-area workloads: the count is of alloc/free pairs, and 10^7 of
	# them must fit in an hour of TCG under KASAN.
	workloads="fix_size full_fit fix_align align_shift"
	put stress 1 || { error "stress start"; rmmod lazy_vmap; return; }
	while :; do
		# (builtins only while stress runs: snap, knob and nap do not fork)
		nap 2; t=$((t + 2))
		put purge 1 || error "purge"
		snap; now=$S_ops
		echo "soak: $mode delay=$delay target=$tg ops $((done_ + now))/$want lazy=$S_lazy_pages mapped=$S_mapped_pages races=$S_race_detected" >&2
		# duration_ms 0: stress runs until stopped; if it stopped by itself
		# the ops would never come.
		knob stress; [ "$V" = 1 ] || { error "stress stopped by itself at $((done_ + now)) ops"; break; }
		if [ $((done_ + now)) -ge $want ] && { [ $min_s = 0 ] || [ $(($(date +%s) - t0)) -ge $min_s ]; }; then
			break
		fi
		if [ $((t % CYCLE_S)) = 0 ]; then
			# rmmod during stress, then carry on with the next workload.
			snap; done_=$((done_ + S_ops))
			judge_load "reload $((reloads + 1))"
			rmmod lazy_vmap || error "rmmod during stress"
			reloads=$((reloads + 1))
			load $mode $delay || { error "reload $reloads"; return; }
			set -- $workloads; shift $((reloads % $#))
			put workload $1 || error "workload $1"
			put stress 1 || { error "stress start after reload $reloads"; rmmod lazy_vmap; return; }
		fi
	done
	put stress 0 || error "stress stop"
	done_=$((done_ + $(stat ops)))
	judge_load "end"
	quiesced || error "not quiesced: lazy=$(stat lazy_pages) mapped=$(stat mapped_pages) live=$(stat live_areas)"
	echo "SOAKED $mode $delay $done_ lazy=$(stat lazy_pages) mapped=$(stat mapped_pages) live=$(stat live_areas)"
	total=$((total + done_))
	rmmod lazy_vmap || error "rmmod"
}
for m in drop-bugon purge-lock ordered nodes; do soak $m 0 $SOAK_OPS $((SOAK_MIN * 60)); done
for m in drop-bugon purge-lock ordered nodes; do soak $m 20 $DELAY_OPS; done
# kmemleak: two scans (an object must be seen unreferenced twice), then the
# count; a scan or read that fails is "unreadable", not 0.
if echo scan > $F/kmemleak && sleep 1 && echo scan > $F/kmemleak &&
	leaks=$(grep -c "unreferenced object" $F/kmemleak; [ $? -le 1 ]) && [ -n "$leaks" ]; then
	[ "$leaks" -gt 0 ] && head -40 $F/kmemleak
else
	leaks=unreadable
fi
sleep 1
# MemFree is reported, not judged: KASAN's quarantine keeps up to 1/32 of
# RAM of freed objects. Leaks are judged by kmemleak and the counters.
echo "SOAK total_ops=$total reloads=$reloads loads=$loads errors=$bad races=$races mismatches=$mism kmemleak=$leaks memfree_lower_kb=$((free0 - $(memfree)))"
[ $bad = 0 ] && [ "$leaks" = 0 ]
