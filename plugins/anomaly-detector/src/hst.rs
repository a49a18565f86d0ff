//! Streaming Half-Space Trees (Tan, Ting & Liu, "Fast Anomaly Detection for
//! Streaming Data", IJCAI 2011), with fading masses.
//!
//! Each tree is a complete binary tree of depth `depth` over the unit cube
//! `[0, 1]^d`, built before any data is seen: every node halves a randomly
//! chosen dimension of its (randomly perturbed) work space. A node's mass
//! counts the samples that went through it. The paper keeps two profiles
//! (the previous full window as reference, the current one being counted);
//! here every mass instead fades by `1 - 1/horizon` per sample, so the model
//! is usable from the first samples and has no blind spot when a window
//! shorter than the data's period is swapped (a 256-sample window misses
//! part of a daily cycle of 288 five-minute samples). A sample is scored by
//! the mass of the deepest node on its path that still holds a tenth of the
//! total (the paper's size limit), scaled by `2^depth`: a sparse region is
//! an anomaly. Memory is fixed at `trees × (2^(depth+1) − 1)` nodes,
//! whatever the length of the stream.
//!
//! The structure is a pure function of the seed, so only the masses are
//! saved ([`Forest::state`]).

/// splitmix64 (Steele, Lea & Flood 2014): a tiny deterministic generator;
/// plugins have no randomness of their own.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// FNV-1a of a string: mixes the entity id into the forest's seed, so two
/// streams do not share the same trees.
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[derive(Debug, Clone)]
pub struct Forest {
    depth: usize,
    /// Per-sample decay of the masses: `1 - 1/horizon`.
    keep: f64,
    /// Per tree, per node (heap order: children of `i` are `2i+1`, `2i+2`):
    /// the split dimension and value.
    split_dim: Vec<u8>,
    split_val: Vec<f32>,
    /// Decayed mass per tree and node, in units of `scale` (the weight the
    /// next sample gets); the effective mass is `mass / scale`.
    mass: Vec<f32>,
    scale: f64,
    /// Effective total mass (samples, decayed).
    total: f64,
}

/// Masses are renormalised when the growing sample weight reaches this.
const RESCALE_AT: f64 = 1e12;

impl Forest {
    /// A forest over `dims` features in `[0, 1]`, remembering about the
    /// last `horizon` samples.
    pub fn new(dims: usize, trees: usize, depth: usize, horizon: u32, seed: u64) -> Forest {
        let dims = dims.clamp(1, 255);
        let depth = depth.clamp(1, 15);
        let nodes = (1usize << (depth + 1)) - 1;
        let mut rng = SplitMix64(seed);
        let mut split_dim = vec![0u8; trees * nodes];
        let mut split_val = vec![0f32; trees * nodes];
        for t in 0..trees {
            // The perturbed work space of Tan et al.: s in [0,1], range
            // [s - 2 max(s, 1-s), s + 2 max(s, 1-s)] per dimension.
            let mut lo = vec![0f64; dims];
            let mut hi = vec![0f64; dims];
            for q in 0..dims {
                let s = rng.next_f64();
                let r = 2.0 * s.max(1.0 - s);
                lo[q] = s - r;
                hi[q] = s + r;
            }
            build(
                &mut rng,
                &mut split_dim[t * nodes..(t + 1) * nodes],
                &mut split_val[t * nodes..(t + 1) * nodes],
                0,
                0,
                depth,
                &mut lo,
                &mut hi,
            );
        }
        Forest {
            depth,
            keep: 1.0 - 1.0 / f64::from(horizon.max(2)),
            split_dim,
            split_val,
            mass: vec![0.0; trees * nodes],
            scale: 1.0,
            total: 0.0,
        }
    }

    fn nodes(&self) -> usize {
        (1usize << (self.depth + 1)) - 1
    }

    fn trees(&self) -> usize {
        self.split_dim.len() / self.nodes()
    }

    /// Effective (decayed) number of samples learned.
    pub fn total(&self) -> f64 {
        self.total
    }

