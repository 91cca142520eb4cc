#!/usr/bin/env bash
# make soak [SOAK_OPS=N] [SOAK_MIN=M] [DELAY_OPS=N] [CYCLE_S=S]: under the
# debug kernel (DEBUG=1: KASAN, kmemleak, DEBUG_VM, DEBUG_PAGEALLOC, ...), N
# alloc/free pairs (default 10^7) in each fixed mode on 4 vCPUs, and at
# least M minutes per mode for longer runs (default 0), then DELAY_OPS (10^5)
# per mode with the race delay on, with purges on demand and rmmod/insmod
# cycles during stress. Ends with ops done, splats, leaks, counters.
set -euo pipefail
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
rc=0
"$TOP/scripts/guest.sh" "$out/soak-guest.sh" --mem 2G --timeout "${SOAK_TIMEOUT:-$((20000 + 3 * 60 * SOAK_MIN * 2))}" | tee "$out/soak.out" || rc=$?
splats=$(grep -cE 'BUG:|kernel BUG at|Oops:|WARNING:|general protection fault|KASAN:|UBSAN:|sleeping function called from invalid context|scheduling while atomic|possible (recursive|circular) locking|inconsistent lock state|new suspected memory leaks' \
	"$TOP/out/guest/soak-guest.log" || true)
echo "soak: $(grep '^SOAK ' "$out/soak.out" || echo 'SOAK did not finish'), splats=$splats, $(( $(date +%s) - start )) s wall"
grep '^SOAKED ' "$out/soak.out" | sed 's/^/soak: /'
exit $rc
