#!/usr/bin/env bash
# make test: host tests (cargo test, loom), the judge's own test, the lints
# (scripts/lint.sh) against each kernel, module build checks, every guest
# KTAP suite on each normal kernel (KERNELS, default "6.12 7.3"), the
# expected-oops runs (the seeds' BUG, the hung drain, the stall hooks),
# make bench QUICK=1, on the debug kernel (6.12's) fault injection, fuzzing,
# the stale-TLB and workloads suites and a short soak (SKIP_DEBUG=1 skips
# those), and make fresh-check (SKIP_FRESH=1 skips
# it). Ends with "N passed, N failed".
#
# Scheduling (docs/testing.md, "Load"): everything after the module builds
# is a job, and the jobs run in LV_GUESTS lanes (default 2, one per host
# core), each lane one job after another, so at most LV_GUESTS guests (or
# CPU-bound host jobs) run at once and no guest waits on the host long
# enough to trip a detector. Jobs are put into lanes longest first, each
# into the lane that is free soonest, by the time each took in this
# machine's last run ($CACHE/test-times; a built-in estimate before that).
# The plan is printed when the run starts; a table of each job's wall and
# CPU time and the worst wait any of its vCPUs saw (lv_watch), with the
# critical path, when it ends.
#
# Every result is also written to one KTAP document, out/test/ktap.txt: a
# subtest per suite (host, loom, judge, each guest suite, and "make" for the
# checks this script makes itself), each with its plan first. A suite whose
# number of results differs from its plan fails; the kernel's own parser
# (tools/testing/kunit/kunit.py parse, from the built kernel tree) reads
# each suite and the whole document, and must count what this script counts.
set -uo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
T=$TOP/out/test
KUNIT=
# shellcheck source=ktap-lib.sh
. "$TOP/scripts/ktap-lib.sh"

"$TOP/scripts/setup.sh" mmdebstrap || { echo "error: test: setup failed (above)" >&2; echo "0 passed, 1 failed"; exit 1; }
# The normal kernels every guest suite runs on, and the debug kernel
# (6.12's: KASAN, kmemleak and fault injection find memory errors, which do
# not depend on the kernel's version; docs/testing.md says why not 7.3's).
: "${KERNELS:=6.12 7.3}"
declare -A KD KO
for k in $KERNELS; do
	KD[$k]=$(KERNEL=$k "$TOP/scripts/build-kernel.sh") ||
		{ echo "error: test: the $k guest kernel does not build (above)" >&2; echo "0 passed, 1 failed"; exit 1; }
done
first_kernel=${KERNELS%% *}
export KDIR=${KD[$first_kernel]}
KUNIT=$KDIR/tools/testing/kunit/kunit.py
KVARIANTS=$KERNELS
if [ "${SKIP_DEBUG:-0}" = 1 ]; then
	say "test: SKIP_DEBUG=1: debug-kernel suites skipped"
elif KD[debug]=$(KERNEL=6.12 DEBUG=1 "$TOP/scripts/build-kernel.sh"); then
	pass "debug kernel builds (${KD[debug]})"
	KVARIANTS+=" debug"
else
	fail "debug kernel builds"
fi



say "test: setup against stand-ins (scripts/test-setup.sh)"
"$TOP/scripts/test-setup.sh" >"$T/setup.log" 2>&1 || true
guest_line "$T/setup.log" >"$T/setup.ktap"; suite setup "$T/setup.ktap"

say "test: the judge (run-guest.sh --scan-log on canned console logs)"
"$TOP/scripts/test-judge.sh" >"$T/judge.log" 2>&1 || true
guest_line "$T/judge.log" >"$T/judge.ktap"; suite judge "$T/judge.ktap"

