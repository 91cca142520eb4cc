#!/usr/bin/env bash
# shellcheck disable=SC2016 # what is typed at the guest's prompt expands there
# make shell, used as a person would: tmux runs it in a terminal, types a
# few commands at the guest's prompt and reads the screen. KTAP on stdout
# (the `shell` suite of make test). KDIR/KO as for scripts/guest.sh.
set -uo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
command -v tmux >/dev/null || "$TOP/scripts/setup.sh" || die "test-shell: no tmux"
S=lv-shell-$$
OUT=$TOP/out/test-shell
mkdir -p "$OUT"
N=0 FAILED=0
echo "KTAP version 1"
echo "1..7"
ok() { N=$((N + 1)); echo "ok $N - $*"; }
not_ok() { N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N - $*"; }
screen() { tmux -L "$S" capture-pane -p -J -S -200 -t "$S" 2>/dev/null; }
# wait_for REGEX SECONDS: until the screen shows REGEX.
wait_for() {
	local i
	for ((i = 0; i < $2 * 2; i++)); do
		screen | grep -qE -- "$1" && return 0
		sleep 0.5
	done
	return 1
}
typein() { tmux -L "$S" send-keys -t "$S" -l -- "$1"; tmux -L "$S" send-keys -t "$S" Enter; }
trap 'tmux -L "$S" kill-server 2>/dev/null' EXIT
tmux -L "$S" new-session -d -s "$S" -x 160 -y 50 \
	"cd '$TOP' && SHELL_TIMEOUT=600 scripts/guest.sh qemu/shell.sh --interactive --timeout 600 \
	--log '$OUT/console.log' 2>'$OUT/stderr.log'; echo LV-SHELL-ENDED \$?; sleep 600"
# expect DESC REGEX SECONDS: one check, passing when the screen shows REGEX.
expect() {
	if wait_for "$2" "$3"; then ok "$1"
	else not_ok "$1 (screen: $(screen | tail -3 | tr '\n' '|'))"; fi
}
wait_for 'Leave with `exit`' 300
expect "make shell: the banner and a prompt" '^/ # $' 30
typein 'cat $K/mode'
expect "the module is loaded: mode reads ordered" '^ordered$' 20
typein 'echo nodes > $K/mode; echo 4 > $K/threads; put duration_ms 1000; put stress 1; nap 3; knob mode; echo "MODE=$V"'
expect "a knob written at the prompt, with the lib.sh helpers (put, nap, knob)" '^MODE=nodes$' 60
typein 'snap; echo "OPS=$S_ops PURGES=$S_purges STALE=$S_stale_tlb"'
expect "the stress ran: ops and purges counted, nothing stale" '^OPS=[1-9][0-9]* PURGES=[1-9][0-9]* STALE=0$' 30
typein 'echo bogus > $K/mode'
expect "bad input refused at the prompt (-EINVAL)" 'Invalid argument' 20
typein 'exit'
expect "exit leaves the guest and make shell ends with 0" '^LV-SHELL-ENDED 0$' 60
if grep -q 'run-guest: PASS' "$OUT/stderr.log"; then ok "the judge passes the boot ($(grep -o 'PASS: .*' "$OUT/stderr.log" | head -c 80))"
else not_ok "the judge passes the boot: $(grep 'run-guest: FAIL' "$OUT/stderr.log")"; fi
screen >"$OUT/screen.txt"
[ "$FAILED" = 0 ]
