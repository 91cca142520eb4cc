#!/usr/bin/env bash
# make check: the quick loop between commits (1 min 34 s warm, 2026-12-07;
# the goal is at most 10 minutes).
# The host tests, the lints against every kernel, the module built against
# every kernel without a warning, and one short guest (qemu/tests/smoke.sh)
# per kernel, the guests side by side in LV_GUESTS slots. Results as KTAP in
# out/check/, ending "N passed, N failed" like make test; make test is the
# full run (CI).
#   KERNELS="6.12 7.3" (default): the kernels to check against.
set -uo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
T=$TOP/out/check
KUNIT=
# shellcheck source=ktap-lib.sh
. "$TOP/scripts/ktap-lib.sh"
: "${KERNELS:=6.12 7.3}"
"$TOP/scripts/setup.sh" || { echo "error: check: setup failed (above)" >&2; echo "0 passed, 1 failed"; exit 1; }
declare -A KD KO
for k in $KERNELS; do
	KD[$k]=$(KERNEL=$k "$TOP/scripts/build-kernel.sh") ||
		{ echo "error: check: the $k guest kernel does not build (above)" >&2; echo "0 passed, 1 failed"; exit 1; }
done
KUNIT=${KD[${KERNELS%% *}]}/tools/testing/kunit/kunit.py

say "check: host tests (cargo test), in the background"
(cd "$TOP/host" && cargo test --release) >"$T/host.out" 2>&1 &
HOST_PID=$!
for k in $KERNELS; do
	say "check: module against $k"
	log=$T/module-$k.log
	if ko=$(KDIR=${KD[$k]} "$TOP/scripts/build-module.sh" 2>"$log") && [ -f "$ko" ]; then
		KO[$k]=$ko
		pass "module builds against $k"
		if grep -qE "warning|error" "$log"; then fail "module builds against $k without warnings (see $log)"
		else pass "module builds against $k without warnings"; fi
	else
		fail "module builds against $k (see $log)"
	fi
done
say "check: a smoke guest per kernel, and the lints, side by side"
pids=()
for k in $KERNELS; do
	[ -n "${KO[$k]:-}" ] || continue
	( KDIR=${KD[$k]} KO=${KO[$k]} "$TOP/scripts/guest.sh" "$TOP/qemu/tests/smoke.sh" --timeout 300 \
		--log "$TOP/out/guest/smoke-$k.log" >"$T/smoke-$k.out" 2>&1; echo $? >"$T/smoke-$k.rc" ) &
	pids+=($!)
done
for k in $KERNELS; do
	KDIR=${KD[$k]} "$TOP/scripts/lint.sh" >"$T/lint-$k.out" 2>&1
done
wait "$HOST_PID"; echo $? >"$T/host.rc"
wait "${pids[@]}"
[ "$(cat "$T/host.rc")" = 0 ] || fail "host tests build and run (see $T/host.out)"
ktap_of_cargo "$T/host.out" >"$T/host.ktap"; suite host "$T/host.ktap"
for k in $KERNELS; do
	guest_line "$T/lint-$k.out" >"$T/lint-$k.ktap"; suite "lint-$k" "$T/lint-$k.ktap"
	[ -f "$T/smoke-$k.rc" ] && guest_suite "smoke-$k" "$T/smoke-$k.out" "$(cat "$T/smoke-$k.rc")"
done
ktap_finish "make check"
