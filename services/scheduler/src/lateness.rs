//! Firing lateness over the last minute, for `GET /v1/cluster` (the Prometheus histogram
//! counts since the start and cannot be read back): a ring of [`SLOTS`] histograms of
//! [`SLOT`] each, the oldest one reused as time moves on. What the scheduler announces every
//! 5 s is their sum ([`Recent::window`]).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sked_core::store::replicas::LatenessWindow;

/// One slot of the ring.
const SLOT: Duration = Duration::from_secs(5);
/// Slots in the ring: a minute.
const SLOTS: usize = 12;

/// Bucket bounds, µs: 1, 1.5, 2, 3, 5, 7 per decade from 0.1 ms to 700 s.
fn bounds() -> Vec<u64> {
    let mut out = Vec::new();
    let mut decade = 100u64;
    while decade <= 100_000_000 {
        for step in [10, 15, 20, 30, 50, 70] {
            out.push(decade * step / 10);
        }
        decade *= 10;
    }
    out
}

#[derive(Clone, Default)]
struct Slot {
    /// Which [`SLOT`] since the start this holds.
    epoch: u64,
    counts: Vec<u64>,
    max_us: u64,
}

struct Ring {
    bounds: Vec<u64>,
    slots: Vec<Slot>,
}

/// The lateness of the last minute's fires. Cheap to clone; one short lock per fire.
#[derive(Clone)]
pub struct Recent {
    start: Instant,
    ring: Arc<Mutex<Ring>>,
}

impl Default for Recent {
    fn default() -> Self {
        let bounds = bounds();
        let empty = Slot {
            epoch: u64::MAX,
            counts: vec![0; bounds.len() + 1],
            max_us: 0,
        };
        Self {
            start: Instant::now(),
            ring: Arc::new(Mutex::new(Ring {
                bounds,
                slots: vec![empty; SLOTS],
            })),
        }
    }
}

impl Recent {
    fn epoch(&self, at: Instant) -> u64 {
        (at.duration_since(self.start).as_millis() / SLOT.as_millis()) as u64
    }

    /// Counts one fire `late_us` after its due time.
    pub fn observe(&self, late_us: u64) {
        self.observe_at(Instant::now(), late_us);
    }

    fn observe_at(&self, at: Instant, late_us: u64) {
        let epoch = self.epoch(at);
        let Ok(mut ring) = self.ring.lock() else {
            return;
        };
        let bucket = ring.bounds.partition_point(|&b| b < late_us);
        let slot = &mut ring.slots[(epoch % SLOTS as u64) as usize];
        if slot.epoch != epoch {
            slot.epoch = epoch;
            slot.counts.iter_mut().for_each(|c| *c = 0);
            slot.max_us = 0;
        }
        slot.counts[bucket] += 1;
        slot.max_us = slot.max_us.max(late_us);
    }

    /// The sum of the slots of the last minute (the current one included).
    pub fn window(&self) -> LatenessWindow {
        self.window_at(Instant::now())
    }

    fn window_at(&self, at: Instant) -> LatenessWindow {
        let now = self.epoch(at);
        let ring = match self.ring.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut counts = vec![0; ring.bounds.len() + 1];
        let mut max_us = 0;
        for slot in &ring.slots {
            if slot.epoch <= now && now - slot.epoch < SLOTS as u64 {
                for (sum, n) in counts.iter_mut().zip(&slot.counts) {
                    *sum += n;
                }
                max_us = max_us.max(slot.max_us);
            }
        }
        LatenessWindow {
            seconds: (SLOT.as_secs() * SLOTS as u64) as u32,
            bounds_us: ring.bounds.clone(),
            counts,
            max_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_rise_from_a_tenth_of_a_millisecond() {
        let b = bounds();
        assert_eq!(&b[..7], &[100, 150, 200, 300, 500, 700, 1_000]);
        assert!(b.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(b.last(), Some(&700_000_000));
    }

    #[test]
    fn the_window_holds_the_last_minute_only() {
        let r = Recent::default();
        let t0 = r.start;
        r.observe_at(t0, 120); // ≤ 150 µs
        r.observe_at(t0 + Duration::from_secs(30), 4_000); // ≤ 5 ms
        r.observe_at(t0 + Duration::from_secs(30), 2_000_000_000); // above every bound
        let w = r.window_at(t0 + Duration::from_secs(31));
        assert_eq!(w.counts.iter().sum::<u64>(), 3);
        assert_eq!(w.counts[1], 1);
        assert_eq!(w.counts[w.bounds_us.len()], 1);
        assert_eq!(w.max_us, 2_000_000_000);
        // A minute on, the first fire's slot has left the window.
        let w = r.window_at(t0 + Duration::from_secs(61));
        assert_eq!(w.counts.iter().sum::<u64>(), 2);
        // Its slot is reused, and emptied first.
        r.observe_at(t0 + Duration::from_secs(62), 100);
        let w = r.window_at(t0 + Duration::from_secs(62));
        assert_eq!(w.counts.iter().sum::<u64>(), 3);
        assert_eq!(w.counts[0], 1);
        assert_eq!(r.window_at(t0 + Duration::from_secs(200)).max_us, 0);
    }
}
