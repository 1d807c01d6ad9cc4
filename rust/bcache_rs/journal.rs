// SPDX-License-Identifier: GPL-2.0

//! The persistent index's I/O (format version 2, Documentation/
//! bcache_rs-persistence.rst): the journal region read at registration and
//! the index restored from it; during a session, the records that keep a
//! crash from restoring stale extents (the write-intent map's `DIRTY`, the
//! reused buckets' `BUCKET`), each block durable before what it covers
//! happens; and the checkpoint at a clean unregister. Every decision is
//! the core's (`rust/bcache/src/persist.rs`); here are the reads and
//! durable writes (process context, under the cache's journal mutex; the
//! core's lock only around each batch of [`CKPT_BATCH`] records).

use crate::bcache::{self, DevId};
use crate::blk::{BdevFile, NoIo, SYNC_IO_MAX};
use crate::cache_set::{bucket_meta, fresh_core, fresh_sums, CacheSet, Core, Sums};
use crate::format::{
    self, BlockBuilder, BlockKind, CheckpointWriter, JournalLayout, JournalRing, Record, Uuid,
    ALL_REGIONS, JBLOCK_PAYLOAD, JBLOCK_SIZE,
};
use crate::node_alloc::KmallocNodes;
use crate::persist::{self, Cursor, MAX_DEVICES};
use kernel::alloc::{flags::GFP_ATOMIC, flags::GFP_KERNEL, KBox, KVec, VVec};
use kernel::prelude::*;

/// Records taken from the index per hold of the core's lock.
const CKPT_BATCH: usize = 64;
/// Sectors of a journal block.
const BLOCK_SECTORS: u64 = (JBLOCK_SIZE / 512) as u64;
/// Blocks of one staged read or write.
const STAGE_BLOCKS: usize = SYNC_IO_MAX / JBLOCK_SIZE;
/// `DIRTY` or `BUCKET` records (16 bytes) in one journal block.
pub(crate) const RECORDS_PER_BLOCK: usize = JBLOCK_PAYLOAD / 16;

/// The journal of a registered cache.
///
/// # Invariants
///
/// `ring` is the writer's state of the ring of `layout` at sector `start`;
/// `area` is the checkpoint area not holding the live checkpoint.
/// `ckpt_devs[k]` is the UUID of device number `k` of the checkpoint at
/// the tail (`MAX_DEVICES` entries); `whole[k]`: a `DIRTY` of all its
/// regions is durable since; `all_dirty`: a `DIRTY` of every device is
/// (or the journal gave up: nothing is recorded any more).
pub(crate) struct Journal {
    layout: JournalLayout,
    start: u64,
    tag: u64,
    ring: JournalRing,
    area: u8,
    ckpt_devs: KVec<Option<Uuid>>,
    whole: KVec<bool>,
    all_dirty: bool,
    /// The block being written (heap: 4 KiB), allocated once: a journal
    /// write on the I/O path allocates nothing of its own.
    block: KVec<u8>,
    /// The bucket records taken for the next block.
    taken: KVec<(u32, u32)>,
}

/// What registration restored.
pub(crate) struct Loaded {
    pub(crate) core: KBox<Core>,
    pub(crate) sums: Sums,
    pub(crate) journal: Option<Journal>,
    pub(crate) restored: u64,
}

/// Blocks read or written a stage (up to [`STAGE_BLOCKS`]) at a time.
struct Stage {
    buf: KVec<u8>,
    /// The first block staged, and how many.
    first: u64,
    count: usize,
}

impl Stage {
    fn new() -> Result<Self> {
        Ok(Stage {
            buf: KVec::from_elem(0u8, SYNC_IO_MAX, GFP_KERNEL)?,
            first: 0,
            count: 0,
        })
    }

    fn block(&self, i: usize) -> Option<&[u8]> {
        self.buf.get(i * JBLOCK_SIZE..(i + 1) * JBLOCK_SIZE)
    }
}

