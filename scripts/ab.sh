#!/usr/bin/env bash
# make ab [REV=<git rev>]: is the work tree's module as fast as REV's (default
# HEAD~1)? Builds the module of REV (in a git worktree under out/ab/), boots
# one guest with both, and runs the same cells with each, alternating per
# round (qemu/ab.sh). Prints per cell the median ns/op of each, and B/A:
# the median of the per-round ratios with its 95% interval (order
# statistics, scripts/stats.awk), and "no difference" if it holds 1.
# Runs under QEMU's -icount shift=0,sleep=off by default (ICOUNT=0: plain
# TCG): time counts instructions, steady within a few percent on a loaded
# host, and blind to what a TLB flush or an IPI costs on hardware, which a
# regression of the code's own work does not need. ROUNDS (6), AB_MS (300),
# CELLS (see below) override.
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
rev=$(git -C "$TOP" rev-parse --verify "${REV:-HEAD~1}^{commit}")
out=$TOP/out/ab
mkdir -p "$out"
wt=$out/src
git -C "$TOP" worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
git -C "$TOP" worktree prune
git -C "$TOP" worktree add --detach -q "$wt" "$rev"
# The worktree goes on every exit; then env.sh's error line, which this EXIT
# trap replaces.
ab_cleanup() {
	local rc=$?
	git -C "$TOP" worktree remove --force "$wt" 2>/dev/null || true
	(exit "$rc") || lv_on_exit
}
trap ab_cleanup EXIT
ko_a=$("$wt/scripts/build-module.sh")
cp "$ko_a" "$out/lazy_vmap_a.ko"
cells=${CELLS:-"fix_size:1:1:lazy_vmap fix_size:16:1:lazy_vmap random_size:1:1:lazy_vmap full_fit:1:4:lazy_vmap
handoff:1:4:lazy_vmap fix_size:1:1:floor fix_size:16:1:floor fix_size:1:1:vmalloc full_fit:1:4:vmalloc"}
{
	echo "ROUNDS=${ROUNDS:-6} AB_MS=${AB_MS:-300} CELLS='${cells//$'\n'/ }'"
	cat "$TOP/qemu/ab.sh"
} >"$out/ab-guest.sh"
say "ab: A = $(git -C "$TOP" log -1 --format='%h %s' "$rev" | cut -c1-60), B = work tree"
ICOUNT=${ICOUNT:-1} "$TOP/scripts/guest.sh" "$out/ab-guest.sh" --extra "$out/lazy_vmap_a.ko" --mem 2G --timeout 3000 |
	tee "$out/raw.txt" | { grep -v '^AB ' || true; } >&2
awk -f "$TOP/scripts/stats.awk" -f /dev/stdin "$out/raw.txt" <<'AWK' | { read -r h; echo "$h"; sort; } | tee "$out/table.txt"
	# The r-th A and B run of a cell are of the same round (back to back).
	/^AB [AB] / { c = $3; k = c SUBSEP $2; v[k, ++n[k]] = $4; cells[c] = 1 }
	END {
		printf "%-32s %9s %9s %6s %15s %s\n", "cell (workload:pages:threads:target)", "A median", "B median", "B/A",
			"95% interval", "verdict"
		for (c in cells) {
			a = c SUBSEP "A"; b = c SUBSEP "B"; m = n[a] < n[b] ? n[a] : n[b]
			ma = med(v, a, m); mb = med(v, b, m)
			for (i = 1; i <= m; i++) r[1, i] = v[a, i] > 0 ? v[b, i] / v[a, i] : 0
			x = med(r, 1, m)
			verdict = (lo <= 1 && hi >= 1) ? "no difference" : (x > 1 ? "B slower" : "B faster")
			printf "%-32s %9d %9d %6.3f %15s %s\n", c, ma, mb, x, sprintf("[%.3f, %.3f]", lo, hi), verdict
		}
	}
AWK
