# Debug kernel only (DEBUG=1): page and slab allocation failing at 1% and
# 10% in the stress threads (make-it-fail), every workload on both targets;
# failures come back as -ENOMEM and are counted, nothing leaks (kmemleak,
# counters, MemFree); failures injected into module init (each of its
# allocations in turn), stress start and kthread creation fail cleanly and
# a retry succeeds.
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

# Module load: inject_init_failure=N makes the Nth allocation of our init
# fail (the module arms fail-nth for the span of its init; fail-nth over
# the whole insmod lands mostly in exec and the loader, thousands of
# allocations first), so every allocation of the arena setup (ours,
# vmap()'s, the page tables', kvmalloc()'s) and of the sysfs creation fails
# once in turn. Count them first (N too big to be reached), then fail each
# of the first 24 and a spread of the rest. A failed load leaves nothing:
# no module, no sysfs directory, no arena in /proc/vmallocinfo (the only
# area of its size), and a plain retry loads. Some failures are tolerated
# (kvmalloc() falls back to vmalloc(), vmap() to no preload): the load then
# works, and the module must run.
for f in fail_page_alloc failslab; do
	echo N > $F/$f/ignore-gfp-wait; echo 0 > $F/$f/verbose; echo 0 > $F/$f/probability
done
dmesg -c >/dev/null
echo 0 > $F/fail_page_alloc/min-order
# init_allocs: load with N out of reach; prints how many allocations init made.
init_allocs() {
	dmesg -c >/dev/null
	insmod $LAZY_VMAP_KO inject_init_failure=1000000 || return 1
	dmesg | sed -n 's/.*inject_init_failure=1000000: not reached, init made \([0-9]*\) allocations.*/\1/p'
}
check "insmod inject_init_failure=2^32-1 refused (> INT_MAX)" \
	fails insmod $LAZY_VMAP_KO inject_init_failure=4294967295
# The first load after boot also allocates the kernel page tables of the
# arena's range (kept after vunmap()), so count on a second load.
check "insmod, inject_init_failure beyond init" init_allocs
rmmod lazy_vmap
allocs=$(init_allocs)
arena_size=$(( $(cat $K/arena_mb) * 1048576 + 4096 ))
# (vunmap() frees lazily: an old arena may show as "unpurged" for a while.)
arena_areas() { grep " $arena_size " /proc/vmallocinfo | grep -vc unpurged; }
size_areas=$(arena_areas)
rmmod lazy_vmap
cmp_ "init's allocations counted" "${allocs:-0}" -gt 4
cmp_ "the arena is the only vmalloc area of its size" "$size_areas" -eq 1
init_failed=0 tolerated=0 bad_loads=0
# fail_init N: load with allocation N of init failing.
fail_init() {
	dmesg -c >/dev/null
	if insmod $LAZY_VMAP_KO inject_init_failure=$1 2>/dev/null; then
		# (The count differs by a few from load to load, with the
		# kernel's caches: N may not be reached.)
		dmesg | grep -q "inject_init_failure=$1: allocation $1 of init failed" &&
			tolerated=$((tolerated + 1))
		run_stress 1 && quiesced && rmmod lazy_vmap ||
			{ not_ok "load that tolerated allocation $1 failing runs"; bad_loads=$((bad_loads + 1)); }
		return
	fi
	init_failed=$((init_failed + 1))
	if [ -d $K ] || grep -q "^lazy_vmap " /proc/modules ||
		! dmesg | grep -q "inject_init_failure=$1: allocation $1 of init failed" ||
		! dmesg | grep -q "lazy_vmap: init failed"; then
		not_ok "init failure at allocation $1 left something behind"
		bad_loads=$((bad_loads + 1))
	fi
	insmod $LAZY_VMAP_KO && [ "$(arena_areas)" = 1 ] && rmmod lazy_vmap ||
		{ not_ok "retry after init failure at allocation $1"; bad_loads=$((bad_loads + 1)); }
}
# Each of the first 24 (the arena setup), then a spread over the rest (the
# arena's tables, then sysfs: a kernfs node and a name per file).
n=1
while [ $n -le ${allocs:-0} ]; do
	fail_init $n
	if [ $n -lt 24 ]; then n=$((n + 1)); else n=$((n + allocs / 16 + 1)); fi
done
echo "# init makes $allocs fault-injectable allocations; failing one: $init_failed loads failed cleanly, $tolerated tolerated it"
cmp_ "init failures injected and unwound" "$init_failed" -gt 0
cmp_ "every injected init failure unwound or tolerated" "$bad_loads" -eq 0
cmp_ "no arena left in vmallocinfo" "$(arena_areas)" -eq 0
check "load after injected init failures" insmod $LAZY_VMAP_KO

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
