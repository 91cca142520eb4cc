# make bench, guest side. Set by scripts/bench.sh before this: BENCH_MS
# (duration of one run), REPEATS, THREADS and BLOCK_THREADS (lists),
# BUSY_SCALING (0/1), and
# optionally WORKLOADS and IMPLS (the scaling view's subset).
# Prints one line per run:
#   RUN <workload> <threads> <impl> <ns_per_op> <ipis_per_mpage> <ops> <purges> <span_pages>
#       <alloc_p99_ns> <free_p99_ns> <free_p999_ns> <purge_hold_max_ns>
#       <flush_rounds> <ipis> <pool_hits> <tree_locks> <counter_subs>
# (the last five: counts over the run, "-" where the module does not count
# them; the host divides them by ops)
# ns_per_op: time per op per thread (the threads' steady-loop time, busy-set
# setup excluded, over the ops), like test_vmalloc's per-thread average
# (which includes its setup); ipis_per_mpage: CAL + TLB interrupts of
# /proc/interrupts (all CPUs) per 10^6 freed pages; purges, span_pages:
# purges that gave back areas and the pages their flushes spanned, from the
# module's stats for lazy_vmap, from the kernel's vmalloc:purge_vmap_area_lazy
# events (only that event enabled, in a trace instance of its own) for
# vmalloc and test_vmalloc, "-" for the floor.
# A run of the module that did nothing (ops 0) or did not quiesce (counters
# not back to 0 after stop + purge: a measurement of a broken allocator) is
# an error: said on a "# ..." line, counted in the last line,
#   BENCH errors=N
# and the script (so the boot, so scripts/bench.sh) fails unless N is 0.
# shellcheck shell=sh disable=SC2086,SC2046,SC2154 # S_*: set by snap; busybox sh: lists split on purpose; knob names, numbers and fixed paths unquoted
ipis() { awk '/^ *(CAL|TLB):/ { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i } END { print s + 0 }' /proc/interrupts; }
label() { if [ $2 = 1 ]; then echo $1; else echo $1_$2; fi; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f", a / b; else print 0 }'; }
errors=0 wide_said=
insmod $LAZY_VMAP_KO || exit 1
# 512 MiB: lazy_max_pages defaults to the kernel's value for 4 CPUs (96 MiB).
put arena_mb 512
# The per-page vmalloc_to_page() check, the stale-TLB detector (a second
# read of every page through the direct map) and the no-alias oracle (a
# probe round after every purge) are tests, not part of the allocator: all
# off here, on in every test.
put check_map 0
put check_tlb 0
put check_alias 0
[ "$BUSY_AREAS" != 0 ] && put busy_areas $BUSY_AREAS
echo "# lazy_max_pages $(cat $K/lazy_max_pages)"
WORKLOADS=${WORKLOADS:-"fix_size:1 fix_size:16 random_size:1 long_busy_list:1 full_fit:1 handoff:1"}
IMPLS=${IMPLS:-"lazy_vmap lazy_vmap:nodes lazy_vmap:nodes/quarter lazy_vmap:buggy lazy_vmap:drop-bugon lazy_vmap:purge-lock vmalloc floor test_vmalloc"}

# One run of the module's stress: workload nr_pages threads target mode label
stress_run() {
	# A mode may name a pool decay: nodes/quarter (the pool_decay knob).
	put workload $1; put nr_pages $2; put threads $3; put target $4; put mode ${5%/*}
	case $5 in */*) put pool_decay ${5#*/} ;; *) put pool_decay wraps ;; esac
	case $4 in vmalloc | kram) kpurge_begin ;; esac
	i0=$(ipis); snap; p0=$S_freed_pages n0=$S_purges s0=$S_flushed_span_pages
	fl0=$S_tlb_flushes ph0=$S_pool_hits tl0=$S_tree_locks cs0=$S_purge_counter_subs
	ms=$(printf %03d $((BENCH_MS % 1000)))
	put duration_ms $BENCH_MS; put stress 1
	# No fork while it runs (nap, knob): process exits cost TLB IPIs of their own.
	nap $((BENCH_MS / 1000)).$ms
	while knob stress; [ "$V" = 1 ]; do nap 0.05; done
	i1=$(ipis); snap; p1=$S_freed_pages
	ops=$S_run_ops us=$S_run_loop_us
	case $4 in
	lazy_vmap | ram) purges="$((S_purges - n0)) $((S_flushed_span_pages - s0))"
		counts="$((S_tlb_flushes - fl0)) $((i1 - i0)) $((S_pool_hits - ph0))"
		counts="$counts $((S_tree_locks - tl0)) $((S_purge_counter_subs - cs0))" ;;
	vmalloc | kram) purges=$(kpurge_end) ;;
	*) purges="- -" ;;
	esac
	case $4 in lazy_vmap | ram) ;; *) counts="- $((i1 - i0)) - - -" ;; esac
	# The tail: alloc p99, free p99 and p999 of the stress threads, and the
	# longest tree-lock hold of a purge of this module's arena.
	tail="$(lat alloc p99) $(lat free p99) $(lat free p999) $(case $4 in lazy_vmap | ram) lat purge_hold max ;; *) echo - ;; esac) $counts"
	echo "RUN $(label $1 $2) $3 $6 $(div $((us * 1000)) $ops) $(div $(((i1 - i0) * 1000000)) $((p1 - p0))) $ops $purges $tail"
	[ "$ops" -gt 0 ] || { echo "# no ops: $*"; errors=$((errors + 1)); }
	quiesced || { echo "# not quiesced after $*"; errors=$((errors + 1)); }
}

