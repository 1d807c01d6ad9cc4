// SPDX-License-Identifier: GPL-2.0
/*
 * The C of bench_zspan_rs: the one-line wrappers its pool code calls, and
 * zsmalloc's API (exported, GPL) behind wrappers of the same shape, so
 * that the benchmark's one loop drives both allocators the way zswap's
 * zpool calls do (zs_zpool_malloc and friends are one call each into
 * these).
 */
#include <linux/err.h>
#include <linux/gfp.h>
#include <linux/zsmalloc.h>
#include "../kglue/debugfs.c.inc"
#include "../kglue/kthread.c.inc"
#include "../kglue/map_area.c.inc"
#include "../kglue/pages.c.inc"
#include "../kglue/warn.c.inc"
#include "shard_param.c.inc"

void *rkm_zs_create(const char *name);
void *rkm_zs_create(const char *name)
{
	return zs_create_pool(name);
}

void rkm_zs_destroy(void *pool);
void rkm_zs_destroy(void *pool)
{
	zs_destroy_pool(pool);
}

/* zswap's flags for zpool_malloc (mm/zswap.c, zswap_compress). */
gfp_t rkm_zswap_gfp(void);
gfp_t rkm_zswap_gfp(void)
{
	return __GFP_NORETRY | __GFP_NOWARN | __GFP_KSWAPD_RECLAIM;
}

/*
 * A handle, or 0 when zs_malloc fails (its errors are error values); with
 * zswap's flags and the two it adds for a pool that supports movable pages.
 */
unsigned long rkm_zs_malloc(void *pool, size_t size);
unsigned long rkm_zs_malloc(void *pool, size_t size)
{
	gfp_t gfp = rkm_zswap_gfp() | __GFP_HIGHMEM | __GFP_MOVABLE;
	unsigned long handle = zs_malloc(pool, size, gfp);

	return IS_ERR_VALUE(handle) ? 0 : handle;
}

void rkm_zs_free(void *pool, unsigned long handle);
void rkm_zs_free(void *pool, unsigned long handle)
{
	zs_free(pool, handle);
}

/* write: ZS_MM_WO (zswap's store), else ZS_MM_RO (its load). */
void *rkm_zs_map(void *pool, unsigned long handle, bool write);
void *rkm_zs_map(void *pool, unsigned long handle, bool write)
{
	return zs_map_object(pool, handle, write ? ZS_MM_WO : ZS_MM_RO);
}

void rkm_zs_unmap(void *pool, unsigned long handle);
void rkm_zs_unmap(void *pool, unsigned long handle)
{
	zs_unmap_object(pool, handle);
}

unsigned long rkm_zs_total_pages(void *pool);
unsigned long rkm_zs_total_pages(void *pool)
{
	return zs_get_total_pages(pool);
}
