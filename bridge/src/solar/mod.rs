//! PV production model and PV / base-load forecasts (issue 15 item 1).
//!
//! The chain follows PVWatts v5 (Dobos 2014, NREL/TP-6A20-62641) as
//! implemented and tested in pvlib-python:
//! [`sun`] (NOAA solar position) → [`transpose`] (angle of incidence,
//! Perez 1990 sky diffuse, ground reflection, albedo 0.2) → [`pvwatts`]
//! (beam cover loss, DC with γ = −0.47 %/°C and Fuentes cell temperature,
//! system losses, v5 inverter curve and AC limit). [`clearsky`] makes
//! synthetic irradiance for the digital twin.
//!
//! [`PvArray`] is one array's configuration (`[[solar.arrays]]` in the
//! bridge's file); [`PvArray::ac_power_w`] is its AC output for one
//! interval's irradiance.

pub mod clearsky;
pub mod forecast;
pub mod pvwatts;
pub mod sun;
pub mod transpose;

use serde::{Deserialize, Serialize};

/// How the modules are mounted: sets the Fuentes installed NOCT (PVWatts:
/// open rack 45 °C, roof mount 49 °C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mount {
    #[default]
    Rack,
    Roof,
}

impl Mount {
    pub fn noct_installed_c(self) -> f64 {
        match self {
            Mount::Rack => 45.0,
            Mount::Roof => 49.0,
        }
    }
}

fn default_tilt() -> f64 {
    30.0
}
fn default_azimuth() -> f64 {
    180.0
}
fn default_losses() -> f64 {
    14.08
}
fn default_eta() -> f64 {
    0.96
}
fn default_albedo() -> f64 {
    0.2
}

/// One fixed PV array (PVWatts "Standard" module, fixed mount).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PvArray {
    /// DC nameplate, kW peak.
    pub kwp: f64,
    /// Tilt from horizontal, degrees (0..=90; default 30).
    #[serde(default = "default_tilt")]
    pub tilt_deg: f64,
    /// Azimuth the modules face, degrees clockwise from north (180 = south,
    /// 90 = east; default 180). Open-Meteo's convention (0 = south) is this
    /// minus 180.
    #[serde(default = "default_azimuth")]
    pub azimuth_deg: f64,
    /// Total system losses, percent (PVWatts default 14.08).
    #[serde(default = "default_losses")]
    pub losses_pct: f64,
    /// Inverter AC rating, kW (default `kwp / 1.2`, PVWatts' DC/AC ratio).
    #[serde(default)]
    pub inverter_kw: Option<f64>,
    /// Inverter nominal efficiency, 0..1 (PVWatts default 0.96).
    #[serde(default = "default_eta")]
    pub inverter_efficiency: f64,
    /// Site latitude and longitude, degrees (north, east positive).
    pub lat: f64,
    pub lon: f64,
    /// `rack` (open rack, default) or `roof` (flush roof mount, hotter).
    #[serde(default)]
    pub mount: Mount,
    /// Ground reflectance (default 0.2).
    #[serde(default = "default_albedo")]
    pub albedo: f64,
}

impl PvArray {
    /// An array with PVWatts' defaults for everything but size and site.
    pub fn new(kwp: f64, lat: f64, lon: f64) -> Self {
        PvArray {
            kwp,
            tilt_deg: default_tilt(),
            azimuth_deg: default_azimuth(),
            losses_pct: default_losses(),
            inverter_kw: None,
            inverter_efficiency: default_eta(),
            lat,
            lon,
            mount: Mount::Rack,
            albedo: default_albedo(),
        }
    }

    /// Inverter AC rating in W.
    pub fn inverter_w(&self) -> f64 {
        self.inverter_kw.unwrap_or(self.kwp / 1.2) * 1000.0
    }

    /// Checks every field's range; the error names the key and what was
    /// expected.
    pub fn check(&self) -> Result<(), String> {
        fn range(key: &str, v: f64, lo: f64, hi: f64, what: &str) -> Result<(), String> {
            if v.is_finite() && v >= lo && v <= hi {
                Ok(())
            } else {
                Err(format!("{key} = {v}: expected {what}"))
            }
        }
        if !(self.kwp.is_finite() && self.kwp > 0.0 && self.kwp <= 10_000.0) {
            return Err(format!(
                "kwp = {}: expected a DC size in kW, > 0 and ≤ 10000",
                self.kwp
            ));
        }
        range(
            "tilt_deg",
            self.tilt_deg,
            0.0,
            90.0,
            "degrees from horizontal, 0 to 90",
        )?;
        range(
            "azimuth_deg",
            self.azimuth_deg,
            0.0,
            360.0,
            "degrees clockwise from north, 0 to 360 (180 = south)",
        )?;
        range(
            "losses_pct",
            self.losses_pct,
            0.0,
            99.0,
            "a percentage, 0 to 99 (PVWatts default 14.08)",
        )?;
        if let Some(kw) = self.inverter_kw
            && !(kw.is_finite() && kw > 0.0 && kw <= 10_000.0)
        {
            return Err(format!(
                "inverter_kw = {kw}: expected the inverter's AC rating in kW, > 0"
            ));
        }
        if !(self.inverter_efficiency.is_finite()
            && self.inverter_efficiency > 0.5
            && self.inverter_efficiency <= 1.0)
        {
            return Err(format!(
                "inverter_efficiency = {}: expected a fraction in (0.5, 1], e.g. 0.96 (not a percentage)",
                self.inverter_efficiency
            ));
        }
        range("lat", self.lat, -90.0, 90.0, "degrees north, -90 to 90")?;
        range("lon", self.lon, -180.0, 180.0, "degrees east, -180 to 180")?;
        range(
            "albedo",
            self.albedo,
            0.0,
            1.0,
            "a ground reflectance, 0 to 1",
        )?;
        Ok(())
    }

