//! mDNS/DNS-SD browsing (RFC 6762/6763) for Shelly devices, with mdns-sd.
//!
//! Shelly Gen2+ announce `_shelly._tcp.local.` (TXT `gen`, `app`, `ver`)
//! and `_http._tcp.local.`; Gen1 announce `_http._tcp.local.` only. Both
//! use the device's id as instance name (`shellyplusplugs-a8032ab1c2d3`,
//! `shellyplug-s-6A6374`), so `_http` instances are kept only when their
//! name starts with `shelly` (Shelly's "Gen2+ Device API", mDNS section;
//! Gen1 API reference, "Discovery").
//!
//! Browsing covers every interface mdns-sd enables by default (the IPv4
//! and IPv6 addresses of each up interface, loopback included). On each,
//! mdns-sd joins 224.0.0.251 with that interface's address, sends with
//! `IP_MULTICAST_IF` set to it and `IP_MULTICAST_LOOP` on (its default).
//! That works on `lo` although `ip -br link` shows no `MULTICAST` flag
//! there (Linux 6.18, as root and as an unprivileged user): the twin's
//! announcer ([`crate::twin::mdns_sim`]) and the tests rely on it, with no
//! `ip link set lo multicast on` and no other system change.

use mdns_sd::{ServiceDaemon, ServiceEvent};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub const SHELLY_SERVICE: &str = "_shelly._tcp.local.";
pub const HTTP_SERVICE: &str = "_http._tcp.local.";

/// A resolved announcement worth probing.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The instance name, lower case (`shellyplusplugs-a8032ab1c2d3`).
    pub instance: String,
    /// `_shelly._tcp.local.` or `_http._tcp.local.`.
    pub service: String,
    /// IPv4 when the device has one, else IPv6.
    pub addr: SocketAddr,
    pub txt: BTreeMap<String, String>,
}

/// Whether an instance of `service` is a Shelly worth probing.
pub fn is_shelly(service: &str, instance: &str) -> bool {
    service.eq_ignore_ascii_case(SHELLY_SERVICE)
        || (service.eq_ignore_ascii_case(HTTP_SERVICE)
            && instance.to_ascii_lowercase().starts_with("shelly"))
}

/// Browses both services until shutdown, sending every Shelly resolved
/// (again on each re-announcement) to `found`.
pub fn spawn(
    found: mpsc::Sender<Found>,
    mut shutdown: crate::shutdown::Shutdown,
) -> anyhow::Result<JoinHandle<()>> {
    let daemon = ServiceDaemon::new().map_err(|e| anyhow::anyhow!("mDNS: cannot start: {e}"))?;
    let mut receivers = Vec::new();
    for service in [SHELLY_SERVICE, HTTP_SERVICE] {
        let rx = daemon
            .browse(service)
            .map_err(|e| anyhow::anyhow!("mDNS: cannot browse {service}: {e}"))?;
        receivers.push(rx);
    }
    Ok(tokio::spawn(async move {
        let mut set = tokio::task::JoinSet::new();
        for rx in receivers {
            let found = found.clone();
            set.spawn(async move {
                while let Ok(event) = rx.recv_async().await {
                    let ServiceEvent::ServiceResolved(r) = event else {
                        continue;
                    };
                    let instance = r
                        .fullname
                        .strip_suffix(&r.ty_domain)
                        .unwrap_or(&r.fullname)
                        .trim_end_matches('.')
                        .to_ascii_lowercase();
                    if !is_shelly(&r.ty_domain, &instance) {
                        continue;
                    }
                    let ips: Vec<IpAddr> = r.addresses.iter().map(|a| a.to_ip_addr()).collect();
                    let Some(ip) = ips
                        .iter()
                        .find(|ip| ip.is_ipv4())
                        .or_else(|| ips.first())
                        .copied()
                    else {
                        continue;
                    };
                    let txt = r
                        .txt_properties
                        .iter()
                        .map(|p| (p.key().to_ascii_lowercase(), p.val_str().to_string()))
                        .collect();
                    let f = Found {
                        instance,
                        service: r.ty_domain.clone(),
                        addr: SocketAddr::new(ip, r.port),
                        txt,
                    };
                    tracing::debug!("mDNS: {} at {} ({})", f.instance, f.addr, f.service);
                    if found.send(f).await.is_err() {
                        break;
                    }
                }
            });
        }
        shutdown.wait().await;
        set.abort_all();
        if let Err(e) = daemon.shutdown() {
            tracing::debug!("mDNS: shutdown: {e}");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_instances_are_kept_only_when_named_shelly() {
        assert!(is_shelly(SHELLY_SERVICE, "anything"));
        assert!(is_shelly(HTTP_SERVICE, "ShellyPlug-S-6A6374"));
        assert!(!is_shelly(HTTP_SERVICE, "printer-3f"));
        assert!(!is_shelly("_hap._tcp.local.", "shelly1"));
    }
}
