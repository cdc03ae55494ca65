//! The inbound sequence-number window of a session (IPMI 2.0 §6.12.13): a packet whose
//! number was seen or is far off is dropped before its AuthCode is computed; a number is
//! committed only once the packet proved genuine, so a forgery cannot burn it.

/// How far ahead of the highest accepted sequence number a packet may be (§6.12.13 lets the
/// BMC pick; 16 covers a client's outstanding retries).
pub const WINDOW_AHEAD: u32 = 16;
/// How far behind the highest accepted number a late packet may still be accepted once.
pub const WINDOW_BEHIND: u32 = 32;

/// Sliding replay window over inbound session sequence numbers: each number is accepted at
/// most once, numbers far behind or far ahead are refused, zero is never valid.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    /// Highest accepted number, 0 before the first packet.
    highest: u32,
    /// Bit i set = `highest - i` accepted (bit 0 is `highest` itself).
    seen: u32,
}

impl ReplayWindow {
    /// Would `seq` be accepted? (Checked before the costly integrity check; nothing changes.)
    pub fn check(&self, seq: u32) -> bool {
        if seq == 0 {
            return false;
        }
        if self.highest == 0 {
            return seq <= WINDOW_AHEAD;
        }
        if seq > self.highest {
            return seq - self.highest <= WINDOW_AHEAD;
        }
        let back = self.highest - seq;
        back < WINDOW_BEHIND && self.seen & (1 << back) == 0
    }

    /// Record `seq` as accepted; call only after the packet's integrity was verified.
    pub fn commit(&mut self, seq: u32) -> bool {
        if !self.check(seq) {
            return false;
        }
        if seq > self.highest {
            let shift = seq - self.highest;
            self.seen = if self.highest == 0 || shift >= 32 {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.highest = seq;
        } else {
            self.seen |= 1 << (self.highest - seq);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_accepts_each_number_once() {
        let mut w = ReplayWindow::default();
        // Table: (seq, accepted?)
        let steps = [
            (0, false),
            (17, false), // too far ahead for a first packet
            (1, true),
            (1, false), // replay
            (3, true),
            (2, true), // late but new
            (2, false),
            (19, true),  // 16 ahead of 3
            (36, false), // 17 ahead of 19
            (4, true),   // 15 behind, unseen
            (3, false),  // seen
            (35, true),
            (3, false), // now 32 behind: outside the window
            (4, false),
            (5, true), // 30 behind, unseen
        ];
        for (i, (seq, ok)) in steps.into_iter().enumerate() {
            assert_eq!(w.commit(seq), ok, "step {i}: seq {seq}");
        }
    }

    #[test]
    fn check_does_not_change_state() {
        let mut w = ReplayWindow::default();
        assert!(w.check(1));
        assert!(w.check(1));
        assert!(w.commit(1));
        assert!(!w.check(1));
    }

    #[test]
    fn big_jump_clears_history() {
        let mut w = ReplayWindow::default();
        for s in 1..=10 {
            assert!(w.commit(s));
        }
        let mut s = 10;
        while s < 100 {
            s += 16;
            assert!(w.commit(s));
        }
        assert!(!w.commit(s - 16));
        assert!(w.commit(s - 15));
    }
}
