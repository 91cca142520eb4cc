# Interface fuzzing: 1000 generated inputs to every writable knob, one
# process per knob, all at once, while another process starts and stops the
# stress. A malformed input must fail with EINVAL, a valid one succeed or
# fail with EBUSY (wrong time); a failed write leaves the knob unchanged and
# a successful one reads back as written. Non-root writes are refused.
# shellcheck shell=sh disable=SC2086,SC2046 # busybox sh: lists split on purpose; knob names, numbers and fixed paths unquoted
N=${FUZZ_N:-1000}
# The fuzzed knobs: KNOB READBACK VALID... on_race excludes warn and bug
# (they end the run by design); lazy_max_pages is reset by arena_mb changes
# in parallel, so it is not read back; purge and selftest have nothing to
# read back.
FUZZED='threads 1 1 2 3 4
duration_ms 1 0 100 300
workload 1 fix_size random_size long_busy_list full_fit fix_align random_size_align align_shift handoff
target 1 lazy_vmap vmalloc floor ram kram
nr_pages 1 1 4 16
busy_areas 1 0 100 500
arena_mb 1 8 16 32 128
lazy_max_pages 0 64 512 2048
mode 1 buggy drop-bugon purge-lock ordered nodes
on_race 1 count
race_delay_us 1 0 5 20
check_map 1 0 1
check_tlb 1 0 1
check_alias 1 0 1
vb_mode 1 all-blocks free-list no-reset
unmap_aliases_ms 1 0 10
bug 1 none lazy-pte drain-loop vbq-lock vb-publish per-area-sub system-wq
drain_stuck_rounds 1 0 100 1000
pool_decay 1 wraps quarter
nonlazy 0 0
flush 1 off on
purge 0 1
unmap_aliases 0 1
selftest 0'
# The knobs nobody but root may write.
ROOT_ONLY="stress threads duration_ms workload target nr_pages busy_areas check_map check_tlb check_alias flush
	arena_mb lazy_max_pages mode on_race race_delay_us purge selftest vb_mode unmap_aliases unmap_aliases_ms
	bug drain_stuck_rounds pool_decay nonlazy"
