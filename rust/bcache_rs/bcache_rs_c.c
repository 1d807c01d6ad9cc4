// SPDX-License-Identifier: GPL-2.0
/*
 * The C of bcache_rs: what the kernel crate of 6.12 has no bindings or
 * abstractions for (sysfs kobjects, block device opens, gendisks, bios, an
 * irq-safe spinlock, a workqueue), as one-line wrappers and the structures
 * they need. Every decision is in the Rust (bcache_rs_main.rs, blk.rs).
 */
#include <linux/bio.h>
#include <linux/delay.h>
#include <linux/blkdev.h>
#include <linux/fs.h>
#include <linux/kobject.h>
#include <linux/llist.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/sysfs.h>
#include <linux/workqueue.h>

/* Implemented in Rust. */
ssize_t bcache_rs_show(void *owner, int attr, char *buf);
ssize_t bcache_rs_store(void *owner, int attr, const char *buf, size_t len);
void bcache_rs_submit(void *owner, struct bio *bio);
void bcache_rs_endio(struct bio *bio, int err);
void bcache_rs_deferred(void *owner, struct llist_node *node);
void bcache_rs_work(void *owner, int what);

/* --- sysfs: a kobject whose attributes call back into Rust by index --- */

struct rkm_bc_attr {
	struct attribute attr;
	int index;
};

struct rkm_bc_kobj {
	struct kobject kobj;
	void *owner;
	struct attribute_group group;
	struct attribute **attrs;
	struct rkm_bc_attr *attr_mem;
};

static ssize_t rkm_bc_kobj_show(struct kobject *kobj, struct attribute *attr, char *buf)
{
	struct rkm_bc_kobj *k = container_of(kobj, struct rkm_bc_kobj, kobj);

	return bcache_rs_show(k->owner, container_of(attr, struct rkm_bc_attr, attr)->index, buf);
}

