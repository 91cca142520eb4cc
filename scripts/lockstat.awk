# make bench LOCKSTAT=1's table (mawk: awk -F, -f stats.awk -f lockstat.awk
# lockstat-ops.csv lockstat.csv; scripts/bench.sh writes both CSVs).
# Per lock class and vCPU count: contentions and wait time per 10^6 ops,
# the median over the rounds with its 95% interval; exact counts per 1000
# ops (node-pool hits, tree-lock acquisitions, purges, flush rounds, IPIs)
# and IPIs per flush round the same way; and the
# issue's goal, nodes' tree-lock contentions per op over ordered's, taken
# per round (both ran in it back to back) and summarised the same way.
# make test checks it on canned CSVs worked by hand.
# First file: the runs (cpus, workload, impl, round) and their ops and
# counts; second: the lock classes. A class a run did not take at all
# has no line for that run: 0 contentions there.
FNR == 1 { f++; next }
f == 1 { r = $1 SUBSEP $2 SUBSEP $3; ops[r, $4] = $5; if ($4 > nr[r]) nr[r] = $4
	ph[r, $4] = $6; tl[r, $4] = $7; pu[r, $4] = $8; ip[r, $4] = $9; fr[r, $4] = $10; cp[$1] = 1
	if (!(($2, $3) in wi)) { wi[$2, $3] = 1; wlim[++nwi] = $2 SUBSEP $3 }
	next }
{ k = $2 SUBSEP $3 SUBSEP $6; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
	cont[$1, k, $4] = $7; wait[$1, k, $4] = $8 }
