//! Solar position for a UTC instant and a site.
//!
//! Follows the NOAA Solar Calculator spreadsheet equations (NOAA Global
//! Monitoring Laboratory, "General Solar Position Calculations" / the
//! `NOAA_Solar_Calculations_day.xls` sheet, itself from Meeus, *Astronomical
//! Algorithms*, 1991): geometric mean longitude and anomaly of the sun in
//! Julian centuries, apparent longitude, obliquity with nutation, declination,
//! equation of time, hour angle, then zenith and azimuth, plus NOAA's
//! atmospheric refraction approximation (standard pressure and temperature).
//!
//! Accuracy: against the NREL SPA reference case (Reda & Andreas 2004, the
//! case pvlib `tests/test_spa.py` uses) it is within 0.01° in zenith and
//! azimuth (test `tests::spa_reference`, asserted at 0.05°; measured
//! −0.003° zenith, +0.002° azimuth). It ignores ΔT (UT stands in for TT in
//! the sun's orbital terms: 67 s of orbit is < 0.001°; the hour angle uses
//! UT, as it should), parallax (< 0.003°) and the site's pressure
//! (refraction at 820 mbar vs 1010 mbar differs by ~0.004° at 50° zenith).
//!
//! Extraterrestrial normal irradiance uses Spencer (1971) as pvlib
//! `irradiance.get_extra_radiation(method="spencer")`, solar constant
//! 1366.1 W/m².

use std::f64::consts::PI;

/// The sun seen from a site.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SunPosition {
    /// Apparent (refraction-corrected) zenith angle, degrees.
    pub zenith_deg: f64,
    /// Geometric zenith angle (no refraction), degrees.
    pub true_zenith_deg: f64,
    /// Azimuth, degrees clockwise from north (180 = south).
    pub azimuth_deg: f64,
    /// Declination, degrees.
    pub declination_deg: f64,
    /// Equation of time, minutes.
    pub equation_of_time_min: f64,
}

impl SunPosition {
    /// Apparent elevation above the horizon, degrees.
    pub fn elevation_deg(&self) -> f64 {
        90.0 - self.zenith_deg
    }
}

fn rad(d: f64) -> f64 {
    d.to_radians()
}

/// Solar position at `t_ms` (Unix milliseconds, UTC) for `lat`/`lon` in
/// degrees (north and east positive).
pub fn position(t_ms: i64, lat: f64, lon: f64) -> SunPosition {
    let jd = t_ms as f64 / 86_400_000.0 + 2_440_587.5;
    let t = (jd - 2_451_545.0) / 36_525.0;
    let l0 = (280.46646 + t * (36000.76983 + t * 0.0003032)).rem_euclid(360.0);
    let m = 357.52911 + t * (35999.05029 - 0.0001537 * t);
    let e = 0.016708634 - t * (0.000042037 + 0.0000001267 * t);
    let c = rad(m).sin() * (1.914602 - t * (0.004817 + 0.000014 * t))
        + rad(2.0 * m).sin() * (0.019993 - 0.000101 * t)
        + rad(3.0 * m).sin() * 0.000289;
    let true_long = l0 + c;
    let omega = 125.04 - 1934.136 * t;
    let app_long = true_long - 0.00569 - 0.00478 * rad(omega).sin();
    let eps0 = 23.0 + (26.0 + (21.448 - t * (46.815 + t * (0.00059 - t * 0.001813))) / 60.0) / 60.0;
    let eps = eps0 + 0.00256 * rad(omega).cos();
    let decl = (rad(eps).sin() * rad(app_long).sin()).asin();
    let y = (rad(eps) / 2.0).tan().powi(2);
    let (l0r, mr) = (rad(l0), rad(m));
    let eot = 4.0
        * (y * (2.0 * l0r).sin() - 2.0 * e * mr.sin() + 4.0 * e * y * mr.sin() * (2.0 * l0r).cos()
            - 0.5 * y * y * (4.0 * l0r).sin()
            - 1.25 * e * e * (2.0 * mr).sin())
        .to_degrees();
    let minutes_of_day = (t_ms.rem_euclid(86_400_000)) as f64 / 60_000.0;
    let tst = minutes_of_day + eot + 4.0 * lon;
    let ha = rad(tst / 4.0 - 180.0);
    let latr = rad(lat);
    let cos_z = (latr.sin() * decl.sin() + latr.cos() * decl.cos() * ha.cos()).clamp(-1.0, 1.0);
    let true_zenith = cos_z.acos().to_degrees();
    let az = (ha
        .sin()
        .atan2(ha.cos() * latr.sin() - decl.tan() * latr.cos())
        .to_degrees()
        + 180.0)
        .rem_euclid(360.0);
    let elev = 90.0 - true_zenith;
    SunPosition {
        zenith_deg: true_zenith - refraction_deg(elev),
        true_zenith_deg: true_zenith,
        azimuth_deg: az,
        declination_deg: decl.to_degrees(),
        equation_of_time_min: eot,
    }
}

