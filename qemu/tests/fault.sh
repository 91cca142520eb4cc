# Debug kernel only (DEBUG=1): page and slab allocation failing at 1% and
# 10% in the stress threads (make-it-fail), every workload on both targets;
# failures come back as -ENOMEM and are counted, nothing leaks (kmemleak,
# counters, MemFree); failures injected into module load (fail-nth sweep),
# stress start and kthread creation fail cleanly and a retry succeeds.
#
# The vmalloc target gets page-allocation failures only: under failslab the
# kernel's own alloc_vmap_area() WARNs (va_clip() cannot get its preloaded
# vmap_area, mm/vmalloc.c:1804), a kernel behaviour, not ours.
F=/sys/kernel/debug
memfree() { sed -n 's/^MemFree: *\([0-9]*\).*/\1/p' /proc/meminfo; }
# inject PERCENT [WHAT]: page (and slab) allocations of make-it-fail tasks fail.
inject() {
	for f in ${2:-fail_page_alloc failslab}; do
		echo Y > $F/$f/task-filter; echo N > $F/$f/ignore-gfp-wait
		echo 0 > $F/$f/verbose; echo "$1" > $F/$f/probability; echo 1 > $F/$f/interval
		echo -1 > $F/$f/times
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
# Warm-up, then the baseline of free memory (reported, see the end).
check "insmod" insmod $LAZY_VMAP_KO
put threads 4; put busy_areas 200
for t in lazy_vmap vmalloc; do put target $t; run_stress 1; done
quiesced; rmmod lazy_vmap
sleep 1; free0=$(memfree)
check "insmod" insmod $LAZY_VMAP_KO
put threads 4; put busy_areas 200
for pct in 1 10; do
	for t in lazy_vmap vmalloc; do
		if [ $t = vmalloc ]; then inject $pct fail_page_alloc; else inject $pct; fi
		for w in fix_size random_size long_busy_list full_fit fix_align random_size_align align_shift; do
			put target $t; put workload $w; put duration_ms 0
			f0=$(stat alloc_failures); m0=$(stat mismatches); o0=$(stat ops)
			put stress 1; mark_threads; sleep 0.5; put stress 0
			echo "# $pct% $t $w: ops $(( $(stat ops) - o0 )) failures $(( $(stat alloc_failures) - f0 ))"
			cmp_ "$pct% $t $w: no data mismatch" "$(stat mismatches)" -eq "$m0"
			check "$pct% $t $w: quiesced" quiesced
		done
		inject 0
	done
done
cmp_ "failures were injected and counted" "$(stat alloc_failures)" -gt 0
cmp_ "vmalloc_to_page() matched every mapped page" "$(stat map_mismatches)" -eq 0
check "rmmod" rmmod lazy_vmap

# Module load: fail the Nth allocation of the insmod task (fail-nth), for N
# across exec, the module loader and our init; each load either works or
# fails with nothing left behind.
for f in fail_page_alloc failslab; do
	echo N > $F/$f/ignore-gfp-wait; echo 0 > $F/$f/verbose; echo 0 > $F/$f/probability
done
dmesg -c >/dev/null
clean=0; failed=0; n=1
while [ $n -lt 20000 ]; do
	if (echo $n > /proc/self/fail-nth; exec insmod $LAZY_VMAP_KO) 2>/dev/null; then
		rmmod lazy_vmap && clean=$((clean + 1))
	elif [ ! -d $K ]; then
		failed=$((failed + 1))
	fi
	n=$((n + n / 8 + 1))
done
ours=$(dmesg | grep -c "lazy_vmap: init failed")
# Where the sweep lands depends on the loader's own allocations (thousands,
# mostly tolerated); the count inside our init is reported, not asserted.
# busybox insmod retries a failed finit_module() with init_module(), so a
# load whose first init failed (fail-nth is spent by then) usually loads on
# the retry: proof that the failed init left nothing behind.
echo "# injected load failures: $failed loads failed cleanly ($ours inside our init), $clean loaded"
cmp_ "every load under injection loaded or failed cleanly" $((failed + clean)) -gt 0
check "load after injected failures" insmod $LAZY_VMAP_KO

# Stress start: fail the Nth allocation of the writer; a failed start leaves
# stress stopped, a retry works.
put duration_ms 0
enomem=0; n=1
while [ $n -lt 200 ]; do
	out=$( (echo $n > /proc/self/fail-nth; exec sh -c "echo 1 > $K/stress") 2>&1 )
	case "$out" in *"Cannot allocate memory"*)
		enomem=$((enomem + 1))
		[ "$(cat $K/stress)" = 0 ] || not_ok "stress running after a failed start (n=$n)" ;;
	esac
	put stress 0
	n=$((n + 1))
done
cmp_ "stress starts failed with ENOMEM under injection" $enomem -gt 0
# Thread creation: kthreadd's allocations fail once.
echo 1 > /proc/2/make-it-fail
echo Y > $F/failslab/task-filter; echo 100 > $F/failslab/probability
echo 1 > $F/failslab/interval; echo 1 > $F/failslab/times
check "stress start fails when kthread creation fails" fails put stress 1
echo 0 > /proc/2/make-it-fail; inject 0
check "stress stopped after the failed start" [ "$(cat $K/stress)" = 0 ]
check "stress start retry" run_stress 1
check "quiesced" quiesced
check "rmmod" rmmod lazy_vmap

# Leaks: kmemleak sees nothing of ours; free memory back.
echo scan > $F/kmemleak; sleep 1; echo scan > $F/kmemleak
leaks=$(grep -c "unreferenced object" $F/kmemleak)
[ "$leaks" -gt 0 ] && head -40 $F/kmemleak | sed 's/^/# /'
cmp_ "kmemleak: no unreferenced object" "$leaks" -eq 0
# MemFree is not a leak measure here: KASAN's quarantine keeps up to 1/32 of
# RAM of freed objects (64 MiB of 2 GiB). The workloads test checks MemFree
# on the normal kernel; here kmemleak and the counters above do.
sleep 1
echo "# MemFree vs the warm baseline: $((free0 - $(memfree))) kB lower (KASAN quarantine)"
finish
