//! The SEL file on the disk: one frame appended and fsynced per change, a fresh snapshot
//! written atomically when the core says ([`sel::needs_compaction`]), both on a blocking
//! thread so the event loop keeps serving other commands meanwhile. The format and the rules
//! are in [`crate::core::sel`]; this is only the I/O.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use daemon_kit::state_file;

use crate::core::StagedSel;
use crate::core::sel::{self, SelStore, Tail};

/// What the SEL file has cost since the start, readable while a write is in progress.
#[derive(Debug, Default)]
pub struct SelIoStats {
    /// Bytes written to the SEL file (frames, and the snapshots of rewrites).
    pub bytes_written: AtomicU64,
    /// Frames appended.
    pub frames_appended: AtomicU64,
    /// Fresh snapshots written (compactions, and the rewrite of a repaired or old file).
    pub rewrites: AtomicU64,
    /// The file's length now.
    pub file_len: AtomicU64,
}

impl SelIoStats {
    fn wrote(&self, bytes: usize) {
        self.bytes_written
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }
    pub fn get(v: &AtomicU64) -> u64 {
        v.load(Ordering::Relaxed)
    }
}

/// The writer of the SEL file. Changes go through one at a time (the caller holds it behind
/// a lock from staging a change to committing it), in the order they were made.
pub struct SelDisk {
    path: PathBuf,
    capacity: usize,
    /// Open for appending, positioned after the last good frame; `None` when the next write
    /// must be a fresh snapshot (no file yet, or an append that failed half way).
    file: Option<File>,
    /// Frames after the snapshot.
    frames: usize,
    stats: Arc<SelIoStats>,
}

/// A blocking file operation on the blocking pool; a panic there is an I/O error here.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)?
}

impl SelDisk {
    /// Read the SEL file at `path` (absent: an empty SEL), and the writer that continues it.
    ///
    /// A file whose snapshot is unreadable is moved aside to `.corrupt` and the SEL starts
    /// empty: one bad sector must not stop the IPMI service. A torn last append (a power cut)
    /// loses that change only. A bad frame followed by good ones keeps the changes before it
    /// and a copy of the file as `.corrupt`. Either way, and for a version 1 file, the file is
    /// rewritten as a fresh snapshot before anything is appended to it.
    pub fn open(path: &Path, capacity: usize) -> Result<(SelStore, Self)> {
        let mut disk = Self {
            path: path.to_owned(),
            capacity,
            file: None,
            frames: 0,
            stats: Arc::new(SelIoStats::default()),
        };
        let Some(bytes) =
            state_file::read(path).with_context(|| format!("reading {}", path.display()))?
        else {
            return Ok((SelStore::new(capacity), disk));
        };
        let aside = path.with_extension("bin.corrupt");
        let loaded = match sel::load(&bytes, capacity) {
            Ok(l) => l,
            Err(e) => {
                log::error!(
                    "{}: {e}; moved to {} and starting with an empty SEL",
                    path.display(),
                    aside.display()
                );
                std::fs::rename(path, &aside)
                    .with_context(|| format!("moving {} aside", path.display()))?;
                return Ok((SelStore::new(capacity), disk));
            }
        };
        match loaded.tail {
            Tail::Clean => {}
            Tail::Torn { bytes } => log::warn!(
                "{}: the last {bytes} bytes are an append that did not finish (a power cut?); \
                 that change is lost, the rest of the SEL is kept",
                path.display()
            ),
            Tail::Corrupt { frame, dropped } => {
                log::error!(
                    "{}: change {frame} after the snapshot is unreadable; keeping the {frame} \
                     changes before it and dropping {dropped} frames (a copy of the file is in {})",
                    path.display(),
                    aside.display()
                );
                if let Err(e) = std::fs::copy(path, &aside) {
                    log::error!("cannot copy {} aside: {e}", path.display());
                }
            }
        }
        if loaded.version1 {
            log::info!(
                "{}: a version 1 SEL file; rewriting it in version 2",
                path.display()
            );
        }
        if loaded.needs_rewrite() {
            // Nothing may be appended after a bad tail or to the old format. Should the
            // rewrite fail, `file` stays `None` and the first change rewrites it instead.
            let snapshot = loaded.store.encode();
            match state_file::write_atomic(path, &snapshot).and_then(|()| open_append(path)) {
                Ok(f) => {
                    disk.file = Some(f);
                    disk.stats.wrote(snapshot.len());
                    disk.stats.rewrites.fetch_add(1, Ordering::Relaxed);
                    disk.stats
                        .file_len
                        .store(snapshot.len() as u64, Ordering::Relaxed);
                }
                Err(e) => log::error!("cannot rewrite {}: {e}", path.display()),
            }
        } else {
            disk.file =
                Some(open_append(path).with_context(|| format!("opening {}", path.display()))?);
            disk.frames = loaded.frames;
            disk.stats
                .file_len
                .store(bytes.len() as u64, Ordering::Relaxed);
        }
        Ok((loaded.store, disk))
    }