# The module (and the harness's lv_watch.ko beside it) against each kernel,
# once, before their guests run side by side.
for k in $KVARIANTS; do
	say "test: module build against $k"
	log=$T/module-$k.log
	dbg=0; [ "$k" = debug ] && dbg=1
	if ko=$(KDIR=${KD[$k]} DEBUG=$dbg "$TOP/scripts/build-module.sh" 2>"$log") && [ -f "$ko" ]; then
		KO[$k]=$ko
		pass "module builds against $k (${KD[$k]})"
		if grep -qE "warning|error" "$log"; then fail "module builds against $k without warnings (see $log)"
		else pass "module builds against $k without warnings"; fi
		info=$(/sbin/modinfo "$ko" 2>/dev/null || modinfo "$ko")
		if grep -q "^license: *GPL" <<<"$info" && grep -q "^name: *lazy_vmap" <<<"$info" &&
			grep -q "^author: *lazy_vmap developers" <<<"$info" && [ -f "$(dirname "$ko")/lv_watch.ko" ]; then
			pass "modinfo ($k): name lazy_vmap, license GPL, author; lv_watch.ko built beside it"
		else fail "modinfo ($k): name lazy_vmap, license GPL, author; lv_watch.ko built beside it"; fi
	else
		fail "module builds against $k (see $log)"
	fi
done

# ---- The jobs ---------------------------------------------------------------
# job ID KIND EST ARG...: one unit of work for a lane; EST (s) is the
# built-in estimate, replaced by this machine's last measured time.
JOBS=()
declare -A J_KIND J_ARGS J_EST
job() {
	local id=$1 kind=$2 est=$3; shift 3
	JOBS+=("$id"); J_KIND[$id]=$kind; J_EST[$id]=$est; J_ARGS[$id]="$*"
}
TIMES=$CACHE/test-times
est_of() {
	local t; t=$(awk -v id="$1" '$1 == id { t = $2 } END { print t }' "$TIMES" 2>/dev/null)
	echo "${t:-${J_EST[$1]}}"
}
job host host 150
# loom in two halves (nodes and buggy; the rest), so the lanes balance.
job loom loom 450 nodes buggy
job loom-rest loom 450 --skip nodes --skip buggy
for k in $KERNELS; do
	[ -n "${KO[$k]:-}" ] || continue
	sfx=""; [ "$k" = "$first_kernel" ] || sfx="-$k"
	job "lint$sfx" lint 90 "$k"
	# Built-in estimates: 6.12, one guest per core (2026-12-07).
	for t in knobs:70 workloads:240 lazy:60 race:110 tlb:130 latency:80 trace:100 nodes:110 pti:90 alias:100 blocks:100 history:300; do
		job "${t%%:*}$sfx" guest "${t#*:}" "$k" "${t%%:*}"
	done
	job "oops$sfx" expect 60 "$k" oops 'kernel BUG at .*shim\.c'
	job "history-hung$sfx" expect 60 "$k" history-hung 'INFO: task .*:[0-9]+ blocked for more than [0-9]+ seconds'
	job "stall-rcu$sfx" expect 60 "$k" stall-rcu 'rcu: INFO: rcu_preempt (self-)?detected stall'
done
if [ -n "${KO[6.12]:-}" ]; then
	job shell shell 60 6.12
	job "stall-spin" expect 60 6.12 stall-spin 'watchdog: BUG: soft lockup - CPU#[0-9]+ stuck|rcu: INFO: rcu_preempt (self-)?detected stall'
	job bench bench 200
fi
if [ -n "${KO[debug]:-}" ]; then
	# What each finds that its normal-kernel twin cannot (docs/testing.md,
	# "The debug kernel's suites"): fault and fuzz run only here; tlb's
	# flush-off control writes through stale translations, and page
	# poisoning, SLUB debugging and KASAN see what such a write corrupts;
	# workloads runs every workload and target under KASAN and kmemleak.
	# alias, blocks and history run on both normal kernels instead (their
	# detectors are the module's own; their debug runs found nothing the
	# others do not cover, at 8 CPU-min).
	for t in fault:700 fuzz:300 tlb:250 workloads:500; do
		job "${t%%:*}-debug" guest "${t#*:}" debug "${t%%:*}"
	done
	job soak soak 500
