#!/usr/bin/env bash
# make soak [SOAK_OPS=N] [DELAY_OPS=N] [CYCLE_S=S]: under the debug kernel
# (DEBUG=1: KASAN, kmemleak, DEBUG_VM, DEBUG_PAGEALLOC, ...), N alloc/free
# pairs (default 10^7) in each fixed mode on 4 vCPUs, then DELAY_OPS (10^5)
# per mode with the race delay on, with purges on demand and rmmod/insmod
# cycles during stress. Ends with ops done, splats, leaks, counters.
set -euo pipefail
. "$(dirname "$0")/env.sh"
export DEBUG=1
SOAK_OPS=${SOAK_OPS:-10000000} DELAY_OPS=${DELAY_OPS:-100000} CYCLE_S=${CYCLE_S:-60}
out=$TOP/out/soak
mkdir -p "$out"
{ echo "SOAK_OPS=$SOAK_OPS DELAY_OPS=$DELAY_OPS CYCLE_S=$CYCLE_S"; cat "$TOP/qemu/soak.sh"; } >"$out/soak-guest.sh"
say "soak: $SOAK_OPS ops per fixed mode + $DELAY_OPS with the race delay, debug kernel"
start=$(date +%s)
rc=0
"$TOP/scripts/guest.sh" "$out/soak-guest.sh" --mem 2G --timeout "${SOAK_TIMEOUT:-20000}" | tee "$out/soak.out" || rc=$?
splats=$(grep -cE 'BUG:|kernel BUG at|Oops:|WARNING:|general protection fault|KASAN:|UBSAN:|sleeping function called from invalid context|scheduling while atomic|possible (recursive|circular) locking|inconsistent lock state|new suspected memory leaks' \
	"$TOP/out/guest/soak-guest.log" || true)
echo "soak: $(grep '^SOAK ' "$out/soak.out" || echo 'SOAK did not finish'), splats=$splats, $(( $(date +%s) - start )) s wall"
grep '^SOAKED ' "$out/soak.out" | sed 's/^/soak: /'
exit $rc
