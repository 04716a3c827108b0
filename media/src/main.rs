//! `ringledger-media`: `serve` (the gateway), `dial` (one call from a generated tone through
//! the same path, printing progress and the cause), `trunk-sim` (a simulated SIP trunk).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ringledger_media::app;

#[derive(Parser)]
#[command(
    name = "ringledger-media",
    version,
    about = "RingLedger media gateway: SIP/RTP toward the trunk, metered by the api"
)]
struct Cli {
    /// TOML configuration file (keys in docs/media.md); `RINGLEDGER_MEDIA_*` variables override it.
    #[arg(long, env = "RINGLEDGER_MEDIA_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway: SIP leg, RTP, metering client, control server (/v1/hangup, /metrics).
    Serve,
    /// Place one call from a generated tone and print its progress and final cause.
    Dial(app::DialArgs),
    /// Run a simulated SIP trunk (answers, rings, refuses by number pattern; echoes audio).
    TrunkSim(ringledger_media::trunk_sim::SimArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve => {
            let cfg = ringledger_media::config::MediaConfig::load(cli.config.as_deref())?;
            app::init_logs(&cfg.log_format);
            app::serve(cfg).await
        }
        Command::Dial(args) => {
            let cfg = ringledger_media::config::MediaConfig::load(cli.config.as_deref())?;
            app::init_logs("pretty");
            let code = app::dial(cfg, args).await?;
            std::process::exit(code);
        }
        Command::TrunkSim(args) => {
            app::init_logs("pretty");
            let sim = ringledger_media::trunk_sim::TrunkSim::bind(args)
                .await
                .context("binding the trunk")?;
            println!("trunk-sim listening on {}", sim.local_addr()?);
            tokio::select! {
                r = sim.run() => r,
                _ = tokio::signal::ctrl_c() => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    Ok(())
                }
            }
        }
    }
}