static ssize_t rkm_bc_kobj_store(struct kobject *kobj, struct attribute *attr,
				 const char *buf, size_t len)
{
	struct rkm_bc_kobj *k = container_of(kobj, struct rkm_bc_kobj, kobj);

	return bcache_rs_store(k->owner, container_of(attr, struct rkm_bc_attr, attr)->index,
			       buf, len);
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

/*
 * A directory `name` under `parent` with one file per entry of
 * names/modes; reading or writing file i calls
 * bcache_rs_show/store(owner, base + i).
 * Returns NULL on failure (nothing is left behind).
 */
struct rkm_bc_kobj *rkm_bc_kobj_create(struct kobject *parent, const char *name, void *owner,
				       const char *const *names, const u16 *modes, int n, int base);
struct rkm_bc_kobj *rkm_bc_kobj_create(struct kobject *parent, const char *name, void *owner,
				       const char *const *names, const u16 *modes, int n, int base)
{
	struct rkm_bc_kobj *k = kzalloc(sizeof(*k), GFP_KERNEL);
	int i;

	if (!k)
		return NULL;
	k->owner = owner;
	k->attrs = kcalloc(n + 1, sizeof(*k->attrs), GFP_KERNEL);
	k->attr_mem = kcalloc(n, sizeof(*k->attr_mem), GFP_KERNEL);
	kobject_init(&k->kobj, &rkm_bc_ktype);
	if (!k->attrs || !k->attr_mem)
		goto out;
	for (i = 0; i < n; i++) {
		sysfs_attr_init(&k->attr_mem[i].attr);
		k->attr_mem[i].attr.name = names[i];
		k->attr_mem[i].attr.mode = modes[i];
		k->attr_mem[i].index = base + i;
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

struct kobject *rkm_bc_kobj_raw(struct rkm_bc_kobj *k);
struct kobject *rkm_bc_kobj_raw(struct rkm_bc_kobj *k)
{
	return &k->kobj;
}

/* Removes the directory; waits for show/store calls in progress. */
void rkm_bc_kobj_destroy(struct rkm_bc_kobj *k);
void rkm_bc_kobj_destroy(struct rkm_bc_kobj *k)
{
	sysfs_remove_group(&k->kobj, &k->group);
	kobject_del(&k->kobj);
	kobject_put(&k->kobj);
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

/* Reads or writes `len` bytes (at most a page) at `sector`, synchronously. */
int rkm_bc_rw_sync(struct block_device *bdev, u64 sector, void *buf, unsigned int len, bool write);
int rkm_bc_rw_sync(struct block_device *bdev, u64 sector, void *buf, unsigned int len, bool write)
{
	struct page *page;
	struct bio bio;
	struct bio_vec bvec;
	int err;

	if (len > PAGE_SIZE)
		return -EINVAL;
	page = alloc_page(GFP_KERNEL);
	if (!page)
		return -ENOMEM;
	if (write)
		memcpy(page_address(page), buf, len);
	bio_init(&bio, bdev, &bvec, 1, write ? REQ_OP_WRITE | REQ_SYNC | REQ_FUA : REQ_OP_READ);
	bio.bi_iter.bi_sector = sector;
	__bio_add_page(&bio, page, len, 0);
	err = submit_bio_wait(&bio);
	if (!err && !write)
		memcpy(buf, page_address(page), len);
	bio_uninit(&bio);
	__free_page(page);
	return err;
}

/* --- the bcache_rs disks --- */

static int rkm_bc_major;

static void rkm_bc_submit_bio(struct bio *bio)
{
	bcache_rs_submit(bio->bi_bdev->bd_disk->private_data, bio);
}

static const struct block_device_operations rkm_bc_fops = {
	.owner = THIS_MODULE,
	.submit_bio = rkm_bc_submit_bio,
};

/*
 * Adds /dev/bcache_rs<idx>: `sectors` long, limits stacked from `backing`
 * (and `ssd` if not NULL), logical blocks of at least `min_lbs` bytes.
 * Bios go to bcache_rs_submit(owner, bio). NULL and *err on failure.
 */
struct gendisk *rkm_bc_disk_create(struct block_device *backing, struct block_device *ssd,
				   unsigned int min_lbs, u64 sectors, int idx, void *owner,
				   int *err);
struct gendisk *rkm_bc_disk_create(struct block_device *backing, struct block_device *ssd,
				   unsigned int min_lbs, u64 sectors, int idx, void *owner,
				   int *err)
{
	struct queue_limits lim;
	struct gendisk *disk;

	blk_set_stacking_limits(&lim);
	lim.features |= BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA | BLK_FEAT_IO_STAT;
	lim.logical_block_size = max_t(unsigned int, min_lbs, SECTOR_SIZE);
	lim.physical_block_size = lim.logical_block_size;
	lim.io_min = lim.logical_block_size;
	queue_limits_stack_bdev(&lim, backing, 0, "bcache_rs");
	if (ssd)
		queue_limits_stack_bdev(&lim, ssd, 0, "bcache_rs");
	disk = blk_alloc_disk(&lim, NUMA_NO_NODE);
	if (IS_ERR(disk)) {
		*err = PTR_ERR(disk);
		return NULL;
	}
	disk->major = rkm_bc_major;
	disk->first_minor = idx;
	disk->minors = 1;
	disk->fops = &rkm_bc_fops;
	disk->private_data = owner;
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

/*
 * Links `bdev` under `disk` as one of its slaves (/sys/block/<disk>/slaves,
 * /sys/block/<bdev>/holders: what lsblk shows). `bdev` is open exclusively.
 */
int rkm_bc_disk_link(struct gendisk *disk, struct block_device *bdev);
int rkm_bc_disk_link(struct gendisk *disk, struct block_device *bdev)
{
	return bd_link_disk_holder(bdev, disk);
}

/* Undoes rkm_bc_disk_link(), before the disk is removed. */
void rkm_bc_disk_unlink(struct gendisk *disk, struct block_device *bdev);
void rkm_bc_disk_unlink(struct gendisk *disk, struct block_device *bdev)
{
	bd_unlink_disk_holder(bdev, disk);
}

unsigned int rkm_bc_disk_openers(struct gendisk *disk);
unsigned int rkm_bc_disk_openers(struct gendisk *disk)
{
	return disk_openers(disk);
}

/* --- bios --- */

enum { RKM_BC_READ, RKM_BC_WRITE, RKM_BC_FLUSH, RKM_BC_DISCARD, RKM_BC_OTHER };

struct rkm_bc_bioinfo {
	u64 sector;
	u32 sectors;
	u32 op;
};

void rkm_bc_bio_info(struct bio *bio, struct rkm_bc_bioinfo *info);
void rkm_bc_bio_info(struct bio *bio, struct rkm_bc_bioinfo *info)
{
	info->sector = bio->bi_iter.bi_sector;
	info->sectors = bio_sectors(bio);
	switch (bio_op(bio)) {
	case REQ_OP_READ:
		info->op = RKM_BC_READ;
		break;
	case REQ_OP_WRITE:
		info->op = bio_sectors(bio) ? RKM_BC_WRITE : RKM_BC_FLUSH;
		break;
	case REQ_OP_FLUSH:
		info->op = RKM_BC_FLUSH;
		break;
	case REQ_OP_DISCARD:
	case REQ_OP_SECURE_ERASE:
	case REQ_OP_WRITE_ZEROES:
		info->op = RKM_BC_DISCARD;
		break;
	default:
		info->op = RKM_BC_OTHER;
	}
}

/* A bio set whose bios carry `front_pad` bytes of context before them. */
struct bio_set *rkm_bc_bioset_create(unsigned int front_pad);
struct bio_set *rkm_bc_bioset_create(unsigned int front_pad)
{
	struct bio_set *bs = kzalloc(sizeof(*bs), GFP_KERNEL);

	if (bs && bioset_init(bs, 64, front_pad, BIOSET_NEED_BVECS | BIOSET_NEED_RESCUER)) {
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

void *rkm_bc_bio_ctx(struct bio *bio);
void *rkm_bc_bio_ctx(struct bio *bio)
{
	return (char *)bio - bio->bi_pool->front_pad;
}

/* Splits the first `sectors` off `bio` (chained to it) and returns them. */
struct bio *rkm_bc_split(struct bio *bio, u32 sectors, struct bio_set *bs);
struct bio *rkm_bc_split(struct bio *bio, u32 sectors, struct bio_set *bs)
{
	struct bio *split = bio_split(bio, sectors, GFP_NOIO, bs);

	if (IS_ERR(split))
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
 * bcache_rs_endio. `plain` makes it a plain write (no flush, no FUA): the
 * cache copy of a write. Never fails (GFP_NOIO from a mempool).
 */
struct bio *rkm_bc_clone(struct bio *orig, struct block_device *bdev, u64 sector, bool plain,
			 struct bio_set *bs);
struct bio *rkm_bc_clone(struct bio *orig, struct block_device *bdev, u64 sector, bool plain,
			 struct bio_set *bs)
{
	struct bio *clone = bio_alloc_clone(bdev, orig, GFP_NOIO, bs);

	clone->bi_iter.bi_sector = sector;
	clone->bi_end_io = rkm_bc_endio;
	if (plain)
		clone->bi_opf = REQ_OP_WRITE;
	return clone;
}

/*
 * A write to `bdev` at `sector` of a copy of `src`'s data, in pages of its
 * own, completing to bcache_rs_endio; NULL if there is no memory.
 */
struct bio *rkm_bc_copy(struct bio *src, struct block_device *bdev, u64 sector,
			struct bio_set *bs);
struct bio *rkm_bc_copy(struct bio *src, struct block_device *bdev, u64 sector,
			struct bio_set *bs)
{
	unsigned int size = src->bi_iter.bi_size;
	unsigned int nr = DIV_ROUND_UP(size, PAGE_SIZE);
	struct bio *bio;

	if (nr > BIO_MAX_VECS)
		return NULL;
	bio = bio_alloc_bioset(bdev, nr, REQ_OP_WRITE, GFP_NOIO, bs);
	bio->bi_iter.bi_sector = sector;
	bio->bi_end_io = rkm_bc_endio;
	while (size) {
		unsigned int len = min_t(unsigned int, size, PAGE_SIZE);
		struct page *page = alloc_page(GFP_NOIO | __GFP_NOWARN | __GFP_NORETRY);

		if (!page) {
			bio_free_pages(bio);
			bio_put(bio);
			return NULL;
		}
		__bio_add_page(bio, page, len, 0);
		size -= len;
	}
	bio_copy_data(bio, src);
	return bio;
}

void rkm_bc_free_copy(struct bio *bio);
void rkm_bc_free_copy(struct bio *bio)
{
	bio_free_pages(bio);
	bio_put(bio);
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

/* --- an irq-safe spinlock --- */

size_t rkm_bc_lock_size(void);
size_t rkm_bc_lock_size(void)
{
	return sizeof(spinlock_t);
}

void rkm_bc_lock_init(spinlock_t *lock);
void rkm_bc_lock_init(spinlock_t *lock)
{
	spin_lock_init(lock);
}

unsigned long rkm_bc_lock(spinlock_t *lock);
unsigned long rkm_bc_lock(spinlock_t *lock)
{
	unsigned long flags;

	spin_lock_irqsave(lock, flags);
	return flags;
}

void rkm_bc_unlock(spinlock_t *lock, unsigned long flags);
void rkm_bc_unlock(spinlock_t *lock, unsigned long flags)
{
	spin_unlock_irqrestore(lock, flags);
}

/* --- deferred work --- */

static struct workqueue_struct *rkm_bc_wq;

/* Work that calls bcache_rs_work(owner, what); and a list of nodes that it
 * hands to bcache_rs_deferred(owner, node) one by one, oldest first. */
struct rkm_bc_work {
	struct work_struct work;
	struct llist_head list;
	void *owner;
	int what;
};

static void rkm_bc_work_fn(struct work_struct *work)
{
	struct rkm_bc_work *w = container_of(work, struct rkm_bc_work, work);
	struct llist_node *node = llist_reverse_order(llist_del_all(&w->list));

	while (node) {
		struct llist_node *next = node->next;

		bcache_rs_deferred(w->owner, node);
		node = next;
	}
	bcache_rs_work(w->owner, w->what);
}

struct rkm_bc_work *rkm_bc_work_create(void *owner, int what);
struct rkm_bc_work *rkm_bc_work_create(void *owner, int what)
{
	struct rkm_bc_work *w = kzalloc(sizeof(*w), GFP_KERNEL);

	if (w) {
		INIT_WORK(&w->work, rkm_bc_work_fn);
		init_llist_head(&w->list);
		w->owner = owner;
		w->what = what;
	}
	return w;
}

void rkm_bc_work_queue(struct rkm_bc_work *w);
void rkm_bc_work_queue(struct rkm_bc_work *w)
{
	queue_work(rkm_bc_wq, &w->work);
}

/* Queues `node` for bcache_rs_deferred; callable from any context. */
void rkm_bc_defer(struct rkm_bc_work *w, struct llist_node *node);
void rkm_bc_defer(struct rkm_bc_work *w, struct llist_node *node)
{
	if (llist_add(node, &w->list))
		queue_work(rkm_bc_wq, &w->work);
}

/* Waits for the work to finish, cancels it if queued, and frees it. */
void rkm_bc_work_destroy(struct rkm_bc_work *w);
void rkm_bc_work_destroy(struct rkm_bc_work *w)
{
	cancel_work_sync(&w->work);
	kfree(w);
}

void rkm_bc_msleep(unsigned int ms);
void rkm_bc_msleep(unsigned int ms)
{
	msleep(ms);
}

int rkm_bc_init(void);
int rkm_bc_init(void)
{
	rkm_bc_wq = alloc_workqueue("bcache_rs", WQ_MEM_RECLAIM, 0);
	if (!rkm_bc_wq)
		return -ENOMEM;
	rkm_bc_major = register_blkdev(0, "bcache_rs");
	if (rkm_bc_major < 0) {
		destroy_workqueue(rkm_bc_wq);
		return rkm_bc_major;
	}
	return 0;
}

void rkm_bc_exit(void);
void rkm_bc_exit(void)
{
	unregister_blkdev(rkm_bc_major, "bcache_rs");
	destroy_workqueue(rkm_bc_wq);
}