impl Journal {
    fn new(
        layout: JournalLayout,
        start: u64,
        tag: u64,
        ring: JournalRing,
        area: u8,
    ) -> Result<Self> {
        // INVARIANT: no checkpoint device known yet, nothing recorded.
        Ok(Journal {
            layout,
            start,
            tag,
            ring,
            area,
            ckpt_devs: KVec::from_elem(None, MAX_DEVICES, GFP_KERNEL)?,
            whole: KVec::from_elem(false, MAX_DEVICES, GFP_KERNEL)?,
            all_dirty: false,
            block: zeroed_block()?,
            taken: KVec::from_elem((0, 0), RECORDS_PER_BLOCK, GFP_KERNEL)?,
        })
    }

    fn sector(&self, block: u64) -> u64 {
        self.start + block * BLOCK_SECTORS
    }

    /// Reads block `block` through `stage` (a stage of blocks read ahead,
    /// up to the end of `limit`).
    fn read_block(
        &self,
        ssd: &BdevFile,
        stage: &mut Stage,
        block: u64,
        limit: u64,
        out: &mut [u8; JBLOCK_SIZE],
    ) -> Result {
        let hit = block >= stage.first && block - stage.first < stage.count as u64;
        if !hit {
            let n = (limit.saturating_sub(block) as usize).clamp(1, STAGE_BLOCKS);
            let bytes = stage.buf.get_mut(..n * JBLOCK_SIZE).ok_or(EINVAL)?;
            stage.count = 0;
            ssd.read(self.sector(block), bytes)?;
            stage.first = block;
            stage.count = n;
        }
        let i = (block - stage.first) as usize;
        let b = stage.block(i).ok_or(EINVAL)?;
        out.copy_from_slice(b);
        Ok(())
    }

