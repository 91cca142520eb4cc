# Every workload on every target (this module, vmalloc, the floor) under 4 stress kthreads: no data mismatch,
# no failure, purges with one flush per batch, counters back to 0, and free
# memory back where it was after rmmod.
memfree() { sed -n 's/^MemFree: *\([0-9]*\).*/\1/p' /proc/meminfo; }
check "insmod" insmod $LAZY_VMAP_KO
put threads 4
put lazy_max_pages 2048
for t in lazy_vmap vmalloc floor; do
	put target $t
	for w in fix_size random_size long_busy_list full_fit fix_align random_size_align align_shift; do
		put workload $w
		ops0=$(stat ops); bad0=$(stat mismatches); fail0=$(stat alloc_failures)
		p0=$(stat purges); f0=$(stat tlb_flushes)
		check "$t $w runs 1 s" run_stress 1
		cmp_ "$t $w did work" "$(stat ops)" -gt "$ops0"
		cmp_ "$t $w: no data mismatch" "$(stat mismatches)" -eq "$bad0"
		case $t/$w in
		lazy_vmap/*align*)
			# Alignments up to 1/64 of the arena: under contention a
			# thread can find every aligned slot taken again between its
			# purge and its retry (as vmalloc can); rare, but not never.
			cmp_ "$t $w: allocation failures < 0.5% of ops" \
				$(( ($(stat alloc_failures) - fail0) * 200 )) -lt $(( $(stat ops) - ops0 )) ;;
		*)
			cmp_ "$t $w: no allocation failure" "$(stat alloc_failures)" -eq "$fail0" ;;
		esac
		if [ $t = lazy_vmap ]; then
			p=$(( $(stat purges) - p0 )); f=$(( $(stat tlb_flushes) - f0 ))
			cmp_ "$t $w: one TLB flush per purge" "$f" -eq "$p"
		fi
		check "$t $w: quiesced (lazy, mapped, live = 0)" quiesced
	done
done
cmp_ "lazy_vmap purged at all" "$(stat purges)" -gt 0
cmp_ "vmalloc_to_page() matched every mapped page" "$(stat map_mismatches)" -eq 0
check "rmmod" rmmod lazy_vmap

# Free memory: the first load-run-unload cycle above warmed the per-CPU page
# lists and the vmalloc page tables; a second identical cycle must give back
# what it took (tens of MiB go through it; a leak of 1% would show).
cycle() {
	insmod $LAZY_VMAP_KO && put threads 4 && put workload random_size &&
		put target lazy_vmap && run_stress 2 && put target vmalloc && run_stress 2 &&
		quiesced && rmmod lazy_vmap
}
check "warm-up cycle" cycle
sleep 1; free0=$(memfree)
check "measured cycle" cycle
sleep 1; free1=$(memfree)
cmp_ "MemFree back within 2 MiB after rmmod (kB lost)" "$((free0 - free1))" -lt 2048
finish
