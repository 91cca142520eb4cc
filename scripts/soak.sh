#!/usr/bin/env bash
# make soak [SOAK_OPS=N] [SOAK_MIN=M] [DELAY_OPS=N] [CYCLE_S=S]: under the
# debug kernel (DEBUG=1: KASAN, kmemleak, DEBUG_VM, DEBUG_PAGEALLOC, ...), N
# alloc/free pairs (default 10^7) in each fixed mode on 4 vCPUs, and at
# least M minutes per mode for longer runs (default 0), then DELAY_OPS (10^5)
# per mode with the race delay on, with purges on demand and rmmod/insmod
# cycles during stress. Ends with ops done, splats, leaks, counters.
#
# Output (the last lines; scripts/test.sh relies on them):
#   soak: SOAK total_ops=N reloads=N loads=N errors=N races=N mismatches=N kmemleak=N memfree_lower_kb=N, splats=N, N s wall
#   soak: SOAKED <mode> <delay_us> <ops> ...          (one per mode)
#   soak: PASS                                         or
#   soak: FAIL: <reasons>
# Exit 0 iff PASS: the guest's verdict is a pass (script exit 0: no error in
# any module load, kmemleak readable and empty; no kernel report, no taint
# beyond our module's; no timeout), and no line of the console log matches
# the judge's kernel-report patterns (splats=0).
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
export DEBUG=1
SOAK_OPS=${SOAK_OPS:-10000000} SOAK_MIN=${SOAK_MIN:-0} DELAY_OPS=${DELAY_OPS:-100000} CYCLE_S=${CYCLE_S:-60}
case "$SOAK_OPS$SOAK_MIN$DELAY_OPS$CYCLE_S" in *[!0-9]*) die "soak: SOAK_OPS, SOAK_MIN, DELAY_OPS, CYCLE_S take whole numbers";; esac
[ "$CYCLE_S" -ge 2 ] || die "soak: CYCLE_S must be at least 2"
out=$TOP/out/soak
mkdir -p "$out"
{ echo "SOAK_OPS=$SOAK_OPS SOAK_MIN=$SOAK_MIN DELAY_OPS=$DELAY_OPS CYCLE_S=$CYCLE_S"; cat "$TOP/qemu/soak.sh"; } >"$out/soak-guest.sh"
say "soak: $SOAK_OPS ops (and $SOAK_MIN min) per fixed mode + $DELAY_OPS with the race delay, debug kernel"
start=$(date +%s)
log=$TOP/out/guest/soak-guest.log
rm -f "$log"
rc=0
"$TOP/scripts/guest.sh" "$out/soak-guest.sh" --mem 2G --timeout "${SOAK_TIMEOUT:-$((20000 + 3 * 60 * SOAK_MIN * 2))}" |
	tee "$out/soak.out" || rc=$?
# The same patterns as the judge's (qemu/run-guest.sh --splat-re).
splats=$(grep -caE "$("$TOP/qemu/run-guest.sh" --splat-re)" "$log" 2>/dev/null || true)
summary=$(grep '^SOAK ' "$out/soak.out" || echo 'SOAK did not finish')
echo "soak: $summary, splats=${splats:-0}, $(( $(date +%s) - start )) s wall"
grep '^SOAKED ' "$out/soak.out" | sed 's/^/soak: /' || true
why=()
case $rc in
0) ;;
1) why+=("the guest script failed (exit 1)") ;;
2) why+=("kernel report or taint (run-guest exit 2)") ;;
3) why+=("timeout or no end marker (run-guest exit 3)") ;;
*) why+=("guest run failed (exit $rc)") ;;
esac
[ "${splats:-0}" = 0 ] || why+=("$splats kernel report lines in $log")
grep -q '^SOAK .* errors=0 ' <<<"$summary" || why+=("errors in the guest (soak: ERROR lines)")
grep -q ' kmemleak=0 ' <<<"$summary" || why+=("kmemleak not 0 (or unreadable)")
if [ ${#why[@]} -eq 0 ]; then
	echo "soak: PASS"
else
	echo "soak: FAIL: $(printf '%s; ' "${why[@]}" | sed 's/; $//')"
	die "soak: FAIL (above); console log $log"
fi
