# Debug kernel only (DEBUG=1): page and slab allocation failing at 1% and
# 10% in the stress threads (make-it-fail), every workload on every target
# but the floor (this module's areas and vm_map_ram(), the kernel's vmalloc
# and vm_map_ram());
# failures come back as -ENOMEM and are counted, nothing leaks (kmemleak,
# counters, MemFree); failures injected into module init (each of its
# allocations in turn), stress start and kthread creation fail cleanly and
# a retry succeeds.
#
# The kernel's targets (vmalloc, kram) get page-allocation failures only: under failslab the
# kernel's own alloc_vmap_area() WARNs (va_clip() cannot get its preloaded
# vmap_area, mm/vmalloc.c:1804), a kernel behaviour, not ours.
# shellcheck shell=sh disable=SC2086,SC2046,SC2154 # S_*: set by snap; busybox sh: lists split on purpose; knob names, numbers and fixed paths unquoted
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
# newest: the last PID handed out (the fifth field of /proc/loadavg) into
# $NEWEST. mark_threads FROM: make every stress kthread of a PID after FROM
# fail: the ones `stress 1` just created, without a walk over all of /proc
# (which took over a second per run while stress runs, under KASAN). A
# thread missed would show as a run with no failure injected.
newest() { read -r _ _ _ _ NEWEST < /proc/loadavg; }
mark_threads() {
	newest; p=$(($1 + 1))
	while [ $p -le $NEWEST ]; do
		read -r c 2>/dev/null < /proc/$p/comm &&
			case "$c" in lazy_vmap/*) echo 1 > /proc/$p/make-it-fail ;; esac
		p=$((p + 1))
	done
}
t0=$(date +%s)
# elapsed: seconds since the start, for the phase times in the output.
elapsed() { echo $(($(date +%s) - t0)); }

# The plan, counted up front (KTAP: the plan comes first). Each section's
# count is given next to it.
PCTS="1 10" TARGETS="lazy_vmap ram vmalloc kram"
WORKLOADS="fix_size random_size long_busy_list full_fit fix_align random_size_align align_shift handoff"
count() { echo $#; }
NP=$(count $PCTS) NT=$(count $TARGETS) NW=$(count $WORKLOADS)
# warm-up 5 + NT, injection runs 5 per run + 3, init 4 + 5, stress start 3,
# kthread creation 5, kmemleak 1.
plan $((5 + NT + NP * NT * NW * 5 + 3 + 4 + 5 + 3 + 5 + 1))

check "kmemleak is there" [ -e $F/kmemleak ]
echo clear > $F/kmemleak
# Warm-up, then the baseline of free memory (reported, see the end).
check "insmod" insmod $LAZY_VMAP_KO
put threads 4; put busy_areas 200
for t in $TARGETS; do put target $t; check "warm-up: $t stress runs" run_stress 1; done
check "warm-up: quiesced" quiesced
check "rmmod" rmmod lazy_vmap
sleep 1; free0=$(memfree)
check "insmod" insmod $LAZY_VMAP_KO
put threads 4; put busy_areas 200

# Every run (5 checks): stress starts, makes progress (ops > 0), failures
# are injected and counted (> 0), no data mismatch, quiesced. A run lasts
# until both counters moved (they are published every 64 loops), at least
# 1 s, at most 60 s: a short run at 1% could otherwise see no failure, and
# pass with nothing tested. (While stress runs, every fork of the shell
# takes a good part of a second under KASAN: the loops here use builtins.)
for pct in $PCTS; do
	for t in $TARGETS; do
		case $t in vmalloc | kram) inject $pct fail_page_alloc ;; *) inject $pct ;; esac
		for w in $WORKLOADS; do
			put target $t; put workload $w; put duration_ms 0
			snap; f0=$S_alloc_failures m0=$S_mismatches o0=$S_ops
			newest; from=$NEWEST
			check "$pct% $t $w: stress started" put stress 1
			mark_threads $from; nap 1; i=2   # i: half-seconds waited
			snap
			while { [ "$S_ops" = "$o0" ] || [ "$S_alloc_failures" = "$f0" ]; } && [ $i -lt 120 ]; do
				nap 0.5; i=$((i + 1)); snap
			done
			put stress 0
			snap; ops=$(( S_ops - o0 )) fails=$(( S_alloc_failures - f0 ))
			echo "# $pct% $t $w: ops $ops failures $fails (stopped after $((i / 2)).$((i % 2 * 5)) s)"
			cmp_ "$pct% $t $w: progress" "$ops" -gt 0
			cmp_ "$pct% $t $w: failures injected and counted" "$fails" -gt 0
			cmp_ "$pct% $t $w: no data mismatch" "$S_mismatches" -eq "$m0"
			check "$pct% $t $w: quiesced" quiesced
		done
		inject 0
	done
done
cmp_ "failures were injected and counted" "$(stat alloc_failures)" -gt 0
cmp_ "vmalloc_to_page() matched every mapped page" "$(stat map_mismatches)" -eq 0
check "rmmod" rmmod lazy_vmap
echo "# stress under injection done at $(elapsed) s"

# Module load: inject_init_failure=N makes the Nth allocation of our init
# fail (the module arms fail-nth for the span of its init; fail-nth over
# the whole insmod lands mostly in exec and the loader, thousands of
# allocations first), so every allocation of the arena setup (ours,
# vmap()'s, the page tables', kvmalloc()'s) and of the sysfs creation fails
# once in turn. Count them first (N too big to be reached), then fail each
# of the first 24 and a spread of the rest, until a load says the failure
# point was not reached (init made fewer allocations than N): the end of
# init. A failed load leaves nothing: no module, no sysfs directory, no
# arena in /proc/vmallocinfo (the only area of its size), and a plain retry
# loads. Some failures are tolerated (kvmalloc() falls back to vmalloc(),
# vmap() to no preload): the load then works, and the module must run.
# Checks: 4 before the loop, 5 after it.
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
check "insmod, inject_init_failure beyond init" eval 'init_allocs >/dev/null'
rmmod lazy_vmap
allocs=$(init_allocs)
arena_size=$(( $(cat $K/arena_mb) * 1048576 + 4096 ))
# (vunmap() frees lazily: an old arena may show as "unpurged" for a while.)
arena_areas() { grep " $arena_size " /proc/vmallocinfo | grep -vc unpurged; }
size_areas=$(arena_areas)
rmmod lazy_vmap
cmp_ "init's allocations counted" "${allocs:-0}" -gt 4
cmp_ "the arena is the only vmalloc area of its size" "$size_areas" -eq 1
init_failed=0 tolerated=0 bad_loads=0 init_end=0
# bad WHAT: one more bad load, said on a diagnostic line (the checks after
# the loop count them, so the plan does not depend on what went wrong).
bad() { echo "# $*"; bad_loads=$((bad_loads + 1)); }
# dm: the kernel log since the last "dmesg -c" into /tmp/dm, and cleared;
# said TEXT: a line of it has TEXT (builtins: a fork per grep adds up over
# the loop); loaded: lazy_vmap is in /proc/modules.
dm() { dmesg -c > /tmp/dm; }
said() { while IFS= read -r _l; do case $_l in *"$1"*) return 0 ;; esac; done < /tmp/dm; return 1; }
loaded() { while read -r _m _; do [ "$_m" = lazy_vmap ] && return 0; done < /proc/modules; return 1; }
# fail_init N: load with allocation N of init failing; sets init_end=1 if
# init made fewer than N allocations.
fail_init() {
	dmesg -c >/dev/null
	if insmod $LAZY_VMAP_KO inject_init_failure=$1 2>/dev/null; then
		dm
		if said "inject_init_failure=$1: not reached, init made"; then
			init_end=1
			rmmod lazy_vmap || bad "rmmod after a load that did not reach allocation $1"
			return
		fi
		if ! said "inject_init_failure=$1: allocation $1 of init failed"; then
			bad "load with inject_init_failure=$1 said neither 'failed' nor 'not reached'"
		fi
		tolerated=$((tolerated + 1))
		# shellcheck disable=SC2015 # bad when any step fails
		run_ms 200 && snap && [ "$S_ops" -gt 0 ] && quiesced && rmmod lazy_vmap ||
			bad "load that tolerated allocation $1 failing does not run"
		return
	fi
	init_failed=$((init_failed + 1))
	dm
	if [ -d $K ] || loaded || ! said "inject_init_failure=$1: allocation $1 of init failed" ||
		! said "lazy_vmap: init failed"; then
		bad "init failure at allocation $1 left something behind"
	fi
	# shellcheck disable=SC2015 # bad when any step fails
	insmod $LAZY_VMAP_KO && [ "$(arena_areas)" = 1 ] && rmmod lazy_vmap ||
		bad "retry after init failure at allocation $1"
}
# Each of the first 24 (the arena setup), then a spread over the rest (the
# arena's tables, then sysfs: a kernfs node and a name per file), until
# the end of init. (The count differs by a few from load to load, with the
# kernel's caches; the bound only guards against a hook that never says
# "not reached".)
n=1 last=0
while [ $init_end = 0 ] && [ $n -le $((${allocs:-0} * 2 + 24)) ]; do
	fail_init $n; last=$n
	if [ $n -lt 24 ]; then n=$((n + 1)); else n=$((n + ${allocs:-0} / 16 + 1)); fi
done
echo "# init makes $allocs fault-injectable allocations; failing one: $init_failed loads failed cleanly, $tolerated tolerated it; the last load, at $last, did$([ $init_end = 1 ] || echo " not") say 'not reached' ($(elapsed) s)"
cmp_ "init failures injected and unwound" "$init_failed" -gt 0
cmp_ "every injected init failure unwound or tolerated" "$bad_loads" -eq 0
cmp_ "the loop reached the end of init (failure point not reached)" "$init_end" -eq 1
cmp_ "no arena left in vmallocinfo" "$(arena_areas)" -eq 0
check "load after injected init failures" insmod $LAZY_VMAP_KO

# Stress start: the write of "1" to stress with its Nth allocation failing
# (fail-nth of the writing shell, armed after every file is open, so only
# the write's allocations count: kernfs's buffer, ours, kthread creation's
# request), for N = 1, 2, ... until the failure point is no longer reached
# three times in a row (the count varies by a few with the slab caches). A
# failed start fails with ENOMEM and leaves stress stopped; a start that
# was not reached, or tolerated the failure, runs. 3 checks.
# start_armed N: prints "RC LEFT ON ERROR": the write's exit status, what
# is left of fail-nth after it (0: the failure was injected), the stress
# knob right after, the write's error text. Stress is stopped again before
# anything forks (a fork is slow while stress runs).
start_armed() {
	(
		exec 3> $K/stress 4<> /proc/self/fail-nth 5> /tmp/start.err || exit 1
		echo $1 >&4
		echo 1 >&3 2>&5
		# shellcheck disable=SC2320 # the echo is the write under test
		r=$?
		read -r left <&4
		echo 0 >&4
		read -r on < $K/stress
		echo 0 >&3 2>/dev/null
		exec 3>&- 4<&- 5>&-
		echo "$r ${left:-none} ${on:-none} $(cat /tmp/start.err)"
	)
}
put duration_ms 0
enomem=0 started=0 bad_starts=0 unreached=0 n=1
while [ $unreached -lt 3 ] && [ $n -le 400 ]; do
	start_armed $n > /tmp/start.res
	read -r r left on err < /tmp/start.res; r=${r:-none} left=${left:-none}
	case "$r/$left" in
	0/0) started=$((started + 1)); unreached=0 ;;
	0/[1-9]*) unreached=$((unreached + 1)) ;;
	[1-9]*/0)
		unreached=0
		case "$err" in *"Cannot allocate memory"*) enomem=$((enomem + 1)) ;;
		*) echo "# start $n failed with '$err', not ENOMEM"; bad_starts=$((bad_starts + 1)) ;;
		esac
		[ "$on" = 0 ] || { echo "# stress running after a failed start (n=$n)"; bad_starts=$((bad_starts + 1)); } ;;
	*) echo "# start $n: exit $r, fail-nth left $left, '$err'"; bad_starts=$((bad_starts + 1)) ;;
	esac
	[ "$r/$on" = 0/1 ] || [ "$r" != 0 ] || { echo "# start $n succeeded but stress is not running"; bad_starts=$((bad_starts + 1)); }
	knob stress; [ "$V" = 0 ] || { echo "# stress still running after start $n"; bad_starts=$((bad_starts + 1)); put stress 0; }
	n=$((n + 1))
