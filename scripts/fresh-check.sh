#!/usr/bin/env bash
# make fresh-check: the README's `make run` on a Debian 12 that has nothing.
#
# Builds a clean Debian 12 root from the Debian package registry
# (mmdebstrap --variant=minbase, the apt sources this machine is set up
# with, plus `make` and `git`: the README's one prerequisite), puts a
# `git archive` of HEAD into it, and runs `make run` there as root, in a
# chroot with /proc, /sys and /dev, with an empty environment: no rustup, no
# ~/.cargo, no project package, no cache. It passes only if `make run`
# exits 0, the demo printed its tables, every run quiesced and the guest
# verdict is PASS.
#
# By default the guest kernel build is shared from this machine's cache
# (built here first if missing), bound read-only at the same path, so the
# check costs minutes; FULL=1 builds everything inside the root, kernel
# included, as a user's first day does. Prints each phase's time (root,
# packages, bindgen, kernel, module, demo).
#
# Everything runs in its own mount and PID namespace (unshare): when the
# check ends, on any exit path, a signal included, every process of the root
# is killed and every mount is gone with the namespace; the root is removed
# after checking that nothing is mounted under it.
#
#   scripts/fresh-check.sh          (make fresh-check [FULL=1])
#   KEEP=1: keep the root (its path is printed) for a look inside.
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"

[ "$(id -u)" = 0 ] || die "fresh-check: needs root (mmdebstrap, chroot, mount namespaces)"
OUT=$TOP/out/fresh
mkdir -p "$OUT"
LOG=$OUT/make-run.log
# The host needs only mmdebstrap and git; the shared kernel needs the
# project's setup (build-kernel.sh builds it if the cache has none).
if [ "${FULL:-0}" = 1 ]; then
	if ! command -v mmdebstrap >/dev/null || ! command -v git >/dev/null; then
		"$TOP/scripts/setup.sh" mmdebstrap
	fi
else
	"$TOP/scripts/setup.sh" mmdebstrap
	"$TOP/scripts/build-kernel.sh" >/dev/null
fi
git -C "$TOP" rev-parse --verify -q HEAD >/dev/null || die "fresh-check: $TOP is not a git checkout with a HEAD"
[ -z "$(git -C "$TOP" status --porcelain --untracked-files=no)" ] ||
	say "fresh-check: the work tree has uncommitted changes; the root gets HEAD ($(git -C "$TOP" log -1 --format=%h)), not them"

ROOT=$(mktemp -d /var/tmp/lazy_vmap-fresh.XXXXXX)
NSPID=''
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	# Killing unshare (--kill-child) kills the namespace's init, and with it
	# every process in the namespace; its mounts go with it. SIGKILL: with
	# --fork, unshare ignores SIGINT and SIGTERM while it waits.
	if [ -n "$NSPID" ]; then
		kill -KILL "$NSPID" 2>/dev/null || true
		wait "$NSPID" 2>/dev/null || true
	fi
	if [ "${KEEP:-0}" = 1 ]; then
		say "fresh-check: root kept at $ROOT"
	elif grep -qF " $ROOT/" /proc/self/mountinfo || grep -qF " $ROOT " /proc/self/mountinfo; then
		printf 'error: fresh-check: something is still mounted under %s; not removing it\n' "$ROOT" >&2
		rc=1
	else
		rm -rf --one-file-system "$ROOT"
	fi
	# env.sh's error line, which this EXIT trap replaces.
	(exit "$rc") || lv_on_exit
	exit "$rc"
}
trap cleanup EXIT
trap 'printf "error: fresh-check: interrupted (SIGINT)\n" >&2; LV_SAID=1; exit 130' INT
trap 'printf "error: fresh-check: terminated (SIGTERM)\n" >&2; LV_SAID=1; exit 143' TERM

# --- Phase root: a minimal Debian 12 with make and git, nothing else.
t0=$EPOCHREALTIME
srcs=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
	[ -s "$f" ] && srcs+=("$f")
