#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Harness self-test: a whole program skipped in a suite marked optional=1.
# This one is a skip, not a failure.
. "$(dirname "$0")/../lib/rkm.sh"
ktap_print_header
ktap_skip_all "an optional suite skipped as a whole"
exit "$KSFT_SKIP"
