# A real RCU stall on demand (lv_watch's hook): 60 s in an RCU read-side
# section with preemption off, the soft-lockup watchdog told the CPU is
# alive, so the RCU CPU-stall detector is the one that must see it. Under
# the harness's thresholds (qemu/run-guest.sh) the guest must end in the
# kernel's "rcu: INFO: rcu_preempt ... stall" report and its panic
# (panic_on_rcu_stall=1); make test runs this with --expect-oops. It shows
# that the detectors still fire with the thresholds make test uses.
# shellcheck shell=sh
echo "rcu 60000" > /sys/module/lv_watch/parameters/stall
echo "the stall returned: no detector fired"
exit 1
