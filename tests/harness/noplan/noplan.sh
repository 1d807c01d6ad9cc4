#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Harness self-test: a program that prints results but no plan, and exits 0.
# The run must fail on the missing plan.
echo "TAP version 13"
echo "ok 1 a result without a plan"
echo "ok 2 another one"
exit 0
