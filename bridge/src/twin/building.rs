//! ISO 13790 "5R1C" hourly zone model: one thermal capacity, five
//! conductances, three temperature nodes. Pure: no clock, no I/O.
//!
//! The formulation, defaults and reference tests follow
//! RC_BuildingSimulator (Jayathissa et al., ETH Zürich, MIT licence,
//! `github.com/architecture-building-systems/RC_BuildingSimulator`,
//! `rc_simulator/building_physics.py`, `emission_system.py`,
//! `radiation.py`, `tests/testRCmodel.py`), which implements
//! EN ISO 13790:2008 Annex C. The code here is our own; equation numbers
//! `(C.n)` are those RC_BuildingSimulator cites.
//!
//! # Network
//!
//! ```text
//!            H_ve            H_tr_is            H_tr_ms             H_tr_em
//!  θ_sup ───/\/\─── θ_air ───/\/\─── θ_s ───/\/\─── θ_m ───/\/\─── θ_e
//!                     ↑ Φ_ia           │ ↑ Φ_st          │ ↑ Φ_m
//!                                      │                 ═ C_m
//!                             H_tr_w  /\/\
//!                                      │
//!                                     θ_e
//! ```
//!
//! | symbol | unit | meaning |
//! |---|---|---|
//! | `θ_e` | °C | outdoor air temperature |
//! | `θ_sup` | °C | supply air temperature; `= θ_e` (ISO 13790 9.3.2, as RC_BuildingSimulator assumes) |
//! | `θ_air` | °C | indoor air node |
//! | `θ_s` | °C | internal surface node (air and mean radiant, "star" node) |
//! | `θ_m` | °C | building mass node |
//! | `C_m` | J/K | heat capacity of the mass node |
//! | `Φ_ia`, `Φ_st`, `Φ_m` | W | heat injected into the air, surface and mass node |
//!
//! Only the mass node stores heat; the air and surface nodes are solved in
//! steady state around it. Eliminating them leaves one ODE for the mass,
//!
//! ```text
//! C_m · dθ_m/dt = Φ_m,tot − (H_tr,3 + H_tr,em) · θ_m
//! ```
//!
//! (`Φ_m,tot`, `H_tr,3` below), and ISO 13790 (C.4) is its Crank–Nicolson
//! (trapezoidal) step with Δt = 3600 s. [`Network::step`] takes the step
//! length as a parameter: writing `C_m/Δt` for ISO's `C_m/3600` is the same
//! scheme, `C_m·(θ_t − θ_{t−1})/Δt = Φ_m,tot − H·(θ_t + θ_{t−1})/2`, with a
//! different Δt. It is A-stable, second-order accurate, and for Δt = 3600 s
//! it is ISO 13790 verbatim; for Δt below the mass time constant
//! `C_m/(H_tr,3 + H_tr,em)` (≈ 40 h with the defaults) shorter steps only
//! shrink an already small truncation error (4 × 15 min ≈ 1 × 1 h, tested).
//! With Δt > 2·C_m/H it stays stable but rings; keep Δt ≤ 1 h.
//!
//! The air and surface temperatures of a step are computed from the
//! *mean* mass temperature of that step (C.9), so [`ZoneStep::theta_air_c`]
//! is the step's mean air temperature, not the value at its end.
//!
//! # Gains
//!
//! Half of the internal gains go to the air, the other half plus the solar
//! gains are split between surface and mass by area (C.1–C.3). The share
//! `H_tr,w/(9.1·A_t)` of that second part is not injected anywhere: ISO
//! 13790 deems it re-radiated out through the glazing. Heating or cooling
//! power enters one node of the designer's choice ([`EmissionNode`]).

use serde::{Deserialize, Serialize};

/// Length of the ISO 13790 time step, s.
pub const HOUR_S: f64 = 3600.0;
/// Volumetric heat capacity of air `ρ_a·c_a`, J/(m³·K) (ISO 13790 9.3.1).
pub const AIR_HEAT_CAPACITY_J_PER_M3_K: f64 = 1200.0;
/// Heat transfer coefficient air ↔ internal surfaces `h_is`, W/(m²·K)
/// (ISO 13790 7.2.2; RC_BuildingSimulator hard-codes it).
pub const H_IS_W_PER_M2_K: f64 = 3.45;
/// Heat transfer coefficient surfaces ↔ mass `h_ms`, W/(m²·K)
/// (ISO 13790 7.2.2; RC_BuildingSimulator hard-codes it).
pub const H_MS_W_PER_M2_K: f64 = 9.1;
/// Trial heating power per floor area of the demand calculation, W/m²
/// (ISO 13790 C.4.2 step 2).
pub const TRIAL_POWER_W_PER_M2: f64 = 10.0;

/// Geometry and envelope of one zone. `Default` is RC_BuildingSimulator's
/// default zone (`Zone()`): a 35 m² office, medium-weight construction.
///
/// `ach_vent_per_h + ach_infl_per_h` must be > 0 (the ventilation
/// conductance divides by it, as RC_BuildingSimulator does).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZoneParams {
    /// Glazed area towards the outside `A_w`, m². Default 4.0.
    pub window_area_m2: f64,
    /// Opaque envelope area towards the outside `A_op`, m² (windows
    /// excluded). Default 11.0.
    pub walls_area_m2: f64,
    /// Conditioned floor area `A_f`, m². Default 35.0.
    pub floor_area_m2: f64,
    /// Air volume `V`, m³. Default 105.
    pub room_volume_m3: f64,
    /// Area of all surfaces facing the zone `A_t`, m². Default 142.0.
    pub total_internal_area_m2: f64,
    /// U-value of the opaque envelope, W/(m²·K). Default 0.2.
    pub u_walls_w_per_m2_k: f64,
    /// U-value of the glazing, W/(m²·K). Default 1.1.
    pub u_windows_w_per_m2_k: f64,
    /// Mechanical ventilation, air changes per hour, 1/h. Default 1.5.
    pub ach_vent_per_h: f64,
    /// Infiltration, air changes per hour, 1/h. Default 0.5.
    pub ach_infl_per_h: f64,
    /// Heat-recovery efficiency of the mechanical ventilation, 0–1
    /// (0 = none). Default 0.6.
    pub ventilation_efficiency: f64,
    /// Internal heat capacity per floor area `κ_m`, J/(m²·K). Default
    /// 165 000, ISO 13790 12.3.1.2 "medium".
    pub thermal_capacitance_j_per_m2_k: f64,
    /// Effective mass area per floor area `A_m/A_f`. Default 2.5, ISO 13790
    /// 12.3.1.2 for very light to medium classes (3.0 heavy, 3.5 very
    /// heavy); RC_BuildingSimulator fixes it at 2.5.
    pub mass_area_factor: f64,
}

