#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Harness self-test: a whole program skipped (1..0 # SKIP, exit 4) in a
# suite that is not optional, as when its module did not build. The run
# must fail.
. "$(dirname "$0")/../lib/rkm.sh"
ktap_print_header
ktap_skip_all "a required suite skipped as a whole"
exit "$KSFT_SKIP"
