#!/usr/bin/env bash
# run-guest.sh: boot a guest kernel under QEMU with a busybox initramfs, run one
# busybox-sh script in it as root, and judge the run from the serial console log.
#
# Usage: qemu/run-guest.sh [options] SCRIPT
#   --kernel PATH        bzImage (required)
#   --module PATH        .ko copied to the guest as /lazy_vmap.ko ($LAZY_VMAP_KO; not loaded)
#   --extra PATH         extra file copied into the guest's / (repeatable)
#   --watch PATH         lv_watch.ko: loaded before the script; its report (the
#                        worst timer lateness of any vCPU) ends the boot
#                        ("@@LV_WATCH ...@@", and on the verdict line)
#   --smp N              vCPUs (default 4)
#   --mem SIZE           guest memory (default 1G)
#   --timeout SEC        hard wall-clock limit for QEMU (default 300)
#   --append STR         extra kernel command line (repeatable, joined)
#   --log PATH           serial console log (default out/guest/<script basename>.log)
#   --expect-oops REGEX  succeed only if the guest dies in a "kernel BUG at"/"Oops"
#                        splat, REGEX matches the console log (grep -E), and no other
#                        splat came before it (adds oops=panic to the command line)
#   --accel tcg|kvm      default tcg; kvm only if /dev/kvm works, else tcg with a note
#   --icount 0|1         1: TCG with -icount shift=0,sleep=off (one host thread runs
#                        every vCPU; guest time counts instructions, 1 ns each: steady
#                        figures of CPU work, where a TLB flush or an IPI costs only
#                        its instructions); default 0
#   --interactive        the console is this terminal (make shell): the script's
#                        stdin is the keyboard; the log is still written
#   --scan-log PATH      do not boot: judge an existing console log (for testing)
#   --splat-re           do not boot: print the kernel-report regex (grep -E) and exit
#
# Guests at once: a boot first takes one of LV_GUESTS slots (default 2, one per
# host core: docs/testing.md, "Load"), lock files in LV_SLOTS_DIR (default
# /tmp/lazy_vmap-slots), shared by every run-guest.sh of the machine (make
# test's chains, a fresh-check root's, another terminal's), and waits for one.
#
# Guest protocol: /init prints "@@LV_BEGIN@@", runs `sh /test.sh` (stdout+stderr on
# the console), prints "@@LV_TAINT <n>@@" (n: /proc/sys/kernel/tainted after the
# script) and "@@LV_EXIT <rc>@@", then `sync; reboot -f` (with -no-reboot QEMU
# exits).  Guest env: LAZY_VMAP_KO (/lazy_vmap.ko or empty), AS_NOBODY, PATH.
#
# The judge fails a boot on any kernel report in the console log (SPLAT_PATTERNS
# below: BUG/WARN/oops, lockdep, KASAN/UBSAN, kmemleak, page poison and SLUB
# corruption, hung tasks, soft/hard lockups, RCU stalls), and on a taint at the
# end other than O (out-of-tree module, 4096) and E (unsigned module, 8192),
# which loading our module sets. With --expect-oops the taint is not judged (the
# oops taints D, and the guest never gets to print it).
#
# stdout: the script's output (console lines between the markers, minus kernel
# console lines, which carry a syslog prefix "<6>[    1.234567] ...").
# stderr: notes, a splat excerpt, one verdict line ("run-guest: PASS: ..." or
# "run-guest: FAIL: ...").
# Exit: 0 pass, 1 script failed, 2 kernel splat or bad taint, 3 timeout / no end
#       marker / no taint marker, 4 expected oops missing, 64 usage or setup error.
set -euo pipefail

