//! Files under the state directory: the SEL, the sensor number map, the GUIDs. Every rewrite is
//! atomic (temp file, fsync, rename), so a power cut mid-write leaves the previous version;
//! the SEL between rewrites grows by appends ([`super::sel_disk`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use daemon_kit::state_file;
use serde::{Deserialize, Serialize};

use crate::core::numbering::SensorNumbers;
use crate::core::sel::SelStore;

use super::sel_disk::SelDisk;

pub struct Store {
    dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guids {
    /// RFC 4122 byte order (as printed); the wire order is reversed (see [`wire_order`]).
    #[serde(with = "uuid_text")]
    pub system: [u8; 16],
    #[serde(with = "uuid_text")]
    pub device: [u8; 16],
}

impl Store {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    pub fn sel_path(&self) -> PathBuf {
        self.dir.join("ipmi-sel.bin")
    }
    pub fn numbers_path(&self) -> PathBuf {
        self.dir.join("ipmi-sensor-numbers.json")
    }
    pub fn guids_path(&self) -> PathBuf {
        self.dir.join("ipmi-guids.json")
    }

    /// The SEL as saved, and the writer that continues the file (see [`SelDisk::open`] for
    /// what happens to a damaged file).
    pub fn open_sel(&self, capacity: usize) -> Result<(SelStore, SelDisk)> {
        SelDisk::open(&self.sel_path(), capacity)
    }

    /// The SEL as saved; an unreadable file is moved aside (kept for a person to look at) and
    /// the SEL starts empty, so one bad sector does not stop the IPMI service.
    pub fn load_sel(&self, capacity: usize) -> Result<SelStore> {
        self.open_sel(capacity).map(|(sel, _)| sel)
    }

    /// Write the whole SEL as a fresh file (the server appends through [`SelDisk`] instead).
    pub fn save_sel(&self, sel: &SelStore) -> std::io::Result<()> {
        state_file::write_atomic(&self.sel_path(), &sel.encode())
    }

    pub fn load_numbers(&self) -> Result<SensorNumbers> {
        let path = self.numbers_path();
        let Some(bytes) = state_file::read(&path)? else {
            return Ok(SensorNumbers::default());
        };
        // Losing the map would renumber sensors silently; refuse to start instead.
        let map: BTreeMap<String, u8> = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{}: not a sensor number map (fix or remove it; removing renumbers sensors)",
                path.display()
            )
        })?;
        Ok(SensorNumbers::from_map(map))
    }

    pub fn save_numbers(&self, n: &SensorNumbers) -> Result<()> {
        let text = serde_json::to_vec_pretty(n.as_map())?;
        state_file::write_atomic(&self.numbers_path(), &text)
            .with_context(|| format!("writing {}", self.numbers_path().display()))
    }

    /// [`Store::save_numbers`] on a blocking thread: its fsync must not stop the event loop
    /// (and every other command with it) on a busy flash.
    pub async fn save_numbers_off_loop(&self, n: SensorNumbers) -> Result<()> {
        let store = Self::new(&self.dir);
        tokio::task::spawn_blocking(move || store.save_numbers(&n))
            .await
            .context("saving the sensor numbers")?
    }

    /// The GUIDs, made once from the kernel's random source and kept for good.
    pub fn guids(&self) -> Result<Guids> {
        let path = self.guids_path();
        if let Some(bytes) = state_file::read(&path)? {
            return serde_json::from_slice(&bytes)
                .with_context(|| format!("{}: not a GUID file", path.display()));
        }
        let g = Guids {
            system: random_uuid()?,
            device: random_uuid()?,
        };
        state_file::write_atomic(&path, &serde_json::to_vec_pretty(&g)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(g)
    }
}

/// A version 4 (random) UUID, from the kernel's random source.
fn random_uuid() -> Result<[u8; 16]> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no random bytes for a GUID: {e}"))?;
    Ok(uuid::Builder::from_random_bytes(b).into_uuid().into_bytes())
}

/// IPMI sends GUIDs least significant byte first: the RFC 4122 bytes reversed (what upstream
/// ipmid sends, and what ipmitool turns back into the printed form).
pub fn wire_order(uuid: &[u8; 16]) -> [u8; 16] {
    let mut w = *uuid;
    w.reverse();
    w
}

/// GUIDs in the file as RFC 4122 text (`xxxxxxxx-xxxx-…`).
mod uuid_text {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
        uuid::Uuid::from_bytes(*b).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 16], D::Error> {
        Ok(uuid::Uuid::deserialize(d)?.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::sel::SystemEvent;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ipmi-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn sel_survives_reload_and_a_torn_temp_file() {
        let dir = tmp("sel");
        let st = Store::new(&dir);
        let mut sel = st.load_sel(8).expect("empty");
        let rec = SystemEvent {
            timestamp: 1,
            generator_id: 0x20,
            sensor_type: 0x22,
            sensor_number: 1,
            event_dir_type: 0x6F,
            data: [5, 0xFF, 0xFF],
        }
        .to_record();
        sel.add(rec, 1);
        st.save_sel(&sel).expect("save");
        // A power cut during the next write leaves a partial temp file: ignored.
        std::fs::write(dir.join(".ipmi-sel.bin.tmp"), &sel.encode()[..10]).expect("torn");
        assert_eq!(st.load_sel(8).expect("load"), sel);
        // A corrupt file is moved aside, not trusted and not fatal.
        let mut bad = sel.encode();
        bad[30] ^= 1;
        std::fs::write(st.sel_path(), bad).expect("write");
        assert!(st.load_sel(8).expect("load").is_empty());
        assert!(dir.join("ipmi-sel.bin.corrupt").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn numbers_and_guids_persist() {
        let dir = tmp("num");
        let st = Store::new(&dir);
        let mut n = st.load_numbers().expect("empty");
        n.assign(["/a", "/b"]);
        st.save_numbers(&n).expect("save");
        assert_eq!(st.load_numbers().expect("load"), n);
        let g = st.guids().expect("new");
        assert_ne!(g.system, g.device);
        assert_eq!(g.system[6] >> 4, 4);
        assert_eq!(st.guids().expect("again"), g);
        std::fs::write(st.numbers_path(), b"{oops").expect("write");
        assert!(st.load_numbers().is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn guid_text_form() {
        let g = Guids {
            system: std::array::from_fn(|i| i as u8),
            device: [0xAB; 16],
        };
        let s = serde_json::to_string(&g).expect("ser");
        assert!(s.contains("00010203-0405-0607-0809-0a0b0c0d0e0f"), "{s}");
        assert_eq!(serde_json::from_str::<Guids>(&s).expect("de"), g);
        assert_eq!(wire_order(&g.system)[0], 0x0F);
    }

    #[test]
    fn made_guids_are_random_version_4() {
        let (a, b) = (random_uuid().expect("a"), random_uuid().expect("b"));
        assert_ne!(a, b);
        for g in [a, b] {
            assert_eq!(g[6] >> 4, 4, "version 4: {g:02x?}");
            assert_eq!(g[8] >> 6, 0b10, "RFC 4122 variant: {g:02x?}");
        }
    }
}
