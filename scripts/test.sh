#!/usr/bin/env bash
# make test: host tests (cargo test, loom), the judge's own test, the lints
# (scripts/lint.sh), module build checks, guest KTAP suites, the expected-oops run, make bench QUICK=1,
# and on the debug kernel fault injection, fuzzing, the stale-TLB suite and
# a short soak (SKIP_DEBUG=1 skips those, for a quick local loop; CI runs
# everything). Ends with "N passed, N failed".
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
rm -rf "$T"; mkdir -p "$T"
PASSED=0
FAILED=0
MAKE_N=0
: >"$T/make.results"
# pass/fail DESC: one check of this script's own (the "make" suite).
pass() { PASSED=$((PASSED + 1)); MAKE_N=$((MAKE_N + 1)); echo "ok $MAKE_N - $*" | tee -a "$T/make.results"; }
fail() { FAILED=$((FAILED + 1)); MAKE_N=$((MAKE_N + 1)); echo "not ok $MAKE_N - $*" | tee -a "$T/make.results"; }
SUITES=()
# clock VAR: the time now and the CPU time of this shell's finished
# children so far, into VAR; took CLOCK: what passed since, as "W s, cpu C
# s" (the CPU time of every process of the step that was waited for: guest
# suites are CPU-bound under TCG, and this machine has 2 cores). Both run in
# the calling shell (no $(...)), whose children they count.
TCK=$(getconf CLK_TCK)
clock() { local f; read -r -a f </proc/$BASHPID/stat; printf -v "$1" '%s:%s' "$EPOCHSECONDS" $((f[15] + f[16])); }
took() {
	local f; read -r -a f </proc/$BASHPID/stat
	echo "$((EPOCHSECONDS - ${1%%:*})) s, cpu $(((f[15] + f[16] - ${1#*:}) / TCK)) s"
}
t_start=""; clock t_start

# mmdebstrap: for the fresh root below.
"$TOP/scripts/setup.sh" mmdebstrap || { echo "error: test: setup failed (above)" >&2; echo "0 passed, 1 failed"; exit 1; }
KDIR=${KDIR:-$("$TOP/scripts/build-kernel.sh")} || { echo "error: test: the guest kernel does not build (above)" >&2; echo "0 passed, 1 failed"; exit 1; }
export KDIR
KUNIT=$KDIR/tools/testing/kunit/kunit.py

# The README's `make run` on a Debian 12 that has nothing (make
# fresh-check): a clean root, its packages, bindgen, the module and the demo,
# the guest kernel shared from the cache. Mostly downloads and one guest, so
# it runs in the background beside the suites; counted at the end.
FRESH_PID=''
if [ "${SKIP_FRESH:-0}" = 1 ]; then
	say "test: SKIP_FRESH=1: the fresh-root check skipped"
else
	say "test: make fresh-check (a clean Debian 12 root, in the background)"
	( clock t0; "$TOP/scripts/fresh-check.sh" >"$T/fresh.out" 2>&1; echo $? >"$T/fresh.rc"; took "$t0" >"$T/fresh.took" ) &
	FRESH_PID=$!
fi

# guest_line LOG: the KTAP lines of a script's output.
guest_line() { grep -E '^(KTAP version 1|1\.\.[0-9]+|(not )?ok [0-9]+ .*|# .*)$' "$1"; }

# ktap_of_cargo LOG: cargo test's output as KTAP, the plan being the sum of
# its "running N tests" lines.
ktap_of_cargo() {
	awk '/^running [0-9]+ tests?$/ { plan += $2 }
		/^test .* \.\.\. (ok|FAILED|ignored)$/ {
			n++; r = $NF; name = $2
			if (r == "ok") line[n] = "ok " n " - " name
			else if (r == "ignored") line[n] = "ok " n " - " name " # SKIP ignored"
			else line[n] = "not ok " n " - " name }
		END { print "KTAP version 1"; print "1.." plan + 0; for (i = 1; i <= n; i++) print line[i] }' "$1"
}

