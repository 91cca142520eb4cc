# The lazy purge: on demand, on exhaustion (purge, retry, -ENOMEM), the
# stale-TLB test and its negative control, rmmod during stress, reload,
# repeated and concurrent start/stop.
# 29 checks, 3 of them twice (one per target).
# shellcheck shell=sh disable=SC2086,SC2046 # busybox sh: lists split on purpose; knob names, numbers and fixed paths unquoted
plan 32
check "insmod" insmod $LAZY_VMAP_KO
cpus=$(grep -c ^processor /proc/cpuinfo)

# Purge on demand: with the threshold at the whole arena nothing purges by itself.
put arena_mb 16; put lazy_max_pages 4096; put threads 1; put nr_pages 4
check "stress with no automatic purge" run_stress 1
lazy=$(stat lazy_pages); p0=$(stat purges); f0=$(stat tlb_flushes)
cmp_ "freed areas wait on the lazy list" "$lazy" -gt 0
check "purge on demand" put purge 1
cmp_ "purge on demand: one purge" "$(stat purges)" -eq $((p0 + 1))
cmp_ "purge on demand: one flush" "$(stat tlb_flushes)" -eq $((f0 + 1))
cmp_ "purge on demand: counter back to 0" "$(stat lazy_pages)" -eq 0
cmp_ "purge on demand: every area back" "$(stat live_areas)" -eq 0

# Exhaustion: 4096 pages hold 40 areas of 100 pages; the 41st allocation
# must purge synchronously and retry.
put nr_pages 100
fail0=$(stat alloc_failures); p0=$(stat purges)
check "stress in a full arena" run_stress 1
cmp_ "exhaustion: purged and retried" "$(stat purges)" -gt "$p0"
cmp_ "exhaustion: no failure after the retry" "$(stat alloc_failures)" -eq "$fail0"
# 1024 pages + guard can never fit in 4096? They can: use more than the arena.
put arena_mb 4; put nr_pages 1024
fail0=$(stat alloc_failures)
check "stress with areas larger than the arena" run_stress 1
cmp_ "too large: -ENOMEM counted" "$(stat alloc_failures)" -gt "$fail0"
check "too large: nothing leaked" quiesced
put arena_mb 128; put nr_pages 1; put lazy_max_pages 2048

# Stale TLB: after a purge no CPU reaches the old page through the old address.
check "selftest tlb runs" put selftest tlb
set -- $(cat $K/selftest)
check "tlb: all $cpus CPUs read the new page" [ "$2 $3 $4" = "cpus=$cpus fresh=$cpus stale=0" ]
echo "# $(cat $K/selftest)"
check "selftest tlb-noflush runs" put selftest tlb-noflush
check "tlb-noflush: stale entries detected without the flush (within 5 tries)" noflush_sees_stale
check "after the self-tests: quiesced" quiesced

# Repeated start/stop, concurrent writers.
put threads $cpus; put duration_ms 0
i=0; okc=0
while [ $i -lt 5 ]; do
	put stress 1 && sleep 0.3 && put stress 0 && [ "$(cat $K/stress)" = 0 ] && okc=$((okc + 1))
	i=$((i + 1))
done
cmp_ "5 start/stop cycles" $okc -eq 5
( for i in 1 2 3 4 5 6 7 8 9 10; do echo 1 > $K/stress 2>/dev/null; sleep 0.1; done ) &
a=$!
( for i in 1 2 3 4 5 6 7 8 9 10; do echo 0 > $K/stress 2>/dev/null; sleep 0.13; done ) &
b=$!
wait $a $b
check "concurrent start and stop writers: stop" put stress 0
check "concurrent start and stop writers: stopped" [ "$(cat $K/stress)" = 0 ]
check "quiesced after concurrent writers" quiesced

# rmmod while stress runs, on both targets, then reload.
for t in lazy_vmap vmalloc; do
	insmod $LAZY_VMAP_KO 2>/dev/null
	put target $t; put threads $((2 * cpus)); put duration_ms 0
	check "$t: stress runs before rmmod" put stress 1
	sleep 1
	check "$t: rmmod during stress" rmmod lazy_vmap
	check "$t: module gone" [ ! -d $K ]
done
check "reload" insmod $LAZY_VMAP_KO
check "reloaded module runs" run_stress 1
check "rmmod" rmmod lazy_vmap
finish
