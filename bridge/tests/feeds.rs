//! The tariff and weather feeds end to end: a real bridge polling the feed
//! twin (`twin::feeds_sim`) over HTTP on 127.0.0.1, entities in the store
//! and in Home Assistant's discovery, series in the bridge's `Forecasts`.
//! Expected values come from the feeds' own pure models fed with what the
//! twin serves. No internet.

use crate::common;

use common::{BrokerKind, Observer, TestBroker, log_mark, logs_since, wait_for};
use hearth::app::Bridge;
use hearth::clock::Clock;
use hearth::config::Config;
use hearth::feeds::tariff::{
    PriceModel, TempoColour, TempoConfig, TempoDay, TempoPeriod, TempoTariff, TouConfig, TouTariff,
    europe_paris, parse_spot_prices,
};
use hearth::feeds::tariff_driver::{
    NEXT_CHANGE_ENTITY, PERIOD_ENTITY, PRICE_ENTITY, PROBLEM_ENTITY, TODAY_ENTITY, TOMORROW_ENTITY,
    TariffConfig,
};
use hearth::feeds::weather_driver::{IRRADIANCE_ENTITY, TEMPERATURE_ENTITY, WeatherConfig};
use hearth::forecast::{OUTDOOR_TEMPERATURE, PRICE, SOLAR_IRRADIANCE};
use hearth::shutdown::{self, ShutdownTrigger};
use hearth::twin::feeds_sim::{FeedFault, FeedSim, FeedSimConfig};
use jiff::civil::Date;
use serde_json::Value;
use std::time::Duration;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
const WAIT: Duration = Duration::from_secs(15);

struct Setup {
    bridge: Option<Bridge>,
    sim: FeedSim,
    clock: Clock,
    broker: TestBroker,
    _data: tempfile::TempDir,
    sim_stop: ShutdownTrigger,
}

impl Setup {
    async fn start(
        speed: f64,
        sim_config: FeedSimConfig,
        tweak: impl FnOnce(&mut Config, &FeedSim),
    ) -> Setup {
        common::init_logs();
        let broker = common::broker(BrokerKind::Embedded);
        let clock = Clock::simulated(speed);
        let (sim_stop, sim_shutdown) = shutdown::channel();
        let sim = FeedSim::spawn(clock, sim_config, sim_shutdown).expect("feed twin starts");
        let data = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.mqtt.url = Some(format!("mqtt://127.0.0.1:{}", broker.addr.port));
        config.http.port = 0;
        config.esp32.enabled = false;
        config.data_dir = Some(data.path().to_path_buf());
        tweak(&mut config, &sim);
        config.validate().expect("the test config is valid");
        let bridge = Bridge::start(config, clock).await.expect("bridge starts");
        Setup {
            bridge: Some(bridge),
            sim,
            clock,
            broker,
            _data: data,
            sim_stop,
        }
    }

    fn bridge(&self) -> &Bridge {
        self.bridge.as_ref().unwrap()
    }

    fn state(&self, entity: &str) -> Option<hearth::entity::State> {
        self.bridge().store.get(entity)
    }

    async fn stop(mut self) {
        if let Some(b) = self.bridge.take() {
            b.stop().await;
        }
        self.sim_stop.trigger();
    }
}

fn tariff(text: &str) -> TariffConfig {
    toml::from_str(text).expect("tariff TOML")
}

fn paris_date(t_ms: i64) -> Date {
    europe_paris()
        .to_datetime(jiff::Timestamp::from_millisecond(t_ms).unwrap())
        .date()
}

/// ms of the first Paris local `hour`:00 strictly after `t_ms`.
fn next_paris_hour(t_ms: i64, hour: i8) -> i64 {
    let tz = europe_paris();
    let mut d = paris_date(t_ms).yesterday().unwrap();
    loop {
        let at = tz
            .to_timestamp(d.at(hour, 0, 0, 0))
            .unwrap()
            .as_millisecond();
        if at > t_ms {
            return at;
        }
        d = d.tomorrow().unwrap();
    }
}