# test_vmalloc with the same workload and threads: workload nr_pages threads
tv_run() {
	# Loops sized for about BENCH_MS of work at TCG speed.
	case $1 in
	fix_size) mask=1 loops=$((BENCH_MS * 20 / $2)) pages=$2 areas=1 ;;
	full_fit) mask=2 loops=$((BENCH_MS * 20)) pages=1 areas=1 ;;
	long_busy_list) mask=4 loops=$((BENCH_MS)) pages=101 areas=2 ;;
	random_size) mask=8 loops=$((BENCH_MS)) pages=50 areas=1 ;;
	esac
	dmesg -c >/dev/null
	kpurge_begin
	i0=$(ipis)
	insmod /test_vmalloc.ko nr_threads=$3 test_loop_count=$loops run_test_mask=$mask nr_pages=$2 2>/dev/null
	i1=$(ipis)
	purges=$(kpurge_end)
	wide=$(cat /tmp/kpurge_wide 2>/dev/null || echo 0)
	# Said once: every run has them (8 per insmod here).
	[ "$wide" = 0 ] || [ -n "$wide_said" ] || { wide_said=1
		echo "# test_vmalloc $1/$2/$3: $wide purges flushed past the vmalloc space" \
			"(vm_reset_perms() of its module's memory, to the direct map): counted, not spanned;" \
			"said for this run only" >&2; }
	# Median over the threads of the per-loop time, per area.
	ns=$(dmesg | sed -n 's/.*Summary: .* loops: \([0-9]*\) avg: \([0-9]*\) usec.*/\1 \2/p' |
		awk -v a=$areas '{ print $2 * 1000 / $1 / a }' | sort -n |
		awk '{ v[NR] = $1 } END { if (NR) printf "%.0f", v[int((NR + 1) / 2)]; else print 0 }')
	freed=$(($3 * loops * pages))
	echo "RUN $(label $1 $2) $3 test_vmalloc $ns $(div $(((i1 - i0) * 1000000)) $freed) $(($3 * loops * areas)) $purges - - - - - $((i1 - i0)) - - -"
}

rep=0
while [ $rep -lt $REPEATS ]; do
	rep=$((rep + 1))
	for wl in $WORKLOADS; do
		w=${wl%:*}; np=${wl#*:}
		for t in $THREADS; do
			echo "# repeat $rep: $w nr_pages=$np threads=$t" >&2
			for impl in $IMPLS; do
				case $impl in
				# test_vmalloc has no cross-CPU free case.
				test_vmalloc) [ $w = handoff ] || tv_run $w $np $t ;;
				lazy_vmap:*) stress_run $w $np $t lazy_vmap ${impl#*:} $impl ;;
				lazy_vmap) stress_run $w $np $t lazy_vmap ordered $impl ;;
				*) stress_run $w $np $t $impl ordered $impl ;;
				esac
			done
		done
	done
done

# The vmap blocks: this module's vm_map_ram() (ram) against the kernel's
# (kram), fix_size 1 and 16 pages, BLOCK_THREADS threads, without and with
# a vm_unmap_aliases() caller every 10 ms (impl suffix _ua10), interleaved.
rep=0
while [ $rep -lt $REPEATS ]; do
	rep=$((rep + 1))
	for np in 1 16; do
		for t in $BLOCK_THREADS; do
			echo "# repeat $rep: vmap blocks nr_pages=$np threads=$t" >&2
			for ua in 0 10; do
				put unmap_aliases_ms $ua
				for impl in ram kram; do
					stress_run fix_size $np $t $impl ordered "$impl$([ $ua = 0 ] || echo _ua$ua)"
				done
			done
		done
	done
done
put unmap_aliases_ms 0

# Scaling with the number of busy areas (long_busy_list, 1 thread).
if [ "$BUSY_SCALING" = 1 ]; then
	for n in 1000 15000 50000; do
		put busy_areas $n
		for impl in lazy_vmap vmalloc; do
			echo "# busy_areas $n $impl" >&2
			stress_run long_busy_list 1 1 $impl ordered "$impl:busy$n"
		done
	done
	put busy_areas 0
fi
rmmod lazy_vmap || { echo "# rmmod failed"; errors=$((errors + 1)); }
echo "BENCH errors=$errors"
[ $errors = 0 ]