readonly BEGIN_MARK='@@LV_BEGIN@@'
readonly EXIT_RE='@@LV_EXIT ([0-9]+)@@'
readonly TAINT_RE='@@LV_TAINT ([0-9]+)@@'
# Taint bits an unsigned out-of-tree module sets on load: O (12) and E (13).
readonly TAINT_OK=$(( (1 << 12) | (1 << 13) ))
# Run a command as uid/gid 65534 inside the guest: busybox su run by root asks for
# no password; -s is needed because nobody's login shell is nologin.  Verified in
# the guest: $AS_NOBODY 'id -u' prints 65534, writes to root-only files fail.
# (Debian's busybox has no setuidgid/chpst, and its setpriv has no --reuid.)
readonly AS_NOBODY_CMD='su -s /bin/sh nobody -c'
# Kernel reports that fail a boot, matched with grep -E anywhere in the console
# log (so a test script must not print these words itself). Console lines carry
# a syslog prefix ("<4>[   12.345678] "), and a kernel line can land in the
# middle of a script's line, so nothing is anchored at the start of a line.
SPLAT_PATTERNS=(
    # BUG()/WARN(), faults, "BUG: <what>" (bad page state, soft lockup,
    # workqueue lockup, sleeping function called, KASAN's "BUG: KASAN: ...").
    'BUG:' 'kernel BUG at' 'Oops:' 'WARNING:' 'general protection fault' 'Kernel panic'
    # Lockdep and atomic-context checks.
    'possible recursive locking' 'possible circular locking' 'inconsistent lock state'
    'INFO: possible irq lock inversion' 'sleeping function called from invalid context'
    'scheduling while atomic'
    # Page poisoning (page_poison=on): a write into a free page (mm/page_poison.c).
    'pagealloc: (memory corruption|single bit error)'
    # SLUB's checks (slub_debug=...): slab_bug() prints "BUG <cache> (<taint>): <what>",
    # <what> being "Poison overwritten", "Right Redzone overwritten", "Freepointer
    # corrupt", "Object already free", "Padding overwritten", ...
    'BUG [^ ]+ \((Not tainted|Tainted: [^)]*)\): '
    # Hung task detector (DETECT_HUNG_TASK): "INFO: task NAME:PID blocked for more
    # than N seconds." (NAME may hold spaces).
    'INFO: task .*:[0-9]+ blocked for more than [0-9]+ seconds'
    # Lockup detectors: "watchdog: BUG: soft lockup - CPU#N stuck for Ns! [..]"
    # (also matched by "BUG:") and "Watchdog detected hard LOCKUP on cpu N".
    'soft lockup - CPU#[0-9]+ stuck for' 'detected hard LOCKUP'
    # RCU: "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", "... self-detected
    # stall on CPU", "... detected expedited stalls ...", "rcu_tasks detected stalls".
    'RCU stall' 'rcu.*detected (expedited )?stall' 'INFO: [a-z_]+ (self-)?detected (expedited )?stall'
    # Other detectors of the debug kernel.
    'stack-protector' 'UBSAN:' 'KASAN:' 'kmemleak:.*new suspected memory leaks'
)
SPLAT_RE=$(IFS='|'; echo "${SPLAT_PATTERNS[*]}")
readonly SPLAT_RE
# Lines that belong to the expected oops itself (header lines of a BUG()/fault).
readonly OOPS_RE='kernel BUG at|Oops:|BUG: unable to handle|BUG: kernel NULL pointer dereference|general protection fault'

# No silent failure: die() says what is wrong; a FAIL verdict is repeated as
# the last line, "error: run-guest: ..."; any other command that ends the
# script under set -e is named by the ERR trap (errtrace: in functions too).
LV_SAID='' LV_FAIL='' LV_CMD='' LV_WHERE=''
die() { echo "error: run-guest: $*" >&2; LV_SAID=1; exit 64; }
note() { echo "run-guest: $*" >&2; case $* in FAIL:*) LV_FAIL=$*;; esac; }
set -E
trap 'LV_CMD=$BASH_COMMAND LV_WHERE=$LINENO' ERR
usage() { sed -n '/^# Usage:/,/^#   --splat-re/s/^# \{0,1\}//p' "$0" >&2; exit 64; }

