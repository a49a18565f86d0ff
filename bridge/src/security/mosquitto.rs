//! `<data>/mqtt/mosquitto.conf`: an external Mosquitto (≥ 2.0) set up with
//! the same CA, server certificate, password file and ACL as Hearth's
//! embedded front.

use super::SecurityPaths;
use std::path::Path;

/// Ports of the generated configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// TLS listener, all addresses (default 8883).
    pub tls: u16,
    /// Plain listener, 127.0.0.1 only (default 1883), authenticated too.
    pub plain: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            tls: 8883,
            plain: 1883,
        }
    }
}

fn abs(p: &Path) -> String {
    p.display().to_string()
}

/// The configuration's text. `paths.data_dir` should be absolute (Mosquitto
/// resolves relative paths against its working directory, not the file's).
pub fn conf_text(paths: &SecurityPaths, ports: Ports) -> String {
    format!(
        "# Written by `hearth certs init`: an external Mosquitto (>= 2.0) with Hearth's CA,\n\
         # password file and ACL (the same files Hearth's embedded broker front reads).\n\
         #   mosquitto -c {conf}\n\
         # After `hearth certs issue` / `revoke`, reload the files: kill -HUP <mosquitto pid>.\n\
         # Mosquitto must read the 0600 files below (in 0700 directories): run it as their\n\
         # owner. Started as root it switches to the user of option `user` (default\n\
         # `mosquitto`) first: add `user <owner of these files>`.\n\
         \n\
         per_listener_settings false\n\
         allow_anonymous false\n\
         password_file {passwd}\n\
         acl_file {acl}\n\
         \n\
         # MQTT over TLS: clients verify the server with ca.pem; they log in with a\n\
         # user name and password (a client certificate is not required, and not\n\
         # taken as the user name).\n\
         listener {tls}\n\
         cafile {ca}\n\
         certfile {cert}\n\
         keyfile {key}\n\
         require_certificate false\n\
         use_identity_as_username false\n\
         \n\
         # Plain MQTT on the loopback only (authenticated all the same).\n\
         listener {plain} 127.0.0.1\n",
        conf = abs(&paths.mosquitto_conf()),
        passwd = abs(&paths.passwd()),
        acl = abs(&paths.acl()),
        tls = ports.tls,
        ca = abs(&paths.ca_cert()),
        cert = abs(&paths.server_cert()),
        key = abs(&paths.server_key()),
        plain = ports.plain,
    )
}

/// Writes `<data>/mqtt/mosquitto.conf` (0644: it holds paths, no secret).
pub fn write_conf(paths: &SecurityPaths, ports: Ports) -> anyhow::Result<()> {
    super::files::write_public(&paths.mosquitto_conf(), conf_text(paths, ports).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_has_absolute_paths_and_both_listeners() {
        let p = SecurityPaths::new("/srv/hearth");
        let t = conf_text(
            &p,
            Ports {
                tls: 18883,
                plain: 11883,
            },
        );
        let lines: Vec<&str> = t.lines().filter(|l| !l.starts_with('#')).collect();
        for want in [
            "per_listener_settings false",
            "allow_anonymous false",
            "password_file /srv/hearth/mqtt/passwd",
            "acl_file /srv/hearth/mqtt/acl",
            "listener 18883",
            "cafile /srv/hearth/tls/ca.pem",
            "certfile /srv/hearth/tls/server.pem",
            "keyfile /srv/hearth/tls/server.key",
            "require_certificate false",
            "use_identity_as_username false",
            "listener 11883 127.0.0.1",
        ] {
            assert!(lines.contains(&want), "missing `{want}` in\n{t}");
        }
    }
}
