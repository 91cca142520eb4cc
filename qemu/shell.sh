# make shell: the guest with lazy_vmap loaded and a busybox shell on the
# console (this terminal). The helpers of qemu/tests/lib.sh (put, knob,
# snap, run_stress, quiesced, ...) are defined in it.
# shellcheck shell=sh disable=SC2086
insmod $LAZY_VMAP_KO || echo "insmod failed: the knobs are not there"
# Kernel messages to the log only (dmesg shows them), not over the prompt.
dmesg -n 1
cat <<'BANNER'

  lazy_vmap shell: the module is loaded, its knobs are in /sys/kernel/lazy_vmap
  (docs/sysfs.md says what each does). Try:
    cat $K/mode; echo nodes > $K/mode           # a mode (ordered, nodes, buggy, ...)
    echo 4 > $K/threads; echo 1 > $K/stress     # stress on 4 CPUs until stopped
    cat $K/stats | head -20                     # counters; echo 0 > $K/stress
    cat $K/history; cat $K/latency              # the history table, latencies
    dmesg | tail; ls /sys/kernel/tracing/events/lazy_vmap
  Leave with `exit` (or Ctrl-D): the guest reboots and QEMU ends.

BANNER
ENV=/lib.sh setsid cttyhack sh -i
echo "lazy_vmap shell: left"
exit 0
