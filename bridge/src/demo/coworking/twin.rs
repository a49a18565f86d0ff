//! The coworking space's twin, over real protocols only: two Tasmota
//! metered strips ([`tasmota_strip_sim`]) behind their B10 breakers under
//! one B16 wall circuit ([`SharedCircuits`]), and the laptops of the
//! scenario ([`Space`]: arrivals, seats, the battery and charger model).
//!
//! Each [`SpaceTwin::step`] (the demo calls it every few wall ms):
//! - arrivals and departures; a laptop in the room announces its battery
//!   as HASS.Agent does (HA MQTT discovery `sensor`, `device_class`
//!   battery, `%`, a JSON state with `battery_charge_remaining_percentage`,
//!   an availability topic) and publishes it when its whole percent
//!   changes, and at least every [`BATTERY_EVERY_MS`];
//! - who sits where goes to the bridge as HA would send it: the option on
//!   the seat `select`'s command topic (`<base>/helpers/select_<id>/set`),
//!   resent while the bridge's state differs;
//! - a plugged laptop charges only while its outlet's relay is on and no
//!   breaker above it is open; each outlet's load on the strip twin is its
//!   laptop's RMS current × the voltage (VA: the strip twin's loads are
//!   resistive, so this keeps the current every meter and breaker sees
//!   equal to the charger's, and the meters count VA·h);
//! - a tripped breaker is reset by hand after `breaker_reset_s`.

use crate::clock::Clock;
use crate::entity::EntityStore;
use crate::shutdown::Shutdown;
use crate::twin::breaker::BreakerSpec;
use crate::twin::circuit::{CircuitSlot, CircuitTree, NodeId, SharedCircuits};
use crate::twin::coworking::{Laptop, Presence, Space, SpaceSpec};
use crate::twin::tasmota_strip_sim::{self, SimMeter, StripSim, StripSimConfig};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use serde_json::json;
use std::time::Duration;

/// Tasmota's shortest `TelePeriod`, s: the meters' reporting interval.
pub const TELE_PERIOD_S: f64 = 10.0;
/// A laptop repeats its battery level at least this often, sim ms.
pub const BATTERY_EVERY_MS: i64 = 60_000;
/// A seat's option is sent again after this long if the bridge shows
/// another, sim ms.
const SEAT_RESEND_MS: i64 = 30_000;

/// The user id (balancer, usage, seat option) of laptop `i` (0-based).
pub fn user_id(i: usize) -> String {
    format!("laptop_{:02}", i + 1)
}

/// HASS.Agent's device name of laptop `i`: its battery entity is
/// `sensor.<user_id>_battery` (HA's slug of device + entity name).
fn agent_name(i: usize) -> String {
    format!("laptop-{:02}", i + 1)
}

/// The seat `select` of outlet `o` (index in [`Space::outlets`]).
pub fn seat_select_id(space: &Space, o: usize) -> String {
    let out = &space.outlets[o];
    let n = o - out.strip * space.spec.outlets_per_strip + 1;
    format!("{}_outlet{n}_user", SpaceSpec::strip_id(out.strip))
}

/// What the twin measured so far (its ground truth).
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Peak current through the wall circuit, A.
    pub peak_circuit_a: f64,
    /// Sim s with any breaker (wall or strip) above its rating.
    pub seconds_over: f64,
    /// Episodes over a rating (an interval over after one not over).
    pub over_episodes: u64,
    /// Largest current above its rating, A.
    pub max_over_a: f64,
    /// Relay changes of switchable outlets (the balancer's doing).
    pub relay_switches: u64,
}