# ---- Options -------------------------------------------------------------------
KERNEL='' MODULE='' SMP=4 MEM=1G TIMEOUT=300 APPEND='' LOG='' EXPECT_OOPS='' ACCEL=tcg
SCAN_LOG='' EXTRAS=() ICOUNT=0 WATCH='' INTERACTIVE=0
: "${LV_GUESTS:=2}" "${LV_SLOTS_DIR:=/tmp/lazy_vmap-slots}"
parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            -h|--help) usage ;;
            --splat-re) echo "$SPLAT_RE"; exit 0 ;;
            --) shift; break ;;
            --interactive) INTERACTIVE=1; shift; continue ;;
            --*) [ $# -ge 2 ] || die "$1 needs an argument" ;;
            *) break ;;
        esac
        case "$1" in
            --kernel) KERNEL=$2 ;;
            --module) MODULE=$2 ;;
            --extra) EXTRAS+=("$2") ;;
            --watch) WATCH=$2 ;;
            --smp) SMP=$2 ;;
            --mem) MEM=$2 ;;
            --timeout) TIMEOUT=$2 ;;
            --append) APPEND="${APPEND:+$APPEND }$2" ;;
            --log) LOG=$2 ;;
            --expect-oops) EXPECT_OOPS=$2 ;;
            --accel) ACCEL=$2 ;;
            --icount) ICOUNT=$2 ;;
            --scan-log) SCAN_LOG=$2 ;;
            *) die "unknown option $1 (see --help)" ;;
        esac
        shift 2
    done
    [ -n "$SCAN_LOG" ] && return 0
    [ $# -eq 1 ] || usage
    SCRIPT=$1
    [ -f "$SCRIPT" ] || die "no such script: $SCRIPT"
    [ -f "$KERNEL" ] || die "--kernel PATH (bzImage) is required and must exist"
    [ -z "$MODULE" ] || [ -f "$MODULE" ] || die "no such module: $MODULE"
    [ -z "$WATCH" ] || [ -f "$WATCH" ] || die "no such module: $WATCH"
    local f; for f in ${EXTRAS[@]+"${EXTRAS[@]}"}; do [ -f "$f" ] || die "no such file: $f"; done
    [[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "--timeout takes whole seconds"
    command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"
    [ -x /bin/busybox ] || die "/bin/busybox missing (apt-get install busybox-static)"
    if [ -z "$LOG" ]; then
        LOG="$(cd "$(dirname "$0")/.." && pwd)/out/guest/$(basename "$SCRIPT" .sh).log"
    fi
}

# ---- Accelerator: KVM only when asked and it really boots the kernel -------------
# /dev/kvm can exist and still hang the guest (nested KVM), so the probe boots the
# kernel with rdinit=/bin/true and wants to see it reach userspace within 20 s.
pick_accel() {
    case "$ACCEL" in
        tcg) return 0 ;;
        kvm) ;;
        *) die "--accel takes tcg or kvm" ;;
    esac
    if [ -r /dev/kvm ] && [ -w /dev/kvm ] && timeout --kill-after=5 20 qemu-system-x86_64 \
            -accel kvm -smp 1 -m 256M -no-user-config -nodefaults -display none \
            -kernel "$KERNEL" -initrd "$WORKDIR/initramfs.cpio.gz" -monitor none \
            -append "console=ttyS0 panic=-1 rdinit=/bin/true" -serial "file:$WORKDIR/kvm.log" \
            -nic none -no-reboot </dev/null >/dev/null 2>&1 \
       && grep -qa 'as init process' "$WORKDIR/kvm.log"; then
        return 0
    fi
    note "KVM requested but it does not boot the guest here; falling back to TCG"
    ACCEL=tcg
}

# ---- Initramfs: busybox applets, passwd/group, /init, the script and files -------
build_initramfs() {  # $1 = staging dir, $2 = output .cpio.gz
    local root=$1 out=$2 applet f ko=''
    [ -z "$MODULE" ] || ko=/lazy_vmap.ko
    mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,root}
    chmod 755 "$root" "$root"/{bin,sbin,etc,proc,sys,dev}
    cp /bin/busybox "$root/bin/busybox"
    for applet in $(/bin/busybox --list); do
        # Never link "busybox" to itself: that makes every exec fail with ELOOP.
        [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        > "$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
    cp "$SCRIPT" "$root/test.sh"
    [ -z "$MODULE" ] || cp "$MODULE" "$root/lazy_vmap.ko"
    [ -z "$WATCH" ] || cp "$WATCH" "$root/lv_watch.ko"
    for f in ${EXTRAS[@]+"${EXTRAS[@]}"}; do cp "$f" "$root/"; done
    cat > "$root/init" <<EOF
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs /tmp
exec </dev/console >/dev/console 2>&1
export PATH=/bin:/sbin HOME=/root
export LAZY_VMAP_KO=$ko
export AS_NOBODY='$AS_NOBODY_CMD'
cd /
[ ! -f /lv_watch.ko ] || insmod /lv_watch.ko || echo "@@LV_WATCH not loaded@@"
echo '$BEGIN_MARK'
sh /test.sh
rc=\$?
[ ! -f /lv_watch.ko ] || echo "@@LV_WATCH \$(cat /sys/module/lv_watch/parameters/report 2>&1)@@"
echo "@@LV_TAINT \$(cat /proc/sys/kernel/tainted)@@"
echo "@@LV_EXIT \$rc@@"
sync
reboot -f
EOF
    chmod -R a+rX "$root"
    chmod 755 "$root/init" "$root/test.sh"
    (cd "$root" && find . | cpio -o -H newc --owner=0:0 --quiet) | gzip -1 > "$out"
}

