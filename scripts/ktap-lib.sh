# shellcheck shell=bash
# The accounting shared by make test (scripts/test.sh) and make check
# (scripts/check.sh): results as KTAP, each suite checked against its plan
# and against the kernel's own parser (kunit.py), one KTAP document for the
# whole run, and the closing "N passed, N failed". Set T (the output
# directory) and KUNIT (kunit.py of a built kernel tree) before sourcing.
rm -rf "$T"; mkdir -p "$T"
PASSED=0
FAILED=0
MAKE_N=0
: >"$T/make.results"
# pass/fail DESC: one check of this script's own (the "make" suite). A "#"
# in a description would start a KTAP directive (kunit.py fails on "CPU#[0-9]"
# in a regex): it is dropped.
pass() { local d="$*"; PASSED=$((PASSED + 1)); MAKE_N=$((MAKE_N + 1)); echo "ok $MAKE_N - ${d//#/}" | tee -a "$T/make.results"; }
fail() { local d="$*"; FAILED=$((FAILED + 1)); MAKE_N=$((MAKE_N + 1)); echo "not ok $MAKE_N - ${d//#/}" | tee -a "$T/make.results"; }
SUITES=()
# clock VAR: the time now and the CPU time of this shell's finished
# children so far, into VAR; took CLOCK: what passed since, as "W s, cpu C
# s" (the CPU time of every process of the step that was waited for: guest
# suites are CPU-bound under TCG, and this machine has 2 cores). Both run in
# the calling shell (no $(...)), whose children they count.
TCK=$(getconf CLK_TCK)
clock() { local f; read -r -a f </proc/$BASHPID/stat; printf -v "$1" '%s:%s' "$EPOCHSECONDS" $((f[15] + f[16])); }
took() {
	local f; read -r -a f </proc/$BASHPID/stat
	echo "$((EPOCHSECONDS - ${1%%:*})) s, cpu $(((f[15] + f[16] - ${1#*:}) / TCK)) s"
}
t_start=""; clock t_start

# guest_line LOG: the KTAP lines of a script's output.
guest_line() { grep -E '^(KTAP version 1|1\.\.[0-9]+|(not )?ok [0-9]+ .*|# .*)$' "$1"; }

# ktap_of_cargo LOG: cargo test's output as KTAP, the plan being the sum of
# its "running N tests" lines.
ktap_of_cargo() {
	awk '/^running [0-9]+ tests?$/ { plan += $2 }
		/^test .* \.\.\. (ok|FAILED|ignored)$/ {
			n++; r = $NF; name = $2
			if (r == "ok") line[n] = "ok " n " - " name
			else if (r == "ignored") line[n] = "ok " n " - " name " # SKIP ignored"
			else line[n] = "not ok " n " - " name }
		END { print "KTAP version 1"; print "1.." plan + 0; for (i = 1; i <= n; i++) print line[i] }' "$1"
}

# kunit_counts FILE: "PASSED FAILED" as the kernel's KTAP parser counts them
# (nothing if it cannot parse the file within 60 s).
kunit_counts() {
	timeout 60 python3 "$KUNIT" parse "$1" 2>&1 | tr -d '\r' |
		sed -n 's/.*Ran [0-9]* tests\{0,1\}: \(.*\)$/\1/p' | tail -1 |
		awk -F', ' '{ p = 0; f = 0
			for (i = 1; i <= NF; i++) { split($i, kv, ": "); if (kv[1] == "passed") p = kv[2]
				else if (kv[1] == "failed" || kv[1] == "crashed" || kv[1] == "errors") f += kv[2] }
			print p + 0, f + 0 }'
}

# suite NAME KTAP_FILE: counts the suite's results, checks them against its
# plan and against kunit.py's reading, and queues it for the document.
suite() {
	local name=$1 k=$2 plan p f s kp
	plan=$(sed -n '2s/^1\.\.\([0-9][0-9]*\)$/\1/p' "$k")
	p=$(grep -cE '^ok [0-9]+ ' "$k"); s=$(grep -cE '^ok [0-9]+ .*# SKIP' "$k")
	f=$(grep -cE '^not ok [0-9]+ ' "$k")
	p=$((p - s))
	PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
	grep -E '^not ok [0-9]+ ' "$k" | sed "s/^/# $name: /"
	echo "# $name: $p passed, $f failed$( [ "$s" -gt 0 ] && echo ", $s skipped") of plan ${plan:-missing}"
	if [ "$(head -1 "$k")" != "KTAP version 1" ] || [ -z "$plan" ]; then
		fail "$name: KTAP header then plan first (got: $(head -2 "$k" | tr '\n' ' '))"
	elif [ $((p + f + s)) -ne "$plan" ]; then
		fail "$name: $((p + f + s)) results for the plan 1..$plan"
	else
		pass "$name: $plan results for the plan 1..$plan"
	fi
	kp=$(kunit_counts "$k")
	if [ "$kp" = "$p $f" ]; then pass "$name: kunit.py parse counts $p passed, $f failed"
	else fail "$name: kunit.py parse counts '${kp:-nothing}', we count '$p $f'"; fi
	SUITES+=("$name:$k")
}

# guest_suite NAME LOG RC: a guest suite's KTAP lines out of its console
# output, and the harness verdict (script exit, no kernel report, taint).
guest_suite() {
	local name=$1 log=$2 rc=$3 k=$T/$1.ktap
	grep -E '^(KTAP version 1|1\.\.[0-9]+|(not )?ok [0-9]+ .*|# .*)$' "$log" >"$k"
	suite "$name" "$k"
	if [ "$rc" -eq 0 ]; then pass "$name: harness verdict PASS ($(grep 'run-guest: guest ran' "$log" | sed 's/run-guest: //'))"
	else fail "$name: harness verdict: $(grep 'run-guest: FAIL' "$log" | tail -1)"; fi
}

# ktap_finish WHAT: the whole run as one KTAP document ($T/ktap.txt), read
# back by kunit.py, the time taken and the closing line; exits with the
# verdict.
ktap_finish() {
	# The whole run as one KTAP document: a subtest per suite, this script's own
	# checks last (all but the one below, which reads the document).
	{
		{ echo "KTAP version 1"; echo "1..$MAKE_N"; cat "$T/make.results"; } >"$T/make.ktap"
		SUITES+=("make:$T/make.ktap")
		echo "KTAP version 1"
		echo "1..${#SUITES[@]}"
		i=0
		for s in "${SUITES[@]}"; do
			i=$((i + 1)); name=${s%%:*}; k=${s#*:}
			sed 's/^/    /' "$k"
			if grep -qE '^not ok [0-9]+ ' "$k"; then echo "not ok $i - $name"; else echo "ok $i - $name"; fi
		done
	} >"$T/ktap.txt"
	kp=$(kunit_counts "$T/ktap.txt")
	if [ "$kp" = "$PASSED $FAILED" ]; then
		pass "kunit.py parse of ${T#"$TOP"/}/ktap.txt counts every result: $PASSED passed, $FAILED failed"
	else
		fail "kunit.py parse of ${T#"$TOP"/}/ktap.txt counts '${kp:-nothing}', we count '$PASSED $FAILED'"
	fi
	echo -n "# $1 took "; took "$t_start"
	[ "$FAILED" -eq 0 ] || echo "error: $1: $FAILED checks failed (the 'not ok' lines above; every result in ${T#"$TOP"/}/ktap.txt)" >&2
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
}
