//! Nearest-neighbour distance of the latest pattern to the stream's past
//! patterns (the nonconformity of KNN-CAD, Burnaev & Ishimtsev 2016, and of
//! the matrix profile's discords, Yeh et al. 2016).
//!
//! A pattern ("shingle") is the last `len` values. The memory keeps the
//! last `memory` patterns in a ring; a new pattern is compared with all of
//! them except the newest `exclusion` ones, which overlap it (trivial
//! matches). Distance: Euclidean, in the stream's own units; the calibrator
//! that ranks it makes the unit irrelevant.
//!
//! Values are kept as f32 relative to the stream's first value (the
//! origin): the distance does not depend on an offset, and 10⁶ + x keeps
//! the precision of x.
//!
//! Memory: `memory × len` values of 4 bytes, plus the last `len` values.
//! Owned by [`crate::conformal`] (measures 1 and 2).

use crate::codec::{Reader, Writer};

#[derive(Debug, Clone, PartialEq)]
pub struct Shingles {
    /// The first value pushed; patterns are kept relative to it.
    origin: Option<f64>,
    len: usize,
    memory: usize,
    rows: Vec<f32>,
    pos: usize,
    kept: usize,
    /// The last `len` values (ring) and how many are valid.
    recent: Vec<f32>,
    recent_pos: usize,
    recent_len: usize,
}

impl Shingles {
    pub fn new(len: usize, memory: usize) -> Shingles {
        let len = len.max(1);
        let memory = memory.max(1);
        Shingles {
            origin: None,
            len,
            memory,
            rows: vec![0.0; len * memory],
            pos: 0,
            kept: 0,
            recent: vec![0.0; len],
            recent_pos: 0,
            recent_len: 0,
        }
    }

    /// Appends a value; the pattern ending with it, oldest first, once
    /// `len` values have arrived since the start or the last [`restart`].
    ///
    /// [`restart`]: Shingles::restart
    pub fn push(&mut self, x: f64) -> Option<Vec<f32>> {
        // Beyond f32's range a value saturates (an infinite pattern would
        // poison every later distance and the saved state).
        let origin = *self.origin.get_or_insert(x);
        let r = (x - origin).clamp(-f64::from(f32::MAX), f64::from(f32::MAX));
        self.recent[self.recent_pos] = r as f32;
        self.recent_pos = (self.recent_pos + 1) % self.len;
        self.recent_len = (self.recent_len + 1).min(self.len);
        (self.recent_len == self.len).then(|| {
            (0..self.len)
                .map(|i| self.recent[(self.recent_pos + i) % self.len])
                .collect()
        })
    }

    /// Forgets the partial pattern (after a gap: no pattern spans it).
    pub fn restart(&mut self) {
        self.recent_len = 0;
    }

    /// Keeps a pattern.
    pub fn learn(&mut self, q: &[f32]) {
        let l = self.len;
        self.rows[self.pos * l..(self.pos + 1) * l].copy_from_slice(&q[..l]);
        self.pos = (self.pos + 1) % self.memory;
        self.kept = (self.kept + 1).min(self.memory);
    }

    /// Mean distance to the `k` nearest kept patterns, leaving out the
    /// newest `exclusion`; `None` until there are `k` to compare with.
    pub fn distance(&self, q: &[f32], k: usize, exclusion: usize) -> Option<f64> {
        let l = self.len;
        let usable = self.kept.saturating_sub(exclusion);
        let k = k.max(1);
        if usable < k {
            return None;
        }
        let mut best = vec![f32::INFINITY; k];
        let oldest = (self.pos + self.memory - self.kept) % self.memory;
        for j in 0..usable {
            let row = (oldest + j) % self.memory;
            let r = &self.rows[row * l..(row + 1) * l];
            let d: f32 = r.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum();
            if d < best[k - 1] {
                let mut i = k - 1;
                while i > 0 && best[i - 1] > d {
                    best[i] = best[i - 1];
                    i -= 1;
                }
                best[i] = d;
            }
        }
        Some(best.iter().map(|&d| f64::from(d).sqrt()).sum::<f64>() / k as f64)
    }

    pub fn write(&self, w: &mut Writer) {
        w.u8(u8::from(self.origin.is_some()));
        w.f64(self.origin.unwrap_or(0.0));
        for v in self.rows.iter().chain(&self.recent) {
            w.f32(*v);
        }
        w.u32(self.pos as u32);
        w.u32(self.kept as u32);
        w.u32(self.recent_pos as u32);
        w.u32(self.recent_len as u32);
    }

    /// Reads what [`Shingles::write`] wrote for the same shape; on error
    /// `self` is unchanged.
    pub fn read(&mut self, r: &mut Reader) -> Result<(), String> {
        let mut s = self.clone();
        let has_origin = r.u8()? != 0;
        let origin = r.finite()?;
        s.origin = has_origin.then_some(origin);
        for v in s.rows.iter_mut().chain(s.recent.iter_mut()) {
            *v = r.f32()?;
            if !v.is_finite() {
                return Err("non-finite pattern value".into());
            }
        }
        s.pos = r.index(s.memory)?;
        s.kept = r.index(s.memory + 1)?;
        s.recent_pos = r.index(s.len)?;
        s.recent_len = r.index(s.len + 1)?;
        *self = s;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_pattern_is_near_and_a_new_one_far() {
        let mut s = Shingles::new(3, 100);
        for i in 0..60 {
            if let Some(q) = s.push(f64::from(i % 6)) {
                s.learn(&q);
            }
        }
        let seen = s.push(0.0).unwrap(); // 4, 5, 0: seen before
        assert_eq!(s.distance(&seen, 1, 3), Some(0.0));
        let new = s.push(9.0).unwrap(); // 5, 0, 9
        assert!(s.distance(&new, 1, 3).unwrap() > 3.0);
    }

    #[test]
    fn restart_needs_a_full_pattern_again() {
        let mut s = Shingles::new(3, 10);
        s.push(1.0);
        s.push(2.0);
        s.restart();
        assert!(s.push(3.0).is_none());
        assert!(s.push(4.0).is_none());
        // Kept relative to the first value pushed (1).
        assert_eq!(s.push(5.0), Some(vec![2.0, 3.0, 4.0]));
    }
}