fi
[ "${SKIP_FRESH:-0}" = 1 ] || job fresh fresh 600

# run_job ID: runs one job; its output, exit status and times under $T/ID.*.
run_job() {
	local id=$1 kind=${J_KIND[$1]} t0 k s re extra=() dbg=0
	read -r -a a <<<"${J_ARGS[$id]}"
	clock t0; echo "$EPOCHSECONDS" >"$T/$id.start"
	case $kind in
	host) (cd "$TOP/host" && cargo test --release) ;;
	lint) KDIR=${KD[${a[0]}]} "$TOP/scripts/lint.sh" ;;
	loom)
		# A host-only, CPU-bound model check, one test thread (the model
		# threads map and unmap a stack per execution; two test threads of
		# one process contend on its mmap lock).
		(cd "$TOP/host" && RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
			cargo test --release --test loom -- --test-threads=1 "${a[@]}") ;;
	guest | expect)
		k=${a[0]} s=${a[1]}
		[ "$k" = debug ] && dbg=1
		case $k:$s in
		# debug_pagealloc flushes the local TLB at every page allocation
		# and free (__kernel_map_pages), which wipes the stale entries the
		# tlb suite's negative control must leave; page poisoning, SLUB
		# debugging and KASAN stay on to catch what a stale write corrupts.
		# The same for the no-alias oracle's controls (alias, blocks).
		debug:tlb | debug:alias | debug:blocks) extra=(--append debug_pagealloc=off --mem 2G) ;;
		debug:*) extra=(--mem 2G) ;;
		*:pti) extra=(--append pti=on) ;;
		esac
		if [ "$kind" = expect ]; then
			re=${J_ARGS[$id]#* * }
			extra+=(--timeout 300 --expect-oops "$re")
		elif [ "$k" = debug ]; then extra+=(--timeout 2100)
		elif [ "$s" = history ]; then extra+=(--timeout 1200)
		else extra+=(--timeout 600); fi
		KDIR=${KD[$k]} KO=${KO[$k]} DEBUG=$dbg "$TOP/scripts/guest.sh" "$TOP/qemu/tests/$s.sh" \
			--log "$TOP/out/guest/$id.log" "${extra[@]}" ;;
	shell) KDIR=${KD[6.12]} KO=${KO[6.12]} "$TOP/scripts/test-shell.sh" ;;
	bench) KDIR=${KD[6.12]} KO=${KO[6.12]} QUICK=1 "$TOP/scripts/bench.sh" ;;
	soak) KDIR=${KD[debug]} KO=${KO[debug]} SOAK_OPS=60000 DELAY_OPS=3000 CYCLE_S=2 "$TOP/scripts/soak.sh" ;;
	fresh) "$TOP/scripts/fresh-check.sh" ;;
	esac >"$T/$id.out" 2>&1
	echo $? >"$T/$id.rc"; took "$t0" >"$T/$id.took"; echo "$EPOCHSECONDS" >"$T/$id.end"
}

# Lanes: the jobs longest first, each lane taking the next one when it is
# free (so a job that takes longer or shorter than its estimate moves the
# others, not the end). The plan below is that schedule run on the
# estimates.
LANES=${LV_GUESTS:-2}
declare -A LANE_OF LANE_LOAD
for ((l = 1; l <= LANES; l++)); do LANE_LOAD[$l]=0; done
mapfile -t ORDER < <(for id in "${JOBS[@]}"; do echo "$(est_of "$id") $id"; done | sort -k1,1nr -k2 | awk '{ print $2 }')
for id in "${ORDER[@]}"; do
	best=1
	for ((l = 2; l <= LANES; l++)); do [ "${LANE_LOAD[$l]}" -lt "${LANE_LOAD[$best]}" ] && best=$l; done
	LANE_OF[$id]=$best; LANE_LOAD[$best]=$((LANE_LOAD[$best] + $(est_of "$id")))
