//! Wi-Fi station (esp-radio) and the embassy-net stack (DHCPv4, DNS, TCP).
//! Started only after the sealed secrets opened (fail closed).

use core::sync::atomic::{AtomicI32, Ordering};

use embassy_executor::Spawner;
use embassy_futures::select::{Either, select};
use embassy_net::{Runner, Stack, StackResources};
use embassy_time::{Duration, Timer};
use esp_hal::{peripherals::WIFI, rng::Trng};
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config, ControllerConfig, Interface, WifiController,
    sta::StationConfig,
};
use static_cell::StaticCell;

/// Last RSSI seen by the connection task, dBm; 0 = unknown (not connected).
static RSSI: AtomicI32 = AtomicI32::new(0);

/// The station's RSSI, if connected.
pub fn rssi() -> Option<i16> {
    match RSSI.load(Ordering::Relaxed) {
        0 => None,
        v => i16::try_from(v).ok(),
    }
}

#[derive(Debug)]
pub enum NetError {
    BadSsid,
    BadPassword,
    Wifi,
    Spawn,
    Rng,
}

impl core::fmt::Display for NetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            NetError::BadSsid => "the sealed Wi-Fi SSID is not valid",
            NetError::BadPassword => "the sealed Wi-Fi password is not valid (8..63 characters)",
            NetError::Wifi => "the Wi-Fi driver did not start",
            NetError::Spawn => "cannot start the network tasks",
            NetError::Rng => {
                "no true random numbers (the radio did not register as entropy source)"
            }
        })
    }
}

/// Configures the station, starts the network stack and its tasks. The
/// connection task (re)joins the access point forever; DHCP runs in the stack.
///
/// Also returns the true RNG: with the Wi-Fi driver initialised, the radio
/// is the hardware RNG's entropy source (esp-radio registers it), so no
/// `TrngSource` (the SAR ADC, which is not to be used alongside the radio).
pub fn start(
    spawner: &Spawner,
    wifi: WIFI<'static>,
    ssid: &str,
    password: &str,
) -> Result<(Stack<'static>, Trng), NetError> {
    let auth = if password.is_empty() {
        AuthenticationMethodConfig::Open
    } else {
        AuthenticationMethodConfig::Wpa2Personal(
            password.try_into().map_err(|_| NetError::BadPassword)?,
        )
    };
    let station = Config::Station(
        StationConfig::default()
            .with_ssid(ssid.try_into().map_err(|_| NetError::BadSsid)?)
            .with_authentication(auth),
    );
    let controller = WifiController::new(
        wifi,
        ControllerConfig::default().with_initial_config(station),
    )
    .map_err(|_| NetError::Wifi)?;
    let interface = Interface::station();
    let rng = Trng::try_new().map_err(|_| NetError::Rng)?;
    let seed = u64::from(rng.random()) << 32 | u64::from(rng.random());

    static RESOURCES: StaticCell<StackResources<3>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        interface,
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );
    spawner.spawn(connection(controller).map_err(|_| NetError::Spawn)?);
    spawner.spawn(net_task(runner).map_err(|_| NetError::Spawn)?);
    Ok((stack, rng))
}

#[embassy_executor::task]
async fn connection(mut controller: WifiController<'static>) {
    loop {
        log::info!("wifi: connecting");
        match controller.connect_async().await {
            Ok(_) => {
                log::info!("wifi: connected");
                loop {
                    let rssi = controller.rssi().unwrap_or(0);
                    RSSI.store(rssi, Ordering::Relaxed);
                    match select(
                        controller.wait_for_disconnect_async(),
                        Timer::after(Duration::from_secs(10)),
                    )
                    .await
                    {
                        Either::First(_) => break,
                        Either::Second(()) => {}
                    }
                }
                RSSI.store(0, Ordering::Relaxed);
                log::warn!("wifi: disconnected");
            }
            Err(e) => log::warn!("wifi: connect failed: {e:?}"),
        }
        Timer::after(Duration::from_secs(5)).await;
    }
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Interface>) {
    runner.run().await
}
