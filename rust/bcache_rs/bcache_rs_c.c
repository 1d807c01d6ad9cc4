// SPDX-License-Identifier: GPL-2.0
/*
 * The C of bcache_rs: one-line wrappers around what 6.12's Rust bindings
 * cannot call (macros and static inlines), and the three C structures the
 * kernel needs filled in by a driver:
 *
 *   - struct rkm_bc_kobj: a kobject whose sysfs files call back into Rust
 *     (show/store function pointers and an owner, given by blk.rs);
 *   - rkm_bc_fops: the block_device_operations of the bcache_rs disks
 *     (submit_bio and open call back into Rust with the disk's owner);
 *   - the bio end_io of our bios (calls back into Rust).
 *
 * Every decision is in the Rust (blk.rs wraps each function below in a
 * type that owns what it opens; the rest of the module never calls C).
 * Bio operations are classified in Rust too: rkm_bc_bio_info() only reads
 * the fields.
 */
#include <linux/bio.h>
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/crc32c.h>
#include <linux/highmem.h>
#include <linux/unaligned.h>
#ifdef CONFIG_X86_64
#include <asm/cpufeature.h>
#endif
#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/reboot.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/sysfs.h>
#include <linux/workqueue.h>

/*
 * data_csum=0: the caches registered while it is 0 neither compute nor
 * verify data checksums (and their checkpoints keep no extents). For
 * measuring what the checksums cost; read-only once loaded.
 */
static bool data_csum = true;
module_param(data_csum, bool, 0444);
MODULE_PARM_DESC(data_csum,
		 "checksum cached data and verify every hit (default 1; 0 to measure their cost: caches registered with 0 keep no extents across a registration)");

bool rkm_bc_data_csum(void);
bool rkm_bc_data_csum(void)
{
	return data_csum;
}

/* Implemented in Rust (blk.rs). */
void bcache_rs_submit(void *owner, struct bio *bio);
int bcache_rs_open(void *owner);
void bcache_rs_endio(struct bio *bio, int err);

/* --- sysfs: a kobject whose attributes call back into Rust by index --- */

typedef ssize_t (*rkm_bc_show_fn)(const void *owner, int attr, char *buf);
typedef ssize_t (*rkm_bc_store_fn)(const void *owner, int attr, const char *buf, size_t len,
				   void *self);

struct rkm_bc_attr {
	struct attribute attr;
	int index;
};

struct rkm_bc_kobj {
	struct kobject kobj;
	const void *owner;
	rkm_bc_show_fn show;
	rkm_bc_store_fn store;
	struct attribute_group group;
	struct attribute **attrs;
	struct rkm_bc_attr *attr_mem;
};

/* What a store gets to remove its own directory (see rkm_bc_kobj_break). */
struct rkm_bc_self {
	struct kobject *kobj;
	const struct attribute *attr;
};

static ssize_t rkm_bc_kobj_show(struct kobject *kobj, struct attribute *attr, char *buf)
{
	struct rkm_bc_kobj *k = container_of(kobj, struct rkm_bc_kobj, kobj);

	return k->show(k->owner, container_of(attr, struct rkm_bc_attr, attr)->index, buf);
}

static ssize_t rkm_bc_kobj_store(struct kobject *kobj, struct attribute *attr, const char *buf,
				 size_t len)
{
	struct rkm_bc_kobj *k = container_of(kobj, struct rkm_bc_kobj, kobj);
	struct rkm_bc_self self = { .kobj = kobj, .attr = attr };

	return k->store(k->owner, container_of(attr, struct rkm_bc_attr, attr)->index, buf, len,
			&self);
}

static const struct sysfs_ops rkm_bc_sysfs_ops = {
	.show = rkm_bc_kobj_show,
	.store = rkm_bc_kobj_store,
};

static void rkm_bc_kobj_release(struct kobject *kobj)
{
	struct rkm_bc_kobj *k = container_of(kobj, struct rkm_bc_kobj, kobj);

	kfree(k->attrs);
	kfree(k->attr_mem);
	kfree(k);
}

static const struct kobj_type rkm_bc_ktype = {
	.release = rkm_bc_kobj_release,
	.sysfs_ops = &rkm_bc_sysfs_ops,
};

