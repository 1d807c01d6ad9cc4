# SPDX-License-Identifier: GPL-2.0
"""Unit tests of scripts/kreport.py: which kernel log lines fail a run.

The report excerpts are the shapes the 6.12 debug kernel prints (a WARN with
its cut-here and end-trace lines, SLUB's redzone report, a refcount
underflow, a page allocation failure, the OOM killer).
"""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../scripts"))
import kreport  # noqa: E402


def stamp(lines, t0=100.0):
    """Kernel lines with printk time stamps."""
    return [f"[{t0 + i / 1000:12.6f}] {line}" for i, line in enumerate(lines)]


def scan(lines):
    return kreport.scan_lines(stamp(lines))


def kinds(lines):
    return [(f.kind, f.lineno) for f in scan(lines).findings]


def raw_kinds(lines):
    """As kinds, of console lines taken as they are (no stamps added)."""
    return [(f.kind, f.lineno) for f in kreport.scan_lines(lines).findings]


def messages(lines):
    return [f.message for f in scan(lines).findings if f.message]


ZBUD_AT = r"rkm_warn\+0x[0-9a-f]+/0x[0-9a-f]+ \[zbud_rs\]"


def warn_report(location="rust/kglue/warn.c.inc:13 rkm_warn+0x4c/0x60 [zbud_rs]",
                message="zbud_rs: bad handle 0x1234 in free"):
    return [
        "------------[ cut here ]------------",
        message,
        f"WARNING: CPU: 1 PID: 312 at {location}",
        "Modules linked in: test_zbud_rs(O+) zbud_rs(O)",
        "CPU: 1 UID: 0 PID: 312 Comm: modprobe Tainted: G           O       6.12.57 #1",
        "Hardware name: QEMU Standard PC (i440FX + PIIX, 1996)",
        "RIP: 0010:rkm_warn+0x4c/0x60 [zbud_rs]",
        "Call Trace:",
        " <TASK>",
        " ? __warn+0x11e/0x2e0",
        " ? report_bug+0x2d4/0x3b0",
        " do_one_initcall+0xc5/0x3e0",
        " </TASK>",
        "irq event stamp: 1234",
        "---[ end trace 0000000000000000 ]---",
    ]


def window(n, regex, body):
    return [f"rkm-expect: begin warn={n} at={regex}"] + body + ["rkm-expect: end"]


SLUB_REDZONE = [
    "=============================================================================",
    "BUG kmalloc-64 (Not tainted): Redzone overwritten",
    "-----------------------------------------------------------------------------",
    "0xffff888006b0e5e8-0xffff888006b0e5e8 @offset=1512. First byte 0x0 instead of 0xcc",
    "Allocated in fault_slub_init+0x2b/0x60 [fault_slub] age=2 cpu=0 pid=311",
    "Slab 0xffffea00001ac380 objects=21 used=13 fp=0xffff888006b0e000 flags=0x100000000000200(workingset|node=0)",
    "Object 0xffff888006b0e5a8 @offset=1448 fp=0x0000000000000000",
    "CPU: 0 UID: 0 PID: 311 Comm: modprobe Tainted: G           O       6.12.57 #1",
    "Call Trace:",
    " <TASK>",
    " dump_stack_lvl+0x7d/0xa0",
    " check_bytes_and_report+0x12a/0x170",
    " </TASK>",
    "FIX kmalloc-64: Restoring kmalloc Redzone 0xffff888006b0e5e8-0xffff888006b0e5e8=0xcc",
    "FIX kmalloc-64: Object at 0xffff888006b0e5a8 not freed",
]

PAGE_ALLOC_FAILURE = [
    "fio: page allocation failure: order:0, mode:0x820(GFP_ATOMIC), nodemask=(null),cpuset=/,mems_allowed=0",
    "CPU: 0 UID: 0 PID: 400 Comm: fio Tainted: G           O       6.12.57 #1",
    "Call Trace:",
    " <TASK>",
    " warn_alloc+0x1c5/0x2b0",
    " </TASK>",
    "Mem-Info:",
    "active_anon:100 inactive_anon:200 isolated_anon:0",
    "Node 0 DMA32 free:2048kB boost:0kB min:3060kB low:3824kB high:4588kB",
]