done
span=0; for ((l = 1; l <= LANES; l++)); do [ "${LANE_LOAD[$l]}" -gt "$span" ] && span=${LANE_LOAD[$l]}; done
{
	echo "== make test: the plan (kernels: $KVARIANTS; $LANES lanes, one job at a time each; times from $([ -s "$TIMES" ] && echo "this machine's last run" || echo "built-in estimates")) =="
	for ((l = 1; l <= LANES; l++)); do
		printf 'lane %d (%d s):' "$l" "${LANE_LOAD[$l]}"
		for id in "${ORDER[@]}"; do [ "${LANE_OF[$id]}" = "$l" ] && printf ' %s(%s)' "$id" "$(est_of "$id")"; done
		echo
	done
	echo "expected: about $(( (EPOCHSECONDS - ${t_start%%:*} + span + 59) / 60 )) min in all, $(( (span + 59) / 60 )) min of it in the lanes"
} | tee "$T/plan.txt" >&2

echo 0 >"$T/next-job"
lane() {
	local l=$1 i id
	for ((;;)); do
		# The next job of ORDER, under a lock shared by the lanes.
		i=$({ flock 7; i=$(cat "$T/next-job"); echo $((i + 1)) >"$T/next-job"; echo "$i"; } 7>>"$T/next-job.lock")
		[ "$i" -lt "${#ORDER[@]}" ] || return 0
		id=${ORDER[i]}
		echo "$l" >"$T/$id.lane"
		say "test: [lane $l] $id ($(est_of "$id") s expected)"
		run_job "$id"
		say "test: [lane $l] $id done: exit $(cat "$T/$id.rc"), $(cat "$T/$id.took")"
	done
}
LANE_PIDS=()
for ((l = 1; l <= LANES; l++)); do lane "$l" & LANE_PIDS+=($!); done
# A heartbeat while the lanes run.
( while sleep 60; do
	run=$(for id in "${JOBS[@]}"; do [ -f "$T/$id.start" ] && [ ! -f "$T/$id.end" ] && printf '%s ' "$id"; done)
	ndone=$(find "$T" -name '*.end' | wc -l)
	say "test: $(( (EPOCHSECONDS - ${t_start%%:*}) / 60 )) min: $ndone of ${#JOBS[@]} jobs done; running: ${run:-none}"
done ) &
BEAT=$!
wait "${LANE_PIDS[@]}"
kill "$BEAT" 2>/dev/null