done
echo "# stress start: $((n - 1)) writes with fail-nth, $enomem failed with ENOMEM, $started tolerated the failure ($(elapsed) s)"
cmp_ "stress starts failed with ENOMEM under injection" $enomem -gt 0
cmp_ "every start failed cleanly (ENOMEM, stopped) or ran" $bad_starts -eq 0
cmp_ "the write's failure point was passed (not reached 3 times in a row)" $unreached -eq 3
# Thread creation: kthreadd's allocations fail once. 5 checks.
echo 1 > /proc/2/make-it-fail
echo Y > $F/failslab/task-filter; echo 100 > $F/failslab/probability
echo 1 > $F/failslab/interval; echo 1 > $F/failslab/times
check "stress start fails when kthread creation fails" fails put stress 1
echo 0 > /proc/2/make-it-fail; inject 0
check "stress stopped after the failed start" [ "$(cat $K/stress)" = 0 ]
check "stress start retry" run_stress 1
check "quiesced" quiesced
check "rmmod" rmmod lazy_vmap

# Leaks: kmemleak sees nothing of ours (1 check; a scan or read that fails
# is "unreadable", a failure); free memory back.
if echo scan > $F/kmemleak && sleep 1 && echo scan > $F/kmemleak &&
	leaks=$(grep -c "unreferenced object" $F/kmemleak; [ $? -le 1 ]) && [ -n "$leaks" ]; then
	[ "$leaks" -gt 0 ] && head -40 $F/kmemleak | sed 's/^/# /'
else
	leaks=unreadable
fi
cmp_ "kmemleak: no unreferenced object" "$leaks" -eq 0
# MemFree is not a leak measure here: KASAN's quarantine keeps up to 1/32 of
# RAM of freed objects (64 MiB of 2 GiB). The workloads test checks MemFree
# on the normal kernel; here kmemleak and the counters above do.
sleep 1
echo "# MemFree vs the warm baseline: $((free0 - $(memfree))) kB lower (KASAN quarantine); $(elapsed) s in all"
finish