OOM = [
    "memstress invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
    "CPU: 1 UID: 0 PID: 500 Comm: memstress Tainted: G           O       6.12.57 #1",
    "Call Trace:",
    " <TASK>",
    " dump_header+0x6b/0x3a0",
    " </TASK>",
    "Tasks state (memory values in pages):",
    "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0",
    "Memory cgroup out of memory: Killed process 500 (memstress) total-vm:140000kB",
]


class PatternsTest(unittest.TestCase):
    def test_clean_log(self):
        self.assertEqual(kinds(["virtio_blk virtio1: [vda] 4194304 512-byte logical blocks"]), [])

    def test_reports_are_found(self):
        for line, kind in [
            ("WARNING: CPU: 0 PID: 1 at mm/x.c:1 f+0x1/0x2", "WARNING"),
            ("BUG: KASAN: slab-use-after-free in f+0x1/0x2", "BUG"),
            ("kernel BUG at rust/helpers/bug.c:7!", "BUG"),
            ("Oops: invalid opcode: 0000 [#1] SMP KASAN", "oops"),
            ("INFO: task kworker/0:1:20 blocked for more than 60 seconds.", "hung task"),
            ("WARNING: possible circular locking dependency detected", "WARNING"),
            ("WARNING: suspicious RCU usage", "WARNING"),
            ("BUG: sleeping function called from invalid context at mm/slub.c:4161", "BUG"),
            ("watchdog: BUG: soft lockup - CPU#0 stuck for 130s!", "BUG"),
            ("list_del corruption. prev->next should be ffff", "list corruption"),
            ("BUG kmalloc-64 (Not tainted): Redzone overwritten", "SLUB"),
            ("BUG kmalloc-rnd-01-128 (Tainted: G    B   O): Poison overwritten", "SLUB"),
            ("FIX kmalloc-64: Restoring kmalloc Redzone 0x1-0x2=0xcc", "SLUB"),
            ("[Right Redzone overwritten] 0xffff88800749ed80-0xffff88800749ed80 @offset=3456.",
             "SLUB"),
            ("BUG kmalloc-64 (Tainted: G      D W  O      ): Object corrupt", "SLUB"),
            ("refcount_t: underflow; use-after-free.", "refcount"),
            ("bcache_rs: rkm-leak: 1 devices and 0 caches still alive after unload", "leak"),
            ("fio: page allocation failure: order:0, mode:0x820(GFP_ATOMIC)", "allocation failure"),
            ("SLUB: Unable to allocate memory on node -1, gfp=0x820(GFP_ATOMIC)",
             "allocation failure"),
            ("sh invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0", "OOM"),
            ("Out of memory: Killed process 77 (sh) total-vm:1kB", "OOM kill"),
            ("UBSAN: shift-out-of-bounds in lib/x.c:3:5", "UBSAN"),
            ("Kernel panic - not syncing: Fatal exception", "panic"),
            ("Kernel Offset: disabled", "panic"),
            ("Call Trace:", "stack trace"),
        ]:
            self.assertEqual(kinds([line]), [(kind, 1)], line)

    def test_test_output_is_not_a_report(self):
        # Lines without the printk time stamp are the tests' own.
        self.assertEqual(raw_kinds(["# WARNING: this test prints the word BUG: fine",
                                    "ok 1 BUG kmalloc-64 (x) is only text here"]), [])

    def test_kernel_line_in_the_middle_of_a_test_line(self):
        lines = ["# ok 3 foo[   12.345678] WARNING: CPU: 0 PID: 5 at mm/x.c:1 f+0x1/0x2",
                 "o bar"]
        self.assertEqual(raw_kinds(lines), [("WARNING", 1)])

    def test_two_kernel_lines_on_one_console_line(self):
        lines = ["ok 1[   12.345678] rkm-test: x[   12.345900] BUG kmalloc-64 (Not tainted): Redzone"]
        self.assertEqual(raw_kinds(lines), [("SLUB", 1)])

    def test_a_bracketed_number_in_test_output_is_not_a_stamp(self):
        self.assertEqual(raw_kinds(["# progress [1.5] BUG: not the kernel's"]), [])