# ---- Accounting, in plan order ------------------------------------------------
for id in "${JOBS[@]}"; do
	rc=$(cat "$T/$id.rc" 2>/dev/null || echo 99)
	read -r -a a <<<"${J_ARGS[$id]}"
	case ${J_KIND[$id]} in
	host)
		[ "$rc" = 0 ] || fail "host tests build and run (see $T/host.out)"
		ktap_of_cargo "$T/host.out" >"$T/host.ktap"; suite host "$T/host.ktap" ;;
	loom)
		[ "$rc" = 0 ] || fail "$id: loom tests build and run (see $T/$id.out)"
		ktap_of_cargo "$T/$id.out" >"$T/$id.ktap"; suite "$id" "$T/$id.ktap" ;;
	lint | shell) guest_line "$T/$id.out" >"$T/$id.ktap"; suite "$id" "$T/$id.ktap" ;;
	guest) guest_suite "$id" "$T/$id.out" "$rc" ;;
	expect)
		if [ "$rc" = 0 ]; then pass "$id (${a[0]}): the guest ends in the expected kernel report: $(grep -o 'PASS: expected oops seen.*' "$T/$id.out")"
		else fail "$id (${a[0]}): expected the kernel report /${J_ARGS[$id]#* * }/ (see $T/$id.out)"; fi ;;
	bench)
		log=$T/bench.out
	if [ "$(cat "$T/bench.rc")" = 0 ]; then
		csv=$TOP/out/bench/results.csv
		# Every workload x impl at 1 thread, with positive ns/op and ops.
		# The tail: alloc and free percentiles of every impl but test_vmalloc
		# (which has none, so empty there).
		bad=$(awk -F, 'NR == 1 { if ($0 != "workload,threads,impl,ns_per_op,ipis_per_mpage,ops,alloc_p99_ns,free_p99_ns,free_p999_ns,purge_hold_max_ns,ci_lo_ns,ci_hi_ns,repeats,clock,flush_rounds_per_kop,ipis_per_kop,pool_hits_per_kop,tree_locks_per_kop,counter_subs_per_kop") print "header" ; next }
			$3 == "test_vmalloc" && ($7 $8 $9 $10) != "" { print $1 "/test_vmalloc:tail"; next }
			$3 != "test_vmalloc" && !($7 > 0 && $8 > 0 && $9 >= $8) { print $1 "/" $3 ":tail"; next }
			$11 > $4 || $12 < $4 || $13 != 1 || $14 != "tcg" { print $1 "/" $3 ":interval" ; next }
			$3 ~ /^(lazy_vmap|ram)/ && !($15 ~ /^[0-9.]+$/ && $16 > 0 && $17 ~ /^[0-9.]+$/ && $18 > 0 && $19 ~ /^[0-9.]+$/) { print $1 "/" $3 ":counts"; next }
			$4 > 0 && $6 > 0 { ok[$1 "," $3] = 1 }
			END { n = split("fix_size fix_size_16 random_size long_busy_list full_fit handoff", w, " ")
			      m = split("lazy_vmap lazy_vmap:buggy lazy_vmap:drop-bugon lazy_vmap:purge-lock lazy_vmap:nodes vmalloc floor", im, " ")
			      for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) if (!((w[i] "," im[j]) in ok)) print w[i] "/" im[j]
			      n = split("fix_size fix_size_16 random_size long_busy_list full_fit", w, " ")
			      for (i = 1; i <= n; i++) if (!((w[i] ",test_vmalloc") in ok)) print w[i] "/test_vmalloc"
			      n = split("ram kram ram_ua10 kram_ua10", im, " ")
			      for (j = 1; j <= n; j++) for (np = 0; np < 2; np++) if (!(((np ? "fix_size_16" : "fix_size") "," im[j]) in ok))
			          print (np ? "fix_size_16/" : "fix_size/") im[j] }' "$csv")
		if [ -z "$bad" ]; then pass "bench QUICK=1: every workload x impl measured (out/bench/results.csv)"
		else fail "bench QUICK=1: missing or empty cells: ${bad//$'\n'/ }"; fi
		if [ -s "$TOP/out/bench/bench.png" ]; then pass "bench QUICK=1: plot written"
		else fail "bench QUICK=1: no plot"; fi
	else
		fail "bench QUICK=1 ran, every run quiesced (see $log: $(grep -E 'BENCH errors|error' "$log" | tail -1))"
	fi
	;;
	soak)
		log=$T/soak.out
		if [ "$rc" = 0 ] && grep -q '^soak: PASS$' "$log" && grep -q 'splats=0' "$log"; then
			pass "short soak: $(grep '^soak: SOAK' "$log")"
		else
			fail "short soak (see $log): $(grep -E '^soak: (SOAK|FAIL)' "$log" | tr '\n' ' ')"
		fi ;;
	fresh)
		if [ "$rc" = 0 ] && grep -q '^fresh-check: PASS' "$T/fresh.out"; then
			pass "make fresh-check: make run in a clean Debian 12 root: $(grep '^fresh-check: PASS' "$T/fresh.out" | sed 's/^fresh-check: PASS //')"
		else
			fail "make fresh-check (see $T/fresh.out): $(grep -E '^error:' "$T/fresh.out" | tail -n 1)"
		fi ;;
	esac
done