pub struct SpaceTwin {
    clock: Clock,
    pub space: Space,
    strips: Vec<StripSim>,
    circuits: SharedCircuits,
    root: NodeId,
    strip_nodes: Vec<NodeId>,
    client: AsyncClient,
    base_topic: String,
    last_ms: i64,
    presence: Vec<Presence>,
    /// Per laptop: (last published %, when).
    published: Vec<Option<(i64, i64)>>,
    /// Per outlet: the option last sent, when.
    seat_sent: Vec<Option<(String, i64)>>,
    relays: Vec<bool>,
    /// Since when (sim ms) a rating has been exceeded, and the peak excess.
    over_since: Option<(i64, f64)>,
    /// Per laptop: whether it has had a seat.
    seated: Vec<bool>,
    pub tally: Tally,
}

impl SpaceTwin {
    /// Wires the strips and connects them and the laptops' agent to the
    /// broker. Relays start off; the lamp's relay is switched on with the
    /// strip's own command (`cmnd/strip_a/POWER1 ON`, as its button would).
    pub fn start(
        clock: Clock,
        host: &str,
        port: u16,
        space: Space,
        base_topic: &str,
        shutdown: Shutdown,
    ) -> anyhow::Result<SpaceTwin> {
        let spec = space.spec.clone();
        let mut tree = CircuitTree::new();
        let root = tree.add_circuit("wall", None, BreakerSpec::b(spec.circuit_a))?;
        let circuits = SharedCircuits::new(tree);
        let mut strips = Vec::new();
        let mut strip_nodes = Vec::new();
        for s in 0..spec.strips {
            let topic = SpaceSpec::strip_id(s);
            let (sim, _task) = tasmota_strip_sim::spawn(
                clock,
                host,
                port,
                StripSimConfig {
                    topic: topic.clone(),
                    client_id: format!("twin-{topic}"),
                    loads_w: vec![0.0; spec.outlets_per_strip],
                    voltage_v: spec.voltage_v,
                    meter: SimMeter::PerChannel,
                    tele_period_s: TELE_PERIOD_S,
                    breaker: Some(BreakerSpec::b(spec.strip_a)),
                    circuit: Some(CircuitSlot {
                        circuits: circuits.clone(),
                        parent: root,
                    }),
                },
                shutdown.clone(),
            )?;
            strips.push(sim);
            let node = circuits
                .with(|t| t.node(&topic))
                .ok_or_else(|| anyhow::anyhow!("strip {topic} has no breaker node"))?;
            strip_nodes.push(node);
        }
        let mut opts = MqttOptions::new("twin-coworking-laptops", host, port);
        opts.set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = AsyncClient::new(opts, 4096);
        let mut stop = shutdown;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.wait() => break,
                    ev = eventloop.poll() => if let Err(e) = ev {
                        tracing::debug!("twin laptops: MQTT {e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        let lamp_topic = format!("cmnd/{}/POWER1", SpaceSpec::strip_id(0));
        client.try_publish(lamp_topic, QoS::AtLeastOnce, false, "ON")?;
        let n_out = space.outlets.len();
        let n_lap = space.laptops.len();
        Ok(SpaceTwin {
            last_ms: clock.now_ms(),
            clock,
            presence: space.presence.clone(),
            space,
            strips,
            circuits,
            root,
            strip_nodes,
            client,
            base_topic: base_topic.to_string(),
            published: vec![None; n_lap],
            seat_sent: vec![None; n_out],
            relays: vec![false; n_out],
            over_since: None,
            seated: vec![false; n_lap],
            tally: Tally::default(),
        })
    }

    /// (strip index, 1-based outlet) of outlet `o`.
    fn place(&self, o: usize) -> (usize, usize) {
        let s = self.space.outlets[o].strip;
        (s, o - s * self.space.spec.outlets_per_strip + 1)
    }

    /// Whether outlet `o` delivers power now (relay on, no breaker open).
    pub fn live(&self, o: usize) -> bool {
        let (s, n) = self.place(o);
        self.strips[s].relay(n) && !self.strips[s].cut(n)
    }

    /// A through the wall circuit, then each strip.
    pub fn currents(&self) -> (f64, Vec<f64>) {
        self.circuits.with(|t| {
            (
                t.current_a(self.root),
                self.strip_nodes.iter().map(|n| t.current_a(*n)).collect(),
            )
        })
    }

    /// Every breaker trip so far: (sim ms, breaker name).
    pub fn trips(&self) -> Vec<(i64, String)> {
        self.circuits
            .trips(self.clock.now_ms())
            .into_iter()
            .map(|(t, e)| (t, e.name))
            .collect()
    }

    /// Advances the room to now.
    pub async fn step(&mut self, store: &EntityStore) {
        let now = self.clock.now_ms();
        let dt_s = (now - self.last_ms).max(0) as f64 / 1000.0;
        self.last_ms = now;
        // The currents of the interval just gone (the loads set last step).
        self.measure(now, dt_s);
        self.people(now).await;
        // Laptops charge (relay on, not cut) or drain over the interval.
        let live: Vec<bool> = (0..self.space.outlets.len())
            .map(|o| self.live(o))
            .collect();
        for i in 0..self.space.laptops.len() {
            match self.space.presence[i] {
                Presence::Plugged(o) => {
                    self.seated[i] = true;
                    self.space.laptops[i].step(live[o], dt_s);
                }
                Presence::Queued => {
                    self.space.laptops[i].step(false, dt_s);
                }
                _ => {}
            }
        }
        // What each outlet would draw when live, on the strip twins.
        let volts = self.space.spec.voltage_v;
        for o in 0..self.space.outlets.len() {
            let (amps, _) = self.space.load(o);
            let (s, n) = self.place(o);
            self.strips[s].set_load(n, amps * volts);
        }
        self.reset_breakers(now);
        self.batteries(now).await;
        self.seats(now, store).await;
    }

    /// Arrivals, departures, seats; announces and retires agents.
    async fn people(&mut self, now: i64) {
        self.space.people(now);
        for i in 0..self.space.laptops.len() {
            let (was, is) = (self.presence[i], self.space.presence[i]);
            if was == is {
                continue;
            }
            if was == Presence::NotYet {
                self.announce(i).await;
            }
            if let Presence::Gone(_) = is {
                self.publish(
                    availability_topic(i),
                    "offline".to_string(),
                    QoS::AtLeastOnce,
                    true,
                )
                .await;
            }
        }
        self.presence = self.space.presence.clone();
    }

    /// HASS.Agent's discovery config and availability for laptop `i`.
    async fn announce(&mut self, i: usize) {
        let name = agent_name(i);
        let config = json!({
            "name": "Battery",
            "unique_id": format!("{name}_battery_charge_remaining_percentage"),
            "state_topic": state_topic(i),
            "value_template": "{{ value_json.battery_charge_remaining_percentage | int }}",
            "unit_of_measurement": "%",
            "device_class": "battery",
            "state_class": "measurement",
            "availability_topic": availability_topic(i),
            "device": {
                "identifiers": [format!("hass.agent-{name}")],
                "manufacturer": "HASS.Agent Team",
                "model": "Microsoft Windows 11",
                "name": name,
                "sw_version": "2.1.1"
            }
        });
        let topic = format!("homeassistant/sensor/{name}/{name}_battery/config");
        self.publish(topic, config.to_string(), QoS::AtLeastOnce, true)
            .await;
        self.publish(
            availability_topic(i),
            "online".into(),
            QoS::AtLeastOnce,
            true,
        )
        .await;
    }

    async fn batteries(&mut self, now: i64) {
        for i in 0..self.space.laptops.len() {
            if !matches!(
                self.space.presence[i],
                Presence::Plugged(_) | Presence::Queued
            ) {
                continue;
            }
            let pct = self.space.laptops[i].soc_pct.floor() as i64;
            let due = match self.published[i] {
                Some((p, at)) => p != pct || now - at >= BATTERY_EVERY_MS,
                None => true,
            };
            if due {
                self.published[i] = Some((pct, now));
                let body = json!({ "battery_charge_remaining_percentage": pct });
                self.publish(state_topic(i), body.to_string(), QoS::AtMostOnce, false)
                    .await;
            }
        }
    }

    /// Each seat's select shows its occupant (`none`: empty).
    async fn seats(&mut self, now: i64, store: &EntityStore) {
        for o in 0..self.space.outlets.len() {
            if self.space.outlets[o].lamp {
                continue;
            }
            let want = self.space.outlets[o]
                .occupant
                .map_or_else(|| "none".to_string(), user_id);
            let id = seat_select_id(&self.space, o);
            let shown = store.get(&format!("select.{id}")).map(|s| s.state);
            if shown.as_deref() == Some(want.as_str()) {
                continue;
            }
            let due = match &self.seat_sent[o] {
                Some((sent, at)) => *sent != want || now - at >= SEAT_RESEND_MS,
                None => true,
            };
            if due {
                self.seat_sent[o] = Some((want.clone(), now));
                let topic = format!("{}/helpers/select_{id}/set", self.base_topic);
                self.publish(topic, want, QoS::AtLeastOnce, false).await;
            }
        }
    }

    /// The interval of `dt_s` up to `now`, at the currents it carried.
    fn measure(&mut self, now: i64, dt_s: f64) {
        let (wall, strips) = self.currents();
        let t = &mut self.tally;
        t.peak_circuit_a = t.peak_circuit_a.max(wall);
        let spec = &self.space.spec;
        let excess = strips
            .iter()
            .map(|a| a - spec.strip_a)
            .fold(wall - spec.circuit_a, f64::max);
        if excess > 0.0 {
            t.seconds_over += dt_s;
            t.max_over_a = t.max_over_a.max(excess);
            let since = now - (dt_s * 1000.0) as i64;
            let (from, peak) = self.over_since.get_or_insert((since, 0.0));
            *peak = peak.max(excess);
            if *from == since {
                t.over_episodes += 1;
            }
        } else if let Some((from, peak)) = self.over_since.take() {
            tracing::info!(
                "twin: a breaker carried up to {peak:.2} A over its rating for {:.0} s (wall {wall:.1} A, strips {strips:.1?} A after)",
                (now - from) as f64 / 1000.0
            );
        }
        for o in 0..self.space.outlets.len() {
            let (s, n) = self.place(o);
            let on = self.strips[s].relay(n);
            if on != self.relays[o] && !self.space.outlets[o].lamp {
                self.tally.relay_switches += 1;
            }
            self.relays[o] = on;
        }
    }

    /// Someone walks to the panel `breaker_reset_s` after a trip.
    fn reset_breakers(&mut self, now: i64) {
        let reset_ms = (self.space.spec.breaker_reset_s * 1000.0) as i64;
        let trips = self.circuits.trips(now);
        let nodes = std::iter::once(self.root).chain(self.strip_nodes.iter().copied());
        for node in nodes.collect::<Vec<_>>() {
            if !self.circuits.tripped(node, now) {
                continue;
            }
            let last = trips
                .iter()
                .filter(|(_, e)| e.node == node)
                .max_by_key(|(t, _)| *t);
            if let Some((at, e)) = last
                && now - at >= reset_ms
            {
                tracing::info!("twin: someone resets breaker `{}`", e.name);
                self.circuits.reset(node, now);
            }
        }
    }

    async fn publish(&self, topic: String, payload: String, qos: QoS, retain: bool) {
        if let Err(e) = self.client.publish(topic, qos, retain, payload).await {
            tracing::warn!("twin laptops: publish failed: {e}");
        }
    }

    /// Whether laptop `i` has had a seat.
    pub fn seated(&self, i: usize) -> bool {
        self.seated[i]
    }

    /// The laptops (their spec and state now).
    pub fn laptops(&self) -> &[Laptop] {
        &self.space.laptops
    }
}

fn state_topic(i: usize) -> String {
    let name = agent_name(i);
    format!("homeassistant/sensor/{name}/{name}_battery/state")
}

fn availability_topic(i: usize) -> String {
    format!("homeassistant/sensor/{}/availability", agent_name(i))
}
