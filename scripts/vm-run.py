#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Boot the test kernel under QEMU and run kselftest suites (or a script) in it.

The guest is a busybox initramfs built for each run: the kernel's own modules
(for the C peers: zbud, z3fold, bcache, dm-cache), the project's modules under
/lib/modules/$(uname -r)/extra (depmod'ed, so zswap can load a zpool driver by
its alias), the kernel's kselftest runner (run_kselftest.sh, runner.sh,
ktap_helpers.sh from the kernel source), the selected suites, and the host
tools the suites ask for (their GUEST_TOOLS) with their shared libraries.

Disks, created sparse and fresh for each run and deleted after it:
  HDD   virtio-blk, rotational        serial rkm-hdd   ($RKM_HDD in the guest)
  SSD   QEMU NVMe, non-rotational     serial rkm-ssd   ($RKM_SSD)
  swap  virtio-blk                    serial rkm-swap  ($RKM_SWAP)

Serial ports: ttyS0 is the console (the full log), ttyS1 carries the KTAP
output alone, ttyS2 the guest's dmesg at the end of the run. On the host:
  - the logs are kept in --log-dir (build/logs/<time>-<flavour>/, and
    build/logs/latest points at the newest) and their paths are printed;
  - a run fails on any oops, BUG, WARNING, KASAN, lockdep, RCU stall or
    hung-task report in the console log or the dmesg, even if every test said
    ok; on a guest that does not finish within the timeout; and on any test
    that failed;
  - the KTAP is parsed and the last line printed is
    "N passed, N failed[, N skipped]", counting the leaf test cases plus two
    checks of the harness itself (the guest finished; the kernel log is clean).
The exit status is 0 only when nothing failed.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "scripts"))

import ktap  # noqa: E402
from kreport import KERNEL_LINE, SPLAT_PATTERNS, find_splats  # noqa: E402

BUSYBOX = "/bin/busybox"
# Tools every guest gets: coreutils' timeout makes the kselftest runner
# enforce the per-test timeouts of the suites' settings files.
BASE_TOOLS = ["/usr/bin/timeout"]
DONE_MARKER = "RKM-GUEST-DONE"
BOOT_MARGIN = {"debug": 240, "perf": 90}
SCRIPT_TIMEOUT = 600



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
                   help="seconds for the whole run (default: from the suites' settings)")
    p.add_argument("--log-dir", help="where the logs go (default build/logs/<time>-<flavour>)")
    p.add_argument("--results", help="write the counts here as JSON")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="also set KEY (RKM_*) in the guest's /etc/rkm.env")
    p.add_argument("--append", action="append", default=[], metavar="PARAM",
                   help="also pass PARAM on the guest kernel's command line")
    p.add_argument("--mem", default="2G")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--hdd-size", default="2G")
    p.add_argument("--ssd-size", default="1G")
    p.add_argument("--swap-size", default="1G")
    p.add_argument("--hdd-iops", type=int, default=0,
                   help="throttle the HDD to this many IOPS (0: unthrottled)")
    p.add_argument("--keep-images", action="store_true")
    p.add_argument("--quiet", action="store_true", help="do not echo the console")
    p.add_argument("suites", nargs="*", help="suites under --suites-root (default: all)")
    return p.parse_args()


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


def build_initramfs(args, root, release, suites):
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
    total_timeout = 0
    for suite in suites:
        sdir = os.path.join(args.suites_root, suite)
        if not os.path.isfile(os.path.join(sdir, "Makefile")):
            raise SystemExit(f"vm: no suite '{suite}' (no {sdir}/Makefile)")
        suite_make(sdir, "install", INSTALL_PATH=os.path.join(kroot, suite))
        progs = suite_make(sdir, "print-tests")
        listing += [f"{suite}:{p}" for p in progs]
        tools += suite_make(sdir, "print-guest-tools")
        total_timeout += len(progs) * suite_timeout(sdir)
    with open(os.path.join(kroot, "kselftest-list.txt"), "w") as f:
        f.write("".join(line + "\n" for line in listing))
    for tool in sorted(set(tools)):
        add_binary(tool, root)

    env = {
        "RKM_MODE": "script" if args.script else "kselftest",
        "RKM_MODULES": " ".join(names),
        "RKM_FLAVOUR": args.flavour,
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
    return total_timeout


def suite_timeout(sdir):
    """A suite's per-test timeout, as the kselftest runner reads it."""
    timeout = 45
    try:
        with open(os.path.join(sdir, "settings")) as f:
            for line in f:
                if line.startswith("timeout="):
                    timeout = int(line.split("=", 1)[1])
    except FileNotFoundError:
        pass
    return timeout


def make_cpio(root, out):
    files = subprocess.run(["find", "."], cwd=root, capture_output=True, text=True,
                           check=True).stdout
    with open(out, "wb") as f:
        subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "--owner=0:0"], cwd=root,
                       input=files.encode(), stdout=f, check=True)


