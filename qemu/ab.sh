# make ab, guest side: module A (/lazy_vmap_a.ko, another revision) against
# module B ($LAZY_VMAP_KO, the work tree) in one boot. Each round loads A,
# runs every cell, unloads it, then the same with B (the order swaps every
# round), so both see the same guest, the same host noise, interleaved.
# Set before this by scripts/ab.sh: ROUNDS, AB_MS (one run), CELLS (list of
# workload:nr_pages:threads:target). Prints one line per run:
#   AB <module> <cell> <ns_per_op> <ops>
# and fails if a run did nothing or did not quiesce.
# shellcheck shell=sh disable=SC2086,SC2046 # busybox sh: lists split on purpose; knob names, numbers and fixed paths unquoted
errors=0
one_round() {  # module .ko
	insmod $2 || { echo "# insmod $2 failed"; errors=$((errors + 1)); return; }
	put arena_mb 512; put check_map 0; put check_tlb 0; put busy_areas 1000
	# (The no-alias oracle, in modules that have it.)
	if [ -e $K/check_alias ]; then put check_alias 0; fi
	for c in $CELLS; do
		w=${c%%:*}; rest=${c#*:}; np=${rest%%:*}; rest=${rest#*:}; t=${rest%%:*}; tg=${rest#*:}
		put workload $w; put nr_pages $np; put threads $t; put target $tg; put mode ordered
		put duration_ms $AB_MS; put stress 1
		while read -r on < $K/stress && [ "$on" = 1 ]; do sleep 0.05; done
		ops=$(stat run_ops); us=$(stat run_loop_us)
		[ "$ops" -gt 0 ] || { echo "# no ops: $1 $c"; errors=$((errors + 1)); ops=1; }
		echo "AB $1 $c $((us * 1000 / ops)) $ops"
		quiesced || { echo "# not quiesced: $1 $c"; errors=$((errors + 1)); }
	done
	rmmod lazy_vmap
}
round=0
while [ $round -lt $ROUNDS ]; do
	round=$((round + 1))
	if [ $((round % 2)) = 1 ]; then
		one_round A /lazy_vmap_a.ko; one_round B $LAZY_VMAP_KO
	else
		one_round B $LAZY_VMAP_KO; one_round A /lazy_vmap_a.ko
	fi
done
echo "AB errors=$errors"
[ $errors = 0 ]