# kunit_counts FILE: "PASSED FAILED" as the kernel's KTAP parser counts them
# (nothing if it cannot parse the file within 60 s).
kunit_counts() {
	timeout 60 python3 "$KUNIT" parse "$1" 2>&1 | tr -d '\r' |
		sed -n 's/.*Ran [0-9]* tests\{0,1\}: \(.*\)$/\1/p' | tail -1 |
		awk -F', ' '{ p = 0; f = 0
			for (i = 1; i <= NF; i++) { split($i, kv, ": "); if (kv[1] == "passed") p = kv[2]
				else if (kv[1] == "failed" || kv[1] == "crashed" || kv[1] == "errors") f += kv[2] }
			print p + 0, f + 0 }'
}

# suite NAME KTAP_FILE: counts the suite's results, checks them against its
# plan and against kunit.py's reading, and queues it for the document.
suite() {
	local name=$1 k=$2 plan p f s kp
	plan=$(sed -n '2s/^1\.\.\([0-9][0-9]*\)$/\1/p' "$k")
	p=$(grep -cE '^ok [0-9]+ ' "$k"); s=$(grep -cE '^ok [0-9]+ .*# SKIP' "$k")
	f=$(grep -cE '^not ok [0-9]+ ' "$k")
	p=$((p - s))
	PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
	grep -E '^not ok [0-9]+ ' "$k" | sed "s/^/# $name: /"
	echo "# $name: $p passed, $f failed$( [ "$s" -gt 0 ] && echo ", $s skipped") of plan ${plan:-missing}"
	if [ "$(head -1 "$k")" != "KTAP version 1" ] || [ -z "$plan" ]; then
		fail "$name: KTAP header then plan first (got: $(head -2 "$k" | tr '\n' ' '))"
	elif [ $((p + f + s)) -ne "$plan" ]; then
		fail "$name: $((p + f + s)) results for the plan 1..$plan"
	else
		pass "$name: $plan results for the plan 1..$plan"
	fi
	kp=$(kunit_counts "$k")
	if [ "$kp" = "$p $f" ]; then pass "$name: kunit.py parse counts $p passed, $f failed"
	else fail "$name: kunit.py parse counts '${kp:-nothing}', we count '$p $f'"; fi
	SUITES+=("$name:$k")
}

# guest_suite NAME LOG RC: a guest suite's KTAP lines out of its console
# output, and the harness verdict (script exit, no kernel report, taint).
guest_suite() {
	local name=$1 log=$2 rc=$3 k=$T/$1.ktap
	grep -E '^(KTAP version 1|1\.\.[0-9]+|(not )?ok [0-9]+ .*|# .*)$' "$log" >"$k"
	suite "$name" "$k"
	if [ "$rc" -eq 0 ]; then pass "$name: harness verdict PASS ($(grep 'run-guest: guest ran' "$log" | sed 's/run-guest: //'))"
	else fail "$name: harness verdict: $(grep 'run-guest: FAIL' "$log" | tail -1)"; fi
}