class VerifiedToHideTest(unittest.TestCase):
    """The cases the review found hidden by the old windows (issue 21)."""

    def test_slub_redzone_corruption(self):
        found = kinds(SLUB_REDZONE)
        self.assertIn(("SLUB", 2), found)
        self.assertIn(("stack trace", 9), found)

    def test_slub_corruption_inside_a_window_is_not_excused(self):
        log = window(1, ZBUD_AT, warn_report() + SLUB_REDZONE)
        found = kinds(log)
        self.assertIn(("SLUB", 1 + len(warn_report()) + 2), found)
        # The SLUB report's Call Trace is not the excused WARN's.
        self.assertIn("stack trace", [k for k, _ in found])

    def test_refcount_underflow_warn(self):
        lines = ["------------[ cut here ]------------",
                 "refcount_t: underflow; use-after-free.",
                 "WARNING: CPU: 0 PID: 9 at lib/refcount.c:28 refcount_warn_saturate+0x13c/0x1a0",
                 "Call Trace:",
                 "---[ end trace 0000000000000000 ]---"]
        self.assertEqual(kinds(lines), [("refcount", 2), ("WARNING", 3), ("stack trace", 4)])
        # Inside a window for another location, nothing of it is excused.
        found = kinds(window(1, ZBUD_AT, warn_report() + lines))
        self.assertIn("refcount", [k for k, _ in found])
        self.assertIn("WARNING", [k for k, _ in found])

    def test_page_allocation_failure(self):
        self.assertEqual(kinds(PAGE_ALLOC_FAILURE),
                         [("allocation failure", 1), ("stack trace", 3)])
        # A WARN window does not excuse it.
        found = kinds(window(1, ZBUD_AT, warn_report() + PAGE_ALLOC_FAILURE))
        self.assertIn("allocation failure", [k for k, _ in found])

    def test_fifty_warns_in_a_window_that_expects_one(self):
        log = window(1, ZBUD_AT, warn_report() * 50)
        self.assertEqual(messages(log), [rf"expected 1 WARN(s) at {ZBUD_AT}, saw 50 "
                                         "(window opened at line 1)"])


class WindowTest(unittest.TestCase):
    def test_expected_warn_is_excused(self):
        s = scan(window(1, ZBUD_AT, warn_report()))
        self.assertEqual(s.findings, [])
        self.assertEqual((s.warns, s.warns_excused), (1, 1))

    def test_marker_from_a_module_has_its_prefix(self):
        log = (["test_zbud_rs: rkm-expect: begin warn=2 at=" + ZBUD_AT]
               + warn_report() + warn_report() + ["test_zbud_rs: rkm-expect: end"])
        self.assertEqual(kinds(log), [])

    def test_exact_count(self):
        self.assertEqual(messages(window(2, ZBUD_AT, warn_report())),
                         [f"expected 2 WARN(s) at {ZBUD_AT}, saw 1 (window opened at line 1)"])
        self.assertEqual(messages(window(1, ZBUD_AT, [])),
                         [f"expected 1 WARN(s) at {ZBUD_AT}, saw 0 (window opened at line 1)"])

    def test_other_location_is_not_excused(self):
        log = window(1, ZBUD_AT, warn_report(location="mm/slub.c:100 f+0x1/0x2"))
        found = kinds(log)
        self.assertIn(("WARNING", 4), found)
        self.assertIn(("stack trace", 9), found)  # its Call Trace is not excused either
        self.assertIn(("expect", 17), found)  # and the count is 0, not 1

    def test_other_module_is_not_excused(self):
        log = window(1, ZBUD_AT, warn_report(
            location="rust/kglue/warn.c.inc:13 rkm_warn+0x4c/0x60 [z3fold_rs]"))
        self.assertIn("WARNING", [k for k, _ in kinds(log)])

    def test_second_call_trace_is_not_excused(self):
        report = warn_report()
        report.insert(10, "Call Trace:")
        self.assertEqual(kinds(window(1, ZBUD_AT, report)), [("stack trace", 12)])

    def test_call_trace_outside_an_excused_report(self):
        log = window(1, ZBUD_AT, warn_report() + ["Call Trace:", " f+0x1/0x2"])
        self.assertEqual(kinds(log), [("stack trace", 17)])

    def test_only_warns_are_excused(self):
        log = window(1, ZBUD_AT, warn_report() + [
            "WARNING: possible circular locking dependency detected",
            "BUG: KASAN: use-after-free in f"])
        self.assertEqual(kinds(log), [("WARNING", 17), ("BUG", 18)])

    def test_unclosed_window_fails(self):
        log = ["rkm-expect: begin warn=1 at=" + ZBUD_AT] + warn_report()
        self.assertEqual(len(messages(log)), 1)
        self.assertIn("never closed", messages(log)[0])

    def test_nested_window_fails(self):
        log = (["rkm-expect: begin warn=1 at=x"] + window(1, ZBUD_AT, warn_report()))
        self.assertIn("rkm-expect: begin inside the window opened at line 1", messages(log))

    def test_end_without_begin_fails(self):
        self.assertEqual(messages(["rkm-expect: end"]), ["rkm-expect: end without a begin"])

    def test_malformed_markers_fail(self):
        for marker in ["rkm-expect: begin zbud_rs: bad handle",  # the old one-argument form
                       "rkm-expect: begin warn=0 at=x",
                       "rkm-expect: begin warn=1",
                       "rkm-expect: begin warn=1 at=(",
                       "rkm-expect: begin alloc-fail",
                       "rkm-expect: end now"]:
            log = [marker] + warn_report() + ["rkm-expect: end"]
            found = kinds(log)
            self.assertIn("expect", [k for k, _ in found], marker)
            self.assertIn("WARNING", [k for k, _ in found], marker)

    def test_window_in_a_mid_line_kernel_line(self):
        lines = stamp(warn_report())
        log = (["ok 1 x[  99.000000] rkm-expect: begin warn=1 at=" + ZBUD_AT] + lines
               + ["# y[ 101.000000] rkm-expect: end"])
        self.assertEqual(raw_kinds(log), [])


