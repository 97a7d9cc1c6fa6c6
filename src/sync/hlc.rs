//! Hybrid logical clocks: wall-clock milliseconds plus a counter, so causally later writes
//! always carry a larger clock even when machines' clocks disagree a little. Written on the wire
//! as `"<ms>:<counter>"`, e.g. `"1795000000123:0"`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::{fmt, str::FromStr, sync::Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hlc {
    pub ms: u64,
    pub counter: u32,
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ms, self.counter)
    }
}

impl FromStr for Hlc {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (ms, counter) = s
            .split_once(':')
            .ok_or("hlc must look like \"<ms>:<counter>\"")?;
        Ok(Hlc {
            ms: ms
                .parse()
                .map_err(|_| "hlc milliseconds must be an integer")?,
            counter: counter
                .parse()
                .map_err(|_| "hlc counter must be an integer")?,
        })
    }
}

impl Serialize for Hlc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hlc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Hlc {
    /// The smallest clock after this one; never wraps (a full counter moves to the next
    /// millisecond, so the clock never goes back).
    pub fn next(self) -> Hlc {
        match self.counter.checked_add(1) {
            Some(counter) => Hlc {
                ms: self.ms,
                counter,
            },
            None => Hlc {
                ms: self.ms.saturating_add(1),
                counter: 0,
            },
        }
    }
}

/// The server's clock. One per instance; `Mutex` because every tick is a read-modify-write
/// of two integers (never held across an await).
pub struct Clock {
    last: Mutex<Hlc>,
    wall: fn() -> u64,
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub fn new() -> Self {
        Self {
            last: Mutex::new(Hlc::default()),
            wall: wall_ms,
        }
    }

    #[cfg(test)]
    fn with_wall(wall: fn() -> u64) -> Self {
        Self {
            last: Mutex::new(Hlc::default()),
            wall,
        }
    }

    pub fn wall(&self) -> u64 {
        (self.wall)()
    }

    /// A fresh timestamp, larger than any this clock has issued or observed.
    pub fn now(&self) -> Hlc {
        let wall = (self.wall)();
        let mut last = self
            .last
            .lock()
            .expect("clock lock is never held across a panic");
        *last = if wall > last.ms {
            Hlc {
                ms: wall,
                counter: 0,
            }
        } else {
            last.next()
        };
        *last
    }

    /// Moves the clock past `remote` (a client's timestamp that was accepted).
    pub fn observe(&self, remote: Hlc) {
        let mut last = self
            .last
            .lock()
            .expect("clock lock is never held across a panic");
        if remote > *last {
            *last = remote;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_and_observes() {
        let c = Clock::with_wall(|| 1000);
        let a = c.now();
        let b = c.now();
        assert!(b > a);
        c.observe(Hlc {
            ms: 5000,
            counter: 3,
        });
        assert_eq!(
            c.now(),
            Hlc {
                ms: 5000,
                counter: 4
            }
        );
        assert_eq!("12:3".parse::<Hlc>(), Ok(Hlc { ms: 12, counter: 3 }));
        assert!("12".parse::<Hlc>().is_err());
        // A full counter moves to the next millisecond instead of wrapping back.
        c.observe(Hlc {
            ms: 9000,
            counter: u32::MAX,
        });
        assert_eq!(
            c.now(),
            Hlc {
                ms: 9001,
                counter: 0
            }
        );
        assert_eq!(
            serde_json::to_string(&Hlc { ms: 7, counter: 1 }).unwrap(),
            "\"7:1\""
        );
    }
}