# The debug kernel (KASAN, kmemleak, DEBUG_VM, DEBUG_PAGEALLOC + page
# poisoning, SLUB debugging, fault injection): fault injection, interface
# fuzzing, the stale-TLB suite (flush off must not corrupt anything), pti,
# the no-alias oracle and the vmap blocks, every workload, and a short soak
# run in the background, in two chains of one guest after the other (fault,
# tlb, pti, blocks; fuzz, alias, workloads, the soak), while the host tests and the
# normal kernel's guests run; the two chains take about as long, and with
# loom the 2 cores stay busy to the end (each step prints its wall and CPU
# time). Their results are counted at the end, in order.
DEBUG_PIDS=''
debug_chain() {  # SUITE... [soak]
	local t t0 extra
	for t in "$@"; do
		[ "$t" = soak ] && continue
		clock t0
		# debug_pagealloc flushes the local TLB at every page allocation
		# and free (__kernel_map_pages), which wipes the stale entries the
		# tlb suite's negative control must leave; page poisoning, SLUB
		# debugging and KASAN stay on to catch what a stale write corrupts.
		# The same for the no-alias oracle's controls (alias, blocks).
		case $t in
		tlb | alias | blocks) extra=(--append debug_pagealloc=off) ;;
		pti) extra=(--append "debug_pagealloc=off pti=on") ;;
		*) extra=() ;;
		esac
		env -u KDIR DEBUG=1 "$TOP/scripts/guest.sh" "$TOP/qemu/tests/$t.sh" --mem 2G --timeout 2100 \
			--log "$TOP/out/guest/$t-debug.log" "${extra[@]}" >"$T/guest-$t-debug.out" 2>&1
		echo $? >"$T/guest-$t-debug.rc"; took "$t0" >"$T/guest-$t-debug.took"
	done
	[ "${*: -1}" = soak ] || return 0
	clock t0
	env -u KDIR SOAK_OPS=60000 DELAY_OPS=3000 CYCLE_S=2 "$TOP/scripts/soak.sh" >"$T/soak.out" 2>&1
	echo $? >"$T/soak.rc"; took "$t0" >"$T/soak.took"
}
if [ "${SKIP_DEBUG:-0}" = 1 ]; then
	say "test: SKIP_DEBUG=1: debug-kernel tests skipped"
elif say "test: debug kernel (DEBUG=1; cold build ~20 min, cached after)"
	dk=$(env -u KDIR DEBUG=1 "$TOP/scripts/build-kernel.sh"); then
	pass "debug kernel builds ($dk)"
	# Build its module now, in the foreground: the background chain must
	# not race the normal kernel's build for the apt/cargo setup.
	if env -u KDIR DEBUG=1 "$TOP/scripts/build-module.sh" >"$T/module-debug.log" 2>&1; then
		pass "module builds against the debug kernel"
		say "test: debug-kernel suites (fault, fuzz, tlb, pti, alias, blocks, history, workloads, soak) start in the background"
		debug_chain fault tlb pti blocks history &
		DEBUG_PIDS="$!"
		debug_chain fuzz alias workloads soak &
		DEBUG_PIDS="$DEBUG_PIDS $!"
	else
		fail "module builds against the debug kernel (see $T/module-debug.log)"
	fi
else
	fail "debug kernel builds"
fi

say "test: host tests (cargo test)"
clock t0; log=$T/host.log
(cd "$TOP/host" && cargo test --release) >"$log" 2>&1 || fail "host tests build and run (see $log)"
ktap_of_cargo "$log" >"$T/host.ktap"; suite host "$T/host.ktap"; echo -n "# host: "; took "$t0"

# loom: a host-only, CPU-bound model check, in the background at a lower
# priority, so that it takes what the guests leave of the 2 cores instead of
# holding up the guest suites (under TCG every guest is CPU-bound; a guest
# that loses its CPU also keeps its other vCPUs spinning on IPIs they cannot
# answer). Counted at the end. Two processes of one test thread each (nodes
# and buggy, the rest): the model threads map and unmap a stack per
# execution, and two test threads of one process contend on its mmap lock
# and shoot down each other's TLB (one process, 2 threads: 243 CPU-s in
# 152 s; 1 thread: 121 CPU-s in 123 s).
say "test: loom model check of the lazy purge (in the background)"
(
	clock t0
	cd "$TOP/host" || exit 1
	export RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom
	loom() { nice -n 10 cargo test --release --test loom -- --test-threads=1 "$@"; }
	r=1
	if nice -n 10 cargo test --release --test loom --no-run >"$T/loom.log" 2>&1; then
		loom nodes buggy >"$T/loom.1.log" 2>&1 &
		loom --skip nodes --skip buggy >"$T/loom.2.log" 2>&1; r=$?
		wait $! || r=1
		cat "$T/loom.1.log" "$T/loom.2.log" >>"$T/loom.log"
	fi
	echo "$r" >"$T/loom.rc"; took "$t0" >"$T/loom.took"
) &
LOOM_PID=$!

