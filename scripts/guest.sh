#!/usr/bin/env bash
# Run a busybox sh script as root in a fresh guest: sets up, builds the
# kernel and the module if needed, prepends qemu/tests/lib.sh (KTAP and
# sysfs helpers), and boots qemu/run-guest.sh. Extra arguments go to
# run-guest.sh (--timeout, --append, --expect-oops, ...). DEBUG=1 uses the
# debug kernel (KASAN, kmemleak, fault injection, ...), KERNEL=7.3 Linux 7.3
# (scripts/build-kernel.sh); ICOUNT=1 runs QEMU
# with -icount shift=0,sleep=off (run-guest.sh --icount: time counts
# instructions).
#   scripts/guest.sh SCRIPT [run-guest options]
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
script=${1:?usage: scripts/guest.sh SCRIPT [run-guest options]}
shift
[ -f "$script" ] || die "no such script: $script"
# KO: a module already built for KDIR (make test builds each kernel's once,
# before its guests run side by side); otherwise built here.
ko=${KO:-$("$TOP/scripts/build-module.sh")}
KDIR=${KDIR:-$("$TOP/scripts/build-kernel.sh")}
name=$(basename "$script" .sh)
mkdir -p "$TOP/out/guest"
# One copy per kernel: two guests of one script may boot at once.
full="$TOP/out/guest/$name-$(basename "$KDIR").sh"
cat "$TOP/qemu/tests/lib.sh" "$script" >"$full"
# The ABI document, which the knobs suite compares with the directory.
extra=(--extra "$TOP/docs/ABI/testing/sysfs-kernel-lazy_vmap")
# The guest helpers as a file too, for make shell's interactive sh (ENV).
extra+=(--extra "$TOP/qemu/tests/lib.sh")
[ -f "$KDIR/lib/test_vmalloc.ko" ] && extra+=(--extra "$KDIR/lib/test_vmalloc.ko")
# The debug kernel's page-allocator and slab checks are off unless asked for
# at boot: page poisoning, and SLUB's sanity checks (F), red zones (Z),
# poisoning (P) and owner tracking (U) on every cache, whose reports
# ("BUG <cache> (...): Poison overwritten", ...) run-guest.sh fails a boot on.
[ "${DEBUG:-0}" = 1 ] && extra+=(--append "debug_pagealloc=on page_poison=on slub_debug=FZPU")
[ "${ICOUNT:-0}" = 0 ] || extra+=(--icount "$ICOUNT")
# The harness's instrument, built beside the module (src/watch/lv_watch.c).
[ -f "$(dirname "$ko")/lv_watch.ko" ] && extra+=(--watch "$(dirname "$ko")/lv_watch.ko")
exec "$TOP/qemu/run-guest.sh" --kernel "$KDIR/arch/x86/boot/bzImage" --module "$ko" \
	"${extra[@]}" --log "$TOP/out/guest/$name.log" "$@" "$full"
