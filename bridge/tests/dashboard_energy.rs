//! `hearth/energy/summary` (the dashboard's energy page) end to end: the
//! Tasmota strip twin on the embedded broker, a time-of-use tariff (HC
//! until 06:00, HP after), two users on two outlets (`[usage]`) and the
//! recorder; the answer's figures are checked against sums computed here
//! straight from the database (the usage ledger's rows, the statistics'
//! hourly growth) and against the meters' readings.
//!
//! The clock is simulated (720× wall time) as in `usage.rs`.

use crate::common;

use common::history::Ws;
use common::wait_for;
use hearth::api::auth::tokens;
use hearth::app::Bridge;
use hearth::broker::EmbeddedBroker;
use hearth::clock::Clock;
use hearth::config::Config;
use hearth::entity::{CallSource, ServiceCall};
use hearth::shutdown;
use hearth::twin::tasmota_strip_sim::{self, SimMeter, StripSimConfig};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
/// 2026-12-07 04:30 Paris (HC until 06:00), a Monday.
const T0: i64 = 1_796_614_200_000;
/// 2026-12-07 06:00 Paris: HP starts.
const HP_START: i64 = T0 + 90 * 60_000;
/// 2026-12-07 00:00 Paris (UTC+1).
const MIDNIGHT: i64 = T0 - (4 * 60 + 30) * 60_000;
const SPEED: f64 = 720.0;
const OUTLETS: [(&str, &str); 2] = [
    ("alice", "sensor.strip1_outlet1_energy"),
    ("bob", "sensor.strip1_outlet2_energy"),
];

fn config(dir: &Path) -> Config {
    let text = format!(
        r#"
data_dir = "{dir}"
[mqtt]
port = {port}
[http]
port = 0
[[tasmota_strip]]
id = "strip1"
name = "Strip 1"
topic = "strip1"
outlets = 2
meter = "per_outlet"
[tariff]
kind = "tou"
timezone = "Europe/Paris"
windows = [{{start = "06:00", price = 0.25, period = "HP"}}, {{start = "22:00", price = 0.15, period = "HC"}}]
[usage]
timezone = "Europe/Paris"
[[usage.users]]
id = "alice"
name = "Alice"
[[usage.users]]
id = "bob"
name = "Bob"
[[usage.outlets]]
energy_entity = "sensor.strip1_outlet1_energy"
switch_entity = "switch.strip1_outlet1"
user = "alice"
[[usage.outlets]]
energy_entity = "sensor.strip1_outlet2_energy"
switch_entity = "switch.strip1_outlet2"
user = "bob"
"#,
        dir = dir.display(),
        port = EmbeddedBroker::free_port(),
    );
    Config::from_toml(&text, "dashboard_energy test").expect("the test config is valid")
}

fn number(b: &Bridge, id: &str) -> Option<f64> {
    b.store.get(id).and_then(|s| s.number())
}

