// SPDX-License-Identifier: GPL-2.0

//! `register`, `unregister`, `status` and `wipe` against a fake sysfs tree
//! (`BCACHE_RS_SYSFS`, `BCACHE_RS_SYSBLOCK`): what they write where, what
//! they read back, and their refusals. The VM tests run them on the module.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const MIB: u64 = 1 << 20;
const UUID: &str = "1b4e28ba-2fa1-41d2-883f-0016d3cca427";
const DEV_UUID: &str = "11111111-2222-4333-8444-555555555555";

struct Tree {
    root: PathBuf,
}

impl Tree {
    fn new(name: &str) -> Tree {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("sysfs-{name}"));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("kernel/bcache_rs")).unwrap();
        fs::create_dir_all(root.join("block")).unwrap();
        for f in ["register_cache", "register_dev"] {
            fs::write(root.join("kernel/bcache_rs").join(f), "").unwrap();
        }
        Tree { root }
    }

    fn module(&self) -> PathBuf {
        self.root.join("kernel/bcache_rs")
    }

    fn add_cache(&self, files: &[(&str, &str)]) {
        let d = self.module().join("cache");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("unregister"), "").unwrap();
        for (f, v) in files {
            fs::write(d.join(f), format!("{v}\n")).unwrap();
        }
    }

    fn add_dev(&self, n: u32, files: &[(&str, &str)]) -> PathBuf {
        let d = self.root.join(format!("block/bcache_rs{n}/bcache_rs"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("stop"), "").unwrap();
        for (f, v) in files {
            fs::write(d.join(f), format!("{v}\n")).unwrap();
        }
        d
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_bcache-rs"))
            .args(args)
            .env("BCACHE_RS_SYSFS", self.module())
            .env("BCACHE_RS_SYSBLOCK", self.root.join("block"))
            .stdin(Stdio::null())
            .output()
            .expect("run bcache-rs")
    }
}

fn image(name: &str, size: u64) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("sysfs-{name}.img"));
    fs::write(&path, vec![0u8; size as usize]).unwrap();
    path
}

