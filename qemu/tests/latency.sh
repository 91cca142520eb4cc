# Latency histograms and the bounded give-back.
#
# /sys/kernel/lazy_vmap/latency holds one histogram per event (alloc, free,
# purge, purge_flush, purge_hold, alloc_wait), reset when stress starts.
# Checked here: each histogram counts exactly the events the stats count
# over the same run (so also that it was reset at the start: every cell
# after the first would count the earlier runs too), percentiles ordered;
# no purge gives more than purge_hold_areas (64) areas back per tree-lock
# hold under any workload, and with the bound off (0) a hold does take
# more, so the bound is what holds it.
# shellcheck shell=sh disable=SC2086,SC2046 # busybox sh: lists split on purpose; knob names, numbers and fixed paths unquoted
WORKLOADS="fix_size random_size long_busy_list full_fit fix_align random_size_align align_shift handoff"
CELLS="ordered:lazy_vmap purge-lock:lazy_vmap drop-bugon:lazy_vmap ordered:vmalloc"
# insmod + 4 cells x 9 + 8 workloads x 3 + 6 (the bound) + 1 (rmmod)
plan $((1 + 4 * 9 + 8 * 3 + 6 + 1))
check "insmod" insmod $LAZY_VMAP_KO

# ordered_percentiles: every event with a count has p50 <= p90 <= p99 <=
# p999 <= max, and max > 0.
ordered_percentiles() {
	awk 'NR == 1 { next } $2 > 0 && !($3 <= $4 && $4 <= $5 && $5 <= $6 && $6 <= $7 && $7 > 0) { bad = 1; print "# out of order: " $0 }
		END { exit bad }' $K/latency
}

for c in $CELLS; do
	mode=${c%:*} target=${c#*:}
	put mode $mode; put target $target; put workload fix_size; put nr_pages 1
	mark
	check "$c: 1 s of fix_size" run_stress 1
	cmp_ "$c: alloc count is this run's allocations" "$(lat alloc count)" -eq "$(d allocs)"
	cmp_ "$c: free count is this run's frees" "$(lat free count)" -eq "$(d frees)"
	check "$c: percentiles ordered" ordered_percentiles
	if [ $target = lazy_vmap ]; then
		cmp_ "$c: purges happened" "$(d purges)" -gt 0
	else
		cmp_ "$c: none of ours purged" "$(d purges)" -eq 0
	fi
	cmp_ "$c: purge count is the purges" "$(lat purge count)" -eq "$(d purges)"
	cmp_ "$c: purge_flush count is the flush rounds" "$(lat purge_flush count)" -eq "$(d tlb_flushes)"
	cmp_ "$c: purge_hold count is the holds" "$(lat purge_hold count)" -eq "$(d purge_holds)"
	check "$c: quiesced" quiesced
done

put mode ordered; put target lazy_vmap
for w in $WORKLOADS; do
	put workload $w
	mark
	check "$w: 1 s" run_stress 1
	cmp_ "$w: purges happened" "$(d purges)" -gt 0
	cmp_ "$w: at most 64 areas per hold" "$(stat purge_hold_max_areas)" -le 64
done

# The bound off: the purges of fix_size (thousands of areas each at the
# default threshold) give them back in one hold.
put workload fix_size
check "purge_hold_areas 0 (no bound)" put purge_hold_areas 0
run_stress 1
cmp_ "no bound: a hold gave more than 64 areas back" "$(stat purge_hold_max_areas)" -gt 64
check "purge_hold_areas 1" put purge_hold_areas 1
run_stress 1
cmp_ "bound 1: one area per hold" "$(stat purge_hold_max_areas)" -eq 1
check "purge_hold_areas -1 refused" refused purge_hold_areas -1
cmp_ "purge_hold_areas unchanged" "$(cat $K/purge_hold_areas)" -eq 1
put purge_hold_areas 64
check "rmmod" rmmod lazy_vmap
finish
