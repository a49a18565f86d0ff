//! Plane-of-array irradiance: angle of incidence, sky diffuse (Perez 1990,
//! with isotropic and Hay-Davies for comparison) and ground-reflected.
//!
//! Follows pvlib-python `pvlib/irradiance.py` (`aoi_projection`, `perez`,
//! `isotropic`, `haydavies`, `get_ground_diffuse`) and
//! `pvlib/atmosphere.py` (`kastenyoung1989` airmass):
//! - Perez, Ineichen, Seals, Michalsky, Stewart (1990), "Modeling daylight
//!   availability and irradiance components from direct and global
//!   irradiance", Solar Energy 44(5), 271–289: the `allsitescomposite1990`
//!   coefficient table, 8 clearness bins, κ = 1.041 (zenith in radians).
//! - Kasten & Young (1989), relative airmass from the apparent zenith.
//! - Liu & Jordan isotropic sky; Hay & Davies (1980).
//! - Ground reflection `GHI·ρ·(1 − cos β)/2`, ρ = 0.2 by default (Open-Meteo's
//!   GTI also assumes 20 %).
//!
//! PVWatts v5 (Dobos 2014) uses Perez 1990; isotropic is what Open-Meteo's
//! own `global_tilted_irradiance` uses.

use super::sun::SunPosition;

fn cosd(d: f64) -> f64 {
    d.to_radians().cos()
}
fn sind(d: f64) -> f64 {
    d.to_radians().sin()
}

/// Cosine of the angle of incidence of the sun's beam on a surface (may be
/// negative: sun behind the plane). Azimuths are degrees from north.
pub fn aoi_projection(
    tilt_deg: f64,
    surface_azimuth_deg: f64,
    zenith_deg: f64,
    sun_azimuth_deg: f64,
) -> f64 {
    (cosd(zenith_deg) * cosd(tilt_deg)
        + sind(zenith_deg) * sind(tilt_deg) * cosd(sun_azimuth_deg - surface_azimuth_deg))
    .clamp(-1.0, 1.0)
}

/// Angle of incidence in degrees (0..=180).
pub fn aoi_deg(
    tilt_deg: f64,
    surface_azimuth_deg: f64,
    zenith_deg: f64,
    sun_azimuth_deg: f64,
) -> f64 {
    aoi_projection(tilt_deg, surface_azimuth_deg, zenith_deg, sun_azimuth_deg)
        .acos()
        .to_degrees()
}

/// Kasten & Young (1989) relative airmass for an apparent zenith in degrees;
/// `None` with the sun at or below the horizon.
pub fn airmass_kasten_young(zenith_deg: f64) -> Option<f64> {
    if !(0.0..90.0).contains(&zenith_deg) {
        return None;
    }
    Some(1.0 / (cosd(zenith_deg) + 0.50572 * (96.07995 - zenith_deg).powf(-1.6364)))
}

/// Liu-Jordan isotropic sky diffuse on the plane.
pub fn isotropic(tilt_deg: f64, dhi: f64) -> f64 {
    dhi * (1.0 + cosd(tilt_deg)) / 2.0
}

/// Hay-Davies sky diffuse on the plane (pvlib `haydavies`, projection ratio
/// with cos z floored at cos 85°).
pub fn hay_davies(
    tilt_deg: f64,
    surface_azimuth_deg: f64,
    dhi: f64,
    dni: f64,
    dni_extra: f64,
    sun: &SunPosition,
) -> f64 {
    let a = aoi_projection(
        tilt_deg,
        surface_azimuth_deg,
        sun.zenith_deg,
        sun.azimuth_deg,
    )
    .max(0.0);
    let b = cosd(sun.zenith_deg).max(cosd(85.0));
    let ai = dni / dni_extra;
    (dhi * (ai * a / b + (1.0 - ai) * (1.0 + cosd(tilt_deg)) / 2.0)).max(0.0)
}

/// Perez 1990 `allsitescomposite1990` F1 (f11, f12, f13) and F2 (f21, f22,
/// f23) per clearness bin (pvlib `_get_perez_coefficients`).
const PEREZ_1990: [[f64; 6]; 8] = [
    [-0.0080, 0.5880, -0.0620, -0.0600, 0.0720, -0.0220],
    [0.1300, 0.6830, -0.1510, -0.0190, 0.0660, -0.0290],
    [0.3300, 0.4870, -0.2210, 0.0550, -0.0640, -0.0260],
    [0.5680, 0.1870, -0.2950, 0.1090, -0.1520, -0.0140],
    [0.8730, -0.3920, -0.3620, 0.2260, -0.4620, 0.0010],
    [1.1320, -1.2370, -0.4120, 0.2880, -0.8230, 0.0560],
    [1.0600, -1.6000, -0.3590, 0.2640, -1.1270, 0.1310],
    [0.6780, -0.3270, -0.2500, 0.1560, -1.3770, 0.2510],
];
const PEREZ_EDGES: [f64; 7] = [1.065, 1.23, 1.5, 1.95, 2.8, 4.5, 6.2];