impl Default for ZoneParams {
    fn default() -> Self {
        ZoneParams {
            window_area_m2: 4.0,
            walls_area_m2: 11.0,
            floor_area_m2: 35.0,
            room_volume_m3: 105.0,
            total_internal_area_m2: 142.0,
            u_walls_w_per_m2_k: 0.2,
            u_windows_w_per_m2_k: 1.1,
            ach_vent_per_h: 1.5,
            ach_infl_per_h: 0.5,
            ventilation_efficiency: 0.6,
            thermal_capacitance_j_per_m2_k: 165_000.0,
            mass_area_factor: 2.5,
        }
    }
}

impl ZoneParams {
    /// The conductances and capacity of the 5R1C network, computed as
    /// RC_BuildingSimulator's `Zone.__init__` does.
    pub fn network(&self) -> Network {
        let ach_tot = self.ach_vent_per_h + self.ach_infl_per_h;
        debug_assert!(ach_tot > 0.0, "no air change: H_ve would be 0/0");
        // Temperature adjustment factor of the supply air for heat
        // recovery, RC_BuildingSimulator's "[ISO: E-27]".
        let b_ek = 1.0 - (self.ach_vent_per_h / ach_tot) * self.ventilation_efficiency;
        let a_m = self.mass_area_factor * self.floor_area_m2;
        Network {
            floor_area_m2: self.floor_area_m2,
            a_m_m2: a_m,
            a_t_m2: self.total_internal_area_m2,
            c_m_j_per_k: self.thermal_capacitance_j_per_m2_k * self.floor_area_m2,
            h_tr_em_w_per_k: self.u_walls_w_per_m2_k * self.walls_area_m2,
            h_tr_w_w_per_k: self.u_windows_w_per_m2_k * self.window_area_m2,
            h_tr_is_w_per_k: H_IS_W_PER_M2_K * self.total_internal_area_m2,
            h_tr_ms_w_per_k: H_MS_W_PER_M2_K * a_m,
            h_ve_w_per_k: AIR_HEAT_CAPACITY_J_PER_M3_K
                * b_ek
                * self.room_volume_m3
                * (ach_tot / HOUR_S),
        }
    }
}

/// The 5R1C network of a zone: what [`ZoneParams::network`] derives.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Network {
    /// Floor area `A_f`, m² (scales the demand trial and power limits).
    pub floor_area_m2: f64,
    /// Effective mass area `A_m = mass_area_factor · A_f`, m² (12.3.1.2).
    pub a_m_m2: f64,
    /// Area of all surfaces facing the zone `A_t`, m².
    pub a_t_m2: f64,
    /// Heat capacity of the mass `C_m = κ_m · A_f`, J/K (12.3.1.2).
    pub c_m_j_per_k: f64,
    /// Opaque envelope, mass ↔ outside `H_tr,em = U_walls · A_op`, W/K.
    pub h_tr_em_w_per_k: f64,
    /// Glazing, surface ↔ outside `H_tr,w = U_windows · A_w`, W/K.
    pub h_tr_w_w_per_k: f64,
    /// Air ↔ surfaces `H_tr,is = h_is · A_t`, W/K.
    pub h_tr_is_w_per_k: f64,
    /// Surfaces ↔ mass `H_tr,ms = h_ms · A_m`, W/K.
    pub h_tr_ms_w_per_k: f64,
    /// Ventilation and infiltration, air ↔ supply
    /// `H_ve = ρ_a·c_a · b_ek · V · (n_vent + n_infl)/3600`,
    /// `b_ek = 1 − η · n_vent/(n_vent + n_infl)`, W/K.
    pub h_ve_w_per_k: f64,
}

/// Where heating or cooling power enters the network. RC_BuildingSimulator's
/// emission systems reduce to one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EmissionNode {
    /// Air node: air conditioning, radiators (`AirConditioning`,
    /// `OldRadiators`, `NewRadiators`, `ChilledBeams`; ISO 13790 Annex C).
    Air,
    /// Surface node: floor heating (`FloorHeating`).
    Surface,
    /// Mass node: thermally activated building systems (`TABS`).
    Mass,
}

/// What drives a zone during one step, constant over the step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ZoneInputs {
    /// Outdoor air temperature `θ_e`, °C (also the supply air temperature).
    pub outdoor_c: f64,
    /// Internal gains from people and appliances `Φ_int`, W.
    pub internal_gains_w: f64,
    /// Solar gains after transmission through the glazing `Φ_sol`, W
    /// (see [`solar_gains_w`]).
    pub solar_gains_w: f64,
}

/// Heat injected into the three nodes, W.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HeatFlows {
    /// Into the air node `Φ_ia`, W.
    pub phi_ia_w: f64,
    /// Into the surface node `Φ_st`, W.
    pub phi_st_w: f64,
    /// Into the mass node `Φ_m`, W.
    pub phi_m_w: f64,
}

impl HeatFlows {
    /// Total heat injected, W.
    pub fn total_w(&self) -> f64 {
        self.phi_ia_w + self.phi_st_w + self.phi_m_w
    }
}

/// Flows and temperatures of one step (RC_BuildingSimulator's
/// `calc_temperatures_crank_nicolson`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ZoneStep {
    pub flows: HeatFlows,
    /// Heat-flow term of the mass equation `Φ_m,tot` (C.5), W.
    pub phi_m_tot_w: f64,
    /// Mass temperature at the end of the step `θ_m,t` (C.4), °C: the
    /// state to carry into the next step.
    pub theta_m_next_c: f64,
    /// Mean mass temperature over the step `θ_m = (θ_m,t + θ_m,t−1)/2`
    /// (C.9), °C. RC_BuildingSimulator's `t_m`.
    pub theta_m_c: f64,
    /// Internal surface temperature `θ_s` (C.10), °C.
    pub theta_s_c: f64,
    /// Air temperature `θ_air` (C.11), °C.
    pub theta_air_c: f64,
    /// Operative temperature `θ_op = 0.3·θ_air + 0.7·θ_s` (C.12), °C.
    pub theta_op_c: f64,
}

impl Network {
    /// `H_tr,1 = 1/(1/H_ve + 1/H_tr,is)` (C.6), W/K.
    pub fn h_tr_1(&self) -> f64 {
        1.0 / (1.0 / self.h_ve_w_per_k + 1.0 / self.h_tr_is_w_per_k)
    }

    /// `H_tr,2 = H_tr,1 + H_tr,w` (C.7), W/K.
    pub fn h_tr_2(&self) -> f64 {
        self.h_tr_1() + self.h_tr_w_w_per_k
    }

    /// `H_tr,3 = 1/(1/H_tr,2 + 1/H_tr,ms)` (C.8), W/K.
    pub fn h_tr_3(&self) -> f64 {
        1.0 / (1.0 / self.h_tr_2() + 1.0 / self.h_tr_ms_w_per_k)
    }

    /// Time constant of the mass node `C_m/(H_tr,3 + H_tr,em)`, s.
    pub fn time_constant_s(&self) -> f64 {
        self.c_m_j_per_k / (self.h_tr_3() + self.h_tr_em_w_per_k)
    }

