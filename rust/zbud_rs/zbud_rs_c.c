// SPDX-License-Identifier: GPL-2.0
/* The C of zbud_rs: the zpool driver structure and one-line wrappers. */
#define RKM_ZPOOL_TYPE "zbud_rs"
#include "../kglue/zpool_driver.c.inc"
#include "../kglue/debugfs.c.inc"
#include "../kglue/map_area.c.inc"
#include "../kglue/pages.c.inc"
#include "../kglue/warn.c.inc"
