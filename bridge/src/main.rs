//! `hearth`: the command line. See README.md.

use clap::{Args, Parser, Subcommand};
use hearth::app::Bridge;
use hearth::clock::Clock;
use hearth::config::Config;
use hearth::demo::{self, DemoOptions};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "hearth",
    version,
    about = "Devices and WebAssembly controllers as first-class citizens of Home Assistant"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bundled server-room scenario against the digital twin.
    Demo {
        #[command(flatten)]
        common: Common,
        /// Simulated seconds per wall second.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Exit 0 after this many wall seconds (default: until Ctrl-C).
        #[arg(long = "for", value_name = "SECONDS")]
        run_for: Option<f64>,
    },
    /// Long-lived access tokens for the WebSocket and REST APIs.
    Token {
        #[command(subcommand)]
        action: TokenAction,
        /// Directory for the bridge's data (as for `run` and `demo`).
        #[arg(long, value_name = "DIR", default_value = hearth::app::DEFAULT_DATA_DIR, global = true)]
        data_dir: PathBuf,
    },
    /// Run the bridge against real devices.
    Run {
        #[command(flatten)]
        common: Common,
        /// TOML configuration file (see examples/server-room.toml).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create a token; prints it once, alone on the last line.
    Create {
        /// What the token is for (shown by `list`).
        #[arg(long)]
        name: String,
    },
    /// List tokens (ids and names; secrets are never stored).
    List,
    /// Revoke a token by id; open connections using it are closed.
    Revoke {
        /// The id `list` shows.
        id: String,
    },
}

#[derive(Args)]
struct Common {
    /// External MQTT broker, mqtt://[user[:password]@]host[:port]. Without it the embedded broker starts.
    #[arg(long, value_name = "URL")]
    mqtt_url: Option<String>,
    /// Port of the embedded MQTT broker.
    #[arg(long, value_name = "PORT")]
    mqtt_port: Option<u16>,
    /// Port of the bridge's HTTP API (WebSocket, REST, /api/health).
    #[arg(long, value_name = "PORT")]
    http_port: Option<u16>,
    /// Directory for the bridge's data (created if missing).
    #[arg(long, value_name = "DIR", default_value = hearth::app::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive list.
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn init_logging(level: &str) {
    // The broker and the compiler are chatty at info; keep them at warn
    // unless asked for by name.
    let directives =
        format!("{level},rumqttd=warn,rumqttc=warn,cranelift_codegen=warn,wasmtime=warn");
    let filter = tracing_subscriber::EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("--log-level `{level}`: {e}; using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

fn prepare_data_dir(dir: &PathBuf) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("--data-dir {}: {e}", dir.display()))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo {
            common,
            speed,
            run_for,
        } => {
            init_logging(&common.log_level);
            demo_command(common, speed, run_for).await
        }
        Command::Token { action, data_dir } => token_command(action, &data_dir),
        Command::Run { common, config } => {
            init_logging(&common.log_level);
            run_command(common, config).await
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn demo_command(common: Common, speed: f64, run_for: Option<f64>) -> anyhow::Result<()> {
    anyhow::ensure!(
        speed.is_finite() && speed > 0.0 && speed <= 100_000.0,
        "--speed must be a positive number up to 100000 (got {speed})"
    );
    if let Some(s) = run_for {
        anyhow::ensure!(
            s.is_finite() && s > 0.0,
            "--for must be a positive number of seconds (got {s})"
        );
    }
    prepare_data_dir(&common.data_dir)?;
    let opts = DemoOptions {
        speed,
        run_for,
        mqtt_url: common.mqtt_url,
        mqtt_port: common.mqtt_port.unwrap_or(1883),
        http_port: common.http_port,
        data_dir: common.data_dir,
    };
    let report = demo::run(opts).await?;
    println!("{report}");
    Ok(())
}

async fn run_command(common: Common, path: PathBuf) -> anyhow::Result<()> {
    let mut config = Config::load(&path)?;
    if let Some(url) = common.mqtt_url {
        config.mqtt.url = Some(url);
    }
    if let Some(port) = common.mqtt_port {
        config.mqtt.port = port;
    }
    if let Some(port) = common.http_port {
        config.http.port = port;
    }
    let data_dir = config.data_dir.clone().unwrap_or(common.data_dir);
    prepare_data_dir(&data_dir)?;
    config.data_dir = Some(data_dir);
    let bridge = Bridge::start(config, Clock::real()).await?;
    hearth::shutdown::termination().await;
    bridge.stop().await;
    Ok(())
}

fn token_command(action: TokenAction, data_dir: &std::path::Path) -> anyhow::Result<()> {
    use hearth::api::auth::tokens;
    match action {
        TokenAction::Create { name } => {
            let (record, secret) = tokens::create(data_dir, &name)?;
            println!(
                "Created token {} (`{}`) in {}. It is shown only now; a running bridge accepts it at once:",
                record.id,
                record.name,
                tokens::path(data_dir).display()
            );
            println!("{secret}");
        }
        TokenAction::List => {
            let list = tokens::load(data_dir)?;
            if list.is_empty() {
                println!("no tokens in {}", tokens::path(data_dir).display());
            }
            for t in list {
                println!("{}  {}  {}", t.id, t.created, t.name);
            }
        }
        TokenAction::Revoke { id } => {
            let gone = tokens::revoke(data_dir, &id)?;
            println!("Revoked token {} (`{}`)", gone.id, gone.name);
        }
    }
    Ok(())
}
