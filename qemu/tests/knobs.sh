# Every knob: defaults, good input, malformed input refused unchanged,
# EBUSY while stress runs, root-only writes, no raw addresses.
# The init fault-injection hook needs CONFIG_FAULT_INJECTION (the debug
# kernel): here the load fails with EINVAL and leaves nothing.
# shellcheck shell=sh disable=SC2086,SC2046 # busybox sh: lists split on purpose; knob names, numbers and fixed paths unquoted
KNOBS="stress threads duration_ms workload target nr_pages busy_areas check_map check_tlb check_alias flush arena_mb \
lazy_max_pages mode on_race race_delay_us purge selftest stats vb_mode unmap_aliases unmap_aliases_ms \
bug drain_stuck_rounds pool_decay nonlazy history"
BAD_NUMBERS=15 BAD_NAMES=9
set -- $KNOBS; nknobs=$#
# Defaults: 11. Numeric knobs: 10, each 4 + BAD_NUMBERS checks, 2 of them
# with a minimum of 1 (one more). Name knobs: 2 checks per value (35
# values), BAD_NAMES per knob (8 knobs). unmap_aliases: 3, nonlazy: 3.
# The ABI file: 2.
plan $((3 + nknobs + 2 + 11 + 10 * (4 + BAD_NUMBERS) + 2 + 9 + 6 + 2 * 35 + 8 * BAD_NAMES + 6 + 4 + 20 + 3 + 3 + 14 + 1 + 3))
check "insmod inject_init_failure=1 refused without fault injection" \
	fails insmod $LAZY_VMAP_KO inject_init_failure=1
check "nothing left of the refused load" sh -c "[ ! -d $K ] && ! grep -q '^lazy_vmap ' /proc/modules"
check "insmod" insmod $LAZY_VMAP_KO
for f in $KNOBS; do
	check "knob $f exists" [ -e $K/$f ]
done

# The ABI document (docs/ABI/testing/sysfs-kernel-lazy_vmap, which
# scripts/guest.sh copies in): one What: line per file of the directory,
# and every stats key printed described in the stats entry.
ABI=/sysfs-kernel-lazy_vmap
abi_is_dir() {
	[ -s $ABI ] || { echo "# no $ABI in the guest"; return 1; }
	want=$(sed -n "s|^What:[[:space:]]*$K/\([^[:space:]]*\)[[:space:]]*\$|\1|p" $ABI | sort)
	have=$(for f in "$K"/*; do echo "${f##*/}"; done | sort)
	[ "$want" = "$have" ] && return 0
	echo "# What: lines: $(echo "$want" | tr '\n' ' ')"; echo "# $K: $(echo "$have" | tr '\n' ' ')"; return 1
}
abi_has_stats() {
	[ -s $ABI ] || return 1
	desc=$(awk -v w=$K/stats '/^What:/ { on = ($2 == w) } on' $ABI)
	missing=$(cut -d' ' -f1 $K/stats | while read -r key; do
		echo "$desc" | grep -qE "(^|[[:space:]])${key}[:,]" || echo "$key"
	done)
	[ -z "$missing" ] || { echo "# stats keys not described in the ABI file: $(echo "$missing" | tr '\n' ' ')"; return 1; }
}
check "the ABI file's What: lines are the files of $K" abi_is_dir
check "every stats key is described in the ABI file" abi_has_stats
cpus=$(grep -c ^processor /proc/cpuinfo)
check "default threads = online CPUs" is threads "$cpus"
check "default mode ordered" is mode ordered
check "default on_race count" is on_race count
check "default target lazy_vmap" is target lazy_vmap
check "default stress 0" is stress 0
check "default flush on" is flush on
check "default check_tlb 1" is check_tlb 1
check "default check_alias 1" is check_alias 1
check "default vb_mode all-blocks" is vb_mode all-blocks
check "default bug none" is bug none
check "default pool_decay wraps" is pool_decay wraps

# Numeric knobs: NAME MIN MAX GOOD
while read -r knob min max good; do
	check "$knob accepts $good" put $knob "$good\n"
	check "$knob reads back $good" is $knob "$good"
	check "$knob accepts min $min" put $knob "$min"
	check "$knob accepts max $max" put $knob "$max"
	put $knob "$good" >/dev/null
	for bad in "\n" abc -1 +1 " 1" "1 " "1\n\n" 0x10 1a "1\0" "1\0002" \
		99999999999999999999999 18446744073709551616 "$((max + 1))" "$good$good$good$good$good$good$good$good$good$good$good$good$good$good$good$good$good$good$good$good$good$good$good"; do
		check "$knob refuses '$bad'" refused $knob "$bad" "Invalid argument"
	done
	[ "$min" -gt 0 ] && check "$knob refuses min-1" refused $knob "$((min - 1))" "Invalid argument"
