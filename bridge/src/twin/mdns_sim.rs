//! mDNS announcements of twin devices on loopback, as real Shelly devices
//! make them on a LAN (Shelly "Gen2+ Device API", mDNS: service
//! `_shelly._tcp.local.` with TXT `gen`, `app`, `ver`, plus
//! `_http._tcp.local.`; instance and host name are the device id), so the
//! bridge's [`crate::lan`] discovery finds them exactly as it would find
//! hardware (RFC 6762/6763 over UDP multicast, with mdns-sd).
//!
//! Announced on the IPv4 loopback interface only (mdns-sd's
//! `IfKind::LoopbackV4`), with the address 127.0.0.1: the twin's HTTP
//! servers listen there. Linux delivers the multicast on `lo` although
//! `ip -br link` shows no `MULTICAST` flag on it; no system change is
//! needed (checked on this project's machines, Linux 6.18, as root and as
//! `nobody`; see [`crate::lan::mdns`]).
//!
//! [`announce`] starts one announcement and returns a [`MdnsAnnouncement`];
//! dropping it (or [`MdnsAnnouncement::stop`]) sends the goodbye packets
//! and stops the responder.

use mdns_sd::{IfKind, ServiceDaemon, ServiceInfo};
use std::net::SocketAddr;

/// A device announced until this is dropped.
pub struct MdnsAnnouncement {
    daemon: ServiceDaemon,
    fullnames: Vec<String>,
}

impl MdnsAnnouncement {
    /// Withdraws the announcement (goodbye packets) and stops the responder.
    pub fn stop(self) {}

    /// The announced instance names (`<id>._shelly._tcp.local.`, …).
    pub fn fullnames(&self) -> &[String] {
        &self.fullnames
    }
}

impl Drop for MdnsAnnouncement {
    fn drop(&mut self) {
        for f in &self.fullnames {
            let _ = self.daemon.unregister(f);
        }
        let _ = self.daemon.shutdown();
    }
}

/// What a Shelly announces.
#[derive(Debug, Clone)]
pub struct ShellyAnnouncement {
    /// The device id, the instance and host name (`shellyplusplugs-a8032ab1c2d3`).
    pub id: String,
    /// Where its HTTP server listens (127.0.0.1:port).
    pub http: SocketAddr,
    /// 1 for Gen1 (only `_http._tcp`), 2+ for Gen2+ (`_shelly._tcp` too).
    pub generation: u32,
    /// Gen2+'s TXT `app` (`PlusPlugS`).
    pub app: String,
    /// Gen2+'s TXT `ver` (`1.4.4`).
    pub ver: String,
}

impl ShellyAnnouncement {
    /// The Gen2 twin plug of [`super::shelly_sim`] with id `id` at `http`.
    pub fn plus_plug_s(id: &str, http: SocketAddr) -> Self {
        ShellyAnnouncement {
            id: id.to_string(),
            http,
            generation: 2,
            app: super::shelly_sim::APP.into(),
            ver: super::shelly_sim::FW_VER.into(),
        }
    }
}

/// Announces a Shelly on loopback until the handle is dropped.
pub fn announce(a: &ShellyAnnouncement) -> anyhow::Result<MdnsAnnouncement> {
    let daemon = ServiceDaemon::new().map_err(|e| anyhow::anyhow!("twin mDNS: {e}"))?;
    daemon
        .disable_interface(IfKind::All)
        .and_then(|()| daemon.enable_interface(IfKind::LoopbackV4))
        .map_err(|e| anyhow::anyhow!("twin mDNS: loopback only: {e}"))?;
    let host = format!("{}.local.", a.id);
    let ip = a.http.ip().to_string();
    let gen_txt = a.generation.to_string();
    let mut services: Vec<(&str, Vec<(&str, &str)>)> = Vec::new();
    if a.generation >= 2 {
        services.push((
            "_shelly._tcp.local.",
            vec![("gen", gen_txt.as_str()), ("app", &a.app), ("ver", &a.ver)],
        ));
    }
    services.push(("_http._tcp.local.", vec![]));
    let mut fullnames = Vec::new();
    for (ty, txt) in services {
        let info = ServiceInfo::new(ty, &a.id, &host, ip.as_str(), a.http.port(), &txt[..])
            .map_err(|e| anyhow::anyhow!("twin mDNS: {ty} {}: {e}", a.id))?;
        fullnames.push(info.get_fullname().to_string());
        daemon
            .register(info)
            .map_err(|e| anyhow::anyhow!("twin mDNS: register {ty} {}: {e}", a.id))?;
    }
    Ok(MdnsAnnouncement { daemon, fullnames })
}

/// A twin Gen2 plug ([`super::shelly_sim`]) serving HTTP on 127.0.0.1 and
/// announced over mDNS, started by one call ([`start_plus_plug`]). Its
/// relay starts closed; its load is the plant's air conditioner (off by
/// remote: 0 W until something switches it on).
pub struct AnnouncedPlug {
    /// The device id (`shellyplusplugs-<mac>`), its pending id in the bridge.
    pub id: String,
    pub http: SocketAddr,
    pub plant: super::SharedPlant,
    pub fault: super::shelly_sim::FaultSwitch,
    announcement: Option<MdnsAnnouncement>,
}

impl AnnouncedPlug {
    /// Withdraws the mDNS announcement; the HTTP server runs on until the
    /// shutdown given to [`start_plus_plug`].
    pub fn withdraw(&mut self) {
        self.announcement.take();
    }
}

/// Starts a twin Plus Plug S with MAC `mac` (12 hex digits) and announces it.
pub fn start_plus_plug(
    clock: crate::clock::Clock,
    mac: &str,
    name: &str,
    shutdown: crate::shutdown::Shutdown,
) -> anyhow::Result<AnnouncedPlug> {
    let plant = super::Plant::new(super::RoomParams::server_room(), clock.now_ms()).shared();
    let fault = super::shelly_sim::FaultSwitch::default();
    let cfg = super::shelly_sim::ShellySimConfig {
        mac: mac.to_string(),
        name: name.to_string(),
        seed: 1,
    };
    let (http, _task) =
        super::shelly_sim::spawn(clock, cfg, plant.clone(), fault.clone(), shutdown)?;
    let id = super::shelly_sim::ShellyDevice::new(mac, name).id();
    let announcement = announce(&ShellyAnnouncement::plus_plug_s(&id, http))?;
    Ok(AnnouncedPlug {
        id,
        http,
        plant,
        fault,
        announcement: Some(announcement),
    })
}
