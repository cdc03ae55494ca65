//! The one cache the test tiers share between runs and clones, and its size cap.
//!
//! Where it is: `scripts/cache-dir.sh` (the rule's only definition; the VM scripts ask it
//! too). What is in it: one entry per top-level name (a kernel extract, a rootfs tarball, a
//! virtualenv), each touched when used. Pruning removes the least recently used entries until
//! the whole fits `ACPIGATE_CACHE_MAX` (default [`DEFAULT_CAP`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

use crate::sh;

/// Room for what the tiers keep today (kernel extract ~100 MiB, rootfs tarball ~100 MiB,
/// oelint virtualenv ~40 MiB) several times over, as kernels and package sets change.
pub const DEFAULT_CAP: &str = "4G";

/// The cache directory (not created).
pub fn dir() -> Result<PathBuf> {
    let script = sh::root().join("scripts/cache-dir.sh");
    let out = sh::output(Command::new("bash").arg(&script))?;
    let d = PathBuf::from(out.trim());
    if !d.is_absolute() {
        bail!(
            "{} printed `{}`, not an absolute path",
            script.display(),
            d.display()
        );
    }
    Ok(d)
}

/// An entry of the cache for `name`, created if missing and marked as just used (pruning
/// removes the least recently used first).
pub fn entry(name: &str) -> Result<PathBuf> {
    let p = dir()?.join(name);
    std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
    touch(&p)?;
    Ok(p)
}

/// Mark `path` as used now.
pub fn touch(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.set_modified(SystemTime::now()))
        .with_context(|| format!("marking {} as used", path.display()))
}

/// The cap in bytes: `ACPIGATE_CACHE_MAX` (`4G`, `500M`, `123456`), else [`DEFAULT_CAP`].
pub fn cap_bytes() -> Result<u64> {
    let text = std::env::var("ACPIGATE_CACHE_MAX").unwrap_or_else(|_| DEFAULT_CAP.into());
    parse_size(&text).with_context(|| {
        format!("ACPIGATE_CACHE_MAX=`{text}`: want bytes with an optional K, M or G suffix")
    })
}

fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last()? {
        (i, 'K' | 'k') => (&t[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&t[..i], 1 << 20),
        (i, 'G' | 'g') => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// An entry of the cache: a top-level file or directory.
#[derive(Debug, Clone)]
struct Entry {
    path: PathBuf,
    bytes: u64,
    used: SystemTime,
}

/// What a prune did.
#[derive(Debug, Default)]
pub struct Pruned {
    pub removed: Vec<PathBuf>,
    pub freed_bytes: u64,
    pub kept_bytes: u64,
}

/// Remove the least recently used entries of `dir` until it holds at most `cap` bytes. A
/// missing directory is an empty cache. Names starting with `.` (lock and temp files of a
/// script at work) are counted but never removed.
pub fn prune(dir: &Path, cap: u64) -> Result<Pruned> {
    let mut entries = Vec::new();
    let mut total = 0;
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Pruned::default()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    for e in rd {
        let e = e.with_context(|| format!("listing {}", dir.display()))?;
        let path = e.path();
        let meta = std::fs::symlink_metadata(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let bytes = tree_bytes(&path)?;
        total += bytes;
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        entries.push(Entry {
            path,
            bytes,
            used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        });
    }
    entries.sort_by_key(|e| e.used);
    let mut out = Pruned::default();
    for e in entries {
        if total <= cap {
            break;
        }
        remove(&e.path)?;
        total -= e.bytes;
        out.freed_bytes += e.bytes;
        out.removed.push(e.path);
    }
    out.kept_bytes = total;
    if total > cap {
        eprintln!(
            "xtask cache: {} still holds {} MiB (over the {} MiB cap) in entries in use",
            dir.display(),
            total >> 20,
            cap >> 20
        );
    }
    Ok(out)
}

/// Prune the cache to its cap and say what happened.
pub fn prune_to_cap() -> Result<()> {
    let d = dir()?;
    let cap = cap_bytes()?;
    let p = prune(&d, cap)?;
    for r in &p.removed {
        eprintln!("xtask cache: removed {} (least recently used)", r.display());
    }
    eprintln!(
        "xtask cache: {} holds {} MiB (cap {} MiB, ACPIGATE_CACHE_MAX)",
        d.display(),
        p.kept_bytes >> 20,
        cap >> 20
    );
    Ok(())
}

/// Bytes a tree takes on disk (allocated blocks, so sparse files count as what they use).
pub fn tree_bytes(path: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let meta =
        std::fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mut n = meta.blocks() * 512;
    if meta.is_dir() {
        for e in std::fs::read_dir(path).with_context(|| format!("listing {}", path.display()))? {
            n += tree_bytes(&e?.path())?;
        }
    }
    Ok(n)
}

fn remove(path: &Path) -> Result<()> {
    let meta =
        std::fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let r = if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    r.with_context(|| format!("removing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4G"), Some(4 << 30));
        assert_eq!(parse_size("500M"), Some(500 << 20));
        assert_eq!(parse_size("64k"), Some(64 << 10));
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("G"), None);
        assert_eq!(parse_size("4T"), None);
        assert_eq!(parse_size("-1G"), None);
        assert_eq!(parse_size("99999999999G"), None);
    }

    fn entry(dir: &Path, name: &str, kib: usize, age_s: u64) -> Result<PathBuf> {
        let p = dir.join(name);
        std::fs::create_dir_all(&p)?;
        let f = p.join("data");
        // Random-ish bytes are not needed: blocks are allocated for any written data.
        std::fs::write(&f, vec![7u8; kib * 1024])?;
        let t = SystemTime::now() - Duration::from_secs(age_s);
        std::fs::File::open(&p)?.set_modified(t)?;
        Ok(p)
    }

    #[test]
    fn prune_removes_least_recently_used_first_until_under_the_cap() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("xtask-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let oldest = entry(&dir, "kernel-old", 256, 3000)?;
        let middle = entry(&dir, "rootfs-old", 256, 2000)?;
        let newest = entry(&dir, "rootfs-new", 256, 10)?;
        let lock = dir.join(".lock");
        std::fs::write(&lock, b"")?;
        let one = tree_bytes(&newest)?;
        // Room for two entries: the oldest goes, the two newer stay.
        let p = prune(&dir, 2 * one + one / 2)?;
        let (gone_old, kept_mid, kept_new, kept_lock) = (
            !oldest.exists(),
            middle.exists(),
            newest.exists(),
            lock.exists(),
        );
        // Room for none: everything but the dot-file goes.
        let p0 = prune(&dir, 0)?;
        let all_gone = !middle.exists() && !newest.exists() && lock.exists();
        std::fs::remove_dir_all(&dir)?;
        assert!(gone_old && kept_mid && kept_new && kept_lock);
        assert_eq!(p.removed, vec![oldest]);
        assert!(p.kept_bytes <= 2 * one + one / 2);
        assert_eq!(p0.removed, vec![middle, newest]);
        assert!(all_gone);
        Ok(())
    }

    #[test]
    fn a_missing_cache_is_empty() -> Result<()> {
        let p = prune(Path::new("/nonexistent/acpigate-cache"), 0)?;
        assert!(p.removed.is_empty());
        assert_eq!(p.kept_bytes, 0);
        Ok(())
    }
}
