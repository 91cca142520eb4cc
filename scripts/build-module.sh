#!/usr/bin/env bash
# Build lazy_vmap.ko against $KDIR (default: the cached guest kernel, built
# if missing; DEBUG=1 selects the debug kernel). The sources are copied
# (timestamps kept) into out/build/<kernel>/ and built there with M=, so the
# work tree stays clean and each kernel keeps its own objects. Prints the
# path of the .ko on stdout. With KDIR given and the toolchain there
# (rustc, bindgen, clang), the apt/cargo setup is skipped.
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
if [ -z "${KDIR:-}" ] || ! [ -x "$KRUSTC" ] || ! "$BINDGEN" --version >/dev/null 2>&1 ||
	! command -v "clang$LLVM_SUFFIX" >/dev/null; then
	"$TOP/scripts/setup.sh"
fi
KDIR=${KDIR:-$("$TOP/scripts/build-kernel.sh")}
B="$TOP/out/build/$(basename "$KDIR")"
mkdir -p "$B/src"
# Sources over the previous build's tree: unchanged files keep their mtime,
# so kbuild rebuilds only what changed.
cp -rp "$TOP/src/." "$B/src/"
# Sources moved or deleted since the previous build would still be found
# there (a `mod x;` with both x.rs and x/mod.rs): drop them.
(cd "$B/src" && find . \( -name '*.rs' -o -name '*.c' -o -name '*.h' \) -print) | while read -r f; do
	[ -e "$TOP/src/$f" ] || rm -f "$B/src/$f"
done
cp -p "$TOP/Kbuild" "$B/"
say "module: building lazy_vmap.ko against $KDIR"
make -s -C "$KDIR" M="$B" LLVM="$LLVM_SUFFIX" RUSTC="$KRUSTC" RUSTDOC="$KRUSTDOC" \
	BINDGEN="$BINDGEN" modules >&2
echo "$B/lazy_vmap.ko"