struct kobject *rkm_bc_kernel_kobj(void);
struct kobject *rkm_bc_kernel_kobj(void)
{
	return kernel_kobj;
}

struct kobject *rkm_bc_disk_kobj(struct gendisk *disk);
struct kobject *rkm_bc_disk_kobj(struct gendisk *disk)
{
	return &disk_to_dev(disk)->kobj;
}

struct kobject *rkm_bc_kobj_raw(struct rkm_bc_kobj *k);
struct kobject *rkm_bc_kobj_raw(struct rkm_bc_kobj *k)
{
	return &k->kobj;
}

/*
 * A directory `name` under `parent` with one file per entry of
 * names/modes; reading or writing file i calls show/store(owner, i). The
 * files' active references get the lockdep class `key`, one per kind of
 * directory, so that lockdep tells a store that takes a lock apart from a
 * directory of another kind removed under it.
 * Returns NULL on failure (nothing is left behind).
 */
struct rkm_bc_kobj *rkm_bc_kobj_create(struct kobject *parent, const char *name,
				       const void *owner, rkm_bc_show_fn show,
				       rkm_bc_store_fn store, const char *const *names,
				       const u16 *modes, int n, struct lock_class_key *key);
struct rkm_bc_kobj *rkm_bc_kobj_create(struct kobject *parent, const char *name,
				       const void *owner, rkm_bc_show_fn show,
				       rkm_bc_store_fn store, const char *const *names,
				       const u16 *modes, int n, struct lock_class_key *key)
{
	struct rkm_bc_kobj *k = kzalloc(sizeof(*k), GFP_KERNEL);
	int i;

	if (!k)
		return NULL;
	k->owner = owner;
	k->show = show;
	k->store = store;
	k->attrs = kcalloc(n + 1, sizeof(*k->attrs), GFP_KERNEL);
	k->attr_mem = kcalloc(n, sizeof(*k->attr_mem), GFP_KERNEL);
	kobject_init(&k->kobj, &rkm_bc_ktype);
	if (!k->attrs || !k->attr_mem)
		goto out;
	for (i = 0; i < n; i++) {
		/* One lockdep class per kind of directory (`key`, static). */
#ifdef CONFIG_DEBUG_LOCK_ALLOC
		k->attr_mem[i].attr.key = key;
#endif
		k->attr_mem[i].attr.name = names[i];
		k->attr_mem[i].attr.mode = modes[i];
		k->attr_mem[i].index = i;
		k->attrs[i] = &k->attr_mem[i].attr;
	}
	k->group.attrs = k->attrs;
	if (kobject_add(&k->kobj, parent, "%s", name))
		goto out;
	if (sysfs_create_group(&k->kobj, &k->group)) {
		kobject_del(&k->kobj);
		goto out;
	}
	return k;
out:
	kobject_put(&k->kobj);
	return NULL;
}

/* Removes the directory; waits for show/store calls in progress. */
void rkm_bc_kobj_destroy(struct rkm_bc_kobj *k);
void rkm_bc_kobj_destroy(struct rkm_bc_kobj *k)
{
	sysfs_remove_group(&k->kobj, &k->group);
	kobject_del(&k->kobj);
	kobject_put(&k->kobj);
}

/*
 * Lets the store in progress remove its own directory (or wait for a lock
 * held by one who does): its file no longer holds the directory's removal
 * back. Undone by rkm_bc_kobj_unbreak.
 */
struct kernfs_node *rkm_bc_kobj_break(struct rkm_bc_self *self);
struct kernfs_node *rkm_bc_kobj_break(struct rkm_bc_self *self)
{
	return sysfs_break_active_protection(self->kobj, self->attr);
}

void rkm_bc_kobj_unbreak(struct kernfs_node *kn);
void rkm_bc_kobj_unbreak(struct kernfs_node *kn)
{
	sysfs_unbreak_active_protection(kn);
}

/* Pins the module while a store runs without its file's protection. */
bool rkm_bc_module_get(void);
bool rkm_bc_module_get(void)
{
	return try_module_get(THIS_MODULE);
}

void rkm_bc_module_put(void);
void rkm_bc_module_put(void)
{
	module_put(THIS_MODULE);
}

/* --- block devices --- */

