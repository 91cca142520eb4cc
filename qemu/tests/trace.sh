# Trace events: the module's lazy_vmap:* events have the fields and formats of
# the kernel's vmalloc:* events, fire once per reservation, lazy free and
# purge with the values the module counts in its stats (in every mode, and
# for failed reservations and empty purges), and the kernel's own vmalloc:*
# events show the vmalloc target's allocations, frees and purges.
#
# Two trace instances with their own buffers: "lv" holds the lazy_vmap:*
# events, "kv" the vmalloc:* ones (the trace file prints an event's name but
# not its system, and the names are the same). Each run clears both, runs
# the stress, stops them and reads them; a run whose buffer lost an event
# fails its "complete" check.
# shellcheck shell=sh disable=SC2086,SC2046,SC2154 # busybox sh: lists split on purpose; tally's counts are assigned through eval
T=/sys/kernel/tracing
LV=$T/instances/lv
KV=$T/instances/kv
EVENTS="alloc_vmap_area free_vmap_area_noflush purge_vmap_area_lazy"
MODES="buggy drop-bugon purge-lock ordered"
set -- $MODES; nm=$#
# 5 up front, 12 per mode, 5 for failed reservations, 6 for vmalloc, 1 at the end.
plan $((5 + 12 * nm + 5 + 5 + 6 + 1))

check "insmod" insmod $LAZY_VMAP_KO
check "tracefs has both systems' events" test -d $T/events/lazy_vmap -a -d $T/events/vmalloc
# The fields (names, types, offsets, sizes) and the print format, as the
# format files describe them to trace tools.
fmt() { grep -E '^[[:space:]]*field:|^print fmt:' $T/events/$1/$2/format; }
for e in $EVENTS; do
	a=$(fmt lazy_vmap $e); b=$(fmt vmalloc $e)
	check "$e: lazy_vmap's fields and format are vmalloc's" [ -n "$a" -a "$a" = "$b" ]
done

mkdir $LV $KV
for i in $LV $KV; do
	echo 0 > $i/tracing_on
	echo 16384 > $i/buffer_size_kb
done
for e in $EVENTS; do
	echo 1 > $LV/events/lazy_vmap/$e/enable
	echo 1 > $KV/events/vmalloc/$e/enable
done

