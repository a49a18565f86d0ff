//! PVWatts v5 DC and AC power (Dobos, A. P., 2014, "PVWatts Version 5
//! Manual", NREL/TP-6A20-62641), as implemented in pvlib-python
//! (`pvlib/pvsystem.py::pvwatts_dc`, `pvwatts_losses`,
//! `pvlib/inverter.py::pvwatts`, `pvlib/iam.py::physical`,
//! `pvlib/temperature.py::fuentes` and `sapm_cell`):
//!
//! - cover loss on the beam only, with the physical (Fresnel + absorption)
//!   incidence-angle modifier, n = 1.526, K = 4 m⁻¹, L = 2 mm, normalised to
//!   normal incidence (De Soto et al. 2006);
//! - `Pdc = G_tr/1000 · Pdc0 · (1 + γ (Tc − 25))`, γ = −0.0047 /°C
//!   ("Standard" module);
//! - system losses `1 − Π(1 − Li)` (defaults 14.08 %);
//! - the v5 inverter part-load curve
//!   `η = η_nom/0.9637 · (−0.0162 ζ − 0.0059/ζ + 0.9858)`, ζ = Pdc/Pdc0_inv,
//!   `Pdc0_inv = Pac0/η_nom`, output clamped to `[0, Pac0]`;
//! - cell temperature: Fuentes (1987, SAND85-0330), PVWatts' model, ported
//!   from pvlib `temperature.fuentes` (itself ported from the FORTRAN in
//!   Fuentes' Appendix A): INOCT 45 °C open rack, 49 °C roof mount, module
//!   height 5 m, wind measured at 9.144 m, tilt 30° in the convection terms
//!   (PVWatts hard-wires it). [`Fuentes`] keeps the thermal mass between
//!   steps (what PVWatts does; [`super::PvArray::ac_power_w_dynamic`]);
//!   [`fuentes_steady`] is the stateless steady state (no thermal lag) that
//!   [`super::PvArray::ac_power_w`] uses. Against the full PVWatts v5 year
//!   (pvlib's `pvwatts_8760_rackmount.csv`, 2865 hours above 20 % of the AC
//!   rating) hourly AC is within median 0.27 %, p99 1.3 %, max 2.7 %
//!   steady-state and median 0.08 %, max 1.24 % stateful; annual energy
//!   −0.08 % and −0.01 % (`solar::tests::pvwatts_v5_full_year`). SAPM
//!   open-rack ([`sapm_cell`]) is kept for comparison (the memo measured
//!   it at +0.8 °C median, ±5 °C p5/p95 against PVWatts' rack Tcell).

/// DC temperature coefficient of PVWatts' "Standard" module, 1/°C.
pub const GAMMA_STANDARD: f64 = -0.0047;

/// PVWatts' default loss percentages: soiling, shading, snow, mismatch,
/// wiring, connections, light-induced degradation, nameplate, age,
/// availability.
pub const DEFAULT_LOSSES_PCT: [f64; 10] = [2.0, 3.0, 0.0, 2.0, 2.0, 0.5, 1.5, 1.0, 0.0, 3.0];

/// Total system loss in percent from individual losses in percent
/// (pvlib `pvwatts_losses`): `100 · (1 − Π(1 − Li/100))`.
pub fn combined_losses_pct(losses_pct: &[f64]) -> f64 {
    100.0
        * (1.0
            - losses_pct
                .iter()
                .fold(1.0, |acc, l| acc * (1.0 - l / 100.0)))
}

/// Physical incidence-angle modifier (transmittance through the cover
/// relative to normal incidence), angle in degrees; 0 at or beyond 90°.
pub fn iam_physical(aoi_deg: f64) -> f64 {
    iam_physical_with(aoi_deg, 1.526, 4.0, 0.002)
}

/// [`iam_physical`] with explicit refractive index `n`, extinction `k`
/// (1/m) and cover thickness `l` (m).
pub fn iam_physical_with(aoi_deg: f64, n: f64, k: f64, l: f64) -> f64 {
    let a = aoi_deg.abs();
    if a >= 90.0 {
        return 0.0;
    }
    let tau0 = (-k * l).exp() * (1.0 - ((1.0 - n) / (1.0 + n)).powi(2));
    if a < 1e-6 {
        return 1.0;
    }
    let th = a.to_radians();
    let thr = (th.sin() / n).asin();
    let rs = ((thr - th).sin() / (thr + th).sin()).powi(2);
    let rp = ((thr - th).tan() / (thr + th).tan()).powi(2);
    let tau = (-k * l / thr.cos()).exp() * (1.0 - 0.5 * (rs + rp));
    (tau / tau0).max(0.0)
}

/// Plane-of-array irradiance transmitted through the cover: the beam is
/// reduced by the IAM at its angle of incidence, diffuse is not (PVWatts v5).
pub fn transmitted_poa(poa_beam: f64, poa_diffuse: f64, aoi_deg: f64) -> f64 {
    poa_beam * iam_physical(aoi_deg) + poa_diffuse
}

