# SPDX-License-Identifier: GPL-2.0
"""Unit tests of scripts/vm-run.py's settings and boot plan (host-side, no
QEMU): the settings keys, one boot per (cpus, mem), smoke first, budgets."""

import importlib.util
import os
import shutil
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("vm_run", os.path.join(HERE, "../../scripts/vm-run.py"))
vm_run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vm_run)


class PlanTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="vmrun-")
        shutil.copy(os.path.join(HERE, "../lib.mk"), self.root)

    def tearDown(self):
        shutil.rmtree(self.root)

    def suite(self, name, settings, progs="a.sh b.sh"):
        d = os.path.join(self.root, name)
        os.makedirs(d)
        with open(os.path.join(d, "Makefile"), "w") as f:
            f.write(f"TEST_PROGS := {progs}\ninclude ../lib.mk\n")
        with open(os.path.join(d, "settings"), "w") as f:
            f.write(settings)
        return name

    def plan(self, names, **kw):
        suites = [vm_run.Suite(self.root, n) for n in vm_run.order_suites(names)]
        return vm_run.plan_boots(suites, 100, **kw)

    def test_settings(self):
        self.suite("s", "# comment\ntimeout=30\ncpus=4\nmem=1536M\nbudget=90\n"
                        "inactivity=600\noptional=1\n\n")
        s = vm_run.Suite(self.root, "s")
        self.assertEqual((s.settings["timeout"], s.group, s.budget, s.settings["inactivity"],
                          s.settings["optional"]), (30, (4, "1536M"), 90, 600, 1))

    def test_defaults(self):
        self.suite("s", "")
        s = vm_run.Suite(self.root, "s")
        self.assertEqual((s.group, s.budget, s.settings["optional"]), ((2, "2G"), 90, 0))

    def test_bad_settings_fail(self):
        for i, text in enumerate(["cpu=4\n", "mem=2\n", "timeout=abc\n", "budget\n"]):
            self.suite(f"bad{i}", text)
            with self.assertRaises(SystemExit, msg=text):
                vm_run.Suite(self.root, f"bad{i}")

    def test_one_boot_per_group_smoke_first(self):
        names = [self.suite("bcache", "timeout=100\nbudget=600\n"),
                 self.suite("smoke", "timeout=60\n", progs="smoke.sh"),
                 self.suite("zpool-stress", "cpus=4\nbudget=300\n"),
                 self.suite("zpool", "timeout=100\n"),
                 self.suite("big", "mem=4G\nbudget=50\n")]
        boots = self.plan(names)
        self.assertEqual([(b.name, [s.name for s in b.suites], b.cpus, b.mem, b.timeout)
                          for b in boots],
                         [("2cpu-2G", ["smoke", "bcache", "zpool"], 2, "2G", 100 + 60 + 600 + 200),
                          ("4cpu-2G", ["zpool-stress"], 4, "2G", 400),
                          ("2cpu-4G", ["big"], 2, "4G", 150)])

    def test_a_suite_of_several_boots_has_them_to_itself(self):
        names = [self.suite("a", ""), self.suite("again", "boots=2\nbudget=70\n")]
        boots = self.plan(names)
        self.assertEqual([(b.name, [s.name for s in b.suites], b.timeout) for b in boots],
                         [("2cpu-2G", ["a"], 190), ("2cpu-2G-again", ["again"], 170)])
        again = boots[1]
        self.assertEqual([(b.name, b.phase, b.timeout) for b in again.chain],
                         [("2cpu-2G-again", 1, 170), ("2cpu-2G-again-boot2", 2, 170)])
        self.assertEqual(again.followers, again.chain[1:])
        self.assertEqual(boots[0].chain, [boots[0]])

    def test_power_cuts_end_every_boot_but_the_last(self):
        names = [self.suite("cut", "boots=4\npowercut=10\nmargin=30\nbudget=20\n")]
        chain = self.plan(names, cut_seed=7)[0].chain
        self.assertEqual([b.timeout for b in chain], [50] * 4)
        delays = [b.cut_after for b in chain]
        self.assertIsNone(delays[-1])
        self.assertEqual(len(set(delays[:-1])), 3)
        self.assertTrue(all(0 <= d < 10 for d in delays[:-1]))
        # The seed draws the same instants again, another seed others.
        self.assertEqual([b.cut_after for b in self.plan(names, cut_seed=7)[0].chain], delays)
        self.assertNotEqual([b.cut_after for b in self.plan(names, cut_seed=8)[0].chain], delays)
        # Without powercut=, no boot is cut; powercut= needs boots=.
        self.assertEqual([b.cut_after for b in self.plan([self.suite("two", "boots=2\n")])[0].chain],
                         [None, None])
        self.suite("one", "powercut=5\n")
        with self.assertRaises(SystemExit):
            vm_run.Suite(self.root, "one")

    def test_hotplug_boots_start_without_the_hdd_and_ssd(self):
        chain = self.plan([self.suite("hot", "boots=3\nhotplug=1\n")])[0].chain
        self.assertEqual([b.unplugged for b in chain], [(), ("hdd", "ssd"), ("hdd", "ssd")])
        cmd = vm_run.qemu_command(type("A", (), {"hdd_iops": 0, "append": [], "icount": False})(),
                                  "/r", "k", "i",
                                  {"hdd": "h", "ssd": "s", "swap": "w"}, 2, "2G",
                                  unplugged=("hdd", "ssd"), monitor="/m.sock")
        devices = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-device"]
        self.assertEqual(devices, [vm_run.DISK_DEVICES["swap"]])
        self.assertIn("unix:/m.sock,server=on,wait=off", cmd)
        self.suite("one", "hotplug=1\n")
        with self.assertRaises(SystemExit):
            vm_run.Suite(self.root, "one")

    def test_icount_runs_one_tcg_thread_that_counts(self):
        def accel(icount):
            args = type("A", (), {"hdd_iops": 0, "append": [], "icount": icount})()
            cmd = vm_run.qemu_command(args, "/r", "k", "i", {"hdd": "h", "ssd": "s", "swap": "w"},
                                      2, "2G")
            return [(a, cmd[i + 1]) for i, a in enumerate(cmd) if a in ("-accel", "-icount")]
        self.assertEqual(accel(False), [("-accel", "tcg,thread=multi")])
        self.assertEqual(accel(True), [("-accel", "tcg,thread=single"),
                                       ("-icount", "shift=0,sleep=on,align=off")])

    def test_overrides_make_one_boot(self):
        names = [self.suite("a", "cpus=4\n"), self.suite("b", "mem=1G\n")]
        boots = self.plan(names, cpus=2, mem="2G", timeout=77)
        self.assertEqual([(b.name, len(b.suites), b.timeout) for b in boots], [("2cpu-2G", 2, 77)])


if __name__ == "__main__":
    unittest.main()
