#!/usr/bin/env bash
# The setup test: scripts/setup.sh against stand-ins for dpkg-query,
# apt-get, apt-cache, cargo and sudo, in every state a machine can be in
# (nothing installed, some, all; apt-get update or install failing; a
# package with no candidate; no cargo; cargo install failing; a tool
# missing). Each case runs setup.sh in a hermetic PATH (the stand-ins plus
# links to the few real tools it uses) with an empty CACHE, and checks what
# was asked to be installed, the exit code and the message. Seconds, no
# network, no root needed. Prints KTAP (plan first).
#
#   scripts/test-setup.sh [SETUP]   SETUP: the setup.sh to test (default
#                                   this tree's), e.g. an old one, to watch
#                                   this test fail on it.
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
SETUP=${1:-$TOP/scripts/setup.sh}
W=$(mktemp -d /tmp/lazy_vmap-test-setup.XXXXXX)
trap 'rm -rf "$W"' EXIT

R=()
ok() { R+=("ok $(( ${#R[@]} + 1 )) - $*"); }
notok() { R+=("not ok $(( ${#R[@]} + 1 )) - $*"); }
check() {  # DESC COND...: one result
	local d=$1; shift
	if "$@"; then ok "$d"; else notok "$d"; fi
}

# The stand-ins. Their state lives in $S: installed/PKG (installed),
# removed/PKG (known, "deinstall ok config-files"), nocand/PKG (no
# candidate), and flag files fail-update, fail-install, fail-cargo,
# cargo-web-empty (cargo-web installs no cargo). Every call is logged.
mkstandins() {
	local bin=$1
	cat >"$bin/dpkg-query" <<'EOF'
#!/bin/bash
# dpkg-query -W -f=FMT PKG...: like the real one, exit 1 if any is unknown.
echo "dpkg-query $*" >>"$S/calls"
rc=0
for a in "$@"; do
	case $a in -*) continue ;; esac
	echo "$a" >>"$S/queried"
	if [ -e "$S/installed/$a" ]; then echo "$a install ok installed"
	elif [ -e "$S/removed/$a" ]; then echo "$a deinstall ok config-files"
	else echo "dpkg-query: no packages found matching $a" >&2; rc=1; fi
done
exit $rc
EOF
	cat >"$bin/apt-get" <<'EOF'
#!/bin/bash
echo "apt-get $*" >>"$S/calls"
case $1 in
update)
	[ -e "$S/fail-update" ] && { echo "E: Failed to fetch http://deb.debian.org/ Temporary failure resolving" >&2; exit 100; }
	echo "Reading package lists..."; exit 0 ;;
install)
	shift
	[ -e "$S/fail-install" ] && { echo "E: Sub-process /usr/bin/dpkg returned an error code (1)" >&2; exit 100; }
	for a in "$@"; do
		case $a in -*) continue ;; esac
		[ -e "$S/nocand/$a" ] && { echo "E: Unable to locate package $a" >&2; exit 100; }
	done
	for a in "$@"; do
		case $a in -*) continue ;; esac
		echo "$a" >>"$S/apt-installed"; : >"$S/installed/$a"
		[ "$a" = cargo-web ] && [ ! -e "$S/cargo-web-empty" ] && ln -sf "$S/cargo.real" "$S/bin/cargo"
	done
	exit 0 ;;
esac
echo "apt-get: unexpected $*" >&2; exit 100
EOF
	cat >"$bin/apt-cache" <<'EOF'
#!/bin/bash
echo "apt-cache $*" >>"$S/calls"
[ "$1" = policy ] || exit 100
p=$2
echo "$p:"; echo "  Installed: (none)"
if [ -e "$S/nocand/$p" ]; then echo "  Candidate: (none)"; else echo "  Candidate: 1.0-1"; fi
EOF
	cat >"$S/cargo.real" <<'EOF'
