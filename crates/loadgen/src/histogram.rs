//! A latency histogram in microseconds: exact below 128 µs, then 64 buckets
//! per power of two (under 1.6 % error), a fixed 18 KiB whatever is
//! recorded. Enough for percentiles of millions of samples without keeping
//! them.

use serde::Serialize;

/// Values below this are counted exactly.
const EXACT: u64 = 128;
/// Buckets per power of two above [`EXACT`].
const PER_OCTAVE: u64 = 64;
/// Octaves above [`EXACT`]: up to 2^(7 + 33) µs, about 12 days.
const OCTAVES: u64 = 33;
const BUCKETS: usize = (EXACT + OCTAVES * PER_OCTAVE) as usize;

#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
    sum: u128,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max: 0,
            sum: 0,
        }
    }
}

fn index(micros: u64) -> usize {
    if micros < EXACT {
        return micros as usize;
    }
    // 2^octave <= micros < 2^(octave + 1), octave >= 7.
    let octave = u64::from(63 - micros.leading_zeros());
    let octave = octave.min(6 + OCTAVES);
    let mantissa = (micros >> (octave - 6)).min(2 * PER_OCTAVE - 1);
    (EXACT + (octave - 7) * PER_OCTAVE + (mantissa - PER_OCTAVE)) as usize
}

/// The middle of bucket `index`.
fn value(index: usize) -> u64 {
    let index = index as u64;
    if index < EXACT {
        return index;
    }
    let octave = (index - EXACT) / PER_OCTAVE + 7;
    let mantissa = (index - EXACT) % PER_OCTAVE + PER_OCTAVE;
    let width = 1u64 << (octave - 6);
    mantissa * width + width / 2
}

impl Histogram {
    pub fn record(&mut self, micros: u64) {
        self.counts[index(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
        self.sum += u128::from(micros);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// The value at quantile `q` (0..=1), in µs; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        if rank == self.total {
            return self.max;
        }
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return value(index).min(self.max);
            }
        }
        self.max
    }

    /// Percentiles in milliseconds, for the report.
    pub fn summary(&self) -> Summary {
        let ms = |micros: u64| (micros as f64 / 1000.0 * 100.0).round() / 100.0;
        Summary {
            count: self.total,
            mean: if self.total == 0 {
                0.0
            } else {
                ms((self.sum / u128::from(self.total)) as u64)
            },
            p50: ms(self.quantile(0.50)),
            p90: ms(self.quantile(0.90)),
            p99: ms(self.quantile(0.99)),
            p999: ms(self.quantile(0.999)),
            max: ms(self.max),
        }
    }
}

/// A histogram's percentiles, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Summary {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_close() {
        let mut last = 0;
        for micros in [0u64, 1, 127, 128, 129, 255, 256, 1000, 12_345, 99_999_999] {
            let i = index(micros);
            assert!(i >= last, "{micros}");
            last = i;
            let v = value(i);
            let error = v.abs_diff(micros) as f64 / micros.max(1) as f64;
            assert!(error < 0.016, "{micros} -> {v}");
        }
        assert!(index(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for micros in 1..=1000 {
            h.record(micros * 100);
        }
        let p50 = h.quantile(0.5);
        assert!((49_000..=51_000).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99);
        assert!((97_500..=100_000).contains(&p99), "{p99}");
        assert_eq!(h.quantile(1.0), 100_000);
        assert_eq!(h.summary().count, 1000);
    }
}
