// SPDX-License-Identifier: GPL-2.0

//! The human description of a superblock and its layout, printed by
//! `format-cache` and `show`.

use rkm_bcache_format::{
    check_prio_block, prio_entry, set_tag, BackingSb, DevState, JournalLayout, PrioBlock, Region,
    Size, Superblock, DEV_ENTRY_SIZE, DEV_TABLE_ENTRIES, FEATURE_INCOMPAT_DATA_CSUM,
    FEATURE_INCOMPAT_PERSISTENT_INDEX, LABEL_SIZE, PRIOS_PER_BLOCK, PRIO_BLOCK_SIZE, SB_SECTOR,
    SB_SIZE, SECTOR_SIZE, VERSION,
};
use std::fmt::Write;

/// One row of the layout table.
struct Row {
    name: &'static str,
    start: u64,
    sectors: u64,
    note: String,
}

/// The names of the known incompat features in `bits`, as ` (a, b)`.
fn feature_names(bits: u64) -> String {
    let names: Vec<&str> = [
        (FEATURE_INCOMPAT_PERSISTENT_INDEX, "persistent_index"),
        (FEATURE_INCOMPAT_DATA_CSUM, "data_csum"),
    ]
    .iter()
    .filter(|(b, _)| bits & b != 0)
    .map(|&(_, n)| n)
    .collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(" ({})", names.join(", "))
    }
}