    /// Plane-of-array irradiance (Perez 1990) with the sun at `t_mid_ms`.
    pub fn poa(
        &self,
        t_mid_ms: i64,
        ghi: f64,
        dni: f64,
        dhi: f64,
    ) -> (sun::SunPosition, transpose::Poa) {
        let s = sun::position(t_mid_ms, self.lat, self.lon);
        let dni_extra = sun::extra_radiation(sun::day_of_year(t_mid_ms));
        let p = transpose::poa(
            transpose::SkyModel::Perez1990,
            self.tilt_deg,
            self.azimuth_deg,
            &s,
            dni_extra,
            clean(ghi),
            clean(dni),
            clean(dhi),
            self.albedo,
        );
        (s, p)
    }

    /// DC power (W, after system losses) from a plane-of-array irradiance
    /// and a cell temperature.
    pub fn dc_power_w(&self, poa: &transpose::Poa, cell_c: f64) -> f64 {
        let g_tr = pvwatts::transmitted_poa(
            poa.beam,
            poa.sky_diffuse + poa.ground_diffuse,
            poa.aoi_deg(),
        );
        let dc = pvwatts::dc_power(g_tr, cell_c, self.kwp * 1000.0, pvwatts::GAMMA_STANDARD);
        (dc * (1.0 - self.losses_pct / 100.0)).max(0.0)
    }

    /// AC power (W) for an interval whose irradiance is `ghi`, `dni`, `dhi`
    /// (W/m², the interval's means), air temperature `temp_c` (°C) and wind
    /// `wind_ms` (m/s at 10 m), with the sun at `t_mid_ms` (UTC ms, the
    /// interval's middle: for Open-Meteo's "preceding hour mean" stamped T,
    /// pass T − 30 min). Cell temperature is steady-state Fuentes (no
    /// thermal lag; see [`pvwatts`]): stateless, within 2 % of PVWatts on
    /// all but a few hours of a year (max 2.7 %); for consecutive intervals
    /// [`PvArray::ac_power_w_dynamic`] follows PVWatts closer. Non-finite or negative inputs count
    /// as 0 W/m² (and 20 °C, 0 m/s).
    pub fn ac_power_w(
        &self,
        t_mid_ms: i64,
        ghi: f64,
        dni: f64,
        dhi: f64,
        temp_c: f64,
        wind_ms: f64,
    ) -> f64 {
        let (_, p) = self.poa(t_mid_ms, ghi, dni, dhi);
        let g = p.global();
        if g <= 0.0 {
            return 0.0;
        }
        let temp_c = if temp_c.is_finite() { temp_c } else { 20.0 };
        let cell =
            pvwatts::fuentes_steady(self.mount.noct_installed_c(), g, temp_c, clean(wind_ms));
        let dc = self.dc_power_w(&p, cell);
        pvwatts::inverter(dc, self.inverter_w(), self.inverter_efficiency)
    }
}

/// An array's module temperature carried from one interval to the next
/// (Fuentes' thermal mass), for [`PvArray::ac_power_w_dynamic`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ThermalState(Option<pvwatts::Fuentes>);

impl PvArray {
    /// [`PvArray::ac_power_w`] for consecutive intervals of `dt_h` hours,
    /// with the cell temperature from the stateful Fuentes model as PVWatts
    /// runs it (cell = air temperature while the plane gets no light, then
    /// the thermal lag from there). Against the PVWatts v5 export this
    /// halves the hourly error of the steady-state form (see
    /// `solar::tests::pvwatts_v5_full_year`).
    #[allow(clippy::too_many_arguments)]
    pub fn ac_power_w_dynamic(
        &self,
        thermal: &mut ThermalState,
        t_mid_ms: i64,
        ghi: f64,
        dni: f64,
        dhi: f64,
        temp_c: f64,
        wind_ms: f64,
        dt_h: f64,
    ) -> f64 {
        let (_, p) = self.poa(t_mid_ms, ghi, dni, dhi);
        let g = p.global();
        let temp_c = if temp_c.is_finite() { temp_c } else { 20.0 };
        let noct = self.mount.noct_installed_c();
        if g <= 0.0 {
            thermal.0 = Some(pvwatts::Fuentes::new(noct).with_state(temp_c, 0.0));
            return 0.0;
        }
        let model = thermal
            .0
            .get_or_insert_with(|| pvwatts::Fuentes::new(noct).with_state(temp_c, 0.0));
        let cell = model.step(g, temp_c, clean(wind_ms), dt_h);
        let dc = self.dc_power_w(&p, cell);
        pvwatts::inverter(dc, self.inverter_w(), self.inverter_efficiency)
    }
}

fn clean(v: f64) -> f64 {
    if v.is_finite() { v.max(0.0) } else { 0.0 }
}

#[cfg(test)]
mod tests;