/* Opens `path` read-write, exclusively for `holder`; *err on failure. */
struct file *rkm_bc_open(const char *path, void *holder, int *err);
struct file *rkm_bc_open(const char *path, void *holder, int *err)
{
	struct file *f = bdev_file_open_by_path(path, BLK_OPEN_READ | BLK_OPEN_WRITE, holder, NULL);

	if (IS_ERR(f)) {
		*err = PTR_ERR(f);
		return NULL;
	}
	return f;
}

void rkm_bc_close(struct file *f);
void rkm_bc_close(struct file *f)
{
	bdev_fput(f);
}

struct block_device *rkm_bc_bdev(struct file *f);
struct block_device *rkm_bc_bdev(struct file *f)
{
	return file_bdev(f);
}

u64 rkm_bc_sectors(struct block_device *bdev);
u64 rkm_bc_sectors(struct block_device *bdev)
{
	return bdev_nr_sectors(bdev);
}

unsigned int rkm_bc_lbs(struct block_device *bdev);
unsigned int rkm_bc_lbs(struct block_device *bdev)
{
	return bdev_logical_block_size(bdev);
}

bool rkm_bc_zoned(struct block_device *bdev);
bool rkm_bc_zoned(struct block_device *bdev)
{
	return bdev_is_zoned(bdev);
}

u32 rkm_bc_devt(struct block_device *bdev);
u32 rkm_bc_devt(struct block_device *bdev)
{
	return bdev->bd_dev;
}

void rkm_bc_bdev_name(struct block_device *bdev, char *buf, size_t len);
void rkm_bc_bdev_name(struct block_device *bdev, char *buf, size_t len)
{
	snprintf(buf, len, "%pg", bdev);
}

/* Most bytes of one rkm_bc_rw_sync(). */
#define RKM_BC_SYNC_PAGES 16

/*
 * Reads or writes `len` bytes (a multiple of 512, at most
 * RKM_BC_SYNC_PAGES pages) at `sector`, through pages of its own, waiting
 * for the I/O. A write is REQ_PREFLUSH | REQ_FUA: durable, and after every
 * write completed before it, when it returns.
 */
int rkm_bc_rw_sync(struct block_device *bdev, u64 sector, void *buf, unsigned int len, bool write);
int rkm_bc_rw_sync(struct block_device *bdev, u64 sector, void *buf, unsigned int len, bool write)
{
	struct page *pages[RKM_BC_SYNC_PAGES];
	unsigned int n = DIV_ROUND_UP(len, PAGE_SIZE), i, got = 0;
	blk_opf_t op = write ? REQ_OP_WRITE | REQ_SYNC | REQ_PREFLUSH | REQ_FUA : REQ_OP_READ;
	struct bio *bio;
	int err = 0;

	if (!len || len % 512 || n > RKM_BC_SYNC_PAGES)
		return -EINVAL;
	for (got = 0; got < n; got++) {
		pages[got] = alloc_page(GFP_KERNEL);
		if (!pages[got]) {
			err = -ENOMEM;
			goto out;
		}
	}
	bio = bio_alloc(bdev, n, op, GFP_KERNEL);
	bio->bi_iter.bi_sector = sector;
	for (i = 0; i < n; i++) {
		unsigned int l = min_t(unsigned int, len - i * PAGE_SIZE, PAGE_SIZE);

		if (write)
			memcpy(page_address(pages[i]), buf + i * PAGE_SIZE, l);
		__bio_add_page(bio, pages[i], l, 0);
	}
	err = submit_bio_wait(bio);
	bio_put(bio);
	if (!err && !write) {
		for (i = 0; i < n; i++)
			memcpy(buf + i * PAGE_SIZE, page_address(pages[i]),
			       min_t(unsigned int, len - i * PAGE_SIZE, PAGE_SIZE));
	}
out:
	for (i = 0; i < got; i++)
		__free_page(pages[i]);
	return err;
}

/* --- the reboot notifier --- */

static void (*rkm_bc_reboot_fn)(const void *owner);
static const void *rkm_bc_reboot_owner;

static int rkm_bc_reboot_cb(struct notifier_block *nb, unsigned long code, void *unused)
{
	if (code == SYS_DOWN || code == SYS_HALT || code == SYS_POWER_OFF)
		rkm_bc_reboot_fn(rkm_bc_reboot_owner);
	return NOTIFY_DONE;
}

