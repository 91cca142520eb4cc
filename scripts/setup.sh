#!/usr/bin/env bash
# Install everything the build and the guest need, once: exactly the
# packages that are missing, whatever the machine has (none, some or all).
# Idempotent: a warm machine returns in well under a second. Every failure
# ends with an `error:` line that names what failed and the log to read.
#
#   apt:   kernel source, the distribution's Rust (with std sources, which the
#          kernel build needs; its clippy and rustfmt for the lints),
#          clang/lld/llvm 19, kernel build deps, QEMU, a static busybox for
#          the guest's initramfs, shellcheck; and cargo-web (Debian's cargo
#          for that Rust) when no cargo is on PATH, as on a plain Debian 12.
#   cargo: bindgen-cli 0.71 (bookworm's bindgen is older than 6.12 accepts),
#          installed into the cache, not into ~/.cargo.
#
#   scripts/setup.sh [PKG...]   PKG: more apt packages to make sure of
#
# scripts/test-setup.sh runs this script against stand-ins for dpkg-query,
# apt-get, apt-cache and cargo, in each state a machine can be in.
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"

APT_PKGS=(linux-source-6.12 rustc-web rust-web-src clang-19 lld-19 llvm-19
	  libclang-19-dev flex bison bc libelf-dev libssl-dev cpio dwarves kmod
	  xz-utils qemu-system-x86 busybox-static make gcc libc6-dev binutils gzip
	  gnuplot-nox rust-web-clippy rustfmt-web shellcheck python3 git tmux
	  ca-certificates)
# Extra packages a caller needs beside these (fresh-check: mmdebstrap).
APT_PKGS+=("$@")
# A plain Debian 12 has no cargo (this project's developer image has a
# rustup one in ~/.cargo/bin, which cargo-web would conflict with).
command -v cargo >/dev/null || APT_PKGS+=(cargo-web)

# One dpkg-query for all. It exits 1 when any package is unknown or not
# installed (every fresh machine) but still lists those it knows: its
# status is not the answer, its output is.
status=$(dpkg-query -W -f='${Package} ${Status}\n' "${APT_PKGS[@]}" 2>/dev/null || true)
installed=" $(awk '$NF == "installed" && $(NF-1) == "ok" { printf "%s ", $1 }' <<<"$status")"
missing=()
for p in "${APT_PKGS[@]}"; do
	[[ $installed == *" $p "* ]] || missing+=("$p")
done

if ((${#missing[@]})); then
	say "setup: installing ${#missing[@]} apt packages (${missing[*]})"
	export DEBIAN_FRONTEND=noninteractive
	SUDO=()
	[ "$(id -u)" = 0 ] || SUDO=(sudo)
	log=$CACHE/apt.log
	: >"$log"
	"${SUDO[@]}" apt-get update >>"$log" 2>&1 ||
		die "setup: apt-get update failed (exit $?); see $log: $(tail -n 2 "$log" | tr '\n' ' ')"
	# Name a package the sources cannot give before apt says "Unable to
	# locate package" in the middle of its log.
	for p in "${missing[@]}"; do
		policy=$(apt-cache policy "$p" 2>/dev/null || true)
		[[ $policy == *"Candidate: "[0-9]* ]] ||
			die "setup: package '$p' cannot be installed: no candidate in the apt sources (apt-cache policy $p)"
	done
	"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1 ||
		die "setup: apt-get install of ${missing[*]} failed (exit $?); see $log: $(tail -n 2 "$log" | tr '\n' ' ')"
fi
command -v cargo >/dev/null || die "setup: no cargo on PATH after installing cargo-web"

if ! { "$BINDGEN" --version 2>/dev/null || true; } | grep -q "^bindgen 0\.71\."; then
	say "setup: building bindgen-cli $BINDGEN_VERSION into $CACHE/bindgen (about 90 s)"
	# Any cargo builds host tools fine (the image's rustup one, or Debian's
	# cargo-web); only kernel code needs the distribution's rustc with rust-src.
	log=$CACHE/bindgen.log
	cargo install bindgen-cli --version "$BINDGEN_VERSION" --locked \
		--root "$CACHE/bindgen" >"$log" 2>&1 ||
		die "setup: cargo install bindgen-cli $BINDGEN_VERSION failed; see $log: $(tail -n 2 "$log" | tr '\n' ' ')"
	{ "$BINDGEN" --version 2>/dev/null || true; } | grep -q "^bindgen 0\.71\." ||
		die "setup: cargo install bindgen-cli succeeded but $BINDGEN does not run; see $log"
fi
