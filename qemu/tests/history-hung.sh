# The drain loop of 5.18-rc1..rc2 (bug drain-loop) with its bound off
# (drain_stuck_rounds 0): after set_iounmap_nonlazy() (nonlazy 1) the
# drain work spins for ever, as c12cd77cb028 reported. The kernel's own
# detectors must see it: the stress thread that waits for the drain at its
# end (flush_work(), uninterruptible) is reported by the hung-task
# detector (timeout lowered to 5 s), and the guest panics
# (hung_task_panic=1). The harness runs this with --expect-oops on the
# hung-task report. (No soft lockup: the work is preemptible, PREEMPT=y,
# and yields between its rounds.)
# shellcheck shell=sh disable=SC2086,SC2046 # busybox sh: lists split on purpose; knob names, numbers and fixed paths unquoted
insmod $LAZY_VMAP_KO || exit 1
echo 5 > /proc/sys/kernel/hung_task_timeout_secs
echo nodes > $K/mode
echo drain-loop > $K/bug
echo 0 > $K/drain_stuck_rounds
echo 1 > $K/threads
echo 500 > $K/duration_ms
echo 1 > $K/nonlazy
echo 1 > $K/stress
sleep 90
echo "no hung task within 90 s"
exit 1
