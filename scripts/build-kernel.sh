#!/usr/bin/env bash
# Build (or reuse) a guest kernel: KERNEL=6.12 (default) is Debian 12's
# linux-source-6.12, KERNEL=7.3 is linux-source-7.3 from trixie-backports
# (fetched with scripts/debian-fetch.sh, the machine's apt state untouched),
# each with tinyconfig + qemu/kernel.config (+ qemu/kernel-debug.config with
# DEBUG=1, or qemu/kernel-lockstat.config with LOCKSTAT=1), cached under
# $CACHE/kernel-<version>-<hash>.
# Prints the build directory (KDIR) on stdout.
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"

case $KERNEL in
6.12)
	tarball=/usr/src/linux-source-6.12.tar.xz
	[ -f "$tarball" ] || die "missing $tarball (package linux-source-6.12); run scripts/setup.sh"
	version=$(dpkg-query -W -f='${Version}' linux-source-6.12) ;;
7.3)
	version=$("$TOP/scripts/debian-fetch.sh" trixie-backports --version linux-source-7.3)
	tarball=$CACHE/src/linux-source-7.3_$version.tar.xz
	if ! [ -f "$tarball" ]; then
		deb=$("$TOP/scripts/debian-fetch.sh" trixie-backports "linux-source-7.3=$version")
		mkdir -p "$CACHE/src"
		dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/src/linux-source-7.3.tar.xz >"$tarball.tmp" ||
			die "kernel: cannot unpack linux-source-7.3.tar.xz from $deb"
		mv "$tarball.tmp" "$tarball"
	fi ;;
*) die "KERNEL=$KERNEL: this project builds KERNEL=6.12 or KERNEL=7.3" ;;
esac
frag=("$TOP/qemu/kernel.config")
[ "${DEBUG:-0}" = 1 ] && frag+=("$TOP/qemu/kernel-debug.config")
[ "${LOCKSTAT:-0}" = 1 ] && frag+=("$TOP/qemu/kernel-lockstat.config")
# Key: source package version + every fragment's settings (its CONFIG_
# lines and "# CONFIG_... is not set" lines: a comment changes no build) +
# this script's make flags.
hash=$( { echo "$version"; grep -hE '^(CONFIG_|# CONFIG_.* is not set)' "${frag[@]}"; echo "LLVM=$LLVM_SUFFIX"; } |
	sha256sum | cut -c1-12)
KDIR="$CACHE/kernel-$version-$hash"

if [ -f "$KDIR/.done" ]; then
	echo "$KDIR"; exit 0
fi
# One build of a key at a time: a second caller (make test's background
# chains, a fresh-check, another terminal) waits for the first, then finds
# its result, instead of wiping its half-built tree.
exec 9>"$KDIR.lock"
flock 9
if [ -f "$KDIR/.done" ]; then
	echo "$KDIR"; exit 0
fi

log="$KDIR.log"
say "kernel: building Linux $version (config $hash) in $KDIR, cold build takes ~10-15 min; log $log"
rm -rf "$KDIR.tmp"; mkdir -p "$KDIR.tmp"
tar -xf "$tarball" -C "$KDIR.tmp" --strip-components=1
cd "$KDIR.tmp"
MK=(make -s LLVM="$LLVM_SUFFIX" RUSTC="$KRUSTC" RUSTDOC="$KRUSTDOC" BINDGEN="$BINDGEN")
{
	"${MK[@]}" tinyconfig
	./scripts/kconfig/merge_config.sh -m .config "${frag[@]}"
	"${MK[@]}" olddefconfig
} >"$log" 2>&1 || die "kernel: configuration failed; see $log"
# Every line of the fragments must have survived olddefconfig, or a
# dependency is missing and the guest would silently lack a feature.
for f in "${frag[@]}"; do
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*) grep -qx "$line" .config || die "kernel: '$line' from $f did not survive olddefconfig" ;;
		"# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}
			! grep -q "^$opt=" .config || die "kernel: '$opt' should be off but is on" ;;
		esac
	done <"$f"
done
# A heartbeat every 30 s: objects built so far against the total of the
# last build of any kernel ($CACHE/kernel-objects), and the time taken.
t0=$EPOCHSECONDS
total=$(cat "$CACHE/kernel-objects" 2>/dev/null || echo '?')
( while sleep 30; do
	n=$(find . -name '*.o' | wc -l)
	say "kernel: $((EPOCHSECONDS - t0)) s, $n of ~$total objects built (log $log)"
done ) &
beat=$!
rc=0
"${MK[@]}" -j"$(( $(nproc) + 1 ))" bzImage modules >>"$log" 2>&1 || rc=$?
kill "$beat" 2>/dev/null || true
[ "$rc" = 0 ] || die "kernel: build failed; see $log (last lines: $(tail -5 "$log" | tr '\n' ' '))"
find . -name '*.o' | wc -l >"$CACHE/kernel-objects"
say "kernel: built in $((EPOCHSECONDS - t0)) s"
cd /
rm -rf "$KDIR"; mv "$KDIR.tmp" "$KDIR"
touch "$KDIR/.done"
say "kernel: done"
echo "$KDIR"
