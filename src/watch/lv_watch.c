// SPDX-License-Identifier: GPL-2.0
/*
 * lv_watch: the test harness's instrument, not part of lazy_vmap. The
 * harness loads it first in every guest (qemu/run-guest.sh --watch).
 *
 * 1. How long a vCPU waits. Under TCG every vCPU is a host thread; on a
 *    loaded host it may not run for a while, and to the guest that looks
 *    like a CPU that stopped. Each online CPU runs a pinned hrtimer every
 *    PERIOD; when it fires, how late it is (now - its expiry) is the time
 *    that CPU could not take its timer interrupt: the host did not run it,
 *    or the guest had interrupts off. The worst lateness per CPU and over
 *    all CPUs is read from /sys/module/lv_watch/parameters/report, which
 *    the harness prints at the end of every boot (@@LV_WATCH ...@@): the
 *    figure the detectors' thresholds are set from (docs/testing.md).
 *
 * 2. A real stall on demand, to show that the detectors still fire under
 *    those thresholds: a write to /sys/module/lv_watch/parameters/stall of
 *    "rcu MS" stays in an RCU read-side section with preemption off for MS
 *    milliseconds, telling the soft-lockup watchdog it is alive, so the
 *    RCU CPU-stall detector is the one that must report it; "spin MS"
 *    spins with preemption off and tells nobody (the soft-lockup watchdog
 *    or the RCU detector, whichever comes first). With the harness's
 *    panic_on_rcu_stall=1 and softlockup_panic=1 the guest ends in the
 *    kernel's report. Root only (0200); bad input is -EINVAL.
 */
#include <linux/cpu.h>
#include <linux/hrtimer.h>
#include <linux/ktime.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/nmi.h>
#include <linux/percpu.h>
#include <linux/rcupdate.h>
#include <linux/smp.h>

#define LV_WATCH_PERIOD_NS (10 * NSEC_PER_MSEC)

struct lv_watch_cpu {
	struct hrtimer timer;
	u64 late_max_ns;
	u64 ticks;
	u64 late_over_100ms;
	u64 late_over_1s;
	bool armed;
};

static DEFINE_PER_CPU(struct lv_watch_cpu, lv_watch_cpus);

static enum hrtimer_restart lv_watch_tick(struct hrtimer *t)
{
	struct lv_watch_cpu *w = container_of(t, struct lv_watch_cpu, timer);
	ktime_t now = hrtimer_cb_get_time(t);
	s64 late = ktime_to_ns(ktime_sub(now, hrtimer_get_expires(t)));

	if (late > 0) {
		if (late > w->late_max_ns)
			WRITE_ONCE(w->late_max_ns, late);
		if (late > 100 * NSEC_PER_MSEC)
			WRITE_ONCE(w->late_over_100ms, w->late_over_100ms + 1);
		if (late > NSEC_PER_SEC)
			WRITE_ONCE(w->late_over_1s, w->late_over_1s + 1);
	}
	WRITE_ONCE(w->ticks, w->ticks + 1);
	hrtimer_forward_now(t, ns_to_ktime(LV_WATCH_PERIOD_NS));
	return HRTIMER_RESTART;
}

/* Runs on the CPU whose timer it starts (smp_call_function_single). */
static void lv_watch_start_here(void *unused)
{
	struct lv_watch_cpu *w = this_cpu_ptr(&lv_watch_cpus);

	hrtimer_start(&w->timer, ns_to_ktime(LV_WATCH_PERIOD_NS),
		      HRTIMER_MODE_REL_PINNED_HARD);
}

static int lv_watch_report(char *buf, const struct kernel_param *kp)
{
	u64 max = 0, ticks = 0, o100 = 0, o1s = 0;
	int cpu, max_cpu = -1, n = 0;

	for_each_possible_cpu(cpu) {
		struct lv_watch_cpu *w = per_cpu_ptr(&lv_watch_cpus, cpu);

		if (!w->armed)
			continue;
		if (READ_ONCE(w->late_max_ns) > max) {
			max = READ_ONCE(w->late_max_ns);
			max_cpu = cpu;
		}
		ticks += READ_ONCE(w->ticks);
		o100 += READ_ONCE(w->late_over_100ms);
		o1s += READ_ONCE(w->late_over_1s);
		n++;
	}
	return sysfs_emit(buf,
			  "late_max_ms=%llu.%03llu cpu=%d cpus=%d ticks=%llu over_100ms=%llu over_1s=%llu period_ms=%llu\n",
			  max / NSEC_PER_MSEC, (max % NSEC_PER_MSEC) / NSEC_PER_USEC,
			  max_cpu, n, ticks, o100, o1s,
			  (u64)LV_WATCH_PERIOD_NS / NSEC_PER_MSEC);
}

static const struct kernel_param_ops lv_watch_report_ops = {
	.get = lv_watch_report,
};
module_param_cb(report, &lv_watch_report_ops, NULL, 0444);
MODULE_PARM_DESC(report, "The worst timer lateness seen on any CPU since load");

static int lv_watch_stall(const char *val, const struct kernel_param *kp)
{
	char kind[8];
	unsigned int ms;
	ktime_t end;

	if (sscanf(val, "%7s %u", kind, &ms) != 2 || !ms || ms > 600000)
		return -EINVAL;
	if (strcmp(kind, "rcu") && strcmp(kind, "spin"))
		return -EINVAL;
	pr_warn("lv_watch: stalling CPU %d for %u ms (%s), on purpose\n",
		raw_smp_processor_id(), ms, kind);
	/*
	 * By the clock, not by mdelay(): under TCG the delay loop's
	 * calibration is off (60000 mdelay(1) took 1.7 s).
	 */
	end = ktime_add_ms(ktime_get(), ms);
	rcu_read_lock();
	preempt_disable();
	while (ktime_before(ktime_get(), end)) {
		cpu_relax();
		if (kind[0] == 'r')
			touch_softlockup_watchdog();
	}
	preempt_enable();
	rcu_read_unlock();
	pr_warn("lv_watch: the stall ended and no detector stopped it\n");
	return 0;
}

static const struct kernel_param_ops lv_watch_stall_ops = {
	.set = lv_watch_stall,
};
module_param_cb(stall, &lv_watch_stall_ops, NULL, 0200);
MODULE_PARM_DESC(stall, "Test hook: \"rcu MS\" or \"spin MS\" stalls this CPU (root)");

static int __init lv_watch_init(void)
{
	int cpu;

	cpus_read_lock();
	for_each_online_cpu(cpu) {
		struct lv_watch_cpu *w = per_cpu_ptr(&lv_watch_cpus, cpu);

#ifdef LV_HAVE_HRTIMER_SETUP	/* 6.13+; hrtimer_init() is gone in 7.x */
		hrtimer_setup(&w->timer, lv_watch_tick, CLOCK_MONOTONIC,
			      HRTIMER_MODE_REL_PINNED_HARD);
#else
		hrtimer_init(&w->timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL_PINNED_HARD);
		w->timer.function = lv_watch_tick;
#endif
		w->armed = true;
		smp_call_function_single(cpu, lv_watch_start_here, NULL, 1);
	}
	cpus_read_unlock();
	return 0;
}

static void __exit lv_watch_exit(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct lv_watch_cpu *w = per_cpu_ptr(&lv_watch_cpus, cpu);

		if (w->armed)
			hrtimer_cancel(&w->timer);
	}
}

module_init(lv_watch_init);
module_exit(lv_watch_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lazy_vmap's test harness: vCPU wait measurement and a stall hook");
MODULE_AUTHOR("lazy_vmap developers");
