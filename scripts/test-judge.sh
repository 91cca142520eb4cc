#!/usr/bin/env bash
# The judge's own test: feeds qemu/run-guest.sh --scan-log one canned console
# log per case (qemu/judge/, see its README) and checks the exit code and the
# verdict. Every kind of kernel report must fail the boot (exit 2) on the
# report line itself; a clean log passes, a bad taint fails, a missing taint
# or end marker fails, the expected-oops mode still works. Prints KTAP
# ("KTAP version 1", the plan "1..N", one "ok N - ..."/"not ok N - ..." per
# case); exits 1 if any case failed. Host only, no guest: under a second.
#   scripts/test-judge.sh
set -uo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
J=$TOP/qemu/judge
JUDGE=$TOP/qemu/run-guest.sh

# Cases, one a line: LOG EXIT WANT [run-guest options...]
#   EXIT: the judge's expected exit code.
#   WANT: with EXIT 2 and a "line:" prefix, the text of the report line the
#   judge must flag (its excerpt names the first report line of the log);
#   otherwise an extended regex its stderr must match.
CASES=$(cat <<'LIST'
clean.log 0 PASS: script exit 0, no kernel splat, taint 4096 \(O out-of-tree module\)
taint-unsigned.log 0 PASS: .* taint 12288 \(O out-of-tree module, E unsigned module\)
pagealloc-corruption.log 2 line:pagealloc: memory corruption
pagealloc-single-bit.log 2 line:pagealloc: single bit error
slub-poison.log 2 line:): Poison overwritten
slub-redzone.log 2 line:): Right Redzone overwritten
slub-freepointer.log 2 line:): Freepointer corrupt
slub-double-free.log 2 line:): Object already free
hung-task.log 2 line:blocked for more than 30 seconds.
soft-lockup.log 2 line:soft lockup - CPU#2 stuck for 22s!
hard-lockup.log 2 line:Watchdog detected hard LOCKUP on cpu 1
rcu-stall.log 2 line:rcu_preempt detected stalls on CPUs/tasks:
rcu-self-stall.log 2 line:rcu_preempt self-detected stall on CPU
rcu-expedited-stall.log 2 line:rcu_preempt detected expedited stalls
warning.log 2 line:WARNING: CPU: 1 PID: 96 at mm/vmalloc.c
kasan.log 2 line:BUG: KASAN: slab-use-after-free
lockdep.log 2 line:WARNING: possible recursive locking detected
kmemleak.log 2 line:new suspected memory leaks
taint-warn.log 2 FAIL: kernel tainted 4608: W kernel warning
no-taint-marker.log 3 FAIL: no taint marker
no-exit-marker.log 3 FAIL: guest ended without the end marker
script-failed.log 1 FAIL: script failed with exit code 1
oops.log 2 line:kernel BUG at
oops.log 0 PASS: expected oops seen --expect-oops kernel BUG at .*shim\.c
oops-after-report.log 2 FAIL: another kernel splat came before the expected oops --expect-oops kernel BUG at .*shim\.c
clean.log 4 FAIL: expected oops missing --expect-oops kernel BUG at .*shim\.c
hung-task.log 0 PASS: expected oops seen --expect-oops INFO: task .* blocked for more than
hung-task.log 4 FAIL: expected oops missing --expect-oops kernel BUG at .*shim\.c
LIST
)
n=$(grep -c . <<<"$CASES")
echo "KTAP version 1"
echo "1..$n"
i=0 failed=0
while IFS= read -r c; do
	i=$((i + 1))
	log=${c%% *}; rest=${c#* }; want_rc=${rest%% *}; want=${rest#* }
	opts=()
	case "$want" in *" --expect-oops "*) opts=(--expect-oops "${want#* --expect-oops }"); want=${want%% --expect-oops *} ;; esac
	err=$("$JUDGE" --scan-log "$J/$log" "${opts[@]}" 2>&1 >/dev/null)
	rc=$?
	verdict=$(grep -aE '^run-guest: (PASS|FAIL)' <<<"$err" | tail -n1)
	desc="$log${opts[*]:+ ${opts[*]}}: exit $want_rc"
	why=''
	[ "$rc" = "$want_rc" ] || why="exit $rc, not $want_rc"
	if [ -z "$why" ]; then
		case "$want" in
		line:*)
			# The first line of the log with the report text: the one the
			# excerpt must start from (nothing before it may be flagged).
			at=$(grep -naF -- "${want#line:}" "$J/$log" | head -n1 | cut -d: -f1)
			if [ -z "$at" ]; then why="'${want#line:}' is not in the log"
			elif ! grep -qF "(console log $J/$log, line $at)" <<<"$err"; then
				why="flagged $(grep -aoE 'line [0-9]+\)' <<<"$err" | head -n1 | tr -d ')' || echo nothing), not line $at"
			fi
			desc+=" on line $at (${want#line:})" ;;
		*)
			grep -qaE -- "$want" <<<"$err" || why="stderr does not match /$want/"
			desc+=" (${verdict#run-guest: })" ;;
		esac
	fi
	# (No "#" in a description: KTAP reads what follows it as a directive.)
	desc=${desc//#/} why=${why//#/}
	if [ -z "$why" ]; then
		echo "ok $i - $desc"
	else
		failed=$((failed + 1))
		echo "not ok $i - $desc: $why"
		# shellcheck disable=SC2001 # every line prefixed: ${//} cannot anchor at line starts
		sed 's/^/# /' <<<"$err" | tail -n 12   # the judge's own words
	fi
done <<<"$CASES"
echo "# $((i - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