done <<LIST
threads 1 $((4 * cpus)) 3
duration_ms 0 3600000 1500
nr_pages 1 1024 4
race_delay_us 0 10000 20
busy_areas 0 100000 500
check_map 0 1 1
check_tlb 0 1 1
check_alias 0 1 1
unmap_aliases_ms 0 1000 10
drain_stuck_rounds 0 1048576 50
LIST
check "arena_mb accepts 64" put arena_mb 64
check "arena_mb reads 64" is arena_mb 64
check "arena_pages follows arena_mb" [ "$(stat arena_pages)" = 16384 ]
for bad in 3 1025 x "\n" -4 "64 "; do
	check "arena_mb refuses '$bad'" refused arena_mb "$bad" "Invalid argument"
done
check "lazy_max_pages accepts 100" put lazy_max_pages 100
check "lazy_max_pages reads 100" is lazy_max_pages 100
for bad in 0 16385 x "\n"; do
	check "lazy_max_pages refuses '$bad'" refused lazy_max_pages "$bad" "Invalid argument"
done

# Name knobs: NAME VALUES...
for spec in "mode buggy drop-bugon purge-lock nodes ordered" "on_race warn bug count" \
	"target vmalloc floor ram kram lazy_vmap" "flush off on" "vb_mode free-list no-reset all-blocks" \
	"workload random_size long_busy_list full_fit fix_align random_size_align align_shift handoff fix_size" \
	"bug lazy-pte drain-loop vbq-lock vb-publish per-area-sub system-wq none" "pool_decay quarter wraps"; do
	set -- $spec; knob=$1; shift
	for v in "$@"; do
		check "$knob accepts $v" put $knob "$v\n"
		check "$knob reads back $v" is $knob "$v"
	done
	# shellcheck disable=SC2018,SC2019 # the knob values are ASCII
	for bad in "\n" "$v " " $v" "$v\n\n" "$(echo $v | tr a-z A-Z)" "${v%?}" "${v}x" "$v\0" nope; do
		check "$knob refuses '$bad'" refused $knob "$bad" "Invalid argument"
	done
done
for bad in 0 2 x "\n" "1 "; do
	check "purge refuses '$bad'" fails put purge "$bad"
done
check "purge accepts 1" put purge 1
check "unmap_aliases refuses 0" fails put unmap_aliases 0
check "unmap_aliases refuses 'x'" fails put unmap_aliases x
check "unmap_aliases accepts 1" put unmap_aliases 1
check "nonlazy refuses 2" fails put nonlazy 2
check "nonlazy refuses 'x'" fails put nonlazy x
check "nonlazy accepts 0 (nothing to take out)" put nonlazy 0
# A zero-byte write never reaches the module (sysfs returns 0 for it).
before=$(cat $K/threads)
printf '' > $K/threads
check "zero-byte write leaves threads unchanged" is threads "$before"
check "selftest refuses 'nope'" refused selftest nope "Invalid argument"
check "stress refuses 2" refused stress 2 "Invalid argument"
check "stats is read-only" fails put stats 1

# EBUSY while stress runs.
put threads 2; put duration_ms 0
check "stress starts" put stress 1
check "stress reads 1" is stress 1
check "second start refused EBUSY" refused stress 1 "busy"
for kv in "threads 3" "duration_ms 5" "workload random_size" "target vmalloc" "nr_pages 2" \
	"arena_mb 32" "lazy_max_pages 50" "mode buggy" "busy_areas 7" "flush off"; do
	set -- $kv
	check "$1 refused EBUSY while running" refused $1 $2 "busy"
done
check "bug refused EBUSY while running" refused bug lazy-pte "busy"
check "selftest refused EBUSY while running" fails put selftest tlb
check "purge allowed while running" put purge 1
check "race_delay_us allowed while running" put race_delay_us 0
sleep 1
check "ops move while running" [ "$(stat ops)" -gt 0 ]
check "stress stops" put stress 0
check "stress reads 0 after stop" is stress 0
check "stop when stopped is fine" put stress 0

# duration_ms: threads end by themselves.
put duration_ms 500
check "stress with duration starts" put stress 1
sleep 3
check "stress reads 0 after duration" is stress 0
check "restart after duration" run_stress 1

# Root only.
check "nobody can read stats" $AS_NOBODY "cat $K/stats >/dev/null"
for f in stress threads mode purge arena_mb; do
	before=$(cat $K/$f 2>/dev/null)
	check "nobody cannot write $f" fails $AS_NOBODY "echo 1 > $K/$f" 2>/dev/null
	check "$f unchanged after nobody's write" [ "$(cat $K/$f 2>/dev/null)" = "$before" ]
done
check "no kernel address in any knob" sh -c "! cat $K/* 2>/dev/null | grep -qiE 'ffff[0-9a-f]{8}'"
check "quiesced" quiesced
check "rmmod" rmmod lazy_vmap
finish
