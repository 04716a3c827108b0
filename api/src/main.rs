//! `ringledger`: the api process. Thin: read configuration, build the application, run it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ringledger_api::config::{Config, Mode};
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
    /// Run the Stripe test double (development only): Stripe's API for Checkout Sessions and
    /// Refunds, a hosted checkout page with test cards, signed webhooks with retries, and admin
    /// endpoints for refunds and disputes (docs/stripe.md). It shares RINGLEDGER_STRIPE_SECRET_KEY,
    /// RINGLEDGER_STRIPE_WEBHOOK_SECRET and RINGLEDGER_STRIPE_API_BASE (where it listens) with the api.
    StripeSim(SimArgs),
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

#[derive(clap::Args)]
struct SimArgs {
    /// Where to listen (default: the host and port of stripe_api_base).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Where webhooks are POSTed (default: the api's /webhooks/stripe, from public_url or
    /// http_addr).
    #[arg(long)]
    webhook_url: Option<String>,
    /// Attempts per webhook delivery, the first included.
    #[arg(long, default_value_t = 8)]
    max_attempts: u32,
    /// Wait before the first retry, doubled after each failure (Stripe's spans days).
    #[arg(long, default_value_t = 1_000)]
    first_retry_ms: u64,
    /// Longest wait between retries.
    #[arg(long, default_value_t = 60_000)]
    max_retry_ms: u64,
    /// How long the endpoint has to answer one delivery.
    #[arg(long, default_value_t = 10_000)]
    attempt_timeout_ms: u64,
    /// How long a "pay later" bank transfer takes to settle.
    #[arg(long, default_value_t = 5_000)]
    async_settle_ms: u64,
}

async fn stripe_sim(config: &Config, args: SimArgs) -> anyhow::Result<()> {
    use ringledger_api::stripe::sim::{RetryPolicy, SimConfig, StripeSim};
    anyhow::ensure!(
        config.mode == Mode::Development,
        "stripe-sim is a development double; it does not run in production mode"
    );
    let (Some(key), Some(secret)) = (&config.stripe_secret_key, &config.stripe_webhook_secret) else {
        anyhow::bail!("stripe-sim needs RINGLEDGER_STRIPE_SECRET_KEY and RINGLEDGER_STRIPE_WEBHOOK_SECRET (shared with the api)");
    };
    let listen = match args.listen {
        Some(addr) => addr,
        None => {
            let host = config
                .stripe_api_base
                .strip_prefix("http://")
                .map(|rest| rest.trim_end_matches('/'))
                .ok_or_else(|| anyhow::anyhow!("set RINGLEDGER_STRIPE_API_BASE to the double's address (e.g. http://127.0.0.1:12111) or pass --listen"))?;
            tokio::net::lookup_host(host)
                .await?
                .next()
                .ok_or_else(|| anyhow::anyhow!("stripe_api_base `{host}` does not resolve"))?
        }
    };
    let api = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.http_addr));
    let sim_config = SimConfig {
        webhook_url: Some(
            args.webhook_url
                .unwrap_or_else(|| format!("{}/webhooks/stripe", api.trim_end_matches('/'))),
        ),
        public_url: None,
        retry: RetryPolicy {
            max_attempts: args.max_attempts,
            first_retry_ms: args.first_retry_ms,
            max_retry_ms: args.max_retry_ms,
            attempt_timeout_ms: args.attempt_timeout_ms,
            ..RetryPolicy::default()
        },
        async_settle_ms: args.async_settle_ms,
        ..SimConfig::new(key.clone(), secret.clone())
    };
    let sim = StripeSim::start(listen, sim_config).await?;
    println!(
        "Stripe test double is up at {} (webhooks to {}/webhooks/stripe)",
        sim.base_url(),
        api.trim_end_matches('/')
    );
    tracing::info!(addr = %sim.local_addr(), "stripe-sim listening");
    ringledger_api::startup::shutdown_signal().await;
    sim.stop().await;
    Ok(())
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
        Command::StripeSim(args) => stripe_sim(&config, args).await,
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
