# A CPU that spins with preemption off for 60 s (lv_watch's hook): the
# soft-lockup watchdog ("watchdog: BUG: soft lockup", 2 x watchdog_thresh)
# or the RCU CPU-stall detector, whichever checks first, must end the guest
# in its report (softlockup_panic=1, panic_on_rcu_stall=1); make test runs
# this with --expect-oops.
# shellcheck shell=sh
echo "spin 60000" > /sys/module/lv_watch/parameters/stall
echo "the spin returned: no detector fired"
exit 1