    /// Splits the gains over the nodes (C.1–C.3) and adds `hc_w` (W,
    /// positive heats) at `node`:
    ///
    /// ```text
    /// Φ_ia = 0.5·Φ_int
    /// Φ_st = (1 − A_m/A_t − H_tr,w/(9.1·A_t)) · (0.5·Φ_int + Φ_sol)
    /// Φ_m  = A_m/A_t · (0.5·Φ_int + Φ_sol)
    /// ```
    pub fn heat_flows(&self, inputs: &ZoneInputs, hc_w: f64, node: EmissionNode) -> HeatFlows {
        let radiant = 0.5 * inputs.internal_gains_w + inputs.solar_gains_w;
        let mass_share = self.a_m_m2 / self.a_t_m2;
        let glazing_share = self.h_tr_w_w_per_k / (H_MS_W_PER_M2_K * self.a_t_m2);
        let mut flows = HeatFlows {
            phi_ia_w: 0.5 * inputs.internal_gains_w,
            phi_st_w: (1.0 - mass_share - glazing_share) * radiant,
            phi_m_w: mass_share * radiant,
        };
        match node {
            EmissionNode::Air => flows.phi_ia_w += hc_w,
            EmissionNode::Surface => flows.phi_st_w += hc_w,
            EmissionNode::Mass => flows.phi_m_w += hc_w,
        }
        flows
    }

    /// One Crank–Nicolson step of `dt_s` seconds ([`HOUR_S`] is ISO 13790)
    /// from the mass temperature `theta_m_prev_c` (°C) with `hc_w` (W,
    /// positive heats) at `node`:
    ///
    /// ```text
    /// Φ_m,tot = Φ_m + H_tr,em·θ_e + H_tr,3·(Φ_st + H_tr,w·θ_e + H_tr,1·(Φ_ia/H_ve + θ_sup))/H_tr,2   (C.5)
    /// θ_m,t   = (θ_m,t−1·(C_m/Δt − ½(H_tr,3 + H_tr,em)) + Φ_m,tot) / (C_m/Δt + ½(H_tr,3 + H_tr,em))  (C.4)
    /// θ_m     = (θ_m,t + θ_m,t−1)/2                                                                 (C.9)
    /// θ_s     = (H_tr,ms·θ_m + Φ_st + H_tr,w·θ_e + H_tr,1·(θ_sup + Φ_ia/H_ve)) / (H_tr,ms + H_tr,w + H_tr,1)  (C.10)
    /// θ_air   = (H_tr,is·θ_s + H_ve·θ_sup + Φ_ia) / (H_tr,is + H_ve)                                (C.11)
    /// ```
    ///
    /// with `θ_sup = θ_e` and Δt = `dt_s` where ISO writes 3600.
    pub fn step(
        &self,
        inputs: &ZoneInputs,
        theta_m_prev_c: f64,
        hc_w: f64,
        node: EmissionNode,
        dt_s: f64,
    ) -> ZoneStep {
        let flows = self.heat_flows(inputs, hc_w, node);
        let theta_e = inputs.outdoor_c;
        // ISO 13790 9.3.2: supply air straight from outside.
        let theta_sup = theta_e;
        let (h_1, h_2, h_3) = (self.h_tr_1(), self.h_tr_2(), self.h_tr_3());
        let h_em = self.h_tr_em_w_per_k;
        let h_w = self.h_tr_w_w_per_k;
        let h_ve = self.h_ve_w_per_k;

        let phi_m_tot = flows.phi_m_w
            + h_em * theta_e
            + h_3 * (flows.phi_st_w + h_w * theta_e + h_1 * (flows.phi_ia_w / h_ve + theta_sup))
                / h_2;

        let c = self.c_m_j_per_k / dt_s;
        let h = h_3 + h_em;
        let theta_m_next = (theta_m_prev_c * (c - 0.5 * h) + phi_m_tot) / (c + 0.5 * h);
        let theta_m = (theta_m_next + theta_m_prev_c) / 2.0;

        let h_ms = self.h_tr_ms_w_per_k;
        let theta_s = (h_ms * theta_m
            + flows.phi_st_w
            + h_w * theta_e
            + h_1 * (theta_sup + flows.phi_ia_w / h_ve))
            / (h_ms + h_w + h_1);
        let h_is = self.h_tr_is_w_per_k;
        let theta_air = (h_is * theta_s + h_ve * theta_sup + flows.phi_ia_w) / (h_is + h_ve);

        ZoneStep {
            flows,
            phi_m_tot_w: phi_m_tot,
            theta_m_next_c: theta_m_next,
            theta_m_c: theta_m,
            theta_s_c: theta_s,
            theta_air_c: theta_air,
            theta_op_c: 0.3 * theta_air + 0.7 * theta_s,
        }
    }

    /// ISO 13790 C.4.2 (RC_BuildingSimulator's `solve_energy` with its
    /// `has_demand` and `calc_energy_demand`): the heating or cooling power
    /// an ideal controller needs over one step of `dt_s` s to hold the air
    /// temperature at the set point it crossed.
    ///
    /// 1. Free-floating step (no power). If `θ_air,0` is within the set
    ///    points, the demand is 0 and that step is the result.
    /// 2. Trial step with `Φ_10 = 10 W/m² · A_f`; since the network is
    ///    linear, `Φ_un = Φ_10 · (θ_set − θ_air,0)/(θ_air,10 − θ_air,0)`
    ///    (C.13).
    /// 3. / 4. Clamp `Φ_un` to the power limits and step with it.
    ///
    /// As in RC_BuildingSimulator the node of each step follows the sign of
    /// its power (positive: `heating_node`, else `cooling_node`), so the
    /// positive trial of a cooling case enters at the heating node; with
    /// both nodes equal `θ_air` lands exactly on the set point.
    pub fn solve_energy(
        &self,
        inputs: &ZoneInputs,
        theta_m_prev_c: f64,
        hvac: &IdealHvac,
        dt_s: f64,
    ) -> EnergyDemand {
        let step_with = |power_w: f64| {
            self.step(
                inputs,
                theta_m_prev_c,
                power_w,
                hvac.node_for(power_w),
                dt_s,
            )
        };
        let free = step_with(0.0);
        let t_air_0 = free.theta_air_c;
        let (mode, set_c) = if t_air_0 < hvac.heating_setpoint_c {
            (HvacMode::Heating, hvac.heating_setpoint_c)
        } else if t_air_0 > hvac.cooling_setpoint_c {
            (HvacMode::Cooling, hvac.cooling_setpoint_c)
        } else {
            return EnergyDemand {
                mode: HvacMode::Off,
                unrestricted_w: 0.0,
                demand_w: 0.0,
                free_air_c: t_air_0,
                step: free,
            };
        };

        let trial_w = TRIAL_POWER_W_PER_M2 * self.floor_area_m2;
        let t_air_10 = step_with(trial_w).theta_air_c;
        let unrestricted_w = trial_w * (set_c - t_air_0) / (t_air_10 - t_air_0);
        let max_heating_w = hvac.max_heating_w_per_m2 * self.floor_area_m2;
        let max_cooling_w = hvac.max_cooling_w_per_m2 * self.floor_area_m2;
        let demand_w = unrestricted_w.max(max_cooling_w).min(max_heating_w);
        EnergyDemand {
            mode,
            unrestricted_w,
            demand_w,
            free_air_c: t_air_0,
            step: step_with(demand_w),
        }
    }
}