# ---------------------------------------------------------------- the run

def qemu_command(args, run_dir, kernel_image, initrd, images):
    drive = "if=none,format=raw,cache=writeback,aio=threads"
    hdd_throttle = f",throttling.iops-total={args.hdd_iops}" if args.hdd_iops else ""
    # A panic reboots, and -no-reboot turns that into QEMU's exit; an oops
    # or a WARN does not stop the guest, so the harness reads the report.
    # Under TCG on a loaded 2-core host a vCPU can stall for tens of seconds,
    # so the soft-lockup (2 x watchdog_thresh) and RCU-stall thresholds are
    # raised to 120 s: a real lockup is still reported, a slow host is not.
    # ACPI enumerates the vCPUs; acpi=noirq skips its PCI IRQ routing, whose
    # AML takes most of a minute to interpret under TCG (the devices use MSI).
    append = ["console=ttyS0,115200", "printk.time=1", "loglevel=7", "rdinit=/init",
              "panic=-1", "softlockup_panic=0", "hung_task_panic=0",
              "watchdog_thresh=60", "rcupdate.rcu_cpu_stall_timeout=120", "acpi=noirq"]
    append += args.append
    return [
        "qemu-system-x86_64",
        "-accel", "tcg,thread=multi",
        "-cpu", "max",
        "-smp", str(args.cpus),
        "-m", args.mem,
        "-display", "none", "-vga", "none",
        "-no-reboot",
        "-kernel", kernel_image,
        "-initrd", initrd,
        "-append", " ".join(append),
        "-chardev", "stdio,id=con,signal=off",
        "-serial", "chardev:con",
        "-serial", f"file:{os.path.join(run_dir, 'ktap.log')}",
        "-serial", f"file:{os.path.join(run_dir, 'dmesg.log')}",
        "-drive", f"file={images['hdd']},{drive},id=hdd{hdd_throttle}",
        "-device", "virtio-blk-pci,drive=hdd,serial=rkm-hdd",
        "-drive", f"file={images['ssd']},{drive},id=ssd",
        "-device", "nvme,drive=ssd,serial=rkm-ssd",
        "-drive", f"file={images['swap']},{drive},id=swap",
        "-device", "virtio-blk-pci,drive=swap,serial=rkm-swap",
        "-monitor", "none",
    ]


def run_qemu(cmd, console_path, timeout, quiet, script):
    """Run QEMU with its console to console_path; True if it stopped in time."""
    start = time.monotonic()
    with open(console_path, "wb") as console:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        last = {"line": "", "at": start}

        def pump():
            for raw in proc.stdout:
                console.write(raw)
                console.flush()
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                last["line"] = line
                if not quiet and echo_line(line, script):
                    print(f"  | {line}", flush=True)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        finished = True
        next_beat = start + 30
        while proc.poll() is None:
            now = time.monotonic()
            if now - start > timeout:
                finished = False
                proc.kill()
                break
            if now >= next_beat:
                log(f"still running ({int(now - start)}s of at most {timeout}s)")
                next_beat += 30
            time.sleep(0.2)
        proc.wait()
        reader.join(timeout=5)
    return finished, time.monotonic() - start


