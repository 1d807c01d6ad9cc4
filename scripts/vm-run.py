#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Boot the test kernel under QEMU and run kselftest suites (or a script) in it.

The guest is a busybox initramfs built for each boot: the kernel's own modules
(for the C peers: zbud, z3fold, bcache, dm-cache), the project's modules under
/lib/modules/$(uname -r)/extra (depmod'ed, so zswap can load a zpool driver by
its alias), the kernel's kselftest runner (run_kselftest.sh, runner.sh,
ktap_helpers.sh from the kernel source), the selected suites, and the host
tools the suites ask for (their GUEST_TOOLS) with their shared libraries.

Suites are grouped by the guest they ask for in their settings file (cpus=,
mem=): one boot per distinct (cpus, mem), in a stable order (the group of
the first suite first; smoke is first of all), and the results are merged.
If smoke does not pass, nothing after it runs and the run fails.

Disks, created sparse and fresh for each boot and deleted after it:
  HDD   virtio-blk, rotational, discard=unmap       serial rkm-hdd  ($RKM_HDD)
  SSD   QEMU NVMe, non-rotational                   serial rkm-ssd  ($RKM_SSD)
  swap  virtio-blk without discard or write-zeroes  serial rkm-swap ($RKM_SWAP)

Serial ports: ttyS0 is the console (the full log), ttyS1 carries the KTAP
output alone, ttyS2 the guest's dmesg at the end of the run. On the host:
  - the logs are kept in --log-dir (build/logs/<time>-<flavour>/, one
    subdirectory per boot, and build/logs/latest points at the newest) and
    their paths are printed;
  - a boot fails on any kernel report in the console log or the dmesg
    (scripts/kreport.py: oops, BUG, WARNING, SLUB, KASAN, lockdep, ...)
    that no expected-WARN window excuses, even if every test said ok; on a
    taint other than O and E at the end (W only if every WARN was
    excused); on a dmesg that does not reach back to the boot (the log
    buffer wrapped); on fewer CPUs online than vCPUs booted; on a guest that
    prints nothing for the inactivity limit or outlives its budget (after a
    blocked-task dump, sysrq w and l, that goes into the report); on any
    test that failed, KTAP that breaks the rules (scripts/ktap.py), and a
    test program skipped as a whole in a suite not marked optional;
  - a suite of several boots with hotplug=1 starts every boot after the
    first without the HDD and the SSD: the guest plugs each with a line
    RKM-HOTPLUG: hdd (or ssd) on the console, and the host's device_add on
    QEMU's monitor makes it appear, as a disk plugged in would;
  - a suite of several boots with powercut=S in its settings has every
    boot but the last end in a power cut: after the run, the guest's
    workload prints RKM-POWERCUT-ARMED and the host kills QEMU (SIGKILL)
    at a delay in [0, S) s drawn from a seed printed in the log (set it
    with RKM_POWERCUT_SEED to draw the same delays); a boot that ends
    before its cut fails;
  - the last line printed is "N passed, N failed[, N skipped]", counting the
    leaf test cases plus the harness's own checks of each boot (the guest
    finished; the kernel log is clean).
