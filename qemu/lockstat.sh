# make bench LOCKSTAT=1, guest side (the lockstat kernel: CONFIG_LOCK_STAT).
# Set before this by scripts/bench.sh: BENCH_MS, REPEATS, WORKLOADS
# (workload:pages list), IMPLS. Threads = the guest's CPUs. REPEATS rounds,
# each running every workload and impl once, interleaved (so a ratio can be
# taken per round). Per run: the lock statistics cleared, the stress, then
# /proc/lock_stat read. For every lock class of the vmap layers (this
# module's: lazy_vmap_*, lv_purge_mutex; the kernel's 6.12 vmalloc:
# free_vmap_area_lock, vmap_purge_lock, &vn->busy.lock, &vn->lazy.lock,
# &vn->pool_lock, &vb->lock, &vbq->lock) with any acquisition, one line:
#   LOCK <cpus> <workload> <impl> <round> <ops> <class> <contentions> <waittime_total_us> <acquisitions>
# and per run of this module's allocator its exact counts over the run:
#   LOPS <cpus> <workload> <impl> <round> <ops> <pool_hits> <tree_locks> <purges> <ipis> <flush_rounds> <freed_pages>
# ("-" where the kernel's vmalloc has no such counter; ipis: CAL + TLB of
# /proc/interrupts, every CPU).
# then "LOCKSTAT errors=N".
# shellcheck shell=sh disable=SC2086,SC2046,SC2154 # S_*: set by snap; busybox sh: lists split on purpose; knob names, numbers and fixed paths unquoted
ipis() { awk '/^ *(CAL|TLB):/ { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i } END { print s + 0 }' /proc/interrupts; }
errors=0
cpus=$(grep -c ^processor /proc/cpuinfo)
[ -e /proc/lock_stat ] || { echo "# no /proc/lock_stat: not the lockstat kernel"; echo "LOCKSTAT errors=1"; exit 1; }
echo 1 > /proc/sys/kernel/lock_stat
insmod $LAZY_VMAP_KO || exit 1
put arena_mb 512; put check_map 0; put check_tlb 0; put check_alias 0
put threads $cpus
rep=0
while [ $rep -lt $REPEATS ]; do
rep=$((rep + 1))
echo "# lock_stat round $rep of $REPEATS, $cpus vCPUs"
for wl in $WORKLOADS; do
	w=${wl%:*}; np=${wl#*:}
	for impl in $IMPLS; do
		t=${impl%%:*}; m=ordered; [ $t = $impl ] || m=${impl#*:}
		# nodes/quarter: mode nodes with pool_decay quarter.
		d=wraps; case $m in */*) d=${m#*/} m=${m%/*} ;; esac
		put workload $w; put nr_pages $np; put target $t; put mode $m; put pool_decay $d
		put duration_ms $BENCH_MS
		snap; ph0=$S_pool_hits tl0=$S_tree_locks pu0=$S_purges fl0=$S_tlb_flushes fp0=$S_freed_pages i0=$(ipis)
		echo 0 > /proc/lock_stat
		put stress 1
		while knob stress; [ "$V" = 1 ]; do nap 0.05; done
		i1=$(ipis); snap; ops=$S_run_ops
		tail="$((i1 - i0)) $((S_tlb_flushes - fl0)) $((S_freed_pages - fp0))"
		if [ $t = vmalloc ]; then
			echo "LOPS $cpus $w:$np $impl $rep $ops - - - $((i1 - i0)) - $((S_freed_pages - fp0))"
		else
			echo "LOPS $cpus $w:$np $impl $rep $ops $((S_pool_hits - ph0)) $((S_tree_locks - tl0)) $((S_purges - pu0)) $tail"
		fi
		# Class lines: "<name>: <12 numbers>"; the name may hold spaces.
		awk -v pre="LOCK $cpus $w:$np $impl $rep $ops" '
			NF >= 13 && $(NF - 12) ~ /:$/ {
				name = $1; for (i = 2; i <= NF - 12; i++) name = name " " $i; sub(/:$/, "", name)
				if (name !~ /(vmap|vn->|vb->|vbq->|lv_purge|lazy_vmap)/) next
				if ($(NF - 4) + 0 == 0) next
				gsub(/ /, "_", name)
				printf "%s %s %s %s %s\n", pre, name, $(NF - 10), $(NF - 7), $(NF - 4)
			}' /proc/lock_stat
		[ "$ops" -gt 0 ] || { echo "# no ops: $w $impl"; errors=$((errors + 1)); }
		quiesced || { echo "# not quiesced: $w $impl"; errors=$((errors + 1)); }
	done
done
done
rmmod lazy_vmap || errors=$((errors + 1))
echo "LOCKSTAT errors=$errors"
[ $errors = 0 ]
