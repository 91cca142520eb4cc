#!/usr/bin/env bash
# make run-oops: boot a guest with mode=buggy on_race=bug and let the stress
# hit the race; the run passes only if the guest dies in the seeds' BUG.
# Then show our trace next to the seeds' log lines.
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
"$TOP/scripts/guest.sh" "$TOP/qemu/tests/oops.sh" --timeout 300 \
	--expect-oops 'kernel BUG at .*shim\.c'
log=$TOP/out/guest/oops.log
cat <<'SEED'

== 2.6.28, from the seeds (commit message of the fix, and the LKML report) ==
   kernel BUG at mm/vmalloc.c:517!
   invalid opcode: 0000 [#1] SMP
   EIP is at __purge_vmap_area_lazy+0x144/0x150
   Call Trace:
    [<c0482ad9>] free_unmap_vmap_area_noflush+0x69/0x70
    [<c0482b02>] remove_vm_area+0x22/0x70
    [<c0482c15>] __vunmap+0x45/0xe0
   ---
   kernel BUG at mm/vmalloc.c:507!
   invalid opcode: 0000 [#1] PREEMPT
   EIP is at __purge_vmap_area_lazy+0x1b1/0x1b5

== lazy_vmap in the guest (out/guest/oops.log) ==
SEED
# The check's message, the BUG line, the oops header, RIP and the call trace,
# Rust symbols demangled (c++filt knows v0) with generic arguments dropped.
sed -n 's/^<[0-9]>//p' "$log" |
	awk '/vmap_lazy_nr .* in __purge_vmap_area_lazy/ {on = 1}
	     on && /Code:|RSP:|RAX:|RBX:|RDX:|RBP:|R08:|R10:|R13:|FS:|CS:|CR2:|Tainted: \[/ {next}
	     on {print "   " $0} on && /<\/TASK>/ {exit}' |
	c++filt | sed -E -e 's/\[[0-9a-f]{16}\]//g' -e ':a' -e 's/(::)?<[^<>]*>([^:]|$)/\2/; s/([A-Za-z0-9_])<[^<>]*>/\1/; ta' \
		-e 's/lazy_vmap_main:://g'