static struct notifier_block rkm_bc_reboot_nb = {
	.notifier_call = rkm_bc_reboot_cb,
};

/* Calls fn(owner) at reboot, halt and power off (one registration). */
int rkm_bc_reboot_register(void (*fn)(const void *owner), const void *owner);
int rkm_bc_reboot_register(void (*fn)(const void *owner), const void *owner)
{
	rkm_bc_reboot_fn = fn;
	rkm_bc_reboot_owner = owner;
	return register_reboot_notifier(&rkm_bc_reboot_nb);
}

/* Returns when no call is running (the chain's rwsem). */
void rkm_bc_reboot_unregister(void);
void rkm_bc_reboot_unregister(void)
{
	unregister_reboot_notifier(&rkm_bc_reboot_nb);
}

/* --- the bcache_rs disks --- */

static int rkm_bc_major;

static void rkm_bc_submit_bio(struct bio *bio)
{
	bcache_rs_submit(bio->bi_bdev->bd_disk->private_data, bio);
}

/* Called under disk->open_mutex. */
static int rkm_bc_disk_open(struct gendisk *disk, blk_mode_t mode)
{
	return bcache_rs_open(disk->private_data);
}

static const struct block_device_operations rkm_bc_fops = {
	.owner = THIS_MODULE,
	.submit_bio = rkm_bc_submit_bio,
	.open = rkm_bc_disk_open,
};

/*
 * Adds /dev/bcache_rs<idx>: `sectors` long, its limits stacked from
 * `backing` alone (a cache attached later never changes them), logical
 * blocks of at least `min_lbs` bytes, discard, write-zeroes and secure
 * erase only as far as `backing` has them. Bios go to
 * bcache_rs_submit(owner, bio). NULL and *err on failure.
 */
struct gendisk *rkm_bc_disk_create(struct block_device *backing, unsigned int min_lbs,
				   u64 sectors, int idx, const void *owner, int *err);
struct gendisk *rkm_bc_disk_create(struct block_device *backing, unsigned int min_lbs,
				   u64 sectors, int idx, const void *owner, int *err)
{
	struct queue_limits lim;
	struct gendisk *disk;

	blk_set_stacking_limits(&lim);
	lim.features |= BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA | BLK_FEAT_IO_STAT;
	lim.logical_block_size = max_t(unsigned int, min_lbs, SECTOR_SIZE);
	lim.physical_block_size = lim.logical_block_size;
	lim.io_min = lim.logical_block_size;
	queue_limits_stack_bdev(&lim, backing, 0, "bcache_rs");
	/* Stacking keeps the stacking default where the device has none. */
	if (!bdev_max_discard_sectors(backing)) {
		lim.max_hw_discard_sectors = 0;
		lim.max_discard_sectors = 0;
	}
	if (!bdev_max_secure_erase_sectors(backing))
		lim.max_secure_erase_sectors = 0;
	if (!bdev_write_zeroes_sectors(backing))
		lim.max_write_zeroes_sectors = 0;
	disk = blk_alloc_disk(&lim, NUMA_NO_NODE);
	if (IS_ERR(disk)) {
		*err = PTR_ERR(disk);
		return NULL;
	}
	disk->major = rkm_bc_major;
	disk->first_minor = idx;
	disk->minors = 1;
	disk->fops = &rkm_bc_fops;
	disk->private_data = (void *)owner;
	snprintf(disk->disk_name, DISK_NAME_LEN, "bcache_rs%d", idx);
	set_capacity(disk, sectors);
	*err = add_disk(disk);
	if (*err) {
		put_disk(disk);
		return NULL;
	}
	return disk;
}

/* Removes the disk: no bio is submitted to it after this returns. */
void rkm_bc_disk_destroy(struct gendisk *disk);
void rkm_bc_disk_destroy(struct gendisk *disk)
{
	del_gendisk(disk);
	put_disk(disk);
}

int rkm_bc_disk_link(struct gendisk *disk, struct block_device *bdev);
int rkm_bc_disk_link(struct gendisk *disk, struct block_device *bdev)
{
	return bd_link_disk_holder(bdev, disk);
}

void rkm_bc_disk_unlink(struct gendisk *disk, struct block_device *bdev);
void rkm_bc_disk_unlink(struct gendisk *disk, struct block_device *bdev)
{
	bd_unlink_disk_holder(bdev, disk);
}

