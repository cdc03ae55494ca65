//! The System Event Log: 16-byte standard records in a bounded store, and the byte format of
//! the file that holds it. Pure: the edge writes the bytes [`SelStore::encode`] returns.

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
        if self.records.len() >= self.capacity {
            self.records.pop_front();
            self.overflow = true;
        }
        let id = self.peek_next_id();
        record[0..2].copy_from_slice(&id.to_le_bytes());
        self.records.push_back(record);
        self.next_id = id.wrapping_add(1);
        self.last_add = now;
        id
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

    /// The file image: magic, version, header fields, records, CRC-32 of everything before.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.records.len() * RECORD_LEN + 4);
        out.extend_from_slice(MAGIC);
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

    /// Read a file image back. A store with more records than `capacity` keeps the newest.
    pub fn decode(bytes: &[u8], capacity: usize) -> Result<Self, SelFileError> {
        if bytes.len() < HEADER_LEN + 4 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(SelFileError::NotASelFile);
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32(body) != crc {
            return Err(SelFileError::Checksum);
        }
        let h = &body[MAGIC.len()..];
        let le16 = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
        let le32 = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let count = le32(11) as usize;
        let recs = &body[HEADER_LEN..];
        if recs.len() != count * RECORD_LEN {
            return Err(SelFileError::Length);
        }
        let mut store = Self::new(capacity);
        store.next_id = le16(0);
        store.last_add = le32(2);
        store.last_erase = le32(6);
        store.overflow = h[10] != 0;
        for chunk in recs.chunks_exact(RECORD_LEN) {
            let mut r = [0u8; RECORD_LEN];
            r.copy_from_slice(chunk);
            if store.records.len() >= store.capacity {
                store.records.pop_front();
                store.overflow = true;
            }
            store.records.push_back(r);
        }
        Ok(store)
    }
}

const MAGIC: &[u8; 8] = b"AGSEL\x00\x01\x00";
const HEADER_LEN: usize = 8 + 2 + 4 + 4 + 1 + 4;

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

/// CRC-32 (IEEE 802.3, reflected), bitwise: the SEL is small and written rarely.
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
}
