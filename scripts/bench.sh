#!/usr/bin/env bash
# make bench [QUICK=1] [ICOUNT=1] [LOCKSTAT=1]: one guest boot (TCG, 4
# vCPUs) measuring every impl on every workload and thread count,
# interleaved, each cell the median of REPEATS runs (6) with its 95%
# interval; ICOUNT=1 under QEMU's -icount shift=0,sleep=off (time counts
# instructions); LOCKSTAT=1 the lock contention view instead (below).
# Writes out/bench/results.csv, prints the table, and plots
# out/bench/bench.png. QUICK=1: 100 ms runs, 1 thread, 1 repeat, 1000 busy
# areas (about two minutes under TCG; test_vmalloc's own setups dominate).
# Fails (exit 1, last line "error: bench: FAIL: ...") if the guest run failed (a
# kernel report, a run with no ops or that did not quiesce: "# not
# quiesced after ..." in the output), or its "BENCH errors=0" line is
# missing; the table and plot are still written for what was measured.
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
"$TOP/scripts/setup.sh"
out=$TOP/out/bench
mkdir -p "$out"

# LOCKSTAT=1: the lock contention view instead, on the lockstat kernel
# (qemu/kernel-lockstat.config: a third cached kernel), one boot per vCPU
# count (LOCK_SMP, default 1 2 4 8), threads = vCPUs: contentions and wait
# time per 10^6 ops of every lock class of this module's allocator and of
# the kernel's vmalloc (qemu/lockstat.sh), for ordered, nodes and vmalloc,
# LOCK_REPEATS rounds (5) of interleaved runs: each figure the median over
# the rounds with its 95% interval (scripts/stats.awk), and the goal's
# ratio (nodes' tree-lock contentions over ordered's) taken per round.
if [ "${LOCKSTAT:-0}" = 1 ]; then
	export LOCKSTAT
	raw=$out/raw-lockstat.txt
	: >"$raw"
	why=()
	for smp in ${LOCK_SMP:-1 2 4 8}; do
		{
			echo "BENCH_MS=${BENCH_MS:-1000} REPEATS=${LOCK_REPEATS:-5} WORKLOADS='${WORKLOADS:-fix_size:1 random_size:1}'" \
				"IMPLS='${IMPLS:-lazy_vmap lazy_vmap:nodes lazy_vmap:nodes/quarter vmalloc}'"
			cat "$TOP/qemu/lockstat.sh"
		} >"$out/lockstat-guest.sh"
		say "bench: lock_stat, $smp vCPUs"
		set +e
		"$TOP/scripts/guest.sh" "$out/lockstat-guest.sh" --smp "$smp" --mem 2G --timeout 3000 |
			tee -a "$raw" | grep -Ev '^(LOCK|LOPS) ' >&2
		rc=${PIPESTATUS[0]}
		set -e
		[ "$rc" = 0 ] || why+=("lock_stat guest at $smp vCPUs failed (exit $rc)")
	done
	echo "cpus,workload,impl,round,ops,class,contentions,waittime_total_us,acquisitions" >"$out/lockstat.csv"
	awk '$1 == "LOCK" { print $2 "," $3 "," $4 "," $5 "," $6 "," $7 "," $8 "," $9 "," $10 }' "$raw" >>"$out/lockstat.csv"
	echo "cpus,workload,impl,round,ops,pool_hits,tree_locks,purges,ipis,flush_rounds,freed_pages" >"$out/lockstat-ops.csv"
	awk '$1 == "LOPS" { $1 = ""; sub(/^ /, ""); gsub(/ /, ","); print }' "$raw" >>"$out/lockstat-ops.csv"
	awk -F, -f "$TOP/scripts/stats.awk" -f "$TOP/scripts/lockstat.awk" "$out/lockstat-ops.csv" "$out/lockstat.csv" |
		tee "$out/lockstat.txt"
	echo "(the lockstat kernel is lockdep's: every lock op costs more than on a production kernel, so compare"
	echo " classes and vCPU counts, not absolute times; TCG: the vCPUs share 2 host cores)"
	say "bench: wrote $out/lockstat.csv, $out/lockstat-ops.csv, $out/lockstat.txt"
	ne=$(grep -c '^LOCKSTAT errors=0$' "$raw" || true)
	read -ra smps <<<"${LOCK_SMP:-1 2 4 8}"
	[ "$ne" = ${#smps[@]} ] || why+=("$((${#smps[@]} - ne)) of ${#smps[@]} lock_stat guests did not end with 'LOCKSTAT errors=0'")
	[ ${#why[@]} -eq 0 ] || die "bench: FAIL: $(printf '%s; ' "${why[@]}" | sed 's/; $//')"
	exit 0
fi
if [ "${QUICK:-0}" = 1 ]; then
	params="BENCH_MS=100 REPEATS=1 THREADS=1 BLOCK_THREADS=1 BUSY_SCALING=0 BUSY_AREAS=1000"
else
	params="BENCH_MS=${BENCH_MS:-1000} REPEATS=${REPEATS:-6} THREADS='1 2 4' BLOCK_THREADS='1 4' BUSY_SCALING=1 BUSY_AREAS=0"
fi
# IMPLS, WORKLOADS: a subset of the guest's lists (qemu/bench.sh), e.g.
# IMPLS='lazy_vmap lazy_vmap:nodes vmalloc floor'.
[ -n "${IMPLS:-}" ] && params="$params IMPLS='$IMPLS'"
[ -n "${WORKLOADS:-}" ] && params="$params WORKLOADS='$WORKLOADS'"
# ICOUNT=1: QEMU's -icount (guest.sh passes it on); the CSV says which clock.
clock=tcg
[ "${ICOUNT:-0}" = 1 ] && clock=icount
{ echo "$params"; cat "$TOP/qemu/bench.sh"; } >"$out/bench-guest.sh"
say "bench: $params (progress below; full console in out/guest/bench-guest.log)"
set +e
"$TOP/scripts/guest.sh" "$out/bench-guest.sh" --mem 2G --timeout 5000 | tee "$out/raw.txt" | grep -v '^RUN ' >&2
rc=${PIPESTATUS[0]}
set -e
why=()
[ "$rc" = 0 ] || why+=("guest run failed (exit $rc; see out/guest/bench-guest.log)")
nq=$(grep -c '^# not quiesced' "$out/raw.txt" || true)
[ "$nq" = 0 ] || why+=("$nq runs not quiesced")
nz=$(grep -c '^# no ops' "$out/raw.txt" || true)
[ "$nz" = 0 ] || why+=("$nz runs with no ops")
grep -qx 'BENCH errors=0' "$out/raw.txt" || why+=("no 'BENCH errors=0' line")

# Per cell: the median over the repeats, with a distribution-free 95%
# confidence interval from the order statistics (below 6 repeats, (min,
# max), whose coverage the table says). Ratios (vs_vmalloc, vs_floor,
# vs_ordered) are taken per round (the r-th run of both cells, which ran
# back to back) and summarised the same way; a ratio whose interval holds 1 is marked "=" (no difference).
# Event counts per 1000 ops are exact, not sampled: flush rounds, IPIs
# (CAL + TLB of /proc/interrupts, every CPU), node-pool hits, tree-lock
# acquisitions, the purges' subtractions from the shared lazy counter.
# (med, ci_j, coverage: scripts/stats.awk.)
awk -f "$TOP/scripts/stats.awk" -f /dev/stdin CSV="$out/results.csv" CLOCK="$clock" "$out/raw.txt" <<'AWK' | tee "$out/table.txt"

	$1 == "RUN" { k = $2 SUBSEP $3 SUBSEP $4; n[k]++; ns[k, n[k]] = $5; ipi[k, n[k]] = $6; ops[k, n[k]] = $7
		pu[k, n[k]] = $8; sp[k, n[k]] = $9; ap[k, n[k]] = $10; fp[k, n[k]] = $11; f3[k, n[k]] = $12; hm[k, n[k]] = $13
		fr[k, n[k]] = $14; ic[k, n[k]] = $15; ph[k, n[k]] = $16; tl[k, n[k]] = $17; cs[k, n[k]] = $18
		if (!(k in seen)) { seen[k] = 1; order[++nk] = k } }
	# ratio(K, B): the per-round ratio of cell K to cell B: its median, "=" if
	# its interval holds 1; "-" without B.
	function ratio(k, b,    m, i, r, x) {
		if (!(b in n) || n[b] == 0) return "-"
		m = n[k] < n[b] ? n[k] : n[b]
		for (i = 1; i <= m; i++) r[1, i] = (ns[b, i] > 0) ? ns[k, i] / ns[b, i] : 0
		x = med(r, 1, m)
		return sprintf("%.2f%s", x, (m > 1 && lo <= 1 && hi >= 1 && k != b) ? "=" : "")
	}
	# Median of a column that may be "-" (no such event for this impl): "".
	function dash(v) { return v == "" ? "-" : v }
	function opt(a, k, m) { return (a[k, 1] ~ /^[0-9]+$/) ? sprintf("%.0f", med(a, k, m)) : "" }
	# per_kop(A, K, M): the median count per 1000 ops, "" if not counted.
	function per_kop(a, k, m,    i, r) {
		if (a[k, 1] !~ /^[0-9]+$/) return ""
		for (i = 1; i <= m; i++) r[1, i] = (ops[k, i] > 0) ? 1000 * a[k, i] / ops[k, i] : 0
		return sprintf("%.2f", med(r, 1, m))
	}
	END {
		print "workload,threads,impl,ns_per_op,ipis_per_mpage,ops,alloc_p99_ns,free_p99_ns,free_p999_ns,purge_hold_max_ns,ci_lo_ns,ci_hi_ns,repeats,clock,flush_rounds_per_kop,ipis_per_kop,pool_hits_per_kop,tree_locks_per_kop,counter_subs_per_kop" > CSV
		for (i = 1; i <= nk; i++) {
			k = order[i]; split(k, f, SUBSEP); m = n[k]
			x = med(ns, k, m); l = lo; h = hi
			printf "%s,%s,%s,%d,%d,%d,%s,%s,%s,%s,%d,%d,%d,%s,%s,%s,%s,%s,%s\n", f[1], f[2], f[3], x, med(ipi, k, m), med(ops, k, m),
				opt(ap, k, m), opt(fp, k, m), opt(f3, k, m), opt(hm, k, m), l, h, m, CLOCK,
				per_kop(fr, k, m), per_kop(ic, k, m), per_kop(ph, k, m), per_kop(tl, k, m), per_kop(cs, k, m) > CSV
			cell[f[1], f[2], f[3]] = x; cil[k] = l; cih[k] = h
			if (m > mmax) mmax = m
		}
		printf "%-22s %3s %-23s %10s %21s %12s %10s %9s %11s %7s %13s %9s %9s %9s %9s %8s %8s %8s %8s %8s\n", "workload", "thr", "impl", "ns/op", "95% interval",
			"ipis/Mpage", "vs_vmalloc", "vs_floor", "vs_ordered", "purges", "span_pages", "alloc_p99", "free_p99", "free_p999", "hold_max",
			"fl/kop", "ipi/kop", "pool/kop", "tl/kop", "sub/kop"
		for (i = 1; i <= nk; i++) {
			k = order[i]; split(k, f, SUBSEP); x = cell[f[1], f[2], f[3]]
			# Purges and their flushed span: medians; "-" where not counted (floor).
			p = (pu[k, 1] ~ /^[0-9]+$/) ? sprintf("%.0f", med(pu, k, n[k])) : "-"
			s = (sp[k, 1] ~ /^[0-9]+$/) ? sprintf("%.0f", med(sp, k, n[k])) : "-"
			printf "%-22s %3s %-23s %10d %21s %12d %10s %9s %11s %7s %13s %9s %9s %9s %9s %8s %8s %8s %8s %8s\n", f[1], f[2], f[3], x,
				sprintf("[%d, %d]", cil[k], cih[k]), med(ipi, k, n[k]),
				ratio(k, f[1] SUBSEP f[2] SUBSEP "vmalloc"), ratio(k, f[1] SUBSEP f[2] SUBSEP "floor"),
				ratio(k, f[1] SUBSEP f[2] SUBSEP "lazy_vmap"), p, s,
				dash(opt(ap, k, n[k])), dash(opt(fp, k, n[k])), dash(opt(f3, k, n[k])), dash(opt(hm, k, n[k])),
				dash(per_kop(fr, k, n[k])), dash(per_kop(ic, k, n[k])), dash(per_kop(ph, k, n[k])),
				dash(per_kop(tl, k, n[k])), dash(per_kop(cs, k, n[k]))
		}
		printf "(%d repeats: each interval is (min, max) below 6, coverage %.1f%%; clock %s)\n", mmax, 100 * coverage(mmax), CLOCK
		# The vmap blocks: ram (ours) over kram (the kernel), per round.
		printf "\n%-22s %3s %-10s %10s %10s %9s\n", "vmap blocks", "thr", "impl", "ram ns/op", "kram ns/op", "ram/kram"
		for (i = 1; i <= nk; i++) {
			k = order[i]; split(k, f, SUBSEP)
			if (f[3] !~ /^ram/) continue
			x = cell[f[1], f[2], f[3]]; kr = cell[f[1], f[2], "k" f[3]]
			printf "%-22s %3s %-10s %10d %10d %9s\n", f[1], f[2], f[3], x, kr, ratio(k, f[1] SUBSEP f[2] SUBSEP "k" f[3])
		}
	}
AWK
echo "(ns/op: median per thread over the repeats, with its 95% interval (order statistics); vs_*: the median"
echo " of per-round ratios, '=': its interval holds 1, no difference; vs_ordered: to impl lazy_vmap, mode ordered;"
echo " clock $clock: $([ "$clock" = icount ] && echo "QEMU -icount, time counts instructions: CPU work, not what a flush or an IPI costs on hardware" || echo "plain TCG, wall clock of a shared machine: compare ratios");"
echo " fl/kop, ipi/kop, pool/kop: flush rounds, IPIs (every CPU) and node-pool hits per 1000 ops, exact counts;"
echo " tl/kop, sub/kop: tree-lock (free-area lock) acquisitions and purges' subtractions from the shared lazy"
echo " counter per 1000 ops, exact counts;"
echo " purges, span_pages: medians of purges that gave back areas and the pages their flushes spanned,"
echo " the kernel's from its vmalloc:purge_vmap_area_lazy events for vmalloc and test_vmalloc;"
echo " alloc_p99, free_p99, free_p999: ns, medians over the repeats of the stress threads' percentiles;"
echo " hold_max: the longest tree-lock hold of a purge's give-back, ns; '-': no such event for the impl;"
echo " ram, kram: vm_map_ram()/vm_unmap_ram() of this module and of the kernel, _ua10: with a"
echo " vm_unmap_aliases() every 10 ms; the issue's goal for ram/kram is <= 0.8)"

# Plot: ns/op per cell, impls side by side, and the ratio to vmalloc.
awk -F, 'NR > 1 && $3 !~ /busy/ { cell = $1 "/" $2; if (!(cell in s)) { s[cell] = 1; c[++nc] = cell }
		if (!($3 in si)) { si[$3] = 1; im[++ni] = $3 } v[cell, $3] = $4 }
	END { printf "cell"; for (j = 1; j <= ni; j++) printf " %s", im[j]; print ""
		for (i = 1; i <= nc; i++) { printf "%s", c[i]; for (j = 1; j <= ni; j++) printf " %s", (c[i], im[j]) in v ? v[c[i], im[j]] : "NaN"; print "" } }' \
	"$out/results.csv" >"$out/plot.dat"
# The same with each impl's 95% interval beside its median (median lo hi).
awk -F, 'NR > 1 && $3 !~ /busy/ { cell = $1 "/" $2; if (!(cell in s)) { s[cell] = 1; c[++nc] = cell }
		if (!($3 in si)) { si[$3] = 1; im[++ni] = $3 } v[cell, $3] = $4 " " $11 " " $12 }
	END { printf "cell"; for (j = 1; j <= ni; j++) printf " %s lo hi", im[j]; print ""
		for (i = 1; i <= nc; i++) { printf "%s", c[i]; for (j = 1; j <= ni; j++) printf " %s", (c[i], im[j]) in v ? v[c[i], im[j]] : "NaN NaN NaN"; print "" } }' \
	"$out/results.csv" >"$out/plot-ci.dat"
# The tail: alloc and free p99 per cell and impl (test_vmalloc has none).
for col in 7 8; do
	awk -F, -v c=$col 'NR > 1 && $3 !~ /busy/ && $c != "" { cell = $1 "/" $2; if (!(cell in s)) { s[cell] = 1; cl[++nc] = cell }
			if (!($3 in si)) { si[$3] = 1; im[++ni] = $3 } v[cell, $3] = $c }
		END { printf "cell"; for (j = 1; j <= ni; j++) printf " %s", im[j]; print ""
			for (i = 1; i <= nc; i++) { printf "%s", cl[i]; for (j = 1; j <= ni; j++) printf " %s", (cl[i], im[j]) in v ? v[cl[i], im[j]] : "NaN"; print "" } }' \
		"$out/results.csv" >"$out/plot-p99-$col.dat"
done
timpls=$(head -1 "$out/plot-p99-7.dat" | wc -w)
impls=$(head -1 "$out/plot.dat" | wc -w)
vm=$(head -1 "$out/plot.dat" | tr ' ' '\n' | grep -nx vmalloc | cut -d: -f1 || true)
if [ -z "$vm" ]; then
	die "bench: FAIL: no vmalloc cell to plot; $(printf '%s; ' "${why[@]}" | sed 's/; $//')"
fi
gnuplot <<GP
set terminal pngcairo size 1600,1800 noenhanced
set output "$out/bench.png"
set multiplot layout 4,1 title "lazy_vmap benchmark (QEMU TCG, 4 vCPUs; median ns per op per thread)"
set style data histograms
set style histogram clustered gap 2
set style fill solid 0.8 border -1
set key outside right top
set xtics rotate by -30
set grid ytics
set ylabel "ns/op"
set logscale y
set style histogram errorbars gap 2 lw 1
set title "median ns/op, bars: 95% interval over the repeats"
plot for [i=0:$((impls - 2))] "$out/plot-ci.dat" using (column(2 + 3 * i)):(column(3 + 3 * i)):(column(4 + 3 * i)):xtic(1) title columnheader(2 + 3 * i)
unset title
set style histogram clustered gap 2
set ylabel "ratio to vmalloc (log)"
plot for [i=2:$impls] "$out/plot.dat" using (column(i) / column($vm)):xtic(1) title columnheader(i)
set ylabel "alloc p99 ns"
plot for [i=2:$timpls] "$out/plot-p99-7.dat" using i:xtic(1) title columnheader(i)
set ylabel "free p99 ns"
plot for [i=2:$timpls] "$out/plot-p99-8.dat" using i:xtic(1) title columnheader(i)
unset multiplot
GP
say "bench: wrote $out/results.csv, $out/table.txt, $out/bench.png"

# Scaling view: ordered, nodes and vmalloc at 1 and 8 threads on an 8-vCPU
# guest (TCG on the host's cores: only the growth ratios mean anything).
# Default on for the full bench, off for QUICK (SCALING=1 to force).
if [ "${SCALING:-$([ "${QUICK:-0}" = 1 ] && echo 0 || echo 1)}" = 1 ]; then
	if [ "${QUICK:-0}" = 1 ]; then sms=100 srep=1; else sms=${BENCH_MS:-1000} srep=${REPEATS:-3}; fi
	sparams="BENCH_MS=$sms REPEATS=$srep THREADS='1 8' BUSY_SCALING=0 BUSY_AREAS=0 IMPLS='lazy_vmap lazy_vmap:nodes vmalloc' WORKLOADS='fix_size:1 random_size:1 full_fit:1'"
	{ echo "$sparams"; cat "$TOP/qemu/bench.sh"; } >"$out/scaling-guest.sh"
	say "bench: scaling view, 8 vCPUs: $sparams"
	set +e
	"$TOP/scripts/guest.sh" "$out/scaling-guest.sh" --smp 8 --mem 2G --timeout 5000 | tee "$out/raw-scaling.txt" | grep -v '^RUN ' >&2
	src=${PIPESTATUS[0]}
	set -e
	[ "$src" = 0 ] || why+=("scaling guest run failed (exit $src)")
	grep -qx 'BENCH errors=0' "$out/raw-scaling.txt" || why+=("scaling: no 'BENCH errors=0' line")
	awk '
		$1 == "RUN" { k = $2 SUBSEP $4; v[k, $3, ++n[k, $3]] = $5; if (!(k in seen)) { seen[k] = 1; order[++nk] = k } }
		function med(k, t,    m, i, j, x, a) {
			m = n[k, t]; for (i = 1; i <= m; i++) a[i] = v[k, t, i] + 0
			for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
			return m ? a[int((m + 1) / 2)] : 0
		}
		END {
			printf "%-14s %-18s %12s %12s %10s %14s\n", "workload", "impl", "ns/op@1", "ns/op@8", "growth", "vs_vmalloc"
			for (i = 1; i <= nk; i++) { split(order[i], f, SUBSEP); g[order[i]] = med(order[i], 1) > 0 ? med(order[i], 8) / med(order[i], 1) : 0 }
			for (i = 1; i <= nk; i++) {
				split(order[i], f, SUBSEP); vm = g[f[1] SUBSEP "vmalloc"]
				printf "%-14s %-18s %12d %12d %10.2f %14s\n", f[1], f[2], med(order[i], 1), med(order[i], 8), g[order[i]],
					(vm > 0 ? sprintf("%.2f", g[order[i]] / vm) : "-")
			}
		}' "$out/raw-scaling.txt" | tee "$out/scaling.txt"
	echo "(growth: ns/op per thread at 8 threads over 1 thread; vs_vmalloc: that growth over vmalloc's; TCG, 8 vCPUs on the host's cores: ratios only)"
fi
if [ ${#why[@]} -ne 0 ]; then
	die "bench: FAIL: $(printf '%s; ' "${why[@]}" | sed 's/; $//')"
fi
