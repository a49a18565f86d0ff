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
    /// Run a bundled scenario against the digital twin: the server room
    /// (thermostat plugin, AC), the house (MPC plugin, valve, Tempo, forecast)
    /// or the coworking space (strip balancer, metered strips, laptops).
    Demo {
        #[command(flatten)]
        common: Common,
        /// Which: `server-room` (examples/server-room.toml), `house`
        /// (examples/house.toml), `coworking` (examples/coworking.toml) or
        /// `plugs` (examples/plugs.toml: Shelly Gen1/Gen2, Meross, Broadlink).
        #[arg(long, value_enum, default_value_t = DemoScenario::ServerRoom)]
        scenario: DemoScenario,
        /// Simulated seconds per wall second (default 1; plugs: 600, so a
        /// short run shows an office's morning).
        #[arg(long)]
        speed: Option<f64>,
        /// Exit 0 after this many wall seconds (default: until Ctrl-C).
        #[arg(long = "for", value_name = "SECONDS")]
        run_for: Option<f64>,
        /// Server room only: TLS, credentials and topic rights everywhere
        /// (certificates made in the data directory as `hearth certs
        /// init`/`issue` would; the twin's devices connect over TLS with
        /// their own credentials; the API is HTTPS/WSS).
        #[arg(long)]
        secure: bool,
        /// With `--secure`: the embedded broker's MQTT-over-TLS port.
        #[arg(long, value_name = "PORT", default_value_t = 8883)]
        mqtt_tls_port: u16,
    },
    /// TLS certificates, MQTT credentials and topic rights: the CA, the
    /// server certificate, devices, and the files for an external Mosquitto.
    Certs(hearth::cli::certs::CertsArgs),
    /// Long-lived access tokens for the WebSocket and REST APIs.
    Token {
        #[command(subcommand)]
        action: TokenAction,
        /// Directory for the bridge's data (as for `run` and `demo`).
        #[arg(long, value_name = "DIR", default_value = hearth::app::DEFAULT_DATA_DIR, global = true)]
        data_dir: PathBuf,
    },
    /// Controller plugins of a running bridge (through its WebSocket API),
    /// and `new` to start writing one.
    Plugin {
        #[command(subcommand)]
        action: PluginAction,
        /// The bridge's WebSocket API.
        #[arg(
            long,
            env = "HEARTH_URL",
            default_value = "ws://127.0.0.1:8099/api/websocket",
            global = true
        )]
        url: String,
        /// A long-lived access token (`hearth token create --name cli`).
        #[arg(long, env = "HEARTH_TOKEN", global = true, hide_env_values = true)]
        token: Option<String>,
        /// Print the bridge's JSON answer as is.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Compare controllers on a simulated house in virtual time (no bridge,
    /// no broker): the same plugin host and `.wasm` as live.
    Simulate {
        /// Scenario TOML (see examples/scenarios/).
        #[arg(long, value_name = "FILE")]
        scenario: PathBuf,
        /// Start of the scored period, RFC 3339 (default: the scenario's).
        #[arg(long, value_name = "ISO")]
        start: Option<String>,
        /// End of the scored period, RFC 3339 (default: the scenario's).
        #[arg(long, value_name = "ISO")]
        end: Option<String>,
        /// PLUGIN.wasm, builtin:NAME or LABEL=PLUGIN.wasm; its config is the
        /// scenario's [controllers.LABEL]. Repeat to compare.
        #[arg(long = "controller", value_name = "PLUGIN", required = true)]
        controllers: Vec<String>,
        /// Results directory (created).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// The tariff optimizer's problem at one instant of a solar-house
    /// scenario, written as CPLEX LP (or MPS) for any solver to check;
    /// prints the plan and `objective: <value>` in the file's units.
    Plan {
        /// A solar-house scenario TOML (examples/scenarios/solar-house-*.toml).
        #[arg(long, value_name = "FILE")]
        scenario: PathBuf,
        /// The instant, RFC 3339 (default: the scenario's start); the
        /// plan is the last re-plan at or before it.
        #[arg(long, value_name = "ISO")]
        at: Option<String>,
        /// The scenario's controller label that plans.
        #[arg(long, value_name = "LABEL", default_value = "tariff-optimizer")]
        controller: String,
        /// Write the problem in CPLEX LP format here.
        #[arg(long, value_name = "OUT.lp")]
        export_lp: Option<PathBuf>,
        /// Write the problem in free MPS format here.
        #[arg(long, value_name = "OUT.mps")]
        export_mps: Option<PathBuf>,
    },
    /// Score a `timestamp,value` CSV with an anomaly-detector plugin, row
    /// by row as live, and write `timestamp,value,anomaly_score`.
    Detect {
        /// PLUGIN.wasm or builtin:NAME.
        #[arg(
            long,
            value_name = "PLUGIN",
            default_value = "builtin:anomaly-detector"
        )]
        plugin: String,
        /// TOML with the plugin's `[config]` and `[limits]` (a plugin directory sidecar).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[arg(long, value_name = "IN.csv")]
        input: PathBuf,
        #[arg(long, value_name = "OUT.csv")]
        output: PathBuf,
    },
    /// Benchmarks that score Hearth against public references.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Reports from the bridge's recorder database.
    Report {
        #[command(subcommand)]
        what: ReportWhat,
    },
    /// An ESP32-C3 sensor node's sealed secrets partition (`seal`) and
    /// eFuse key (`keygen`).
    Firmware {
        #[command(subcommand)]
        action: hearth::cli::firmware::FirmwareAction,
    },
    /// Devices a running bridge found on the network (`[lan_discovery]`),
    /// through its WebSocket API: list them, adopt one into the config.
    Device {
        #[command(subcommand)]
        action: DeviceAction,
        /// The bridge's WebSocket API.
        #[arg(
            long,
            env = "HEARTH_URL",
            default_value = "ws://127.0.0.1:8099/api/websocket",
            global = true
        )]
        url: String,
        /// A long-lived access token (`hearth token create --name cli`).
        #[arg(long, env = "HEARTH_TOKEN", global = true, hide_env_values = true)]
        token: Option<String>,
        /// Print the bridge's JSON answer as is.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Is a running bridge healthy? `GET /api/health`: exit 0 when it
    /// answers `"status": "ok"`, else 1 (container health checks).
    Health(hearth::cli::health::HealthArgs),
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
enum ReportWhat {
    /// The billing table: per user, day, week and month, kWh in HP and HC
    /// and € (README "Per-user metering and billing").
    Usage {
        /// First local date billed, YYYY-MM-DD.
        #[arg(long, value_name = "YYYY-MM-DD")]
        from: String,
        /// Last local date billed (included), YYYY-MM-DD.
        #[arg(long, value_name = "YYYY-MM-DD")]
        to: String,
        /// `csv` or `md` (Markdown table).
        #[arg(long, default_value = "csv")]
        format: String,
        /// The bridge's data directory (its recorder database is `hearth.db` there).
        #[arg(long, value_name = "DIR", default_value = hearth::app::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// The database file, when `[recorder] path` puts it elsewhere.
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        /// `monday` or `sunday`, as `[usage] week_starts`; default: the
        /// `--config` file's `[usage] week_starts`, else monday.
        #[arg(long)]
        week_starts: Option<String>,
        /// The bridge's config file: weeks start on its `[usage] week_starts`,
        /// as the live per-user `this week` entities (unless --week-starts).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// The Numenta Anomaly Benchmark: every CSV of a NAB corpus (with its
    /// `combined_windows.json`) through a detector plugin, scored with NAB's
    /// three profiles.
    Nab {
        /// Corpus directory (default: ../shared/datasets/nab-dev-v2 beside the repository).
        dir: Option<PathBuf>,
        #[arg(
            long,
            value_name = "PLUGIN",
            default_value = "builtin:anomaly-detector"
        )]
        plugin: String,
        /// TOML with the plugin's `[config]` and `[limits]`.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Files scored in parallel.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DemoScenario {
    ServerRoom,
    House,
    Coworking,
    Plugs,
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

#[derive(Subcommand)]
enum DeviceAction {
    /// Devices found and not adopted yet (id, kind, address, model).
    Pending,
    /// Write pending device ID into the bridge's config file and drive it.
    Adopt {
        id: String,
        /// Friendly name (default: the device's own name, else its id).
        #[arg(long)]
        name: Option<String>,
        /// A key of the device's config table, KEY=VALUE (repeat);
        /// `id=…` renames the device; a Broadlink needs `codes=FILE`.
        #[arg(long = "option", value_name = "KEY=VALUE")]
        options: Vec<String>,
    },
}

#[derive(Subcommand)]
enum PluginAction {
    /// Plugins with status, versions, entities, CPU and memory use.
    List,
    /// Load a `.wasm` component (or `builtin:<name>`) as plugin NAME.
    Load {
        name: String,
        wasm: String,
        /// TOML file: `drives = [...]`, `[config]`, `[limits]` (a plugin directory sidecar).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Replace running plugin NAME by another component, carrying its state over.
    Swap {
        name: String,
        wasm: String,
        /// As for `load`. Without it: the config NAME last ran WASM with
        /// (`builtin:thermostat` after a swap away gets its own back), else
        /// the running plugin's config.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// The config plugin NAME runs with, as a `--config` file (TOML).
    Config { name: String },
    /// Stop plugin NAME and remove its entities from Home Assistant.
    Unload { name: String },
    /// Recent log lines of plugin NAME (its own and the host's about it).
    Logs {
        name: String,
        /// How many lines (at most 1000).
        #[arg(short = 'n', long, default_value_t = 100)]
        lines: usize,
    },
    /// Create a plugin crate NAME, ready to build for wasm32-wasip2.
    New {
        name: String,
        /// Directory to create it in.
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
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
    use hearth::broker::log_filter::RumqttdNoise;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // Every field escaped and capped: outside values cannot forge a
        // line or grow one past 4 KiB (hearth::logging).
        .fmt_fields(hearth::logging::EscapedFields)
        .finish()
        .with(RumqttdNoise::for_directives(level))
        .init();
}

fn prepare_data_dir(dir: &PathBuf) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("--data-dir {}: {e}", dir.display()))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    hearth::broker::allocator::give_large_buffers_back();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo {
            common,
            scenario,
            speed,
            run_for,
            secure,
            mqtt_tls_port,
        } => {
            init_logging(&common.log_level);
            let secure = secure.then_some(mqtt_tls_port);
            demo_command(common, scenario, speed, run_for, secure).await
        }
        Command::Token { action, data_dir } => token_command(action, &data_dir),
        Command::Firmware { action } => hearth::cli::firmware::run(action),
        Command::Certs(args) => hearth::cli::certs::run(args),
        Command::Health(args) => hearth::cli::health::check(&args)
            .await
            .map(|body| println!("{body}")),
        Command::Report {
            what:
                ReportWhat::Usage {
                    from,
                    to,
                    format,
                    data_dir,
                    db,
                    week_starts,
                    config,
                },
        } => {
            let db = db.unwrap_or_else(|| data_dir.join(hearth::recorder::DB_FILE));
            hearth::usage::report::command(
                &db,
                &from,
                &to,
                &format,
                week_starts.as_deref(),
                config.as_deref(),
            )
            .map(|text| print!("{text}"))
            .map_err(anyhow::Error::msg)
        }
        Command::Plugin {
            action,
            url,
            token,
            json,
        } => plugin_command(action, url, token, json).await,
        Command::Device {
            action,
            url,
            token,
            json,
        } => device_command(action, url, token, json).await,
        Command::Run { common, config } => {
            init_logging(&common.log_level);
            run_command(common, config).await
        }
        Command::Simulate {
            scenario,
            start,
            end,
            controllers,
            out,
            quiet,
        } => {
            // Plugins' own lines go to log-<controller>.txt, not the terminal.
            init_logging("error");
            let opts = hearth::twin::batch::SimulateOptions {
                scenario,
                start,
                end,
                controllers,
                out,
                progress: !quiet,
            };
            tokio::task::spawn_blocking(move || simulate_command(&opts))
                .await
                .unwrap_or_else(|e| Err(anyhow::anyhow!("simulation: {e}")))
        }
        Command::Plan {
            scenario,
            at,
            controller,
            export_lp,
            export_mps,
        } => {
            init_logging("error");
            let opts = hearth::twin::batch::solar_house::plan::PlanOptions {
                scenario,
                at,
                controller,
                export_lp,
                export_mps,
            };
            tokio::task::spawn_blocking(move || {
                hearth::twin::batch::solar_house::plan::plan(&opts).map(|s| print!("{s}"))
            })
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("plan: {e}")))
        }
        Command::Detect {
            plugin,
            config,
            input,
            output,
        } => {
            init_logging("warn");
            let opts = hearth::detect::DetectOptions {
                plugin,
                config,
                input,
                output,
            };
            tokio::task::spawn_blocking(move || detect_command(&opts))
                .await
                .unwrap_or_else(|e| Err(anyhow::anyhow!("detect: {e}")))
        }
        Command::Bench {
            what:
                BenchWhat::Nab {
                    dir,
                    plugin,
                    config,
                    threads,
                },
        } => {
            init_logging("warn");
            let opts = hearth::detect::nab::NabOptions {
                dir: dir.unwrap_or_else(hearth::detect::nab::default_dir),
                plugin,
                config,
                threads,
            };
            tokio::task::spawn_blocking(move || {
                hearth::detect::nab::run(&opts).map(|r| println!("{r}"))
            })
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("bench nab: {e}")))
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