# fig(C, K, A): median [lo-hi] over the rounds of A per 10^6 ops.
function fig(c, k, a,    r, i, m, v, x) {
	split(k, p, SUBSEP); r = c SUBSEP p[1] SUBSEP p[2]; m = nr[r]
	if (m == 0) return "-"
	for (i = 1; i <= m; i++) v[1, i] = ops[r, i] > 0 ? 1e6 * a[c, k, i] / ops[r, i] : 0
	x = med(v, 1, m)
	return sprintf("%.0f [%.0f-%.0f]", x, lo, hi)
}
function fc(c, k) { return fig(c, k, cont) }
function fw(c, k) { return fig(c, k, wait) }
# kop(C, W, I, A): median [lo-hi] over the rounds of A per 1000 ops.
function kop(c, w, i, a,    r, j, m, v, x) {
	r = c SUBSEP w SUBSEP i; m = nr[r]
	if (m == 0 || a[r, 1] !~ /^[0-9]+$/) return "-"
	for (j = 1; j <= m; j++) v[1, j] = ops[r, j] > 0 ? 1000 * a[r, j] / ops[r, j] : 0
	x = med(v, 1, m)
	return sprintf("%.0f [%.0f-%.0f]", x, lo, hi)
}
# per_round(C, W, I): IPIs per flush round, the median [lo-hi] over the
# rounds that flushed.
function per_round(c, w, i,    r, j, m, v, x) {
	r = c SUBSEP w SUBSEP i; m = 0
	if (fr[r, 1] !~ /^[0-9]+$/) return "-"
	for (j = 1; j <= nr[r]; j++) if (fr[r, j] > 0) v[1, ++m] = ip[r, j] / fr[r, j]
	if (m == 0) return "-"
	x = med(v, 1, m)
	return sprintf("%.1f [%.1f-%.1f]", x, lo, hi)
}
END {
	nc = 0; for (x in cp) cpu[++nc] = x + 0
	for (i = 1; i <= nc; i++) for (j = i + 1; j <= nc; j++) if (cpu[j] < cpu[i]) { t = cpu[i]; cpu[i] = cpu[j]; cpu[j] = t }
	# Sorted by workload, impl, class; a class no run of that impl contended
	# (every interval [0-0]) is left out, with its wait time.
	for (q = 1; q <= n; q++) for (r = q + 1; r <= n; r++) if (order[r] < order[q]) { t = order[q]; order[q] = order[r]; order[r] = t }
	print "Contentions per 10^6 ops, median [95% interval] over the rounds, at each vCPU count (threads = vCPUs);"
	print "classes never contended left out:"
	printf "%-14s %-24s %-22s", "workload", "impl", "lock class"
	for (i = 1; i <= nc; i++) printf " %24s", "@" cpu[i] " vCPUs"
	print ""
	shown = 0
	for (q = 1; q <= n; q++) { split(order[q], g, SUBSEP)
		line = sprintf("%-14s %-24s %-22s", g[1], g[2], g[3]); any = 0
		for (i = 1; i <= nc; i++) { x = fc(cpu[i], order[q]); if (x != "0 [0-0]" && x != "-") any = 1; line = line sprintf(" %24s", x) }
		if (!any) continue
		print line; keep[++shown] = order[q] }
	print ""
	print "Wait time, us per 10^6 ops, median [95% interval], of the same classes:"
	for (q = 1; q <= shown; q++) { split(keep[q], g, SUBSEP)
		printf "%-14s %-24s %-22s", g[1], g[2], g[3]
		for (i = 1; i <= nc; i++) printf " %24s", fw(cpu[i], keep[q])
		print "" }
	print ""
	print "Exact counts per 1000 ops, median [95% interval]: node-pool hits, tree-lock acquisitions, purges,"
	print "flush rounds, IPIs (CAL + TLB, every CPU; the only one the kernel's vmalloc has), and IPIs per flush round:"
	nm = split("pool hits|tree locks|purges|flush rounds|IPIs", rn, "|")
	for (q = 1; q <= nwi; q++) { split(wlim[q], g, SUBSEP)
		for (e = 1; e <= nm; e++) {
			if (g[2] == "vmalloc" && rn[e] != "IPIs") continue
			printf "%-14s %-24s %-22s", g[1], g[2], rn[e]
			for (i = 1; i <= nc; i++) printf " %24s", e == 1 ? kop(cpu[i], g[1], g[2], ph) : e == 2 ? kop(cpu[i], g[1], g[2], tl) : \
				e == 3 ? kop(cpu[i], g[1], g[2], pu) : e == 4 ? kop(cpu[i], g[1], g[2], fr) : kop(cpu[i], g[1], g[2], ip)
			print "" }
		if (g[2] == "vmalloc") continue
		printf "%-14s %-24s %-22s", g[1], g[2], "IPIs/flush round"
		for (i = 1; i <= nc; i++) printf " %24s", per_round(cpu[i], g[1], g[2])
		print "" }
	print ""
	# The goal: nodes' tree-lock contentions per op over ordered's, per
	# round (both ran in the same round, back to back).
	print "nodes / ordered (each nodes impl against lazy_vmap, mode ordered), tree-lock (lazy_vmap_area_lock)"
	print "contentions per op, per round: median [95% interval]:"
	for (q = 1; q <= nwi; q++) { split(wlim[q], g, SUBSEP)
		if (g[2] !~ /^lazy_vmap:nodes/) continue
		printf "%-14s %-47s", g[1], g[2]
		for (i = 1; i <= nc; i++) {
			a = cpu[i] SUBSEP g[1] SUBSEP "lazy_vmap"; b = cpu[i] SUBSEP g[1] SUBSEP g[2]
			ka = g[1] SUBSEP "lazy_vmap" SUBSEP "lazy_vmap_area_lock"; kb = g[1] SUBSEP g[2] SUBSEP "lazy_vmap_area_lock"
			m = nr[a] < nr[b] ? nr[a] : nr[b]; got = 0
			for (j = 1; j <= m; j++) {
				xa = ops[a, j] > 0 ? cont[cpu[i], ka, j] / ops[a, j] : 0
				xb = ops[b, j] > 0 ? cont[cpu[i], kb, j] / ops[b, j] : 0
				if (xa > 0) { v[1, ++got] = xb / xa }
			}
			if (got == 0) { printf " %24s", "-"; continue }
			x = med(v, 1, got)
			printf " %24s", sprintf("%.2f [%.2f-%.2f]", x, lo, hi)
		}
		print "" }
	m = nr[cpu[1] SUBSEP wlim[1]]
	printf "(%d rounds per cell; the interval: order statistics of the %d values, %.1f%% coverage)\n", m, m, 100 * coverage(m)
}