void rkm_bc_disk_open_lock(struct gendisk *disk);
void rkm_bc_disk_open_lock(struct gendisk *disk)
{
	mutex_lock(&disk->open_mutex);
}

void rkm_bc_disk_open_unlock(struct gendisk *disk);
void rkm_bc_disk_open_unlock(struct gendisk *disk)
{
	mutex_unlock(&disk->open_mutex);
}

unsigned int rkm_bc_disk_openers(struct gendisk *disk);
unsigned int rkm_bc_disk_openers(struct gendisk *disk)
{
	return disk_openers(disk);
}

void rkm_bc_disk_freeze(struct gendisk *disk);
void rkm_bc_disk_freeze(struct gendisk *disk)
{
	blk_mq_freeze_queue(disk->queue);
}

void rkm_bc_disk_unfreeze(struct gendisk *disk);
void rkm_bc_disk_unfreeze(struct gendisk *disk)
{
	blk_mq_unfreeze_queue(disk->queue);
}

/* --- bios --- */

struct rkm_bc_bioinfo {
	u64 sector;
	u32 sectors;
	u32 op;
	u32 flags;
};

void rkm_bc_bio_info(struct bio *bio, struct rkm_bc_bioinfo *info);
void rkm_bc_bio_info(struct bio *bio, struct rkm_bc_bioinfo *info)
{
	info->sector = bio->bi_iter.bi_sector;
	info->sectors = bio_sectors(bio);
	info->op = bio_op(bio);
	info->flags = bio->bi_opf & ~REQ_OP_MASK;
}

/*
 * The link of a bio in a list of ours (a submitted bio we hold: bi_next is
 * its owner's, as in a bio_list).
 */
struct bio *rkm_bc_bio_next(struct bio *bio);
struct bio *rkm_bc_bio_next(struct bio *bio)
{
	return bio->bi_next;
}

void rkm_bc_bio_set_next(struct bio *bio, struct bio *next);
void rkm_bc_bio_set_next(struct bio *bio, struct bio *next)
{
	bio->bi_next = next;
}

/*
 * A scope in which every allocation of the task is GFP_NOIO: work on the
 * I/O path of our disks (their writes may wait for it), so that reclaim
 * never writes to them from it.
 */
unsigned int rkm_bc_noio_save(void);
unsigned int rkm_bc_noio_save(void)
{
	return memalloc_noio_save();
}

void rkm_bc_noio_restore(unsigned int flags);
void rkm_bc_noio_restore(unsigned int flags)
{
	memalloc_noio_restore(flags);
}

/* A bio set whose bios carry `front_pad` bytes (rounded up) before them. */
struct bio_set *rkm_bc_bioset_create(unsigned int front_pad);
struct bio_set *rkm_bc_bioset_create(unsigned int front_pad)
{
	struct bio_set *bs = kzalloc(sizeof(*bs), GFP_KERNEL);

	if (bs && bioset_init(bs, 64, ALIGN(front_pad, __alignof__(struct bio)),
			      BIOSET_NEED_BVECS | BIOSET_NEED_RESCUER)) {
		kfree(bs);
		bs = NULL;
	}
	return bs;
}

void rkm_bc_bioset_destroy(struct bio_set *bs);
void rkm_bc_bioset_destroy(struct bio_set *bs)
{
	bioset_exit(bs);
	kfree(bs);
}

void *rkm_bc_bio_pad(struct bio *bio);
void *rkm_bc_bio_pad(struct bio *bio)
{
	return (char *)bio - bio->bi_pool->front_pad;
}

/* Splits the first `sectors` off `bio` (chained to it); NULL on failure. */
struct bio *rkm_bc_split(struct bio *bio, u32 sectors, struct bio_set *bs);
struct bio *rkm_bc_split(struct bio *bio, u32 sectors, struct bio_set *bs)
{
	struct bio *split = bio_split(bio, sectors, GFP_NOIO, bs);

	if (IS_ERR_OR_NULL(split))
		return NULL;
	bio_chain(split, bio);
	return split;
}

static void rkm_bc_endio(struct bio *bio)
{
	bcache_rs_endio(bio, blk_status_to_errno(bio->bi_status));
}