    /// Reads the journal of the cache on `ssd` (superblock `sb`, version 2)
    /// and restores its index, or an empty one if the last session did not
    /// close or the journal is damaged (said in one line). `decide` gives
    /// each device the checkpoint names its number here, or drops it.
    ///
    /// # Errors
    ///
    /// An I/O error reading the journal, or no memory: the registration
    /// fails.
    pub(crate) fn load(
        ssd: &BdevFile,
        sb: &format::Superblock,
        decide: &mut dyn FnMut(u32, Uuid) -> Option<DevId>,
    ) -> Result<Loaded> {
        let uuid = sb.set_uuid;
        let Some(layout) = JournalLayout::new(sb.layout.journal.sectors) else {
            pr_warn!(
                "cache {}: its journal region ({} sectors) is too small to keep the index: the cache forgets it at unregister\n",
                uuid,
                sb.layout.journal.sectors
            );
            return Ok(Loaded {
                core: fresh_core(sb)?,
                sums: fresh_sums(sb)?,
                journal: None,
                restored: 0,
            });
        };
        let tag = format::set_tag(&uuid);
        let nring = usize::try_from(layout.ring_blocks).map_err(|_| EINVAL)?;
        let mut ring = VVec::from_elem(0u8, nring * JBLOCK_SIZE, GFP_KERNEL)?;
        let start = sb.layout.journal.start;
        for (i, chunk) in ring.chunks_mut(SYNC_IO_MAX).enumerate() {
            let sector = start + (i * STAGE_BLOCKS) as u64 * BLOCK_SECTORS;
            if let Err(e) = ssd.read(sector, chunk) {
                pr_err!(
                    "cache {}: cannot read its journal at sector {} (error {})\n",
                    uuid,
                    sector,
                    e.to_errno()
                );
                return Err(e);
            }
        }
        let empty = |journal: Journal| -> Result<Loaded> {
            Ok(Loaded {
                core: fresh_core(sb)?,
                sums: fresh_sums(sb)?,
                journal: Some(journal),
                restored: 0,
            })
        };
        let restart = |newest: u64| -> Result<Journal> {
            let ring = persist::restart_ring(&layout, newest).ok_or(EINVAL)?;
            Journal::new(layout, start, tag, ring, 0)
        };
        let scan = match persist::scan(&layout, tag, &ring) {
            Ok(s) => s,
            Err(e) => {
                pr_warn!("cache {}: {}: the index starts empty\n", uuid, e);
                return empty(restart(e.newest().unwrap_or(0))?);
            }
        };
        let Some(jring) = scan.ring(&layout) else {
            pr_warn!("cache {}: journal damaged: the index starts empty\n", uuid);
            return empty(restart(scan.plan.map_or(0, |p| p.newest))?);
        };
        let mut journal = Journal::new(layout, start, tag, jring, scan.next_area(&layout))?;
        if scan.dirty {
            pr_warn!(
                "cache {}: its last session gave its write-intent map up (a full journal, a failed cache, or a module of the first version) and did not end with a checkpoint: the index starts empty\n",
                uuid
            );
            // A crash restores nothing until the next checkpoint: no
            // record is needed.
            journal.all_dirty = true;
            return empty(journal);
        }
        let Some(cp) = scan.checkpoint else {
            return empty(journal);
        };
        let bucket_sectors = sb.layout.bucket_sectors;
        let mut stage = Stage::new()?;
        let (prios, kept) = read_prios(ssd, sb, tag, cp.seq, &mut stage)?;
        let mut r = bcache::Restore::new(
            KmallocNodes(GFP_ATOMIC),
            bucket_meta(sb)?,
            bucket_sectors,
            |b| (0, prios.get(b as usize).copied().unwrap_or(0)),
        )
        .ok_or(EINVAL)?;
        drop(prios);
        let mut bufv = zeroed_block()?;
        let buf = as_block(&mut bufv)?;
        let limit = cp.start + u64::from(cp.blocks);
        let mut read = |block: u64, out: &mut [u8; JBLOCK_SIZE]| -> core::result::Result<(), i32> {
            journal
                .read_block(ssd, &mut stage, block, limit, out)
                .map_err(|e| e.to_errno())
        };
        let region = persist::RegionView {
            layout: &layout,
            tag,
            ring: &ring,
        };
        let sums = fresh_sums(sb)?;
        let mut ckpt_devs = KVec::from_elem(None, MAX_DEVICES, GFP_KERNEL)?;
        let mut seen = |d: u32, u: Uuid| {
            if let Some(slot) = usize::try_from(d).ok().and_then(|d| ckpt_devs.get_mut(d)) {
                *slot = Some(u);
            }
            decide(d, u)
        };
        let res = persist::restore(&scan, &region, &mut read, buf, &mut r, &sums, &mut seen);
        match res {
            Ok(done) => {
                if done.unsummed > 0 {
                    pr_warn!(
                        "cache {}: {} extents of the checkpoint lack data checksums (written before feature data_csum, or its area was full): not restored\n",
                        uuid,
                        done.unsummed
                    );
                }
                pr_info!(
                    "cache {}: restored {} extents from the checkpoint of journal block {} ({} blocks; {} stale or of dropped devices; {} write-intent and {} bucket records since; priorities of {} buckets)\n",
                    uuid,
                    done.extents,
                    cp.seq,
                    cp.blocks,
                    done.skipped,
                    scan.regions,
                    scan.records,
                    kept
                );
                journal.ckpt_devs = ckpt_devs;
                Ok(Loaded {
                    core: boxed(r)?,
                    sums,
                    journal: Some(journal),
                    restored: done.extents,
                })
            }
            Err(persist::LoadError::Read { block, errno }) => {
                pr_err!(
                    "cache {}: cannot read block {} of its journal region (error {})\n",
                    uuid,
                    block,
                    errno
                );
                Err(Error::from_errno(errno))
            }
            Err(e) => {
                pr_warn!("cache {}: {}: the index starts empty\n", uuid, e);
                // Before the fresh ones are allocated.
                drop(r);
                drop(sums);
                empty(restart(scan.plan.map_or(0, |p| p.newest))?)
            }
        }
    }

