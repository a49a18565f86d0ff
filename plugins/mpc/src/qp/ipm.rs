//! A structure-exploiting primal–dual interior-point solver for the horizon
//! problem of [`super::build`] (issue 19: clarabel took ≈ 7.6 ms per
//! 96-step solve inside WASM, most of it in generic sparse machinery).
//!
//! The problem is clarabel's standard form restricted to the zero cone and
//! the nonnegative orthant (`min ½xᵀPx + qᵀx  s.t.  Ex = f,  Gx + s = h,
//! s ≥ 0`, `E` the first `equalities` rows of `A`, `G` the rest). The method
//! is Mehrotra's predictor–corrector (Nocedal & Wright, *Numerical
//! Optimization*, 2nd ed. 2006, §16.6 and Alg. 14.3; the initial point and
//! the reduced KKT system as in CVXOPT's `coneqp`, Vandenberghe 2010, "The
//! CVXOPT linear and quadratic cone program solvers", §2–3). Eliminating the
//! slacks and inequality duals leaves, each iteration, the quasi-definite
//! system
//!
//! ```text
//! [ P + Gᵀ W G + ρI   Eᵀ  ] [dx]   [r_x]
//! [ E                 −δI ] [dy] = [r_y],   W = diag(z/s)
//! ```
//!
//! which is *banded* when its unknowns are ordered stage by stage. The
//! comfort and terminal slacks are coupled to one `Ti` each: they are
//! eliminated in closed form first (a 1×1 Schur complement onto that
//! `Ti`'s diagonal, [`Order`]), so the band holds `u_k, y_k (2),
//! Ti_{k+1}, Te_{k+1}` per stage (5N unknowns) with half bandwidth 5 (the
//! dynamics couple neighbouring stages, the smoothing and ramp couple
//! `u_{k−1}, u_k`) whatever the horizon: one `LDLᵀ` costs O(N·5²) and has
//! no symbolic analysis, ordering or permutation of a general sparse
//! factorisation (clarabel's QDLDL with AMD). Quasi-definite matrices have
//! an `LDLᵀ` factorisation for every symmetric ordering (Vanderbei,
//! "Symmetric quasi-definite matrices", SIAM J. Optim. 5, 1995); the
//! regularisation `ρ = δ = 1e-9` only perturbs the Newton direction (the
//! residuals are recomputed exactly every iteration), so no iterative
//! refinement is done: on the 96-step problems the iteration counts and
//! objectives equal clarabel's (test `banded_matches_clarabel_on_the_red_day`).

use super::Matrices;
use clarabel::solver::SolverStatus;

/// Tolerances on the scaled residuals and the duality gap. 1e-6 (clarabel
/// defaults to 1e-8): the objective is in € (a day costs a few €) and the
/// residuals in K and kW, so 1e-6 is a micro-euro or a micro-kelvin,
/// far below what the model resolves. It saves one interior-point
/// iteration in ten on a 96-step horizon (issue 19, BENCHMARKS.md "MPC step
/// — issue 19"); objectives stay within 5e-7 relative of clarabel's
/// (`qp::tests::banded_matches_clarabel_on_the_red_day`).
const TOL_FEAS: f64 = 1e-6;
const TOL_GAP_ABS: f64 = 1e-6;
const TOL_GAP_REL: f64 = 1e-6;
/// Reduced tolerances for "almost solved" at the iteration limit.
const TOL_REDUCED: f64 = 5e-5;
/// Static regularisation of the KKT diagonal.
const REG: f64 = 1e-9;
/// Fraction of the step to the boundary.
const STEP_FRACTION: f64 = 0.99;

/// The solver's answer, in the problem's variable order.
pub struct Answer {
    /// Primal.
    pub x: Vec<f64>,
    /// Dual, one per row of `A` (equalities first).
    pub z: Vec<f64>,
    /// Primal slack, one per row of `A` (0 on equalities).
    pub s: Vec<f64>,
    /// Status, clarabel's names.
    pub status: SolverStatus,
    /// Iterations.
    pub iterations: u32,
}

/// Rows of a matrix: `(column, value)` pairs per row.
struct RowMajor {
    start: Vec<usize>,
    col: Vec<usize>,
    val: Vec<f64>,
}