say "test: setup against stand-ins (scripts/test-setup.sh)"
clock t0
"$TOP/scripts/test-setup.sh" >"$T/setup.log" 2>&1 || true
guest_line "$T/setup.log" >"$T/setup.ktap"; suite setup "$T/setup.ktap"; echo -n "# setup: "; took "$t0"

say "test: the judge (run-guest.sh --scan-log on canned console logs)"
"$TOP/scripts/test-judge.sh" >"$T/judge.log" 2>&1 || true
guest_line "$T/judge.log" >"$T/judge.ktap"; suite judge "$T/judge.ktap"

say "test: lints (scripts/lint.sh: rustfmt, clippy, checkpatch, shellcheck, the ABI file)"
clock t0
"$TOP/scripts/lint.sh" >"$T/lint.log" 2>&1 || true
guest_line "$T/lint.log" >"$T/lint.ktap"; suite lint "$T/lint.ktap"; echo -n "# lint: "; took "$t0"

say "test: module build"
log=$T/module.log
if ko=$("$TOP/scripts/build-module.sh" 2>"$log") && [ -f "$ko" ]; then
	pass "module builds against $KDIR"
	if grep -qE "warning|error" "$log"; then fail "module builds without warnings (see $log)"
	else pass "module builds without warnings"; fi
	info=$(/sbin/modinfo "$ko" 2>/dev/null || modinfo "$ko")
	if grep -q "^license: *GPL" <<<"$info" && grep -q "^name: *lazy_vmap" <<<"$info"; then
		pass "modinfo: name lazy_vmap, license GPL"
	else fail "modinfo: name lazy_vmap, license GPL"; fi
else
	fail "module builds against $KDIR (see $log)"
fi

# Guest suites: each script's KTAP (plan first), its count against its plan,
# kunit.py's reading, and the harness verdict. The pti suite boots with
# page table isolation forced on (qemu64 is not affected by Meltdown).
for t in knobs workloads lazy race tlb latency trace nodes pti alias blocks history; do
	say "test: guest $t"
	clock t0; log=$T/guest-$t.out
	extra=(); [ "$t" = pti ] && extra=(--append pti=on)
	# history's clean run may take 10 minutes on a loaded machine.
	to=600; [ "$t" = history ] && to=1200
	"$TOP/scripts/guest.sh" "$TOP/qemu/tests/$t.sh" --timeout $to "${extra[@]}" >"$log" 2>&1
	guest_suite "$t" "$log" "$?"; echo -n "# $t: "; took "$t0"
done

say "test: the seeds' BUG on demand (make run-oops)"
log=$T/oops.out
if "$TOP/scripts/guest.sh" "$TOP/qemu/tests/oops.sh" --timeout 300 \
	--expect-oops 'kernel BUG at .*shim\.c' >"$log" 2>&1; then
	pass "buggy + on_race=bug: the guest dies in the seeds' BUG"
else
	fail "buggy + on_race=bug: expected kernel BUG (see $log)"
fi

say "test: the drain loop with its bound off: the hung-task detector sees it"
log=$T/history-hung.out
if "$TOP/scripts/guest.sh" "$TOP/qemu/tests/history-hung.sh" --timeout 300 \
	--expect-oops 'INFO: task .*:[0-9]+ blocked for more than [0-9]+ seconds' >"$log" 2>&1; then
	pass "drain-loop, drain_stuck_rounds 0: the kernel's hung-task detector reports the spinning drain"
else
	fail "drain-loop, drain_stuck_rounds 0: expected a hung-task report (see $log)"
