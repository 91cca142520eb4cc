# make soak, guest side (debug kernel). Set before this by scripts/soak.sh:
# SOAK_OPS (alloc/free pairs per fixed mode), SOAK_MIN (minutes each fixed
# mode runs at least), DELAY_OPS (pairs per mode with
# the race delay on), CYCLE_S (seconds between rmmod/insmod during stress).
# Each fixed mode runs under 4 kthreads on 4 vCPUs with purges on demand
# every few seconds and rmmod/insmod cycles during stress; then the delay
# phase. Prints progress, and the totals for scripts/soak.sh.
F=/sys/kernel/debug
memfree() { sed -n 's/^MemFree: *\([0-9]*\).*/\1/p' /proc/meminfo; }
echo clear > $F/kmemleak 2>/dev/null
free0=$(memfree)
total=0 reloads=0 bad=0

# load MODE DELAY: (re)load the module and set it up.
load() {
	insmod $LAZY_VMAP_KO && put threads 4 && put mode $1 && put race_delay_us $2 && put duration_ms 0
}
# soak MODE DELAY OPS [SECONDS]: run until OPS pairs were done in MODE, and
# for at least SECONDS.
soak() {
	# t: seconds slept, paces the reloads; t0: the start, for SECONDS.
	mode=$1 delay=$2 want=$3 min_s=${4:-0} done_=0 t=0 t0=$(date +%s)
	load $mode $delay || { bad=$((bad + 1)); return; }
	# Small-area workloads: the count is of alloc/free pairs, and 10^7 of
	# them must fit in an hour of TCG under KASAN.
	workloads="fix_size full_fit fix_align align_shift"
	put stress 1
	while :; do
		sleep 2; t=$((t + 2))
		put purge 1 || bad=$((bad + 1))
		now=$(stat ops)
		echo "soak: $mode delay=$delay ops $((done_ + now))/$want lazy=$(stat lazy_pages) mapped=$(stat mapped_pages) races=$(stat race_detected)" >&2
		if [ $((done_ + now)) -ge $want ] && [ $(($(date +%s) - t0)) -ge $min_s ]; then
			done_=$((done_ + now)); break
		fi
		if [ $((t % CYCLE_S)) = 0 ]; then
			# rmmod during stress, then carry on with the next workload.
			done_=$((done_ + $(stat ops)))
			rmmod lazy_vmap || bad=$((bad + 1))
			reloads=$((reloads + 1))
			load $mode $delay || { bad=$((bad + 1)); return; }
			set -- $workloads; shift $((reloads % $#)); put workload $1
			put stress 1
		fi
	done
	put stress 0
	[ "$(stat race_detected)" = 0 ] || echo "soak: $mode delay=$delay races $(stat race_detected)" >&2
	[ "$(stat mismatches)" = 0 ] && [ "$(stat map_mismatches)" = 0 ] || bad=$((bad + 1))
	if quiesced; then :; else bad=$((bad + 1)); fi
	echo "SOAKED $mode $delay $done_ lazy=$(stat lazy_pages) mapped=$(stat mapped_pages) live=$(stat live_areas)"
	total=$((total + done_))
	rmmod lazy_vmap || bad=$((bad + 1))
}
for m in drop-bugon purge-lock ordered; do soak $m 0 $SOAK_OPS $((SOAK_MIN * 60)); done
for m in drop-bugon purge-lock ordered; do soak $m 20 $DELAY_OPS; done
echo scan > $F/kmemleak 2>/dev/null; sleep 1; echo scan > $F/kmemleak 2>/dev/null
leaks=$(grep -c "unreferenced object" $F/kmemleak 2>/dev/null)
[ "${leaks:-0}" -gt 0 ] && head -40 $F/kmemleak
sleep 1
# MemFree is reported, not judged: KASAN's quarantine keeps up to 1/32 of
# RAM of freed objects. Leaks are judged by kmemleak and the counters.
echo "SOAK total_ops=$total reloads=$reloads errors=$bad kmemleak=${leaks:-n/a} memfree_lower_kb=$((free0 - $(memfree)))"
[ $bad = 0 ] && [ "${leaks:-0}" = 0 ]