/// An ideal heating/cooling system holding the air temperature between two
/// set points (RC_BuildingSimulator's zone set points, power limits and
/// emission systems). `Default` is RC_BuildingSimulator's default zone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct IdealHvac {
    /// Heat below this air temperature, °C. Default 20.
    pub heating_setpoint_c: f64,
    /// Cool above this air temperature, °C. Default 26.
    pub cooling_setpoint_c: f64,
    /// Heating power limit per floor area, W/m² (≥ 0). Default +∞.
    pub max_heating_w_per_m2: f64,
    /// Cooling power limit per floor area, W/m², negative. Default −∞.
    pub max_cooling_w_per_m2: f64,
    /// Where heating power enters. Default air (RC's `NewRadiators`).
    pub heating_node: EmissionNode,
    /// Where cooling power enters. Default air (RC's `AirConditioning`).
    pub cooling_node: EmissionNode,
}

impl Default for IdealHvac {
    fn default() -> Self {
        IdealHvac {
            heating_setpoint_c: 20.0,
            cooling_setpoint_c: 26.0,
            max_heating_w_per_m2: f64::INFINITY,
            max_cooling_w_per_m2: f64::NEG_INFINITY,
            heating_node: EmissionNode::Air,
            cooling_node: EmissionNode::Air,
        }
    }
}

impl IdealHvac {
    /// The node power of this sign enters at (RC_BuildingSimulator picks
    /// the heating emission system for power > 0, else the cooling one).
    pub fn node_for(&self, power_w: f64) -> EmissionNode {
        if power_w > 0.0 {
            self.heating_node
        } else {
            self.cooling_node
        }
    }
}

/// What the ideal system does in a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HvacMode {
    Off,
    Heating,
    Cooling,
}

/// Result of [`Network::solve_energy`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EnergyDemand {
    pub mode: HvacMode,
    /// Power that would hold the set point without limits (C.13), W.
    pub unrestricted_w: f64,
    /// Power delivered after the limits, W; positive heats, negative cools.
    /// RC_BuildingSimulator's `energy_demand` (W, i.e. Wh per hourly step).
    pub demand_w: f64,
    /// Air temperature of the free-floating step, °C.
    pub free_air_c: f64,
    /// The step with `demand_w` applied.
    pub step: ZoneStep,
}

/// Electric lighting switched on daylight (RC_BuildingSimulator's
/// `solve_lighting`, after Szokolay, *Environmental Science Handbook*,
/// 2.2.1.3). It does not feed back into the thermal model, as in the
/// reference. `Default` is RC_BuildingSimulator's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Lighting {
    /// Installed lighting power per floor area, W/m². Default 11.7.
    pub load_w_per_m2: f64,
    /// Illuminance on the working plane below which lights go on, lx.
    /// Default 300.
    pub control_lux: f64,
    /// Share of the flux through the window reaching the working plane.
    /// Default 0.45.
    pub utilisation_factor: f64,
    /// Dirt on the glazing, 0–1. Default 0.9.
    pub maintenance_factor: f64,
}

impl Default for Lighting {
    fn default() -> Self {
        Lighting {
            load_w_per_m2: 11.7,
            control_lux: 300.0,
            utilisation_factor: 0.45,
            maintenance_factor: 0.9,
        }
    }
}

impl Lighting {
    /// Lighting power, W, for the luminous flux through the windows
    /// `flux_lm` (lm) and an occupancy (> 0: occupied): all on when
    /// `flux · UF · MF / A_f` is below [`Self::control_lux`], else off.
    pub fn demand_w(&self, flux_lm: f64, occupancy: f64, floor_area_m2: f64) -> f64 {
        let lux = flux_lm * self.utilisation_factor * self.maintenance_factor / floor_area_m2;
        if lux < self.control_lux && occupancy > 0.0 {
            self.load_w_per_m2 * floor_area_m2
        } else {
            0.0
        }
    }
}

/// Solar gains through a window, W: `I · A_w · g · F`.
///
/// - `irradiance_w_per_m2`: total irradiance on the window plane, W/m²
///   (see [`window_irradiance_w_per_m2`]).
/// - `window_area_m2`: window area, m².
/// - `g_value`: total solar energy transmittance of the glazing, 0–1
///   (RC_BuildingSimulator's `glass_solar_transmittance`, default 0.7).
/// - `frame_shading_factor`: everything else that blocks sun, 0–1, e.g.
///   ISO 13790 11.3's `(1 − F_F)` for the frame and `F_sh` for shading.
///   RC_BuildingSimulator applies none: pass 1.0 to reproduce it.
///
/// Assumes the gains enter the zone the hour they arrive (no storage in
/// the glazing) and are split over the nodes by [`Network::heat_flows`].
pub fn solar_gains_w(
    irradiance_w_per_m2: f64,
    window_area_m2: f64,
    g_value: f64,
    frame_shading_factor: f64,
) -> f64 {
    irradiance_w_per_m2 * window_area_m2 * g_value * frame_shading_factor
}

/// Irradiance on a tilted plane, W/m², from the sun position and the
/// direct-normal and diffuse-horizontal irradiance of a weather file
/// (RC_BuildingSimulator's `Window.calc_direct_solar_factor` and
/// `calc_diffuse_solar_factor`):
///
/// ```text
/// I = DNI · max(0, cos α·sin β·cos(γ_s − γ_w) + sin α·cos β) + DHI · (1 + cos β)/2
/// ```
///
/// `α` sun altitude, `γ_s` sun azimuth, `β` tilt of the window (90° for a
/// façade, 0° for a skylight), `γ_w` azimuth of its normal; azimuths in
/// any one convention (only the difference counts), all in degrees. The
/// direct term is the cosine of the angle of incidence (Quaschning &
/// Hanitsch 1995), zero when the sun is behind the plane or, unlike the
/// reference, below the horizon; the diffuse sky is isotropic and ground
/// reflection is neglected, as in the reference.
pub fn window_irradiance_w_per_m2(
    sun_altitude_deg: f64,
    sun_azimuth_deg: f64,
    window_azimuth_deg: f64,
    window_tilt_deg: f64,
    direct_normal_w_per_m2: f64,
    diffuse_horizontal_w_per_m2: f64,
) -> f64 {
    let alt = sun_altitude_deg.to_radians();
    let tilt = window_tilt_deg.to_radians();
    let cos_incidence =
        alt.cos() * tilt.sin() * (sun_azimuth_deg - window_azimuth_deg).to_radians().cos()
            + alt.sin() * tilt.cos();
    let direct = if sun_altitude_deg > 0.0 {
        cos_incidence.max(0.0)
    } else {
        0.0
    };
    let diffuse = (1.0 + tilt.cos()) / 2.0;
    direct_normal_w_per_m2 * direct + diffuse_horizontal_w_per_m2 * diffuse
}

