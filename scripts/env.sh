# shellcheck shell=bash
# Sourced by every script: the paths and tool names the project shares, and
# the rule that no script fails without saying so. Override any path from
# the environment.
: "${CACHE:=${LAZY_VMAP_CACHE:-$HOME/.cache/lazy_vmap}}"
: "${BINDGEN_VERSION:=0.71.1}"
: "${BINDGEN:=$CACHE/bindgen/bin/bindgen}"
: "${LLVM_SUFFIX:=-19}"
# The guest kernel: 6.12 (Debian 12's linux-source-6.12, the LTS) or 7.3
# (linux-source-7.3 from trixie-backports), both built by the project.
: "${KERNEL:=6.12}"
export KERNEL
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
say() { printf '==> %s\n' "$*" >&2; }
# die MSG: the one way a script gives up on purpose.
die() { printf 'error: %s\n' "$*" >&2; LV_SAID=1; exit 1; }

# No silent failure. Under `set -e` a command that fails (a pipeline under
# pipefail, a `x=$(...)` whose command fails) ends the script; the ERR trap
# remembers which command and where, and the EXIT trap prints it as an
# `error:` line unless die() already said what failed. errtrace (-E) gives
# the ERR trap to functions and subshells too; only the top shell's EXIT
# trap prints, so one failure makes one line. Scripts without -e (test.sh
# counts failures rather than stopping at them) are left alone.
if [[ $- == *e* ]]; then
	set -E
	LV_CMD='' LV_WHERE=''
	trap 'LV_CMD=$BASH_COMMAND LV_WHERE="${BASH_SOURCE[0]##*/}:$LINENO"' ERR
	lv_on_exit() {
		local rc=$?
		[ "$rc" -eq 0 ] || [ -n "${LV_SAID:-}" ] || [ "$BASH_SUBSHELL" -ne 0 ] ||
			printf 'error: %s failed (exit %s) at %s: %s\n' "${0##*/}" "$rc" \
				"${LV_WHERE:-?}" "${LV_CMD:-?}" >&2
	}
	trap lv_on_exit EXIT
fi
mkdir -p "$CACHE"