def echo_line(line, script):
    """Which console lines to show live: results and what goes wrong (and a
    script's whole output)."""
    m = KERNEL_LINE.match(line)
    if m:
        return any(re.search(p, m.group(1)) for p, _ in SPLAT_PATTERNS[:-1])
    return script or bool(re.match(r"^(# )?(not )?ok \d+|^rkm:|^# selftests:", line))


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
    suites = args.suites
    if not args.script and not suites:
        suites = sorted(d for d in os.listdir(args.suites_root)
                        if os.path.isfile(os.path.join(args.suites_root, d, "Makefile")))

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    logs_root = os.path.join(TOP, "build/logs")
    run_dir = os.path.abspath(args.log_dir or os.path.join(logs_root, f"{stamp}-{args.flavour}"))
    os.makedirs(run_dir, exist_ok=True)
    if not args.log_dir:
        latest = os.path.join(logs_root, "latest")
        if os.path.islink(latest):
            os.unlink(latest)
        os.symlink(os.path.basename(run_dir), latest)
    for name in ["console.log", "ktap.log", "dmesg.log"]:
        if os.path.exists(os.path.join(run_dir, name)):
            os.unlink(os.path.join(run_dir, name))

    release = kernel_release(kdir)
    work = tempfile.mkdtemp(prefix="rkm-vm-")
    try:
        root = os.path.join(work, "root")
        test_timeout = build_initramfs(args, root, release, suites)
        initrd = os.path.join(work, "initramfs.cpio")
        make_cpio(root, initrd)
        images = {}
        for name, size in [("hdd", args.hdd_size), ("ssd", args.ssd_size),
                           ("swap", args.swap_size)]:
            images[name] = os.path.join(work, f"{name}.img")
            subprocess.run(["truncate", "-s", size, images[name]], check=True)
        # A script has no settings file: it gets SCRIPT_TIMEOUT.
        timeout = args.timeout or (BOOT_MARGIN[args.flavour] +
                                   (SCRIPT_TIMEOUT if args.script else test_timeout))
        what = f"suites {' '.join(suites)}" if not args.script else os.path.basename(args.script)
        log(f"booting the {args.flavour} kernel {release} (TCG, {args.cpus} vCPUs, "
            f"{args.mem}) to run {what}; timeout {timeout}s")
        log(f"logs in {run_dir}")
        cmd = qemu_command(args, run_dir, kernel_image, initrd, images)
        with open(os.path.join(run_dir, "qemu-cmdline.txt"), "w") as f:
            f.write(" ".join(cmd) + "\n")
        finished, elapsed = run_qemu(cmd, os.path.join(run_dir, "console.log"), timeout,
                                     args.quiet, bool(args.script))
        if args.keep_images:
            for name, path in images.items():
                shutil.move(path, os.path.join(run_dir, f"{name}.img"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    return report(args, run_dir, finished, elapsed, timeout)


def report(args, run_dir, finished, elapsed, timeout):
    console = os.path.join(run_dir, "console.log")
    with open(console, encoding="utf-8", errors="replace") as f:
        text = f.read()
    done = re.search(rf"^{DONE_MARKER} status=(\d+)", text, re.M)
    failures = []
    if not finished:
        failures.append(f"the guest hung: no power-off within {timeout}s "
                        f"(the last console lines are in {console})")
    elif not done:
        failures.append("the guest stopped before the end of the run (crash or panic?)")

    splats = find_splats([console, os.path.join(run_dir, "dmesg.log")])
    for kind, path, lineno, context in splats[:3]:
        print(f"\nvm: kernel report ({kind}) at {path}:{lineno}:", flush=True)
        for line in context:
            print(f"  {line}")
    if splats:
        kinds = sorted({k for k, *_ in splats})
        failures.append(f"the kernel log has {len(splats)} report line(s): {', '.join(kinds)}")

    counts = {"passed": 0, "failed": 0, "skipped": 0}
    if args.script:
        status = int(done.group(1)) if done else 1
        if status != 0:
            failures.append(f"the guest script exited with status {status}")
        counts["passed" if status == 0 and done else "failed"] += 1
    else:
        with open(os.path.join(run_dir, "ktap.log"), encoding="utf-8", errors="replace") as f:
            result = ktap.parse(f.read())
        for case in result.cases:
            if case.status == "fail":
                print(f"vm: FAILED: {case.name}{' # ' + case.directive if case.directive else ''}")
        for problem in result.problems:
            print(f"vm: KTAP problem: {problem}")
            failures.append(problem)
        counts["passed"] += result.passed
        counts["failed"] += result.failed
        counts["skipped"] += result.skipped
        if not result.cases:
            failures.append("no test result came back from the guest")
    # The harness's own two checks: the guest finished, the log is clean.
    for ok in [finished and bool(done), not splats]:
        counts["passed" if ok else "failed"] += 1

    for failure in failures:
        print(f"vm: FAIL: {failure}")
    print(f"vm: {'PASS' if not failures and not counts['failed'] else 'FAIL'} in {elapsed:.0f}s; "
          f"console log: {console}")
    if args.results:
        os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
        with open(args.results, "w") as f:
            json.dump(dict(counts, failures=failures, log=console), f, indent=1)
    line = f"{counts['passed']} passed, {counts['failed']} failed"
    if counts["skipped"]:
        line += f", {counts['skipped']} skipped"
    print(line)
    return 0 if not failures and counts["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