# trace_begin / trace_end: clear both buffers, trace, stop, read them into
# /tmp/lv.txt and /tmp/kv.txt.
trace_begin() { for i in $LV $KV; do echo > $i/trace; echo 1 > $i/tracing_on; done; }
trace_end() {
	for i in $LV $KV; do echo 0 > $i/tracing_on; done
	cat $LV/trace > /tmp/lv.txt; cat $KV/trace > /tmp/kv.txt
}
# complete INSTANCE FILE: nothing was overwritten or dropped.
complete() {
	lost=$(cat $1/per_cpu/cpu*/stats | awk '/^(overrun|dropped events):/ { s += $NF } END { print s + 0 }')
	set -- $(sed -n 's/.*entries-in-buffer\/entries-written: \([0-9]*\)\/\([0-9]*\).*/\1 \2/p; 20q' $2)
	[ "$lost" = 0 ] && [ -n "$1" ] && [ "$1" = "$2" ]
}
# tally FILE [MAX]: one pass over a trace (busybox awk under TCG reads a
# hundred thousand lines in seconds; a grep per number took minutes).
# Sets a0/a1: alloc_vmap_area events with failed=0/1 (s_a0: those of the
# stress threads, comm lazy_vmap/N), ranges: distinct vstart-vend pairs,
# rpages: the pages from the last pair's vstart to its vend, a1vend: failed
# events at va_start = vend (the kernel's failure report; va_start is
# printed in decimal); fr: free_vmap_area_noflush events (s_fr: of the
# stress threads; frmax: with nr_lazy_max=MAX); pu/pe: purge_vmap_area_lazy
# events with num_purged > 0 / = 0, np: the sum of num_purged, sp: the pages
# of end - start summed over pu, lastpe: the last purge event is the empty
# one (start=ULONG_MAX end=0). Addresses parse exactly as doubles: they are
# page-aligned (the empty purge's start is not, and is not parsed).
cat > /tmp/tally.awk <<'AWK'
function hex(s,   i, v) {
	v = 0; s = tolower(s); sub(/^0x/, "", s)
	for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
	return v
}
# val KEY P: the value of KEY=, looked for in field P first (where the
# format puts it), then in every field. The lines are read once, with one
# pattern per line: a hundred thousand of them per run under TCG.
function val(k, p,   i) {
	if (index($p, k) == 1) return substr($p, length(k) + 1)
	for (i = 1; i <= NF; i++) if (index($i, k) == 1) return substr($i, length(k) + 1)
	return ""
}
# e: the field of the event's name ("comm-pid [cpu] flags time: name: ...").
{
	e = 5
	if (index($e, "_vmap_area") == 0) for (e = 1; e < NF && $e !~ /^[a-z_]+_vmap_area[a-z_]*:$/; e++);
	ev = $e; stress = index($1, "lazy_vmap/") == 1
}
ev == "alloc_vmap_area:" {
	f = val("failed=", e + 7); vs = val("vstart=", e + 5); ve = val("vend=", e + 6)
	if (f == 0) { a0++; s_a0 += stress } else a1++
	r = vs "-" ve
	if (!(r in seen)) { seen[r] = 1; ranges++; rpages = (hex(ve) - hex(vs)) / 4096 }
	if (f == 1) { va = $(e + 1) == "va_start:" ? $(e + 2) : ""; if (va + 0 == hex(ve)) a1vend++ }
}
ev == "free_vmap_area_noflush:" { fr++; s_fr += stress; if (val("nr_lazy_max=", e + 3) == max) frmax++ }
ev == "purge_vmap_area_lazy:" {
	n = val("num_purged=", e + 3)
	last = ($0 ~ /start=0xffffffffffffffff end=0x0 num_purged=0$/)
	if (n > 0) { pu++; np += n; sp += (hex(val("end=", e + 2)) - hex(val("start=", e + 1))) / 4096 } else pe++
}
END {
	printf "a0=%d a1=%d s_a0=%d ranges=%d rpages=%d a1vend=%d fr=%d s_fr=%d frmax=%d pu=%d pe=%d np=%d sp=%.0f lastpe=%d\n", \
		a0, a1, s_a0, ranges, rpages, a1vend, fr, s_fr, frmax, pu, pe, np, sp, last
}
AWK
tally() { eval $(awk -v max="$2" -f /tmp/tally.awk $1); }
# (mark, then d KEY, of lib.sh: how much a stats key moved since the mark.)
# show FILE: the first line of each event, as a comment.
show() { for e in $EVENTS; do grep -m1 " $e: " $1 | sed 's/^ */#   /'; done; }

put threads 4; put workload fix_size; put nr_pages 1; put lazy_max_pages 256
pages=$(stat arena_pages)
for m in $MODES; do
	put mode $m
	mark
	trace_begin
	check "$m: stress 500 ms, a purge on demand, then one of nothing" \
		eval 'run_ms 500 && put purge 1 && put purge 1'
	trace_end
	f=/tmp/lv.txt
	check "$m: lazy_vmap trace complete" complete $LV $f
	tally $f "$(stat lazy_max_pages)"
	cmp_ "$m: alloc_vmap_area failed=0 events = allocs" "$a0" -eq "$(d allocs)"
	cmp_ "$m: alloc_vmap_area failed=1 events = alloc_failures" "$a1" -eq "$(d alloc_failures)"
	check "$m: alloc_vmap_area: one vstart-vend, arena_pages long ($ranges, $rpages)" \
		[ "$ranges $rpages" = "1 $pages" ]
	cmp_ "$m: free_vmap_area_noflush events = frees" "$fr" -eq "$(d frees)"
	cmp_ "$m: every free reports nr_lazy_max=lazy_max_pages" "$frmax" -eq "$fr"
	cmp_ "$m: purge_vmap_area_lazy events with num_purged > 0 = purges" "$pu" -eq "$(d purges)"
	cmp_ "$m: sum of num_purged = purged_areas" "$np" -eq "$(d purged_areas)"
	cmp_ "$m: sum of end - start = flushed_span_pages" "$sp" -eq "$(d flushed_span_pages)"
	check "$m: the last purge, of nothing, reports start=ULONG_MAX end=0 num_purged=0" [ "$lastpe" = 1 ]
	cmp_ "$m: purged by threshold too" "$pu" -gt 1
	echo "# $m: $(wc -l < $f) lines, $pu purges, $pe empty; e.g."
	show $f