    /// Writes one journal block of `records` at the ring's next place
    /// (a checkpoint's, which moves the tail, if `checkpoint`), durably.
    fn append(&mut self, ssd: &BdevFile, records: &[Record], checkpoint: bool) -> Result {
        self.append_with(ssd, checkpoint, &mut records.iter().copied())
    }

    /// Writes one journal block of `records` (at most a block of them) at
    /// the ring's next place (a checkpoint's, which moves the tail, if
    /// `checkpoint`), durably. If the write fails, the block is taken
    /// again by the next one (no gap: replay reads on past it).
    fn append_with(
        &mut self,
        ssd: &BdevFile,
        checkpoint: bool,
        records: &mut dyn Iterator<Item = Record>,
    ) -> Result {
        // Writes of our disks may wait for this block (parked, or for a
        // bucket): its allocations must not wait for them.
        let _noio = NoIo::begin();
        let taken = if checkpoint {
            self.ring.take_checkpoint()
        } else {
            self.ring.take()
        };
        let (seq, index) = taken.ok_or(ENOSPC)?;
        let tail = if checkpoint { seq } else { self.ring.tail() };
        let written = (|| -> Result {
            let buf = as_block(&mut self.block)?;
            buf.fill(0);
            let mut b = BlockBuilder::new(buf);
            for r in records {
                if !b.push(&r) {
                    return Err(EINVAL);
                }
            }
            b.seal(BlockKind::Journal, seq, tail, self.tag);
            ssd.write_durable(self.start + index * BLOCK_SECTORS, &self.block)
        })();
        if let Err(e) = written {
            self.ring.untake(seq);
            return Err(e);
        }
        self.ring.written(seq);
        if checkpoint {
            self.ring.checkpointed(seq);
        }
        Ok(())
    }

    /// Opens a session, before any device is attached: a checkpoint of the
    /// restored index first if the ring recovers from a gap or has little
    /// room left; else nothing is written (the write-intent map records
    /// what the session writes).
    pub(crate) fn open_session(&mut self, cache: &CacheSet, owners: &[Option<Uuid>]) -> Result {
        if self.ring.recovering() || self.ring.room() < 3 {
            self.checkpoint(cache, owners)?;
        }
        // Buckets of the checkpoint wait for their records before reuse
        // (those of dropped devices already do: recorded now).
        cache.core.lock().buckets.set_persistent(!self.all_dirty);
        cache.set_intent_off(self.all_dirty);
        self.flush_buckets(cache);
        Ok(())
    }

    /// The number in the checkpoint at the tail of the device of UUID
    /// `uuid`, if its extents there may be restored and its writes must
    /// be recorded.
    pub(crate) fn ckpt_number(&self, uuid: Uuid) -> Option<u32> {
        if self.all_dirty {
            return None;
        }
        let k = self.ckpt_devs.iter().position(|d| *d == Some(uuid))?;
        if self.whole.get(k).copied().unwrap_or(true) {
            return None;
        }
        u32::try_from(k).ok()
    }

    /// Writes one block of session records, durably; or, if the ring
    /// keeps only the checkpoint's block after it, gives the map up
    /// instead (which covers the records).
    fn session_block(
        &mut self,
        cache: &CacheSet,
        records: &mut dyn Iterator<Item = Record>,
    ) -> Result {
        if self.all_dirty {
            return Ok(());
        }
        if self.ring.room() <= 2 {
            self.give_up(cache, "its journal ring is full");
            return Ok(());
        }
        self.append_with(&cache.ssd, false, records)
    }