/// A heating valve on a heater of fixed nominal power: heat to the air
/// node tends to `valve/100 · nominal` (linear valve characteristic).
///
/// By default the output follows the valve at once. A hydronic radiator's
/// water and metal delay it: with [`Heater::with_time_constant`] the output
/// is a first-order lag `τ·dΦ/dt = valve/100·nominal − Φ` (typical panel
/// radiators: τ ≈ 10–30 min; e.g. EN 442 test data, or Bacher & Madsen
/// 2011, whose selected model has a heater state). No water loop, supply
/// temperature or valve authority beyond that.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Heater {
    nominal_power_w: f64,
    valve_percent: f64,
    /// Heat output now, W.
    output_w: f64,
    /// Emitter time constant, s (0 = none).
    time_constant_s: f64,
}

impl Heater {
    /// A heater of `nominal_power_w` (W, ≥ 0) with its valve closed.
    pub fn new(nominal_power_w: f64) -> Self {
        Heater {
            nominal_power_w: nominal_power_w.max(0.0),
            valve_percent: 0.0,
            output_w: 0.0,
            time_constant_s: 0.0,
        }
    }

    /// The same heater with an emitter lag of `time_constant_s` (s, ≥ 0;
    /// NaN or negative → none).
    pub fn with_time_constant(mut self, time_constant_s: f64) -> Self {
        self.time_constant_s = if time_constant_s.is_finite() {
            time_constant_s.max(0.0)
        } else {
            0.0
        };
        self
    }

    /// Emitter time constant, s (0 = none).
    pub fn time_constant_s(&self) -> f64 {
        self.time_constant_s
    }

    /// Moves the output `dt_s` seconds towards the valve's target (exact
    /// for a valve held over the step); returns the mean output over the
    /// step, W, which is the heat the step receives.
    pub fn advance(&mut self, dt_s: f64) -> f64 {
        let target = self.valve_percent / 100.0 * self.nominal_power_w;
        if self.time_constant_s <= 0.0 || dt_s <= 0.0 {
            self.output_w = target;
            return target;
        }
        let tau = self.time_constant_s;
        let decay = (-dt_s / tau).exp();
        let start = self.output_w;
        self.output_w = target + (start - target) * decay;
        target + (start - target) * tau / dt_s * (1.0 - decay)
    }

    /// Nominal (fully open) heat output, W.
    pub fn nominal_power_w(&self) -> f64 {
        self.nominal_power_w
    }

    /// Valve position, % (0–100).
    pub fn valve_percent(&self) -> f64 {
        self.valve_percent
    }

    /// Sets the valve, clamped to 0–100 %; NaN closes it.
    pub fn set_valve_percent(&mut self, percent: f64) {
        self.valve_percent = if percent.is_nan() {
            0.0
        } else {
            percent.clamp(0.0, 100.0)
        };
    }

    /// Heat delivered to the air node now, W (the valve's share of the
    /// nominal power once the emitter lag, if any, has settled).
    pub fn heat_w(&self) -> f64 {
        if self.time_constant_s > 0.0 {
            self.output_w
        } else {
            self.valve_percent / 100.0 * self.nominal_power_w
        }
    }
}

/// A zone in time: its network, its mass temperature and a heater,
/// stepped by a fixed `dt_s` (see the module doc for why any Δt ≤ 1 h is
/// the same Crank–Nicolson scheme as ISO 13790's hourly step).
#[derive(Debug, Clone, PartialEq)]
pub struct Building {
    pub network: Network,
    pub heater: Heater,
    /// Mass temperature `θ_m` at the end of the last step, °C.
    theta_m_c: f64,
    dt_s: f64,
    last: Option<ZoneStep>,
    /// Mean heater output over the last step, W.
    last_heat_w: f64,
}

impl Building {
    /// A zone whose mass starts at `initial_mass_c` (°C), stepped by
    /// `dt_s` seconds.
    ///
    /// # Panics
    ///
    /// If `dt_s` is not a positive finite number.
    pub fn new(params: &ZoneParams, heater: Heater, initial_mass_c: f64, dt_s: f64) -> Self {
        assert!(
            dt_s.is_finite() && dt_s > 0.0,
            "building step must be > 0 s, got {dt_s}"
        );
        Building {
            network: params.network(),
            heater,
            theta_m_c: initial_mass_c,
            dt_s,
            last: None,
            last_heat_w: 0.0,
        }
    }

    /// Mean heater output over the last step, W (its energy is this × Δt).
    pub fn last_heat_w(&self) -> f64 {
        self.last_heat_w
    }

    /// Step length, s.
    pub fn dt_s(&self) -> f64 {
        self.dt_s
    }

    /// Mass temperature at the end of the last step (the state), °C.
    pub fn theta_m_c(&self) -> f64 {
        self.theta_m_c
    }

    /// The last step's flows and temperatures, if any.
    pub fn last(&self) -> Option<&ZoneStep> {
        self.last.as_ref()
    }

