//! The System Event Log: 16-byte standard records in a bounded store, and the byte format of
//! the file that holds it (a snapshot, then one frame per change). Pure: the edge writes the
//! bytes [`SelStore::encode`] and [`encode_frame`] return, when [`needs_compaction`] says.

use std::collections::VecDeque;

/// Size of every SEL record.
pub const RECORD_LEN: usize = 16;
/// Record type of a standard system event record.
pub const SYSTEM_EVENT_RECORD: u8 = 0x02;
/// Record types from here up are OEM non-timestamped: the BMC leaves bytes 3..16 as given.
pub const OEM_NON_TIMESTAMPED: u8 = 0xE0;
/// Event message format revision for IPMI 1.5 and 2.0.
pub const EVM_REV: u8 = 0x04;
/// "First" and "last" record IDs in Get/Delete SEL Entry; never given to a record.
pub const FIRST_ID: u16 = 0x0000;
pub const LAST_ID: u16 = 0xFFFF;
/// A timestamp field the spec reads as "unspecified" (Get SEL Info before any add/erase).
pub const NO_TIMESTAMP: u32 = 0xFFFF_FFFF;

/// One record, as stored and as returned by Get SEL Entry.
pub type Record = [u8; RECORD_LEN];

/// The fields of a system event record (type 0x02), for building one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemEvent {
    pub timestamp: u32,
    pub generator_id: u16,
    pub sensor_type: u8,
    pub sensor_number: u8,
    /// Bit 7: deassertion; bits 6:0: event/reading type code.
    pub event_dir_type: u8,
    pub data: [u8; 3],
}

impl SystemEvent {
    /// The record bytes, with record ID 0 (the store assigns it).
    pub fn to_record(&self) -> Record {
        let mut r = [0u8; RECORD_LEN];
        r[2] = SYSTEM_EVENT_RECORD;
        r[3..7].copy_from_slice(&self.timestamp.to_le_bytes());
        r[7..9].copy_from_slice(&self.generator_id.to_le_bytes());
        r[9] = EVM_REV;
        r[10] = self.sensor_type;
        r[11] = self.sensor_number;
        r[12] = self.event_dir_type;
        r[13..16].copy_from_slice(&self.data);
        r
    }
}

/// The record ID of a stored record.
pub fn record_id(r: &Record) -> u16 {
    u16::from_le_bytes([r[0], r[1]])
}

/// The SEL. Oldest first. When full, the oldest record makes room for the new one and the
/// overflow flag is set (Get SEL Info reports it), so the latest events are never lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelStore {
    records: VecDeque<Record>,
    capacity: usize,
    /// The ID the next record gets, unless in use.
    next_id: u16,
    last_add: u32,
    last_erase: u32,
    overflow: bool,
}