    /// Gives the write-intent map up: a `DIRTY` of every device, after
    /// which nothing is recorded (and buckets are reused at once) and a
    /// crash restores nothing, until the next checkpoint. Said once, with
    /// `why`. If even this block cannot be written, the cache fails.
    pub(crate) fn give_up(&mut self, cache: &CacheSet, why: &str) {
        if self.all_dirty {
            return;
        }
        let written = self.append(&cache.ssd, &[persist::ALL_DIRTY], false);
        self.all_dirty = true;
        cache.set_intent_off(true);
        {
            let mut g = cache.core.lock();
            g.buckets.set_persistent(false);
            let mut out = [(0u32, 0u32); 64];
            while g.buckets.take_invalidated(&mut out) > 0 {}
            g.buckets.durable(u32::MAX);
        }
        match written {
            Ok(()) => pr_warn!(
                "cache {}: {}: its write-intent map is given up; a crash before the next clean unregister restores nothing\n",
                cache.sb.set_uuid,
                why
            ),
            Err(e) => {
                pr_err!(
                    "cache {}: {}, and the journal block that gives its write-intent map up cannot be written (error {}): the cache fails; wipe it (bcache-rs wipe) if the machine may crash before its next clean unregister\n",
                    cache.sb.set_uuid,
                    why,
                    e.to_errno()
                );
                cache.fail();
            }
        }
    }

    /// Makes durable that `regions` of checkpoint device `k` may be written
    /// (`DIRTY`), in as few blocks as they fill; if a block cannot be
    /// written, the map is given up instead (or the cache failed).
    pub(crate) fn dirty(&mut self, cache: &CacheSet, k: u32, regions: &[u64]) {
        for chunk in regions.chunks(RECORDS_PER_BLOCK) {
            let mut recs = chunk.iter().map(|&region| Record::Dirty { dev: k, region });
            if let Err(e) = self.session_block(cache, &mut recs) {
                self.give_up_after(cache, e);
                return;
            }
        }
    }

    /// Makes durable that every region of the checkpoint's device of UUID
    /// `uuid` may be written (it goes on uncached, or its extents were
    /// dropped): no record of it is needed any more.
    pub(crate) fn dirty_device(&mut self, cache: &CacheSet, uuid: Uuid) {
        let Some(k) = self.ckpt_number(uuid) else {
            return;
        };
        let rec = Record::Dirty {
            dev: k,
            region: ALL_REGIONS,
        };
        match self.session_block(cache, &mut core::iter::once(rec)) {
            Ok(()) => {
                if let Some(w) = self.whole.get_mut(k as usize) {
                    *w = true;
                }
            }
            Err(e) => self.give_up_after(cache, e),
        }
    }

    /// Journals the records of the buckets invalidated since the last call
    /// that a checkpoint may hold extents in; they are reused once durable.
    pub(crate) fn flush_buckets(&mut self, cache: &CacheSet) {
        loop {
            let mut taken = core::mem::take(&mut self.taken);
            let n = cache.core.lock().buckets.take_invalidated(&mut taken);
            let mut recs = taken.iter().take(n).map(|&(bucket, gen)| Record::Bucket {
                bucket: u64::from(bucket),
                gen,
            });
            let res = if n == 0 {
                Ok(())
            } else {
                self.session_block(cache, &mut recs)
            };
            self.taken = taken;
            if n == 0 {
                return;
            }
            if let Err(e) = res {
                // Gives the buckets back too.
                self.give_up_after(cache, e);
                return;
            }
            // At most RECORDS_PER_BLOCK.
            cache.core.lock().buckets.durable(n as u32);
        }
    }

    fn give_up_after(&mut self, cache: &CacheSet, e: Error) {
        pr_err!(
            "cache {}: cannot write its journal (error {})\n",
            cache.sb.set_uuid,
            e.to_errno()
        );
        self.give_up(cache, "a journal write failed");
    }