count() { echo $#; }
NF=$(echo "$FUZZED" | wc -l) NR=$(count $ROOT_ONLY)
# insmod 1, two per fuzzed knob (its RESULT line, missing or not), the
# stress toggler 3, after the fuzzing 2, two per root-only knob, rmmod 1.
plan $((1 + 2 * NF + 3 + 2 + 2 * NR + 1))
check "insmod" insmod $LAZY_VMAP_KO
put threads 2; put duration_ms 300

# gen SEED KNOB VALID...: N inputs, one per line: the kind (B malformed, V
# valid, L over-long) and the input as echo -e escapes. Kinds 0-6 are
# malformed by construction, kind 7 is a valid value. An over-long input is
# its first digit followed by $LONG (4200 sevens, built once below): the
# shell's read builtin reads a line a byte at a time, so 4200-byte lines in
# the input file would cost a syscall per byte.
gen() {
	awk -v seed=$1 -v n=$N -v valid="$3" 'function oct(c) { return sprintf("\\0%03o", c) }
	function num(l,   s, i) { s = int(1 + rand() * 9); for (i = 1; i < l; i++) s = s int(rand() * 10); return s }
	BEGIN { srand(seed); nv = split(valid, v, " ")
		for (i = 0; i < n; i++) {
			k = int(rand() * (nv ? 8 : 7)); s = ""
			if (k == 0) { s = oct(1); l = 1 + int(rand() * 16)      # random bytes
				for (j = 0; j < l; j++) s = s oct(int(rand() * 256)) }
			else if (k == 1) s = num(21 + int(rand() * 20))        # huge numbers
			else if (k == 2) s = (rand() < 0.5 ? "-" : "+") num(1 + int(rand() * 4))
			else if (k == 3) { w[0] = " "; w[1] = "\\t"; w[2] = "\\n"; x = num(1)   # whitespace
				s = rand() < 0.5 ? w[int(rand() * 3)] x : x " " }
			else if (k == 4) { p[0] = "a"; p[1] = "x1f"; p[2] = "e5"; p[3] = ".5"; s = num(1 + int(rand() * 3)) p[int(rand() * 4)] }
			else if (k == 5) s = rand() < 0.5 ? num(1) "\\0" : "\\0" num(1)   # embedded NUL
			else if (k == 6) s = num(1)                              # over-long: + $LONG
			else s = v[1 + int(rand() * nv)] (rand() < 0.5 ? "\\n" : "")
			print (k == 7 ? "V" : k == 6 ? "L" : "B") " " s
		} }' /dev/null
}
LONG=$(awk 'BEGIN { s = "7777777777"; while (length(s) < 4200) s = s s; print substr(s, 1, 4200) }')

# fuzz KNOB READBACK VALID...: writes the inputs, prints a summary line
# (each fuzzer prints to a file of its own, /tmp/fuzz.KNOB).
fuzz() {
	knob=$1; rb=$2; shift 2
	good=0 inval=0 busy=0 wrong=0
	# shellcheck disable=SC3028 # busybox sh has $RANDOM
	gen $RANDOM $knob "$*" > /tmp/in.$knob
	# before: the knob's value before a write, i.e. what it read after the
	# last one (only this fuzzer writes this knob; one sysfs read an input
	# less).
	after=''; read -r after < $K/$knob 2>/dev/null
	while IFS= read -r line; do
		kind=${line%% *}; s=${line#* }
		[ $kind = L ] && kind=B s=$s$LONG
		before=$after
		# shellcheck disable=SC3037 # busybox echo has -n and -e
		if { echo -ne "$s" > $K/$knob; } 2>/tmp/err.$knob; then
			if [ $kind = B ]; then
				wrong=$((wrong + 1)); echo "# $knob accepted '$s'"
				read -r after < $K/$knob 2>/dev/null
			else
				good=$((good + 1))
				v=${s%\\n}   # a valid input is a value, with or without "\n"
				read -r after < $K/$knob 2>/dev/null
				if [ $rb = 1 ] && [ "$after" != "$v" ]; then
					wrong=$((wrong + 1)); echo "# $knob: wrote '$v', reads '$after'"
				fi
			fi
		else
			read -r err < /tmp/err.$knob
			read -r after < $K/$knob 2>/dev/null
			case "$kind/$err" in
			B/*"Invalid argument"*) inval=$((inval + 1)) ;;
			V/*busy*) busy=$((busy + 1)) ;;
			*) wrong=$((wrong + 1)); echo "# $knob: '$s' ($kind) failed: $err" ;;
			esac
			if [ $rb = 1 ] && [ "$after" != "$before" ]; then
				wrong=$((wrong + 1)); echo "# $knob changed by a failed write: '$before' -> '$after'"
			fi
		fi
	done < /tmp/in.$knob
	echo "RESULT $knob $((good + inval + busy + wrong)) $good $inval $busy $wrong"
}

# The stress toggler: start, stop and malformed writes until the fuzzers
# are done, so that stress runs about half of the time.
toggle() {
	starts=0
	while [ -e /tmp/fuzzing ]; do
		echo 1 > $K/stress 2>/dev/null && starts=$((starts + 1))
		# shellcheck disable=SC3028 # busybox sh has $RANDOM
		sleep 0.$((RANDOM % 3 + 1))
		echo 2 > $K/stress 2>/dev/null && echo "# stress accepted 2"
		# shellcheck disable=SC3028 # busybox sh has $RANDOM
		[ $((RANDOM % 2)) = 0 ] && echo 0 > $K/stress
		sleep 0.1
	done
	echo 0 > $K/stress
	echo "TOGGLE $starts"
}

ops0=$(stat ops)
touch /tmp/fuzzing
{
	toggle > /tmp/fuzz.toggle 2>&1 &
	t=$!
	pids=''
	while read -r knob rb valid; do
		fuzz $knob $rb $valid > /tmp/fuzz.$knob 2>&1 &
		pids="$pids $!"
	done <<EOF
$FUZZED
EOF
	for p in $pids; do wait $p; done
	rm /tmp/fuzzing
	wait $t
}
cat /tmp/fuzz.toggle /tmp/fuzz.* 2>/dev/null | grep '^#' | head -40
# Every fuzzed knob has its RESULT line: a fuzzer that died (or a line
# lost) fails both of its checks instead of vanishing.
for knob in $(echo "$FUZZED" | cut -d' ' -f1); do
	tag='' total='' wrong=''
	# shellcheck disable=SC2034 # k: the knob name field, skipped
	read -r tag k total good inval busy wrong <<EOF
$(grep "^RESULT $knob " /tmp/fuzz.$knob)
EOF
	if [ "$tag" = RESULT ]; then
		echo "# $knob: $total inputs: $good valid accepted, $inval EINVAL, $busy EBUSY, $wrong wrong"
		cmp_ "$knob: $N inputs written" "$total" -eq $N
		cmp_ "$knob: every write answered as it should" "$wrong" -eq 0
	else
		tail -3 /tmp/fuzz.$knob 2>/dev/null | sed "s/^/# fuzz.$knob: /"
		not_ok "$knob: $N inputs written (no RESULT line)"
		not_ok "$knob: every write answered as it should (no RESULT line)"
	fi
done
starts=$(sed -n 's/^TOGGLE //p' /tmp/fuzz.toggle)
cmp_ "stress started and stopped during the fuzzing" "${starts:-0}" -gt 10
cmp_ "stress did work during the fuzzing" "$(stat ops)" -gt "$ops0"
cmp_ "valid values at the wrong time were refused EBUSY" \
	"$(cat /tmp/fuzz.* | awk '$1 == "RESULT" { s += $6 } END { print s + 0 }')" -gt 0
check "stress stopped" put stress 0
put mode ordered; put flush on
check "quiesced after fuzzing" quiesced

# Non-root: every knob refuses, nothing changes.
for f in $ROOT_ONLY; do
	before=$(cat $K/$f 2>/dev/null)
	check "nobody cannot write $f" fails $AS_NOBODY "echo 1 > $K/$f" 2>/dev/null
	check "$f unchanged" [ "$(cat $K/$f 2>/dev/null)" = "$before" ]
done
check "rmmod" rmmod lazy_vmap
finish