impl SelStore {
    /// An empty SEL holding at most `capacity` records (at least 1, at most 0xFFFD: record
    /// IDs are 16-bit with two reserved).
    pub fn new(capacity: usize) -> Self {
        Self {
            records: VecDeque::new(),
            capacity: capacity.clamp(1, 0xFFFD),
            next_id: 1,
            last_add: NO_TIMESTAMP,
            last_erase: NO_TIMESTAMP,
            overflow: false,
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    pub fn free_records(&self) -> usize {
        self.capacity - self.records.len()
    }
    pub fn last_add(&self) -> u32 {
        self.last_add
    }
    pub fn last_erase(&self) -> u32 {
        self.last_erase
    }
    pub fn overflow(&self) -> bool {
        self.overflow
    }
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.records.iter()
    }

    /// Position of the record `id` names (0x0000 first, 0xFFFF last).
    pub fn position(&self, id: u16) -> Option<usize> {
        if self.records.is_empty() {
            return None;
        }
        match id {
            FIRST_ID => Some(0),
            LAST_ID => Some(self.records.len() - 1),
            _ => self.records.iter().position(|r| record_id(r) == id),
        }
    }

    pub fn get(&self, pos: usize) -> Option<&Record> {
        self.records.get(pos)
    }

    /// The ID after the record at `pos`, or 0xFFFF if it is the last.
    pub fn next_id_after(&self, pos: usize) -> u16 {
        self.records.get(pos + 1).map(record_id).unwrap_or(LAST_ID)
    }

    /// The ID [`Self::add`] will give the next record.
    pub fn peek_next_id(&self) -> u16 {
        let mut id = self.next_id;
        // The store holds fewer than 0xFFFD records, so a free ID exists within that many steps.
        for _ in 0..=0xFFFF {
            if id != FIRST_ID && id != LAST_ID && !self.records.iter().any(|r| record_id(r) == id) {
                return id;
            }
            id = id.wrapping_add(1);
        }
        1
    }

    /// Append `record` (its ID bytes are replaced) at time `now`; returns the ID.
    pub fn add(&mut self, mut record: Record, now: u32) -> u16 {
        self.make_room();
        let id = self.peek_next_id();
        record[0..2].copy_from_slice(&id.to_le_bytes());
        self.push(record, now);
        id
    }

    /// When full, the oldest record makes room (and the overflow flag says so).
    fn make_room(&mut self) {
        if self.records.len() >= self.capacity {
            self.records.pop_front();
            self.overflow = true;
        }
    }

    /// Store a record that already has its ID.
    fn push(&mut self, record: Record, now: u32) {
        self.next_id = record_id(&record).wrapping_add(1);
        self.records.push_back(record);
        self.last_add = now;
    }

    /// Remove the record with this exact ID; false if there is none.
    pub fn delete(&mut self, id: u16) -> bool {
        match self.records.iter().position(|r| record_id(r) == id) {
            Some(pos) => {
                self.records.remove(pos);
                true
            }
            None => false,
        }
    }

    pub fn clear(&mut self, now: u32) {
        self.records.clear();
        self.overflow = false;
        self.last_erase = now;
    }

    /// [`Self::add`], and the change that replays it.
    pub fn add_change(&mut self, record: Record, now: u32) -> SelChange {
        let id = self.add(record, now);
        let mut record = record;
        record[0..2].copy_from_slice(&id.to_le_bytes());
        SelChange::Added { record, at: now }
    }

    /// Replay a change made by [`Self::add_change`], [`Self::delete`] or [`Self::clear`]:
    /// the store ends as it did when the change was made on the same store.
    pub fn apply(&mut self, change: &SelChange) {
        match *change {
            SelChange::Added { record, at } => {
                self.make_room();
                self.push(record, at);
            }
            SelChange::Deleted(id) => {
                self.delete(id);
            }
            SelChange::Cleared { at } => self.clear(at),
        }
    }

    /// The snapshot that starts a SEL file: magic, header fields, records, CRC-32 of
    /// everything before. Changes made after it are appended as frames
    /// ([`encode_frame`]).
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with(MAGIC)
    }