# ---- stdout filter: the script's lines between the markers, no printk lines -----
show_script_output() {
    awk -v begin="$BEGIN_MARK" '
        { sub(/\r+$/, "") }
        !on { if (index($0, begin)) on = 1; next }
        /@@LV_EXIT [0-9]+@@/ { sub(/@@LV_EXIT [0-9]+@@.*/, ""); if ($0 != "") print; exit }
        /@@LV_TAINT [0-9]*@@/ { sub(/@@LV_TAINT [0-9]*@@/, ""); if ($0 == "") next }
        /@@LV_WATCH [^@]*@@/ { sub(/@@LV_WATCH [^@]*@@/, ""); if ($0 == "") next }
        /^<[0-9]+>\[ *[0-9]+\.[0-9]+\] / { next }
        { print; fflush() }'
}

# ---- Boot the guest: QEMU under timeout, serial console to $LOG -----------------
QPID='' TPID='' WORKDIR=''
cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ -z "$LV_SAID" ] && [ "$BASH_SUBSHELL" -eq 0 ]; then
        if [ -n "$LV_FAIL" ]; then echo "error: run-guest: ${LV_FAIL#FAIL: }" >&2
        else echo "error: run-guest failed (exit $rc) at run-guest.sh:${LV_WHERE:-?}: ${LV_CMD:-?}${LOG:+ (console log $LOG)}" >&2; fi
    fi
    [ -z "$QPID" ] || kill -TERM "$QPID" 2>/dev/null || true   # timeout forwards it to QEMU
    [ -z "$TPID" ] || kill -TERM "$TPID" 2>/dev/null || true
    [ -z "$WORKDIR" ] || rm -rf "$WORKDIR"
}
trap cleanup EXIT
trap 'note "interrupted"; exit 130' INT
trap 'note "terminated"; exit 143' TERM

QEMU_RC=0
run_qemu() {
    # console_msg_format=syslog prefixes kernel console lines with "<level>", which
    # tells them apart from `dmesg` output that the script itself prints.
    local cmdline="console=ttyS0 console_msg_format=syslog panic=-1 loglevel=7"
    # A hung task, a soft lockup or an RCU stall fails the boot anyway: panic
    # on it (and panic=-1 reboots, which ends QEMU) instead of waiting out the
    # timeout, up to hours for a soak. The report is printed before the panic.
    cmdline+=" softlockup_panic=1 sysctl.kernel.hung_task_panic=1 sysctl.kernel.panic_on_rcu_stall=1"
    # The detectors' thresholds, written out (they are the kernels' defaults):
    # an RCU CPU stall after 21 s, a soft lockup after 2 x 10 s, a hung task
    # after 30 s. The worst wait a vCPU saw (lv_watch, docs/testing.md "Load"):
    # 0.49 s in make test's 2 lanes (the debug kernel's soak; 0.16 s on the
    # normal kernels), 1.1 s with 4 guests and loom on the 2 host cores
    # (2026-12-07): a margin of 19x at the worst. The stall-rcu and
    # stall-spin suites show a real stall still ends the guest under these.
    cmdline+=" rcupdate.rcu_cpu_stall_timeout=21 watchdog_thresh=10 sysctl.kernel.hung_task_timeout_secs=30"
    [ -z "$EXPECT_OOPS" ] || cmdline+=" oops=panic"
    [ -z "$APPEND" ] || cmdline+=" $APPEND"
    mkdir -p "$(dirname "$LOG")"
    : > "$LOG"
    # timeout runs QEMU in its own process group; TERM to it (from cleanup) is forwarded.
    local icount=()
    case "$ICOUNT" in
        0) ;;
        1) [ "$ACCEL" = tcg ] || die "--icount 1 needs TCG"; icount=(-icount "shift=0,sleep=off") ;;
        *) die "--icount takes 0 or 1" ;;
    esac
    if [ "$INTERACTIVE" = 1 ]; then
        # The console on this terminal, raw, and into the log as well.
        # --foreground: QEMU keeps the terminal (timeout would otherwise
        # put it in a background process group, where reading stops it).
        timeout --foreground --kill-after=10 "$TIMEOUT" qemu-system-x86_64 \
            -accel "$ACCEL" -smp "$SMP" -m "$MEM" -no-user-config -nodefaults \
            -kernel "$KERNEL" -initrd "$WORKDIR/initramfs.cpio.gz" -append "$cmdline" \
            -display none -chardev "stdio,id=con,signal=off,logfile=$LOG" -serial chardev:con \
            -monitor none -nic none -no-reboot || QEMU_RC=$?
        return 0
    fi
    timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 \
        -accel "$ACCEL" ${icount[@]+"${icount[@]}"} -smp "$SMP" -m "$MEM" -no-user-config -nodefaults \
        -kernel "$KERNEL" -initrd "$WORKDIR/initramfs.cpio.gz" -append "$cmdline" \
        -nographic -serial "file:$LOG" -monitor none -nic none -no-reboot \
        </dev/null >"$WORKDIR/qemu.err" 2>&1 &
    QPID=$!
    # Stream the script's output live; tail exits once QEMU is gone and the log is read.
    tail -s 0.2 --pid="$QPID" -n +1 -f "$LOG" 2>/dev/null | show_script_output &
    TPID=$!
    wait "$QPID" || QEMU_RC=$?
    QPID=''
    wait "$TPID" || true
    TPID=''
    if [ "$QEMU_RC" -ne 0 ] && [ "$QEMU_RC" -ne 124 ] && [ "$QEMU_RC" -ne 137 ] && [ -s "$WORKDIR/qemu.err" ]; then
        note "QEMU exited with $QEMU_RC:"; sed 's/^/  qemu: /' "$WORKDIR/qemu.err" >&2
    fi
}