/*
 * A clone of `orig` for `bdev` at `sector` that completes to
 * bcache_rs_endio; `op`, if not 0, replaces its operation and flags (a
 * plain write). NULL if there is no memory (GFP_NOIO from a mempool: only
 * if the allocation may not sleep).
 */
struct bio *rkm_bc_clone(struct bio *orig, struct block_device *bdev, u64 sector, u32 op,
			 struct bio_set *bs);
struct bio *rkm_bc_clone(struct bio *orig, struct block_device *bdev, u64 sector, u32 op,
			 struct bio_set *bs)
{
	struct bio *clone = bio_alloc_clone(bdev, orig, GFP_NOIO, bs);

	if (!clone)
		return NULL;
	clone->bi_iter.bi_sector = sector;
	clone->bi_end_io = rkm_bc_endio;
	if (op)
		clone->bi_opf = op;
	return clone;
}

/*
 * A bio of `bytes` in pages of its own, for `bdev` at `sector` with
 * operation `op`, completing to bcache_rs_endio; NULL if there is no
 * memory (the pages are not waited for).
 */
struct bio *rkm_bc_alloc_pages(struct block_device *bdev, u64 sector, unsigned int bytes,
			       u32 op, struct bio_set *bs);
struct bio *rkm_bc_alloc_pages(struct block_device *bdev, u64 sector, unsigned int bytes,
			       u32 op, struct bio_set *bs)
{
	unsigned int nr = DIV_ROUND_UP(bytes, PAGE_SIZE);
	struct bio *bio;

	if (!bytes || nr > BIO_MAX_VECS)
		return NULL;
	bio = bio_alloc_bioset(bdev, nr, op, GFP_NOIO, bs);
	if (!bio)
		return NULL;
	bio->bi_iter.bi_sector = sector;
	bio->bi_end_io = rkm_bc_endio;
	while (bytes) {
		unsigned int len = min_t(unsigned int, bytes, PAGE_SIZE);
		struct page *page = alloc_page(GFP_NOIO | __GFP_NOWARN | __GFP_NORETRY);

		if (!page) {
			bio_free_pages(bio);
			bio_put(bio);
			return NULL;
		}
		__bio_add_page(bio, page, len, 0);
		bytes -= len;
	}
	return bio;
}

void rkm_bc_free_pages(struct bio *bio);
void rkm_bc_free_pages(struct bio *bio)
{
	bio_free_pages(bio);
}

/*
 * Makes a completed bio of pages of its own (rkm_bc_alloc_pages) a new
 * `op` of all its pages to `bdev` at `sector`, completing to
 * bcache_rs_endio again.
 */
void rkm_bc_rewind(struct bio *bio, struct block_device *bdev, u64 sector, u32 op);
void rkm_bc_rewind(struct bio *bio, struct block_device *bdev, u64 sector, u32 op)
{
	unsigned short vcnt = bio->bi_vcnt;
	unsigned int size = 0;
	unsigned short i;

	for (i = 0; i < vcnt; i++)
		size += bio->bi_io_vec[i].bv_len;
	bio_reset(bio, bdev, op);
	bio->bi_vcnt = vcnt;
	bio->bi_iter.bi_sector = sector;
	bio->bi_iter.bi_size = size;
	bio->bi_end_io = rkm_bc_endio;
}

/*
 * crc32c (Castagnoli) of `len` bytes, continuing `crc` (the kernel's
 * crc32c() convention). On x86-64 with SSE4.2 the crc32 instruction in a
 * loop, as crc32c-intel does below 512 bytes: no FPU state to save (the
 * PCLMUL path saves it per call, which for blocks of 512 bytes costs more
 * than the crc), no crypto API in between. Elsewhere, crc32c().
 */
static u32 rkm_bc_crc32c(u32 crc, const u8 *p, unsigned int len)
{
#ifdef CONFIG_X86_64
	if (static_cpu_has(X86_FEATURE_XMM4_2)) {
		u64 c = crc;

		for (; len >= 8; len -= 8, p += 8)
			asm("crc32q %1, %0" : "+r"(c) : "rm"(get_unaligned((const u64 *)p)));
		crc = c;
		for (; len; len--, p++)
			asm("crc32b %1, %0" : "+r"(crc) : "rm"(*p));
		return crc;
	}
#endif
	return crc32c(crc, p, len);
}