    fn encode_with(&self, magic: &[u8; 8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(snapshot_len(self.records.len()));
        out.extend_from_slice(magic);
        out.extend_from_slice(&self.next_id.to_le_bytes());
        out.extend_from_slice(&self.last_add.to_le_bytes());
        out.extend_from_slice(&self.last_erase.to_le_bytes());
        out.push(u8::from(self.overflow));
        out.extend_from_slice(&(self.records.len() as u32).to_le_bytes());
        for r in &self.records {
            out.extend_from_slice(r);
        }
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Read a SEL file back (see [`load`]), without the details of its tail.
    pub fn decode(bytes: &[u8], capacity: usize) -> Result<Self, SelFileError> {
        load(bytes, capacity).map(|l| l.store)
    }
}

/// One change to the SEL as the file records it: replaying the changes on the snapshot they
/// follow gives the SEL they were made on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelChange {
    /// A record, with its ID, added at SEL time `at`.
    Added {
        record: Record,
        at: u32,
    },
    Deleted(u16),
    Cleared {
        at: u32,
    },
}

// ---- the SEL file ----
//
// A snapshot (the whole SEL, as version 1 wrote on every change) followed by fixed-size frames,
// one per change, each with its own CRC-32, appended and fsynced one at a time. A record costs
// one frame of writes, not a rewrite of the SEL. A power cut during an append leaves a torn
// last frame, which is dropped on reading: the SEL loses that change, never the rest. When
// the frames reach [`log_limit`] (or the SEL is cleared) the file is rewritten as a fresh
// snapshot, atomically (temp file, fsync, rename).

/// Version 1: a snapshot only, rewritten on every change. Still read (and rewritten as
/// version 2), so an update keeps the SEL.
const MAGIC_V1: &[u8; 8] = b"AGSEL\x00\x01\x00";
/// Version 2: a snapshot, then frames.
const MAGIC: &[u8; 8] = b"AGSEL\x00\x02\x00";
const HEADER_LEN: usize = 8 + 2 + 4 + 4 + 1 + 4;
/// kind, 20 bytes of payload, CRC-32 of both.
pub const FRAME_LEN: usize = 1 + 20 + 4;
const FRAME_ADDED: u8 = 0x01;
const FRAME_DELETED: u8 = 0x02;
const FRAME_CLEARED: u8 = 0x03;
/// Frames per record of capacity before the file is rewritten: the rewrite (16 bytes per
/// record at most) is then spread over at least 4 frames per record.
const LOG_FRAMES_PER_RECORD: usize = 4;

/// Bytes of a snapshot holding `records` records.
pub fn snapshot_len(records: usize) -> usize {
    HEADER_LEN + records * RECORD_LEN + 4
}

/// Frames a SEL file of `capacity` records takes after its snapshot before it is rewritten.
pub fn log_limit(capacity: usize) -> usize {
    LOG_FRAMES_PER_RECORD * capacity.max(16)
}

/// The most bytes of SEL file written per change, amortised over a rewrite cycle: one frame,
/// plus a full snapshot spread over [`log_limit`] frames, rounded up. 30 for the default 1024
/// records (25 + 16,411 / 4,096 = 29.01): within the 32 (two records' worth) budgeted.
pub fn bytes_per_change(capacity: usize) -> usize {
    FRAME_LEN + snapshot_len(capacity).div_ceil(log_limit(capacity))
}

/// Whether appending `changes` to a file that holds `frames` frames should rather rewrite it:
/// the log would pass its limit, or the SEL is being cleared (the fresh snapshot is then a
/// few bytes, and every frame before it moot).
pub fn needs_compaction(frames: usize, changes: &[SelChange], capacity: usize) -> bool {
    frames + changes.len() > log_limit(capacity)
        || changes
            .iter()
            .any(|c| matches!(c, SelChange::Cleared { .. }))
}

/// The frame that appends `change` to a SEL file.
pub fn encode_frame(change: &SelChange) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    match change {
        SelChange::Added { record, at } => {
            f[0] = FRAME_ADDED;
            f[1..17].copy_from_slice(record);
            f[17..21].copy_from_slice(&at.to_le_bytes());
        }
        SelChange::Deleted(id) => {
            f[0] = FRAME_DELETED;
            f[1..3].copy_from_slice(&id.to_le_bytes());
        }
        SelChange::Cleared { at } => {
            f[0] = FRAME_CLEARED;
            f[1..5].copy_from_slice(&at.to_le_bytes());
        }
    }
    let crc = crc32(&f[..21]);
    f[21..].copy_from_slice(&crc.to_le_bytes());
    f
}

/// A frame's change, if its checksum and kind are right.
fn decode_frame(f: &[u8]) -> Option<SelChange> {
    if f.len() != FRAME_LEN {
        return None;
    }
    let crc = u32::from_le_bytes([f[21], f[22], f[23], f[24]]);
    if crc32(&f[..21]) != crc {
        return None;
    }
    let le32 = |i: usize| u32::from_le_bytes([f[i], f[i + 1], f[i + 2], f[i + 3]]);
    match f[0] {
        FRAME_ADDED => {
            let mut record = [0u8; RECORD_LEN];
            record.copy_from_slice(&f[1..17]);
            Some(SelChange::Added {
                record,
                at: le32(17),
            })
        }
        FRAME_DELETED => Some(SelChange::Deleted(u16::from_le_bytes([f[1], f[2]]))),
        FRAME_CLEARED => Some(SelChange::Cleared { at: le32(1) }),
        _ => None,
    }
}

/// What reading a SEL file found after its snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Every byte after the snapshot is a good frame.
    Clean,
    /// The file ends in bad or partial frames, with no good frame after them: the last
    /// append(s) did not finish (a power cut). `bytes` were dropped.
    Torn { bytes: usize },
    /// A bad frame with good ones after it: the medium changed under us. The SEL is what the
    /// frames before it say; `dropped` frames (good or bad) after it were not applied.
    Corrupt { frame: usize, dropped: usize },
}