async fn switch(b: &Bridge, service: &str, id: &str) {
    b.router
        .call(ServiceCall::new(
            "switch",
            service,
            id,
            Map::new(),
            CallSource::Internal,
        ))
        .await
        .unwrap_or_else(|e| panic!("switch.{service} {id}: {e}"));
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// (user, period) → (Wh, €), and hour → Wh, from the usage ledger's rows
/// of hours in `[start, end)`.
type Sums = (
    BTreeMap<(String, String), (f64, f64)>,
    BTreeMap<i64, (f64, f64)>,
);

fn ledger_sums(db: &Path, start: i64, end: i64) -> Sums {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut by_user = BTreeMap::new();
    let mut by_hour: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    let mut stmt = conn
        .prepare("SELECT user, hour_ms, period, wh, eur FROM usage_ledger WHERE hour_ms >= ?1 AND hour_ms < ?2")
        .unwrap();
    let rows = stmt
        .query_map([start, end], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, f64>(3)?,
                r.get::<_, f64>(4)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (user, hour, period, wh, eur) = row.unwrap();
        let e: &mut (f64, f64) = by_user.entry((user, period)).or_default();
        e.0 += wh;
        e.1 += eur;
        let h = by_hour.entry(hour).or_default();
        h.0 += wh;
        h.1 += eur;
    }
    (by_user, by_hour)
}

/// A meter's growth (its unit) in hours starting at or after `start`, from
/// the statistics' `sum` column, and its last compiled `state`.
fn statistics_growth(db: &Path, entity_id: &str, start: i64) -> (f64, Option<f64>) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT s.start_ms, s.state, s.sum FROM statistics s JOIN entities e USING (metadata_id)
             WHERE e.entity_id = ?1 ORDER BY s.start_ms",
        )
        .unwrap();
    let rows: Vec<(i64, Option<f64>, Option<f64>)> = stmt
        .query_map([entity_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut prev = 0.0;
    let mut growth = 0.0;
    let mut last_state = None;
    for (t, state, sum) in rows {
        let sum = sum.unwrap_or(0.0);
        if t >= start {
            growth += sum - prev;
        }
        prev = sum;
        last_state = state.or(last_state);
    }
    (growth, last_state)
}

fn find<'a>(list: &'a Value, key: &str, id: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|v| v[key] == json!(id))
        .unwrap_or_else(|| panic!("no {key} = {id} in {list}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_equals_the_ledgers_and_statistics_sums() {
    common::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hearth.db");
    let clock = Clock::simulated_from(T0, SPEED);
    let b = Bridge::start(config(dir.path()), clock)
        .await
        .expect("bridge starts");
    let (strip_power, off) = shutdown::channel();
    let (_strip, _task) = tasmota_strip_sim::spawn(
        clock,
        &b.broker.host,
        b.broker.port,
        StripSimConfig {
            topic: "strip1".into(),
            client_id: "DVES_STRIP1".into(),
            loads_w: vec![1000.0, 500.0],
            voltage_v: 230.0,
            meter: SimMeter::PerChannel,
            tele_period_s: 30.0,
            breaker: None,
            circuit: None,
        },
        off,
    )
    .expect("the strip starts");
    for (_, id) in OUTLETS {
        wait_for(&format!("{id} read"), WAIT, || number(&b, id)).await;
    }
    wait_for("the tariff in HC", WAIT, || {
        b.store
            .get("sensor.tariff_price")
            .filter(|s| s.attributes.get("period").and_then(|p| p.as_str()) == Some("HC"))
    })
    .await;
    switch(&b, "turn_on", "switch.strip1_outlet1").await;
    switch(&b, "turn_on", "switch.strip1_outlet2").await;
    // Into HP by 20 simulated minutes: energy in both periods, and the
    // hours before compiled into statistics.
    wait_for("06:20 Paris", WAIT, || {
        (clock.now_ms() > HP_START + 20 * 60_000).then_some(())
    })
    .await;
    switch(&b, "turn_off", "switch.strip1_outlet1").await;
    switch(&b, "turn_off", "switch.strip1_outlet2").await;
    for n in [1, 2] {
        let id = format!("sensor.strip1_outlet{n}_power");
        wait_for(&format!("{id} reads 0 W"), WAIT, || {
            (number(&b, &id) == Some(0.0)).then_some(())
        })
        .await;
    }
    // The users' totals have caught up with their meters (the ledger rows
    // are queued with them).
    for (user, meter) in OUTLETS {
        wait_for(&format!("{user}'s total = {meter}"), WAIT, || {
            let m = number(&b, meter)?;
            let u = number(&b, &format!("sensor.{user}_energy_today"))? * 1000.0;
            close(m, u, 1.0).then_some(())
        })
        .await;
    }
    let rec = b.recorder.clone().expect("the recorder runs");
    rec.flush().await.unwrap();
    rec.maintain().await.unwrap();

    let (_, token) = tokens::create(dir.path(), "tests").unwrap();
    let mut ws = Ws::auth(b.http_addr, &token).await;
    let answer = ws
        .call(json!({"type": "hearth/energy/summary", "period": "day"}))
        .await;
    assert_eq!(answer["success"], json!(true), "{answer}");
    let s = &answer["result"];
    assert_eq!(s["period"], "day");
    assert_eq!(s["timezone"], "Europe/Paris");
    assert_eq!(s["start_ms"], json!(MIDNIGHT), "{s}");
    assert_eq!(s["end_ms"], json!(MIDNIGHT + 24 * 3_600_000));
    let (start, end) = (MIDNIGHT, MIDNIGHT + 24 * 3_600_000);
    println!(
        "users {}\ndevices {}\ncost {}",
        s["users"], s["devices"], s["cost"]
    );

    // Users: the ledger's rows, summed here.
    let (by_user, by_hour) = ledger_sums(&db, start, end);
    assert!(
        by_user.keys().any(|(_, p)| p == "HC") && by_user.keys().any(|(_, p)| p == "HP"),
        "energy in both tariff periods: {by_user:?}"
    );
    for (user, _) in OUTLETS {
        let u = find(&s["users"], "id", user);
        let mine: Vec<_> = by_user.iter().filter(|((u, _), _)| u == user).collect();
        let wh: f64 = mine.iter().map(|(_, v)| v.0).sum();
        let eur: f64 = mine.iter().map(|(_, v)| v.1).sum();
        assert!(wh > 100.0, "{user} used energy: {wh} Wh");
        assert!(close(f(&u["wh"]), wh, 1e-6), "{user}: {u} vs {wh} Wh");
        assert!(close(f(&u["eur"]), eur, 1e-9), "{user}: {u} vs {eur} €");
        for ((_, period), (pwh, peur)) in &mine {
            let p = &u["periods"][period.as_str()];
            assert!(close(f(&p["wh"]), *pwh, 1e-6), "{user} {period}: {p}");
            assert!(close(f(&p["eur"]), *peur, 1e-9), "{user} {period}: {p}");
        }
    }
    // Cost by tariff period: every user's rows (no [energy] here).
    assert_eq!(s["cost"]["source"], "usage", "{s}");
    let mut periods: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for ((_, p), (wh, eur)) in &by_user {
        let e = periods.entry(p.as_str()).or_default();
        e.0 += wh;
        e.1 += eur;
    }
    let listed = s["cost"]["periods"].as_array().unwrap();
    assert_eq!(listed.len(), periods.len(), "{s}");
    for row in listed {
        let (wh, eur) = periods[row["period"].as_str().unwrap()];
        assert!(close(f(&row["wh"]), wh, 1e-6), "{row}");
        assert!(close(f(&row["eur"]), eur, 1e-9), "{row}");
    }
    // The chart's hours: one per hour from midnight to now, each the
    // ledger's hour.
    let hours = s["hours"].as_array().unwrap();
    assert_eq!(
        hours.len() as i64,
        (s["now_ms"].as_i64().unwrap() - start) / 3_600_000 + 1,
        "{s}"
    );
    for h in hours {
        let t = h["start_ms"].as_i64().unwrap();
        let want = by_hour.get(&t).map_or(0.0, |v| v.0);
        assert!(close(f(&h["consumption_wh"]), want, 1e-6), "{h}");
        assert_eq!(h["solar_wh"], Value::Null, "no solar meter");
    }
    assert!(
        hours
            .iter()
            .filter(|h| f(&h["consumption_wh"]) > 0.0)
            .count()
            >= 2
    );

    // Devices and outlets: the statistics' growth plus the reading since
    // the last compiled hour; the meters started at 0 today, so that is
    // also their reading now.
    for (user, meter) in OUTLETS {
        let (growth, last_state) = statistics_growth(&db, meter, start);
        let last = last_state.expect("hours of the meter were compiled");
        let now = number(&b, meter).unwrap();
        let want = growth + (now - last);
        let d = find(&s["devices"], "entity_id", meter);
        assert_eq!(d["device_id"], "strip1");
        assert!(close(f(&d["wh"]), want, 1e-6), "{d} vs {want} Wh");
        assert!(close(f(&d["wh"]), now, 1e-6), "{d} vs the meter {now} Wh");
        // Priced at the recorded tariff per hour; the usage ledger priced
        // each reading when it came (a reading just after 06:00 carries
        // up to 30 s of HC energy at the HP price).
        let u = find(&s["users"], "id", user);
        assert!(close(f(&d["eur"]), f(&u["eur"]), 0.005), "{d} vs {u}");
        let o = find(&s["outlets"], "energy_entity", meter);
        assert_eq!(o["user"], user);
        assert_eq!(o["wh"], d["wh"]);
        assert_eq!(o["eur"], d["eur"]);
    }

    // This week and this month hold the same (all of it is today).
    for period in ["week", "month"] {
        let other = ws
            .call(json!({"type": "hearth/energy/summary", "period": period}))
            .await;
        let o = &other["result"];
        assert_eq!(o["period"], period, "{other}");
        assert!(o["start_ms"].as_i64().unwrap() <= start);
        for (user, _) in OUTLETS {
            assert_eq!(
                find(&o["users"], "id", user)["wh"],
                find(&s["users"], "id", user)["wh"],
                "{period}"
            );
        }
    }

    // Bad input names the field.
    for (cmd, field) in [
        (
            json!({"type": "hearth/energy/summary", "period": "year"}),
            "data['period']",
        ),
        (
            json!({"type": "hearth/energy/summary", "period": 3}),
            "data['period']",
        ),
        (
            json!({"type": "hearth/energy/summary", "from": "today"}),
            "data['from']",
        ),
    ] {
        let e = ws.call(cmd.clone()).await;
        assert_eq!(e["success"], json!(false), "{cmd}: {e}");
        assert_eq!(e["error"]["code"], "invalid_format", "{cmd}: {e}");
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(msg.contains(field), "{cmd}: {msg}");
    }
    strip_power.trigger();
    b.stop().await;
}

/// A fixed offset where it is 10:00–14:00 now (no local midnight during
/// the test), as in `energy.rs`.
fn midday_offset() -> String {
    const HOUR: i64 = 3_600_000;
    let now_h = (Clock::real().now_ms() / HOUR).rem_euclid(24);
    let off = (12 - now_h + 36) % 24 - 12;
    format!("{}{:02}:00", if off < 0 { '-' } else { '+' }, off.abs())
}

/// (quantity, period) → (Wh, €) and hour → (import, export, solar) Wh,
/// from `energy.db`'s rows of hours in `[start, end)`.
type EnergySums = (
    BTreeMap<(String, String), (f64, f64)>,
    BTreeMap<i64, [f64; 3]>,
);

fn energy_sums(path: &Path, start: i64, end: i64) -> EnergySums {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT quantity, hour_ms, period, wh, eur FROM energy_ledger WHERE hour_ms >= ?1 AND hour_ms < ?2")
        .unwrap();
    let mut sums: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    let mut hours: BTreeMap<i64, [f64; 3]> = BTreeMap::new();
    let rows = stmt
        .query_map([start, end], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, f64>(3)?,
                r.get::<_, f64>(4)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (q, hour, period, wh, eur) = row.unwrap();
        let i = match q.as_str() {
            "grid_import" => Some(0),
            "grid_export" => Some(1),
            "solar" => Some(2),
            _ => None,
        };
        if let Some(i) = i {
            hours.entry(hour).or_default()[i] += wh;
        }
        let e = sums.entry((q, period)).or_default();
        e.0 += wh;
        e.1 += eur;
    }
    (sums, hours)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grid_solar_and_cost_by_period_come_from_the_energy_ledger() {
    use hearth::entity::{Component, EntitySpec};
    let dir = tempfile::tempdir().unwrap();
    let energy: hearth::energy::EnergyConfig = toml::from_str(&format!(
        "grid_import = \"sensor.grid_import_energy\"\ngrid_export = \"sensor.grid_export_energy\"\n\
         solar_production = \"sensor.pv_energy\"\ndevices = [\"sensor.heater_energy\"]\n\
         timezone = \"{}\"\n",
        midday_offset()
    ))
    .unwrap();
    let b = common::history::start_bridge(dir.path(), |c| c.energy = Some(energy)).await;
    b.store
        .upsert_device("test", common::history::device("meters"))
        .unwrap();
    for key in [
        "grid_import_energy",
        "grid_export_energy",
        "pv_energy",
        "heater_energy",
    ] {
        let mut spec = EntitySpec::new("meters", key, Component::Sensor)
            .class("energy")
            .measured("Wh", "total_increasing");
        spec.entity_id = format!("sensor.{key}");
        b.store.upsert_entity(spec).unwrap();
    }
    let mut price = EntitySpec::new("meters", "tariff_price", Component::Sensor);
    price.entity_id = "sensor.tariff_price".into();
    price.unit = Some("€/kWh".into());
    b.store.upsert_entity(price).unwrap();
    let set = |id: &str, v: f64| {
        b.store
            .set_state(&format!("sensor.{id}"), v.to_string(), Map::new())
            .unwrap()
    };
    let tariff = |price: f64, period: &str| {
        let mut attrs = Map::new();
        attrs.insert("period".into(), json!(period));
        b.store
            .set_state("sensor.tariff_price", price.to_string(), attrs)
            .unwrap()
    };
    let (hc, hp) = (0.2, 0.3);
    tariff(hc, "HC");
    for id in [
        "grid_import_energy",
        "grid_export_energy",
        "pv_energy",
        "heater_energy",
    ] {
        set(id, 0.0);
    }
    set("grid_import_energy", 1000.0);
    set("pv_energy", 500.0);
    set("grid_export_energy", 200.0);
    set("heater_energy", 300.0);
    tariff(hp, "HP");
    set("grid_import_energy", 1500.0);
    wait_for("the import counted", WAIT, || {
        (number(&b, "sensor.energy_grid_import_today") == Some(1.5)).then_some(())
    })
    .await;
    wait_for("the export counted", WAIT, || {
        (number(&b, "sensor.energy_grid_export_today") == Some(0.2)).then_some(())
    })
    .await;
    b.recorder.clone().unwrap().flush().await.unwrap();
    // The ledger is written every half second.
    let ledger = dir.path().join("energy.db");
    wait_for("energy.db has the HP import", WAIT, || {
        let (sums, _) = energy_sums(&ledger, 0, i64::MAX);
        sums.contains_key(&("grid_import".into(), "HP".into()))
            .then_some(())
    })
    .await;

    let (_, token) = tokens::create(dir.path(), "tests").unwrap();
    let mut ws = Ws::auth(b.http_addr, &token).await;
    let answer = ws.call(json!({"type": "hearth/energy/summary"})).await;
    assert_eq!(answer["success"], json!(true), "{answer}");
    let s = &answer["result"];
    println!(
        "grid {}\ncost {}\ndevices {}",
        s["grid"], s["cost"], s["devices"]
    );
    assert_eq!(s["period"], "day", "day by default");
    let (start, end) = (
        s["start_ms"].as_i64().unwrap(),
        s["end_ms"].as_i64().unwrap(),
    );
    let (sums, hours) = energy_sums(&ledger, start, end);
    let total = |q: &str| -> f64 {
        sums.iter()
            .filter(|((k, _), _)| k == q)
            .map(|(_, v)| v.0)
            .sum()
    };
    let g = &s["grid"];
    let (import, export, solar) = (total("grid_import"), total("grid_export"), total("solar"));
    assert!(close(f(&g["import_wh"]), import, 1e-9), "{g}");
    assert!(close(f(&g["export_wh"]), export, 1e-9), "{g}");
    assert!(close(f(&g["solar_wh"]), solar, 1e-9), "{g}");
    assert!(
        close(f(&g["consumption_wh"]), import + solar - export, 1e-9),
        "{g}"
    );
    assert!(
        close(f(&g["self_consumed_wh"]), solar - export, 1e-9),
        "{g}"
    );
    let sufficiency = 100.0 * (solar - export) / (import + solar - export);
    assert!(
        close(f(&g["self_sufficiency_pct"]), sufficiency, 1e-9),
        "{g}"
    );
    assert_eq!(g["has_solar"], json!(true));
    // What the readings above make of it.
    assert_eq!((import, export, solar), (1500.0, 200.0, 500.0));

    assert_eq!(s["cost"]["source"], "grid_import", "{s}");
    let listed = s["cost"]["periods"].as_array().unwrap();
    let import_periods: Vec<_> = sums
        .iter()
        .filter(|((q, _), _)| q == "grid_import")
        .collect();
    assert_eq!(listed.len(), import_periods.len(), "{s}");
    for ((_, period), (wh, eur)) in import_periods {
        let row = listed
            .iter()
            .find(|r| r["period"] == json!(period))
            .unwrap_or_else(|| panic!("period {period} in {s}"));
        assert!(close(f(&row["wh"]), *wh, 1e-9), "{row}");
        assert!(close(f(&row["eur"]), *eur, 1e-12), "{row}");
    }
    let hc_row = listed.iter().find(|r| r["period"] == "HC").unwrap();
    assert!(close(f(&hc_row["eur"]), 1.0 * hc, 1e-12), "{hc_row}");
    assert!(close(f(&s["cost"]["eur"]), 1.0 * hc + 0.5 * hp, 1e-12));

    // The chart: consumption and solar per hour, the ledger's hours.
    let mut sum_consumption = 0.0;
    let mut sum_solar = 0.0;
    for h in s["hours"].as_array().unwrap() {
        let t = h["start_ms"].as_i64().unwrap();
        let [i, e, p] = hours.get(&t).copied().unwrap_or_default();
        assert!(
            close(f(&h["consumption_wh"]), (i + p - e).max(0.0), 1e-9),
            "{h}"
        );
        assert!(close(f(&h["solar_wh"]), p, 1e-9), "{h}");
        sum_consumption += f(&h["consumption_wh"]);
        sum_solar += f(&h["solar_wh"]);
    }
    assert!(close(sum_solar, solar, 1e-9));
    assert!(close(sum_consumption, import + solar - export, 1e-9));

    // The heater (an [energy] device) is listed with the device meters;
    // no hour of it is compiled yet: its readings since the period began.
    // The grid and solar meters are not devices.
    let d = find(&s["devices"], "entity_id", "sensor.heater_energy");
    assert!(close(f(&d["wh"]), 300.0, 1e-9), "{d}");
    let eur = f(&d["eur"]);
    assert!((0.3 * hc - 1e-9..=0.3 * hp + 1e-9).contains(&eur), "{d}");
    for id in ["sensor.grid_import_energy", "sensor.pv_energy"] {
        assert!(
            !s["devices"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["entity_id"] == id),
            "{id} in {s}"
        );
    }
    assert_eq!(s["users"], json!([]));
    b.stop().await;
}
