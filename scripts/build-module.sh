#!/usr/bin/env bash
# Build lazy_vmap.ko against $KDIR (default: the cached guest kernel, built
# if missing). Prints the path of the .ko on stdout.
set -euo pipefail
. "$(dirname "$0")/env.sh"
"$TOP/scripts/setup.sh"
KDIR=${KDIR:-$("$TOP/scripts/build-kernel.sh")}
say "module: building lazy_vmap.ko against $KDIR"
make -s -C "$KDIR" M="$TOP" LLVM="$LLVM_SUFFIX" RUSTC="$KRUSTC" RUSTDOC="$KRUSTDOC" \
	BINDGEN="$BINDGEN" modules >&2
echo "$TOP/lazy_vmap.ko"
