# SPDX-License-Identifier: GPL-2.0
#
# lazy_vmap: an out-of-tree Rust module. Kbuild (read by the kernel's build
# when it descends here with M=) lists the objects; this Makefile is the
# user's entry point. Every target installs what is missing and builds the
# cached guest kernel first (see scripts/).
#
#   make            build lazy_vmap.ko (KDIR=... for another kernel tree)
#   make run        boot a guest, demo every workload and mode, print tables
#   make test       everything (CI): host tests, loom, lints and module checks
#                   against each kernel, every guest KTAP suite on 6.12 and 7.3,
#                   bench QUICK, the debug kernel's fault/fuzz/soak and others,
#                   fresh-check; in LV_GUESTS lanes (default 2), with a plan at
#                   the start and a table of times at the end (out/test/)
#   make check      the quick loop (about 2 min warm): host tests, lints and
#                   the module against each kernel, one smoke guest per kernel
#   make fresh-check [FULL=1]  the README's make run in a clean Debian 12
#                   root (mmdebstrap; FULL=1: the kernel built there too)
#   make run-oops   reproduce the seeds' kernel BUG in a guest
#   make bench [QUICK=1]  the benchmark: out/bench/results.csv, table, plot
#   make bench-history  the costs of bug per-area-sub and system-wq at 1-8 vCPUs
#   make ab [REV=rev]  this tree's module against REV's (default HEAD~1), one boot
#   make soak [SOAK_OPS=N] [SOAK_MIN=M]  10^7 ops (and M minutes) per fixed
#                   mode under the debug kernel
#   make shell      a guest with the module loaded and a shell on this terminal
#   make guest SCRIPT=path   run a busybox sh script in a fresh guest
#   make host-test  only the host tests
#   make lint       rustfmt, clippy (CLIPPY=1), checkpatch, shellcheck, the ABI
#                   file against the knob table (scripts/lint.sh)
#   make loom       the loom model check, deeper than make test's
#   make miri       the host tests under Miri (nightly, installed if missing)
#   make clean
#
# KERNEL=6.12 (default) or KERNEL=7.3 on any target picks the guest kernel
# (Debian's linux-source-6.12, or linux-source-7.3 from trixie-backports),
# each built once and cached. DEBUG=1 on any target uses the debug kernel (KASAN, kmemleak, DEBUG_VM,
# DEBUG_PAGEALLOC, PAGE_POISONING, SLUB_DEBUG, fault injection), cached apart.

export KERNEL KERNELS LV_GUESTS KDIR LLVM_SUFFIX DEBUG SOAK_OPS SOAK_MIN DELAY_OPS CYCLE_S SKIP_DEBUG ROUNDS AB_MS CELLS SMP

.PHONY: all module run test check shell fresh-check run-oops guest host-test lint loom miri bench bench-history ab soak clean

all module:
	@ko=$$(scripts/build-module.sh) && echo "built $$ko"

run:
	@scripts/run.sh

test:
	@scripts/test.sh

check:
	@scripts/check.sh

fresh-check:
	@FULL=$(FULL) scripts/fresh-check.sh

run-oops:
	@scripts/run-oops.sh

bench:
	@QUICK=$(QUICK) scripts/bench.sh

bench-history:
	@scripts/bench-history.sh

ab:
	@REV=$(REV) scripts/ab.sh

soak:
	@scripts/soak.sh

shell:
	@scripts/guest.sh qemu/shell.sh --interactive --timeout $${SHELL_TIMEOUT:-86400}

guest:
	@test -n "$(SCRIPT)" || { echo "error: usage: make guest SCRIPT=path" >&2; exit 2; }
	@scripts/guest.sh "$(SCRIPT)"

lint:
	@scripts/lint.sh

host-test:
	@scripts/setup.sh && cd host && cargo test --release || \
		{ echo "error: make host-test: setup or cargo test failed (above)" >&2; exit 1; }

loom:
	@cd host && LOOM_MAX_PREEMPTIONS=$${LOOM_MAX_PREEMPTIONS:-4} RUSTFLAGS="--cfg loom" \
		CARGO_TARGET_DIR=target/loom cargo test --release --test loom || \
		{ echo "error: make loom: the loom model check failed (above)" >&2; exit 1; }

miri:
	@scripts/miri.sh

clean:
	rm -rf out lazy_vmap.ko
	find . -path ./host -prune -o \( -name '*.o' -o -name '*.cmd' -o -name '*.mod' -o -name '*.mod.c' \
		-o -name '*.rmeta' -o -name '*.d' -o -name Module.symvers -o -name modules.order \) -print | xargs rm -f
