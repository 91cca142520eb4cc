# Guest-side helpers, prepended to every guest test script (busybox sh).
# Prints KTAP (Documentation/dev-tools/ktap.rst): "KTAP version 1" and the
# plan "1..N" first (`plan N`, before any result), then one "ok N - ..." /
# "not ok N - ..." per check. `finish` fails the suite if the number of
# results differs from the plan, so a check skipped by mistake (or a result
# line lost) cannot pass unnoticed; the host-side runner checks the same.
# shellcheck shell=sh disable=SC2086,SC2046,SC2154 # busybox sh: lists split on purpose; knob names, numbers and fixed paths unquoted; S_* are set by snap (eval)
K=/sys/kernel/lazy_vmap
KTAP_N=0
KTAP_FAILED=0
KTAP_PLAN=''

# plan N: the header, before any result.
plan() {
	# shellcheck disable=SC2015 # the error when either test fails
	[ -z "$KTAP_PLAN" ] && [ $KTAP_N -eq 0 ] || { echo "# plan: called twice or after a result"; exit 1; }
	KTAP_PLAN=$1; echo "KTAP version 1"; echo "1..$1"
}
_ktap() {
	[ -n "$KTAP_PLAN" ] || { echo "# a result before the plan"; exit 1; }
	KTAP_N=$((KTAP_N + 1))
}
ok() { _ktap; echo "ok $KTAP_N - $*"; }
not_ok() { _ktap; KTAP_FAILED=$((KTAP_FAILED + 1)); echo "not ok $KTAP_N - $*"; }
# check DESC CMD...: one test, passing iff CMD succeeds.
check() { d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
# cmp_ DESC A OP B: a numeric comparison, with the numbers in the message.
cmp_() { if test "$2" "$3" "$4" 2>/dev/null; then ok "$1 ($2 $3 $4)"; else not_ok "$1 ($2 $3 $4 is false)"; fi; }
# finish: the suite's exit status: every planned check ran, and passed.
finish() {
	if [ "$KTAP_N" -ne "${KTAP_PLAN:-0}" ]; then
		echo "# planned ${KTAP_PLAN:-none} checks, ran $KTAP_N"; return 1
	fi
	[ "$KTAP_FAILED" -eq 0 ]
}

# Under TCG a $(stat ops) that forks sed took 91 ms, the same with builtins
# in a subshell 27 ms, with builtins alone 4.4 ms (normal kernel, another
# guest running; more on the debug kernel while stress runs), and the
# suites read the stats thousands of times: these helpers use shell
# builtins only. A $(...) around one of them still forks; snap and nap do
# not.
#
# snap: every line of the stats file into a variable, S_<key> (S_ops, ...;
# a "-" of a key is a "_": S_purges_drop_bugon), in one pass, without a fork.
# shellcheck disable=SC3060 # busybox sh has ${var//pattern/string}
snap() { while read -r _k _v; do eval "S_${_k//-/_}=\$_v"; done < $K/stats; }
# mark: remember every stats value as S0_<key>; d KEY: how far KEY has
# moved since the mark (reads the file now; for $(d KEY)).
# shellcheck disable=SC3060 # busybox sh has ${var//pattern/string}
mark() { while read -r _k _v; do eval "S0_${_k//-/_}=\$_v"; done < $K/stats; }
d() {
	# shellcheck disable=SC3060 # busybox sh has ${var//pattern/string}
	while read -r _k _v; do [ "$_k" = "$1" ] && { eval "echo \$(( _v - S0_${1//-/_} ))"; return 0; }; done < $K/stats
}
# stat KEY: a value of the stats file (for $(stat KEY); snap is cheaper).
stat() { while read -r _k _v; do [ "$_k" = "$1" ] && { echo "$_v"; return 0; }; done < $K/stats; }
# knob KNOB: a knob's value into $V, without a fork.
knob() { V=''; IFS= read -r V < $K/$1; }
# is KNOB VALUE: the knob reads VALUE.
is() { knob $1; [ "$V" = "$2" ]; }
# nap SECONDS: sleep (fractions too) without a fork: a read that times out
# on a FIFO nobody writes.
mkfifo /tmp/.nap 2>/dev/null
# shellcheck disable=SC3045 # busybox read has -t, fractions too
nap() { read -r -t "$1" _ <> /tmp/.nap; return 0; }
# put KNOB VALUE: write VALUE (backslash escapes such as \n and \0 expanded,
# no newline added) in one write(); a failed write's error text ("Invalid
# argument", ...) is printed and kept in $PUT_ERR; succeeds iff written.
# (Not for two processes at once: they would share /tmp/.put.err.)
# shellcheck disable=SC3037 # busybox echo has -n and -e
put() {
	PUT_ERR=''
	{ echo -ne "$2" > $K/$1; } 2>/tmp/.put.err
	# shellcheck disable=SC2320 # the echo is the write
	_r=$?
	[ $_r = 0 ] || { read -r PUT_ERR < /tmp/.put.err; [ -z "$PUT_ERR" ] || echo "$PUT_ERR"; }
	return $_r
}
# fails CMD...: succeeds iff CMD fails.
fails() { ! "$@"; }
# refused KNOB VALUE ERRTEXT: the write fails with ERRTEXT and the knob keeps its value.
refused() {
	knob $1; before=$V
	put "$1" "$2" >/dev/null
	r=$?
	knob $1
	case $PUT_ERR in *"$3"*) ;; *) return 1 ;; esac
	[ $r -ne 0 ] && [ "$before" = "$V" ]
}
# run_ms MS: start stress with duration MS milliseconds, wait until it ends
# (fails if it runs a minute longer); run_stress SECONDS: the same in seconds.
run_ms() {
	put duration_ms $1 && put stress 1 || return 1
	i=0
	while knob stress; [ "$V" = 1 ]; do
		nap 0.1; i=$((i + 1)); [ $i -gt $(($1 / 100 + 600)) ] && return 1
	done
	return 0
}
run_stress() { run_ms $(($1 * 1000)); }
# lat EVENT FIELD: a field (count p50 p90 p99 p999 max) of an event's line
# of the latency file; a percentile or max of an event never seen is "-".
lat() {
	awk -v e="$1" -v f="$2" 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
		$1 == e { print (f == "count" || $2 > 0 ? $col[f] : "-") }' $K/latency
}
# quiesce: stop stress, purge, and check the counters are back to zero.
quiesced() {
	put stress 0 && put purge 1 && snap && [ "$S_lazy_pages" = 0 ] && [ "$S_mapped_pages" = 0 ] &&
		[ "$S_live_areas" = 0 ] && [ "$S_vb_blocks" = 0 ] && [ "$S_vb_dirty_pages" = 0 ]
}
# noflush_sees_stale: the self-test's negative control, `selftest
# tlb-noflush`, seen to read a stale entry in one of up to 5 tries (each
# line printed). A try can find none by chance: with PTI (no PCID under
# TCG) a CPU that returns to user space between the warm-up read and the
# check writes CR3, which drops every non-global entry, the stale one too
# (CI 2026-12-03: pti-debug, "cpus=4 fresh=4 stale=0" once). A detector
# that can see stale entries sees one within a few tries; a broken one in
# none.
noflush_sees_stale() {
	_t=0
	while [ $_t -lt 5 ]; do
		_t=$((_t + 1))
		put selftest tlb-noflush || return 1
		read -r _r < $K/selftest
		echo "# try $_t: $_r (negative control: the flush skipped)"
		case $_r in *" stale=0"*) ;; *" stale="*) return 0 ;; esac
	done
	return 1
}
# The kernel's own purges, from its vmalloc:purge_vmap_area_lazy events, in
# a trace instance of their own (its own buffer; only that event):
# kpurge_begin before a run; kpurge_end after it prints "PURGES SPAN": the
# purges that gave back at least one area (as the module's `purges` counts)
# and the pages of the ranges they flushed, end - start summed (as
# `flushed_span_pages`). Addresses are page-aligned, so exact as awk's
# doubles. Prints "- -" if tracefs or the event is missing.
# A purge whose range reaches outside the vmalloc space (x86-64, 4-level:
# 0xffffc90000000000 to 0xffffe90000000000) is counted but not spanned:
# vm_reset_perms() of a VM_FLUSH_RESET_PERMS area (a module's memory, freed
# when test_vmalloc's insmod fails) widens the flush to the direct map of
# its pages, from 0xffff888... to the module's 0xffffffffa...: 1.5 * 10^10
# pages for one full flush. Their number goes to /tmp/kpurge_wide.
# (Before this, each test_vmalloc row read about 2.6 * 10^11 pages.)
KP=/sys/kernel/tracing/instances/kpurge
kpurge_begin() {
	{ [ -d $KP ] || mkdir $KP; } 2>/dev/null || return 0
	echo 0 > $KP/tracing_on; echo > $KP/trace
	echo 1 > $KP/events/vmalloc/purge_vmap_area_lazy/enable && echo 1 > $KP/tracing_on
}
kpurge_end() {
	if ! { [ -d $KP ] && echo 0 > $KP/tracing_on; } 2>/dev/null; then
		echo "- -"; return 0
	fi
	awk 'function hex(s,  i, v) { v = 0; sub(/^0x/, "", s)
			for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
			return v }
		BEGIN { lo = hex("ffffc90000000000"); hi = hex("ffffe90000000000") }
		/ purge_vmap_area_lazy: / { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
			if (f["num_purged"] > 0) { n++; s = hex(f["start"]); e = hex(f["end"])
				if (s >= lo && e <= hi) sp += (e - s) / 4096; else wide++ } }
		END { printf "%d %.0f\n", n, sp; print wide + 0 > "/tmp/kpurge_wide" }' $KP/trace
}