    /// Mean over trees of `log2(mass · 2^depth + 1)` at the deepest node on
    /// `x`'s path holding at least a tenth of the total mass (the paper's
    /// size limit): high = dense region = normal.
    pub fn log_mass(&self, x: &[f64]) -> f64 {
        let nodes = self.nodes();
        let limit = 0.1 * self.total * self.scale;
        let mut sum = 0.0;
        for t in 0..self.trees() {
            let base = t * nodes;
            let mut i = 0usize;
            let mut k = 0usize;
            loop {
                let m = f64::from(self.mass[base + i]);
                if k == self.depth || m < limit {
                    sum += (m / self.scale * (1u64 << k) as f64 + 1.0).log2();
                    break;
                }
                i = self.child(base, i, x);
                k += 1;
            }
        }
        sum / self.trees().max(1) as f64
    }

    fn child(&self, base: usize, i: usize, x: &[f64]) -> usize {
        let q = self.split_dim[base + i] as usize;
        let v = x.get(q).copied().unwrap_or(0.5);
        if v < f64::from(self.split_val[base + i]) {
            2 * i + 1
        } else {
            2 * i + 2
        }
    }

    /// Adds `x` to the masses; older samples fade by `1 - 1/horizon` each.
    pub fn learn(&mut self, x: &[f64]) {
        let nodes = self.nodes();
        let w = self.scale as f32;
        for t in 0..self.trees() {
            let base = t * nodes;
            let mut i = 0usize;
            loop {
                self.mass[base + i] += w;
                if 2 * i + 1 >= nodes {
                    break;
                }
                i = self.child(base, i, x);
            }
        }
        self.total = self.total * self.keep + 1.0;
        self.scale /= self.keep;
        if self.scale >= RESCALE_AT {
            let f = (1.0 / self.scale) as f32;
            self.mass.iter_mut().for_each(|m| *m *= f);
            self.scale = 1.0;
        }
    }

    /// The learned state: the masses (in units of `scale`), `scale`, `total`.
    pub fn state(&self) -> (&[f32], f64, f64) {
        (&self.mass, self.scale, self.total)
    }

    /// Restores [`Forest::state`]; `false` (and no change) when it does not
    /// fit this forest.
    pub fn set_state(&mut self, mass: &[f32], scale: f64, total: f64) -> bool {
        let ok = mass.len() == self.mass.len()
            && mass.iter().all(|m| m.is_finite() && *m >= 0.0)
            && (1.0..=RESCALE_AT / self.keep).contains(&scale)
            && total.is_finite()
            && total >= 0.0;
        if ok {
            self.mass.copy_from_slice(mass);
            self.scale = scale;
            self.total = total;
        }
        ok
    }
}

#[allow(clippy::too_many_arguments)]
fn build(
    rng: &mut SplitMix64,
    dim: &mut [u8],
    val: &mut [f32],
    i: usize,
    k: usize,
    depth: usize,
    lo: &mut [f64],
    hi: &mut [f64],
) {
    if k == depth {
        return;
    }
    let q = (rng.next_u64() % lo.len() as u64) as usize;
    let mid = 0.5 * (lo[q] + hi[q]);
    dim[i] = q as u8;
    val[i] = mid as f32;
    let (l, h) = (lo[q], hi[q]);
    hi[q] = mid;
    build(rng, dim, val, 2 * i + 1, k + 1, depth, lo, hi);
    hi[q] = h;
    lo[q] = mid;
    build(rng, dim, val, 2 * i + 2, k + 1, depth, lo, hi);
    lo[q] = l;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolated_point_has_less_mass_than_the_crowd() {
        let mut f = Forest::new(2, 25, 8, 200, 7);
        let mut rng = SplitMix64(1);
        for _ in 0..400 {
            let x = [0.5 + 0.05 * rng.next_f64(), 0.5 + 0.05 * rng.next_f64()];
            f.learn(&x);
        }
        let crowd = f.log_mass(&[0.52, 0.52]);
        let lone = f.log_mass(&[0.95, 0.05]);
        assert!(lone < crowd - 3.0, "lone {lone} crowd {crowd}");
    }

    #[test]
    fn same_seed_same_trees() {
        let a = Forest::new(4, 5, 6, 100, 42);
        let b = Forest::new(4, 5, 6, 100, 42);
        assert_eq!(a.split_dim, b.split_dim);
        assert_eq!(a.split_val, b.split_val);
    }
}