impl RowMajor {
    fn row(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let (a, b) = (self.start[i], self.start[i + 1]);
        self.col[a..b]
            .iter()
            .copied()
            .zip(self.val[a..b].iter().copied())
    }
}

/// A symmetric band matrix, lower triangle stored row by row
/// (`a[i·(bw+1) + (i−j)]` holds entry `(i, j)`, `i − bw ≤ j ≤ i`).
struct Band {
    n: usize,
    bw: usize,
    a: Vec<f64>,
}

#[allow(
    clippy::needless_range_loop,
    reason = "band algorithms: one index addresses both the band and the vectors"
)]
impl Band {
    fn new(n: usize, bw: usize) -> Band {
        Band {
            n,
            bw,
            a: vec![0.0; n * (bw + 1)],
        }
    }

    #[inline]
    fn add(&mut self, i: usize, j: usize, v: f64) {
        let (i, j) = if i >= j { (i, j) } else { (j, i) };
        self.a[i * (self.bw + 1) + (i - j)] += v;
    }

    /// In-place `LDLᵀ` (unit `L` below the diagonal, `D` on it). A pivot
    /// with the wrong sign or too small for its expected sign (`+` on
    /// primal unknowns, `−` on equality multipliers) is replaced by
    /// `sign·eps` (dynamic regularisation, as clarabel's QDLDL does).
    fn factor(&mut self, sign: &[f64], eps: f64, tmp: &mut [f64]) {
        let w = self.bw + 1;
        for j in 0..self.n {
            let lo = j.saturating_sub(self.bw);
            // tmp[k − lo] = L_jk d_k
            let mut d = self.a[j * w];
            for k in lo..j {
                let l = self.a[j * w + (j - k)];
                let t = l * self.a[k * w];
                tmp[k - lo] = t;
                d -= l * t;
            }
            if d * sign[j] < eps {
                d = sign[j] * eps;
            }
            self.a[j * w] = d;
            let hi = (j + self.bw + 1).min(self.n);
            for i in j + 1..hi {
                // Row i's band starts at i − bw; column j's at lo.
                let lo_i = i.saturating_sub(self.bw).max(lo);
                let mut v = self.a[i * w + (i - j)];
                for k in lo_i..j {
                    v -= self.a[i * w + (i - k)] * tmp[k - lo];
                }
                self.a[i * w + (i - j)] = v / d;
            }
        }
    }

    /// Solves with the factors of [`Band::factor`], in place.
    fn solve(&self, x: &mut [f64]) {
        let w = self.bw + 1;
        for i in 0..self.n {
            let lo = i.saturating_sub(self.bw);
            let mut v = x[i];
            for k in lo..i {
                v -= self.a[i * w + (i - k)] * x[k];
            }
            x[i] = v;
        }
        for i in 0..self.n {
            x[i] /= self.a[i * w];
        }
        for i in (0..self.n).rev() {
            let v = x[i];
            let lo = i.saturating_sub(self.bw);
            for k in lo..i {
                x[k] -= self.a[i * w + (i - k)] * v;
            }
        }
    }
}

/// No position in the band: a leaf (see [`Order::leaf`]).
const LEAF: usize = usize::MAX;

/// Position of each unknown of the reduced KKT system: primal `j` at
/// `var[j]`, equality row `i` at `eq[i]`. A *leaf* is a primal unknown
/// coupled (in `P`, `E`, `G`) to one other primal unknown only, its
/// partner `leaf[j]`: the comfort and terminal slacks, coupled to one `Ti`.
/// A leaf is eliminated in closed form before the band is factored (its
/// 1×1 Schur complement goes onto the partner's diagonal), so the band
/// holds `u_k, y_k, Ti_{k+1}, Te_{k+1}` per stage: dimension 5N, half
/// bandwidth 5.
struct Order {
    var: Vec<usize>,
    eq: Vec<usize>,
    leaf: Vec<Option<usize>>,
    dim: usize,
}