    /// Advances one step under `inputs`, the heater feeding the air node.
    pub fn step(&mut self, inputs: &ZoneInputs) -> ZoneStep {
        self.last_heat_w = self.heater.advance(self.dt_s);
        let step = self.network.step(
            inputs,
            self.theta_m_c,
            self.last_heat_w,
            EmissionNode::Air,
            self.dt_s,
        );
        self.theta_m_c = step.theta_m_next_c;
        self.last = Some(step);
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The zone of RC_BuildingSimulator's `tests/testRCmodel.py`.
    fn reference_zone(ventilation_efficiency: f64) -> ZoneParams {
        ZoneParams {
            window_area_m2: 13.5,
            walls_area_m2: 15.19 - 13.5,
            floor_area_m2: 34.3,
            room_volume_m3: 106.33,
            total_internal_area_m2: 142.38,
            ventilation_efficiency,
            ..ZoneParams::default()
        }
    }

    /// Its HVAC: 20/26 °C, ±12 W/m², `AirConditioning` both ways.
    fn reference_hvac() -> IdealHvac {
        IdealHvac {
            heating_setpoint_c: 20.0,
            cooling_setpoint_c: 26.0,
            max_heating_w_per_m2: 12.0,
            max_cooling_w_per_m2: -12.0,
            ..IdealHvac::default()
        }
    }

    /// `assertEqual(round(x, 2), expected)`: within half a hundredth,
    /// which for these magnitudes is also well inside 1 %.
    fn assert_2dp(case: &str, what: &str, ours: f64, expected: f64) {
        assert!(
            (ours - expected).abs() <= 0.005 + 1e-9,
            "{case}: {what} = {ours}, reference {expected}"
        );
        if expected != 0.0 {
            assert!(
                ((ours - expected) / expected).abs() < 0.01,
                "{case}: {what}"
            );
        }
    }

    struct Case {
        name: &'static str,
        ventilation_efficiency: f64,
        outdoor_c: f64,
        t_m_prev_c: f64,
        solar_w: f64,
        mode: HvacMode,
        t_m_c: f64,
        demand_w: f64,
    }

    /// Every case of `testRCmodel.py`: inputs and the asserted `t_m` and
    /// `energy_demand`. Internal gains are 10 W throughout. The heat-pump
    /// cases also assert COP and electricity of RC's supply systems, which
    /// are not modelled here; their `t_m` and `energy_demand` are.
    #[rustfmt::skip]
    const CASES: &[Case] = &[
        Case { name: "test_NoHVACNoLight", ventilation_efficiency: 0.0, outdoor_c: 10.0, t_m_prev_c: 22.0, solar_w: 2000.0, mode: HvacMode::Off, t_m_c: 22.33, demand_w: 0.0 },
        Case { name: "test_CoolingRequired", ventilation_efficiency: 0.0, outdoor_c: 25.0, t_m_prev_c: 24.0, solar_w: 4000.0, mode: HvacMode::Cooling, t_m_c: 25.15, demand_w: -264.75 },
        Case { name: "test_HeatingRequired", ventilation_efficiency: 0.0, outdoor_c: 10.0, t_m_prev_c: 20.0, solar_w: 2000.0, mode: HvacMode::Heating, t_m_c: 20.46, demand_w: 328.09 },
        Case { name: "test_MaxCoolingRequired", ventilation_efficiency: 0.0, outdoor_c: 30.0, t_m_prev_c: 25.0, solar_w: 5000.0, mode: HvacMode::Cooling, t_m_c: 26.49, demand_w: -411.6 },
        Case { name: "test_MaxHeatingRequired", ventilation_efficiency: 0.0, outdoor_c: 5.0, t_m_prev_c: 19.0, solar_w: 2000.0, mode: HvacMode::Heating, t_m_c: 19.39, demand_w: 411.6 },
        Case { name: "test_lightingrequired", ventilation_efficiency: 0.0, outdoor_c: 10.0, t_m_prev_c: 22.0, solar_w: 2000.0, mode: HvacMode::Off, t_m_c: 22.33, demand_w: 0.0 },
        Case { name: "test_NoHVACNoLight_infl", ventilation_efficiency: 0.66, outdoor_c: 10.0, t_m_prev_c: 22.0, solar_w: 2000.0, mode: HvacMode::Off, t_m_c: 22.44, demand_w: 0.0 },
        Case { name: "test_CoolingRequired_infl", ventilation_efficiency: 0.6, outdoor_c: 25.0, t_m_prev_c: 24.0, solar_w: 4000.0, mode: HvacMode::Cooling, t_m_c: 25.15, demand_w: -296.65 },
        Case { name: "test_HeatingRequired_infl", ventilation_efficiency: 0.6, outdoor_c: 10.0, t_m_prev_c: 20.0, solar_w: 2000.0, mode: HvacMode::Heating, t_m_c: 20.46, demand_w: 9.1 },
        Case { name: "test_MaxCoolingRequired_infl", ventilation_efficiency: 0.6, outdoor_c: 30.0, t_m_prev_c: 25.0, solar_w: 5000.0, mode: HvacMode::Cooling, t_m_c: 26.48, demand_w: -411.6 },
        Case { name: "test_MaxHeatingRequired_infl", ventilation_efficiency: 0.6, outdoor_c: 5.0, t_m_prev_c: 19.0, solar_w: 2000.0, mode: HvacMode::Heating, t_m_c: 19.51, demand_w: 411.6 },
        Case { name: "test_lightingrequired_infl", ventilation_efficiency: 0.6, outdoor_c: 10.0, t_m_prev_c: 22.0, solar_w: 2000.0, mode: HvacMode::Off, t_m_c: 22.43, demand_w: 0.0 },
        Case { name: "test_HeatPumpCoolingRequiredHighCOP", ventilation_efficiency: 0.0, outdoor_c: 25.0, t_m_prev_c: 24.0, solar_w: 4000.0, mode: HvacMode::Cooling, t_m_c: 25.15, demand_w: -264.75 },
        Case { name: "test_HeatPumpCoolingRequired", ventilation_efficiency: 0.0, outdoor_c: 35.0, t_m_prev_c: 24.0, solar_w: 4000.0, mode: HvacMode::Cooling, t_m_c: 25.33, demand_w: -411.6 },
        Case { name: "test_WaterHeatPumpCoolingRequired", ventilation_efficiency: 0.0, outdoor_c: 35.0, t_m_prev_c: 24.0, solar_w: 4000.0, mode: HvacMode::Cooling, t_m_c: 25.33, demand_w: -411.6 },
        Case { name: "test_AirHeatPump_HeatingRequired_infl", ventilation_efficiency: 0.6, outdoor_c: 10.0, t_m_prev_c: 20.0, solar_w: 2000.0, mode: HvacMode::Heating, t_m_c: 20.46, demand_w: 9.1 },
        Case { name: "test_WaterHeatPump_HeatingRequired_infl", ventilation_efficiency: 0.6, outdoor_c: 10.0, t_m_prev_c: 20.0, solar_w: 2000.0, mode: HvacMode::Heating, t_m_c: 20.46, demand_w: 9.1 },
    ];

    fn inputs(outdoor_c: f64, internal_gains_w: f64, solar_gains_w: f64) -> ZoneInputs {
        ZoneInputs {
            outdoor_c,
            internal_gains_w,
            solar_gains_w,
        }
    }

    #[test]
    fn reproduces_rc_building_simulator_reference_tests() {
        let hvac = reference_hvac();
        for c in CASES {
            let net = reference_zone(c.ventilation_efficiency).network();
            let r = net.solve_energy(
                &inputs(c.outdoor_c, 10.0, c.solar_w),
                c.t_m_prev_c,
                &hvac,
                HOUR_S,
            );
            assert_eq!(r.mode, c.mode, "{}", c.name);
            assert_2dp(c.name, "t_m", r.step.theta_m_c, c.t_m_c);
            assert_2dp(c.name, "energy_demand", r.demand_w, c.demand_w);
            if c.mode == HvacMode::Off {
                assert_eq!(r.demand_w, 0.0, "{}", c.name);
            }
            // Within the power limits the air lands on the set point.
            if r.demand_w.abs() < 12.0 * 34.3 - 1e-9 && c.mode != HvacMode::Off {
                let set = match c.mode {
                    HvacMode::Heating => hvac.heating_setpoint_c,
                    _ => hvac.cooling_setpoint_c,
                };
                assert!((r.step.theta_air_c - set).abs() < 1e-9, "{}", c.name);
            }
        }
    }

    #[test]
    fn reproduces_mixed_emissions_reference() {
        // test_WaterHeatPump_mixedEmissions_infl: floor heating (surface
        // node), air-conditioning cooling (air node).
        let hvac = IdealHvac {
            heating_node: EmissionNode::Surface,
            ..reference_hvac()
        };
        let net = reference_zone(0.6).network();
        let name = "test_WaterHeatPump_mixedEmissions_infl";
        let heat = net.solve_energy(&inputs(10.0, 10.0, 2000.0), 20.0, &hvac, HOUR_S);
        assert_eq!(heat.mode, HvacMode::Heating);
        assert_2dp(name, "t_m", heat.step.theta_m_c, 20.46);
        assert_2dp(name, "energy_demand", heat.demand_w, 20.97);
        let cool = net.solve_energy(&inputs(24.0, 10.0, 2000.0), 25.0, &hvac, HOUR_S);
        assert_eq!(cool.mode, HvacMode::Cooling);
        assert_2dp(name, "energy_demand (2nd hour)", cool.demand_w, -191.55);
    }

    #[test]
    fn reproduces_rc_building_simulator_lighting_tests() {
        let light = Lighting::default();
        // (test, flux through the window lm, expected W); occupancy 0.1.
        for (name, flux, expected) in [
            ("test_NoHVACNoLight", 44_000.0, 0.0),
            ("test_lightingrequired", 4_000.0, 401.31),
            ("test_lightingrequired_infl", 14_000.0, 401.31),
        ] {
            assert_2dp(
                name,
                "lighting_demand",
                light.demand_w(flux, 0.1, 34.3),
                expected,
            );
        }
        assert_eq!(light.demand_w(4_000.0, 0.0, 34.3), 0.0, "nobody there");
    }

    #[test]
    fn default_zone_conductances_by_hand() {
        let n = ZoneParams::default().network();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * b.abs().max(1.0);
        assert!(close(n.h_tr_em_w_per_k, 0.2 * 11.0));
        assert!(close(n.h_tr_w_w_per_k, 1.1 * 4.0));
        assert!(close(n.a_m_m2, 87.5));
        assert!(close(n.a_t_m2, 142.0));
        assert!(close(n.c_m_j_per_k, 165_000.0 * 35.0));
        assert!(close(n.h_tr_ms_w_per_k, 9.1 * 87.5));
        assert!(close(n.h_tr_is_w_per_k, 3.45 * 142.0));
        // b_ek = 1 − 0.75·0.6 = 0.55; 1200·0.55·105·2/3600 = 38.5 W/K.
        assert!(close(n.h_ve_w_per_k, 38.5));
        let h1 = 1.0 / (1.0 / 38.5 + 1.0 / 489.9);
        assert!(close(n.h_tr_1(), h1));
        assert!(close(n.h_tr_2(), h1 + 4.4));
        assert!(close(n.h_tr_3(), 1.0 / (1.0 / (h1 + 4.4) + 1.0 / 796.25)));
    }

    /// Solves the three node balances of the network directly (Gaussian
    /// elimination), independent of the ISO closed forms:
    /// air:  H_ve(θ_e − a) + H_is(s − a) + Φ_ia = 0
    /// surf: H_is(a − s) + H_w(θ_e − s) + H_ms(m − s) + Φ_st = 0
    /// mass: H_ms(s − m) + H_em(θ_e − m) + Φ_m = 0
    fn steady_state(n: &Network, f: &HeatFlows, te: f64) -> [f64; 3] {
        let (ve, is, w, ms, em) = (
            n.h_ve_w_per_k,
            n.h_tr_is_w_per_k,
            n.h_tr_w_w_per_k,
            n.h_tr_ms_w_per_k,
            n.h_tr_em_w_per_k,
        );
        let mut a = [
            [ve + is, -is, 0.0, ve * te + f.phi_ia_w],
            [-is, is + w + ms, -ms, w * te + f.phi_st_w],
            [0.0, -ms, ms + em, em * te + f.phi_m_w],
        ];
        for i in 0..3 {
            let pivot = a[i];
            for row in a.iter_mut().skip(i + 1) {
                let k = row[i] / pivot[i];
                for (x, p) in row.iter_mut().zip(pivot).skip(i) {
                    *x -= k * p;
                }
            }
        }
        let mut x = [0.0; 3];
        for i in (0..3).rev() {
            let s: f64 = (i + 1..3).map(|c| a[i][c] * x[c]).sum();
            x[i] = (a[i][3] - s) / a[i][i];
        }
        x
    }

    #[test]
    fn converges_to_the_analytic_steady_state_and_balances_energy() {
        let params = ZoneParams::default();
        let mut heater = Heater::new(1500.0);
        heater.set_valve_percent(50.0);
        let mut b = Building::new(&params, heater, 20.0, HOUR_S);
        let u = inputs(-5.0, 200.0, 300.0);
        // τ ≈ 40 h: 2000 h is ~50 τ.
        for _ in 0..2000 {
            b.step(&u);
        }
        let s = *b.last().unwrap();
        let [air, surf, mass] = steady_state(&b.network, &s.flows, u.outdoor_c);
        assert!(
            (s.theta_air_c - air).abs() < 1e-6,
            "{} vs {air}",
            s.theta_air_c
        );
        assert!((s.theta_s_c - surf).abs() < 1e-6);
        assert!((s.theta_m_c - mass).abs() < 1e-6);
        assert!((s.theta_m_next_c - s.theta_m_c).abs() < 1e-9);

        let n = &b.network;
        let out = n.h_ve_w_per_k * (s.theta_air_c - u.outdoor_c)
            + n.h_tr_w_w_per_k * (s.theta_s_c - u.outdoor_c)
            + n.h_tr_em_w_per_k * (s.theta_m_c - u.outdoor_c);
        let injected = s.flows.total_w();
        assert!(
            (out - injected).abs() < 1e-6 * injected,
            "{out} W out, {injected} W in"
        );
        // The injected heat is the heater's plus the gains less the share
        // ISO sends back out through the glazing.
        let glazing_share = n.h_tr_w_w_per_k / (9.1 * n.a_t_m2);
        let expected_in = 750.0 + 100.0 + (1.0 - glazing_share) * (100.0 + 300.0);
        assert!((injected - expected_in).abs() < 1e-9);
    }

    #[test]
    fn mass_node_follows_its_exact_exponential() {
        // With constant inputs Φ_m,tot is constant, so the mass obeys
        // C·dθ/dt = Φ − Hθ exactly. Crank–Nicolson's error per hour is
        // ~(Δt/τ)³/12 ≈ 1.3e-6 of the distance to equilibrium (τ ≈ 40 h):
        // ~3e-4 K after 48 h from 13 K away.
        let n = ZoneParams::default().network();
        let u = inputs(-5.0, 200.0, 300.0);
        let h = n.h_tr_3() + n.h_tr_em_w_per_k;
        let first = n.step(&u, 20.0, 0.0, EmissionNode::Air, HOUR_S);
        let theta_eq = first.phi_m_tot_w / h;
        let mut theta = 20.0;
        for hour in 1..=48 {
            theta = n
                .step(&u, theta, 0.0, EmissionNode::Air, HOUR_S)
                .theta_m_next_c;
            let t = hour as f64 * HOUR_S;
            let exact = theta_eq + (20.0 - theta_eq) * (-t / n.time_constant_s()).exp();
            assert!(
                (theta - exact).abs() < 1e-3,
                "hour {hour}: {theta} vs {exact}"
            );
        }
    }

    #[test]
    fn four_quarter_hours_match_one_hour() {
        let params = ZoneParams::default();
        let mut heater = Heater::new(2000.0);
        heater.set_valve_percent(60.0);
        let u = inputs(0.0, 200.0, 400.0);
        let mut hourly = Building::new(&params, heater, 18.0, HOUR_S);
        let mut quarter = Building::new(&params, heater, 18.0, 900.0);
        let h = hourly.step(&u);
        let q: Vec<ZoneStep> = (0..4).map(|_| quarter.step(&u)).collect();
        let mean_air = q.iter().map(|s| s.theta_air_c).sum::<f64>() / 4.0;
        // The mass moves ~0.56 K in that hour. Its end value agrees to
        // ~3e-5 K. The air temperature of a step is taken at the step's
        // mean mass temperature (C.9): one hour averages the mass by the
        // trapezoid rule, four quarters nearly exactly, and that quadrature
        // error, ~Δθ_m·(Δt/τ)/12 ≈ 1e-3 K, is what separates the two means.
        assert!((h.theta_m_next_c - 18.0).abs() > 0.1);
        assert!(
            (quarter.theta_m_c() - hourly.theta_m_c()).abs() < 1e-4,
            "{} vs {}",
            quarter.theta_m_c(),
            hourly.theta_m_c()
        );
        assert!(
            (mean_air - h.theta_air_c).abs() < 2e-3,
            "{mean_air} vs {}",
            h.theta_air_c
        );
    }

    #[test]
    fn heater_output_is_valve_share_of_nominal() {
        let mut heater = Heater::new(1200.0);
        assert_eq!(heater.heat_w(), 0.0);
        heater.set_valve_percent(25.0);
        assert_eq!(heater.heat_w(), 300.0);
        heater.set_valve_percent(150.0);
        assert_eq!((heater.valve_percent(), heater.heat_w()), (100.0, 1200.0));
        heater.set_valve_percent(-3.0);
        assert_eq!(heater.heat_w(), 0.0);
        heater.set_valve_percent(f64::NAN);
        assert_eq!(heater.heat_w(), 0.0);
    }

    #[test]
    fn heater_power_enters_the_air_node() {
        let params = ZoneParams::default();
        let mut heater = Heater::new(1000.0);
        heater.set_valve_percent(40.0);
        let mut b = Building::new(&params, heater, 20.0, HOUR_S);
        let s = b.step(&inputs(5.0, 0.0, 0.0));
        assert_eq!(s.flows.phi_ia_w, 400.0);
        assert_eq!((s.flows.phi_st_w, s.flows.phi_m_w), (0.0, 0.0));
        let mut unheated = Building::new(&params, Heater::new(1000.0), 20.0, HOUR_S);
        let cold = unheated.step(&inputs(5.0, 0.0, 0.0));
        assert!(s.theta_air_c > cold.theta_air_c + 1.0);
    }

    #[test]
    fn reproduces_rc_window_gains_from_incident_radiation() {
        // test_windowSolarGains (tests/testRadiation.py): 1 m² windows with
        // glass_solar_transmittance 0.7; incident W/m² → gains W.
        for (window, incident, gains) in [
            ("South", 315.85, 221.1),
            ("East", 570.06, 399.04),
            ("West", 58.0, 40.6),
            ("North", 58.0, 40.6),
            ("RoofAtrium", 855.87, 599.11),
        ] {
            assert_2dp(
                window,
                "solar_gains",
                solar_gains_w(incident, 1.0, 0.7, 1.0),
                gains,
            );
        }
        assert_eq!(solar_gains_w(500.0, 2.0, 0.6, 0.7), 500.0 * 2.0 * 0.6 * 0.7);
    }

    #[test]
    fn window_irradiance_geometry() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        // Low sun straight onto a façade: all the beam, half the sky.
        assert!(close(
            window_irradiance_w_per_m2(1e-12, 0.0, 0.0, 90.0, 800.0, 100.0),
            850.0
        ));
        // Sun at 60° in front of it: beam × cos 60°.
        assert!(close(
            window_irradiance_w_per_m2(60.0, 0.0, 0.0, 90.0, 800.0, 100.0),
            450.0
        ));
        // Same sun behind it: sky only.
        assert!(close(
            window_irradiance_w_per_m2(60.0, 180.0, 0.0, 90.0, 800.0, 100.0),
            50.0
        ));
        // Skylight: beam × sin(altitude) + the whole sky.
        assert!(close(
            window_irradiance_w_per_m2(30.0, 123.0, 0.0, 0.0, 800.0, 100.0),
            500.0
        ));
        // Night: sky term only (0 in any real weather file).
        assert!(close(
            window_irradiance_w_per_m2(-5.0, 0.0, 0.0, 90.0, 800.0, 0.0),
            0.0
        ));
    }

