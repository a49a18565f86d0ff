//! The PV-power and base-load forecasts end to end: a real bridge polling
//! an Open-Meteo-shaped JSON from an HTTP server on 127.0.0.1, and reading
//! a consumption sensor's history from the SQLite recorder. No internet.
//! Expected values come from the model's public functions fed with what
//! the server serves.

use crate::common;

use common::history::{add_meter, device, start_bridge};
use common::wait_for;
use hearth::clock::Clock;
use hearth::entity::EntityStore;
use hearth::feeds::weather_driver::WeatherConfig;
use hearth::recorder::{Recorder, RecorderConfig};
use hearth::solar::forecast::{
    BASE_LOAD_ENTITY, BASE_LOAD_SERIES, PV_ENTITY, PV_SERIES, SolarConfig,
};
use hearth::solar::{PvArray, ThermalState, clearsky, sun};
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const H: i64 = 3_600_000;
const DAY: i64 = 24 * H;
const WAIT: Duration = Duration::from_secs(20);
const LAT: f64 = 48.86;
const LON: f64 = 2.34;

/// Serves `body` as JSON to every request (each read and write bounded by
/// a timeout); records the request lines.
async fn serve_json(body: String) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (body, log) = (body.clone(), log.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tokio::time::timeout(Duration::from_secs(5), sock.read(&mut chunk)).await
                    {
                        Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                        _ => return,
                    }
                }
                let text = String::from_utf8_lossy(&buf);
                log.lock()
                    .unwrap()
                    .push(text.lines().next().unwrap_or("").to_string());
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), sock.write_all(reply.as_bytes()))
                        .await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (port, seen)
}