class AllocFailWindowTest(unittest.TestCase):
    def alloc_window(self, n, body):
        return [f"rkm-expect: begin alloc-fail max={n}"] + body + ["rkm-expect: end"]

    def test_allocation_failures_up_to_max_are_excused(self):
        self.assertEqual(kinds(self.alloc_window(2, PAGE_ALLOC_FAILURE + OOM)), [])
        self.assertEqual(kinds(self.alloc_window(2, PAGE_ALLOC_FAILURE)), [])

    def test_more_than_max_fails(self):
        log = self.alloc_window(1, PAGE_ALLOC_FAILURE * 2)
        found = kinds(log)
        self.assertIn(("allocation failure", 11), found)
        self.assertIn(("stack trace", 13), found)
        self.assertIn("more than the 1", messages(log)[0])

    def test_warn_is_not_excused(self):
        found = kinds(self.alloc_window(5, PAGE_ALLOC_FAILURE + warn_report()))
        self.assertIn("WARNING", [k for k, _ in found])

    def test_outside_a_window_oom_fails(self):
        self.assertEqual([k for k, _ in kinds(OOM)], ["OOM", "stack trace", "OOM kill"])


def slab_leak(cache="z3fold_handle"):
    """SLUB's report of a cache destroyed with objects left (6.12, as C
    z3fold's handle cache leaks it), then kmem_cache_destroy's WARN."""
    return [
        "=============================================================================",
        f"BUG {cache} (Not tainted): Objects remaining on __kmem_cache_shutdown()",
        "-----------------------------------------------------------------------------",
        "Object 0x000000005b68a3e6 @offset=2624",
        "Slab 0x0000000065992f63 objects=64 used=2 fp=0x000000001e755c57 flags=0x200",
        "Disabling lock debugging due to kernel taint",
    ] + warn_report(location="mm/slub.c:1152 __kmem_cache_shutdown+0x27a/0x370",
                    message="------------[ cut here ]------------") + warn_report(
        location="mm/slab_common.c:528 kmem_cache_destroy+0x10a/0x120",
        message=f"kmem_cache_destroy {cache}: Slab cache still has objects")


def slab_window(lines, cache="z3fold_handle"):
    return [f"rkm-expect: begin slab-leak cache={cache}"] + lines + ["rkm-expect: end"]


class SlabLeakWindowTest(unittest.TestCase):
    def test_the_leak_report_is_excused(self):
        s = scan(slab_window(slab_leak()))
        self.assertEqual(s.findings, [])
        self.assertEqual((s.slab_leaks, s.warns, s.warns_excused), (1, 2, 2))

    def test_outside_a_window_it_fails(self):
        found = [k for k, _ in kinds(slab_leak())]
        self.assertIn("SLUB", found)
        self.assertIn("WARNING", found)

    def test_another_caches_leak_is_not_excused(self):
        found = [k for k, _ in kinds(slab_window(slab_leak("kmalloc-64")))]
        self.assertIn("SLUB", found)
        self.assertIn("WARNING", found)

    def test_warns_without_the_leak_report_are_not_excused(self):
        lines = warn_report(location="mm/slab_common.c:528 kmem_cache_destroy+0x10a/0x120")
        self.assertIn("WARNING", [k for k, _ in kinds(slab_window(lines))])

    def test_other_reports_in_the_window_fail(self):
        found = [k for k, _ in kinds(slab_window(slab_leak() + SLUB_REDZONE + warn_report()))]
        self.assertIn("SLUB", found)
        self.assertIn("WARNING", found)

    def test_bad_page_taint_only_with_an_excused_leak(self):
        b_w = kreport.TAINT_BAD_PAGE | kreport.TAINT_WARN
        self.assertEqual(kreport.taint_problems(b_w, 2, 2, slab_leaks=1), [])
        self.assertIn("tainted B", kreport.taint_problems(b_w, 2, 2)[0])


