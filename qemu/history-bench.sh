# The costs of the two performance exhibits at this guest's vCPU count
# (scripts/bench-history.sh boots it at 1, 2, 4 and 8): per-area-sub and
# system-wq beside bug none, mode nodes, fix_size, one thread per vCPU,
# ROUNDS alternating runs of 1 s each. Prints one row per (bug, round):
#   HIST vcpus bug round purges areas counter_subs purge_p99_ns drains drains_bound drain_mean_us over_10ms
# shellcheck shell=sh disable=SC2086,SC2046 # busybox sh: lists split on purpose; knob names, numbers and fixed paths unquoted
cpus=$(grep -c ^processor /proc/cpuinfo)
insmod $LAZY_VMAP_KO || exit 1
put mode nodes; put target lazy_vmap; put workload fix_size; put nr_pages 1
put threads $cpus; put check_alias 0
r=1
while [ $r -le ${ROUNDS:-3} ]; do
	for b in none per-area-sub system-wq; do
		put bug $b
		mark; run_ms 1000 || exit 1
		n=$(d drains_run)
		echo "HIST $cpus $b $r $(d purges) $(d purged_areas) $(d purge_counter_subs) $(lat purge p99)" \
			"$n $(d drains_bound) $(( $(d drain_ns_total) / (n + (n == 0)) / 1000 )) $(d drains_over_10ms)"
		quiesced || { echo "NOT QUIESCED"; exit 1; }
	done
	r=$((r + 1))
done
rmmod lazy_vmap