    /// Writes a checkpoint of `cache` (the devices of `owners` only) and
    /// closes the session. Returns the records written and whether every
    /// extent fit in the checkpoint area.
    pub(crate) fn checkpoint(
        &mut self,
        cache: &CacheSet,
        owners: &[Option<Uuid>],
    ) -> Result<(u64, bool)> {
        let ssd = &cache.ssd;
        let start = self.layout.area_start(self.area);
        let mut wbufv = zeroed_block()?;
        let mut w = CheckpointWriter::new(
            as_block(&mut wbufv)?,
            self.ring.next_seq(),
            self.tag,
            start,
            self.layout.area_blocks,
        );
        let mut stage = Stage::new()?;
        let mut emit = |block: u64, b: &[u8; JBLOCK_SIZE]| -> Result {
            let contiguous = block == stage.first + stage.count as u64;
            if stage.count == STAGE_BLOCKS || (stage.count > 0 && !contiguous) {
                flush(self, ssd, &mut stage)?;
            }
            if stage.count == 0 {
                stage.first = block;
            }
            let at = stage.count * JBLOCK_SIZE;
            let dst = stage.buf.get_mut(at..at + JBLOCK_SIZE).ok_or(EINVAL)?;
            dst.copy_from_slice(b);
            stage.count += 1;
            Ok(())
        };
        let mut batch = KVec::from_elem(persist::SESSION_CLEAN, CKPT_BATCH, GFP_KERNEL)?;
        let mut cursor = Cursor::Devices(0);
        let mut complete = true;
        'records: loop {
            let (n, next) = {
                let g = cache.core.lock();
                persist::checkpoint_step(&g, owners, cursor, &mut batch)
            };
            for r in batch.iter().take(n) {
                // The extent's checksums follow it (the index holds still:
                // no I/O, so nothing writes them).
                if !w.push(r, &mut emit)?
                    || (cache.csum
                        && !persist::extent_sums(r, &cache.sums, &mut |s| w.push(s, &mut emit))?)
                {
                    complete = false;
                    break 'records;
                }
            }
            if next == Cursor::Done {
                break;
            }
            cursor = next;
        }
        let records = w.records();
        let cp = w.finish(&mut emit)?;
        flush(self, ssd, &mut stage)?;
        // The priorities go with this checkpoint (its journal block's
        // sequence number), durable before it.
        write_prios(cache, self.tag, self.ring.next_seq(), &mut stage)?;
        self.append(ssd, &[cp, persist::SESSION_CLEAN], true)?;
        self.area = 1 - self.area.min(1);
        // The tail moved: what the session recorded is behind it.
        for (i, d) in self.ckpt_devs.iter_mut().enumerate() {
            *d = owners.get(i).copied().flatten();
        }
        self.whole.fill(false);
        self.all_dirty = false;
        cache.core.lock().buckets.checkpointed();
        Ok((records, complete))
    }
}

/// The restored core, on the heap: its in-flight table (kilobytes) is
/// made in this frame, out of line, not in the frames of registration.
#[inline(never)]
fn boxed(r: bcache::Restore<KmallocNodes, VVec<bcache::BucketMeta>>) -> Result<KBox<Core>> {
    Ok(KBox::new(r.finish(), GFP_KERNEL)?)
}

