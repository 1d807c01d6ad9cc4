# SPDX-License-Identifier: GPL-2.0
"""Unit tests of scripts/check-modules.py: `make check` fails when a module
the Kbuild files list was not built."""

import os
import shutil
import subprocess
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(__file__), "../../scripts/check-modules.py")


class CheckModulesTest(unittest.TestCase):
    def setUp(self):
        self.top = tempfile.mkdtemp(prefix="ckmod-")
        self.moddir = os.path.join(self.top, "build")
        files = {
            "Kbuild": "subdir-ccflags-y += -Werror\nobj-m += rust/a/\nobj-m += rust/b/  # b\n",
            "rust/a/Kbuild": "obj-m += a.o test_a.o\na-y := a_main.o a_c.o\n",
            "rust/b/Kbuild": "obj-m := b.o \\\n\tbench_b.o\n",
        }
        for path, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(self.top, path)), exist_ok=True)
            with open(os.path.join(self.top, path), "w") as f:
                f.write(text)
        for ko in ["rust/a/a.ko", "rust/a/test_a.ko", "rust/b/b.ko", "rust/b/bench_b.ko"]:
            os.makedirs(os.path.dirname(os.path.join(self.moddir, ko)), exist_ok=True)
            open(os.path.join(self.moddir, ko), "w").close()

    def tearDown(self):
        shutil.rmtree(self.top)

    def run_check(self):
        return subprocess.run(["python3", SCRIPT, self.top, self.moddir], capture_output=True,
                              text=True)

    def test_all_built(self):
        r = self.run_check()
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("4 of the 4 modules", r.stdout)

    def test_missing_module_fails(self):
        os.unlink(os.path.join(self.moddir, "rust/b/bench_b.ko"))
        r = self.run_check()
        self.assertEqual(r.returncode, 1)
        self.assertIn("rust/b/bench_b.ko is listed in Kbuild but was not built", r.stdout)

    def test_no_module_listed_fails(self):
        with open(os.path.join(self.top, "Kbuild"), "w") as f:
            f.write("# nothing\n")
        self.assertEqual(self.run_check().returncode, 1)


if __name__ == "__main__":
    unittest.main()
