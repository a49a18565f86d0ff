//! Hearth ESP32-C3 sensor node: an SHT4x on I2C, published over MQTT 3.1.1
//! with TLS 1.3 (Hearth's CA pinned) using node-core's topics and payloads,
//! with credentials from a sealed flash partition.
//!
//! Modules: `secrets` (the partition and the HMAC peripheral), `unseal`
//! (opening the image, hardware-free), `net` (Wi-Fi, DHCP),
//! `tls` (pinned-CA verification), `mqtt` (the session), `sensor` (SHT4x).
//!
//! The main loop takes a reading every `INTERVAL`; when the broker is
//! reachable it publishes, otherwise it keeps readings in node-core's
//! `OfflineBuffer` and sends them with their age on reconnection. Connection
//! attempts follow node-core's `Backoff`. The RTC watchdog is fed only by the
//! main loop when it takes a reading (every network wait has a deadline).

#![no_std]
#![no_main]

mod mqtt;
mod net;
mod secrets;
mod sensor;
mod tls;
mod unseal;

use embassy_executor::Spawner;
use embassy_futures::select::select;
use embassy_net::{IpAddress, Stack, dns::DnsQueryType, tcp::TcpSocket};
use embassy_time::{Duration, Instant, Timer, with_timeout};
use embedded_tls::{TlsConnection, TlsContext};
use esp_backtrace as _;
use esp_hal::{
    clock::CpuClock,
    i2c::master::{Config as I2cConfig, I2c},
    ram,
    rng::Trng,
    rtc_cntl::{Rtc, Rwdt, RwdtStage, RwdtStageAction},
    system::software_reset,
    time::Rate,
    timer::timg::TimerGroup,
};
use hearth_node_core::{
    self as core_proto, Announce, STATUS_OFFLINE, STATUS_ONLINE, SensorKind, Telemetry, TopicKind,
    backoff::Backoff, buffer::OfflineBuffer, seal::Secrets,
};
use static_cell::ConstStaticCell;

use crate::mqtt::{ConnectOptions, MqttError, Session};

esp_bootloader_esp_idf::esp_app_desc!();

/// Reading period.
const INTERVAL: Duration = Duration::from_secs(30);
/// Readings kept while offline: 2 h at 30 s.
const OFFLINE_READINGS: usize = 240;
/// MQTT keep-alive: three reading periods (every reading is a PUBLISH).
const KEEP_ALIVE_S: u16 = 90;
/// The watchdog resets the chip when the main loop has not taken a reading
/// for this long (10 periods). Every network wait has a deadline; the longest
/// chain (DNS 10 s, TCP 15 s, TLS 30 s, CONNECT and two publishes 30 s each)
/// is under 150 s, so only a real hang (or a driver stuck) trips it.
const WATCHDOG: esp_hal::time::Duration = esp_hal::time::Duration::from_secs(300);
/// While the sealed secrets do not open: wait this long, then reset and retry.
const FAIL_CLOSED_RETRY: Duration = Duration::from_secs(300);

const MODEL: &str = "ESP32-C3 + SHT4x";

/// Network buffers, statically allocated (TLS needs a full 16 KiB record).
struct Buffers {
    tcp_rx: [u8; 4096],
    tcp_tx: [u8; 2048],
    tls_rx: [u8; 16640],
    tls_tx: [u8; 4096],
    mqtt_tx: [u8; 768],
    mqtt_rx: [u8; 256],
    ca_der: [u8; tls::MAX_CA_DER],
}

static BUFFERS: ConstStaticCell<Buffers> = ConstStaticCell::new(Buffers {
    tcp_rx: [0; 4096],
    tcp_tx: [0; 2048],
    tls_rx: [0; 16640],
    tls_tx: [0; 4096],
    mqtt_tx: [0; 768],
    mqtt_rx: [0; 256],
    ca_der: [0; tls::MAX_CA_DER],
});

/// State the main loop carries across sessions.
struct App {
    sensor: sensor::Sensor,
    buffer: OfflineBuffer<OFFLINE_READINGS>,
    next_reading: Instant,
    rwdt: Rwdt,
    rng: Trng,
}