/// A SEL file, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedSel {
    pub store: SelStore,
    /// Good frames applied after the snapshot.
    pub frames: usize,
    pub tail: Tail,
    /// A version 1 file (to be rewritten in the current format).
    pub version1: bool,
}

impl LoadedSel {
    /// Whether the file should be rewritten from `store` before anything is appended to it.
    pub fn needs_rewrite(&self) -> bool {
        self.version1 || self.tail != Tail::Clean
    }
}

/// Read a SEL file. A bad snapshot (magic, checksum, length) is an error; bad frames after it
/// only cut the file short (see [`Tail`]). A store with more records than `capacity` keeps
/// the newest.
pub fn load(bytes: &[u8], capacity: usize) -> Result<LoadedSel, SelFileError> {
    if bytes.len() < HEADER_LEN + 4 {
        return Err(SelFileError::NotASelFile);
    }
    let version1 = match &bytes[..MAGIC.len()] {
        m if m == MAGIC => false,
        m if m == MAGIC_V1 => true,
        _ => return Err(SelFileError::NotASelFile),
    };
    let h = &bytes[MAGIC.len()..];
    let le16 = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
    let le32 = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let count = le32(11) as usize;
    // Version 1 is a snapshot and nothing else; version 2 says how long its snapshot is.
    let len = if version1 {
        bytes.len()
    } else {
        count
            .checked_mul(RECORD_LEN)
            .and_then(|r| r.checked_add(HEADER_LEN + 4))
            .filter(|l| *l <= bytes.len())
            .ok_or(SelFileError::Length)?
    };
    let (body, crc) = bytes[..len].split_at(len - 4);
    let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32(body) != crc {
        return Err(SelFileError::Checksum);
    }
    let recs = &body[HEADER_LEN..];
    if recs.len() != count * RECORD_LEN {
        return Err(SelFileError::Length);
    }
    let mut store = SelStore::new(capacity);
    store.next_id = le16(0);
    store.last_add = le32(2);
    store.last_erase = le32(6);
    store.overflow = h[10] != 0;
    for chunk in recs.chunks_exact(RECORD_LEN) {
        let mut r = [0u8; RECORD_LEN];
        r.copy_from_slice(chunk);
        store.make_room();
        store.records.push_back(r);
    }
    let log = &bytes[len..];
    let mut frames = 0;
    let mut tail = Tail::Clean;
    for (i, f) in log.chunks(FRAME_LEN).enumerate() {
        match decode_frame(f) {
            Some(change) => {
                store.apply(&change);
                frames += 1;
            }
            None => {
                let rest = &log[i * FRAME_LEN..];
                let later_good = rest
                    .chunks_exact(FRAME_LEN)
                    .skip(1)
                    .any(|f| decode_frame(f).is_some());
                tail = if later_good {
                    Tail::Corrupt {
                        frame: i,
                        dropped: rest.len().div_ceil(FRAME_LEN),
                    }
                } else {
                    Tail::Torn { bytes: rest.len() }
                };
                break;
            }
        }
    }
    Ok(LoadedSel {
        store,
        frames,
        tail,
        version1,
    })
}

/// Why a SEL file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelFileError {
    #[error("not an acpigate SEL file (bad magic or too short)")]
    NotASelFile,
    #[error("checksum mismatch")]
    Checksum,
    #[error("record area length does not match the record count")]
    Length,
}