#!/bin/bash
echo "cargo $*" >>"$S/calls"
[ -e "$S/fail-cargo" ] && { echo "error: failed to download from crates.io" >&2; exit 101; }
root=''
while [ $# -gt 0 ]; do [ "$1" = --root ] && root=$2; shift; done
mkdir -p "$root/bin"
printf '#!/bin/bash\necho "bindgen 0.71.1"\n' >"$root/bin/bindgen"; chmod +x "$root/bin/bindgen"
EOF
	cat >"$bin/sudo" <<'EOF'
#!/bin/bash
echo "sudo $*" >>"$S/calls"; exec "$@"
EOF
	chmod +x "$bin"/* "$S/cargo.real"
	# The real tools setup.sh and env.sh use, and nothing else.
	local t
	for t in bash env dirname mkdir awk grep tail tr id cat rm ln chmod; do
		ln -s "$(command -v "$t")" "$bin/$t"
	done
}

# run CASE [NO_CARGO] [NO_TOOL]: a fresh state and cache, then setup.sh
# (with the state prepared by the caller's `prep` function).
run() {
	local name=$1 nocargo=${2:-} notool=${3:-}
	S=$W/$name; export S
	mkdir -p "$S/installed" "$S/removed" "$S/nocand" "$S/bin" "$S/cache"
	: >"$S/calls"; : >"$S/queried"; : >"$S/apt-installed"
	mkstandins "$S/bin"
	[ -n "$nocargo" ] || ln -s "$S/cargo.real" "$S/bin/cargo"
	[ -z "$notool" ] || rm -f "$S/bin/$notool"
	prep
	# A copy of setup.sh beside env.sh, as it sources it from its own dir.
	mkdir -p "$S/tree/scripts"
	cp "$SETUP" "$S/tree/scripts/setup.sh"; cp "$TOP/scripts/env.sh" "$S/tree/scripts/env.sh"
	env -i PATH="$S/bin" HOME="$S/home" CACHE="$S/cache" S="$S" \
		"$S/bin/bash" "$S/tree/scripts/setup.sh" >"$S/out" 2>&1
	RC=$?
	OUT=$(cat "$S/out")
	ASKED=$(sort -u "$S/apt-installed" | tr '\n' ' ')
}
prep() { :; }
# shellcheck disable=SC2317 # called through check
called() { grep -q "^$1" "$S/calls"; }
# shellcheck disable=SC2317
notcalled() { ! called "$1"; }
# shellcheck disable=SC2317
has() { [[ $OUT == *"$1"* ]]; }

# --- nothing installed: install exactly what was queried, then bindgen.
run fresh
ALL=$(sort -u "$S/queried" | tr '\n' ' ')
NALL=$(sort -u "$S/queried" | wc -l)
check "fresh: setup exits 0 (exit $RC; $(tail -n 1 "$S/out"))" [ "$RC" -eq 0 ]
check "fresh: it queried at least 20 packages ($NALL)" [ "$NALL" -ge 20 ]
check "fresh: apt-get install asked for exactly every queried package" [ "$ASKED" = "$ALL" ]
check "fresh: apt-get update ran before the install" \
	bash -c "grep -n '^apt-get' '$S/calls' | head -n1 | grep -q 'apt-get update'"
check "fresh: the message counts what it installs ('installing $NALL apt packages')" has "installing $NALL apt packages"
check "fresh: bindgen built once with cargo install into the cache" \
	bash -c "[ \$(grep -c '^cargo install bindgen-cli' '$S/calls') = 1 ] && grep -q -- '--root $S/cache/bindgen' '$S/calls'"
check "fresh: no cargo-web when a cargo is on PATH" bash -c "! grep -qx cargo-web '$S/queried'"
check "fresh: no error line" bash -c "! grep -q '^error:' '$S/out'"

# --- all installed (the same state again): nothing to do, nothing said.
prep() {
	local p
	for p in $ALL; do : >"$S/installed/$p"; done
	mkdir -p "$S/cache/bindgen/bin"
	printf '#!/bin/bash\necho "bindgen 0.71.1"\n' >"$S/cache/bindgen/bin/bindgen"
	chmod +x "$S/cache/bindgen/bin/bindgen"
}
run all
check "all installed: exits 0 (exit $RC)" [ "$RC" -eq 0 ]
check "all installed: no apt-get, no apt-cache, no cargo call" \
	bash -c "! grep -qE '^(apt-get|apt-cache|cargo|sudo) ' '$S/calls'"
check "all installed: prints nothing" [ -z "$OUT" ]

# --- some installed: every other package, and one removed with its
# config files left (known to dpkg, not installed).
prep() {
	local i=0 p
	for p in $ALL; do
		i=$((i + 1))
		if [ $((i % 2)) = 0 ]; then : >"$S/installed/$p"; else echo "$p" >>"$S/want"; fi
	done
	p=$(head -n1 "$S/want"); : >"$S/removed/$p"
}
run some
WANT=$(sort -u "$S/want" | tr '\n' ' ')
check "some installed: exits 0 (exit $RC)" [ "$RC" -eq 0 ]
check "some installed: install asked for exactly the missing half (and the one left as config files)" [ "$ASKED" = "$WANT" ]
check "some installed: the message counts $(wc -w <<<"$WANT") packages" has "installing $(wc -w <<<"$WANT") apt packages"

# --- apt-get update fails: say so, install nothing, build nothing.
prep() { : >"$S/fail-update"; }
run update-fails
check "update fails: exits 1 (exit $RC)" [ "$RC" -eq 1 ]
check "update fails: 'error: setup: apt-get update failed' and the log" \
	bash -c "grep -q '^error: setup: apt-get update failed.*see $S/cache/apt.log' '$S/out'"
check "update fails: the log's last line is in the message" has "Temporary failure resolving"
check "update fails: no install, no cargo" bash -c "! grep -qE '^(apt-get install|cargo)' '$S/calls'"

# --- apt-get install fails.
prep() { : >"$S/fail-install"; }
run install-fails
check "install fails: exits 1 (exit $RC)" [ "$RC" -eq 1 ]
check "install fails: 'error: setup: apt-get install of ... failed' and the log" \
	bash -c "grep -q '^error: setup: apt-get install of .* failed (exit 100); see $S/cache/apt.log' '$S/out'"
check "install fails: no cargo install after it" notcalled "cargo "
check "install fails: one error line only" [ "$(grep -c '^error:' "$S/out")" = 1 ]

# --- a package with no candidate: named, and nothing is installed.
prep() { : >"$S/nocand/qemu-system-x86"; }
run no-candidate
check "no candidate: exits 1 (exit $RC)" [ "$RC" -eq 1 ]
check "no candidate: names the package ('qemu-system-x86' ... no candidate)" \
	has "error: setup: package 'qemu-system-x86' cannot be installed: no candidate"
check "no candidate: apt-get install not run" notcalled "apt-get install"

# --- no cargo on PATH (a plain Debian 12): cargo-web is installed and used.
prep() { :; }
run no-cargo nocargo
check "no cargo: exits 0 (exit $RC; $(tail -n 1 "$S/out"))" [ "$RC" -eq 0 ]
check "no cargo: cargo-web is among the packages installed" bash -c "grep -qx cargo-web '$S/apt-installed'"
check "no cargo: bindgen built with the cargo it installed" called "cargo install bindgen-cli"

# --- cargo-web installed but no cargo appears.
prep() { : >"$S/cargo-web-empty"; }
run no-cargo-after nocargo
check "cargo-web without cargo: exits 1 with 'no cargo on PATH'" \
	bash -c "[ $RC = 1 ] && grep -q '^error: setup: no cargo on PATH' '$S/out'"

# --- cargo install fails.
prep() { : >"$S/fail-cargo"; }
run cargo-fails
check "cargo install fails: exits 1 (exit $RC)" [ "$RC" -eq 1 ]
check "cargo install fails: 'error: setup: cargo install bindgen-cli 0.71.1 failed' and the log" \
	bash -c "grep -q '^error: setup: cargo install bindgen-cli 0.71.1 failed; see $S/cache/bindgen.log' '$S/out'"
check "cargo install fails: cargo's own last line is in the message" has "failed to download from crates.io"

# --- a tool setup.sh needs is missing: env.sh's trap names the script,
# the line and the command, instead of a silent exit.
prep() { :; }
run no-awk '' awk
check "no awk: exits non-zero (exit $RC)" [ "$RC" -ne 0 ]
check "no awk: 'error: setup.sh failed (exit 127) at setup.sh:LINE: <command>'" \
	bash -c "grep -qE '^error: setup\.sh failed \(exit 127\) at setup\.sh:[0-9]+: .*awk' '$S/out'"

# --- no silent failure anywhere: every script that stops on errors
# (set -e) sources env.sh, whose traps print the error line, or (the
# self-contained qemu/run-guest.sh) has an ERR trap of its own.
for f in "$TOP"/scripts/*.sh "$TOP"/qemu/run-guest.sh; do
	grep -q '^set -e' "$f" || continue
	check "${f#"$TOP"/}: set -e, and an ERR trap that names the failure (env.sh's or its own)" \
		grep -qE '^\. .*env\.sh"?$|^trap .* ERR$' "$f"
done

echo "KTAP version 1"
echo "1..${#R[@]}"
printf '%s\n' "${R[@]}"
grep -q '^not ok' <(printf '%s\n' "${R[@]}") && exit 1
exit 0