fn detect_command(opts: &hearth::detect::DetectOptions) -> anyhow::Result<()> {
    let stats = hearth::detect::detect(opts)?;
    println!(
        "{} rows scored into {} ({} above 0.5); {:.0} rows/s inside the plugin, {:.2} s in all",
        stats.rows,
        opts.output.display(),
        stats.above_half,
        stats.plugin_rows_per_s(),
        stats.total_time.as_secs_f64()
    );
    Ok(())
}

fn simulate_command(opts: &hearth::twin::batch::SimulateOptions) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    print!("{}", hearth::twin::batch::simulate_summary(opts)?);
    println!(
        "\nResults in {} ({:.1} s).",
        opts.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn demo_command(
    common: Common,
    scenario: DemoScenario,
    speed: Option<f64>,
    run_for: Option<f64>,
    secure: Option<u16>,
) -> anyhow::Result<()> {
    let speed = speed.unwrap_or(match scenario {
        DemoScenario::Plugs => demo::plugs::DEFAULT_SPEED,
        _ => 1.0,
    });
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
    anyhow::ensure!(
        secure.is_none() || matches!(scenario, DemoScenario::ServerRoom),
        "--secure runs the server-room scenario only"
    );
    anyhow::ensure!(
        secure.is_none() || common.mqtt_url.is_none(),
        "--secure starts the embedded broker with TLS: leave out --mqtt-url"
    );
    prepare_data_dir(&common.data_dir)?;
    let opts = DemoOptions {
        speed,
        run_for,
        secure,
        mqtt_url: common.mqtt_url,
        mqtt_port: common.mqtt_port.unwrap_or(1883),
        http_port: common.http_port,
        data_dir: common.data_dir,
    };
    match scenario {
        DemoScenario::ServerRoom => println!("{}", demo::run(opts).await?),
        DemoScenario::House => println!("{}", demo::house::run(opts).await?),
        DemoScenario::Coworking => println!("{}", demo::coworking::run(opts).await?),
        DemoScenario::Plugs => println!("{}", demo::plugs::run(opts).await?),
    }
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

async fn plugin_command(
    action: PluginAction,
    url: String,
    token: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    use hearth::cli::plugin::{self as cli, Target};
    if let PluginAction::New { name, dir } = &action {
        let path = hearth::plugins::scaffold::scaffold(dir, name)?;
        println!(
            "Created plugin crate {}. Next:\n  cd {}\n  cargo test\n  cargo build --release --target wasm32-wasip2\n  hearth plugin load {name} target/wasm32-wasip2/release/{}.wasm --config {name}.toml\n(see docs/writing-a-plugin.md)",
            path.display(),
            path.display(),
            name.replace('-', "_")
        );
        return Ok(());
    }
    let token = token.ok_or_else(|| {
        anyhow::anyhow!(
            "a token is needed: pass --token or set HEARTH_TOKEN (create one with `hearth token create --name cli`)"
        )
    })?;
    let mut client = Target { url, token }.connect().await?;
    let (kind, args) = match &action {
        PluginAction::List => ("hearth/plugins/list", serde_json::json!({})),
        PluginAction::Load { name, wasm, config } => (
            "hearth/plugins/load",
            cli::request(name, wasm, config.as_ref())?,
        ),
        PluginAction::Swap { name, wasm, config } => (
            "hearth/plugins/swap",
            cli::request(name, wasm, config.as_ref())?,
        ),
        PluginAction::Unload { name } => {
            ("hearth/plugins/unload", serde_json::json!({"name": name}))
        }
        PluginAction::Config { name } => {
            ("hearth/plugins/config", serde_json::json!({"name": name}))
        }
        PluginAction::Logs { name, lines } => (
            "hearth/plugins/logs",
            serde_json::json!({"name": name, "lines": lines}),
        ),
        PluginAction::New { .. } => unreachable!("handled above"),
    };
    let result = client.command(kind, args).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    match action {
        PluginAction::List => print!("{}", cli::format_list(&result)),
        PluginAction::Logs { .. } => print!("{}", cli::format_logs(&result)),
        PluginAction::Config { .. } => print!("{}", cli::format_config(&result)?),
        PluginAction::Load { name, .. } => println!(
            "Loaded `{name}`: {} {} ({}), {}",
            result["plugin"].as_str().unwrap_or(""),
            result["version"].as_str().unwrap_or(""),
            result["wit"].as_str().unwrap_or(""),
            result["status"].as_str().unwrap_or("")
        ),
        PluginAction::Swap { name, .. } => println!(
            "Swapped `{name}`: {} → {} in {} µs (prepared in {:.1} ms, code {}); state {}",
            result["from"].as_str().unwrap_or(""),
            result["to"].as_str().unwrap_or(""),
            result["switch_us"],
            result["prepare_ms"].as_f64().unwrap_or(0.0),
            result["cache"].as_str().unwrap_or(""),
            match result["state_declined"].as_str() {
                None => "carried over".to_string(),
                Some(r) => format!("not carried over: {r}"),
            }
        ),
        PluginAction::Unload { name } => {
            println!("Unloaded `{name}`; its entities are removed from Home Assistant")
        }
        PluginAction::New { .. } => {}
    }
    Ok(())
}

async fn device_command(
    action: DeviceAction,
    url: String,
    token: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    use hearth::cli::device as cli;
    let token = token.ok_or_else(|| {
        anyhow::anyhow!(
            "a token is needed: pass --token or set HEARTH_TOKEN (create one with `hearth token create --name cli`)"
        )
    })?;
    let mut client = hearth::cli::plugin::Target { url, token }.connect().await?;
    let (kind, args) = match &action {
        DeviceAction::Pending => ("hearth/devices/pending", serde_json::json!({})),
        DeviceAction::Adopt { id, name, options } => (
            "hearth/devices/adopt",
            cli::adopt_request(id, name.as_deref(), options)?,
        ),
    };
    let result = client.command(kind, args).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    match action {
        DeviceAction::Pending => print!("{}", cli::format_pending(&result)),
        DeviceAction::Adopt { .. } => println!(
            "Adopted `{}` as [[{}]] `{}` (written to {}); its entities are in Home Assistant",
            result["pending_id"].as_str().unwrap_or(""),
            result["kind"].as_str().unwrap_or(""),
            result["id"].as_str().unwrap_or(""),
            result["config_file"].as_str().unwrap_or("")
        ),
    }
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