# ---- Verdict: splats, end marker, timeout -> exit code ---------------------------
splat_excerpt() {  # $1 = log, $2 = line number of the first splat line
    local from=$2
    # Start at the "cut here" / "=====" banner just above, if there is one.
    if [ "$from" -gt 1 ] && sed -n "$((from - 1))p" "$1" | grep -qE 'cut here|======'; then
        from=$((from - 1))
    fi
    echo "---- kernel splat (console log $1, line $2) ----" >&2
    tail -n "+$from" "$1" | tr -d '\r' | head -n 40 >&2
    echo "----" >&2
}

# taint_flags N: the letters and names of the taint bits set in N, as the kernel
# prints them (kernel/panic.c, Documentation/admin-guide/tainted-kernels.rst).
taint_flags() {
    local n=$1 bit out='' names=(
        'P proprietary module' 'F forced module load' 'S CPU out of spec' 'R forced rmmod'
        'M machine check' 'B bad page' 'U user request' 'D kernel died (oops/BUG)'
        'A ACPI table overridden' 'W kernel warning' 'C staging driver'
        'I firmware workaround' 'O out-of-tree module' 'E unsigned module'
        'L soft lockup' 'K live patch' 'X auxiliary' 'T randstruct' 'N test module')
    for ((bit = 0; bit < 63; bit++)); do
        (( (10#$n >> bit) & 1 )) || continue
        out+="${out:+, }${names[bit]:-bit $bit}"
    done
    echo "$out"
}

judge() {  # $1 = log, $2 = 1 if QEMU was killed by the timeout
    local log=$1 timed_out=$2 first oops other rc taint bad
    first=$(grep -naE "$SPLAT_RE" "$log" | head -n1 | cut -d: -f1 || true)
    if [ -n "$EXPECT_OOPS" ]; then
        # The expected report: an oops, or what the regex names (a hung
        # task, for the drain-loop exhibit with its bound off).
        oops=$(grep -naE "$OOPS_RE|$EXPECT_OOPS" "$log" | head -n1 | cut -d: -f1 || true)
        if [ -z "$oops" ]; then
            [ -z "$first" ] || splat_excerpt "$log" "$first"
            note "FAIL: expected oops missing (no 'kernel BUG at'/'Oops:' in $log)"; return 4
        fi
        other=$(head -n "$oops" "$log" | grep -naE "$SPLAT_RE" | grep -vE "$OOPS_RE|$EXPECT_OOPS" | head -n1 | cut -d: -f1 || true)
        if [ -n "$other" ]; then
            splat_excerpt "$log" "$other"
            note "FAIL: another kernel splat came before the expected oops"; return 2
        fi
        if ! grep -qaE -- "$EXPECT_OOPS" "$log"; then
            splat_excerpt "$log" "$oops"
            note "FAIL: expected oops missing (the oops does not match /$EXPECT_OOPS/)"; return 4
        fi
        note "PASS: expected oops seen (line $oops, matches /$EXPECT_OOPS/)"; return 0
    fi
    rc=$(grep -aoE "$EXIT_RE" "$log" | tail -n1 | tr -dc '0-9' || true)
    if [ -n "$first" ]; then
        splat_excerpt "$log" "$first"
        note "FAIL: kernel splat (script exit ${rc:-none}, log $log)"; return 2
    fi
    if [ "$timed_out" = 1 ]; then
        note "FAIL: timeout after ${TIMEOUT}s (script exit ${rc:-not seen}, log $log)"; return 3
    fi
    if [ -z "$rc" ]; then
        note "FAIL: guest ended without the end marker (log $log)"; return 3
    fi
    # The taint after the script: /init prints it just before the end marker.
    taint=$(grep -aoE "$TAINT_RE" "$log" | tail -n1 | tr -dc '0-9' || true)
    if [ -z "$taint" ]; then
        note "FAIL: no taint marker (@@LV_TAINT <n>@@) before the end marker (script exit $rc, log $log)"; return 3
    fi
    if ! [[ "$taint" =~ ^[0-9]{1,18}$ ]]; then
        note "FAIL: taint marker unreadable: $taint (log $log)"; return 2
    fi
    bad=$(( 10#$taint & ~TAINT_OK ))
    if [ "$bad" -ne 0 ]; then
        note "FAIL: kernel tainted $taint: $(taint_flags "$bad") (beyond O/E of our module; script exit $rc, log $log)"
        return 2
    fi
    if [ "$rc" -ne 0 ]; then
        note "FAIL: script failed with exit code $rc (log $log)"; return 1
    fi
    local flags; flags=$(taint_flags "$taint")
    note "PASS: script exit 0, no kernel splat, taint $taint${flags:+ ($flags)} (log $log)"; return 0
}

# ---- Guest slots: at most LV_GUESTS guests at once on this machine -----------------
SLOT='' SLOT_WAIT=''
take_slot() {
    local t0=$SECONDS i noted=0
    [ "$LV_GUESTS" -gt 0 ] 2>/dev/null || die "LV_GUESTS must be a positive number"
    mkdir -p "$LV_SLOTS_DIR"; chmod 1777 "$LV_SLOTS_DIR" 2>/dev/null || true
    for ((;;)); do
        for ((i = 1; i <= LV_GUESTS; i++)); do
            exec 8>>"$LV_SLOTS_DIR/slot$i"
            if flock -n 8; then
                SLOT=$i
                [ $((SECONDS - t0)) -eq 0 ] || SLOT_WAIT=$((SECONDS - t0))
                return 0
            fi
            exec 8>&-
        done
        [ "$noted" = 1 ] || { note "waiting for a guest slot (LV_GUESTS=$LV_GUESTS busy)"; noted=1; }
        sleep 1
    done
}

# ---- Main ------------------------------------------------------------------------
main() {
    parse_args "$@"
    if [ -n "$SCAN_LOG" ]; then
        [ -f "$SCAN_LOG" ] || die "no such log: $SCAN_LOG"
        judge "$SCAN_LOG" 0 && exit 0 || exit $?
    fi
    WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/run-guest.XXXXXX")
    build_initramfs "$WORKDIR/root" "$WORKDIR/initramfs.cpio.gz"
    pick_accel
    take_slot
    local t0=$SECONDS timed_out=0 watch
    run_qemu
    case "$QEMU_RC" in 124|137) timed_out=1 ;; esac
    watch=$(grep -aoE '@@LV_WATCH [^@]*@@' "$LOG" | tail -n1 | sed 's/@@LV_WATCH \(.*\)@@/\1/' | tr -d '\r' || true)
    note "guest ran $((SECONDS - t0))s wall (accel $ACCEL$([ "$ICOUNT" = 1 ] && echo ", icount"), smp $SMP, mem $MEM${SLOT_WAIT:+, waited ${SLOT_WAIT}s for slot $SLOT of $LV_GUESTS})${watch:+; vCPU wait: $watch}"
    judge "$LOG" "$timed_out" && exit 0 || exit $?
}

main "$@"
