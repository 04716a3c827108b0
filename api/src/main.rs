//! `ringledger`: the api process. Thin: read configuration, build the application, run it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ringledger_api::config::Config;
use ringledger_api::startup::{Application, MIGRATOR};
use ringledger_api::telemetry;

#[derive(Parser)]
#[command(
    name = "ringledger",
    version,
    about = "RingLedger: prepaid calling on an event-sourced ledger"
)]
struct Cli {
    /// A TOML configuration file (default: ./ringledger.toml if present). Secrets come only
    /// from the environment.
    #[arg(long, global = true, env = "RINGLEDGER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the api, projection runners and jobs (development mode starts a private Postgres
    /// when DATABASE_URL is unset).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the effective configuration, secrets redacted.
    Config,
    /// Manage admins.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a confirmed admin with an opened ledger account; TOTP is enrolled at first
    /// sign-in. Prompts for the password (no echo) when standard input is a terminal.
    Create {
        /// The admin's email address.
        email: String,
        /// Read the password from the first line of standard input (for scripts).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    telemetry::init_logging(config.log_format());
    match cli.command {
        Command::Serve => {
            let app = Application::build(config).await?;
            let addr = app.local_addr();
            if let Some(pg) = app.private_postgres() {
                tracing::info!(database = %pg.url, "development Postgres ready");
                println!("Postgres (development): {}", pg.url);
            }
            if let Some(catcher) = app.mail_catcher() {
                println!(
                    "Mail (development): caught by {}, read it at http://{addr}/dev/mailbox",
                    catcher.smtp_url()
                );
            }
            println!("RingLedger is up: open http://{addr}/  (health: http://{addr}/readyz)");
            tracing::info!(%addr, "listening");
            app.run_until_stopped().await
        }
        Command::Migrate => {
            let url = config
                .database_url
                .ok_or_else(|| anyhow::anyhow!("DATABASE_URL is not set"))?;
            let pool = sqlx::PgPool::connect(url.expose()).await?;
            MIGRATOR.run(&pool).await?;
            println!("migrations applied: {}", MIGRATOR.iter().count());
            Ok(())
        }
        Command::Admin { command } => match command {
            AdminCommand::Create {
                email,
                password_stdin,
            } => {
                let password = ringledger_api::auth::admin_cli::read_password(password_stdin)?;
                ringledger_api::auth::admin_cli::create(&config, &email, password).await
            }
        },
        Command::Config => {
            println!("{}", serde_json::to_string_pretty(&config)?);
            Ok(())
        }
    }
}