/// CRC-32 (IEEE 802.3, reflected), bitwise: a frame is 21 bytes, a snapshot 16 KiB at most
/// every few thousand changes.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: u8) -> Record {
        SystemEvent {
            timestamp: 0,
            generator_id: 0x0020,
            sensor_type: 0x22,
            sensor_number: n,
            event_dir_type: 0x6F,
            data: [n, 0xFF, 0xFF],
        }
        .to_record()
    }

    #[test]
    fn crc32_known_vector() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn system_event_layout() {
        let r = SystemEvent {
            timestamp: 0x1122_3344,
            generator_id: 0x0020,
            sensor_type: 0x22,
            sensor_number: 0x07,
            event_dir_type: 0x6F,
            data: [0x05, 0xFF, 0xFF],
        }
        .to_record();
        assert_eq!(
            r,
            [
                0, 0, 0x02, 0x44, 0x33, 0x22, 0x11, 0x20, 0x00, 0x04, 0x22, 0x07, 0x6F, 0x05, 0xFF,
                0xFF
            ]
        );
    }

    #[test]
    fn ids_are_sequential_skip_reserved_and_in_use() {
        let mut s = SelStore::new(4);
        assert_eq!(s.add(ev(1), 10), 1);
        assert_eq!(s.add(ev(2), 11), 2);
        s.next_id = 0xFFFE;
        assert_eq!(s.add(ev(3), 12), 0xFFFE);
        // 0xFFFF and 0x0000 are reserved, 1 and 2 in use.
        assert_eq!(s.add(ev(4), 13), 3);
        assert_eq!(s.last_add(), 13);
    }

    #[test]
    fn bounded_drops_oldest_and_flags_overflow() {
        let mut s = SelStore::new(2);
        s.add(ev(1), 1);
        s.add(ev(2), 2);
        assert!(!s.overflow());
        s.add(ev(3), 3);
        assert!(s.overflow());
        let ids: Vec<u16> = s.records().map(record_id).collect();
        assert_eq!(ids, vec![2, 3]);
        s.clear(9);
        assert!(!s.overflow() && s.is_empty());
        assert_eq!(s.last_erase(), 9);
    }

    #[test]
    fn positions_first_last_and_next() {
        let mut s = SelStore::new(8);
        assert_eq!(s.position(FIRST_ID), None);
        for n in 1..=3 {
            s.add(ev(n), 0);
        }
        assert_eq!(s.position(FIRST_ID), Some(0));
        assert_eq!(s.position(LAST_ID), Some(2));
        assert_eq!(s.position(2), Some(1));
        assert_eq!(s.position(9), None);
        assert_eq!(s.next_id_after(0), 2);
        assert_eq!(s.next_id_after(2), LAST_ID);
        assert!(s.delete(2));
        assert!(!s.delete(2));
        assert_eq!(s.next_id_after(0), 3);
    }

    #[test]
    fn file_round_trip_and_corruption_detected() {
        let mut s = SelStore::new(8);
        for n in 1..=5 {
            s.add(ev(n), u32::from(n) * 100);
        }
        s.delete(3);
        let bytes = s.encode();
        assert_eq!(SelStore::decode(&bytes, 8), Ok(s.clone()));
        // Every single-byte corruption and every truncation is refused, never misread.
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x5A;
            assert!(SelStore::decode(&b, 8).is_err(), "flip at {i} accepted");
            assert!(
                SelStore::decode(&bytes[..i], 8).is_err(),
                "cut at {i} accepted"
            );
        }
        // A smaller capacity after a configuration change keeps the newest records.
        let small = SelStore::decode(&bytes, 2).expect("decode");
        let ids: Vec<u16> = small.records().map(record_id).collect();
        assert_eq!(ids, vec![4, 5]);
        assert!(small.overflow());
    }

    /// A few changes of every kind on `s`, returned in order.
    fn some_changes(s: &mut SelStore) -> Vec<SelChange> {
        let mut out = Vec::new();
        for n in 1..=6 {
            out.push(s.add_change(ev(n), u32::from(n) * 10));
        }
        assert!(s.delete(3));
        out.push(SelChange::Deleted(3));
        // Non-timestamped OEM record: its bytes stay, the add time is separate.
        let mut oem = [0xAB; RECORD_LEN];
        oem[2] = 0xE5;
        out.push(s.add_change(oem, 99));
        out
    }

    #[test]
    fn replayed_changes_make_the_same_sel() {
        let start = SelStore::new(4);
        let mut s = start.clone();
        let changes = some_changes(&mut s);
        let mut replayed = start.clone();
        for c in &changes {
            replayed.apply(c);
        }
        assert_eq!(replayed, s);
        assert!(replayed.overflow(), "6 records in 4 overflowed");
        s.clear(123);
        replayed.apply(&SelChange::Cleared { at: 123 });
        assert_eq!(replayed, s);
    }

    /// A snapshot of an empty SEL and the frames of `some_changes`, and the SEL they make.
    fn log_file() -> (Vec<u8>, SelStore) {
        let mut s = SelStore::new(4);
        let mut bytes = s.encode();
        for c in some_changes(&mut s) {
            bytes.extend_from_slice(&encode_frame(&c));
        }
        (bytes, s)
    }

    #[test]
    fn a_log_reads_back_and_every_frame_kind_round_trips() {
        for c in [
            SelChange::Added {
                record: ev(7),
                at: 0x0102_0304,
            },
            SelChange::Deleted(0xBEEF),
            SelChange::Cleared { at: 0xFFFF_FFFF },
        ] {
            assert_eq!(decode_frame(&encode_frame(&c)), Some(c));
        }
        let (bytes, s) = log_file();
        let l = load(&bytes, 4).expect("load");
        assert_eq!(l.store, s);
        assert_eq!((l.frames, l.tail, l.version1), (8, Tail::Clean, false));
        assert!(!l.needs_rewrite());
    }

    #[test]
    fn a_torn_last_frame_loses_that_change_only() {
        let (bytes, _) = log_file();
        let snap = snapshot_len(0);
        // The file as it was before the last append: what a torn last append must give back.
        let before_last = load(&bytes[..bytes.len() - FRAME_LEN], 4).expect("load");
        for cut in bytes.len() - FRAME_LEN + 1..bytes.len() {
            let l = load(&bytes[..cut], 4).expect("a torn tail is not fatal");
            assert_eq!(l.store, before_last.store, "cut at {cut}");
            assert_eq!(
                l.tail,
                Tail::Torn {
                    bytes: cut - (bytes.len() - FRAME_LEN)
                }
            );
            assert!(l.needs_rewrite());
        }
        // A last frame of the right length with any byte wrong (garbage, zeros) is torn too.
        for i in bytes.len() - FRAME_LEN..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            let l = load(&b, 4).expect("torn");
            assert_eq!(l.store, before_last.store, "flip at {i}");
            assert_eq!(l.tail, Tail::Torn { bytes: FRAME_LEN });
        }
        let mut zeros = bytes[..bytes.len() - FRAME_LEN].to_vec();
        zeros.extend_from_slice(&[0; FRAME_LEN]);
        assert_eq!(load(&zeros, 4).expect("zeros").store, before_last.store);
        // A bad frame in the middle: the frames before it stand, the rest is reported.
        let mut mid = bytes.clone();
        mid[snap + 2 * FRAME_LEN + 5] ^= 1;
        let l = load(&mid, 4).expect("mid");
        assert_eq!(
            l.tail,
            Tail::Corrupt {
                frame: 2,
                dropped: 6
            }
        );
        assert_eq!(l.frames, 2);
        let ids: Vec<u16> = l.store.records().map(record_id).collect();
        assert_eq!(ids, vec![1, 2]);
    }

    #[test]
    fn a_version_1_file_is_read_and_marked_for_rewriting() {
        let mut s = SelStore::new(8);
        for n in 1..=3 {
            s.add(ev(n), u32::from(n));
        }
        let v1 = s.encode_with(MAGIC_V1);
        let l = load(&v1, 8).expect("v1");
        assert_eq!(l.store, s);
        assert!(l.version1 && l.needs_rewrite());
        // Version 1 had no frames: anything after its checksum makes the checksum wrong.
        let mut longer = v1.clone();
        longer.extend_from_slice(&encode_frame(&SelChange::Deleted(1)));
        assert!(load(&longer, 8).is_err());
        // The rewrite is version 2, and reads back the same.
        assert_eq!(&s.encode()[..8], MAGIC);
        assert_eq!(SelStore::decode(&s.encode(), 8), Ok(s));
    }

    #[test]
    fn the_write_budget_per_change() {
        // 25 + ceil(16,411 / 4,096) for the default capacity.
        assert_eq!(bytes_per_change(1024), 30);
        for capacity in [1, 2, 16, 64, 256, 1024, 4096, 0xFFFD] {
            assert!(
                bytes_per_change(capacity) <= 2 * RECORD_LEN,
                "capacity {capacity}: {}",
                bytes_per_change(capacity)
            );
        }
        let add = [SelChange::Added {
            record: ev(1),
            at: 0,
        }];
        assert!(!needs_compaction(0, &add, 64));
        assert!(!needs_compaction(log_limit(64) - 1, &add, 64));
        assert!(needs_compaction(log_limit(64), &add, 64));
        assert!(needs_compaction(0, &[SelChange::Cleared { at: 0 }], 64));
    }
}
