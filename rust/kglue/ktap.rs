// SPDX-License-Identifier: GPL-2.0

//! KTAP from a test module, in the kernel log: the form of the kernel's
//! `lib/test_*.c` modules, which a kselftest wrapper re-prints.
//!
//! Each line is printed with `pr_info!`, so it carries the module's prefix
//! (`test_btree_rs: ok 1 ...`); `tests/lib/rkm.sh`'s `rkm_module_ktap`
//! strips it.

use kernel::prelude::*;

/// A KTAP document being printed: a plan, then one result per case.
///
/// # Invariants
///
/// `next` is the number of the next result, `1..=planned + 1`.
pub(crate) struct Ktap {
    planned: u32,
    next: u32,
    failed: u32,
}

impl Ktap {
    /// Prints the header and the plan of `planned` cases.
    pub(crate) fn new(planned: u32) -> Self {
        pr_info!("KTAP version 1\n");
        pr_info!("1..{}\n", planned);
        Self {
            planned,
            next: 1,
            failed: 0,
        }
    }

    /// Prints a diagnostic line (`# ...`) about the case under way.
    pub(crate) fn diag(&mut self, args: core::fmt::Arguments<'_>) {
        pr_info!("# {}\n", args);
    }

    /// Prints the result of the next case: `ok` or `not ok` with the reason.
    pub(crate) fn result(&mut self, desc: &str, r: Result<(), &str>) {
        match r {
            Ok(()) => pr_info!("ok {} {}\n", self.next, desc),
            Err(why) => {
                self.failed += 1;
                pr_err!("not ok {} {} # {}\n", self.next, desc, why);
            }
        }
        self.next += 1;
    }

    /// Prints the totals; true if every planned case ran and passed.
    pub(crate) fn finish(self) -> bool {
        let ran = self.next - 1;
        pr_info!(
            "# Totals: pass:{} fail:{} xfail:0 xpass:0 skip:0 error:0\n",
            ran - self.failed,
            self.failed
        );
        self.failed == 0 && ran == self.planned
    }
}