/// 72 hourly values from 00:00 UTC today in unixtime: GHI/DNI/DHI from
/// the clear-sky model at mid-hour with some clouds, temperature and wind
/// varying every hour.
fn open_meteo(day0: i64) -> (String, Vec<(i64, clearsky::Irradiance, f64, f64)>) {
    let hours: Vec<_> = (0..72)
        .map(|i| {
            let t = day0 + i * H;
            let cloud = [0.0, 0.3, 0.8][(i / 24) as usize];
            let w = clearsky::weather(t - H / 2, LAT, LON, cloud);
            (t, w, 5.0 + (i % 24) as f64 * 0.5, 1.0 + (i % 5) as f64)
        })
        .collect();
    let body = json!({
        "latitude": LAT, "longitude": LON, "utc_offset_seconds": 0, "timezone": "GMT",
        "hourly_units": {"time": "unixtime", "temperature_2m": "°C", "shortwave_radiation": "W/m²",
                         "direct_normal_irradiance": "W/m²", "diffuse_radiation": "W/m²", "wind_speed_10m": "m/s"},
        "hourly": {
            "time": hours.iter().map(|h| h.0 / 1000).collect::<Vec<_>>(),
            "temperature_2m": hours.iter().map(|h| h.2).collect::<Vec<_>>(),
            "shortwave_radiation": hours.iter().map(|h| h.1.ghi).collect::<Vec<_>>(),
            "direct_normal_irradiance": hours.iter().map(|h| h.1.dni).collect::<Vec<_>>(),
            "diffuse_radiation": hours.iter().map(|h| h.1.dhi).collect::<Vec<_>>(),
            "wind_speed_10m": hours.iter().map(|h| h.3).collect::<Vec<_>>(),
        }
    });
    (body.to_string(), hours)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_meteo_irradiance_becomes_a_pv_power_series_and_sensor() {
    let now = Clock::real().now_ms();
    let day0 = now - now.rem_euclid(DAY);
    let (body, hours) = open_meteo(day0);
    let (port, seen) = serve_json(body).await;
    let south = PvArray {
        kwp: 4.0,
        tilt_deg: 35.0,
        ..PvArray::new(4.0, LAT, LON)
    };
    let west = PvArray {
        kwp: 2.0,
        azimuth_deg: 250.0,
        inverter_kw: Some(1.5),
        ..PvArray::new(2.0, LAT, LON)
    };
    let dir = tempfile::tempdir().unwrap();
    let bridge = start_bridge(dir.path(), |c| {
        c.weather = Some(
            toml::from_str::<WeatherConfig>(&format!(
                "latitude = {LAT}\nlongitude = {LON}\nurl = \"http://127.0.0.1:{port}/v1/forecast\""
            ))
            .unwrap(),
        );
        c.solar = Some(SolarConfig {
            arrays: vec![south.clone(), west.clone()],
            ..Default::default()
        });
        c.validate().expect("valid config");
    })
    .await;
    let series = wait_for("pv-power series", WAIT, || {
        let s = bridge
            .forecasts
            .range(PV_SERIES, day0 - DAY, day0 + 4 * DAY);
        (!s.is_empty()).then_some(s)
    })
    .await;
    // One step per hour, each starting at the hour before its stamp, then the end.
    assert_eq!(series.len(), 73, "{series:?}");
    assert!(series[72].1.is_nan() && series[72].0 == hours[71].0);
    let mut daytime = 0;
    // PVWatts' stateful cell temperature, one per array, hour after hour.
    let mut thermal = [ThermalState::default(), ThermalState::default()];
    for (i, (start, value)) in series[..72].iter().enumerate() {
        let (stamp, w, _, _) = hours[i];
        assert_eq!(*start, stamp - H);
        let mid = stamp - H / 2;
        // Temperature and wind are instants: interpolated at mid-hour
        // (the first hour has none before it: its stamped value).
        let (temp, wind) = if i == 0 {
            (hours[0].2, hours[0].3)
        } else {
            (
                (hours[i - 1].2 + hours[i].2) / 2.0,
                (hours[i - 1].3 + hours[i].3) / 2.0,
            )
        };
        let want: f64 = [&south, &west]
            .iter()
            .zip(thermal.iter_mut())
            .map(|(a, th)| a.ac_power_w_dynamic(th, mid, w.ghi, w.dni, w.dhi, temp, wind, 1.0))
            .sum();
        assert!((value - want).abs() < 1e-6, "hour {i}: {value} vs {want}");
        if sun::position(mid, LAT, LON).zenith_deg > 91.0 {
            assert_eq!(*value, 0.0, "night, hour {i}");
        }
        if *value > 100.0 {
            daytime += 1;
        }
    }
    assert!(
        daytime >= 15,
        "three days of sun: {daytime} productive hours"
    );
    // The clear first day out-produces the cloudy third one.
    let day_sum = |d: usize| {
        series[d * 24..(d + 1) * 24]
            .iter()
            .map(|x| x.1)
            .sum::<f64>()
    };
    assert!(
        day_sum(0) > 2.0 * day_sum(2),
        "{} vs {}",
        day_sum(0),
        day_sum(2)
    );

    // The sensor: the step in force now, and the forecast from there on.
    let state = wait_for("pv forecast sensor", WAIT, || bridge.store.get(PV_ENTITY)).await;
    let i = series.partition_point(|(t, _)| *t <= state.last_updated) - 1;
    assert_eq!(
        state.state,
        hearth::entity::format_number(series[i].1, 1),
        "{state:?}"
    );
    let list = state.attributes["forecasts"].as_array().unwrap();
    assert_eq!(list.len(), 72 - i);
    assert_eq!(
        list[0]["datetime"],
        Value::from(hearth::clock::iso8601(series[i].0))
    );
    let last = list.last().unwrap();
    assert!((last["value"].as_f64().unwrap() - series[71].1).abs() <= 0.05);
    let spec = bridge.store.spec(PV_ENTITY).unwrap();
    assert_eq!(
        (spec.unit.as_deref(), spec.device_class.as_deref()),
        (Some("W"), Some("power"))
    );

    let req = seen.lock().unwrap().first().cloned().unwrap();
    for part in [
        "hourly=temperature_2m,shortwave_radiation,direct_normal_irradiance,diffuse_radiation,wind_speed_10m",
        "wind_speed_unit=ms",
        "timezone=UTC",
        "latitude=48.86&longitude=2.34",
    ] {
        assert!(req.contains(part), "{req} lacks {part}");
    }
    bridge.stop().await;
}

/// The consumption sensor's history is written by a recorder on a manual
/// clock over the past 16 days (a bridge that ran before), then a bridge
/// with `[solar] base_load_sensor` reads it back from SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_load_forecast_is_the_same_weekday_profile_from_the_recorder() {
    let now = Clock::real().now_ms();
    let today = now - now.rem_euclid(DAY);
    let weekday = |t: i64| (t.div_euclid(DAY) + 4).rem_euclid(7); // 0 = Sunday
    // 200 W, except 12:00–13:00 UTC: 1000 W on today's weekday, 500 W on others.
    let expected = |t: i64| {
        let hour = t.rem_euclid(DAY) / H;
        match (hour, weekday(t) == weekday(now)) {
            (12, true) => 1000.0,
            (12, false) => 500.0,
            _ => 200.0,
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let recorder_config = RecorderConfig {
        keep_days: 30,
        ..RecorderConfig::default()
    };
    {
        let (clock, hand) = Clock::manual(today - 16 * DAY);
        let store = EntityStore::new(clock);
        store
            .upsert_device("bridge", device(hearth::discovery::payload::BRIDGE_DEVICE))
            .unwrap();
        add_meter(&store);
        let rec = Recorder::start(
            &recorder_config,
            dir.path().join("hearth.db"),
            store.clone(),
        )
        .unwrap();
        for d in -16..=0 {
            for (hour, minute) in [(0, 0), (12, 0), (13, 0), (18, 30)] {
                let t = today + d * DAY + hour * H + minute * 60_000;
                if t >= now - H {
                    continue;
                }
                hand.set(t);
                // 18:30 repeats the same value: a sample that changes nothing.
                store
                    .set_state(
                        "sensor.meter_power",
                        hearth::entity::format_number(expected(t), 0),
                        Map::new(),
                    )
                    .unwrap();
            }
        }
        rec.flush().await.unwrap();
        rec.close().await;
    }
    let bridge = start_bridge(dir.path(), |c| {
        c.recorder = recorder_config.clone();
        c.solar = Some(
            toml::from_str::<SolarConfig>(
                "base_load_sensor = \"sensor.meter_power\"\nbase_load_weeks = 2\n\
                 base_load_step_min = 60\nbase_load_horizon_h = 48\n",
            )
            .unwrap(),
        );
        c.validate().expect("valid config");
    })
    .await;
    let series = wait_for("base-load series", WAIT, || {
        let s = bridge
            .forecasts
            .range(BASE_LOAD_SERIES, now - DAY, now + 3 * DAY);
        (!s.is_empty()).then_some(s)
    })
    .await;
    assert_eq!(
        series[0].0,
        now - now.rem_euclid(H),
        "starts at the current hour"
    );
    assert_eq!(series.len(), 49 + 1, "{series:?}");
    assert!(series.last().unwrap().1.is_nan());
    let mut peaks = 0;
    for (t, v) in &series[..49] {
        assert_eq!(*v, expected(*t), "at {}", hearth::clock::iso8601(*t));
        if *v == 1000.0 {
            peaks += 1;
        }
    }
    // Today's noon is in the window unless the test runs after 13:00 UTC
    // (then only tomorrow's and the day after's 500 W noons are).
    assert_eq!(peaks, if now - today < 13 * H { 1 } else { 0 });
    let state = wait_for("base-load sensor", WAIT, || {
        bridge.store.get(BASE_LOAD_ENTITY)
    })
    .await;
    assert_eq!(state.state, hearth::entity::format_number(expected(now), 1));
    assert_eq!(state.attributes["forecasts"].as_array().unwrap().len(), 49);
    bridge.stop().await;
}