/// PVWatts DC power (W) before system losses: `g_tr` W/m², `cell_c` °C,
/// `pdc0_w` nameplate DC W, `gamma` 1/°C.
pub fn dc_power(g_tr: f64, cell_c: f64, pdc0_w: f64, gamma: f64) -> f64 {
    g_tr / 1000.0 * pdc0_w * (1.0 + gamma * (cell_c - 25.0))
}

/// PVWatts v5 inverter: AC power (W) from DC (W), AC rating `pac0_w` and
/// nominal efficiency `eta_nom`.
pub fn inverter(pdc_w: f64, pac0_w: f64, eta_nom: f64) -> f64 {
    if pdc_w <= 0.0 || pac0_w <= 0.0 {
        return 0.0;
    }
    let pdc0 = pac0_w / eta_nom;
    let zeta = pdc_w / pdc0;
    let eta = eta_nom / 0.9637 * (-0.0162 * zeta - 0.0059 / zeta + 0.9858);
    (eta * pdc_w).clamp(0.0, pac0_w)
}

/// SAPM cell temperature (King et al. 2004): `poa` W/m², `temp_air` °C,
/// `wind` m/s, parameters a, b, ΔT. Open rack glass/polymer: −3.56, −0.075, 3.
pub fn sapm_cell(poa: f64, temp_air: f64, wind: f64, a: f64, b: f64, delta_t: f64) -> f64 {
    let module = poa * (a + b * wind).exp() + temp_air;
    module + poa / 1000.0 * delta_t
}

/// Fuentes (1987) parameters derived once from the installed NOCT.
#[derive(Debug, Clone, Copy)]
pub struct Fuentes {
    convrat: f64,
    tgrat: f64,
    cap: f64,
    xlen: f64,
    /// Module temperature (K) and absorbed irradiance of the previous step.
    tmod0: f64,
    sun0: f64,
}

const BOLTZ: f64 = 5.669e-8;
const EMISS: f64 = 0.84;
const ABSORP: f64 = 0.83;
const FUENTES_TILT_DEG: f64 = 30.0;
const MODULE_HEIGHT_M: f64 = 5.0;
const WIND_HEIGHT_M: f64 = 9.144;

fn fuentes_hconv(tave: f64, windmod: f64, temp_delta: f64, xlen: f64, check_reynold: bool) -> f64 {
    let densair = 0.003484 * 101325.0 / tave;
    let visair = 0.24237e-6 * tave.powf(0.76) / densair;
    let condair = 2.1695e-4 * tave.powf(0.84);
    let reynold = windmod * xlen / visair;
    let hforce = if check_reynold && reynold > 1.2e5 {
        0.0282 / reynold.powf(0.2) * densair * windmod * 1007.0 / 0.71f64.powf(0.4)
    } else {
        0.8600 / reynold.powf(0.5) * densair * windmod * 1007.0 / 0.71f64.powf(0.67)
    };
    let grashof = 9.8 / tave * temp_delta * xlen.powi(3) / visair.powi(2)
        * FUENTES_TILT_DEG.to_radians().sin();
    let hfree = 0.21 * (grashof * 0.71).powf(0.32) * condair / xlen;
    (hfree.powi(3) + hforce.powi(3)).cbrt()
}

impl Fuentes {
    /// Model for an installed NOCT in °C (PVWatts: 45 open rack, 49 roof).
    pub fn new(noct_installed_c: f64) -> Self {
        let (w, l) = (0.31579, 1.2);
        let xlen = 2.0 * (w * l) / (w + l);
        let tinoct = noct_installed_c + 273.15;
        let tave = (tinoct + 293.15) / 2.0;
        let hconv = fuentes_hconv(tave, 1.0, tinoct - 293.15, xlen, false);
        let hground = EMISS * BOLTZ * (tinoct.powi(2) + 293.15f64.powi(2)) * (tinoct + 293.15);
        let backrat = (ABSORP * 800.0
            - EMISS * BOLTZ * (tinoct.powi(4) - 282.21f64.powi(4))
            - hconv * (tinoct - 293.15))
            / ((hground + hconv) * (tinoct - 293.15));
        let tground = (tinoct.powi(4) - backrat * (tinoct.powi(4) - 293.15f64.powi(4)))
            .powf(0.25)
            .clamp(293.15, tinoct);
        let tgrat = (tground - 293.15) / (tinoct - 293.15);
        let convrat = (ABSORP * 800.0
            - EMISS * BOLTZ * (2.0 * tinoct.powi(4) - 282.21f64.powi(4) - tground.powi(4)))
            / (hconv * (tinoct - 293.15));
        let mut cap = 11000.0;
        if tinoct > 321.15 {
            cap *= 1.0 + (tinoct - 321.15) / 12.0;
        }
        Fuentes {
            convrat,
            tgrat,
            cap,
            xlen,
            tmod0: 293.15,
            sun0: 0.0,
        }
    }

    /// Sets the state as if the previous step ended at `cell_c` under `poa`.
    pub fn with_state(mut self, cell_c: f64, poa: f64) -> Self {
        self.tmod0 = cell_c + 273.15;
        self.sun0 = poa * ABSORP;
        self
    }