The exit status is 0 only when nothing failed.
"""

import argparse
import datetime
import json
import os
import random
import re
import socket
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "scripts"))

import ktap  # noqa: E402
import kreport  # noqa: E402

BUSYBOX = "/bin/busybox"
# Tools every guest gets: coreutils' timeout makes the kselftest runner
# enforce the per-test timeouts of the suites' settings files.
BASE_TOOLS = ["/usr/bin/timeout"]
DONE_MARKER = "RKM-GUEST-DONE"
TAINT_MARKER = "RKM-TAINTED"
# From QEMU's start to the first test, and from the last test to power-off
# (the dmesg goes out over a serial port), per boot: measured 14 to 21 s
# to the first test under the debug kernel (2026-12-04/05), a few seconds
# to stop; a busy host doubles it.
BOOT_MARGIN = {"debug": 120, "perf": 90}
SCRIPT_TIMEOUT = 600
# A suite's settings (protocols: timeout, cpus, mem; budget, inactivity,
# optional are the harness's own, Documentation/building-and-testing.rst).
SETTINGS = {"timeout": 45, "cpus": 2, "mem": "2G", "budget": None, "inactivity": None,
            "optional": 0, "boots": 1, "powercut": 0, "margin": None, "hotplug": 0}
# Seconds without a byte on the console before the watchdog dumps the
# blocked tasks and kills the guest. Some steps of the debug kernel under
# TCG are silent for a minute or two; a suite can raise it (inactivity=).
INACTIVITY = 300
FAIL_FAST_SUITE = "smoke"
# The kernel's log buffer: large enough that a whole run's dmesg fits
# (checked: the dmesg must start with the boot). The dmesg of a whole
# `make vmtest` measured 61 KB on 2026-12-04; the kernel's default (128 KiB
# here) is too close, 4 MiB leaves room for suites that log more.
LOG_BUF_LEN = "4M"
# The guest's workload prints it when the host may cut the power.
POWERCUT_MARKER = "RKM-POWERCUT-ARMED"
# ... and this, with what went wrong, when its own checks fail (the boot
# fails: nothing else would see it, the run is over).
POWERCUT_FAILED = "RKM-POWERCUT-FAILED"
# A guest line "RKM-HOTPLUG: NAME" plugs disk NAME (hdd or ssd) in a boot
# that started without it (hotplug= in the suite's settings).
HOTPLUG_MARKER = "RKM-HOTPLUG: "
# The QEMU devices of the disks, by name: plugged at boot with -device, or
# later with the monitor's device_add.
DISK_DEVICES = {
    "hdd": "virtio-blk-pci,drive=hdd,serial=rkm-hdd,id=hdd-dev",
    "ssd": "nvme,drive=ssd,serial=rkm-ssd,id=ssd-dev",
    # The swap disk offers neither discard nor write-zeroes: a backing
    # device without discard, for bcache_rs's discard-limit test.
    "swap": "virtio-blk-pci,drive=swap,serial=rkm-swap,discard=off,write-zeroes=off,id=swap-dev",
}
HOTPLUG_DISKS = ("hdd", "ssd")
PROGRAM_START = re.compile(r"^# selftests: (\S+): (\S+)\s*$")
PROGRAM_END = re.compile(r"^(?:not )?ok \d+ selftests: (\S+): (\S+)")


def log(msg):
    print(f"vm: {msg}", flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kdir", required=True, help="the kernel build tree (make print-kdir)")
    p.add_argument("--flavour", default="debug", choices=["debug", "perf"])
    p.add_argument("--modules", nargs="*", default=[], help="the project's .ko files")
    p.add_argument("--fixtures", nargs="*", default=[],
                   help="fixture .ko files, staged but not in $RKM_MODULES")
    p.add_argument("--suites-root", default=os.path.join(TOP, "tests"))
    p.add_argument("--script", help="run this shell script in the guest instead of suites")
    p.add_argument("--guest-tools", nargs="*", default=[], help="more host tools for the guest")
    p.add_argument("--timeout", type=int, default=0,
                   help="seconds for each boot (default: boot margin + the suites' budgets)")
    p.add_argument("--max-total", type=int, default=0,
                   help="seconds for all boots together: fail before booting if the suites' "
                        "budgets exceed it, and stop when it is spent (0: no cap)")
    p.add_argument("--inactivity", type=int, default=0,
                   help=f"seconds of console silence before the watchdog dumps the blocked "
                        f"tasks and kills the guest (default {INACTIVITY}, or the suite's "
                        "inactivity= setting; a --script run: none)")
    p.add_argument("--log-dir", help="where the logs go (default build/logs/<time>-<flavour>)")
    p.add_argument("--results", help="write the counts here as JSON")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="also set KEY (RKM_*) in the guest's /etc/rkm.env")
    p.add_argument("--append", action="append", default=[], metavar="PARAM",
                   help="also pass PARAM on the guest kernel's command line")
    p.add_argument("--mem", help="guest memory (default: the suites' mem=, or 2G)")
    p.add_argument("--cpus", type=int, help="vCPUs (default: the suites' cpus=, or 2)")
    p.add_argument("--hdd-size", default="2G")
    p.add_argument("--ssd-size", default="1G")
    p.add_argument("--swap-size", default="1G")
    p.add_argument("--hdd-iops", type=int, default=0,
                   help="throttle the HDD to this many IOPS (0: unthrottled)")
    p.add_argument("--jobs", type=int, default=1,
                   help="boots run at once (default 1). The boot with smoke runs first, "
                        "alone; the others then run JOBS at a time, each with its own "
                        "disks and logs. Boots that idle (watchdog waits, boots) overlap; "
                        "boots that keep every vCPU busy only slow each other down")
    p.add_argument("--icount", action="store_true",
                   help="count instructions: QEMU's -icount shift=0, so that the guest's "
                        "clock advances one nanosecond an instruction it executes, whatever "
                        "the host does meanwhile (one TCG thread for all vCPUs). For "
                        "benchmarks that must resolve a few percent on a noisy host")
    p.add_argument("--keep-images", action="store_true")
    p.add_argument("--quiet", action="store_true", help="do not echo the console")
    p.add_argument("suites", nargs="*", help="suites under --suites-root (default: all)")
    return p.parse_args()


# ---------------------------------------------------------------- settings

def read_settings(sdir):
    """A suite's settings file as a dict (SETTINGS' keys; unknown keys and
    bad values are errors)."""
    s = dict(SETTINGS)
    path = os.path.join(sdir, "settings")
    if not os.path.exists(path):
        return s
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep or key not in SETTINGS:
                raise SystemExit(f"vm: {path}:{n}: unknown setting {line!r} "
                                 f"(known: {', '.join(SETTINGS)})")
            if key == "mem":
                if not re.fullmatch(r"\d+[MG]", value):
                    raise SystemExit(f"vm: {path}:{n}: mem= wants e.g. 2G or 1536M")
                s[key] = value
            else:
                try:
                    s[key] = int(value)
                except ValueError:
                    raise SystemExit(f"vm: {path}:{n}: {key}= wants a number, not {value!r}")
    return s


class Suite:
    def __init__(self, root, name):
        self.name = name
        self.dir = os.path.join(root, name)
        if not os.path.isfile(os.path.join(self.dir, "Makefile")):
            raise SystemExit(f"vm: no suite '{name}' (no {self.dir}/Makefile)")
        self.settings = read_settings(self.dir)
        self.programs = suite_make(self.dir, "print-tests")
        self.tools = suite_make(self.dir, "print-guest-tools")
        # Without budget=, a suite may use every program's whole timeout.
        self.budget = self.settings["budget"] or len(self.programs) * self.settings["timeout"]
        if (self.settings["powercut"] or self.settings["hotplug"]) and self.settings["boots"] < 2:
            raise SystemExit(f"vm: {self.dir}/settings: powercut= and hotplug= need boots=2 or "
                             "more (the boot after a cut checks what it left; the first boot "
                             "of a hotplug suite has every disk plugged, to prepare them)")

    @property
    def group(self):
        return (self.settings["cpus"], self.settings["mem"])


def order_suites(names):
    """smoke first (it fails the run fast), then the others as given."""
    return sorted(names, key=lambda n: n != FAIL_FAST_SUITE)


# ---------------------------------------------------------------- initramfs

def copy_file(src, root, dest=None):
    dest = os.path.join(root, (dest or src).lstrip("/"))
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    shutil.copy2(os.path.realpath(src), dest)
    return dest


def add_binary(path, root):
    """Copy a host program into the guest's /usr/bin, with the shared
    libraries ldd says it needs (at their own paths)."""
    real = shutil.which(path) if not os.path.isabs(path) else path
    if not real or not os.path.exists(real):
        raise SystemExit(f"vm: the guest needs {path}, which is not there "
                         "(make deps installs the host's tools, make tools builds ours)")
    copy_file(real, root, "/usr/bin/" + os.path.basename(path))
    out = subprocess.run(["ldd", real], capture_output=True, text=True).stdout
    for line in out.splitlines():
        m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if m and os.path.exists(m.group(1)):
            copy_file(m.group(1), root)


def suite_make(suite_dir, target, **vars_):
    args = ["make", "-s", "--no-print-directory", "-C", suite_dir, target]
    args += [f"{k}={v}" for k, v in vars_.items()]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"vm: make {target} in {suite_dir} failed:\n{r.stderr}")
    return r.stdout.split()


def kernel_release(kdir):
    with open(os.path.join(kdir, "include/config/kernel.release")) as f:
        return f.read().strip()


def build_initramfs(args, root, release, suites, cpus):
    for d in ["bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "run", "root",
              "usr/bin", "usr/sbin", "mnt", "kselftest"]:
        os.makedirs(os.path.join(root, d), exist_ok=True)
    copy_file(BUSYBOX, root, "/bin/busybox")

    # The kernel's own modules, then ours in extra/, and modules.dep for both.
    modroot = os.path.join(args.kdir, "modroot/lib/modules", release)
    dest = os.path.join(root, "lib/modules", release)
    if os.path.isdir(modroot):
        shutil.copytree(modroot, dest, symlinks=False,
                        ignore=shutil.ignore_patterns("build", "source"))
    os.makedirs(os.path.join(dest, "extra"), exist_ok=True)
    names = []
    for ko in args.modules + args.fixtures:
        shutil.copy2(ko, os.path.join(dest, "extra"))
    for ko in args.modules:
        names.append(os.path.basename(ko)[:-3])
    subprocess.run(["depmod", "-b", root, release], check=True)

    tools = list(BASE_TOOLS) + list(args.guest_tools)
    # The kselftest runner and the suites.
    ksrc = os.path.join(os.path.realpath(os.path.join(args.kdir, "source")),
                        "tools/testing/selftests")
    if not os.path.isdir(ksrc):
        ksrc = os.path.join(args.kdir, "tools/testing/selftests")
    kroot = os.path.join(root, "kselftest")
    shutil.copy2(os.path.join(ksrc, "run_kselftest.sh"), kroot)
    shutil.copytree(os.path.join(ksrc, "kselftest"), os.path.join(kroot, "kselftest"))
    shutil.copytree(os.path.join(TOP, "tests/lib"), os.path.join(kroot, "lib"))
    listing = []
    for suite in suites:
        suite_make(suite.dir, "install", INSTALL_PATH=os.path.join(kroot, suite.name))
        listing += [f"{suite.name}:{p}" for p in suite.programs]
        tools += suite.tools
    with open(os.path.join(kroot, "kselftest-list.txt"), "w") as f:
        f.write("".join(line + "\n" for line in listing))
    for tool in sorted(set(tools)):
        add_binary(tool, root)

    env = {
        "RKM_MODE": "script" if args.script else "kselftest",
        "RKM_MODULES": " ".join(names),
        "RKM_FLAVOUR": args.flavour,
        "RKM_CPUS": str(cpus),
        "RKM_SUITES": " ".join(s.name for s in suites),
        "RKM_FAIL_FAST": FAIL_FAST_SUITE,
    }
    for kv in args.env:
        key, sep, value = kv.partition("=")
        if not sep or not key.startswith("RKM_") or not key.replace("_", "").isalnum():
            sys.exit(f"vm-run: --env wants RKM_KEY=VALUE, not {kv!r}")
        env[key] = value
    with open(os.path.join(root, "etc/rkm.env"), "w") as f:
        for k, v in env.items():
            f.write(f"{k}='{v}'\n" if "'" not in v else f'{k}="{v}"\n')
    if args.script:
        shutil.copy2(args.script, os.path.join(root, "root/script.sh"))
    shutil.copy2(os.path.join(TOP, "scripts/guest-init.sh"), os.path.join(root, "init"))
    os.chmod(os.path.join(root, "init"), 0o755)


def make_cpio(root, out):
    files = subprocess.run(["find", "."], cwd=root, capture_output=True, text=True,
                           check=True).stdout
    with open(out, "wb") as f:
        subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "--owner=0:0"], cwd=root,
                       input=files.encode(), stdout=f, check=True)


# ---------------------------------------------------------------- the run

def qemu_command(args, run_dir, kernel_image, initrd, images, cpus, mem, phase=None,
                 powercut=False, unplugged=(), monitor=None):
    drive = "if=none,format=raw,cache=writeback,aio=threads"
    hdd_throttle = f",throttling.iops-total={args.hdd_iops}" if args.hdd_iops else ""
    # A panic reboots, and -no-reboot turns that into QEMU's exit; an oops
    # or a WARN does not stop the guest, so the harness reads the report.
    # Under TCG on a loaded 2-core host a vCPU can stall for tens of seconds,
    # so the soft-lockup (2 x watchdog_thresh) and RCU-stall thresholds are
    # raised to 120 s: a real lockup is still reported, a slow host is not.
    # ACPI enumerates the vCPUs; acpi=noirq skips its PCI IRQ routing, whose
    # AML takes most of a minute to interpret under TCG (the devices use MSI).
    # The log buffer does not wrap in a run (the host checks the dmesg
    # starts at the boot), and writes to /dev/kmsg are not rate-limited
    # (the default drops all but 10 lines in 5 s: window markers with them).
    append = ["console=ttyS0,115200", "printk.time=1", "loglevel=7", "rdinit=/init",
              "panic=-1", "softlockup_panic=0", "hung_task_panic=0",
              "watchdog_thresh=60", "rcupdate.rcu_cpu_stall_timeout=120", "acpi=noirq",
              f"log_buf_len={LOG_BUF_LEN}", "printk.devkmsg=on"]
    append += args.append
    if phase is not None:
        append.append(f"rkm.phase={phase}")
    if powercut:
        append.append("rkm.powercut=1")
    # -icount: the virtual clock (and the TSC, which follows it) advances
    # 2^shift ns an instruction, so that a guest's timings count its
    # instructions; sleep=on lets it jump while every vCPU idles. It needs
    # the single-threaded TCG.
    accel = (["-accel", "tcg,thread=single", "-icount", "shift=0,sleep=on,align=off"]
             if args.icount else ["-accel", "tcg,thread=multi"])
    return [
        "qemu-system-x86_64",
    ] + accel + [
        "-cpu", "max",
        "-smp", str(cpus),
        "-m", mem,
        "-display", "none", "-vga", "none",
        "-no-reboot",
        "-kernel", kernel_image,
        "-initrd", initrd,
        "-append", " ".join(append),
        # The console is multiplexed (mux=on) so that the watchdog can send
        # a serial BREAK (C-a b on QEMU's stdin), which the guest's 8250
        # driver turns into magic SysRq with the next character.
        "-chardev", "stdio,id=con,mux=on,signal=off",
        "-serial", "chardev:con",
        "-serial", f"file:{os.path.join(run_dir, 'ktap.log')}",
        "-serial", f"file:{os.path.join(run_dir, 'dmesg.log')}",
        # The HDD: a discarded range reads back zeros (the raw file is punched).
        "-drive", f"file={images['hdd']},{drive},id=hdd,discard=unmap{hdd_throttle}",
        "-drive", f"file={images['ssd']},{drive},id=ssd",
        "-drive", f"file={images['swap']},{drive},id=swap",
    ] + [a for name, dev in DISK_DEVICES.items() if name not in unplugged
         for a in ("-device", dev)] + [
        "-monitor", f"unix:{monitor},server=on,wait=off" if monitor else "none",
    ]


class Console:
    """QEMU's console as it comes: the log file, the live echo, the time of
    the last output, and the host time each test program started and ended."""

    def __init__(self, path, quiet, script):
        self.path = path
        self.quiet = quiet
        self.script = script
        self.start = time.monotonic()
        self.last_at = self.start
        self.longest_silence = 0.0
        self.booted_at = None
        self.current = None  # (suite, program, started)
        self.programs = []  # (suite, program, seconds)
        self.armed_at = None  # when the guest armed its power cut
        self.hotplug = []  # disks the guest asked for, not plugged yet
        self.hotplug_errors = []

    def line(self, line):
        now = time.monotonic()
        self.longest_silence = max(self.longest_silence, now - self.last_at)
        self.last_at = now
        # The test's own text is what stands before any kernel line in it.
        own = kreport.STAMP.split(line, maxsplit=1)[0]
        if self.booted_at is None and own.startswith("rkm: guest up"):
            self.booted_at = now
        if self.armed_at is None and own.startswith(POWERCUT_MARKER):
            self.armed_at = now
        if own.startswith(HOTPLUG_MARKER):
            self.hotplug.append(own[len(HOTPLUG_MARKER):].strip())
        m = PROGRAM_START.match(own)
        if m:
            self.current = (m.group(1), m.group(2), now)
        m = PROGRAM_END.match(own)
        if m and self.current and (m.group(1), m.group(2)) == self.current[:2]:
            self.programs.append((m.group(1), m.group(2), now - self.current[2]))
            self.current = None
        if not self.quiet and echo_line(line, own, self.script):
            print(f"  | {line}", flush=True)


def monitor_command(path, command):
    """Sends one command to QEMU's human monitor on the unix socket at
    path and returns what it answered (its prompt and echo stripped)."""
    def until_prompt(s):
        got = b""
        while not got.endswith(b"(qemu) "):
            chunk = s.recv(4096)
            if not chunk:
                raise OSError(f"the monitor closed the connection (after {got!r})")
            got += chunk
        return got

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        until_prompt(s)
        s.sendall(command.encode() + b"\n")
        reply = until_prompt(s)
    text = reply.decode("utf-8", "replace").replace("\r", "")
    lines = [ln for ln in text.split("\n") if ln and not ln.startswith("(qemu)")
             and command not in ln and not ln.startswith("\x1b")]
    return "\n".join(lines).strip()


def plug(name, monitor, unplugged, boot_name):
    """Plugs disk name (device_add) for a guest that asked. Returns what
    went wrong (a failure of the boot), or None."""
    if monitor is None or name not in unplugged:
        return f"the guest asked to plug {name!r}, which is not an unplugged disk " \
               f"({', '.join(unplugged) or 'none'})"
    unplugged.remove(name)
    try:
        answer = monitor_command(monitor, f"device_add {DISK_DEVICES[name]}")
    except OSError as e:
        return f"device_add {name}: the monitor: {e}"
    log(f"[{boot_name}] plugged {name}: device_add {DISK_DEVICES[name]}"
        + (f" ({answer})" if answer else ""))
    return f"device_add {name}: {answer}" if answer else None


def run_qemu(cmd, console, timeout, inactivity_for, name, cut_after=None, monitor=None,
             unplugged=()):
    """Run QEMU with its console to console.path. Returns (why it was
    killed or None, elapsed seconds, whether the power was cut).
    inactivity_for(suite) is the silence allowed while suite runs (None
    before the first). With cut_after, QEMU is killed that many seconds
    after the guest armed its power cut (POWERCUT_MARKER): a power cut,
    not a failure. The disks in unplugged are plugged when the guest asks
    (HOTPLUG_MARKER), through the monitor; what went wrong doing it is in
    console.hotplug_errors."""
    with open(console.path, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)

        def pump():
            for raw in proc.stdout:
                out.write(raw)
                out.flush()
                console.line(raw.decode("utf-8", "replace").rstrip("\r\n"))

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        killed = None
        cut = False
        next_beat = console.start + 60
        while proc.poll() is None:
            now = time.monotonic()
            armed = console.armed_at
            while console.hotplug:
                err = plug(console.hotplug.pop(0), monitor, unplugged, name)
                if err:
                    console.hotplug_errors.append(err)
            if cut_after is not None and armed is not None and now >= armed + cut_after:
                proc.kill()
                cut = True
                log(f"[{name}] power cut: QEMU killed {now - armed:.2f}s after the guest "
                    f"armed it (drawn: {cut_after:.2f}s)")
                break
            current = console.current  # the reader thread replaces it
            suite = current[0] if current else None
            limit = inactivity_for(suite)
            if now - console.start > timeout:
                killed = f"the guest did not finish within its budget of {timeout}s"
            elif now - console.last_at > limit:
                killed = (f"the guest printed nothing for {limit}s"
                          + (f" (in {suite}: {current[1]})" if current else ""))
            if killed:
                log(f"[{name}] {killed}: asking it for its tasks (sysrq w, l, t), then killing it")
                sysrq_dump(proc, console)
                proc.kill()
                break
            if now >= next_beat:
                what = f"; running {current[0]}: {current[1]}" if current else ""
                log(f"[{name}] still running ({int(now - console.start)}s of at most {timeout}s{what})")
                next_beat += 60
            time.sleep(0.02 if armed is not None else 0.2)
        proc.wait()
        reader.join(timeout=5)
    return killed, time.monotonic() - console.start, cut


def sysrq_dump(proc, console):
    """Magic SysRq over the serial console: a BREAK (QEMU's mux escape
    C-a b) then the command key. w shows the blocked (D state) tasks, l the
    backtraces of the running CPUs, t every task's state and stack (a guest
    silent with idle CPUs and no D-state task waits in userspace, or in an
    interruptible sleep: t shows where). Waits for each dump to go quiet."""
    for key in (b"w", b"l", b"t"):
        try:
            proc.stdin.write(b"\x01b")
            proc.stdin.flush()
            time.sleep(0.5)
            proc.stdin.write(key)
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return
        sent = time.monotonic()
        # Up to 90 s for the dump; done once the console is quiet for 5 s.
        while proc.poll() is None and time.monotonic() - sent < 90:
            if time.monotonic() - max(console.last_at, sent) > 5:
                break
            time.sleep(0.2)


def echo_line(line, own, script):
    """Which console lines to show live: results and what goes wrong (and a
    script's whole output)."""
    for _, body in kreport.kernel_lines([line]):
        kind = kreport.classify(body)
        if kind and kind != "stack trace" or "sysrq:" in body or "rkm-expect:" in body:
            return True
    return script or bool(re.match(r"^(# )?(not )?ok \d+|^rkm:|^# selftests:", own))


def running_programs(text):
    """(line number, what ran from there on) of a log: the console's
    "# selftests: S: P" lines, or the runner's "kselftest: Running tests in S"
    kernel lines in the dmesg."""
    marks = [(0, "the boot")]
    for n, line in enumerate(text.splitlines(), 1):
        own = kreport.STAMP.split(line, maxsplit=1)[0]
        m = PROGRAM_START.match(own)
        if m:
            marks.append((n, f"{m.group(1)}: {m.group(2)}"))
            continue
        m = re.search(r"\] kselftest: Running tests in (\S+)", line)
        if m:
            marks.append((n, m.group(1)))
    return marks


def program_at(marks, lineno):
    return [what for n, what in marks if n <= lineno][-1]


def blocked_task_dump(text, limit=400):
    """The lines of the sysrq dumps in a console log."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "sysrq: Show Blocked State" in line or "sysrq: Show backtrace" in line:
            return lines[i:i + limit]
    return []


class Boot:
    """One boot of the guest for a group of suites (or a script)."""

    def __init__(self, name, suites, cpus, mem, timeout):
        self.name = name
        self.suites = suites
        self.cpus = cpus
        self.mem = mem
        self.timeout = timeout
        self.run_dir = None
        self.killed = None
        self.elapsed = 0.0
        self.console = None
        self.failures = []
        # Each failed KTAP case: "selftests: SUITE: PROGRAM: CASE # directive".
        self.failed_cases = []
        self.counts = {"passed": 0, "failed": 0, "skipped": 0}
        self.programs = []
        self.smoke_failed = False
        # A suite of boots=N runs in N boots of the same disk images, one
        # after the other (phase 1..N, rkm.phase= on the kernel command
        # line, $RKM_PHASE in the guest): the first boot's followers.
        self.phase = 1
        self.followers = []
        self.chain = [self]
        self.images_dir = None
        # A power-cut boot: the delay after arming (None: runs to its end),
        # and whether the cut happened.
        self.cut_after = None
        self.cut = False
        # The disks not plugged at boot (hotplug=): the guest plugs them.
        self.unplugged = ()


def inactivity_limit(args, boot):
    """The console silence allowed while a suite runs. A --script run (a
    benchmark, the demo) has no inactivity limit unless --inactivity gives
    one: its budget (--timeout) still stops it, with the same task dump."""
    by_suite = {s.name: s.settings["inactivity"] for s in boot.suites}
    default = boot.timeout if args.script else INACTIVITY

    def limit(suite):
        return args.inactivity or by_suite.get(suite) or default
    return limit


def run_boot(args, boot, kernel_image, release):
    work = tempfile.mkdtemp(prefix="rkm-vm-")
    try:
        root = os.path.join(work, "root")
        build_initramfs(args, root, release, boot.suites, boot.cpus)
        initrd = os.path.join(work, "initramfs.cpio")
        make_cpio(root, initrd)
        # The disks: new, or the previous phase's (kept for the next).
        shared = boot.images_dir
        if boot.followers and shared is None:
            shared = tempfile.mkdtemp(prefix="rkm-vm-disks-")
            for f in boot.followers:
                f.images_dir = shared
        images = {}
        for name, size in [("hdd", args.hdd_size), ("ssd", args.ssd_size),
                           ("swap", args.swap_size)]:
            images[name] = os.path.join(shared or work, f"{name}.img")
            if not os.path.exists(images[name]):
                subprocess.run(["truncate", "-s", size, images[name]], check=True)
        what = (f"suites {' '.join(s.name for s in boot.suites)}" if not args.script
                else os.path.basename(args.script))
        log(f"booting the {args.flavour} kernel {release} (TCG, {boot.cpus} vCPUs, "
            f"{boot.mem}) to run {what}; budget {boot.timeout}s")
        log(f"logs in {boot.run_dir}")
        unplugged = list(boot.unplugged)
        monitor = os.path.join(work, "monitor.sock") if unplugged else None
        if unplugged:
            log(f"[{boot.name}] not plugged at boot: {' '.join(unplugged)} (the guest plugs "
                f"them: {HOTPLUG_MARKER.strip()} NAME)")
        cmd = qemu_command(args, boot.run_dir, kernel_image, initrd, images, boot.cpus,
                           boot.mem, boot.phase if len(boot.chain) > 1 else None,
                           boot.cut_after is not None, unplugged, monitor)
        with open(os.path.join(boot.run_dir, "qemu-cmdline.txt"), "w") as f:
            f.write(" ".join(cmd) + "\n")
        boot.console = Console(os.path.join(boot.run_dir, "console.log"), args.quiet,
                               bool(args.script))
        boot.killed, boot.elapsed, boot.cut = run_qemu(
            cmd, boot.console, boot.timeout, inactivity_limit(args, boot), boot.name,
            boot.cut_after, monitor, unplugged)
        boot.failures.extend(boot.console.hotplug_errors)
        last = boot is boot.chain[-1]
        if args.keep_images:
            for name, path in images.items():
                if last or not shared:
                    shutil.move(path, os.path.join(boot.run_dir, f"{name}.img"))
                else:
                    shutil.copy(path, os.path.join(boot.run_dir, f"{name}.img"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if boot.images_dir and boot.phase > 1 and boot is boot.chain[-1]:
            shutil.rmtree(boot.images_dir, ignore_errors=True)


def judge_boot(args, boot):
    """The failures and counts of one boot, from its logs."""
    console_path = os.path.join(boot.run_dir, "console.log")
    dmesg_path = os.path.join(boot.run_dir, "dmesg.log")
    with open(console_path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    failures = boot.failures
    done = re.search(rf"^{DONE_MARKER} status=(\d+)", text, re.M)
    if boot.killed:
        dump = blocked_task_dump(text)
        failures.append(f"{boot.killed}: killed; the last console lines and the blocked-task "
                        f"dump are in {console_path}")
        if dump:
            print(f"\nvm: [{boot.name}] blocked tasks (sysrq w), CPUs (sysrq l), all tasks (sysrq t; the whole dump is in the console log):", flush=True)
            for line in dump:
                print(f"  {line}")
        else:
            failures.append("the guest did not answer the sysrq requests (no task dump)")
    elif not done:
        failures.append("the guest stopped before the end of the run (crash or panic?)")
    for m in re.finditer(rf"^{POWERCUT_FAILED}:? ?(.*)$", text, re.M):
        failures.append(f"the power-cut workload failed: {m.group(1).strip()}")
    if boot.cut_after is not None and not boot.cut and not boot.killed:
        if boot.console.armed_at is None:
            failures.append(f"no power cut: the guest never armed it ({POWERCUT_MARKER} on "
                            "the console, from the workload of rkm_powercut_workload)")
        else:
            failures.append(f"no power cut: the guest ended before it (due {boot.cut_after:.2f}s "
                            "after arming)")

    up = re.search(r"^rkm: guest up: .*?, (\d+) CPUs", text, re.M)
    if up and int(up.group(1)) != boot.cpus:
        failures.append(f"the guest has {up.group(1)} CPUs online, {boot.cpus} were booted "
                        "(CONFIG_NR_CPUS of the test kernel?)")

    scans = {p: kreport.scan_file(p) for p in (console_path, dmesg_path) if os.path.exists(p)}
    splats = kreport.merge_findings(scans.values())
    for f in splats[:3]:
        print(f"\nvm: [{boot.name}] kernel report ({f.kind}) at {f.path}:{f.lineno}:"
              + (f" {f.message}" if f.message else ""), flush=True)
        for line in f.context:
            print(f"  {line}")
    if splats:
        # One line per report line, with the test program that was running.
        print(f"\nvm: [{boot.name}] the kernel reports, by test program:")
        during = {console_path: running_programs(text)}
        if dmesg_path in scans:
            with open(dmesg_path, encoding="utf-8", errors="replace") as f:
                during[dmesg_path] = running_programs(f.read())
        for f in splats[:60]:
            what = f.message or f.context[min(f.lineno - 1, 2)].strip()
            print(f"  {f.kind} during {program_at(during[f.path], f.lineno)} "
                  f"({os.path.basename(f.path)}:{f.lineno}): {what}")
        if len(splats) > 60:
            print(f"  ... and {len(splats) - 60} more")
    for f in splats:
        if f.message:
            failures.append(f"{os.path.basename(f.path)}:{f.lineno}: {f.message}")
    if splats:
        kinds = sorted({f.kind for f in splats})
        failures.append(f"the kernel log has {len(splats)} report line(s): {', '.join(kinds)}")

    if done:
        dmesg = scans.get(dmesg_path)
        if dmesg is None or not dmesg.starts_at_boot:
            failures.append(f"the dmesg ({dmesg_path}) does not start at the boot (no "
                            "'Linux version' line): the kernel's log buffer wrapped, raise "
                            "log_buf_len")
        taint = re.search(rf"^{TAINT_MARKER} (\d+)", text, re.M)
        if not taint:
            failures.append("the guest did not print its taint flags")
        else:
            # The dmesg is the whole log (checked above); the console may
            # have lost lines.
            s = dmesg or scans[console_path]
            failures.extend(kreport.taint_problems(int(taint.group(1)), s.warns,
                                                   s.warns_excused, s.slab_leaks))

    counts = boot.counts
    if args.script:
        status = int(done.group(1)) if done else 1
        if status != 0:
            failures.append(f"the guest script exited with status {status}")
        counts["passed" if status == 0 and done else "failed"] += 1
    else:
        judge_ktap(boot, os.path.join(boot.run_dir, "ktap.log"), text)
    # The harness's own two checks: the guest finished, the log is clean.
    for ok in [not boot.killed and bool(done), not splats]:
        counts["passed" if ok else "failed"] += 1


def judge_ktap(boot, path, console_text):
    with open(path, encoding="utf-8", errors="replace") as f:
        result = ktap.parse(f.read())
    for case in result.cases:
        if case.status == "fail":
            what = f"{case.name}{' # ' + case.directive if case.directive else ''}"
            print(f"vm: FAILED: {what}")
            boot.failed_cases.append(what)
    for problem in result.problems:
        print(f"vm: KTAP problem: {problem}")
        boot.failures.append(problem)
    boot.counts["passed"] += result.passed
    boot.counts["failed"] += result.failed
    boot.counts["skipped"] += result.skipped
    seconds = {(s, p): t for s, p, t in boot.console.programs}
    seen = set()
    for prog in result.programs:
        seen.add((prog.suite, prog.name))
        boot.programs.append({"suite": prog.suite, "program": prog.name, "status": prog.status,
                              "seconds": round(seconds.get((prog.suite, prog.name), -1)),
                              "skipped": prog.skipped_whole})
        suite = next((s for s in boot.suites if s.name == prog.suite), None)
        if prog.skipped_whole and suite is not None and not suite.settings["optional"]:
            why = f" ({prog.directive})" if prog.directive.upper() != "SKIP" else ""
            boot.failures.append(f"{prog.suite}: {prog.name} was skipped as a whole{why}, and "
                                 f"the suite is not optional")
            boot.counts["failed"] += 1
        if prog.suite == FAIL_FAST_SUITE and (prog.status != "pass" or prog.failed):
            boot.smoke_failed = True
    not_run = [f"{s.name}: {p}" for s in boot.suites for p in s.programs
               if (s.name, p) not in seen]
    if any(s.name == FAIL_FAST_SUITE for s in boot.suites) and \
            not any(suite == FAIL_FAST_SUITE for suite, _ in seen):
        boot.smoke_failed = True
    if not_run:
        if boot.smoke_failed:
            what = f"not run ({FAIL_FAST_SUITE} did not pass)"
        elif boot.killed:
            what = "no result (the guest was killed)"
        else:
            what = "no result (the guest stopped before)"
        boot.failures.append(f"{what}: {', '.join(not_run)}")
        boot.counts["failed"] += len(not_run)
    if not result.cases and not not_run:
        boot.failures.append("no test result came back from the guest")


def plan_boots(suites, margin, cpus=None, mem=None, timeout=0, cut_seed=0):
    """One boot per distinct (cpus, mem) of the suites (or the overrides),
    in the order of their first suite; each boot's timeout is the margin
    plus its suites' budgets (or timeout)."""
    groups = {}
    for s in suites:
        # A suite of several boots has its boots to itself.
        alone = s.name if s.settings["boots"] > 1 else ""
        groups.setdefault((cpus or s.group[0], mem or s.group[1], alone), []).append(s)
    boots = []
    for (c, m, alone), members in groups.items():
        name = f"{c}cpu-{m}" + (f"-{alone}" if alone else "")
        # A suite may need less than the flavour's boot margin (margin=,
        # measured): a boot of the group gets the largest its suites ask.
        m_boot = max(s.settings["margin"] or margin for s in members)
        t = timeout or m_boot + sum(s.budget for s in members)
        first = Boot(name, members, c, m, t)
        first.chain = [first]
        n = members[0].settings["boots"] if alone else 1
        for phase in range(2, n + 1):
            f = Boot(f"{name}-boot{phase}", members, c, m, t)
            f.phase = phase
            first.followers.append(f)
            first.chain.append(f)
        for f in first.followers:
            f.chain = first.chain
        if alone and members[0].settings["hotplug"]:
            # Every boot after the first starts without the HDD and the SSD.
            for b in first.chain[1:]:
                b.unplugged = HOTPLUG_DISKS
        window = members[0].settings["powercut"] if alone else 0
        if window:
            # Every boot but the last ends in a power cut, at an instant
            # drawn from the seed, the suite and the boot.
            for b in first.chain[:-1]:
                b.cut_after = random.Random(f"{cut_seed}:{alone}:{b.phase}").uniform(0, window)
        boots.append(first)
    return boots


def main():
    args = parse_args()
    kdir = os.path.realpath(args.kdir)
    args.kdir = kdir
    kernel_image = os.path.join(kdir, "arch/x86/boot/bzImage")
    if not os.path.exists(kernel_image):
        raise SystemExit(f"vm: no kernel image at {kernel_image} (make kernel)")
    for ko in args.modules + args.fixtures:
        if not os.path.exists(ko):
            raise SystemExit(f"vm: no module {ko} (make modules)")

    boots = []
    margin = BOOT_MARGIN[args.flavour]
    if args.script:
        boots.append(Boot("script", [], args.cpus or 2, args.mem or "2G",
                          args.timeout or margin + SCRIPT_TIMEOUT))
    else:
        names = args.suites or sorted(
            d for d in os.listdir(args.suites_root)
            if os.path.isfile(os.path.join(args.suites_root, d, "Makefile")))
        suites = [Suite(args.suites_root, n) for n in order_suites(names)]
        cut_seed = int(os.environ.get("RKM_POWERCUT_SEED") or random.randrange(1 << 32))
        boots = plan_boots(suites, margin, args.cpus, args.mem, args.timeout, cut_seed)
        cuts = [b for first in boots for b in first.chain if b.cut_after is not None]
        if cuts:
            log(f"power-cut seed {cut_seed} (RKM_POWERCUT_SEED={cut_seed} draws the same "
                f"instants): {len(cuts)} cuts, at "
                + ", ".join(f"{b.cut_after:.2f}s" for b in cuts) + " after arming")
        planned = sum(b.timeout for b in boots for _ in b.chain)
        plan = "; ".join(f"{b.name}: {' '.join(s.name for s in b.suites)} ({b.timeout}s)"
                         for b in boots)
        log(f"{len(boots)} boot(s): {plan}")
        if args.max_total and planned > args.max_total:
            raise SystemExit(
                f"vm: the boots' budgets sum to {planned}s, past the cap of "
                f"{args.max_total}s (--max-total): lower the suites' budget= "
                "(tests/<suite>/settings) or make them faster")

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    logs_root = os.path.join(TOP, "build/logs")
    run_dir = os.path.abspath(args.log_dir or os.path.join(logs_root, f"{stamp}-{args.flavour}"))
    os.makedirs(run_dir, exist_ok=True)
    if not args.log_dir:
        latest = os.path.join(logs_root, "latest")
        if os.path.islink(latest):
            os.unlink(latest)
        os.symlink(os.path.basename(run_dir), latest)

    release = kernel_release(kdir)
    start = time.monotonic()
    skipped_boots = []

    def one(boot):
        boot.run_dir = run_dir if args.script else os.path.join(run_dir, boot.name)
        os.makedirs(boot.run_dir, exist_ok=True)
        for name in ["console.log", "ktap.log", "dmesg.log"]:
            if os.path.exists(os.path.join(boot.run_dir, name)):
                os.unlink(os.path.join(boot.run_dir, name))
        if any(b.smoke_failed for b in boots):
            skipped_boots.append(boot)
            return
        if args.max_total:
            boot.timeout = min(boot.timeout, int(args.max_total - (time.monotonic() - start)))
            if boot.timeout <= 0:
                skipped_boots.append(boot)
                return
        run_boot(args, boot, kernel_image, release)
        with print_lock:
            judge_boot(args, boot)
        # The next phases of the same disks, in order.
        for f in boot.followers:
            one(f)

    print_lock = threading.Lock()
    # The boot with smoke first and alone (a failed smoke stops the run);
    # then the others, --jobs at a time. Each boot has its own temporary
    # directory, disks and log directory; judge_boot prints one boot's
    # reports in one go (under print_lock when boots overlap).
    first = [b for b in boots if any(s.name == FAIL_FAST_SUITE for s in b.suites)]
    for boot in first:
        one(boot)
    rest = [b for b in boots if b not in first]
    if args.jobs > 1 and len(rest) > 1:
        log(f"running {len(rest)} boots {min(args.jobs, len(rest))} at a time (--jobs)")
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for f in [pool.submit(one, b) for b in rest]:
                f.result()
    else:
        for boot in rest:
            one(boot)
    boots = [b for first in boots for b in first.chain]
    for b in boots:
        if b.images_dir:
            shutil.rmtree(b.images_dir, ignore_errors=True)
    skipped_boots.sort(key=boots.index)
    return report(args, run_dir, boots, skipped_boots, time.monotonic() - start)


def report(args, run_dir, boots, skipped_boots, elapsed):
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    failures = []
    failed_cases = []
    programs = []
    for boot in boots:
        if boot in skipped_boots:
            why = (f"{FAIL_FAST_SUITE} did not pass" if any(b.smoke_failed for b in boots)
                   else "the run's --max-total is spent")
            n = sum(len(s.programs) for s in boot.suites)
            failures.append(f"[{boot.name}] not run ({why}): "
                            f"{' '.join(s.name for s in boot.suites)}")
            counts["failed"] += n
            continue
        for k in counts:
            counts[k] += boot.counts[k]
        failures += [f"[{boot.name}] {f}" for f in boot.failures]
        failed_cases += [f"[{boot.name}] {c}" for c in boot.failed_cases]
        programs += boot.programs
    if boots and not args.script:
        print("\nvm: time per boot and per test program:")
        for boot in boots:
            if boot in skipped_boots:
                continue
            c = boot.console
            boot_s = f"{c.booted_at - c.start:.0f}s to boot" if c.booted_at else "no boot"
            cut = (f"; power cut {boot.cut_after:.2f}s after arming" if boot.cut else "")
            print(f"  [{boot.name}] {boot.elapsed:.0f}s ({boot_s}; longest console silence "
                  f"{c.longest_silence:.0f}s{cut})")
            for p in boot.programs:
                t = f"{p['seconds']:5d}s" if p["seconds"] >= 0 else "    ?s"
                print(f"    {t}  {p['suite']}: {p['program']} ({p['status']})")
    # Last, so that the tail of a long log names what failed.
    for case in failed_cases:
        print(f"vm: FAILED case: {case}")
    for failure in failures:
        print(f"vm: FAIL: {failure}")
    ok = not failures and not counts["failed"]
    print(f"vm: {'PASS' if ok else 'FAIL'} in {elapsed:.0f}s; logs: {run_dir}")
    if args.results:
        os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
        suites = {}
        for p in programs:
            suites[p["suite"]] = suites.get(p["suite"], 0) + max(p["seconds"], 0)
        with open(args.results, "w") as f:
            json.dump(dict(counts, failures=failures, failed_cases=failed_cases, log=run_dir,
                           seconds=round(elapsed),
                           boots=[{"name": b.name, "suites": [s.name for s in b.suites],
                                   "seconds": round(b.elapsed), "budget": b.timeout,
                                   "to_boot": round(b.console.booted_at - b.console.start)
                                   if b.console and b.console.booted_at else None,
                                   "longest_silence": round(b.console.longest_silence)
                                   if b.console else None}
                                  for b in boots if b not in skipped_boots],
                           programs=programs, suites=suites), f, indent=1)
    line = f"{counts['passed']} passed, {counts['failed']} failed"
    if counts["skipped"]:
        line += f", {counts['skipped']} skipped"
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