/// The superblock's fields and the layout table, one line each.
pub fn describe(sb: &Superblock) -> String {
    let l = &sb.layout;
    let mut out = String::new();
    let label = String::from_utf8_lossy(sb.label_bytes());
    let label = if label.is_empty() {
        "(none)".to_string()
    } else {
        format!("{label:?}")
    };
    let fields = [
        ("set uuid", sb.set_uuid.to_string()),
        ("label", label),
        (
            "version",
            if sb.persistent() {
                format!("{} (persistent index)", sb.version)
            } else {
                format!(
                    "{} (no persistent index: the module upgrades it to {VERSION} at registration)",
                    sb.version
                )
            },
        ),
        (
            "checksums",
            if sb.data_csums() {
                "crc32c of every cached block, verified on every hit".to_string()
            } else {
                "none (the module turns them on at registration; a checkpoint without them restores nothing)"
                    .to_string()
            },
        ),
        (
            "features",
            format!(
                "compat {:#x}, ro_compat {:#x}, incompat {:#x}{}",
                sb.compat,
                sb.ro_compat,
                sb.incompat,
                feature_names(sb.incompat)
            ),
        ),
        ("flags", format!("{:#x}", sb.flags)),
        ("seq", sb.seq.to_string()),
        (
            "created",
            format!("{} (unix {})", utc_date(sb.created), sb.created),
        ),
        ("device size", sectors(l.device_sectors)),
        ("block size", sectors(u64::from(l.block_sectors))),
        ("bucket size", sectors(u64::from(l.bucket_sectors))),
        (
            "buckets",
            format!(
                "{} ({} metadata, {} data = {})",
                l.nbuckets,
                l.first_bucket,
                l.data_buckets(),
                Size(l.data_buckets() * l.bucket_bytes())
            ),
        ),
        (
            "data start",
            format!(
                "bucket {}, sector {}, byte {}",
                l.first_bucket,
                l.data_start_sector(),
                l.data_start_sector() * SECTOR_SIZE
            ),
        ),
    ];
    for (name, value) in fields {
        let _ = writeln!(out, "{:<13}{value}", format!("{name}:"));
    }
    let bucket = u64::from(l.bucket_sectors);
    let region = |name, r: Region, note: String| Row {
        name,
        start: r.start,
        sectors: r.sectors,
        note,
    };
    let rows = [
        Row {
            name: "reserved",
            start: 0,
            sectors: SB_SECTOR,
            note: "partition table / boot, never written".to_string(),
        },
        Row {
            name: "superblock",
            start: SB_SECTOR,
            sectors: SB_SIZE as u64 / SECTOR_SIZE,
            note: String::new(),
        },
        region(
            "device table",
            l.dev_table,
            format!("{DEV_TABLE_ENTRIES} entries of {DEV_ENTRY_SIZE} bytes, reserved"),
        ),
        region(
            "priorities",
            l.prios,
            format!(
                "{} buckets, {PRIOS_PER_BLOCK} per {} block, {}",
                l.nbuckets,
                Size(PRIO_BLOCK_SIZE),
                if sb.persistent() {
                    "written with each checkpoint"
                } else {
                    "reserved"
                }
            ),
        ),
        region(
            "journal",
            l.journal,
            match (sb.persistent(), JournalLayout::new(l.journal.sectors)) {
                (true, Some(j)) => format!(
                    "{} buckets: ring of {} blocks, 2 checkpoint areas",
                    l.journal.sectors / bucket.max(1),
                    j.ring_blocks
                ),
                _ => format!("{} buckets, reserved", l.journal.sectors / bucket.max(1)),
            },
        ),
        Row {
            name: "data",
            start: l.data_start_sector(),
            sectors: l.data_buckets() * bucket,
            note: format!("buckets {}..{}", l.first_bucket, l.nbuckets),
        },
    ];
    let _ = writeln!(out, "layout (sectors of {SECTOR_SIZE} bytes):");
    let _ = writeln!(
        out,
        "  {:<13}{:>13}{:>13}{:>15}{:>11}  note",
        "region", "start sector", "sectors", "start byte", "size"
    );
    for r in rows {
        let line = format!(
            "  {:<13}{:>13}{:>13}{:>15}{:>11}  {}",
            r.name,
            r.start,
            r.sectors,
            r.start * SECTOR_SIZE,
            Size(r.sectors * SECTOR_SIZE).to_string(),
            r.note
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// A NUL-padded label, quoted, or `(none)`.
fn label_text(label: &[u8; LABEL_SIZE]) -> String {
    let len = label.iter().position(|&b| b == 0).unwrap_or(LABEL_SIZE);
    let text = String::from_utf8_lossy(label.get(..len).unwrap_or(&[]));
    if text.is_empty() {
        "(none)".to_string()
    } else {
        format!("{text:?}")
    }
}

/// A backing superblock's fields, one line each, for a device of
/// `sectors` now.
pub fn describe_backing(sb: &BackingSb, sectors_now: u64) -> String {
    let mut out = String::new();
    let attached = if sb.cache_set.is_nil() {
        "none".to_string()
    } else {
        sb.cache_set.to_string()
    };
    let state = match sb.state {
        DevState::Clean => "clean",
        DevState::Dirty => "dirty (the cache holds data the device does not)",
    };
    let fields = [
        ("uuid", sb.uuid.to_string()),
        ("label", label_text(&sb.label)),
        ("version", sb.version.to_string()),
        (
            "features",
            format!(
                "compat {:#x}, ro_compat {:#x}, incompat {:#x}",
                sb.compat, sb.ro_compat, sb.incompat
            ),
        ),
        ("seq", sb.seq.to_string()),
        (
            "created",
            format!("{} (unix {})", utc_date(sb.created), sb.created),
        ),
        ("cache set", attached),
        ("state", state.to_string()),
        ("data offset", sectors(sb.data_offset)),
        ("data size", sectors(sb.data_sectors(sectors_now))),
    ];
    for (name, value) in fields {
        let _ = writeln!(out, "{:<13}{value}", format!("{name}:"));
    }
    out
}

/// "N sectors" with the size in bytes.
fn sectors(n: u64) -> String {
    let plural = if n == 1 { "" } else { "s" };
    format!("{} ({n} sector{plural})", Size(n * SECTOR_SIZE))
}

/// `seconds` since the Unix epoch as a UTC date and time.
pub fn utc_date(seconds: u64) -> String {
    let days = seconds / 86400;
    let rem = seconds % 86400;
    // Howard Hinnant's civil_from_days, for days >= 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// What the journal region of a version-2 cache says: `ring` holds its
/// ring's blocks (`None`: the region is too small to hold an index).
pub fn describe_journal(sb: &Superblock, layout: Option<&JournalLayout>, ring: &[u8]) -> String {
    use rkm_bcache::persist;
    let Some(layout) = layout else {
        return "journal:        too small to keep the index (the cache is volatile)\n".into();
    };
    let mut out = format!(
        "journal:        ring of {} blocks, two checkpoint areas of {} blocks\n",
        layout.ring_blocks, layout.area_blocks
    );
    let scan = match persist::scan(layout, set_tag(&sb.set_uuid), ring) {
        Ok(s) => s,
        Err(e) => {
            out += &format!("journal state:  {e}: the module starts the index empty\n");
            return out;
        }
    };
    let Some(plan) = scan.plan else {
        out += "journal state:  empty (nothing journaled yet: no checkpoint, nothing to restore)\n";
        return out;
    };
    out += &format!(
        "journal blocks: {} to {} replayed (newest {})\n",
        plan.tail,
        plan.end.saturating_sub(1),
        plan.newest
    );
    match scan.checkpoint {
        Some(c) => {
            out += &format!(
                "checkpoint:     {} records in {} blocks from region block {} (area {})\n",
                c.records,
                c.blocks,
                c.start,
                layout
                    .area_at(c.start)
                    .map_or("?".into(), |a| a.to_string())
            )
        }
        None => out += "checkpoint:     none\n",
    }
    if scan.dirty {
        out += "journal state:  dirty: every device marked written since the checkpoint (a full journal ring or a failed cache, or a session of the first version): the index starts empty\n";
    } else if scan.regions > 0 || scan.records > 0 {
        out += &format!(
            "journal state:  open (registered now, or its last session ended without a checkpoint): the checkpoint is kept but for what {} write-intent records (8 MiB regions or whole devices written) and {} bucket records (buckets reused) drop\n",
            scan.regions, scan.records
        );
    } else {
        out += "journal state:  clean: the index is kept\n";
    }
    out
}

/// What the priorities region (`prios`, read whole) keeps for the
/// checkpoint of journal block `seq`.
pub fn describe_prios(sb: &Superblock, seq: u64, prios: &[u8]) -> String {
    let tag = set_tag(&sb.set_uuid);
    let per = PRIOS_PER_BLOCK as usize;
    let nb = sb.layout.data_buckets() as usize;
    let blocks = nb.div_ceil(per);
    let (mut good, mut with) = (0, 0);
    for (j, b) in prios
        .chunks_exact(PRIO_BLOCK_SIZE as usize)
        .take(blocks)
        .enumerate()
    {
        let b: &PrioBlock = b.try_into().expect("a whole block");
        if !check_prio_block(b, tag, seq, j as u32) {
            continue;
        }
        good += 1;
        let n = (nb - j * per).min(per);
        with += (0..n)
            .filter(|&i| prio_entry(b, i).is_some_and(|(p, _)| p > 0))
            .count();
    }
    if good == 0 {
        return "priorities:     none kept for this checkpoint (the buckets start at 0)\n".into();
    }
    format!(
        "priorities:     {with} buckets with a priority, kept with the checkpoint ({good} of {blocks} blocks)\n"
    )
}