say "test: the benchmark's statistics (scripts/stats.awk)"
# Medians and their 95% intervals of 9, 6 and 5 values, worked by hand: of
# 9, (x(2), x(8)) (P(Bin(9, 1/2) <= 1) = 10/512); of 6 and 5, (min, max).
got=$(awk -f "$TOP/scripts/stats.awk" -f /dev/stdin <<'AWK'
BEGIN { for (i = 1; i <= 9; i++) a[1, i] = 10 - i
	printf "%s %s %s %.4f|", med(a, 1, 9), lo, hi, coverage(9)
	printf "%s %s %s %.4f|", med(a, 1, 6), lo, hi, coverage(6)
	printf "%s %s %s %.4f\n", med(a, 1, 5), lo, hi, coverage(5) }
AWK
)
want="5 2 8 0.9609|6.5 4 9 0.9688|7 5 9 0.9375"
if [ "$got" = "$want" ]; then pass "stats.awk: medians and 95% intervals of 9, 6 and 5 values"
else fail "stats.awk: medians and intervals: got '$got', want '$want'"; fi

say "test: make bench LOCKSTAT=1's table (scripts/lockstat.awk) on canned runs"
# Two rounds at 2 vCPUs, one at 4, worked by hand: ordered's tree lock
# 100 and 200 contentions in 1000 ops -> 150000 [100000-200000] per 10^6;
# nodes' 20 in 2000 ops, then no line at all (a class a run did not take:
# 0) -> 5000 [0-10000]; per round nodes/ordered per op 0.1 and 0 -> 0.05;
# pool hits 900 in 2000 and in 1000 ops -> 675 [450-900] per 1000; IPIs
# 30 and 20 in 10 flush rounds -> 2.5 [2.0-3.0] per round; vmalloc's 9
# IPIs in 500 ops -> 18 per 1000.
d=$T/lockstat-canned; mkdir -p "$d"
printf '%s\n' "cpus,workload,impl,round,ops,pool_hits,tree_locks,purges,ipis,flush_rounds,freed_pages" \
	"2,fix_size:1,lazy_vmap,1,1000,0,3000,2,4,2,1000" "2,fix_size:1,lazy_vmap:nodes,1,2000,900,300,2,30,10,2000" \
	"2,fix_size:1,vmalloc,1,500,-,-,-,9,-,500" "2,fix_size:1,lazy_vmap,2,1000,0,3000,2,4,2,1000" \
	"2,fix_size:1,lazy_vmap:nodes,2,1000,900,300,2,20,10,1000" "2,fix_size:1,vmalloc,2,500,-,-,-,9,-,500" \
	"4,fix_size:1,lazy_vmap,1,1000,0,3000,2,6,2,1000" "4,fix_size:1,lazy_vmap:nodes,1,1000,900,300,2,6,2,1000" >"$d/ops.csv"
printf '%s\n' "cpus,workload,impl,round,ops,class,contentions,waittime_total_us,acquisitions" \
	"2,fix_size:1,lazy_vmap,1,1000,lazy_vmap_area_lock,100,50,3000" "2,fix_size:1,lazy_vmap:nodes,1,2000,lazy_vmap_area_lock,20,5,300" \
	"2,fix_size:1,vmalloc,1,500,free_vmap_area_lock,7,5,300" "2,fix_size:1,lazy_vmap,2,1000,lazy_vmap_area_lock,200,50,3000" \
	"2,fix_size:1,vmalloc,2,500,free_vmap_area_lock,9,5,300" "4,fix_size:1,lazy_vmap,1,1000,lazy_vmap_area_lock,400,50,3000" \
	"4,fix_size:1,lazy_vmap:nodes,1,1000,lazy_vmap_area_lock,100,5,300" >"$d/lock.csv"
