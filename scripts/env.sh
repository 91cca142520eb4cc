# shellcheck shell=bash
# Sourced by every script: the paths and tool names the project shares.
# Override any of them from the environment.
: "${CACHE:=${LAZY_VMAP_CACHE:-$HOME/.cache/lazy_vmap}}"
: "${BINDGEN_VERSION:=0.71.1}"
: "${BINDGEN:=$CACHE/bindgen/bin/bindgen}"
: "${LLVM_SUFFIX:=-19}"
# The rustup toolchain first in PATH has no rust-src; the kernel needs the
# distribution's rustc (rustc-web) and its std sources.
: "${KRUSTC:=/usr/bin/rustc}"
: "${KRUSTDOC:=/usr/bin/rustdoc}"
# That toolchain's rustfmt and clippy (rustfmt-web, rust-web-clippy), for the lints.
: "${KRUSTFMT:=/usr/bin/rustfmt}"
: "${KCARGOFMT:=/usr/bin/cargo-fmt}"
: "${KCLIPPY:=/usr/bin/clippy-driver}"
# shellcheck disable=SC2034 # TOP is for the scripts that source this file
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$CACHE"
say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
