// SPDX-License-Identifier: GPL-2.0

//! The module's side: `register`, `unregister`, `status` and `wipe` talk to
//! the `bcache_rs` sysfs files (`Documentation/ABI/testing/sysfs-bcache_rs`),
//! `/sys/kernel/bcache_rs` and `/sys/block/bcache_rs*/bcache_rs`. The roots
//! can be moved for the tests (`BCACHE_RS_SYSFS`, `BCACHE_RS_SYSBLOCK`).

use rkm_bcache_format::Uuid;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// `/sys/kernel/bcache_rs`, or `$BCACHE_RS_SYSFS`.
pub fn root() -> PathBuf {
    std::env::var_os("BCACHE_RS_SYSFS")
        .map_or_else(|| "/sys/kernel/bcache_rs".into(), PathBuf::from)
}

/// `/sys/block`, or `$BCACHE_RS_SYSBLOCK`.
pub fn block_root() -> PathBuf {
    std::env::var_os("BCACHE_RS_SYSBLOCK").map_or_else(|| "/sys/block".into(), PathBuf::from)
}

/// Writes `line` to the sysfs file `path` in one `write(2)`, as the module
/// wants it.
pub fn write_line(path: &Path, line: &str) -> io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(format!("{line}\n").as_bytes())
}

/// A sysfs file's content, trimmed; `None` if it cannot be read.
pub fn read(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// The registered cache's directory, if a cache is registered.
pub fn cache_dir() -> Option<PathBuf> {
    let d = root().join("cache");
    d.is_dir().then_some(d)
}

/// The `bcache_rs` directories of the registered devices: (name, dir), in
/// name order.
pub fn devices() -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = fs::read_dir(block_root())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let dir = e.path().join("bcache_rs");
            (name.starts_with("bcache_rs") && dir.is_dir()).then_some((name, dir))
        })
        .collect();
    v.sort_by_key(|(n, _)| {
        n.trim_start_matches("bcache_rs")
            .parse::<u32>()
            .unwrap_or(u32::MAX)
    });
    v
}

/// The registered device named `uuid`: (name, `bcache_rs` directory).
pub fn device_of(uuid: &Uuid) -> Option<(String, PathBuf)> {
    let text = uuid.to_string();
    devices()
        .into_iter()
        .find(|(_, d)| read(&d.join("uuid")).as_deref() == Some(text.as_str()))
}

/// The cache's files that `status` shows.
pub const CACHE_FILES: &[&str] = &[
    "set_uuid",
    "device",
    "state",
    "block_size",
    "bucket_size",
    "buckets_total",
    "buckets_free",
    "buckets_in_use",
    "index_entries",
    "index_memory",
    "restored_extents",
    "io_errors",
    "attached",
];

/// A device's files that `status` shows.
pub const DEV_FILES: &[&str] = &[
    "uuid",
    "backing_dev",
    "state",
    "trusted",
    "cache_mode",
    "hits",
    "misses",
    "hit_ratio",
    "bytes_from_cache",
    "bytes_from_backing",
];

/// `(file, value)` of the files of `dir` (unreadable ones left out).
pub fn values(dir: &Path, files: &[&'static str]) -> Vec<(&'static str, String)> {
    files
        .iter()
        .filter_map(|f| read(&dir.join(f)).map(|v| (*f, v)))
        .collect()
}

/// A JSON string.
pub fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON value: a number if `v` is one, else a string.
pub fn json_value(v: &str) -> String {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && (v == "0" || !v.starts_with('0')) {
        v.to_string()
    } else {
        json_str(v)
    }
}

/// A JSON object of `pairs`.
pub fn json_object(pairs: &[(&str, String)]) -> String {
    let fields: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}: {}", json_str(k), json_value(v)))
        .collect();
    format!("{{{}}}", fields.join(", "))
}
