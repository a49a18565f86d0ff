//! Synthetic weather for the digital twin (no network): clear-sky GHI,
//! a cloud factor, and a split of GHI into DNI and DHI.
//!
//! - Clear sky: Haurwitz (1945, 1946), `GHI = 1098 · cos z · exp(−0.059/cos z)`,
//!   as pvlib `clearsky.haurwitz` (apparent zenith).
//! - Clouds: Kasten & Czeplak (1980), "Solar and terrestrial radiation
//!   dependent on the amount and type of cloud", Solar Energy 24, 177–189:
//!   `GHI = GHI_clear · (1 − 0.75 · C^3.4)`, C the cloud fraction (0..1).
//! - Decomposition: Erbs, Klein & Duffie (1982), "Estimation of the diffuse
//!   radiation fraction for hourly, daily and monthly-average global
//!   radiation", Solar Energy 28(4), 293–302, as pvlib `irradiance.erbs`
//!   (clearness index with cos z floored at 0.065 and capped at 1; DNI = 0
//!   beyond 87° zenith).

use super::sun;

/// Irradiance components, W/m².
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Irradiance {
    /// Global horizontal.
    pub ghi: f64,
    /// Direct normal.
    pub dni: f64,
    /// Diffuse horizontal.
    pub dhi: f64,
}

/// Haurwitz clear-sky GHI (W/m²) for an apparent zenith in degrees.
pub fn haurwitz(zenith_deg: f64) -> f64 {
    let cz = zenith_deg.to_radians().cos();
    if cz <= 0.0 {
        return 0.0;
    }
    1098.0 * cz * (-0.059 / cz).exp()
}

/// Kasten & Czeplak cloud factor applied to a clear-sky GHI.
pub fn cloudy_ghi(ghi_clear: f64, cloud_fraction: f64) -> f64 {
    let c = cloud_fraction.clamp(0.0, 1.0);
    ghi_clear * (1.0 - 0.75 * c.powf(3.4))
}

/// Erbs decomposition of GHI into DNI and DHI, given the zenith (degrees)
/// and the extraterrestrial normal irradiance.
pub fn erbs(ghi: f64, zenith_deg: f64, dni_extra: f64) -> Irradiance {
    let ghi = ghi.max(0.0);
    let cz = zenith_deg.to_radians().cos();
    let kt = (ghi / (dni_extra * cz.max(0.065))).clamp(0.0, 1.0);
    let df = if kt <= 0.22 {
        1.0 - 0.09 * kt
    } else if kt <= 0.8 {
        0.9511 - 0.1604 * kt + 4.388 * kt.powi(2) - 16.638 * kt.powi(3) + 12.336 * kt.powi(4)
    } else {
        0.165
    };
    let dhi = df * ghi;
    let dni = (ghi - dhi) / cz;
    if zenith_deg > 87.0 || dni.is_nan() || dni < 0.0 {
        return Irradiance {
            ghi,
            dni: 0.0,
            dhi: ghi,
        };
    }
    Irradiance { ghi, dni, dhi }
}

/// Synthetic weather at `t_ms` (UTC ms) for a site: Haurwitz clear sky,
/// Kasten-Czeplak clouds (`cloud_fraction` 0..1), Erbs split.
pub fn weather(t_ms: i64, lat: f64, lon: f64, cloud_fraction: f64) -> Irradiance {
    let s = sun::position(t_ms, lat, lon);
    let ghi = cloudy_ghi(haurwitz(s.zenith_deg), cloud_fraction);
    erbs(
        ghi,
        s.zenith_deg,
        sun::extra_radiation(sun::day_of_year(t_ms)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solar::sun::{extra_radiation, utc_ms};

    #[test]
    fn haurwitz_pvlib() {
        // pvlib tests/test_clearsky.py test_haurwitz (apparent elevation -> GHI).
        for (elev, want) in [
            (-20.0, 0.0),
            (-0.05, 0.0),
            (5.0, 48.6298687941956),
            (10.0, 135.741748091813),
            (30.0, 487.894132885425),
            (50.0, 778.766689344363),
            (90.0, 1035.09203253450),
        ] {
            let got = haurwitz(90.0 - elev);
            assert!((got - want).abs() < 1e-6, "{elev}: {got} vs {want}");
        }
    }

    #[test]
    fn erbs_pvlib() {
        // pvlib test_erbs (rounded to integers there): ghi/zenith/date ->
        // dni, dhi.
        let cases = [
            (0.0, 120.0, utc_ms(2019, 1, 1, 0, 0, 0), 0.0, 0.0),
            (
                50.0,
                85.0,
                utc_ms(2019, 1, 1, 0, 0, 0),
                96.7192672,
                41.5703604,
            ),
            (
                1000.0,
                10.0,
                utc_ms(2019, 1, 1, 0, 0, 0),
                794.205651,
                217.860117,
            ),
            (
                1000.0,
                10.0,
                utc_ms(2019, 6, 20, 0, 0, 0),
                842.001578,
                170.790318,
            ),
        ];
        for (ghi, z, t, dni, dhi) in cases {
            let got = erbs(ghi, z, extra_radiation(sun::day_of_year(t)));
            assert!(
                (got.dni - dni).abs() < 0.5 && (got.dhi - dhi).abs() < 0.5,
                "{got:?} vs {dni} {dhi}"
            );
        }
    }

    #[test]
    fn cloud_factor_and_weather() {
        assert_eq!(cloudy_ghi(800.0, 0.0), 800.0);
        assert!((cloudy_ghi(800.0, 1.0) - 200.0).abs() < 1e-9);
        // Paris, 2026-06-21 11:50 UTC (near solar noon): high sun, clear.
        let t = utc_ms(2026, 6, 21, 11, 50, 0);
        let clear = weather(t, 48.85, 2.35, 0.0);
        assert!(clear.ghi > 800.0 && clear.dni > 600.0, "{clear:?}");
        let z = sun::position(t, 48.85, 2.35).zenith_deg;
        // Closure GHI = DNI cos z + DHI.
        assert!((clear.dni * z.to_radians().cos() + clear.dhi - clear.ghi).abs() < 1e-6);
        let overcast = weather(t, 48.85, 2.35, 1.0);
        assert!(
            overcast.ghi < 0.3 * clear.ghi && overcast.dni < 0.2 * clear.dni,
            "{overcast:?}"
        );
        // Night.
        let night = weather(utc_ms(2026, 6, 21, 23, 0, 0), 48.85, 2.35, 0.0);
        assert_eq!(night, Irradiance::default());
    }
}
