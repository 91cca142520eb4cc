#!/usr/bin/env bash
# make ab [REV=<git rev>]: is the work tree's module as fast as REV's (default
# HEAD~1)? Builds the module of REV (in a git worktree under out/ab/), boots
# one guest with both, and runs the same cells with each, alternating per
# round (qemu/ab.sh). Prints per cell the median and the minimum ns/op of
# each and B/A; on a loaded machine the minimum is the steadier figure.
# Under TCG on a shared machine only the ratio within this run means
# anything. ROUNDS (5), AB_MS (300), CELLS (see below) override.
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
	echo "ROUNDS=${ROUNDS:-5} AB_MS=${AB_MS:-300} CELLS='${cells//$'\n'/ }'"
	cat "$TOP/qemu/ab.sh"
} >"$out/ab-guest.sh"
say "ab: A = $(git -C "$TOP" log -1 --format='%h %s' "$rev" | cut -c1-60), B = work tree"
"$TOP/scripts/guest.sh" "$out/ab-guest.sh" --extra "$out/lazy_vmap_a.ko" --mem 2G --timeout 3000 |
	tee "$out/raw.txt" | { grep -v '^AB ' || true; } >&2
awk '/^AB [AB] / { v[$3, $2] = v[$3, $2] " " $4; cells[$3] = 1 }
	function sorted(s, a,   n, i, j, t) {
		n = split(s, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n
	}
	END {
		printf "%-32s %9s %9s %6s %9s %9s %6s\n", "cell (workload:pages:threads:target)", "A median", "B median", "B/A", "A min", "B min", "B/A"
		for (c in cells) {
			na = sorted(v[c, "A"], a); nb = sorted(v[c, "B"], b)
			ma = a[int((na + 1) / 2)]; mb = b[int((nb + 1) / 2)]
			printf "%-32s %9d %9d %6.3f %9d %9d %6.3f\n", c, ma, mb, ma ? mb / ma : 0, a[1], b[1], a[1] ? b[1] / a[1] : 0
		}
	}' "$out/raw.txt" | { read -r h; echo "$h"; sort; } | tee "$out/table.txt"
