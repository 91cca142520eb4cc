# The 2010 race under preemption: with a delay between the two steps of a
# lazy free, `buggy` detects races, `drop-bugon` detects none but its counter
# dips below zero, `purge-lock`, `ordered` and `nodes` detect none and their
# counter never goes below zero; every mode ends with the counter at 0; mode
# changes while running are refused.
# Per mode 5 checks and 1 or 2 (buggy 1); 8 around.
# shellcheck shell=sh disable=SC2086,SC2046 # busybox sh: lists split on purpose; knob names, numbers and fixed paths unquoted
plan $((5 * 5 + 1 + 4 * 2 + 8))
check "insmod" insmod $LAZY_VMAP_KO
put threads 4; put workload fix_size; put nr_pages 1
# Frequent purges: each one is a chance to meet a freer inside its window.
put lazy_max_pages 64
put race_delay_us 50
for mode in buggy drop-bugon purge-lock ordered nodes; do
	check "mode $mode" put mode $mode
	r0=$(stat race_detected); p0=$(stat purges_$mode); s0=$(stat stale_tlb)
	check "$mode: stress 3 s with the delay" run_stress 3
	r=$(( $(stat race_detected) - r0 ))
	echo "# $mode: race_detected=$r lazy_pages_min=$(stat lazy_pages_min) purges=$(( $(stat purges_$mode) - p0 )) ops/s=$(stat run_ops_per_sec)"
	cmp_ "$mode: purged" "$(stat purges_$mode)" -gt "$p0"
	case $mode in
	buggy)
		cmp_ "buggy: races detected" $r -gt 0 ;;
	drop-bugon)
		cmp_ "drop-bugon: no race detected (check removed)" $r -eq 0
		cmp_ "drop-bugon: counter dipped below zero" "$(stat lazy_pages_min)" -lt 0 ;;
	*)
		cmp_ "$mode: no race detected" $r -eq 0
		cmp_ "$mode: counter never below zero" "$(stat lazy_pages_min)" -ge 0 ;;
	esac
	cmp_ "$mode: no stale translation" "$(stat stale_tlb)" -eq "$s0"
	check "$mode: counter 0 after stop + purge" quiesced
done
put duration_ms 0
check "stress for the EBUSY checks" put stress 1
for m in buggy drop-bugon purge-lock; do
	check "mode $m refused while running" refused mode $m busy
done
check "on_race may change while running" put on_race count
check "stop" put stress 0
check "rmmod" rmmod lazy_vmap
finish