/// Blue, white, red in turn over the days around today (neighbours
/// differ, so every 06:00 boundary changes the colour), and served as
/// soon as they are tomorrow's.
fn rotating_colours(now_ms: i64) -> FeedSimConfig {
    let mut cfg = FeedSimConfig {
        tomorrow_published_at: None,
        ..FeedSimConfig::default()
    };
    let today = paris_date(now_ms);
    let colours = [TempoColour::Blue, TempoColour::White, TempoColour::Red];
    let mut d = today.checked_sub(jiff::Span::new().days(5)).unwrap();
    for i in 0..30 {
        cfg.colours.insert(d, colours[i % 3]);
        d = d.tomorrow().unwrap();
    }
    cfg
}

/// The Tempo model with the colours the twin serves at `now_ms` for the
/// days around it (what the feed has fetched by then).
fn expected_tempo(sim: &FeedSim, now_ms: i64) -> TempoTariff {
    let mut t = TempoTariff::new(&TempoConfig::default()).unwrap();
    let cfg = sim.config();
    let mut d = paris_date(now_ms)
        .checked_sub(jiff::Span::new().days(1))
        .unwrap();
    for _ in 0..4 {
        t.calendar_mut().merge([TempoDay {
            date: d,
            colour: cfg.served_colour(d, now_ms),
        }]);
        d = d.tomorrow().unwrap();
    }
    t
}

/// The value a step series (each sample valid until the next) gives at `t`.
fn value_at(series: &[(i64, f64)], t: i64) -> Option<f64> {
    series
        .iter()
        .rev()
        .find(|(s, _)| *s <= t)
        .map(|(_, v)| *v)
        .filter(|v| v.is_finite())
}

fn number(s: &hearth::entity::State) -> f64 {
    s.state
        .parse()
        .unwrap_or_else(|_| panic!("{} is not a number: {s:?}", s.entity_id))
}

