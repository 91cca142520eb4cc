# The seeds' crash on demand: buggy mode with the armed check as a real
# BUG(). The guest is expected to die in __purge_vmap_area_lazy's check
# (lv_race_bug); the harness runs this with --expect-oops.
# shellcheck shell=sh disable=SC2086,SC2046 # busybox sh: lists split on purpose; knob names, numbers and fixed paths unquoted
insmod $LAZY_VMAP_KO || exit 1
echo buggy > $K/mode
echo bug > $K/on_race
echo 50 > $K/race_delay_us
echo 64 > $K/lazy_max_pages
echo 4 > $K/threads
echo 1 > $K/stress
sleep 60
echo "no BUG within 60 s"
exit 1