#ifdef CONFIG_X86_64
/*
 * The crc32c (seeded ~0, not inverted) of each of the four blocks of `len`
 * bytes (a multiple of 8) from `p`: four independent chains interleaved,
 * so that the loop runs at the crc32 instruction's throughput (one a
 * cycle) rather than its latency (three). SSE4.2 only.
 */
static void rkm_bc_crc32c_x4(const u8 *p, unsigned int len, u32 out[4])
{
	u64 a = ~0U, b = ~0U, c = ~0U, d = ~0U;
	unsigned int i;

	for (i = 0; i < len; i += 8) {
		asm("crc32q %1, %0" : "+r"(a) : "rm"(get_unaligned((const u64 *)(p + i))));
		asm("crc32q %1, %0" : "+r"(b) : "rm"(get_unaligned((const u64 *)(p + len + i))));
		asm("crc32q %1, %0" : "+r"(c) : "rm"(get_unaligned((const u64 *)(p + 2 * len + i))));
		asm("crc32q %1, %0" : "+r"(d) : "rm"(get_unaligned((const u64 *)(p + 3 * len + i))));
	}
	out[0] = a;
	out[1] = b;
	out[2] = c;
	out[3] = d;
}

/* Whether four blocks of `block` bytes, of `left`, go through rkm_bc_crc32c_x4(). */
static bool rkm_bc_crc_x4(unsigned int block, unsigned int left)
{
	return static_cpu_has(X86_FEATURE_XMM4_2) && block % 8 == 0 && left / 4 >= block;
}
#endif

/*
 * Whether rkm_bc_crc32c() is crc32c: the check value of "123456789", and
 * crc32c() of a 512-byte block (the instruction's path against the
 * kernel's), and four interleaved blocks, at module load.
 */
bool rkm_bc_crc32c_ok(void);
bool rkm_bc_crc32c_ok(void)
{
	static const u8 check[] = "123456789";
	u8 *block = kmalloc(512, GFP_KERNEL);
	bool ok;
	int i;

	if (!block)
		return false;
	for (i = 0; i < 512; i++)
		block[i] = i * 7 + 3;
	ok = ~rkm_bc_crc32c(~0U, check, 9) == 0xe3069283 &&
	     rkm_bc_crc32c(~0U, block + 1, 509) == crc32c(~0U, block + 1, 509);
#ifdef CONFIG_X86_64
	if (ok && rkm_bc_crc_x4(64, 512)) {
		u32 four[4];

		rkm_bc_crc32c_x4(block, 64, four);
		for (i = 0; i < 4; i++)
			ok = ok && four[i] == crc32c(~0U, block + 64 * i, 64);
	}
#endif
	kfree(block);
	return ok;
}

/*
 * The data checksums of `bio`'s data (what its iterator describes: a bio
 * not submitted yet, or an original whose clone completed): the crc32c of
 * each `block`-byte block, seeded with ~0 and inverted (the format's
 * crc32c), stored in out[i] if `out`, compared with expect[i] if `expect`.
 * Returns `n`; -1 at the first mismatch; -2 if the data is not `n` whole
 * blocks (nothing compared or stored). Any context: the pages are mapped
 * with kmap_local.
 */
int rkm_bc_bio_crcs(struct bio *bio, unsigned int block, u32 *out, const u32 *expect,
		    unsigned int n);
int rkm_bc_bio_crcs(struct bio *bio, unsigned int block, u32 *out, const u32 *expect,
		    unsigned int n)
{
	struct bvec_iter iter;
	struct bio_vec bv;
	unsigned int i = 0, done = 0;
	u32 crc = ~0U;

	if (!block || n > INT_MAX / 2 || bio->bi_iter.bi_size != (u64)n * block)
		return -2;
	bio_for_each_segment(bv, bio, iter) {
		char *p = bvec_kmap_local(&bv);
		unsigned int off = 0;

		while (off < bv.bv_len) {
			unsigned int take = min(bv.bv_len - off, block - done);

#ifdef CONFIG_X86_64
			if (!done && rkm_bc_crc_x4(block, bv.bv_len - off)) {
				/* Four whole blocks of the segment at once. */
				u32 four[4];
				int k;

				rkm_bc_crc32c_x4((const u8 *)p + off, block, four);
				for (k = 0; k < 4; k++, i++) {
					if (expect && expect[i] != ~four[k]) {
						kunmap_local(p);
						return -1;
					}
					if (out)
						out[i] = ~four[k];
				}
				off += 4 * block;
				continue;
			}
#endif

			crc = rkm_bc_crc32c(crc, (const u8 *)p + off, take);
			off += take;
			done += take;
			if (done < block)
				continue;
			crc = ~crc;
			if (expect && expect[i] != crc) {
				kunmap_local(p);
				return -1;
			}
			if (out)
				out[i] = crc;
			i++;
			crc = ~0U;
			done = 0;
		}
		kunmap_local(p);
	}
	return i == n ? (int)n : -2;
}

