#!/usr/bin/env bash
# make bench-history: the costs of bug per-area-sub and bug system-wq
# (docs/history.md) beside bug none, at 1, 2, 4 and 8 vCPUs, one boot per
# count: counter subtractions per purge (exact), purge p99, drains on a
# per-CPU worker, the drain's mean run time and drains over 10 ms (medians
# of ROUNDS alternating 1 s runs). A benchmark: it prints figures and
# asserts nothing but that every run quiesced. Writes
# out/bench/history.csv.
#   scripts/bench-history.sh     (SMP="1 2 4 8" ROUNDS=3)
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
out=$TOP/out/bench
mkdir -p "$out"
raw=$out/raw-history.txt
: >"$raw"
for smp in ${SMP:-1 2 4 8}; do
	say "bench-history: $smp vCPUs"
	{ echo "ROUNDS=${ROUNDS:-3}"; cat "$TOP/qemu/history-bench.sh"; } >"$out/history-guest.sh"
	"$TOP/scripts/guest.sh" "$out/history-guest.sh" --smp "$smp" --mem 2G --timeout 1800 >>"$raw" 2>&1 ||
		die "bench-history: the guest at $smp vCPUs failed (see $raw and out/guest/history-guest.log)"
done
csv=$out/history.csv
echo "vcpus,bug,round,purges,areas,counter_subs,purge_p99_ns,drains,drains_bound,drain_mean_us,drains_over_10ms" >"$csv"
grep -a '^HIST ' "$raw" | tr -d '\r' | cut -d' ' -f2- | tr ' ' ',' >>"$csv"
# Medians over the rounds, per (vcpus, bug).
awk -F, 'NR > 1 { k = $1 " " $2; n[k]++; s[k, n[k]] = $6 / ($4 > 0 ? $4 : 1); p[k, n[k]] = $7
		b[k, n[k]] = ($8 > 0 ? $9 / $8 : 0); m[k, n[k]] = $10; o[k, n[k]] = $11; order[++no] = k }
	function med(a, k, c,   i, j, t, v) { for (i = 1; i <= c; i++) v[i] = a[k, i]
		for (i = 2; i <= c; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
		return c % 2 ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2 }
	END { printf "%5s %-13s %14s %14s %13s %14s %10s\n", "vcpus", "bug", "subs/purge", "purge_p99_ms", "drains_bound", "drain_mean_ms", "over_10ms"
		for (i = 1; i <= no; i++) { k = order[i]; if (k in seen) continue; seen[k] = 1; split(k, kk, " "); c = n[k]
			printf "%5s %-13s %14.1f %14.1f %13.2f %14.1f %10s\n", kk[1], kk[2], med(s, k, c), med(p, k, c) / 1e6,
				med(b, k, c), med(m, k, c) / 1000, med(o, k, c) } }' "$csv"
echo "(medians of ${ROUNDS:-3} rounds; out/bench/history.csv has every run; compare within a row's vCPU count)"