class TaintTest(unittest.TestCase):
    def test_out_of_tree_and_unsigned_are_fine(self):
        self.assertEqual(kreport.taint_problems(4096 | 8192, 0, 0), [])
        self.assertEqual(kreport.taint_problems(0, 0, 0), [])

    def test_other_bits_fail(self):
        for value, name in [(32, "B"), (128, "D"), (1 << 14, "L"), (4096 | 32, "B"),
                            (1, "P"), (1 << 18, "N")]:
            problems = kreport.taint_problems(value, 0, 0)
            self.assertEqual(len(problems), 1, value)
            self.assertIn(f"tainted {name} ", problems[0])

    def test_warn_taint_needs_every_warn_excused(self):
        w = 512 | 4096
        self.assertEqual(kreport.taint_problems(w, 2, 2), [])
        self.assertIn("not expected", kreport.taint_problems(w, 3, 2)[0])

    def test_warn_taint_without_a_warn_in_the_log(self):
        self.assertIn("no WARN", kreport.taint_problems(512, 0, 0)[0])

    def test_scan_counts_warns(self):
        s = scan(warn_report() + window(1, ZBUD_AT, warn_report()))
        self.assertEqual((s.warns, s.warns_excused), (2, 1))


class SysrqTest(unittest.TestCase):
    def test_the_watchdogs_dumps_are_not_reports(self):
        log = ["sysrq: Show Blocked State",
               "task:modprobe        state:D stack:0     pid:233   tgid:233   ppid:230",
               "Call Trace:", " msleep+0x51/0x70",
               "sysrq: Show backtrace of all active CPUs", "NMI backtrace for cpu 0",
               "Call Trace:", " <IRQ>"]
        self.assertEqual(kinds(log), [])

    def test_reports_during_the_dump_still_count(self):
        log = ["sysrq: Show Blocked State", "BUG: KASAN: use-after-free in f"]
        self.assertEqual(kinds(log), [("BUG", 2)])

    def test_call_trace_before_the_dump_counts(self):
        self.assertEqual(kinds(["Call Trace:", "sysrq: Show Blocked State", "Call Trace:"]),
                         [("stack trace", 1)])


class FileTest(unittest.TestCase):
    def test_find_splats_reads_files_and_knows_the_boot(self):
        with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
            f.write("\r\n".join(stamp(["Linux version 6.12.57 (root@x)"] + SLUB_REDZONE)) + "\r\n")
        try:
            found = kreport.find_splats([f.name, f.name + ".missing"])
            self.assertEqual(found[0].kind, "SLUB")
            kind, path, lineno, context = found[0]
            self.assertEqual((path, lineno), (f.name, 3))
            self.assertTrue(kreport.scan_file(f.name).starts_at_boot)
        finally:
            os.unlink(f.name)

    def test_a_report_in_the_console_and_the_dmesg_counts_once(self):
        console = ["rkm: guest up"] + stamp(["Linux version 6.12"] + SLUB_REDZONE[:3])
        dmesg = stamp(["Linux version 6.12"] + SLUB_REDZONE[:3] + ["BUG: KASAN: x"])
        paths = []
        for lines in (console, dmesg):
            with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
                f.write("\n".join(lines) + "\n")
            paths.append(f.name)
        try:
            found = [(f.kind, os.path.basename(f.path) == os.path.basename(paths[0]))
                     for f in kreport.find_splats(paths)]
            # The SLUB header from the console; the KASAN line only the dmesg has.
            self.assertEqual(found, [("SLUB", True), ("BUG", False)])
        finally:
            for p in paths:
                os.unlink(p)

    def test_log_without_boot_line(self):
        self.assertFalse(scan(["random: crng init done"]).starts_at_boot)


if __name__ == "__main__":
    unittest.main()
