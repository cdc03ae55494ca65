//! Small state files written atomically (temp file, fsync, rename, fsync dir), so a power cut
//! mid-write leaves the previous version intact.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Write `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let (dir, tmp) = temp_beside(path)?;
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        // Durable before the rename: after a power cut the name holds old or new, whole.
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The directory of `path` (created if missing) and the temporary name a new version is
/// written under before it is renamed over `path`.
fn temp_beside(path: &Path) -> std::io::Result<(&Path, PathBuf)> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".to_owned());
    Ok((dir, dir.join(format!(".{file_name}.tmp"))))
}

/// Replace `path` with `bytes` by write and rename, without waiting for the disk: the new
/// content is what any process reads from now on, even if we crash the next moment. Follow
/// with [`sync`] (off the event loop) for durability across a power cut of the BMC itself.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let (_, tmp) = temp_beside(path)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Flush a file written by [`replace`] and its directory entry to the disk.
pub fn sync(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()?;
    if let Some(d) = path.parent()
        && let Ok(d) = std::fs::File::open(d)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Read a state file; `Ok(None)` if it does not exist.
pub fn read(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_and_replace() {
        let dir = std::env::temp_dir().join(format!("daemon-kit-sf-{}", std::process::id()));
        let p = dir.join("s.json");
        assert_eq!(read(&p).expect("read"), None);
        write_atomic(&p, b"one").expect("write");
        write_atomic(&p, b"two").expect("write");
        assert_eq!(read(&p).expect("read").as_deref(), Some(&b"two"[..]));
        assert!(!dir.join(".s.json.tmp").exists());
        replace(&p, b"three").expect("replace");
        sync(&p).expect("sync");
        assert_eq!(read(&p).expect("read").as_deref(), Some(&b"three"[..]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
