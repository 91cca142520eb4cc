# Debug kernel only (DEBUG=1): page and slab allocation failing at 1% and
# 10% in the stress threads (make-it-fail), every workload on both targets;
# failures come back as -ENOMEM and are counted, nothing leaks (kmemleak,
# counters, MemFree); failures injected into module load and stress start
# fail cleanly and a retry succeeds.
F=/sys/kernel/debug
memfree() { sed -n 's/^MemFree: *\([0-9]*\).*/\1/p' /proc/meminfo; }
# inject PERCENT [TIMES]: page and slab allocations of make-it-fail tasks fail.
inject() {
	for f in fail_page_alloc failslab; do
		echo Y > $F/$f/task-filter; echo N > $F/$f/ignore-gfp-wait
		echo 0 > $F/$f/verbose; echo "$1" > $F/$f/probability; echo 1 > $F/$f/interval
		echo "${2:--1}" > $F/$f/times
	done
	echo 0 > $F/fail_page_alloc/min-order
}
# mark_threads: make every stress kthread fail.
mark_threads() {
	for p in /proc/[0-9]*; do
		case "$(cat $p/comm 2>/dev/null)" in lazy_vmap/*) echo 1 > $p/make-it-fail ;; esac
	done
}
check "kmemleak is there" [ -e $F/kmemleak ]
echo clear > $F/kmemleak
check "insmod" insmod $LAZY_VMAP_KO
put threads 4; put busy_areas 200
free0=$(memfree)
for pct in 1 10; do
	inject $pct
	for t in lazy_vmap vmalloc; do
		for w in fix_size random_size long_busy_list full_fit fix_align random_size_align align_shift; do
			put target $t; put workload $w; put duration_ms 0
			f0=$(stat alloc_failures); m0=$(stat mismatches); o0=$(stat ops)
			put stress 1; mark_threads; sleep 1; put stress 0
			echo "# $pct% $t $w: ops $(( $(stat ops) - o0 )) failures $(( $(stat alloc_failures) - f0 ))"
			cmp_ "$pct% $t $w: no data mismatch" "$(stat mismatches)" -eq "$m0"
			check "$pct% $t $w: quiesced" quiesced
		done
	done
done
inject 0
cmp_ "failures were injected and counted" "$(stat alloc_failures)" -gt 0
cmp_ "vmalloc_to_page() matched every mapped page" "$(stat map_mismatches)" -eq 0
check "rmmod" rmmod lazy_vmap

# Module load: fail the Nth allocation of insmod for N = 1..40.
clean=0; failed=0
for n in $(seq 1 40); do
	for f in fail_page_alloc failslab; do
		echo Y > $F/$f/task-filter; echo N > $F/$f/ignore-gfp-wait; echo 0 > $F/$f/verbose
		echo 100 > $F/$f/probability; echo $n > $F/$f/interval; echo 1 > $F/$f/times
	done
	if (echo 1 > /proc/self/make-it-fail; exec insmod $LAZY_VMAP_KO) 2>/dev/null; then
		rmmod lazy_vmap && clean=$((clean + 1))
	else
		[ ! -d $K ] && failed=$((failed + 1))
	fi
done
inject 0
echo "# injected load failures: $failed failed cleanly, $clean loaded"
cmp_ "some loads failed under injection" $failed -gt 0
check "load after injected failures" insmod $LAZY_VMAP_KO
# Stress start: the writer's allocations (workers) fail, then a retry works.
for f in fail_page_alloc failslab; do echo 100 > $F/$f/probability; echo 1 > $F/$f/interval; echo 1 > $F/$f/times; done
check "stress start fails under injection" fails sh -c "echo 1 > /proc/self/make-it-fail; echo 1 > $K/stress"
inject 0
check "stress stopped after the failed start" [ "$(cat $K/stress)" = 0 ]
check "stress start retry" run_stress 1
check "quiesced" quiesced
check "rmmod" rmmod lazy_vmap

# Leaks: kmemleak sees nothing of ours; free memory back.
echo scan > $F/kmemleak; sleep 1; echo scan > $F/kmemleak
leaks=$(grep -c "unreferenced object" $F/kmemleak)
[ "$leaks" -gt 0 ] && head -40 $F/kmemleak | sed 's/^/# /'
cmp_ "kmemleak: no unreferenced object" "$leaks" -eq 0
sleep 1
cmp_ "MemFree back within 4 MiB (kB lost)" $((free0 - $(memfree))) -lt 4096
finish
