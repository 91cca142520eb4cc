# Mode `nodes` (6.12's per-CPU vmap nodes): frees past the threshold queue
# the drain work, allocations hit the node pools, purges decay the pools and
# start helpers on other CPUs; no race with the delay in the free, counter
# never below 0, nothing left after stop + purge, switching away empties the
# pools, and unloading with a drain queued is clean.
# shellcheck shell=sh disable=SC2086,SC2046 # busybox sh: lists split on purpose; knob names, numbers and fixed paths unquoted
plan 20
check "insmod" insmod $LAZY_VMAP_KO
cpus=$(grep -c ^processor /proc/cpuinfo)
cmp_ "one vmap node per CPU" "$(stat vmap_nodes)" -eq "$cpus"
check "mode nodes" put mode nodes
put threads 4; put workload random_size; put lazy_max_pages 256
check "stress 3 s" run_stress 3
echo "# $(grep -E '^(purges_nodes|purges_threshold|purges_exhaustion|drains_queued|pool_hits|pool_misses|purge_helpers|decayed_areas|pooled_areas|lazy_pages_min|lazy_pages_max|run_ops_per_sec) ' $K/stats | tr '\n' ' ')"
cmp_ "purged in mode nodes" "$(stat purges_nodes)" -gt 0
cmp_ "drain work queued" "$(stat drains_queued)" -gt 0
cmp_ "threshold purges (the drain)" "$(stat purges_threshold)" -gt 0
cmp_ "pool hits" "$(stat pool_hits)" -gt 0
cmp_ "pools decayed" "$(stat decayed_areas)" -gt 0
cmp_ "purge helpers ran" "$(stat purge_helpers)" -gt 0
cmp_ "no race detected" "$(stat race_detected)" -eq 0
cmp_ "counter never below zero" "$(stat lazy_pages_min)" -ge 0
cmp_ "no data mismatch, no stale translation" $(( $(stat mismatches) + $(stat stale_tlb) )) -eq 0
cmp_ "one flush round per purge" "$(stat tlb_flushes)" -eq "$(stat purges)"
check "quiesced (lazy, mapped, live = 0)" quiesced
cmp_ "the purge emptied the pools" "$(stat pooled_areas)" -eq 0
put workload fix_size; put lazy_max_pages 64
check "stress 1 s" run_stress 1
put stress 0
check "switching to ordered purges first" put mode ordered
cmp_ "nothing lazy, nothing pooled after the switch" $(( $(stat lazy_pages) + $(stat pooled_areas) )) -eq 0
# Unload right after a run that queued drains.
put mode nodes; put duration_ms 0; put stress 1; sleep 1
check "rmmod while stress runs in mode nodes" rmmod lazy_vmap
finish