/// NOAA's approximate atmospheric refraction (degrees) for a geometric
/// elevation in degrees.
pub fn refraction_deg(elev: f64) -> f64 {
    let arcsec = if elev > 85.0 {
        0.0
    } else if elev > 5.0 {
        let te = rad(elev).tan();
        58.1 / te - 0.07 / te.powi(3) + 0.000086 / te.powi(5)
    } else if elev > -0.575 {
        1735.0 + elev * (-518.2 + elev * (103.4 + elev * (-12.79 + elev * 0.711)))
    } else {
        -20.772 / rad(elev).tan()
    };
    arcsec / 3600.0
}

/// Day of year (1..=366) of a UTC instant.
pub fn day_of_year(t_ms: i64) -> u32 {
    let days = t_ms.div_euclid(86_400_000);
    // Civil-from-days (H. Hinnant), then ordinal day.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy_mar = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_mar + 2) / 153;
    let d = doy_mar - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    const CUM: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let extra = if leap && m > 2 { 1 } else { 0 };
    (CUM[(m - 1) as usize] + d + extra) as u32
}

/// Extraterrestrial normal irradiance (W/m²) on a day of year, Spencer
/// (1971) with solar constant 1366.1 W/m² (pvlib's default method).
pub fn extra_radiation(doy: u32) -> f64 {
    let b = 2.0 * PI * (doy as f64 - 1.0) / 365.0;
    1366.1
        * (1.00011
            + 0.034221 * b.cos()
            + 0.00128 * b.sin()
            + 0.000719 * (2.0 * b).cos()
            + 0.000077 * (2.0 * b).sin())
}

/// Unix milliseconds of a UTC civil date-time (proleptic Gregorian).
pub fn utc_ms(year: i64, month: u32, day: u32, h: u32, min: u32, s: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + h as i64) * 60 + min as i64) * 60_000 + s as i64 * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NREL SPA reference case (Reda & Andreas 2004, Table A5.1; pvlib
    /// `tests/test_spa.py`): 2003-10-17 12:30:30 MST (UTC−7), lat 39.742476,
    /// lon −105.1786 → zenith 50.11162°, azimuth 194.340241°.
    #[test]
    fn spa_reference() {
        let t = utc_ms(2003, 10, 17, 19, 30, 30);
        let s = position(t, 39.742476, -105.1786);
        println!(
            "SPA case: zenith error {:+.4}°, azimuth error {:+.4}°",
            s.zenith_deg - 50.11162,
            s.azimuth_deg - 194.340241
        );
        assert!(
            (s.zenith_deg - 50.11162).abs() < 0.05,
            "zenith {}",
            s.zenith_deg
        );
        assert!(
            (s.azimuth_deg - 194.340241).abs() < 0.05,
            "azimuth {}",
            s.azimuth_deg
        );
    }

    /// pvlib `tests/test_irradiance.py` fixture `ephem_data` (Tucson 32.2/−111,
    /// 2014-06-24 12:00 and 18:00 MST): apparent zenith 10.56413562 and
    /// 72.41687122, azimuth 144.76567754 and 287.04104128. pvlib built these
    /// with its SPA at 700 m; within 0.05°.
    #[test]
    fn pvlib_ephem_fixture() {
        let noon = position(utc_ms(2014, 6, 24, 19, 0, 0), 32.2, -111.0);
        assert!((noon.zenith_deg - 10.56413562).abs() < 0.05, "{noon:?}");
        assert!((noon.azimuth_deg - 144.76567754).abs() < 0.05, "{noon:?}");
        let eve = position(utc_ms(2014, 6, 25, 1, 0, 0), 32.2, -111.0);
        assert!((eve.zenith_deg - 72.41687122).abs() < 0.05, "{eve:?}");
        assert!((eve.azimuth_deg - 287.04104128).abs() < 0.05, "{eve:?}");
        // Night: the sun is below the horizon.
        let night = position(utc_ms(2014, 6, 24, 7, 0, 0), 32.2, -111.0);
        assert!(night.zenith_deg > 90.0);
    }

    #[test]
    fn extra_radiation_spencer() {
        // pvlib tests/test_irradiance.py: 2016-10-26 (doy 300) -> 1383.636203.
        assert!((extra_radiation(300) - 1383.636203).abs() < 0.01);
        assert_eq!(day_of_year(utc_ms(2016, 10, 26, 0, 0, 0)), 300);
        assert_eq!(day_of_year(utc_ms(2019, 12, 31, 23, 0, 0)), 365);
        assert_eq!(day_of_year(utc_ms(2020, 3, 1, 0, 0, 0)), 61);
    }
}