done
put mode ordered

# Reservations that cannot succeed: areas larger than the arena. Each one
# purges (nothing: an empty purge), retries and fails; the kernel reports a
# failure at va_start = vend.
put arena_mb 4; put nr_pages 1024; put threads 1
mark
trace_begin
check "failing reservations: stress 200 ms" run_ms 200
trace_end
f=/tmp/lv.txt
check "failing reservations: lazy_vmap trace complete" complete $LV $f
tally $f
cmp_ "failing reservations: failed=1 events = alloc_failures" "$a1" -eq "$(d alloc_failures)"
cmp_ "failing reservations: failures at all" "$a1" -gt 0
cmp_ "failing reservations: each at va_start = vend" "$a1vend" -eq "$a1"
echo "# failing reservations: $a1 failed, $pe empty purges; e.g."
show $f
put arena_mb 128; put nr_pages 1; put threads 4

# Target ram: a block's area is one of the module's vmap areas, traced as
# 6.12 traces new_vmap_block() and free_vmap_block() (vm_map_ram() itself
# has no event): one alloc_vmap_area per block made, one
# free_vmap_area_noflush per block that died (all dirty) or was retired.
put target ram; put unmap_aliases_ms 10
mark
trace_begin
check "ram: stress 500 ms, a purge on demand" eval 'run_ms 500 && put purge 1'
trace_end
f=/tmp/lv.txt
check "ram: lazy_vmap trace complete" complete $LV $f
tally $f
cmp_ "ram: alloc_vmap_area failed=0 events = blocks made" "$a0" -eq "$(d vb_blocks_new)"
cmp_ "ram: free_vmap_area_noflush events = blocks dead or retired" "$fr" -eq \
	$(( $(d vb_blocks_freed) + $(d vb_fragmented_purged) ))
cmp_ "ram: purge_vmap_area_lazy events with num_purged > 0 = purges" "$pu" -eq "$(d purges)"
echo "# ram: $a0 blocks made, $fr freed, $pu purges ($pe empty)"
put target lazy_vmap; put unmap_aliases_ms 0

# The vmalloc target: the kernel's events. Its threshold is
# fls(CPUs) * 32 MiB; 257-page areas (with the guard) reach it in under a
# hundred frees (65-page ones needed 378, and a clean-clone run under load
# made 310 in its second). The allocations and frees of the stress threads
# (comm lazy_vmap/N) are the vmalloc()s and vfree()s of the stress loop.
put target vmalloc; put nr_pages 256
mark
trace_begin
check "vmalloc: stress 1 s" run_stress 1
trace_end
f=/tmp/kv.txt
# shellcheck disable=SC2016 # eval expands them, when check runs it
check "vmalloc: both traces complete" eval 'complete $KV $f && complete $LV /tmp/lv.txt'
cmp_ "vmalloc: no lazy_vmap event" "$(grep -c ': [a-z_]*: ' /tmp/lv.txt)" -eq 0
tally $f
cmp_ "vmalloc: vmalloc:alloc_vmap_area failed=0 of the stress threads = allocs" "$s_a0" -eq "$(d allocs)"
cmp_ "vmalloc: vmalloc:free_vmap_area_noflush of the stress threads = frees" "$s_fr" -eq "$(d frees)"
cmp_ "vmalloc: the kernel purged (vmalloc:purge_vmap_area_lazy, num_purged > 0)" "$pu" -gt 0
echo "# vmalloc: $(wc -l < $f) lines, $pu purges ($pe empty), $np areas purged, $sp pages flushed; e.g."
show $f
put target lazy_vmap

rmdir $LV $KV
check "rmmod" rmmod lazy_vmap
finish
