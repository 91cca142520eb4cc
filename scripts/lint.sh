#!/usr/bin/env bash
# The lints, as one KTAP suite (scripts/test.sh runs it as "lint"): the
# header and the plan first, one "ok N - ..."/"not ok N - ..." per check, its
# findings on "# " lines under it. Exits 1 if any check failed. Host only,
# about 10 s (most of it the clippy build).
#
#   rustfmt      src/**/*.rs with the kernel's .rustfmt.toml, as the kernel's
#                `make rustfmtcheck` runs it, with the rustfmt of the
#                toolchain the module is built with (rustfmt-web)
#   cargo fmt    the host crate (host/; it includes src/core)
#   clippy       the module built through Kbuild with CLIPPY=1 (rust-web-clippy,
#                the kernel's clippy flags) in its own output directory, not a
#                single warning (nor a C compiler warning)
#   checkpatch   --strict on the C sources in src/
#   shell        shellcheck on the host scripts (bash), and on the guest
#                scripts (busybox sh: those of qemu/ without a shebang, as POSIX sh)
#   ABI          docs/ABI/testing/sysfs-kernel-lazy_vmap is well-formed
#                (the kernel's get_abi.pl, or get_abi.py, validate), its What: lines and the
#                knob table in src/ name the same files, and every stats key
#                the source prints is described (the guest checks the keys
#                printed at run time, and the directory, in qemu/tests/knobs.sh)
#   sysfs.md     docs/sysfs.md names exactly the files of that knob table (in
#                its knob table) and the stats keys the source prints (in its
#                key tables), both ways; a name there is a `name` in backticks
#                in the first column of a table (doc_names below says which)
#
# Full outputs in out/lint/<kernel tree>/, the findings, one a line, in its
# findings.txt.
#   scripts/lint.sh          (KDIR=... for another kernel tree)
set -uo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
"$TOP/scripts/setup.sh" || die "lint: setup failed"
KDIR=${KDIR:-$("$TOP/scripts/build-kernel.sh")} || die "lint: no kernel tree"
# One directory per kernel tree: make test lints against 6.12 and 7.3 at once.
L=$TOP/out/lint/$(basename "$KDIR")
FINDINGS=$L/findings.txt
rm -rf "$L"; mkdir -p "$L"; : >"$FINDINGS"
cd "$TOP" || exit 1
ABI=docs/ABI/testing/sysfs-kernel-lazy_vmap
ABI_DIR=/sys/kernel/lazy_vmap