fi

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

say "test: make bench QUICK=1 (well-formed table, no timing assertions)"
clock t0; log=$T/bench.out
if QUICK=1 "$TOP/scripts/bench.sh" >"$log" 2>&1; then
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
echo -n "# bench: "; took "$t0"

say "test: waiting for loom"
wait "$LOOM_PID"
[ "$(cat "$T/loom.rc" 2>/dev/null)" = 0 ] || fail "loom tests build and run (see $T/loom.log)"
ktap_of_cargo "$T/loom.log" >"$T/loom.ktap"; suite loom "$T/loom.ktap"
echo "# loom: $(cat "$T/loom.took" 2>/dev/null)"

# The debug kernel's suites ran in the background (started above): their
# accounting, in order.
if [ -n "$DEBUG_PIDS" ]; then
	say "test: waiting for the debug-kernel suites"
	# shellcheck disable=SC2086 # a list of PIDs, split on purpose
	wait $DEBUG_PIDS
	for t in fault fuzz tlb pti alias blocks workloads history; do
		guest_suite "$t-debug" "$T/guest-$t-debug.out" "$(cat "$T/guest-$t-debug.rc" 2>/dev/null || echo 99)"
		echo "# $t-debug: $(cat "$T/guest-$t-debug.took" 2>/dev/null)"
	done
	log=$T/soak.out
	if [ "$(cat "$T/soak.rc" 2>/dev/null)" = 0 ] && grep -q '^soak: PASS$' "$log" && grep -q 'splats=0' "$log"; then
		pass "short soak: $(grep '^soak: SOAK' "$log")"
	else
		fail "short soak (see $log): $(grep -E '^soak: (SOAK|FAIL)' "$log" | tr '\n' ' ')"
	fi
	echo "# soak: $(cat "$T/soak.took" 2>/dev/null)"
fi

if [ -n "$FRESH_PID" ]; then
	say "test: waiting for make fresh-check"
	wait "$FRESH_PID"
	if [ "$(cat "$T/fresh.rc" 2>/dev/null)" = 0 ] && grep -q '^fresh-check: PASS' "$T/fresh.out"; then
		pass "make fresh-check: make run in a clean Debian 12 root: $(grep '^fresh-check: PASS' "$T/fresh.out" | sed 's/^fresh-check: PASS //')"
	else
		fail "make fresh-check (see $T/fresh.out): $(grep -E '^error:' "$T/fresh.out" | tail -n 1)"
	fi
	echo "# fresh: $(cat "$T/fresh.took" 2>/dev/null)"
fi

# The whole run as one KTAP document: a subtest per suite, this script's own
# checks last (all but the one below, which reads the document).
{
	{ echo "KTAP version 1"; echo "1..$MAKE_N"; cat "$T/make.results"; } >"$T/make.ktap"
	SUITES+=("make:$T/make.ktap")
	echo "KTAP version 1"
	echo "1..${#SUITES[@]}"
	i=0
	for s in "${SUITES[@]}"; do
		i=$((i + 1)); name=${s%%:*}; k=${s#*:}
		sed 's/^/    /' "$k"
		if grep -qE '^not ok [0-9]+ ' "$k"; then echo "not ok $i - $name"; else echo "ok $i - $name"; fi
	done
} >"$T/ktap.txt"
kp=$(kunit_counts "$T/ktap.txt")
if [ "$kp" = "$PASSED $FAILED" ]; then
	pass "kunit.py parse of out/test/ktap.txt counts every result: $PASSED passed, $FAILED failed"
else
	fail "kunit.py parse of out/test/ktap.txt counts '${kp:-nothing}', we count '$PASSED $FAILED'"
fi
echo -n "# make test took "; took "$t_start"
[ "$FAILED" -eq 0 ] || echo "error: make test: $FAILED checks failed (the 'not ok' lines above; every result in out/test/ktap.txt)" >&2
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
