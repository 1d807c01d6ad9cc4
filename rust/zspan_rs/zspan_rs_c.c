// SPDX-License-Identifier: GPL-2.0
/*
 * The C of zspan_rs: the zpool driver structure (objects that cross a page
 * boundary are mapped through a per-CPU buffer: sleep_mapped is false),
 * and one-line wrappers.
 */
#define RKM_ZPOOL_TYPE "zspan_rs"
#define RKM_ZPOOL_SLEEP_MAPPED false
#include "../kglue/zpool_driver.c.inc"
#include "../kglue/debugfs.c.inc"
#include "../kglue/map_area.c.inc"
#include "../kglue/pages.c.inc"
#include "../kglue/warn.c.inc"
#include "shard_param.c.inc"