done
((${#srcs[@]})) || die "fresh-check: this machine has no apt sources to build the root from"
say "fresh-check: building a clean Debian 12 root in $ROOT (mmdebstrap --variant=minbase)"
mmdebstrap --variant=minbase --include=make,git --aptopt='Acquire::Check-Valid-Until "false"' \
	bookworm "$ROOT" "${srcs[@]}" >"$OUT/mmdebstrap.log" 2>&1 ||
	die "fresh-check: mmdebstrap failed; see $OUT/mmdebstrap.log: $(tail -n 2 "$OUT/mmdebstrap.log" | tr '\n' ' ')"
t_root=$(( (${EPOCHREALTIME/./} - ${t0/./}) / 1000000 ))
for bad in /root/.cargo /root/.rustup /usr/bin/cargo /usr/bin/rustc /usr/bin/clang-19 /usr/bin/qemu-system-x86_64; do
	[ ! -e "$ROOT$bad" ] || die "fresh-check: the root is not clean: it has $bad"
done
mkdir -p "$ROOT/root/lazy_vmap"
git -C "$TOP" archive HEAD | tar -x -C "$ROOT/root/lazy_vmap"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
# The root trusts what this machine trusts: where the network to the
# package registries passes a TLS proxy, its CA is in this machine's bundle
# and not in the root's `ca-certificates`, and cargo (crates.io, HTTPS)
# would refuse it. apt needs nothing (signed packages over HTTP).
cp -L /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/host-ca-bundle.crt"

# The shared kernel builds: every finished one of the cache, read-only, at
# the path the root's own cache would have.
binds=()
if [ "${FULL:-0}" != 1 ]; then
	for k in "$CACHE"/kernel-*; do
		[ -f "$k/.done" ] && binds+=("$k")
	done
fi

# --- The README's command, in the root, in a mount + PID namespace.
# shellcheck disable=SC2016 # expanded by the inner shell
inner='
	set -eu
	R=$1; shift
	trap '\''[ $? = 0 ] || echo "error: fresh-check: setting up the root failed at: $BASH_COMMAND" >&2'\'' EXIT
	mount -t proc proc "$R/proc"
	mount -t sysfs sysfs "$R/sys"
	mount --rbind /dev "$R/dev"
	for k in "$@"; do
		d=$R/root/.cache/lazy_vmap/${k##*/}
		mkdir -p "$d"
		mount --bind "$k" "$d"
		mount -o remount,bind,ro "$d"
	done
	exec chroot "$R" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		CARGO_HTTP_CAINFO=/etc/host-ca-bundle.crt \
		bash -c "cd /root/lazy_vmap && make run"
'
say "fresh-check: make run in the root ($([ ${#binds[@]} -gt 0 ] && echo "kernel shared from $CACHE" || echo "FULL: everything built inside")); log $LOG"
: >"$LOG"
unshare --mount --propagation private --pid --fork --kill-child \
	bash -c "$inner" inner "$ROOT" "${binds[@]}" </dev/null >"$OUT/make-run.raw" 2>&1 &
NSPID=$!
t1=$EPOCHREALTIME
# Each line with its time since the start, into the log; the progress
# lines ("==> ...") also to the terminal.
stamp() {
	local line now
	while IFS= read -r line; do
		now=$(( (${EPOCHREALTIME/./} - ${t1/./}) / 1000 ))
		printf '%8d.%03d %s\n' $((now / 1000)) $((now % 1000)) "$line" >>"$LOG"
		case $line in "==> "*) printf '%s\n' "$line" >&2 ;; esac
	done
}
tail -s 0.5 --pid="$NSPID" -n +1 -f "$OUT/make-run.raw" 2>/dev/null | stamp &
TAILPID=$!
rc=0
wait "$NSPID" || rc=$?
NSPID=''
wait "$TAILPID" || true
t_end=$(( (${EPOCHREALTIME/./} - ${t1/./}) / 1000000 ))

# --- Phases, from the first line of each in the log (seconds since start).
first() { awk -v re="$1" '$0 ~ re { print int($1); exit }' "$LOG"; }
p_bindgen=$(first '==> setup: building bindgen')
p_kernel=$(first '==> kernel: building')
p_module=$(first '==> module: building')
# The demo starts with the first line after the module build's.
p_demo=$(awk '/==> module: building/ { m = 1; next } m { print int($1); exit }' "$LOG")
marks=("packages:0" "bindgen:${p_bindgen:-}" "kernel:${p_kernel:-}" "module:${p_module:-}" "demo:${p_demo:-}" "end:$t_end")
phases="root ${t_root} s"
for i in 0 1 2 3 4; do
	name=${marks[i]%%:*} s=${marks[i]#*:}
	if [ -z "$s" ]; then
		case $name in kernel) phases+=", kernel shared" ;; *) phases+=", $name -" ;; esac
		continue
	fi
	e=''
	for j in $(seq $((i + 1)) 5); do e=${marks[j]#*:}; [ -n "$e" ] && break; done
	phases+=", $name $((e - s)) s"
done

why=()
[ "$rc" -eq 0 ] || why+=("make run exited $rc")
grep -q '== workloads x targets' "$LOG" || why+=("no workload table")
grep -q '== the 2010 race' "$LOG" || why+=("no race table")
grep -q '== the vmap blocks' "$LOG" || why+=("no vmap blocks table")
grep -q '== the history' "$LOG" || why+=("no history table")
! grep -q 'NOT QUIESCED' "$LOG" || why+=("a run did not quiesce")
grep -q 'run-guest: PASS' "$LOG" ||
	why+=("no guest PASS verdict ($(grep -o 'run-guest: FAIL.*' "$LOG" | tail -n 1 || true))")
total=$((t_root + t_end))
if ((${#why[@]})); then
	say "fresh-check: $phases"
	grep -E '^ *[0-9.]+ error:' "$LOG" | tail -n 3 | sed 's/^ *[0-9.]* /  /' >&2 || true
	die "fresh-check: FAIL after $total s: $(printf '%s; ' "${why[@]}" | sed 's/; $//'); see $LOG"
fi
echo "fresh-check: PASS in $total s ($([ ${#binds[@]} -gt 0 ] && echo "kernel shared" || echo FULL)): $phases"
