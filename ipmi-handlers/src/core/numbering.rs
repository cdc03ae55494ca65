//! Stable IPMI sensor numbers. Upstream numbers D-Bus sensors by their sorted position, so a
//! sensor coming or going renumbers the rest; here a number, once given to an object path,
//! stays with it (across disappearance and, via the persisted map, across restarts). Only when
//! every number is taken is the lowest number of an absent sensor given away.

use std::collections::{BTreeMap, BTreeSet};

/// Numbers handed out: 0x01..=0xFE on LUN 0 (0xFF is reserved by the spec; 0x00 is avoided
/// because some host software treats it as "no sensor").
pub const FIRST: u8 = 0x01;
pub const LAST: u8 = 0xFE;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SensorNumbers {
    by_key: BTreeMap<String, u8>,
}

impl SensorNumbers {
    pub fn from_map(map: BTreeMap<String, u8>) -> Self {
        // A hand-edited file could hold duplicates or reserved numbers: keep the first holder.
        let mut seen = BTreeSet::new();
        let by_key = map
            .into_iter()
            .filter(|(_, n)| (FIRST..=LAST).contains(n) && seen.insert(*n))
            .collect();
        Self { by_key }
    }

    pub fn as_map(&self) -> &BTreeMap<String, u8> {
        &self.by_key
    }

    pub fn number(&self, key: &str) -> Option<u8> {
        self.by_key.get(key).copied()
    }

    pub fn key(&self, number: u8) -> Option<&str> {
        self.by_key
            .iter()
            .find(|(_, n)| **n == number)
            .map(|(k, _)| k.as_str())
    }

    /// Give every key in `present` a number (sorted order, so a first start numbers the way an
    /// operator expects). Returns whether the map changed (the edge then persists it).
    pub fn assign<'a>(&mut self, present: impl IntoIterator<Item = &'a str>) -> bool {
        let present: BTreeSet<&str> = present.into_iter().collect();
        let mut changed = false;
        for key in &present {
            if self.by_key.contains_key(*key) {
                continue;
            }
            let used: BTreeSet<u8> = self.by_key.values().copied().collect();
            let n = match (FIRST..=LAST).find(|n| !used.contains(n)) {
                Some(n) => n,
                None => {
                    // All taken: reclaim the lowest number whose sensor is not present now.
                    let Some((old, n)) = self
                        .by_key
                        .iter()
                        .filter(|(k, _)| !present.contains(k.as_str()))
                        .min_by_key(|(_, n)| **n)
                        .map(|(k, n)| (k.clone(), *n))
                    else {
                        // More present sensors than numbers: this one goes without.
                        continue;
                    };
                    self.by_key.remove(&old);
                    n
                }
            };
            self.by_key.insert((*key).to_owned(), n);
            changed = true;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_survive_disappearance_and_new_sensors_get_fresh_ones() {
        let mut m = SensorNumbers::default();
        assert!(m.assign(["b", "a", "c"]));
        assert_eq!(
            (m.number("a"), m.number("b"), m.number("c")),
            (Some(1), Some(2), Some(3))
        );
        // "a" disappears, "aa" appears (sorting would put it at 2 upstream).
        assert!(m.assign(["aa", "b", "c"]));
        assert_eq!(m.number("b"), Some(2));
        assert_eq!(m.number("aa"), Some(4));
        assert_eq!(m.number("a"), Some(1));
        assert!(!m.assign(["a", "b"]));
        assert_eq!(m.key(4), Some("aa"));
    }

    #[test]
    fn full_map_reclaims_the_lowest_absent_number() {
        let mut m = SensorNumbers::default();
        let keys: Vec<String> = (0..254).map(|i| format!("s{i:03}")).collect();
        m.assign(keys.iter().map(String::as_str));
        assert_eq!(m.number("s253"), Some(0xFE));
        // s000 (1) and s001 (2) are gone; the newcomer takes 1.
        let mut now: Vec<&str> = keys[2..].iter().map(String::as_str).collect();
        now.push("new");
        assert!(m.assign(now.iter().copied()));
        assert_eq!(m.number("new"), Some(1));
        assert_eq!(m.number("s000"), None);
        assert_eq!(m.number("s001"), Some(2));
    }

    #[test]
    fn loaded_maps_drop_reserved_and_duplicate_numbers() {
        let map = BTreeMap::from([
            ("a".to_owned(), 0u8),
            ("b".to_owned(), 0xFF),
            ("c".to_owned(), 5),
            ("d".to_owned(), 5),
        ]);
        let m = SensorNumbers::from_map(map);
        assert_eq!(m.as_map().len(), 1);
        assert_eq!(m.number("c"), Some(5));
    }
}
