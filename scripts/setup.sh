#!/usr/bin/env bash
# Install everything the build and the guest need, once. Idempotent: a warm
# machine returns in well under a second.
#
#   apt:   kernel source, the distribution's Rust (with std sources, which the
#          kernel build needs; its clippy and rustfmt for the lints),
#          clang/lld/llvm 19, kernel build deps, QEMU, a static busybox for
#          the guest's initramfs, shellcheck.
#   cargo: bindgen-cli 0.71 (bookworm's bindgen is older than 6.12 accepts),
#          installed into the cache, not into ~/.cargo.
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"

APT_PKGS=(linux-source-6.12 rustc-web rust-web-src clang-19 lld-19 llvm-19
	  libclang-19-dev flex bison bc libelf-dev libssl-dev cpio dwarves kmod
	  xz-utils qemu-system-x86 busybox-static make gcc libc6-dev binutils gzip
	  gnuplot-nox rust-web-clippy rustfmt-web shellcheck)

# One dpkg-query for all (a package it does not know is missing too).
installed=" $(dpkg-query -W -f='${Package} ${Status}\n' "${APT_PKGS[@]}" 2>/dev/null |
	awk '$NF == "installed" && $(NF-1) == "ok" { printf "%s ", $1 }')"
missing=()
for p in "${APT_PKGS[@]}"; do
	[[ $installed == *" $p "* ]] || missing+=("$p")
done
if ((${#missing[@]})); then
	say "setup: installing ${#missing[@]} apt packages (${missing[*]})"
	export DEBIAN_FRONTEND=noninteractive
	SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq >/dev/null || die "apt-get update failed"
	if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$CACHE/apt.log" 2>&1; then
		for p in "${missing[@]}"; do
			apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]' ||
				die "setup: package '$p' cannot be installed (no candidate in the apt sources); see $CACHE/apt.log"
		done
		die "setup: apt-get install failed; see $CACHE/apt.log"
	fi
fi

if ! "$BINDGEN" --version 2>/dev/null | grep -q "^bindgen 0\.71\."; then
	say "setup: building bindgen-cli $BINDGEN_VERSION into $CACHE/bindgen (about 90 s)"
	# The image's rustup cargo builds host tools fine; only kernel code needs
	# the distribution's rustc with rust-src.
	cargo install bindgen-cli --version "$BINDGEN_VERSION" --locked \
		--root "$CACHE/bindgen" >"$CACHE/bindgen.log" 2>&1 ||
		die "setup: cargo install bindgen-cli $BINDGEN_VERSION failed; see $CACHE/bindgen.log"
fi