impl App {
    fn reading_due(&self) -> bool {
        Instant::now() >= self.next_reading
    }

    /// Takes a reading and schedules the next one; feeds the watchdog (the
    /// loop made progress).
    fn take_reading(&mut self) -> (Telemetry, u64) {
        let now = Instant::now();
        let mut t = Telemetry {
            rssi: net::rssi(),
            uptime: u32::try_from(now.as_secs()).ok(),
            ..Telemetry::default()
        };
        self.sensor.measure_into(&mut t);
        self.next_reading += INTERVAL;
        if self.next_reading < now {
            // A long stall (should not happen): do not take readings in a burst.
            self.next_reading = now + INTERVAL;
        }
        self.rwdt.feed();
        (t, now.as_millis())
    }

    /// Keeps a reading for later (offline).
    fn keep(&mut self, t: Telemetry, taken_at_ms: u64) {
        if self.buffer.push(t, taken_at_ms).is_some() {
            log::warn!(
                "offline buffer full: oldest reading dropped ({} dropped since boot)",
                self.buffer.dropped()
            );
        }
    }
}

#[esp_hal::main]
async fn main(spawner: Spawner) -> ! {
    esp_println::logger::init_logger_from_env();
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));

    // esp-radio allocates (Wi-Fi driver buffers).
    esp_alloc::heap_allocator!(#[ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 32 * 1024);

    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

    log::info!("hearth esp32c3-sensor {}", env!("CARGO_PKG_VERSION"));

    // Sealed secrets first: no Wi-Fi unless they open (fail closed).
    let loaded = match secrets::load(peripherals.FLASH, peripherals.HMAC) {
        Ok(l) => l,
        Err(e) => fail_closed(&e).await,
    };
    let device_id = loaded.device_id;
    let secrets = loaded.secrets;
    log::info!(
        "sealed secrets opened: device {}, broker {}:{}",
        device_id,
        secrets.mqtt_host,
        secrets.mqtt_port
    );

    let bufs = BUFFERS.take();
    let ca_der_len =
        match secrets
            .ca_pem
            .as_deref()
            .map(|pem| tls::pem_to_der(pem, &mut bufs.ca_der))
        {
            Some(Ok(der)) => der.len(),
            Some(Err(_)) => {
                fail_closed(&"the sealed CA certificate (ca_pem) is not a PEM certificate").await
            }
            None => fail_closed(
                &"no CA certificate (ca_pem) in the sealed secrets: TLS cannot verify the broker",
            )
            .await,
        };

    let mut rtc = Rtc::new(peripherals.RTC_TIMER);
    rtc.rwdt.set_timeout(RwdtStage::Stage0, WATCHDOG);
    rtc.rwdt
        .set_stage_action(RwdtStage::Stage0, RwdtStageAction::ResetSystem);
    rtc.rwdt.enable();
    rtc.rwdt.feed();

    let i2c = match I2c::new(
        peripherals.I2C0,
        I2cConfig::default().with_frequency(Rate::from_khz(100)),
    ) {
        Ok(i2c) => i2c.with_sda(peripherals.GPIO4).with_scl(peripherals.GPIO5),
        Err(e) => panic!("I2C config: {e:?}"),
    };

    // Also the true random number generator (TLS keys, jitter): the radio
    // is its entropy source once the Wi-Fi driver is up.
    let (stack, rng) = match net::start(
        &spawner,
        peripherals.WIFI,
        &secrets.wifi_ssid,
        &secrets.wifi_password,
    ) {
        Ok(s) => s,
        Err(e) => fail_closed(&e).await,
    };

    let mut app = App {
        sensor: sensor::Sensor::new(i2c),
        buffer: OfflineBuffer::new(),
        next_reading: Instant::now(),
        rwdt: rtc.rwdt,
        rng,
    };
    let mut backoff = Backoff::new();
    let mut next_attempt = Instant::now();

    loop {
        if app.reading_due() {
            let (t, at) = app.take_reading();
            app.keep(t, at);
        }
        if stack.is_config_up() && Instant::now() >= next_attempt {
            let (bufs_, ca) = split_bufs(bufs, ca_der_len);
            match session(
                &mut app,
                stack,
                bufs_,
                ca,
                &device_id,
                &secrets,
                &mut backoff,
            )
            .await
            {
                Ok(()) => {}
                Err(e) => log::warn!("mqtt: session ended: {e:?}"),
            }
            let delay = backoff.next_delay_ms(app.rng.random());
            log::info!("mqtt: reconnecting in {delay} ms");
            next_attempt = Instant::now() + Duration::from_millis(u64::from(delay));
            continue;
        }
        let wake = if stack.is_config_up() {
            app.next_reading.min(next_attempt)
        } else {
            app.next_reading
        };
        // Wake for the next reading, a reconnection, or DHCP coming up.
        select(Timer::at(wake), async {
            if !stack.is_config_up() {
                stack.wait_config_up().await
            } else {
                core::future::pending::<()>().await
            }
        })
        .await;
    }
}