/// Stage-by-stage order for [`super::build`]'s layout; a proposed leaf
/// that the matrices couple to anything else than its partner keeps a
/// position in the band (so the order is right for any matrices, only
/// slower).
fn stage_order(mx: &Matrices, e: &RowMajor, g: &RowMajor) -> Order {
    let l = &mx.layout;
    let n = l.n;
    let nv = l.vars();
    let mut leaf: Vec<Option<usize>> = vec![None; nv];
    for k in 0..n {
        leaf[l.s_under(k)] = Some(l.ti(k));
        leaf[l.s_over(k)] = Some(l.ti(k));
    }
    if l.terminal {
        leaf[l.s_terminal()] = Some(l.ti(n - 1));
    }
    // Validate: every coupling of a leaf is with itself or its partner.
    let mut ok = vec![true; nv];
    let pair = |a: usize, b: usize, ok: &mut [bool]| {
        for (x, y) in [(a, b), (b, a)] {
            if let Some(p) = leaf[x]
                && y != x
                && y != p
            {
                ok[x] = false;
            }
        }
    };
    let p = &mx.p;
    for c in 0..p.n {
        for idx in p.colptr[c]..p.colptr[c + 1] {
            pair(p.rowval[idx], c, &mut ok);
        }
    }
    for i in 0..e.start.len() - 1 {
        for (c, _) in e.row(i) {
            if leaf[c].is_some() {
                ok[c] = false;
            }
        }
    }
    for i in 0..g.start.len() - 1 {
        for (c1, _) in g.row(i) {
            for (c2, _) in g.row(i) {
                pair(c1, c2, &mut ok);
            }
        }
    }
    for (j, l) in leaf.iter_mut().enumerate() {
        if !ok[j] {
            *l = None;
        }
    }
    let mut var = vec![LEAF; nv];
    let mut eq = vec![0; mx.equalities];
    let mut next = 0;
    let place = |j: usize, var: &mut [usize], next: &mut usize| {
        if leaf[j].is_none() {
            var[j] = *next;
            *next += 1;
        }
    };
    for k in 0..n {
        place(l.s_under(k), &mut var, &mut next);
        place(l.s_over(k), &mut var, &mut next);
        place(l.u(k), &mut var, &mut next);
        for r in [2 * k, 2 * k + 1] {
            eq[r] = next;
            next += 1;
        }
        place(l.ti(k), &mut var, &mut next);
        place(l.te(k), &mut var, &mut next);
    }
    if l.terminal {
        place(l.s_terminal(), &mut var, &mut next);
    }
    Order {
        var,
        eq,
        leaf,
        dim: next,
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn inf_norm(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Largest `α ≤ 1` with `v + α dv ≥ 0`.
fn max_step(v: &[f64], dv: &[f64]) -> f64 {
    let mut a: f64 = 1.0;
    for (x, d) in v.iter().zip(dv) {
        if *d < 0.0 {
            a = a.min(-x / d);
        }
    }
    a
}

/// Everything one solve needs, allocated once.
struct Kkt<'a> {
    mx: &'a Matrices,
    /// `E` and `G` by rows.
    e: RowMajor,
    g: RowMajor,
    ord: Order,
    /// The band part and then its factors.
    f: Band,
    /// Per leaf: its diagonal (regularised) and its coupling to its
    /// partner.
    leaf_d: Vec<f64>,
    leaf_c: Vec<f64>,
    sign: Vec<f64>,
    tmp: Vec<f64>,
    sol: Vec<f64>,
}

impl<'a> Kkt<'a> {
    fn new(mx: &'a Matrices) -> Kkt<'a> {
        let a = &mx.a;
        let m = a.m;
        // Rows of A from its CSC storage.
        let mut count = vec![0usize; m + 1];
        for &r in &a.rowval {
            count[r + 1] += 1;
        }
        for i in 0..m {
            count[i + 1] += count[i];
        }
        let mut fill = count.clone();
        let nnz = a.rowval.len();
        let (mut col, mut val) = (vec![0; nnz], vec![0.0; nnz]);
        for c in 0..a.n {
            for idx in a.colptr[c]..a.colptr[c + 1] {
                let r = a.rowval[idx];
                col[fill[r]] = c;
                val[fill[r]] = a.nzval[idx];
                fill[r] += 1;
            }
        }
        let meq = mx.equalities;
        let e = RowMajor {
            start: count[..=meq].to_vec(),
            col: col[..count[meq]].to_vec(),
            val: val[..count[meq]].to_vec(),
        };
        let g = RowMajor {
            start: count[meq..].iter().map(|c| c - count[meq]).collect(),
            col: col[count[meq]..].to_vec(),
            val: val[count[meq]..].to_vec(),
        };
        let ord = stage_order(mx, &e, &g);
        let dim = ord.dim;
        // Half bandwidth from the pattern (leaves fold onto their partner).
        let pos = |j: usize| {
            let p = ord.var[j];
            if p == LEAF {
                ord.var[ord.leaf[j].expect("a leaf has a partner")]
            } else {
                p
            }
        };
        let mut bw = 0;
        let mut see = |i: usize, j: usize| bw = bw.max(i.abs_diff(j));
        for c in 0..mx.p.n {
            for idx in mx.p.colptr[c]..mx.p.colptr[c + 1] {
                see(pos(mx.p.rowval[idx]), pos(c));
            }
        }
        for i in 0..meq {
            for (c, _) in e.row(i) {
                see(ord.eq[i], pos(c));
            }
        }
        for i in 0..m - meq {
            for (c1, _) in g.row(i) {
                for (c2, _) in g.row(i) {
                    see(pos(c1), pos(c2));
                }
            }
        }
        let mut sign = vec![1.0; dim];
        for &p in &ord.eq {
            sign[p] = -1.0;
        }
        let nv = a.n;
        Kkt {
            mx,
            e,
            g,
            ord,
            f: Band::new(dim, bw),
            leaf_d: vec![0.0; nv],
            leaf_c: vec![0.0; nv],
            sign,
            tmp: vec![0.0; bw + 1],
            sol: vec![0.0; dim],
        }
    }

    /// Adds `v` to entry `(a, b)` (and `(b, a)`) of the primal block.
    #[inline]
    fn add_vv(&mut self, a: usize, b: usize, v: f64) {
        let (pa, pb) = (self.ord.var[a], self.ord.var[b]);
        if pa != LEAF && pb != LEAF {
            self.f.add(pa, pb, v);
        } else if a == b {
            self.leaf_d[a] += v;
        } else if pa == LEAF {
            self.leaf_c[a] += v;
        } else {
            self.leaf_c[b] += v;
        }
    }

    /// Assembles `[P + Gᵀ W G + ρI, Eᵀ; E, −δI]`, eliminates the leaves
    /// and factors the band.
    fn factor(&mut self, w: &[f64]) {
        let mx = self.mx;
        self.f.a.iter_mut().for_each(|v| *v = 0.0);
        self.leaf_d.iter_mut().for_each(|v| *v = 0.0);
        self.leaf_c.iter_mut().for_each(|v| *v = 0.0);
        let p = &mx.p;
        for c in 0..p.n {
            for idx in p.colptr[c]..p.colptr[c + 1] {
                self.add_vv(p.rowval[idx], c, p.nzval[idx]);
            }
        }
        for i in 0..self.e.start.len() - 1 {
            let (a, b) = (self.e.start[i], self.e.start[i + 1]);
            for x in a..b {
                let (c, v) = (self.e.col[x], self.e.val[x]);
                self.f.add(self.ord.eq[i], self.ord.var[c], v);
            }
        }
        for (i, &wi) in w.iter().enumerate() {
            let (a, b) = (self.g.start[i], self.g.start[i + 1]);
            for x in a..b {
                let (cx, vx) = (self.g.col[x], self.g.val[x]);
                self.add_vv(cx, cx, wi * vx * vx);
                for y in x + 1..b {
                    let (cy, vy) = (self.g.col[y], self.g.val[y]);
                    self.add_vv(cx, cy, wi * vx * vy);
                }
            }
        }
        let wd = self.f.bw + 1;
        for (i, s) in self.sign.iter().enumerate() {
            self.f.a[i * wd] += s * REG;
        }
        for j in 0..self.leaf_d.len() {
            if let Some(p) = self.ord.leaf[j] {
                let d = self.leaf_d[j] + REG;
                self.leaf_d[j] = d;
                let c = self.leaf_c[j];
                self.f.a[self.ord.var[p] * wd] -= c * c / d;
            }
        }
        self.f.factor(&self.sign, 1e-13, &mut self.tmp);
    }

    /// Solves `K [dx; dy] = [rx; ry]` (problem order).
    fn solve(&mut self, rx: &[f64], ry: &[f64], dx: &mut [f64], dy: &mut [f64]) {
        for (j, v) in rx.iter().enumerate() {
            let p = self.ord.var[j];
            if p != LEAF {
                self.sol[p] = *v;
            }
        }
        for (j, v) in rx.iter().enumerate() {
            if let Some(p) = self.ord.leaf[j] {
                self.sol[self.ord.var[p]] -= self.leaf_c[j] * v / self.leaf_d[j];
            }
        }
        for (i, v) in ry.iter().enumerate() {
            self.sol[self.ord.eq[i]] = *v;
        }
        self.f.solve(&mut self.sol);
        for (j, v) in dx.iter_mut().enumerate() {
            let p = self.ord.var[j];
            if p != LEAF {
                *v = self.sol[p];
            }
        }
        for j in 0..dx.len() {
            if let Some(p) = self.ord.leaf[j] {
                dx[j] = (rx[j] - self.leaf_c[j] * dx[p]) / self.leaf_d[j];
            }
        }
        for (i, v) in dy.iter_mut().enumerate() {
            *v = self.sol[self.ord.eq[i]];
        }
    }
}

/// `y = P x` (P symmetric, upper triangle stored).
fn p_mul(mx: &Matrices, x: &[f64], y: &mut [f64]) {
    y.iter_mut().for_each(|v| *v = 0.0);
    let p = &mx.p;
    for c in 0..p.n {
        for idx in p.colptr[c]..p.colptr[c + 1] {
            let (r, v) = (p.rowval[idx], p.nzval[idx]);
            y[r] += v * x[c];
            if r != c {
                y[c] += v * x[r];
            }
        }
    }
}

/// `y = M x` and `y = Mᵀ x` for a row-major matrix.
fn rm_mul(m: &RowMajor, x: &[f64], y: &mut [f64]) {
    for (i, yi) in y.iter_mut().enumerate() {
        *yi = m.row(i).map(|(c, v)| v * x[c]).sum();
    }
}

fn rm_mul_t_add(m: &RowMajor, x: &[f64], y: &mut [f64]) {
    for (i, &xi) in x.iter().enumerate() {
        for (c, v) in m.row(i) {
            y[c] += v * xi;
        }
    }
}

/// Solves the problem; the answer's status tells how it ended.
pub fn solve(mx: &Matrices, max_iter: u32) -> Answer {
    let nv = mx.a.n;
    let meq = mx.equalities;
    let mi = mx.b.len() - meq;
    let f = &mx.b[..meq];
    let h = &mx.b[meq..];
    let q = &mx.q;
    let mut kkt = Kkt::new(mx);

    let mut x = vec![0.0; nv];
    let mut y = vec![0.0; meq];
    let mut z = vec![0.0; mi];
    let mut s = vec![0.0; mi];
    let mut w = vec![1.0; mi];
    let (mut rx, mut ry) = (vec![0.0; nv], vec![0.0; meq]);
    let (mut dx, mut dy) = (vec![0.0; nv], vec![0.0; meq]);
    let (mut dz, mut ds) = (vec![0.0; mi], vec![0.0; mi]);
    let mut gx = vec![0.0; mi];
    let mut px = vec![0.0; nv];
    let mut rd = vec![0.0; nv];
    let mut re = vec![0.0; meq];
    let mut ri = vec![0.0; mi];
    let mut rsz = vec![0.0; mi];
    let mut t = vec![0.0; mi];

    // Initial point (CVXOPT coneqp): with W = I solve
    // (P + GᵀG) x + Eᵀ y = −q + Gᵀh, E x = f; z = Gx − h, s = −z, then
    // shift s and z into the interior.
    kkt.factor(&w);
    rx.iter_mut().zip(q).for_each(|(r, q)| *r = -q);
    rm_mul_t_add(&kkt.g, h, &mut rx);
    ry.copy_from_slice(f);
    kkt.solve(&rx, &ry, &mut x, &mut y);
    rm_mul(&kkt.g, &x, &mut gx);
    for i in 0..mi {
        z[i] = gx[i] - h[i];
        s[i] = -z[i];
    }
    for v in [&mut s, &mut z] {
        let worst = v.iter().fold(f64::NEG_INFINITY, |m, x| m.max(-x));
        if worst >= -1e-8 {
            v.iter_mut().for_each(|x| *x += 1.0 + worst);
        }
    }

    let q_norm = inf_norm(q).max(1.0);
    let f_norm = inf_norm(f).max(inf_norm(h)).max(1.0);
    let mut status = SolverStatus::MaxIterations;
    let mut iterations = 0;
    loop {
        // Residuals.
        p_mul(mx, &x, &mut px);
        for j in 0..nv {
            rd[j] = px[j] + q[j];
        }
        rm_mul_t_add(&kkt.e, &y, &mut rd);
        rm_mul_t_add(&kkt.g, &z, &mut rd);
        rm_mul(&kkt.e, &x, &mut re);
        re.iter_mut().zip(f).for_each(|(r, f)| *r -= f);
        rm_mul(&kkt.g, &x, &mut gx);
        for i in 0..mi {
            ri[i] = gx[i] + s[i] - h[i];
        }
        let gap = dot(&s, &z);
        let mu = gap / mi.max(1) as f64;
        let xpx = dot(&x, &px);
        let pobj = 0.5 * xpx + dot(q, &x);
        let dobj = -0.5 * xpx - dot(f, &y) - dot(h, &z);
        let pres = inf_norm(&re).max(inf_norm(&ri)) / f_norm;
        let dres = inf_norm(&rd) / q_norm;
        let rel_gap = gap / pobj.abs().min(dobj.abs()).max(1e-300);
        if pres <= TOL_FEAS && dres <= TOL_FEAS && (gap <= TOL_GAP_ABS || rel_gap <= TOL_GAP_REL) {
            status = SolverStatus::Solved;
            break;
        }
        if iterations >= max_iter {
            if pres <= TOL_REDUCED
                && dres <= TOL_REDUCED
                && (gap <= TOL_REDUCED || rel_gap <= TOL_REDUCED)
            {
                status = SolverStatus::AlmostSolved;
            }
            break;
        }
        if !(gap.is_finite() && pres.is_finite() && dres.is_finite()) {
            status = SolverStatus::NumericalError;
            break;
        }
        iterations += 1;

        for i in 0..mi {
            w[i] = z[i] / s[i];
        }
        kkt.factor(&w);

        // Predictor (affine scaling): r_sz = s∘z; then corrector with
        // r_sz = s∘z + ds_aff∘dz_aff − σμ.
        for i in 0..mi {
            rsz[i] = s[i] * z[i];
        }
        for pass in 0..2 {
            if pass == 1 {
                let a_p = max_step(&s, &ds);
                let a_d = max_step(&z, &dz);
                let a = a_p.min(a_d);
                let mut mu_aff = 0.0;
                for i in 0..mi {
                    mu_aff += (s[i] + a * ds[i]) * (z[i] + a * dz[i]);
                }
                mu_aff /= mi as f64;
                let sigma = (mu_aff / mu).clamp(0.0, 1.0).powi(3);
                let sigma_mu = sigma * mu;
                for i in 0..mi {
                    rsz[i] = s[i] * z[i] + ds[i] * dz[i] - sigma_mu;
                }
            }
            // r_x = −r_d − Gᵀ(W r_i − S⁻¹ r_sz), r_y = −r_e.
            for i in 0..mi {
                t[i] = -(w[i] * ri[i] - rsz[i] / s[i]);
            }
            rx.iter_mut().zip(&rd).for_each(|(r, d)| *r = -d);
            rm_mul_t_add(&kkt.g, &t, &mut rx);
            ry.iter_mut().zip(&re).for_each(|(r, e)| *r = -e);
            kkt.solve(&rx, &ry, &mut dx, &mut dy);
            rm_mul(&kkt.g, &dx, &mut gx);
            for i in 0..mi {
                dz[i] = w[i] * (gx[i] + ri[i]) - rsz[i] / s[i];
                ds[i] = -ri[i] - gx[i];
            }
        }
        let a = (STEP_FRACTION * max_step(&s, &ds).min(max_step(&z, &dz))).min(1.0);
        for j in 0..nv {
            x[j] += a * dx[j];
        }
        for i in 0..meq {
            y[i] += a * dy[i];
        }
        for i in 0..mi {
            s[i] += a * ds[i];
            z[i] += a * dz[i];
        }
    }
    let mut zz = y;
    zz.extend_from_slice(&z);
    let mut ss = vec![0.0; meq];
    ss.extend_from_slice(&s);
    Answer {
        x,
        z: zz,
        s: ss,
        status,
        iterations,
    }
}