got=$(awk -F, -f "$TOP/scripts/stats.awk" -f "$TOP/scripts/lockstat.awk" "$d/ops.csv" "$d/lock.csv" |
	awk '/^Contentions/ { s = "c" } /^Wait/ { s = "w" } /^Exact counts/ { s = "k" } /^nodes \// { s = "r" }
		s == "c" && $3 == "lazy_vmap_area_lock" { printf "%s %s %s %s %s|", $2, $4, $5, $6, $7 }
		s == "c" && $3 == "free_vmap_area_lock" { printf "vmalloc %s %s|", $4, $5 }
		s == "k" && $2 == "lazy_vmap:nodes" && $3 == "pool" { printf "hits %s %s|", $5, $6 }
		s == "k" && $2 == "lazy_vmap:nodes" && $3 == "IPIs/flush" { printf "ipr %s %s|", $5, $6 }
		s == "k" && $2 == "vmalloc" && $3 == "IPIs" { printf "vipis %s %s|", $4, $5 }
		s == "r" && $1 == "fix_size:1" { printf "ratio %s %s %s %s %s\n", $2, $3, $4, $5, $6 }')
want="lazy_vmap 150000 [100000-200000] 400000 [400000-400000]|lazy_vmap:nodes 5000 [0-10000] 100000 [100000-100000]|vmalloc 16000 [14000-18000]|hits 675 [450-900]|ipr 2.5 [2.0-3.0]|vipis 18 [18-18]|ratio lazy_vmap:nodes 0.05 [0.00-0.10] 0.25 [0.25-0.25]"
if [ "$got" = "$want" ]; then pass "lockstat.awk: contentions per 10^6 ops, pool hits per 1000, nodes/ordered per round, with intervals"
else fail "lockstat.awk: got '$got', want '$want'"; fi


# ---- The table: each job's times and its guests' worst vCPU wait ---------------
{
	echo "== make test: where the time went (wall and CPU s per job; vCPU wait: the worst timer lateness on any vCPU, lv_watch) =="
	printf '%-20s %-7s %4s %7s %7s %7s %10s\n' job kernel lane est_s wall_s cpu_s vcpu_wait
	worst=0 worst_id=''
	for id in "${ORDER[@]}"; do
		read -r w _ _ c _ <"$T/$id.took" 2>/dev/null || { w=- c=-; }
		lw=$(grep -o 'vCPU wait: late_max_ms=[0-9.]*' "$T/$id.out" 2>/dev/null | sed 's/.*=//' | sort -n | tail -1)
		kk=${J_ARGS[$id]%% *}; case ${J_KIND[$id]} in guest | expect | lint | shell) ;; bench) kk=6.12 ;; soak) kk=debug ;; *) kk=- ;; esac
		printf '%-20s %-7s %4s %7s %7s %7s %10s\n' "$id" "$kk" "$(cat "$T/$id.lane" 2>/dev/null)" "$(est_of "$id")" "$w" "$c" "${lw:+${lw} ms}"
		if [ -n "$lw" ] && awk -v a="$lw" -v b="$worst" 'BEGIN { exit !(a > b) }'; then worst=$lw worst_id=$id; fi
	done
	last=0 crit=1
	for ((l = 1; l <= LANES; l++)); do
		e=0; for id in "${ORDER[@]}"; do [ "$(cat "$T/$id.lane" 2>/dev/null)" = "$l" ] && [ -f "$T/$id.end" ] && [ "$(cat "$T/$id.end")" -gt "$e" ] && e=$(cat "$T/$id.end"); done
		[ "$e" -gt "$last" ] && last=$e crit=$l
	done
	echo "critical path: lane $crit:$(for id in "${ORDER[@]}"; do [ "$(cat "$T/$id.lane" 2>/dev/null)" = "$crit" ] && printf ' %s' "$id"; done)"
	echo "worst vCPU wait of the run: ${worst} ms (${worst_id:-no guest reported}); the detectors' thresholds: qemu/run-guest.sh"
} | tee "$T/times.txt" >&2
# This run's times, the next run's plan (a job this run did not run, with
# SKIP_DEBUG=1 or fewer KERNELS, keeps its last time).
{
	for id in "${JOBS[@]}"; do
		[ -f "$T/$id.took" ] && echo "$id $(cut -d' ' -f1 "$T/$id.took")"
	done
	cat "$TIMES" 2>/dev/null
} | awk '!seen[$1]++' >"$TIMES.tmp" && mv "$TIMES.tmp" "$TIMES"

ktap_finish "make test"
