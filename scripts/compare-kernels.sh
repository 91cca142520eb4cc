#!/usr/bin/env bash
# The kernel's own vmalloc on two kernels, each as a ratio to this module in
# its own boot: reads the "workloads x targets" table of two `make run`
# outputs (stdout of `make run`, or the guest's console log) and prints a
# Markdown table of ops/s ratios (vmalloc / lazy_vmap, lazy_vmap:nodes /
# lazy_vmap) per workload. Absolute figures across boots are not compared.
#   KERNEL=6.12 make run >a.txt; KERNEL=7.3 make run >b.txt
#   scripts/compare-kernels.sh 6.12=a.txt 7.3=b.txt
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
[ $# -ge 2 ] || die "usage: compare-kernels.sh NAME=LOG NAME=LOG..."
names='' files=()
for a in "$@"; do
	[ -f "${a#*=}" ] || die "compare-kernels: no such log: ${a#*=}"
	names+="${names:+ }${a%%=*}"; files+=("${a#*=}")
done
awk -v names="$names" '
	BEGIN { split(names, name, " ") }
	FNR == 1 { f++ }
	# The console log prefixes nothing; make run output has no prefix; a
	# fresh-check log has a time stamp first: drop a leading number.
	{ line = $0; sub(/^ *[0-9]+\.[0-9]+ /, "", line); n = split(line, w, " ") }
	index(line, "== workloads x targets") == 1 { on = 1; next }
	on && n == 0 { on = 0 }
	on && n > 5 && w[1] != "workload" { ops[f, w[1], w[2]] = w[3]; if (!((w[1]) in seen)) { seen[w[1]] = 1; order[++nw] = w[1] } }
	END {
		printf "| workload |"; for (i = 1; i <= f; i++) printf " vmalloc / lazy_vmap (%s) |", name[i]
		for (i = 1; i <= f; i++) printf " nodes / lazy_vmap (%s) |", name[i]; print ""
		printf "|---|"; for (i = 1; i <= 2 * f; i++) printf "---|"; print ""
		for (j = 1; j <= nw; j++) {
			wl = order[j]; printf "| %s |", wl
			for (i = 1; i <= f; i++) { b = ops[i, wl, "lazy_vmap"]; v = ops[i, wl, "vmalloc"]
				printf " %s |", (b > 0 && v != "" ? sprintf("%.2f", v / b) : "-") }
			for (i = 1; i <= f; i++) { b = ops[i, wl, "lazy_vmap"]; v = ops[i, wl, "lazy_vmap:nodes"]
				printf " %s |", (b > 0 && v != "" ? sprintf("%.2f", v / b) : "-") }
			print ""
		}
	}' "${files[@]}"
