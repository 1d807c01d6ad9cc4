// SPDX-License-Identifier: GPL-2.0
/* The C of test_zspan_rs: the one-line wrappers its pool code calls. */
#include "../kglue/debugfs.c.inc"
#include "../kglue/kthread.c.inc"
#include "../kglue/map_area.c.inc"
#include "../kglue/pages.c.inc"
#include "../kglue/warn.c.inc"
#include "../kglue/zpool_test.c.inc"
#include "shard_param.c.inc"