    #[test]
    #[should_panic(expected = "must be > 0 s")]
    fn zero_step_is_refused() {
        Building::new(&ZoneParams::default(), Heater::new(0.0), 20.0, 0.0);
    }

    #[test]
    fn heater_lag_is_exact_first_order() {
        let mut h = Heater::new(1000.0).with_time_constant(600.0);
        h.set_valve_percent(100.0);
        // Mean over [0, τ] of 1000·(1 − e^(−t/τ)) = 1000·e^(−1) = 367.9 W.
        let mean = h.advance(600.0);
        assert!((mean - 1000.0 * (-1.0f64).exp()).abs() < 1e-9, "{mean}");
        assert!((h.heat_w() - 1000.0 * (1.0 - (-1.0f64).exp())).abs() < 1e-9);
        // Two half steps land where one whole step does.
        let mut a = Heater::new(1000.0).with_time_constant(600.0);
        a.set_valve_percent(100.0);
        let m1 = a.advance(300.0);
        let m2 = a.advance(300.0);
        assert!((a.heat_w() - h.heat_w()).abs() < 1e-9);
        assert!(((m1 + m2) / 2.0 - mean).abs() < 1e-9);
        // Without a lag the output is the valve's share at once.
        let mut b = Heater::new(1000.0);
        b.set_valve_percent(40.0);
        assert_eq!(b.advance(60.0), 400.0);
    }
}