fn colour(c: Option<TempoColour>) -> String {
    c.map_or("unknown".into(), |c| c.to_string())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tempo_colours_become_entities_discovery_and_a_price_forecast() {
    let now = Clock::real().now_ms();
    let s = Setup::start(1.0, rotating_colours(now), |c, sim| {
        c.tariff = Some(tariff(&format!(
            "kind = \"tempo\"\nsource = \"couleur-tempo\"\nurl = \"{}\"",
            sim.couleur_tempo_url()
        )));
    })
    .await;
    let ha = Observer::connect(&s.broker.addr, "homeassistant/#").await;
    let wire = Observer::connect(&s.broker.addr, "hearth/tariff/#").await;

    // Entities: the colours of the colour day in force and the next one,
    // the price and period in force.
    let expected = wait_for("tempo entities with the served colours", WAIT, || {
        let now = s.clock.now_ms();
        let model = expected_tempo(&s.sim, now);
        let slot = model.slot_at(now)?;
        let today = s.state(TODAY_ENTITY)?;
        let tomorrow = s.state(TOMORROW_ENTITY)?;
        let price = s.state(PRICE_ENTITY)?;
        let ok = today.state == colour(model.calendar().colour(slot.tempo_day))
            && tomorrow.state == colour(model.calendar().colour(slot.tempo_day.tomorrow().ok()?))
            && close(number(&price), model.price_at(now)?);
        ok.then_some((model, slot, today, price))
    })
    .await;
    let (model, slot, today, price) = expected;
    assert_ne!(today.state, "unknown", "today's colour is served");
    assert_eq!(today.attributes["date"], slot.tempo_day.to_string());
    assert_eq!(
        today.attributes["options"],
        serde_json::json!(["blue", "white", "red", "unknown"])
    );
    let period = match slot.period {
        TempoPeriod::Peak => "HP",
        TempoPeriod::OffPeak => "HC",
    };
    assert_eq!(s.state(PERIOD_ENTITY).unwrap().state, period);
    assert_eq!(price.attributes["period"], period);
    assert_eq!(price.attributes["colour"], today.state);
    assert_eq!(price.attributes["assumed"], false);
    assert_eq!(s.state(PROBLEM_ENTITY).unwrap().state, "off");

    // Next change: the next 06:00 or 22:00 in Paris.
    let now = s.clock.now_ms();
    let next = next_paris_hour(now, 6).min(next_paris_hour(now, 22));
    let nc = s.state(NEXT_CHANGE_ENTITY).unwrap();
    assert_eq!(nc.state, hearth::clock::iso8601(next), "{nc:?}");
    assert!(close(
        nc.attributes["price"].as_f64().unwrap(),
        model.price_at(next).unwrap()
    ));

    // The price forecast follows the model: at the HC start (22:00), across
    // the 06:00 colour-day boundary, and to now + 48 h.
    let series = s.bridge().forecasts.range(PRICE, now, now + 49 * HOUR_MS);
    let hc = next_paris_hour(now, 22);
    let six = next_paris_hour(now, 6);
    let mut instants = vec![now, now + 47 * HOUR_MS];
    for b in [hc, six, six + DAY_MS, hc + DAY_MS] {
        instants.extend([b - 1, b, b + 1]);
    }
    for t in instants {
        assert_eq!(
            value_at(&series, t),
            model.price_at(t),
            "price at {} (series {series:?})",
            hearth::clock::iso8601(t)
        );
    }
    assert_ne!(
        model.price_at(six - 1),
        model.price_at(six),
        "06:00 changes HC of one colour to HP of another"
    );
    assert_ne!(
        model.price_at(hc - 1),
        model.price_at(hc),
        "22:00 starts HC"
    );
    let (last_t, last_v) = *series.last().unwrap();
    assert!(
        last_t >= now + 48 * HOUR_MS - 1000 && last_v.is_nan(),
        "ends with a gap: {series:?}"
    );

    // Discovery: one device config with every entity, as for other drivers.
    let config: Value = wait_for("tariff discovery config", WAIT, || {
        let raw = ha
            .current()
            .get("homeassistant/device/tariff/config")?
            .clone();
        serde_json::from_slice::<Value>(&raw).ok()
    })
    .await;
    let cmps = &config["cmps"];
    for key in [
        "price",
        "period",
        "tempo_today",
        "tempo_tomorrow",
        "next_change",
        "problem",
    ] {
        assert!(cmps.get(key).is_some(), "{key} in {config}");
    }
    assert_eq!(cmps["price"]["unit_of_measurement"], "€/kWh");
    assert_eq!(cmps["price"]["device_class"], "monetary");
    assert_eq!(
        cmps["tempo_today"]["default_entity_id"],
        "sensor.tempo_today"
    );
    assert_eq!(cmps["problem"]["device_class"], "problem");
    assert_eq!(config["dev"]["name"], "Tariff");
    let on_wire = wait_for("tempo_today state on MQTT", WAIT, || {
        wire.payloads_on("hearth/tariff/tempo_today/state").pop()
    })
    .await;
    assert_eq!(on_wire, today.state);
    assert!(s.sim.count("/api/jourTempo/today") >= 1);
    assert!(s.sim.count("/api/jourTempo/tomorrow") >= 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tempo_period_changes_on_the_clock_at_hc_and_hp_boundaries() {
    // An hour per second: a 06:00 or 22:00 boundary comes within 16 s.
    let speed = 3600.0;
    let now = Clock::real().now_ms();
    let s = Setup::start(speed, rotating_colours(now), |c, sim| {
        c.tariff = Some(tariff(&format!(
            "kind = \"tempo\"\nurl = \"{}\"\npoll_interval_s = 21600",
            sim.couleur_tempo_url()
        )));
    })
    .await;
    let first = wait_for("a period", WAIT, || s.state(PERIOD_ENTITY)).await;
    let mut seen = vec![first.state.clone()];
    for _ in 0..2 {
        let before = seen.last().unwrap().clone();
        let changed = wait_for("the period to change", Duration::from_secs(25), || {
            s.state(PERIOD_ENTITY).filter(|p| p.state != before)
        })
        .await;
        let at = changed.last_changed;
        let model = expected_tempo(&s.sim, at);
        let slot = model.slot_at(at).unwrap();
        let want = match slot.period {
            TempoPeriod::Peak => "HP",
            TempoPeriod::OffPeak => "HC",
        };
        assert_eq!(
            changed.state,
            want,
            "period at {}",
            hearth::clock::iso8601(at)
        );
        // Re-published at the boundary itself, not at the next poll.
        let boundary =
            next_paris_hour(at - 5 * 60_000, 6).min(next_paris_hour(at - 5 * 60_000, 22));
        assert!(
            (at - boundary).abs() < 5 * 60_000,
            "changed at {}, boundary {}",
            hearth::clock::iso8601(at),
            hearth::clock::iso8601(boundary)
        );
        let price = wait_for("the price of the new period", WAIT, || {
            s.state(PRICE_ENTITY)
                .filter(|p| p.attributes["period"] == want)
        })
        .await;
        assert!(
            close(number(&price), model.price_at(at).unwrap()),
            "{price:?} vs model {:?} at {}",
            model.price_at(at),
            hearth::clock::iso8601(at)
        );
        seen.push(changed.state);
    }
    assert_ne!(seen[1], seen[0]);
    assert_ne!(seen[2], seen[1]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rte_calendar_source_gives_the_same_colours() {
    let now = Clock::real().now_ms();
    let s = Setup::start(1.0, rotating_colours(now), |c, sim| {
        c.tariff = Some(tariff(&format!(
            "kind = \"tempo\"\nsource = \"rte\"\nurl = \"{}\"\n[prices]\nred_hp = 0.7",
            sim.rte_url()
        )));
    })
    .await;
    let mut prices_cfg = TempoConfig::default();
    prices_cfg.prices.red_hp = 0.7;
    wait_for("colours from the RTE calendar", WAIT, || {
        let now = s.clock.now_ms();
        let mut model = TempoTariff::new(&prices_cfg).unwrap();
        let served = expected_tempo(&s.sim, now);
        let slot = served.slot_at(now)?;
        for d in [slot.tempo_day, slot.tempo_day.tomorrow().ok()?] {
            model.calendar_mut().merge([TempoDay {
                date: d,
                colour: served.calendar().colour(d),
            }]);
        }
        let ok = s.state(TODAY_ENTITY)?.state == colour(model.calendar().colour(slot.tempo_day))
            && s.state(TOMORROW_ENTITY)?.state
                == colour(model.calendar().colour(slot.tempo_day.tomorrow().ok()?))
            && close(number(&s.state(PRICE_ENTITY)?), model.price_at(now)?);
        ok.then_some(())
    })
    .await;
    assert!(s.sim.count("/rte/tempo_like_calendars") >= 1);
    assert_eq!(s.sim.count("/api/"), 0, "RTE only");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_meteo_forecast_becomes_entities_and_series() {
    let s = Setup::start(1.0, FeedSimConfig::default(), |c, sim| {
        c.weather = Some(
            toml::from_str::<WeatherConfig>(&format!(
                "latitude = 48.86\nlongitude = 2.34\nurl = \"{}\"",
                sim.open_meteo_url()
            ))
            .unwrap(),
        );
    })
    .await;
    let ha = Observer::connect(&s.broker.addr, "homeassistant/#").await;
    let weather = s.sim.config().weather;
    let temp = wait_for("outdoor temperature entity", WAIT, || {
        s.state(TEMPERATURE_ENTITY).filter(|t| t.number().is_some())
    })
    .await;
    let sun = wait_for("irradiance entity", WAIT, || {
        s.state(IRRADIANCE_ENTITY).filter(|t| t.number().is_some())
    })
    .await;
    let now = s.clock.now_ms();
    let f = &s.bridge().forecasts;

    // Temperature: Open-Meteo's hourly instants, as served.
    let temps = f.range(OUTDOOR_TEMPERATURE, now - 30 * HOUR_MS, now + 80 * HOUR_MS);
    let known: Vec<_> = temps.iter().filter(|(_, v)| v.is_finite()).collect();
    assert_eq!(known.len(), 72, "3 days hourly: {temps:?}");
    for (t, v) in &known {
        assert_eq!(
            *v,
            weather.temperature_c(*t),
            "at {}",
            hearth::clock::iso8601(*t)
        );
    }
    // Three days from 00:00 UTC today: the last instant is today + 71 h, so
    // at least 47 h ahead whatever the hour (48 h failed from 23:00 UTC).
    assert!(known[0].0 <= now && known.last().unwrap().0 >= now + 47 * HOUR_MS);
    assert!(
        temps.last().unwrap().1.is_nan(),
        "the series ends with a gap"
    );
    // The entity is the forecast interpolated at the time it was set.
    let t = temp.last_updated;
    let (a, b) = (
        t - t.rem_euclid(HOUR_MS),
        t - t.rem_euclid(HOUR_MS) + HOUR_MS,
    );
    let (ta, tb) = (weather.temperature_c(a), weather.temperature_c(b));
    let lin = ta + (tb - ta) * (t - a) as f64 / HOUR_MS as f64;
    assert!((number(&temp) - lin).abs() <= 0.051, "{temp:?} vs {lin}");

    // Irradiance: the value stamped at an hour's end becomes a step from its start.
    let suns = f.range(SOLAR_IRRADIANCE, now - 30 * HOUR_MS, now + 80 * HOUR_MS);
    let known: Vec<_> = suns.iter().filter(|(_, v)| v.is_finite()).collect();
    assert_eq!(known.len(), 72);
    for (t, v) in &known {
        assert_eq!(*v, weather.irradiance_hour_mean(t + HOUR_MS));
    }
    assert!(known.iter().any(|(_, v)| *v > 100.0), "the sun shows up");
    let t = sun.last_updated;
    assert_eq!(
        number(&sun),
        weather.irradiance_hour_mean(t - t.rem_euclid(HOUR_MS) + HOUR_MS)
    );
    let req = s
        .sim
        .requests()
        .into_iter()
        .find(|r| r.starts_with("/v1/forecast"))
        .unwrap();
    assert!(
        req.contains("latitude=48.86&longitude=2.34")
            && req.contains("hourly=temperature_2m,shortwave_radiation")
            && req.contains("timezone=UTC")
            && req.contains("forecast_days=3"),
        "{req}"
    );

    let config: Value = wait_for("weather discovery config", WAIT, || {
        let raw = ha
            .current()
            .get("homeassistant/device/weather/config")?
            .clone();
        serde_json::from_slice::<Value>(&raw).ok()
    })
    .await;
    let cmps = &config["cmps"];
    assert_eq!(cmps["outdoor_temperature"]["unit_of_measurement"], "°C");
    assert_eq!(cmps["outdoor_temperature"]["device_class"], "temperature");
    assert_eq!(cmps["solar_irradiance"]["unit_of_measurement"], "W/m²");
    assert_eq!(
        cmps["solar_irradiance"]["default_entity_id"],
        "sensor.weather_solar_irradiance"
    );
    assert_eq!(config["dev"]["name"], "Weather forecast");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_source_keeps_the_last_good_data_says_why_and_recovers() {
    let now = Clock::real().now_ms();
    let s = Setup::start(1.0, rotating_colours(now), |c, sim| {
        c.tariff = Some(tariff(&format!(
            "kind = \"tempo\"\nurl = \"{}\"\npoll_interval_s = 1\nretry_s = 0.2\nhttp_timeout_s = 0.5",
            sim.couleur_tempo_url()
        )));
    })
    .await;
    let good = wait_for("first good poll", WAIT, || {
        let p = s.state(PROBLEM_ENTITY)?;
        (p.state == "off").then_some(())?;
        s.state(TOMORROW_ENTITY).filter(|t| t.state != "unknown")
    })
    .await;
    let today = s.state(TODAY_ENTITY).unwrap();
    let price = s.state(PRICE_ENTITY).unwrap();
    let url = format!("{}/jourTempo/today", s.sim.couleur_tempo_url());

    for (fault, says) in [
        (
            FeedFault::HttpError,
            "HTTP 500 Internal Server Error, expected 200 with a JSON object {\"dateJour\"",
        ),
        (FeedFault::MalformedJson, "not valid JSON"),
        (FeedFault::Stall, "no answer within 0.5 s"),
    ] {
        let mark = log_mark();
        let polls = s.sim.count("/api/jourTempo/today");
        s.sim.set_fault(fault);
        let problem = wait_for(&format!("problem on for {fault:?}"), WAIT, || {
            s.state(PROBLEM_ENTITY).filter(|p| {
                p.state == "on"
                    && p.attributes["error"]
                        .as_str()
                        .is_some_and(|e| e.contains(says))
            })
        })
        .await;
        let error = problem.attributes["error"].as_str().unwrap();
        assert!(error.contains(&url), "the error names the URL: {error}");
        let logged = wait_for("the error in the log", WAIT, || {
            let l = logs_since(mark);
            (l.contains("tariff feed:") && l.contains(&url) && l.contains(says)).then_some(l)
        })
        .await;
        assert!(
            logged.contains("keeping the last good data, retrying in"),
            "{logged}"
        );
        // Retries keep coming (backoff capped at the poll interval).
        wait_for("retries", WAIT, || {
            (s.sim.count("/api/jourTempo/today") >= polls + 2).then_some(())
        })
        .await;
        // The last good data stays.
        assert_eq!(s.state(TODAY_ENTITY).unwrap().state, today.state);
        assert_eq!(s.state(TOMORROW_ENTITY).unwrap().state, good.state);
        assert_eq!(s.state(PRICE_ENTITY).unwrap().state, price.state);
        let now = s.clock.now_ms();
        assert!(value_at(&s.bridge().forecasts.range(PRICE, now, now), now).is_some());
    }

    // Fixed, with a corrected colour for tomorrow: it comes through.
    let tomorrow: Date = good.attributes["date"].as_str().unwrap().parse().unwrap();
    let new = if good.state == "red" {
        TempoColour::Blue
    } else {
        TempoColour::Red
    };
    s.sim.set_colour(tomorrow, Some(new));
    let mark = log_mark();
    s.sim.set_fault(FeedFault::None);
    wait_for("recovery with the new colour", WAIT, || {
        let ok = s.state(PROBLEM_ENTITY)?.state == "off"
            && s.state(TOMORROW_ENTITY)?.state == new.to_string();
        ok.then_some(())
    })
    .await;
    wait_for("recovery logged", WAIT, || {
        logs_since(mark).contains("answers again").then_some(())
    })
    .await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_of_use_needs_no_http() {
    let text = "kind = \"tou\"\ntimezone = \"Europe/Paris\"\n\
                windows = [{start = \"06:00\", price = 0.2}, {start = \"22:00\", price = 0.15}]\n\
                [weekdays]\nsunday = [{start = \"00:00\", price = 0.1}]";
    let s = Setup::start(1.0, FeedSimConfig::default(), |c, _| {
        c.tariff = Some(tariff(text))
    })
    .await;
    let model = TouTariff::new(&toml::from_str::<TouConfig>(
        "timezone = \"Europe/Paris\"\nwindows = [{start = \"06:00\", price = 0.2}, {start = \"22:00\", price = 0.15}]\n[weekdays]\nsunday = [{start = \"00:00\", price = 0.1}]",
    ).unwrap())
    .unwrap();
    wait_for("the price in force", WAIT, || {
        let p = s.state(PRICE_ENTITY)?;
        close(number(&p), model.price_at(s.clock.now_ms())?).then_some(())
    })
    .await;
    let now = s.clock.now_ms();
    let price = model.price_at(now).unwrap();
    let period = s.state(PERIOD_ENTITY).unwrap().state;
    assert_eq!(period, if price < 0.2 { "HC" } else { "HP" }, "{price}");
    let series = s.bridge().forecasts.range(PRICE, now, now + 49 * HOUR_MS);
    for t in [
        now,
        next_paris_hour(now, 6),
        next_paris_hour(now, 22) - 1,
        next_paris_hour(now, 22),
        now + 47 * HOUR_MS,
    ] {
        assert_eq!(
            value_at(&series, t),
            model.price_at(t),
            "at {}",
            hearth::clock::iso8601(t)
        );
    }
    assert!(s.state(PROBLEM_ENTITY).is_none(), "nothing to fail");
    assert!(s.bridge().store.spec(PROBLEM_ENTITY).is_none());
    assert!(s.sim.requests().is_empty(), "no HTTP");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_prices_from_a_url_or_a_file() {
    let s = Setup::start(1.0, FeedSimConfig::default(), |c, sim| {
        c.tariff = Some(tariff(&format!(
            "kind = \"spot\"\nurl = \"{}\"",
            sim.spot_url()
        )));
    })
    .await;
    // The list served is "today and tomorrow" in Paris: if Paris midnight
    // falls between the bridge's fetch and the check below, the list served
    // now is another one (this test failed at 23:00 UTC = 00:00 CET).
    let fetched_around = s.clock.now_ms();
    let spot = s.sim.config().spot;
    let hour_start = |t: i64| t - t.rem_euclid(HOUR_MS);
    wait_for("the spot price in force", WAIT, || {
        let p = s.state(PRICE_ENTITY)?;
        close(number(&p), spot.price(hour_start(s.clock.now_ms()))).then_some(())
    })
    .await;
    assert!(
        s.state(PERIOD_ENTITY).is_none(),
        "spot prices have no HP/HC"
    );
    let now = s.clock.now_ms();
    let series = s.bridge().forecasts.range(PRICE, now, now + 72 * HOUR_MS);
    let served_at =
        |t: i64| parse_spot_prices("sim", &s.sim.config().spot_prices(t).to_string()).unwrap();
    let matches = |served: &hearth::feeds::tariff::SpotPrices| {
        (0..30).all(|h| {
            let t = hour_start(now) + h * HOUR_MS + 1;
            value_at(&series, t) == served.price_at(t)
        })
    };
    let (now_list, fetched_list) = (served_at(now), served_at(fetched_around));
    let served = if matches(&now_list) {
        now_list
    } else {
        fetched_list
    };
    for h in 0..30 {
        let t = hour_start(now) + h * HOUR_MS + 1;
        assert_eq!(value_at(&series, t), served.price_at(t), "hour {h}");
    }
    assert_eq!(
        value_at(&series, served.end_ms()),
        None,
        "unknown after the list"
    );
    let payload = s.sim.config().spot_prices(now).to_string();
    s.stop().await;

    // The same list from a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spot.json");
    std::fs::write(&file, payload).unwrap();
    let s = Setup::start(1.0, FeedSimConfig::default(), |c, _| {
        c.tariff = Some(TariffConfig {
            file: Some(file.clone()),
            ..tariff("kind = \"spot\"")
        });
    })
    .await;
    wait_for("the spot price from the file", WAIT, || {
        let p = s.state(PRICE_ENTITY)?;
        close(number(&p), spot.price(hour_start(s.clock.now_ms()))).then_some(())
    })
    .await;
    assert_eq!(s.state(PROBLEM_ENTITY).unwrap().state, "off");
    assert!(s.sim.requests().is_empty());
    s.stop().await;
}
