#!/usr/bin/env bash
# Build (or reuse) the guest kernel: Debian's linux-source-6.12 with
# tinyconfig + qemu/kernel.config (+ qemu/kernel-debug.config with DEBUG=1,
# or qemu/kernel-lockstat.config with LOCKSTAT=1), cached under
# $CACHE/kernel-<version>-<hash>.
# Prints the build directory (KDIR) on stdout.
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"

tarball=/usr/src/linux-source-6.12.tar.xz
[ -f "$tarball" ] || die "missing $tarball (package linux-source-6.12); run scripts/setup.sh"
version=$(dpkg-query -W -f='${Version}' linux-source-6.12)
frag=("$TOP/qemu/kernel.config")
[ "${DEBUG:-0}" = 1 ] && frag+=("$TOP/qemu/kernel-debug.config")
[ "${LOCKSTAT:-0}" = 1 ] && frag+=("$TOP/qemu/kernel-lockstat.config")
# Key: source package version + every fragment + this script's make flags.
hash=$( { echo "$version"; cat "${frag[@]}"; echo "LLVM=$LLVM_SUFFIX"; } | sha256sum | cut -c1-12)
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

say "kernel: building Linux $version (config $hash) in $KDIR, cold build takes ~10-15 min"
rm -rf "$KDIR.tmp"; mkdir -p "$KDIR.tmp"
tar -xf "$tarball" -C "$KDIR.tmp" --strip-components=1
cd "$KDIR.tmp"
MK=(make -s LLVM="$LLVM_SUFFIX" RUSTC="$KRUSTC" RUSTDOC="$KRUSTDOC" BINDGEN="$BINDGEN")
log="$CACHE/kernel-build.log"
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
"${MK[@]}" -j"$(( $(nproc) + 1 ))" bzImage modules >>"$log" 2>&1 ||
	die "kernel: build failed; see $log (last lines: $(tail -5 "$log" | tr '\n' ' '))"
cd /
rm -rf "$KDIR"; mv "$KDIR.tmp" "$KDIR"
touch "$KDIR/.done"
say "kernel: done"
echo "$KDIR"