/// Writes the priorities of `cache`'s buckets into its priorities region
/// (`format::prios`), as those of the checkpoint of journal block `seq`,
/// durably, through `stage`; the core's lock held for each block's
/// [`format::PRIOS_PER_BLOCK`] buckets. Nothing if the region cannot hold
/// them.
fn write_prios(cache: &CacheSet, tag: u64, seq: u64, stage: &mut Stage) -> Result {
    let region = cache.sb.layout.prios;
    let per = format::PRIOS_PER_BLOCK as usize;
    let nb = cache.core.lock().buckets.count();
    let blocks = nb.div_ceil(per);
    if blocks as u64 * BLOCK_SECTORS > region.sectors {
        return Ok(());
    }
    stage.count = 0;
    for j in 0..blocks {
        let at = stage.count * JBLOCK_SIZE;
        let dst: &mut format::PrioBlock = stage
            .buf
            .get_mut(at..at + JBLOCK_SIZE)
            .and_then(|b| b.try_into().ok())
            .ok_or(EINVAL)?;
        let first = j * per;
        {
            let g = cache.core.lock();
            let mut entry = |i: usize| {
                g.buckets
                    .meta((first + i) as u32)
                    .map_or((0, 0), |m| (m.prio, m.gen))
            };
            // `j` < `blocks`, a u32 (buckets are).
            format::encode_prio_block(dst, tag, seq, j as u32, nb - first, &mut entry);
        }
        stage.count += 1;
        if stage.count == STAGE_BLOCKS || j + 1 == blocks {
            let from = (j + 1 - stage.count) as u64;
            let bytes = stage.buf.get(..stage.count * JBLOCK_SIZE).ok_or(EINVAL)?;
            cache
                .ssd
                .write_durable(region.start + from * BLOCK_SECTORS, bytes)?;
            stage.count = 0;
        }
    }
    Ok(())
}

/// The priorities the priorities region of the cache on `ssd` keeps for
/// the checkpoint of journal block `seq` (0 for the buckets of a block
/// that does not check), and how many buckets have one.
fn read_prios(
    ssd: &BdevFile,
    sb: &format::Superblock,
    tag: u64,
    seq: u64,
    stage: &mut Stage,
) -> Result<(VVec<u8>, u64)> {
    let nb = usize::try_from(sb.layout.data_buckets()).map_err(|_| EINVAL)?;
    let mut prios = VVec::from_elem(0u8, nb, GFP_KERNEL)?;
    let region = sb.layout.prios;
    let per = format::PRIOS_PER_BLOCK as usize;
    let blocks = nb.div_ceil(per);
    if blocks as u64 * BLOCK_SECTORS > region.sectors {
        return Ok((prios, 0));
    }
    let mut kept = 0u64;
    let mut j = 0;
    while j < blocks {
        let n = (blocks - j).min(STAGE_BLOCKS);
        let bytes = stage.buf.get_mut(..n * JBLOCK_SIZE).ok_or(EINVAL)?;
        ssd.read(region.start + j as u64 * BLOCK_SECTORS, bytes)?;
        for (k, b) in bytes.chunks_exact(JBLOCK_SIZE).enumerate() {
            let idx = j + k;
            let Ok(b) = <&format::PrioBlock>::try_from(b) else {
                continue;
            };
            // `idx` < `blocks`, a u32 (buckets are).
            if !format::check_prio_block(b, tag, seq, idx as u32) {
                continue;
            }
            let first = idx * per;
            let slots = prios.get_mut(first..nb.min(first + per)).unwrap_or(&mut []);
            for (i, p) in slots.iter_mut().enumerate() {
                if let Some((prio, _)) = format::prio_entry(b, i) {
                    *p = u8::try_from(prio).unwrap_or(u8::MAX);
                    kept += u64::from(*p > 0);
                }
            }
        }
        j += n;
    }
    Ok((prios, kept))
}

/// Writes the staged blocks.
fn flush(j: &Journal, ssd: &BdevFile, stage: &mut Stage) -> Result {
    if stage.count > 0 {
        let bytes = stage.buf.get(..stage.count * JBLOCK_SIZE).ok_or(EINVAL)?;
        ssd.write_durable(j.sector(stage.first), bytes)?;
    }
    stage.count = 0;
    Ok(())
}

/// A zeroed block of heap (not of the stack: 4 KiB).
fn zeroed_block() -> Result<KVec<u8>> {
    Ok(KVec::from_elem(0u8, JBLOCK_SIZE, GFP_KERNEL)?)
}

fn as_block(v: &mut KVec<u8>) -> Result<&mut [u8; JBLOCK_SIZE]> {
    v.as_mut_slice().try_into().map_err(|_| EINVAL)
}