fn text(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn register_a_cache_writes_its_path_once() {
    let t = Tree::new("cache");
    let img = image("cache", 64 * MIB);
    let f = t.run(&["format-cache", "--uuid", UUID, img.to_str().unwrap()]);
    assert_eq!(f.status.code(), Some(0), "{}", err(&f));
    let o = t.run(&["register", img.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(
        text(&t.module().join("register_cache")),
        format!("{}\n", img.display())
    );
    // Registered already (the same set UUID): nothing written again.
    fs::write(t.module().join("register_cache"), "").unwrap();
    t.add_cache(&[("set_uuid", UUID)]);
    let o = t.run(&["register", img.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(out(&o).contains("registered already"), "{}", out(&o));
    assert_eq!(text(&t.module().join("register_cache")), "");
    // --uuid is for backing devices.
    let o = t.run(&["register", "--uuid", DEV_UUID, img.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
}

#[test]
fn register_a_backing_device_in_place() {
    let t = Tree::new("dev");
    let img = image("dev", 4 * MIB);
    // Not a cache, no --uuid: a usage error.
    let o = t.run(&["register", img.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("needs --uuid"), "{}", err(&o));
    // --trust needs --uuid.
    let o = t.run(&["register", "--trust", img.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    let o = t.run(&[
        "register",
        "--uuid",
        DEV_UUID,
        "--trust",
        img.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(
        text(&t.module().join("register_dev")),
        format!("{DEV_UUID} {} trust=1\n", img.display())
    );
    // A backing superblock: the path alone (the superblock names it); a
    // --uuid that is not its own is refused.
    let b = t.run(&[
        "format-backing",
        "--force",
        "--uuid",
        UUID,
        img.to_str().unwrap(),
    ]);
    assert_eq!(b.status.code(), Some(0), "{}", err(&b));
    let o = t.run(&["register", "--uuid", DEV_UUID, img.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("its backing superblock names"),
        "{}",
        err(&o)
    );
    let o = t.run(&["register", img.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(
        text(&t.module().join("register_dev")),
        format!("{}\n", img.display())
    );
}

#[test]
fn no_module_is_an_error_that_says_so() {
    let t = Tree::new("none");
    fs::remove_dir_all(t.module()).unwrap();
    for args in [&["status"][..], &["unregister"][..]] {
        let o = t.run(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(err(&o).contains("modprobe bcache_rs"), "{}", err(&o));
    }
}

#[test]
fn status_shows_the_cache_and_devices() {
    let t = Tree::new("status");
    let o = t.run(&["status"]);
    assert_eq!(out(&o), "no cache registered\n");
    let o = t.run(&["status", "--json"]);
    assert_eq!(out(&o), "{\"cache\": null, \"devices\": []}\n");
    t.add_cache(&[
        ("set_uuid", UUID),
        ("device", "nvme0n1"),
        ("state", "active"),
        ("buckets_total", "100"),
        ("buckets_in_use", "7"),
        ("index_entries", "42"),
        ("restored_extents", "40"),
        ("attached", "1"),
    ]);
    t.add_dev(
        0,
        &[
            ("uuid", DEV_UUID),
            ("backing_dev", "vda"),
            ("state", "cached"),
            ("trusted", "1"),
            ("cache_mode", "writethrough"),
            ("hits", "9"),
            ("misses", "1"),
            ("hit_ratio", "90"),
        ],
    );
    let o = t.run(&["status"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(
        out(&o),
        format!(
            "cache {UUID} on nvme0n1: active, 7 of 100 buckets in use, 42 extents (40 restored at registration), 1 devices attached\n\
             bcache_rs0: {DEV_UUID} on vda, cached, writethrough, trusted, hit ratio 90% (9 hits, 1 misses)\n"
        )
    );
    let o = t.run(&["status", "--json"]);
    let json = out(&o);
    assert!(
        json.starts_with(&format!(
            "{{\"cache\": {{\"set_uuid\": \"{UUID}\", \"device\": \"nvme0n1\""
        )),
        "{json}"
    );
    assert!(json.contains("\"restored_extents\": 40"), "{json}");
    assert!(
        json.contains(&format!(
            "\"devices\": [{{\"name\": \"bcache_rs0\", \"uuid\": \"{DEV_UUID}\""
        )),
        "{json}"
    );
    assert!(json.contains("\"trusted\": 1"), "{json}");
}

#[test]
fn unregister_finds_the_disk_or_the_cache() {
    let t = Tree::new("unreg");
    let o = t.run(&["unregister"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("no cache is registered"), "{}", err(&o));
    t.add_cache(&[("device", "nvme0n1")]);
    let d = t.add_dev(3, &[("backing_dev", "vda")]);
    let o = t.run(&["unregister", "/dev/vda"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(text(&d.join("stop")), "1\n");
    let o = t.run(&["unregister", "/dev/nvme0n1"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(text(&t.module().join("cache/unregister")), "1\n");
    let o = t.run(&["unregister", "/dev/sdz"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("not registered"), "{}", err(&o));
}

#[test]
fn wipe_erases_only_our_superblock() {
    let t = Tree::new("wipe");
    let img = image("wipe", 64 * MIB);
    let o = t.run(&["wipe", img.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("no bcache_rs superblock"), "{}", err(&o));
    let f = t.run(&["format-cache", img.to_str().unwrap()]);
    assert_eq!(f.status.code(), Some(0), "{}", err(&f));
    let before = fs::read(&img).unwrap();
    let o = t.run(&["wipe", img.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        out(&o).contains("wiped the superblock of cache"),
        "{}",
        out(&o)
    );
    let after = fs::read(&img).unwrap();
    assert!(after[4096..8192].iter().all(|&b| b == 0));
    assert_eq!(before[..4096], after[..4096]);
    assert_eq!(before[8192..], after[8192..]);
    let o = t.run(&["show", img.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn probe_prints_udev_properties_for_our_superblocks_only() {
    let t = Tree::new("probe");
    let cache = image("probe-cache", 64 * MIB);
    let backing = image("probe-backing", 4 * MIB);
    let other = image("probe-other", 4 * MIB);
    for (img, cmd) in [(&cache, "format-cache"), (&backing, "format-backing")] {
        let uuid = if cmd == "format-cache" {
            UUID
        } else {
            DEV_UUID
        };
        let f = t.run(&[cmd, "--uuid", uuid, "--force", img.to_str().unwrap()]);
        assert_eq!(f.status.code(), Some(0), "{}", err(&f));
    }
    let o = t.run(&["probe", cache.to_str().unwrap()]);
    assert_eq!(
        (o.status.code(), out(&o)),
        (
            Some(0),
            format!("BCACHE_RS_TYPE=cache\nBCACHE_RS_UUID={UUID}\n")
        )
    );
    let o = t.run(&["probe", backing.to_str().unwrap()]);
    assert_eq!(
        (o.status.code(), out(&o)),
        (
            Some(0),
            format!("BCACHE_RS_TYPE=backing\nBCACHE_RS_UUID={DEV_UUID}\n")
        )
    );
    // Anything else: nothing, and success (udev imports nothing).
    let o = t.run(&["probe", other.to_str().unwrap()]);
    assert_eq!((o.status.code(), out(&o)), (Some(0), String::new()));
    // An unreadable device is an error.
    let o = t.run(&["probe", "/nonexistent/disk"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
}

#[test]
fn attach_and_detach_write_the_disk_s_files() {
    let t = Tree::new("attach");
    let d = t.add_dev(1, &[("backing_dev", "vdc"), ("state", "running")]);
    for f in ["attach", "detach"] {
        fs::write(d.join(f), "").unwrap();
    }
    let o = t.run(&["detach", "/dev/vdc"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(text(&d.join("detach")), "1\n");
    assert!(out(&o).contains("bcache_rs1: detached"), "{}", out(&o));
    let o = t.run(&["attach", "bcache_rs1"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(text(&d.join("attach")), "1\n");
    let o = t.run(&["attach", "/dev/vdq"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("not registered"), "{}", err(&o));
}