    /// One step of `dt_h` hours ending with `poa` W/m², `temp_air` °C and
    /// `wind` m/s (measured at 9.144 m); returns the cell temperature (°C)
    /// and keeps it as the next step's start.
    pub fn step(&mut self, poa: f64, temp_air: f64, wind: f64, dt_h: f64) -> f64 {
        let tamb = temp_air + 273.15;
        let sun = poa.max(0.0) * ABSORP;
        let tsky = 0.68 * (0.0552 * tamb.powf(1.5)) + 0.32 * tamb;
        let windmod = wind.max(0.0) * (MODULE_HEIGHT_M / WIND_HEIGHT_M).powf(0.2) + 1e-4;
        let mut tmod = self.tmod0;
        for _ in 0..10 {
            let tave = (tmod + tamb) / 2.0;
            let hconv =
                self.convrat * fuentes_hconv(tave, windmod, (tmod - tamb).abs(), self.xlen, true);
            let hsky = EMISS * BOLTZ * (tmod.powi(2) + tsky.powi(2)) * (tmod + tsky);
            let tground = tamb + self.tgrat * (tmod - tamb);
            let hground = EMISS * BOLTZ * (tmod.powi(2) + tground.powi(2)) * (tmod + tground);
            let h = hconv + hsky + hground;
            let eigen = -h / self.cap * dt_h * 3600.0;
            let ex = if eigen > -10.0 { eigen.exp() } else { 0.0 };
            tmod = self.tmod0 * ex
                + ((1.0 - ex)
                    * (hconv * tamb
                        + hsky * tsky
                        + hground * tground
                        + self.sun0
                        + (sun - self.sun0) / eigen)
                    + sun
                    - self.sun0)
                    / h;
        }
        self.tmod0 = tmod;
        self.sun0 = sun;
        tmod - 273.15
    }
}

/// Steady-state Fuentes cell temperature (°C): the module has been under
/// these conditions long enough that its thermal mass no longer matters.
pub fn fuentes_steady(noct_installed_c: f64, poa: f64, temp_air: f64, wind: f64) -> f64 {
    let mut m = Fuentes::new(noct_installed_c).with_state(temp_air, poa);
    // Three long steps from ambient converge to the fixed point.
    let mut t = 0.0;
    for _ in 0..3 {
        t = m.step(poa, temp_air, wind, 1000.0);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_pvlib() {
        // pvlib test_pvwatts_losses_default: 14.075660688264469.
        assert!((combined_losses_pct(&DEFAULT_LOSSES_PCT) - 14.075660688264469).abs() < 1e-9);
    }

    #[test]
    fn dc_pvlib() {
        // pvlib test_pvwatts_dc_scalars: pvwatts_dc(900, 30, 100, -0.003) = 88.65.
        assert!((dc_power(900.0, 30.0, 100.0, -0.003) - 88.65).abs() < 1e-9);
    }

    #[test]
    fn inverter_pvlib() {
        // pvlib tests/test_inverter.py test_pvwatts_scalars: pdc0 = 100 (DC
        // input rating), eta 0.95, so Pac0 = 95.
        assert!((inverter(90.0, 95.0, 0.95) - 85.58556604752516).abs() < 1e-9);
        assert!((inverter(50.0, 95.0, 0.95) - 47.60843624).abs() < 1e-7);
        assert!((inverter(100.0, 95.0, 0.95) - 95.0).abs() < 1e-9);
        assert_eq!(inverter(0.0, 95.0, 0.95), 0.0);
        assert_eq!(inverter(-5.0, 95.0, 0.95), 0.0);
    }

    #[test]
    fn iam_pvlib() {
        // pvlib tests/test_iam.py test_physical (n 1.526, L 0.002, K 4).
        for (aoi, want) in [
            (0.0, 1.0),
            (22.5, 0.99926198),
            (45.0, 0.98797788),
            (67.5, 0.8893998),
            (90.0, 0.0),
        ] {
            assert!(
                (iam_physical(aoi) - want).abs() < 1e-7,
                "{aoi}: {}",
                iam_physical(aoi)
            );
        }
    }

    #[test]
    fn sapm_pvlib() {
        // pvlib test_sapm_cell: sapm_cell(900, 20, 5, -3.47, -0.0594, 3) = 43.509.
        assert!((sapm_cell(900.0, 20.0, 5.0, -3.47, -0.0594, 3.0) - 43.509).abs() < 1e-3);
    }

    #[test]
    fn fuentes_pvlib() {
        // pvlib test_fuentes_timezone: 1000 W/m², 20 °C, 1 m/s, INOCT 45,
        // hourly from 20 °C: [48.042, 51.845, 51.846].
        let mut m = Fuentes::new(45.0);
        for want in [48.042, 51.845, 51.846] {
            let got = m.step(1000.0, 20.0, 1.0, 1.0);
            assert!((got - want).abs() < 5e-4, "{got} vs {want}");
        }
        assert!((fuentes_steady(45.0, 1000.0, 20.0, 1.0) - 51.846).abs() < 1e-3);
        // Roof mount runs hotter.
        assert!(fuentes_steady(49.0, 1000.0, 20.0, 1.0) > 55.0);
    }
}
