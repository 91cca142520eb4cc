#!/usr/bin/env bash
# make test: host tests (cargo test, loom), module build checks, guest KTAP
# tests, the expected-oops run, make bench QUICK=1, and on the debug kernel
# fault injection, fuzzing and a short soak (SKIP_DEBUG=1 skips those, for a
# quick local loop; CI runs everything). Ends with "N passed, N failed".
set -uo pipefail
. "$(dirname "$0")/env.sh"
PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "ok - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "not ok - $*"; }
mkdir -p "$TOP/out/test"

"$TOP/scripts/setup.sh" || { echo "0 passed, 1 failed"; exit 1; }
KDIR=${KDIR:-$("$TOP/scripts/build-kernel.sh")} || { echo "0 passed, 1 failed"; exit 1; }
export KDIR

# cargo's "test result: ok. N passed; M failed" lines, summed.
count_cargo() {
	local log=$1 p f
	p=$(grep -o '[0-9]* passed' "$log" | awk '{s += $1} END {print s + 0}')
	f=$(grep -o '[0-9]* failed' "$log" | awk '{s += $1} END {print s + 0}')
	PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
	echo "# $2: $p passed, $f failed (log $log)"
}

say "test: host tests (cargo test)"
log=$TOP/out/test/host.log
if (cd "$TOP/host" && cargo test --release) >"$log" 2>&1; then count_cargo "$log" "host tests"
else count_cargo "$log" "host tests"; fail "host tests build and run (see $log)"; fi

say "test: loom model check of the lazy purge"
log=$TOP/out/test/loom.log
if (cd "$TOP/host" && RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
	cargo test --release --test loom) >"$log" 2>&1; then count_cargo "$log" "loom"
else count_cargo "$log" "loom"; fail "loom tests build and run (see $log)"; fi

say "test: module build"
log=$TOP/out/test/module.log
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

# Guest tests: each script's KTAP results, plus the harness verdict (script
# exit, no kernel splat, no timeout) as one more test per boot.
for t in knobs workloads lazy race; do
	say "test: guest $t"
	log=$TOP/out/test/guest-$t.out
	"$TOP/scripts/guest.sh" "$TOP/qemu/tests/$t.sh" --timeout 600 >"$log" 2>&1
	rc=$?
	p=$(grep -c '^ok [0-9]' "$log"); f=$(grep -c '^not ok [0-9]' "$log")
	PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
	grep '^not ok [0-9]' "$log" | sed "s/^/# $t: /"
	grep '^# ' "$log" | sed "s/^# /# $t: /"
	if [ $rc -eq 0 ]; then pass "guest $t: $p checks, clean console (out/guest/$t.log)"
	else fail "guest $t: harness verdict: $(grep 'run-guest: FAIL' "$log" | tail -1)"; fi
done

say "test: the seeds' BUG on demand (make run-oops)"
log=$TOP/out/test/oops.out
if "$TOP/scripts/guest.sh" "$TOP/qemu/tests/oops.sh" --timeout 300 \
	--expect-oops 'kernel BUG at .*shim\.c' >"$log" 2>&1; then
	pass "buggy + on_race=bug: the guest dies in the seeds' BUG"
else
	fail "buggy + on_race=bug: expected kernel BUG (see $log)"
fi

say "test: make bench QUICK=1 (well-formed table, no timing assertions)"
log=$TOP/out/test/bench.out
if QUICK=1 "$TOP/scripts/bench.sh" >"$log" 2>&1; then
	csv=$TOP/out/bench/results.csv
	# Every workload x impl at 1 thread, with positive ns/op and ops.
	bad=$(awk -F, 'NR == 1 { if ($0 != "workload,threads,impl,ns_per_op,ipis_per_mpage,ops") print "header" ; next }
		$4 > 0 && $6 > 0 { ok[$1 "," $3] = 1 }
		END { n = split("fix_size fix_size_16 random_size long_busy_list full_fit", w, " ")
		      m = split("lazy_vmap lazy_vmap:buggy lazy_vmap:drop-bugon lazy_vmap:purge-lock vmalloc floor test_vmalloc", im, " ")
		      for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) if (!((w[i] "," im[j]) in ok)) print w[i] "/" im[j] }' "$csv")
	if [ -z "$bad" ]; then pass "bench QUICK=1: every workload x impl measured (out/bench/results.csv)"
	else fail "bench QUICK=1: missing or empty cells: $(echo $bad)"; fi
	if [ -s "$TOP/out/bench/bench.png" ]; then pass "bench QUICK=1: plot written"
	else fail "bench QUICK=1: no plot"; fi
else
	fail "bench QUICK=1 ran (see $log)"
fi

# The debug kernel (KASAN, kmemleak, DEBUG_VM, DEBUG_PAGEALLOC, fault
# injection): fault injection, interface fuzzing, a short soak.
if [ "${SKIP_DEBUG:-0}" = 1 ]; then
	say "test: SKIP_DEBUG=1: debug-kernel tests skipped"
elif say "test: debug kernel (DEBUG=1; cold build ~20 min, cached after)"
	dk=$(env -u KDIR DEBUG=1 "$TOP/scripts/build-kernel.sh"); then
	pass "debug kernel builds ($dk)"
	for t in fault fuzz; do
		say "test: guest $t (debug kernel)"
		log=$TOP/out/test/guest-$t.out
		env -u KDIR DEBUG=1 "$TOP/scripts/guest.sh" "$TOP/qemu/tests/$t.sh" --mem 2G --timeout 2100 >"$log" 2>&1
		rc=$?
		p=$(grep -c '^ok [0-9]' "$log"); f=$(grep -c '^not ok [0-9]' "$log")
		PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
		grep '^not ok [0-9]' "$log" | sed "s/^/# $t: /"
		grep '^# ' "$log" | grep -v '^# [0-9]*% ' | sed "s/^# /# $t: /" | head -20
		if [ $rc -eq 0 ]; then pass "guest $t (debug kernel): $p checks, clean console"
		else fail "guest $t (debug kernel): $(grep 'run-guest: FAIL' "$log" | tail -1)"; fi
	done
	say "test: short soak (debug kernel)"
	log=$TOP/out/test/soak.out
	if env -u KDIR SOAK_OPS=60000 DELAY_OPS=3000 CYCLE_S=2 "$TOP/scripts/soak.sh" >"$log" 2>&1 &&
		grep -q 'splats=0' "$log"; then
		pass "short soak: $(grep '^soak: SOAK' "$log")"
	else
		fail "short soak (see $log): $(grep '^soak: SOAK' "$log")"
	fi
else
	fail "debug kernel builds"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
