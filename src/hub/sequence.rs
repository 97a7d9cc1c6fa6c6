//! In-order delivery of versioned frames (session sync changes). Each instance releases a
//! session's changes to its subscribers strictly by version: duplicates are dropped, early
//! arrivals wait, and a gap (a pub/sub message lost, or two commits published out of order)
//! is reported so the healer can fetch the missing versions from the change log.

use axum::extract::ws::Utf8Bytes;
use std::collections::BTreeMap;

/// Frames released in version order, each with its version.
pub type Released = Vec<(u64, Utf8Bytes)>;

/// Early frames held per channel before the gap is force-healed.
pub const MAX_PENDING: usize = 1024;

/// One channel's version order on this instance. Owned by the hub, one per channel with local
/// subscribers; ends when the channel's last local subscriber leaves.
#[derive(Default)]
pub struct Sequence {
    /// The next version to release; `None` until the first frame or catch-up sets it.
    next: Option<u64>,
    pending: BTreeMap<u64, Utf8Bytes>,
}

/// What `offer` decided.
pub enum Offer {
    /// Release these frames now, in order, with their versions.
    Release(Released),
    /// Versions `from..to` (exclusive) are missing; the frame was held.
    Gap { from: u64, to: u64 },
    /// Already released: dropped.
    Duplicate,
}

impl Sequence {
    pub fn offer(&mut self, version: u64, frame: Utf8Bytes) -> Offer {
        let Some(next) = self.next else {
            // Nobody has caught up yet: which version comes first is unknown (two commits'
            // frames may arrive out of order), so everything waits for `caught_up`.
            if self.pending.len() < MAX_PENDING {
                self.pending.insert(version, frame);
            }
            return Offer::Release(Vec::new());
        };
        if version < next {
            return Offer::Duplicate;
        }
        if version > next {
            if self.pending.len() < MAX_PENDING {
                self.pending.insert(version, frame);
            }
            return Offer::Gap {
                from: next,
                to: *self.pending.keys().next().unwrap_or(&version),
            };
        }
        let mut out = vec![(version, frame)];
        let mut v = version + 1;
        while let Some(f) = self.pending.remove(&v) {
            out.push((v, f));
            v += 1;
        }
        self.next = Some(v);
        Offer::Release(out)
    }

    /// A first subscriber caught up to `version`: releasing starts after it, with what
    /// arrived meanwhile (and a gap if something before that is still missing). When frames
    /// are already flowing, nothing changes: other subscribers still need every version, and
    /// the new one's gate drops what it already has.
    pub fn caught_up(&mut self, version: u64) -> (Released, Option<(u64, u64)>) {
        if self.next.is_some() {
            return (Vec::new(), None);
        }
        let released = self.skip_to(version);
        let gap = match (self.pending.keys().next(), self.next) {
            (Some(&first), Some(next)) => Some((next, first)),
            _ => None,
        };
        (released, gap)
    }

    /// Versions up to `version` will not be released here (subscribers were told to catch
    /// up by themselves): releasing goes on after it, with what already waits past it.
    pub fn skip_to(&mut self, version: u64) -> Released {
        let next = self.next.map_or(version + 1, |n| n.max(version + 1));
        self.pending.retain(|v, _| *v >= next);
        let mut out = Vec::new();
        let mut v = next;
        while let Some(f) = self.pending.remove(&v) {
            out.push((v, f));
            v += 1;
        }
        self.next = Some(v);
        out
    }

    pub fn next(&self) -> Option<u64> {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> Utf8Bytes {
        Utf8Bytes::from(s.to_string())
    }

    #[test]
    fn frames_before_the_first_catch_up_wait_for_it_in_any_order() {
        let mut s = Sequence::default();
        assert!(matches!(s.offer(6, f("6")), Offer::Release(v) if v.is_empty()));
        assert!(matches!(s.offer(5, f("5")), Offer::Release(v) if v.is_empty()));
        assert!(matches!(s.offer(3, f("3")), Offer::Release(v) if v.is_empty()));
        let (released, gap) = s.caught_up(4);
        assert_eq!(
            released.iter().map(|x| x.0).collect::<Vec<_>>(),
            [5, 6],
            "what the catch-up did not hold, in order"
        );
        assert!(gap.is_none());
        let mut s = Sequence::default();
        s.offer(7, f("7"));
        s.offer(5, f("5"));
        let (released, gap) = s.caught_up(4);
        assert_eq!(released.len(), 1, "5 goes out");
        assert_eq!(gap, Some((6, 7)), "and the hole before 7 is reported");
        assert!(matches!(s.offer(6, f("6")), Offer::Release(v) if v.len() == 2));
    }

    #[test]
    fn releases_in_order_and_reports_gaps() {
        let mut s = Sequence::default();
        s.caught_up(4);
        assert!(matches!(s.offer(5, f("5")), Offer::Release(v) if v.len() == 1));
        assert!(matches!(s.offer(7, f("7")), Offer::Gap { from: 6, to: 7 }));
        assert!(matches!(s.offer(5, f("5")), Offer::Duplicate));
        match s.offer(6, f("6")) {
            Offer::Release(v) => assert_eq!(
                v.iter().map(|x| x.1.as_str()).collect::<Vec<_>>(),
                ["6", "7"]
            ),
            _ => panic!("expected release"),
        }
        assert_eq!(s.next(), Some(8));
    }

    #[test]
    fn skipping_a_gap_releases_what_waits_past_it() {
        let mut s = Sequence::default();
        s.caught_up(4);
        assert!(matches!(s.offer(9, f("9")), Offer::Gap { from: 5, to: 9 }));
        assert!(matches!(s.offer(10, f("10")), Offer::Gap { .. }));
        let out = s.skip_to(8);
        assert_eq!(
            out.iter().map(|x| x.1.as_str()).collect::<Vec<_>>(),
            ["9", "10"]
        );
        assert_eq!(s.next(), Some(11));
        assert!(
            s.skip_to(3).is_empty(),
            "skipping backwards changes nothing"
        );
        assert_eq!(s.next(), Some(11));
        assert!(matches!(s.offer(7, f("7")), Offer::Duplicate));
    }
}