N=0 FAILED=0
PLAN=10
echo "KTAP version 1"
echo "1..$PLAN"
# result OK DESC [FINDINGS...]: one check; its findings as "# " lines, and
# into $FINDINGS as "check: finding".
result() {
	local ok=$1 desc=$2 f; shift 2
	N=$((N + 1))
	desc=${desc//#/}   # (a "#" in a description is a KTAP directive)
	if [ "$ok" = 0 ]; then echo "ok $N - $desc"
	else FAILED=$((FAILED + 1)); echo "not ok $N - $desc"; fi
	for f in "$@"; do
		[ -n "$f" ] || continue
		echo "# $f"
		echo "${desc%%:*}: $f" >>"$FINDINGS"
	done
}
to_array() { mapfile -t "$1" <"$2"; }

# --- rustfmt: the module's sources -------------------------------------
mapfile -t RS < <(find src -name '*.rs' | sort)
"$KRUSTFMT" --check --color never --edition 2021 --config-path "$KDIR/.rustfmt.toml" "${RS[@]}" >"$L/rustfmt.log" 2>&1
rc=$?
# rustfmt walks into out-of-line modules too: one line per file, its hunks
# once each ("Diff in /abs/path.rs:LINE:").
summarise_fmt() {
	sed -n "s|^Diff in $TOP/\(.*\.rs\):\([0-9]*\):$|\1 \2|p; s|^Diff in $TOP/\(.*\.rs\) at line \([0-9]*\):$|\1 \2|p" "$1" |
		sed 's|host/src/\.\./\.\./||' | sort -u -k1,1 -k2,2n |
		awk '{ n[$1]++; where[$1] = where[$1] " " $2 } END { for (f in n) print f ": " n[f] " hunk(s), at line(s)" where[f] }' | sort
}
summarise_fmt "$L/rustfmt.log" >"$L/rustfmt.sum"
to_array F "$L/rustfmt.sum"
[ "$rc" = 0 ] && [ ! -s "$L/rustfmt.sum" ] && ok=0 || ok=1
[ "$rc" != 0 ] && [ ! -s "$L/rustfmt.sum" ] && F+=("rustfmt exited $rc: $(tail -n 3 "$L/rustfmt.log" | tr '\n' ' ')")
result "$ok" "rustfmt: ${#RS[@]} files of src/ formatted as the kernel's .rustfmt.toml says ($("$KRUSTFMT" --version))" "${F[@]}"

# --- cargo fmt: the host crate -----------------------------------------
(cd host && RUSTFMT=$KRUSTFMT "$KCARGOFMT" --check -- --color never) >"$L/cargo-fmt.log" 2>&1
rc=$?
summarise_fmt "$L/cargo-fmt.log" >"$L/cargo-fmt.sum"
to_array F "$L/cargo-fmt.sum"
[ "$rc" = 0 ] && ok=0 || ok=1
[ "$rc" != 0 ] && [ ! -s "$L/cargo-fmt.sum" ] && F+=("cargo fmt exited $rc: $(tail -n 3 "$L/cargo-fmt.log" | tr '\n' ' ')")
result "$ok" "cargo fmt --check: the host crate (host/, with src/core)" "${F[@]}"

# --- clippy through Kbuild ----------------------------------------------
# Its own output directory, built from scratch every time (clippy only
# speaks when it compiles), so the normal build's objects stay as they are.
B=$L/clippy/$(basename "$KDIR")
mkdir -p "$B"
cp -rp src "$B/"; cp -p Kbuild "$B/"
make -s -C "$KDIR" M="$B" LLVM="$LLVM_SUFFIX" RUSTC="$KRUSTC" RUSTDOC="$KRUSTDOC" \
	CLIPPY=1 CLIPPY_DRIVER="$KCLIPPY" BINDGEN="$BINDGEN" modules >"$L/clippy.log" 2>&1
rc=$?
# One line per warning: FILE:LINE: LINT: MESSAGE (rustc's and clang's formats).
awk -v b="$B/" '
	function flush() { if (msg != "") print (loc != "" ? loc : "?") ": " (lint != "" ? lint : "?") ": " msg; msg = loc = lint = "" }
	/^(warning|error)(\[[A-Za-z0-9]+\])?: / {
		flush()
		if ($0 ~ /^(warning|error): [0-9]+ (warning|error)s? (emitted|generated)/ ||
		    $0 ~ /^error: aborting due to/) next
		msg = $0; sub(/^(warning|error)(\[[A-Za-z0-9]+\])?: /, "", msg)
		if (match($0, /^error/)) msg = "error: " msg
		next }
	msg != "" && loc == "" && /^ *--> / { loc = $2; sub(b, "", loc); sub(/:[0-9]+$/, "", loc) }
	msg != "" && lint == "" && /#\[(warn|deny)\(/ { lint = $0; sub(/.*#\[(warn|deny)\(/, "", lint); sub(/\)\].*/, "", lint) }
	msg != "" && lint == "" && /`-[WD] [a-z_:-]+`/ { lint = $0; sub(/^[^`]*`-[WD] /, "", lint); sub(/`.*/, "", lint); gsub(/-/, "_", lint) }
	msg != "" && lint == "" && /rust-clippy\/.*#[a-z_]+/ { lint = $0; sub(/.*#/, "clippy::", lint) }
	/^[^ ].*:[0-9]+:[0-9]+: (warning|error): / {
		flush(); l = $0; sub(b, "", l)
		split(l, p, ": "); w = l; sub(/^[^:]*:[0-9]+:[0-9]+: (warning|error): /, "", w)
		f = p[1]; sub(/:[0-9]+$/, "", f)
		fl = w; if (match(w, /\[-W[^]]*\]$/)) { fl = substr(w, RSTART + 1, RLENGTH - 2); sub(/ \[-W[^]]*\]$/, "", w) } else fl = "?"
		print f ": " fl ": " w }
	END { flush() }' "$L/clippy.log" >"$L/clippy.sum"
to_array F "$L/clippy.sum"
[ "$rc" = 0 ] && [ ! -s "$L/clippy.sum" ] && ok=0 || ok=1
[ "$rc" != 0 ] && [ ! -s "$L/clippy.sum" ] && F+=("the CLIPPY=1 build failed ($rc): $(tail -n 3 "$L/clippy.log" | tr '\n' ' ')")
result "$ok" "clippy: the module through Kbuild with CLIPPY=1, no warning ($("$KCLIPPY" --version))" "${F[@]}"

# --- checkpatch on the C sources -----------------------------------------
# Ignored: AVOID_BUG. lv_race_bug() is the seeds' BUG_ON on purpose: on_race=bug
# must crash the kernel the way 2.6.28 did (make run-oops).
mapfile -t CS < <(find src -name '*.[ch]' | sort)
perl "$KDIR/scripts/checkpatch.pl" --strict --no-tree --show-types --terse --ignore AVOID_BUG \
	-f "${CS[@]}" >"$L/checkpatch.log" 2>&1
rc=$?
grep -E '^[^ ]+:[0-9]+: (ERROR|WARNING|CHECK):' "$L/checkpatch.log" >"$L/checkpatch.sum"
to_array F "$L/checkpatch.sum"
[ "$rc" = 0 ] && ok=0 || ok=1
[ "$rc" != 0 ] && [ ! -s "$L/checkpatch.sum" ] && F+=("checkpatch exited $rc: $(tail -n 3 "$L/checkpatch.log" | tr '\n' ' ')")
result "$ok" "checkpatch --strict: ${CS[*]}" "${F[@]}"

# --- shellcheck -----------------------------------------------------------
# The scripts of qemu/ without a shebang run in the guest under busybox sh
# (qemu/tests/* with lib.sh prepended, the demo, bench and soak bodies):
# checked as POSIX sh, busybox's extensions (echo -e, $RANDOM) allowed
# inline where used. The rest run on the host (bash).
HOST_SH=(scripts/*.sh .ci/run) GUEST_SH=()
for f in qemu/*.sh qemu/tests/*.sh; do
	if head -n1 "$f" | grep -q '^#!'; then HOST_SH+=("$f"); else GUEST_SH+=("$f"); fi
done
shellcheck -x -P SCRIPTDIR -f gcc "${HOST_SH[@]}" >"$L/shellcheck-host.log" 2>&1
rc=$?
to_array F "$L/shellcheck-host.log"
[ "$rc" = 0 ] && ok=0 || ok=1
result "$ok" "shellcheck: ${#HOST_SH[@]} host scripts (bash)" "${F[@]}"
shellcheck -s sh -f gcc "${GUEST_SH[@]}" >"$L/shellcheck-guest.log" 2>&1
rc=$?
to_array F "$L/shellcheck-guest.log"
[ "$rc" = 0 ] && ok=0 || ok=1
result "$ok" "shellcheck -s sh: ${#GUEST_SH[@]} guest scripts (busybox sh)" "${F[@]}"

# --- the ABI document -------------------------------------------------------
F=()
if [ ! -s "$ABI" ]; then
	F=("$ABI is missing")
else
	# The kernel's ABI validator: scripts/get_abi.pl (6.12), rewritten in
	# Python as tools/docs/get_abi.py (7.3).
	if [ -f "$KDIR/scripts/get_abi.pl" ]; then abi=(perl "$KDIR/scripts/get_abi.pl")
	else abi=(python3 "$KDIR/tools/docs/get_abi.py"); fi
	"${abi[@]}" --dir "$(dirname "$(dirname "$ABI")")" validate >"$L/abi-validate.log" 2>&1 ||
		F+=("${abi[*]##*/} validate failed")
	to_array W "$L/abi-validate.log"
	F+=("${W[@]}")
	grep -q "^What:[[:space:]]*$ABI_DIR/" "$ABI" || F+=("no What: line under $ABI_DIR")
	# Every entry has the five fields.
	while read -r w; do F+=("$w: an entry without its Date, KernelVersion, Contact and Description"); done < <(
		awk '/^What:/ { if (w != "" && n < 4) print w; w = $2; n = 0; next }
			/^(Date|KernelVersion|Contact|Description):/ { n++ }
			END { if (w != "" && n < 4) print w }' "$ABI")
fi
[ ${#F[@]} = 0 ] && ok=0 || ok=1
result "$ok" "ABI: $ABI well-formed (get_abi.pl validate; What, Date, KernelVersion, Contact, Description)" "${F[@]}"

# What src/ says, one copy for the checks of the ABI file and of
# docs/sysfs.md, each list sorted, one name a line:
# src_knobs: the knob table; wherever it lives under src/, its entries are
# `name: c_str!("file")` (or a C string literal, `name: c"file"`).
src_knobs() {
	grep -rhoE --include='*.rs' 'name:[[:space:]]*(c_str!\([[:space:]]*"[^"]+"|c"[^"]+")' src |
		grep -oE '"[^"]+"' | tr -d '"' | sort -u
}
# src_stats_keys: the stats keys the source prints with a fixed name
# (`writeln!(b, "key {...}"`, a key being [a-z_][a-z0-9_]*, as
# drains_over_10ms; the per-mode and per-path ones, printed in a loop, are
# checked in the guest, as printed). (Whitespace squeezed first: rustfmt
# breaks a long writeln! over lines.)
src_stats_keys() {
	find src -name '*.rs' -exec cat {} + | tr -s ' \n\t' ' ' | grep -oE 'writeln!\( ?[a-z_]+, "[a-z_][a-z0-9_]* \{' |
		sed -E 's/.*"([a-z_][a-z0-9_]*) \{/\1/' | sort -u
}
src_knobs >"$L/knobs.src"
src_stats_keys >"$L/stats.src"
# A rename in src/ must not make these checks pass on empty lists.
NO_KNOBS='' NO_STATS=''
if ! grep -qx stats "$L/knobs.src" || [ "$(wc -l <"$L/knobs.src")" -lt 5 ]; then
	NO_KNOBS="the knob table was not found in src/ (no 'name: c_str!(\"stats\")' entry)"
fi
[ "$(wc -l <"$L/stats.src")" -ge 5 ] ||
	NO_STATS="the stats keys were not found in src/ (no 'writeln!(b, \"key {...}\")')"

# The knob table's files are the What: lines of the ABI file.
sed -n "s|^What:[[:space:]]*$ABI_DIR/\([^[:space:]]*\)[[:space:]]*$|\1|p" "$ABI" 2>/dev/null | sort >"$L/knobs.abi"
F=()
if [ -n "$NO_KNOBS" ]; then
	F=("$NO_KNOBS")
else
	while read -r k; do F+=("$k: a file of the knob table in src/, not described in $ABI"); done \
		< <(comm -23 "$L/knobs.src" "$L/knobs.abi")
	while read -r k; do F+=("$k: described in $ABI, not in the knob table in src/"); done \
		< <(comm -13 "$L/knobs.src" "$L/knobs.abi")
fi
[ ${#F[@]} = 0 ] && ok=0 || ok=1
result "$ok" "ABI: the $(wc -l <"$L/knobs.src") files of the knob table in src/ are the What: lines of the ABI file" "${F[@]}"

# Every fixed stats key the source prints is described in the ABI file.
awk -v w="$ABI_DIR/stats" '/^What:/ { on = ($2 == w) } on' "$ABI" 2>/dev/null >"$L/stats.abi"
F=()
if [ -n "$NO_STATS" ]; then
	F=("$NO_STATS")
else
	while read -r k; do
		grep -qE "(^|[[:space:]])${k}[:,]" "$L/stats.abi" || F+=("stats key $k: not described in $ABI")
	done <"$L/stats.src"
fi
[ ${#F[@]} = 0 ] && ok=0 || ok=1
result "$ok" "ABI: the $(wc -l <"$L/stats.src") fixed stats keys printed in src/ are described in the ABI file" "${F[@]}"

# --- docs/sysfs.md ----------------------------------------------------------
# doc_names FILE HEADER: the names FILE's Markdown tables give, one a line,
# in the order written. A table is a run of lines beginning with "|": its
# first line the header, its second the separator, the rest its rows. Only
# the tables whose header's first cell is HEADER count ("file": the knob
# table; "key": the stats key tables). A name is every `word` in backticks
# in the first cell of a row, word being [a-z][a-z0-9_]* (a cell may give
# several, as "`allocs`, `frees`"); `purges_<mode>` is not one (the keys
# printed in a loop are the guest's to check, as for the ABI file above).
# Backticked words in the other columns, and in the text, are not names.
doc_names() {
	awk -v h="$2" '
		!/^[[:space:]]*[|]/ { row = 0; next }
		{ row++; cell = $0; sub(/^[[:space:]]*[|][[:space:]]*/, "", cell); sub(/[[:space:]]*[|].*/, "", cell) }
		row == 1 { on = (cell == h); next }
		row == 2 || !on { next }
		{
			while (match(cell, /`[^`]*`/)) {
				n = substr(cell, RSTART + 1, RLENGTH - 2); cell = substr(cell, RSTART + RLENGTH)
				if (n ~ /^[a-z][a-z0-9_]*$/) print n
			}
		}' "$1"
}
SYSFS_MD=docs/sysfs.md
F=()
if [ ! -s "$SYSFS_MD" ]; then
	F=("$SYSFS_MD is missing")
elif [ -n "$NO_KNOBS$NO_STATS" ]; then
	for f in "$NO_KNOBS" "$NO_STATS"; do [ -z "$f" ] || F+=("$f"); done
else
	doc_names "$SYSFS_MD" file | sort >"$L/knobs.md"
	doc_names "$SYSFS_MD" key | sort >"$L/stats.md"
	while read -r k; do F+=("knob $k: in the knob table in src/, not in the knob table (header \"file\") of $SYSFS_MD"); done \
		< <(comm -23 "$L/knobs.src" <(sort -u "$L/knobs.md"))
	while read -r k; do F+=("knob $k: in the knob table of $SYSFS_MD, not in the knob table in src/"); done \
		< <(comm -13 "$L/knobs.src" <(sort -u "$L/knobs.md"))
	while read -r k; do F+=("stats key $k: printed by src/, not in a key table (header \"key\") of $SYSFS_MD"); done \
		< <(comm -23 "$L/stats.src" <(sort -u "$L/stats.md"))
	while read -r k; do F+=("stats key $k: in a key table of $SYSFS_MD, not printed by src/"); done \
		< <(comm -13 "$L/stats.src" <(sort -u "$L/stats.md"))
	while read -r k; do F+=("knob $k: more than one row of the knob table of $SYSFS_MD"); done < <(uniq -d "$L/knobs.md")
	while read -r k; do F+=("stats key $k: given more than once in the key tables of $SYSFS_MD"); done < <(uniq -d "$L/stats.md")
fi
[ ${#F[@]} = 0 ] && ok=0 || ok=1
result "$ok" "sysfs.md: $SYSFS_MD names the $(wc -l <"$L/knobs.src") knobs of the table in src/ and the $(wc -l <"$L/stats.src") fixed stats keys it prints, no other" "${F[@]}"

[ "$N" = "$PLAN" ] || echo "# lint: ran $N checks for the plan 1..$PLAN"
echo "# lint: $((N - FAILED)) passed, $FAILED failed (findings: ${FINDINGS#"$TOP"/}, outputs: ${L#"$TOP"/}/)"
if [ "$FAILED" != 0 ] || [ "$N" != "$PLAN" ]; then
	die "lint: $FAILED of $N checks failed (plan $PLAN); findings in ${FINDINGS#"$TOP"/}"
fi
