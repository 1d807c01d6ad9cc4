// SPDX-License-Identifier: GPL-2.0

//! The persistent index's I/O (format version 2, Documentation/
//! bcache_rs-persistence.rst): the journal region read at registration and
//! the index restored from it, the block that opens a session before any
//! device is attached, and the checkpoint at a clean unregister. Every
//! decision is the core's (`rust/bcache/src/persist.rs`); here are the
//! reads and durable writes (process context, the registry's mutex held;
//! the core's lock only around each batch of [`CKPT_BATCH`] records).

use crate::bcache::{self, DevId};
use crate::blk::{BdevFile, SYNC_IO_MAX};
use crate::cache_set::{bucket_meta, fresh_core, fresh_sums, CacheSet, Core, Sums};
use crate::format::{
    self, BlockBuilder, BlockKind, CheckpointWriter, JournalLayout, JournalRing, Record, Uuid,
    JBLOCK_SIZE,
};
use crate::node_alloc::KmallocNodes;
use crate::persist::{self, Cursor};
use kernel::alloc::{flags::GFP_ATOMIC, flags::GFP_KERNEL, KVec, VVec};
use kernel::prelude::*;

/// Records taken from the index per hold of the core's lock.
const CKPT_BATCH: usize = 64;
/// Sectors of a journal block.
const BLOCK_SECTORS: u64 = (JBLOCK_SIZE / 512) as u64;
/// Blocks of one staged read or write.
const STAGE_BLOCKS: usize = SYNC_IO_MAX / JBLOCK_SIZE;

/// The journal of a registered cache.
///
/// # Invariants
///
/// `ring` is the writer's state of the ring of `layout` at sector `start`;
/// `area` is the checkpoint area not holding the live checkpoint.
pub(crate) struct Journal {
    layout: JournalLayout,
    start: u64,
    tag: u64,
    ring: JournalRing,
    area: u8,
}

/// What registration restored.
pub(crate) struct Loaded {
    pub(crate) core: Core,
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
            Ok(Journal {
                layout,
                start,
                tag,
                ring,
                area: 0,
            })
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
        let journal = Journal {
            layout,
            start,
            tag,
            ring: jring,
            area: scan.next_area(&layout),
        };
        if scan.dirty {
            pr_warn!(
                "cache {}: its last session did not end with a checkpoint (a crash, or a failed cache): the index starts empty\n",
                uuid
            );
            return empty(journal);
        }
        let Some(cp) = scan.checkpoint else {
            return empty(journal);
        };
        let bucket_sectors = sb.layout.bucket_sectors;
        let mut r = bcache::Restore::new(
            KmallocNodes(GFP_ATOMIC),
            bucket_meta(sb)?,
            bucket_sectors,
            |_| (0, 0),
        )
        .ok_or(EINVAL)?;
        let mut stage = Stage::new()?;
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
        let res = persist::restore(&scan, &region, &mut read, buf, &mut r, &sums, decide);
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
                    "cache {}: restored {} extents from the checkpoint of journal block {} ({} blocks; {} stale or of dropped devices)\n",
                    uuid,
                    done.extents,
                    cp.seq,
                    cp.blocks,
                    done.skipped
                );
                Ok(Loaded {
                    core: r.finish(),
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
        let taken = if checkpoint {
            self.ring.take_checkpoint()
        } else {
            self.ring.take()
        };
        let (seq, index) = taken.ok_or(ENOSPC)?;
        let mut bufv = zeroed_block()?;
        let buf = as_block(&mut bufv)?;
        let mut b = BlockBuilder::new(buf);
        for r in records {
            if !b.push(r) {
                return Err(EINVAL);
            }
        }
        let tail = if checkpoint { seq } else { self.ring.tail() };
        b.seal(BlockKind::Journal, seq, tail, self.tag);
        ssd.write_durable(self.sector(index), &bufv)?;
        self.ring.written(seq);
        if checkpoint {
            self.ring.checkpointed(seq);
        }
        Ok(())
    }

    /// Opens a session: makes durable that the cache may be written, before
    /// any device is attached (a checkpoint first if the ring needs one).
    pub(crate) fn open_session(&mut self, cache: &CacheSet, owners: &[Option<Uuid>]) -> Result {
        if self.ring.recovering() || self.ring.room() < 2 {
            self.checkpoint(cache, owners)?;
        }
        self.append(&cache.ssd, &[persist::ALL_DIRTY], false)
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
        self.append(ssd, &[cp, persist::SESSION_CLEAN], true)?;
        self.area = 1 - self.area.min(1);
        Ok((records, complete))
    }
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