    pub fn stats(&self) -> Arc<SelIoStats> {
        self.stats.clone()
    }

    /// Put `staged` on the disk: its changes appended as frames and fsynced, or the SEL after
    /// them written as a fresh snapshot when the core says the log is long enough (or the SEL
    /// was cleared). Returns once the data is on the disk, or why not.
    pub async fn persist(&mut self, staged: &StagedSel) -> std::io::Result<()> {
        let compact = sel::needs_compaction(self.frames, &staged.changes, self.capacity);
        let Some(mut file) = self.file.take().filter(|_| !compact) else {
            return self.rewrite(&staged.sel).await;
        };
        let bytes: Vec<u8> = staged.changes.iter().flat_map(sel::encode_frame).collect();
        let len = bytes.len();
        // Hand the file to the blocking thread and back. On an error it is dropped: part of
        // the frame may have reached the file, and the next change rewrites it from memory
        // (which never got this change) rather than append after a torn frame.
        let file = blocking(move || {
            file.write_all(&bytes)?;
            // fdatasync: the data and the new length, not the timestamps.
            file.sync_data()?;
            Ok(file)
        })
        .await?;
        self.file = Some(file);
        self.frames += staged.changes.len();
        self.stats.wrote(len);
        self.stats
            .frames_appended
            .fetch_add(staged.changes.len() as u64, Ordering::Relaxed);
        self.stats.file_len.fetch_add(len as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Replace the file with a snapshot of `sel` (temp file, fsync, rename, fsync dir).
    async fn rewrite(&mut self, sel: &SelStore) -> std::io::Result<()> {
        let snapshot = sel.encode();
        let len = snapshot.len();
        let path = self.path.clone();
        let file = blocking(move || {
            state_file::write_atomic(&path, &snapshot)?;
            open_append(&path)
        })
        .await?;
        self.file = Some(file);
        self.frames = 0;
        self.stats.wrote(len);
        self.stats.rewrites.fetch_add(1, Ordering::Relaxed);
        self.stats.file_len.store(len as u64, Ordering::Relaxed);
        Ok(())
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::sel::{FRAME_LEN, SelChange, SystemEvent, log_limit, snapshot_len};

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ipmi-seldisk-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    fn ev(n: u8) -> sel::Record {
        SystemEvent {
            timestamp: u32::from(n),
            generator_id: 0x41,
            sensor_type: 0x0F,
            sensor_number: n,
            event_dir_type: 0x6F,
            data: [n, 0xFF, 0xFF],
        }
        .to_record()
    }

    /// Add a record to `sel` and persist it the way the server does.
    async fn add(disk: &mut SelDisk, sel: &mut SelStore, n: u8) {
        let mut staged = sel.clone();
        let change = staged.add_change(ev(n), u32::from(n));
        disk.persist(&StagedSel {
            sel: staged.clone(),
            changes: vec![change],
        })
        .await
        .expect("persist");
        *sel = staged;
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    }

    #[test]
    fn appends_cost_a_frame_and_the_file_is_compacted_at_the_limit() {
        let dir = tmp("append");
        let path = dir.join("ipmi-sel.bin");
        runtime().block_on(async {
            let (mut sel, mut disk) = SelDisk::open(&path, 16).expect("open");
            let stats = disk.stats();
            // The first change writes the file (there was none).
            add(&mut disk, &mut sel, 1).await;
            assert_eq!(SelIoStats::get(&stats.rewrites), 1);
            let after_first = SelIoStats::get(&stats.bytes_written);
            for n in 2..=40 {
                add(&mut disk, &mut sel, n).await;
            }
            assert_eq!(
                SelIoStats::get(&stats.bytes_written) - after_first,
                39 * FRAME_LEN as u64,
                "one frame per record"
            );
            let len = std::fs::metadata(&path).expect("stat").len();
            assert_eq!(len, SelIoStats::get(&stats.file_len));
            // Read back: the same SEL.
            let (again, _) = SelDisk::open(&path, 16).expect("reopen");
            assert_eq!(again, sel);
            // Past the limit: a fresh snapshot, and the file shrinks to it.
            for n in 41..=(log_limit(16) as u8 + 2) {
                add(&mut disk, &mut sel, n).await;
            }
            assert_eq!(SelIoStats::get(&stats.rewrites), 2);
            let len = std::fs::metadata(&path).expect("stat").len() as usize;
            assert!(len < snapshot_len(16) + 4 * FRAME_LEN, "{len}");
            let (again, _) = SelDisk::open(&path, 16).expect("reopen");
            assert_eq!(again, sel);
            // Clearing rewrites at once: a few bytes.
            let mut cleared = sel.clone();
            cleared.clear(7);
            disk.persist(&StagedSel {
                sel: cleared.clone(),
                changes: vec![SelChange::Cleared { at: 7 }],
            })
            .await
            .expect("clear");
            assert_eq!(
                std::fs::metadata(&path).expect("stat").len() as usize,
                snapshot_len(0)
            );
            assert_eq!(SelDisk::open(&path, 16).expect("reopen").0, cleared);
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_append_is_dropped_and_the_file_repaired() {
        let dir = tmp("torn");
        let path = dir.join("ipmi-sel.bin");
        runtime().block_on(async {
            let (mut sel, mut disk) = SelDisk::open(&path, 16).expect("open");
            for n in 1..=3 {
                add(&mut disk, &mut sel, n).await;
            }
            drop(disk);
            // A power cut half way through a fourth append.
            let mut f = OpenOptions::new().append(true).open(&path).expect("open");
            f.write_all(&[0x01, 0x02, 0x03]).expect("torn");
            drop(f);
            let (loaded, mut disk) = SelDisk::open(&path, 16).expect("reopen");
            assert_eq!(loaded, sel, "the three records stand");
            assert!(!dir.join("ipmi-sel.bin.corrupt").exists(), "not corruption");
            // Rewritten: appends after it read back cleanly.
            let mut sel = loaded;
            add(&mut disk, &mut sel, 4).await;
            let l = sel::load(&std::fs::read(&path).expect("read"), 16).expect("load");
            assert_eq!((l.store, l.tail), (sel, Tail::Clean));
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_version_1_file_is_kept_and_rewritten() {
        let dir = tmp("v1");
        let path = dir.join("ipmi-sel.bin");
        let mut sel = SelStore::new(16);
        for n in 1..=3 {
            sel.add(ev(n), u32::from(n));
        }
        // What the previous version wrote: the snapshot with magic version 1.
        let mut v1 = sel.encode();
        v1[6] = 0x01;
        let crc = sel::crc32(&v1[..v1.len() - 4]);
        let at = v1.len() - 4;
        v1[at..].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, &v1).expect("write");
        let (loaded, _) = SelDisk::open(&path, 16).expect("open");
        assert_eq!(loaded, sel);
        let l = sel::load(&std::fs::read(&path).expect("read"), 16).expect("load");
        assert!(!l.version1, "rewritten as version 2");
        assert_eq!(l.store, sel);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