/// The mutable network buffers and the CA DER (read-only) from one static.
fn split_bufs(bufs: &mut Buffers, ca_len: usize) -> (NetBufs<'_>, &[u8]) {
    (
        NetBufs {
            tcp_rx: &mut bufs.tcp_rx,
            tcp_tx: &mut bufs.tcp_tx,
            tls_rx: &mut bufs.tls_rx,
            tls_tx: &mut bufs.tls_tx,
            mqtt_tx: &mut bufs.mqtt_tx,
            mqtt_rx: &mut bufs.mqtt_rx,
        },
        &bufs.ca_der[..ca_len],
    )
}

struct NetBufs<'a> {
    tcp_rx: &'a mut [u8],
    tcp_tx: &'a mut [u8],
    tls_rx: &'a mut [u8],
    tls_tx: &'a mut [u8],
    mqtt_tx: &'a mut [u8],
    mqtt_rx: &'a mut [u8],
}

#[derive(Debug)]
#[allow(dead_code, reason = "the fields are read by Debug, in the log")]
enum SessionError {
    Dns,
    Tcp,
    Tls(embedded_tls::TlsError),
    Timeout(&'static str),
    Mqtt(MqttError),
    Topic,
    Encode,
}

impl From<MqttError> for SessionError {
    fn from(e: MqttError) -> Self {
        SessionError::Mqtt(e)
    }
}

async fn resolve(stack: Stack<'static>, host: &str) -> Result<IpAddress, SessionError> {
    if let Ok(ip) = host.parse::<core::net::Ipv4Addr>() {
        return Ok(IpAddress::Ipv4(ip));
    }
    let found = with_timeout(
        Duration::from_secs(10),
        stack.dns_query(host, DnsQueryType::A),
    )
    .await
    .map_err(|_| SessionError::Timeout("dns"))?
    .map_err(|_| SessionError::Dns)?;
    found.first().copied().ok_or(SessionError::Dns)
}

/// One broker connection: TCP, TLS (pinned CA), MQTT CONNECT with the last
/// will, announce + `online` (retained), the offline backlog, then a reading
/// every INTERVAL until something fails.
async fn session(
    app: &mut App,
    stack: Stack<'static>,
    bufs: NetBufs<'_>,
    ca_der: &[u8],
    device_id: &str,
    secrets: &Secrets,
    backoff: &mut Backoff,
) -> Result<(), SessionError> {
    let host = secrets.mqtt_host.as_str();
    let addr = resolve(stack, host).await?;
    log::info!(
        "mqtt: connecting to {host} ({addr}) port {}",
        secrets.mqtt_port
    );

    let mut socket = TcpSocket::new(stack, bufs.tcp_rx, bufs.tcp_tx);
    socket.set_timeout(Some(Duration::from_secs(60)));
    with_timeout(
        Duration::from_secs(15),
        socket.connect((addr, secrets.mqtt_port)),
    )
    .await
    .map_err(|_| SessionError::Timeout("tcp connect"))?
    .map_err(|_| SessionError::Tcp)?;

    let mut tls: TlsConnection<'_, _, tls::Suite> =
        TlsConnection::new(socket, bufs.tls_rx, bufs.tls_tx);
    let config = tls::config_for(host);
    let provider = tls::PinnedCa::new(app.rng.clone(), ca_der, host);
    with_timeout(
        Duration::from_secs(30),
        tls.open(TlsContext::new(&config, provider)),
    )
    .await
    .map_err(|_| SessionError::Timeout("tls handshake"))?
    .map_err(SessionError::Tls)?;

    let status_topic =
        core_proto::topic(device_id, TopicKind::Status).map_err(|_| SessionError::Topic)?;
    let announce_topic =
        core_proto::topic(device_id, TopicKind::Announce).map_err(|_| SessionError::Topic)?;
    let telemetry_topic =
        core_proto::topic(device_id, TopicKind::Telemetry).map_err(|_| SessionError::Topic)?;

    let opts = ConnectOptions {
        client_id: device_id,
        username: secrets.mqtt_username.as_str(),
        password: secrets.mqtt_password.as_bytes(),
        keep_alive_s: KEEP_ALIVE_S,
        will_topic: &status_topic,
        will_payload: STATUS_OFFLINE.as_bytes(),
    };
    let mut mqtt = Session::connect(tls, bufs.mqtt_tx, bufs.mqtt_rx, &opts).await?;
    log::info!("mqtt: connected as {device_id}");
    backoff.reset();

    // Announce (retained) on every connect, then availability.
    let mut sensors = heapless::Vec::new();
    for kind in [
        SensorKind::Temperature,
        SensorKind::Humidity,
        SensorKind::Rssi,
        SensorKind::Uptime,
    ] {
        let _ = sensors.push(kind);
    }
    let announce = Announce {
        id: device_id,
        name: device_id,
        model: MODEL,
        sw_version: env!("CARGO_PKG_VERSION"),
        sensors,
        interval_s: INTERVAL.as_secs() as u32,
        valve: None,
    };
    let mut payload = [0u8; 512];
    let json = core_proto::encode(&announce, &mut payload).map_err(|_| SessionError::Encode)?;
    mqtt.publish(&announce_topic, json, true).await?;
    mqtt.publish(&status_topic, STATUS_ONLINE.as_bytes(), true)
        .await?;

    loop {
        // The backlog first, oldest first; a reading leaves the buffer only
        // once the broker acknowledged it.
        let mut sent = 0u32;
        while let Some(t) = app.buffer.peek(Instant::now().as_millis()) {
            let json = core_proto::encode(&t, &mut payload).map_err(|_| SessionError::Encode)?;
            mqtt.publish(&telemetry_topic, json, false).await?;
            app.buffer.pop(Instant::now().as_millis());
            sent += 1;
            if app.reading_due() {
                // A long backlog must not starve the readings (nor the watchdog).
                let (t, at) = app.take_reading();
                app.keep(t, at);
            }
        }
        if sent > 0 {
            log::info!("mqtt: sent {sent} buffered readings");
        }

        Timer::at(app.next_reading).await;
        let (t, at) = app.take_reading();
        let json = core_proto::encode(&t, &mut payload).map_err(|_| SessionError::Encode)?;
        if let Err(e) = mqtt.publish(&telemetry_topic, json, false).await {
            app.keep(t, at);
            return Err(e.into());
        }
    }
}

/// Sealed secrets missing or not opening: no Wi-Fi, no broker. Logs why,
/// waits, then resets to try again (a new partition may have been written).
async fn fail_closed(why: &dyn core::fmt::Display) -> ! {
    log::error!(
        "FAIL CLOSED: {why}; Wi-Fi stays off. Retrying after a reset in {} s",
        FAIL_CLOSED_RETRY.as_secs()
    );
    Timer::after(FAIL_CLOSED_RETRY).await;
    software_reset()
}
