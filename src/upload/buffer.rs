//! The bounded buffer of samples not yet delivered to one sink, and the
//! counters that prove nothing is lost silently:
//! `produced = delivered + buffered + dropped` at every moment.

use std::collections::{HashMap, VecDeque};

/// One value of one metric of one fingerprint. Names are interned (an
/// index into [`Names`]), so a buffered sample is 24 bytes whatever its path.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub finger: u32,
    pub path: u32,
    pub value: f64,
    pub unix_secs: f64,
}

/// Interned fingerprints and metric paths.
#[derive(Debug, Default)]
pub struct Names {
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, u32>,
}

impl Names {
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.into());
        self.index.insert(name.into(), i);
        i
    }

    pub fn get(&self, i: u32) -> &str {
        self.names.get(i as usize).map_or("", |s| s)
    }

    /// Forgets every name; only valid when no sample refers to one.
    pub fn clear(&mut self) {
        self.names = Vec::new();
        self.index = HashMap::new();
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub produced: u64,
    pub delivered: u64,
    /// Oldest samples pushed out by newer ones while the buffer was full.
    pub dropped_overflow: u64,
    /// Samples of batches the backend refused for good (4xx).
    pub dropped_rejected: u64,
    pub buffered: u64,
}

impl Counts {
    pub fn dropped(&self) -> u64 {
        self.dropped_overflow + self.dropped_rejected
    }

    pub fn balances(&self) -> bool {
        self.produced == self.delivered + self.buffered + self.dropped()
    }
}

/// Samples waiting for one sink. A batch taken for sending still counts as
/// buffered until it is delivered, rejected or given back.
#[derive(Debug)]
pub struct SampleBuffer {
    queue: VecDeque<Sample>,
    in_flight: usize,
    capacity: usize,
    counts: Counts,
}

impl SampleBuffer {
    pub fn new(capacity: usize) -> SampleBuffer {
        SampleBuffer {
            queue: VecDeque::new(),
            in_flight: 0,
            capacity: capacity.max(1),
            counts: Counts::default(),
        }
    }

    pub fn counts(&self) -> Counts {
        Counts {
            buffered: (self.queue.len() + self.in_flight) as u64,
            ..self.counts
        }
    }

    /// Samples waiting and not in flight.
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.in_flight == 0
    }

    /// Adds a sample; when full, the oldest waiting one goes first. Samples
    /// in flight are never dropped here (their fate is decided by the
    /// response), so when all room is in flight the new sample is the one
    /// dropped.
    pub fn push(&mut self, sample: Sample) {
        self.counts.produced += 1;
        if self.queue.len() + self.in_flight >= self.capacity {
            if self.queue.pop_front().is_none() {
                self.counts.dropped_overflow += 1;
                return;
            }
            self.counts.dropped_overflow += 1;
        }
        self.queue.push_back(sample);
    }

    /// Takes up to `max` of the oldest waiting samples for one request.
    pub fn take_batch(&mut self, max: usize) -> Vec<Sample> {
        let n = max.min(self.queue.len());
        self.in_flight += n;
        self.queue.drain(..n).collect()
    }

    pub fn delivered(&mut self, batch: Vec<Sample>) {
        self.in_flight = self.in_flight.saturating_sub(batch.len());
        self.counts.delivered += batch.len() as u64;
    }

    pub fn rejected(&mut self, batch: Vec<Sample>) {
        self.in_flight = self.in_flight.saturating_sub(batch.len());
        self.counts.dropped_rejected += batch.len() as u64;
    }

    /// A batch that could not be sent goes back to the front, in order.
    /// The bound is re-applied: if newer samples filled the room meanwhile,
    /// the oldest (this batch first) are dropped.
    pub fn give_back(&mut self, batch: Vec<Sample>) {
        self.in_flight = self.in_flight.saturating_sub(batch.len());
        for s in batch.into_iter().rev() {
            self.queue.push_front(s);
        }
        while self.queue.len() + self.in_flight > self.capacity {
            self.queue.pop_front();
            self.counts.dropped_overflow += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(i: u32) -> Sample {
        Sample {
            finger: 0,
            path: i,
            value: f64::from(i),
            unix_secs: 0.0,
        }
    }

    #[test]
    fn interning() {
        let mut n = Names::default();
        let a = n.intern("base.cpu");
        assert_eq!(n.intern("base.cpu"), a);
        let b = n.intern("base.memory");
        assert_ne!(a, b);
        assert_eq!(
            (n.get(a), n.get(b), n.get(99)),
            ("base.cpu", "base.memory", "")
        );
        n.clear();
        assert!(n.is_empty());
    }

    #[test]
    fn full_buffer_drops_oldest_and_counts() {
        let mut b = SampleBuffer::new(3);
        for i in 0..5 {
            b.push(s(i));
        }
        let c = b.counts();
        assert_eq!((c.produced, c.buffered, c.dropped_overflow), (5, 3, 2));
        assert!(c.balances());
        let batch = b.take_batch(10);
        assert_eq!(batch.iter().map(|x| x.path).collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(b.counts().buffered, 3);
        // All room in flight: the newcomer is the one dropped.
        b.push(s(5));
        assert_eq!(b.counts().dropped_overflow, 3);
        b.give_back(batch);
        b.push(s(6));
        let batch = b.take_batch(2);
        assert_eq!(batch.iter().map(|x| x.path).collect::<Vec<_>>(), [3, 4]);
        b.delivered(batch);
        let rest = b.take_batch(5);
        assert_eq!(rest.iter().map(|x| x.path).collect::<Vec<_>>(), [6]);
        b.rejected(rest);
        let c = b.counts();
        assert_eq!(
            (
                c.produced,
                c.delivered,
                c.dropped_rejected,
                c.dropped_overflow,
                c.buffered
            ),
            (7, 2, 1, 4, 0)
        );
        assert!(c.balances() && b.is_empty());
    }

    #[test]
    fn give_back_reapplies_the_bound() {
        let mut b = SampleBuffer::new(4);
        for i in 0..4 {
            b.push(s(i));
        }
        let batch = b.take_batch(2); // 0, 1 in flight
        b.push(s(4));
        b.push(s(5)); // drops 2, 3
        b.give_back(batch);
        let all = b.take_batch(10);
        assert_eq!(all.iter().map(|x| x.path).collect::<Vec<_>>(), [0, 1, 4, 5]);
        b.give_back(all);
        assert!(b.counts().balances());
    }
}