void rkm_bc_copy_data(struct bio *dst, struct bio *src);
void rkm_bc_copy_data(struct bio *dst, struct bio *src)
{
	bio_copy_data(dst, src);
}

/* `bio` will not complete until one more bio_endio() (rkm_bc_endio_hold). */
void rkm_bc_hold(struct bio *bio);
void rkm_bc_hold(struct bio *bio)
{
	bio_inc_remaining(bio);
}

void rkm_bc_release_hold(struct bio *bio);
void rkm_bc_release_hold(struct bio *bio)
{
	bio_endio(bio);
}

void rkm_bc_submit(struct bio *bio);
void rkm_bc_submit(struct bio *bio)
{
	submit_bio_noacct(bio);
}

void rkm_bc_put(struct bio *bio);
void rkm_bc_put(struct bio *bio)
{
	bio_put(bio);
}

/*
 * Starts the disk's I/O accounting of `bio` (given to us) into *start,
 * unless the disk's queue/iostats is off: false then.
 */
bool rkm_bc_acct_start(struct bio *bio, unsigned long *start);
bool rkm_bc_acct_start(struct bio *bio, unsigned long *start)
{
	if (!blk_queue_io_stat(bio->bi_bdev->bd_disk->queue))
		return false;
	*start = bio_start_io_acct(bio);
	return true;
}

/*
 * Completes `bio` with the negative errno `err` (0: success), ending its
 * I/O accounting first if `acct` (started at `start`).
 */
void rkm_bc_complete(struct bio *bio, int err, bool acct, unsigned long start);
void rkm_bc_complete(struct bio *bio, int err, bool acct, unsigned long start)
{
	if (acct)
		bio_end_io_acct(bio, start);
	bio->bi_status = errno_to_blk_status(err);
	bio_endio(bio);
}

/* --- an irq-safe spinlock (spin_lock_irqsave is a macro) --- */

unsigned long rkm_bc_spin_lock_irqsave(spinlock_t *lock);
unsigned long rkm_bc_spin_lock_irqsave(spinlock_t *lock)
{
	unsigned long flags;

	spin_lock_irqsave(lock, flags);
	return flags;
}

void rkm_bc_spin_unlock_irqrestore(spinlock_t *lock, unsigned long flags);
void rkm_bc_spin_unlock_irqrestore(spinlock_t *lock, unsigned long flags)
{
	spin_unlock_irqrestore(lock, flags);
}

/* --- the module's workqueue, the block major --- */

struct workqueue_struct *rkm_bc_wq_create(void);
struct workqueue_struct *rkm_bc_wq_create(void)
{
	return alloc_workqueue("bcache_rs", WQ_MEM_RECLAIM, 0);
}

void rkm_bc_wq_flush(struct workqueue_struct *wq);
void rkm_bc_wq_flush(struct workqueue_struct *wq)
{
	flush_workqueue(wq);
}

void rkm_bc_wq_destroy(struct workqueue_struct *wq);
void rkm_bc_wq_destroy(struct workqueue_struct *wq)
{
	destroy_workqueue(wq);
}

void rkm_bc_msleep(unsigned int ms);
void rkm_bc_msleep(unsigned int ms)
{
	msleep(ms);
}

int rkm_bc_major_register(void);
int rkm_bc_major_register(void)
{
	rkm_bc_major = register_blkdev(0, "bcache_rs");
	return rkm_bc_major < 0 ? rkm_bc_major : 0;
}

void rkm_bc_major_unregister(void);
void rkm_bc_major_unregister(void)
{
	unregister_blkdev(rkm_bc_major, "bcache_rs");
}