/// Perez 1990 sky diffuse on the plane (W/m²). `airmass` is the relative
/// (not pressure-corrected) airmass; `None` (sun down) gives 0, as pvlib.
#[allow(clippy::too_many_arguments)]
pub fn perez(
    tilt_deg: f64,
    surface_azimuth_deg: f64,
    dhi: f64,
    dni: f64,
    dni_extra: f64,
    zenith_deg: f64,
    sun_azimuth_deg: f64,
    airmass: Option<f64>,
) -> f64 {
    let Some(am) = airmass else { return 0.0 };
    if dhi <= 0.0 {
        return 0.0;
    }
    let kappa = 1.041;
    let z = zenith_deg.to_radians();
    let delta = dhi * am / dni_extra;
    let eps = ((dhi + dni) / dhi + kappa * z.powi(3)) / (1.0 + kappa * z.powi(3));
    let bin = PEREZ_EDGES.iter().take_while(|&&edge| eps >= edge).count();
    let c = PEREZ_1990[bin];
    let f1 = (c[0] + c[1] * delta + c[2] * z).max(0.0);
    let f2 = c[3] + c[4] * delta + c[5] * z;
    let a = aoi_projection(tilt_deg, surface_azimuth_deg, zenith_deg, sun_azimuth_deg).max(0.0);
    let b = cosd(zenith_deg).max(cosd(85.0));
    let term1 = 0.5 * (1.0 - f1) * (1.0 + cosd(tilt_deg));
    let term2 = f1 * a / b;
    let term3 = f2 * sind(tilt_deg);
    (dhi * (term1 + term2 + term3)).max(0.0)
}

/// Ground-reflected irradiance on the plane.
pub fn ground_diffuse(tilt_deg: f64, ghi: f64, albedo: f64) -> f64 {
    ghi * albedo * (1.0 - cosd(tilt_deg)) / 2.0
}

/// Which sky-diffuse model to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkyModel {
    Isotropic,
    HayDavies,
    Perez1990,
}

/// Plane-of-array irradiance components, W/m².
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Poa {
    pub beam: f64,
    pub sky_diffuse: f64,
    pub ground_diffuse: f64,
    /// Cosine of the angle of incidence (clamped at 0 when behind the plane).
    pub cos_aoi: f64,
}

impl Poa {
    pub fn global(&self) -> f64 {
        self.beam + self.sky_diffuse + self.ground_diffuse
    }
    /// Angle of incidence, degrees.
    pub fn aoi_deg(&self) -> f64 {
        self.cos_aoi.clamp(-1.0, 1.0).acos().to_degrees()
    }
}

