#!/usr/bin/env bash
# make test: host tests (cargo test, loom), module build checks, guest KTAP
# tests, the expected-oops run. Ends with one line "N passed, N failed".
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
rm -f "$TOP/lazy_vmap.ko"
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

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
