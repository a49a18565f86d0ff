//! `hearth health`: `GET /api/health` of a running bridge, exit status 0
//! when it answers 200 with `"status": "ok"`, 1 otherwise. For container
//! health checks (the Docker image has no curl) and service supervisors.

use crate::feeds::fetch::HttpGet;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub struct HealthArgs {
    /// The bridge's health endpoint (https:// when `[http] tls` is on).
    #[arg(
        long,
        env = "HEARTH_HEALTH_URL",
        default_value = "http://127.0.0.1:8099/api/health"
    )]
    pub url: String,
    /// PEM CA certificate(s) trusted for an https:// URL besides Mozilla's
    /// roots (the bridge's own CA: `<data_dir>/tls/ca.pem`).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
}

/// The health answer's JSON (printed on success), or why the bridge is not
/// healthy.
pub async fn check(args: &HealthArgs) -> anyhow::Result<String> {
    anyhow::ensure!(
        args.timeout.is_finite() && args.timeout > 0.0,
        "--timeout must be a positive number of seconds"
    );
    crate::feeds::fetch::check_url("--url", &args.url).map_err(anyhow::Error::msg)?;
    let get = HttpGet::with_ca(
        "--ca-file",
        args.ca_file.as_deref(),
        Duration::from_secs_f64(args.timeout),
    )
    .map_err(anyhow::Error::msg)?;
    let body = get
        .text(&args.url, "the health JSON")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let json: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| anyhow::anyhow!("{}: the answer is not JSON ({e})", args.url))?;
    match json.get("status").and_then(|s| s.as_str()) {
        Some("ok") => Ok(body),
        other => anyhow::bail!(
            "{}: status is {}, not \"ok\"",
            args.url,
            other.map_or("missing".to_string(), |s| format!("{s:?}"))
        ),
    }
}