/// Plane-of-array irradiance for a surface from GHI/DNI/DHI and the sun.
/// With the sun below the horizon (a dawn/dusk interval whose middle is
/// still dark) there is no beam and the sky is taken as isotropic.
#[allow(clippy::too_many_arguments)]
pub fn poa(
    model: SkyModel,
    tilt_deg: f64,
    surface_azimuth_deg: f64,
    sun: &SunPosition,
    dni_extra: f64,
    ghi: f64,
    dni: f64,
    dhi: f64,
    albedo: f64,
) -> Poa {
    let (ghi, dni, dhi) = (ghi.max(0.0), dni.max(0.0), dhi.max(0.0));
    let ground = ground_diffuse(tilt_deg, ghi, albedo);
    if sun.zenith_deg >= 90.0 {
        return Poa {
            beam: 0.0,
            sky_diffuse: isotropic(tilt_deg, dhi),
            ground_diffuse: ground,
            cos_aoi: 0.0,
        };
    }
    let cos_aoi = aoi_projection(
        tilt_deg,
        surface_azimuth_deg,
        sun.zenith_deg,
        sun.azimuth_deg,
    )
    .max(0.0);
    let sky = match model {
        SkyModel::Isotropic => isotropic(tilt_deg, dhi),
        SkyModel::HayDavies => hay_davies(tilt_deg, surface_azimuth_deg, dhi, dni, dni_extra, sun),
        SkyModel::Perez1990 => perez(
            tilt_deg,
            surface_azimuth_deg,
            dhi,
            dni,
            dni_extra,
            sun.zenith_deg,
            sun.azimuth_deg,
            airmass_kasten_young(sun.zenith_deg),
        ),
    };
    Poa {
        beam: dni * cos_aoi,
        sky_diffuse: sky,
        ground_diffuse: ground,
        cos_aoi,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // pvlib tests/test_irradiance.py fixtures (Tucson 32.2/−111, 2014-06-24,
    // 6-hourly): irrad_data (ghi, dni, dhi), ephem_data (apparent zenith,
    // azimuth), dni_et, relative_airmass.
    const DNI_ET: f64 = 1321.1655834833093;
    const ROWS: [(f64, f64, f64, f64, f64, f64); 3] = [
        // ghi, dni, dhi, apparent zenith, azimuth, airmass
        (
            79.73860422,
            316.1949056,
            40.46149818,
            82.85457044,
            66.71410338,
            7.58831596,
        ),
        (
            1042.48031487,
            939.95469881,
            118.45831879,
            10.56413562,
            144.76567754,
            1.01688136,
        ),
        (
            257.20751138,
            646.22886049,
            62.03376265,
            72.41687122,
            287.04104128,
            3.27930443,
        ),
    ];

    fn sun(z: f64, az: f64) -> SunPosition {
        SunPosition {
            zenith_deg: z,
            true_zenith_deg: z,
            azimuth_deg: az,
            declination_deg: 0.0,
            equation_of_time_min: 0.0,
        }
    }

    #[test]
    fn isotropic_pvlib() {
        // pvlib test_isotropic_float: isotropic(40, 100) = 88.30222.
        assert!((isotropic(40.0, 100.0) - 88.30222).abs() < 1e-4);
    }

    #[test]
    fn kasten_young_pvlib_fixture() {
        for (_, _, _, z, _, am) in ROWS {
            let got = airmass_kasten_young(z).unwrap();
            assert!((got - am).abs() < 1e-4, "z {z}: {got} vs {am}");
        }
        assert_eq!(airmass_kasten_young(124.0), None);
    }

    #[test]
    fn perez_pvlib() {
        // pvlib test_perez: perez(40, 180, ...) = [0, 31.46046871, nan, 45.45539877]
        // (row 3 has DNI set to nan in the test; row 1 is night).
        let expected = [(0usize, 31.46046871), (2, 45.45539877)];
        for (i, want) in expected {
            let (_, dni, dhi, z, az, am) = ROWS[i];
            let got = perez(40.0, 180.0, dhi, dni, DNI_ET, z, az, Some(am));
            // pvlib checks these to 2 decimals (check_less_precise=2).
            assert!((got - want).abs() < 5e-3, "row {i}: {got} vs {want}");
        }
        assert_eq!(
            perez(40.0, 180.0, 10.0, 0.0, DNI_ET, 124.0, 352.0, None),
            0.0
        );
    }

    #[test]
    fn hay_davies_pvlib() {
        // pvlib test_haydavies: [0, 27.1775, 102.9949, 33.1909].
        let expected = [27.1775, 102.9949, 33.1909];
        for (i, want) in expected.into_iter().enumerate() {
            let (_, dni, dhi, z, az, _) = ROWS[i];
            let got = hay_davies(40.0, 180.0, dhi, dni, DNI_ET, &sun(z, az));
            assert!((got - want).abs() < 1e-3, "row {i}: {got} vs {want}");
        }
    }

    #[test]
    fn aoi_and_poa_components() {
        // Sun in the plane's normal: cos aoi = 1.
        assert!((aoi_projection(30.0, 180.0, 30.0, 180.0) - 1.0).abs() < 1e-12);
        // Sun behind a south-facing vertical plane.
        assert!(aoi_projection(90.0, 180.0, 45.0, 0.0) < 0.0);
        assert!((aoi_deg(0.0, 180.0, 60.0, 90.0) - 60.0).abs() < 1e-9);
        let (ghi, dni, dhi, z, az, _) = ROWS[1];
        let p = poa(
            SkyModel::Perez1990,
            40.0,
            180.0,
            &sun(z, az),
            DNI_ET,
            ghi,
            dni,
            dhi,
            0.2,
        );
        let want_ground = ghi * 0.2 * (1.0 - 40f64.to_radians().cos()) / 2.0;
        assert!((p.ground_diffuse - want_ground).abs() < 1e-9);
        assert!((p.beam - dni * aoi_projection(40.0, 180.0, z, az)).abs() < 1e-9);
        let iso = poa(
            SkyModel::Isotropic,
            40.0,
            180.0,
            &sun(z, az),
            DNI_ET,
            ghi,
            dni,
            dhi,
            0.2,
        );
        // Clear noon sky: Perez puts circumsolar light on the plane, more than isotropic.
        assert!(p.sky_diffuse > iso.sky_diffuse * 1.02, "{p:?} {iso:?}");
        // Sun below the horizon: no beam, isotropic sky.
        let night = poa(
            SkyModel::Perez1990,
            40.0,
            180.0,
            &sun(95.0, 80.0),
            DNI_ET,
            5.0,
            0.0,
            5.0,
            0.2,
        );
        assert_eq!(night.beam, 0.0);
        assert!((night.sky_diffuse - isotropic(40.0, 5.0)).abs() < 1e-12);
    }
}
