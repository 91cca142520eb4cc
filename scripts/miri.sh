#!/usr/bin/env bash
# make miri: the host tests of the pure logic (src/core: the area allocator,
# lazy free and purge in every mode, parsing, workloads) under Miri, the
# interpreter that checks for undefined behaviour and data races and
# emulates weak-memory effects of atomics that x86 hardware never shows.
# The std stress tests run with real threads under Miri's scheduler; the
# randomized tests do a hundredth of their rounds (host/tests/common).
#
# Miri ships only with nightly: a nightly toolchain with the miri and
# rust-src components is installed with rustup if missing (the stable
# toolchain stays the default).
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"

if ! cargo +nightly miri --version >/dev/null 2>&1; then
	if rustup toolchain list | grep -q '^nightly'; then
		say "miri: adding the miri and rust-src components to the nightly toolchain"
		rustup component add --toolchain nightly miri rust-src >"$CACHE/rustup.log" 2>&1
	else
		say "miri: installing a minimal nightly toolchain with miri and rust-src"
		rustup toolchain install nightly --profile minimal --component miri,rust-src \
			>"$CACHE/rustup.log" 2>&1
	fi || die "miri: rustup failed; see $CACHE/rustup.log"
fi
say "miri: $(cargo +nightly miri --version)"
cd "$TOP/host"
CARGO_TARGET_DIR=target/miri cargo +nightly miri test --test freetree --test lazy "$@"
