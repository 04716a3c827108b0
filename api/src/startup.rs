//! Testable startup: `Application::build(config)` connects, migrates and binds (port 0 in
//! tests); `run_until_stopped` serves until SIGINT/SIGTERM, then drains and stops what it
//! started (including a development Postgres).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::auth::AuthService;
use crate::calls::CallService;
use crate::checkout::CheckoutService;
use crate::config::{Config, Mode};
use crate::devdb::{self, PrivatePostgres};
use crate::http::metering::MeteringSecrets;
use crate::http::{self, AppState};
use crate::ledger::AccountService;
use crate::mail::catcher::{CatcherLimits, MailCatcher};
use crate::rates::RateService;
use crate::store::PostgresStore;
use crate::stripe::client::StripeClient;

/// The migrations of this build, embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

pub struct Application {
    listener: TcpListener,
    state: AppState,
    private_postgres: Option<PrivatePostgres>,
    database_url: String,
    mode: Mode,
    mailer: crate::mail::Mailer,
    mail_catcher: Option<MailCatcher>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let (database_url, private_postgres) = match (&config.database_url, config.mode) {
            (Some(url), _) => (url.expose().to_owned(), None),
            (None, Mode::Development) => {
                let pg = devdb::ensure_private_postgres(&config.var_dir)
                    .await
                    .context("starting the development Postgres (DATABASE_URL is unset)")?;
                (pg.url.clone(), Some(pg))
            }
            (None, Mode::Production) => anyhow::bail!("production mode needs DATABASE_URL"),
        };
        let pool = connect(&database_url, config.database_max_connections).await?;
        MIGRATOR
            .run(&pool)
            .await
            .context("applying database migrations")?;
        let (mailer, mail_catcher) = mail_setup(&config, &pool).await?;
        let store = Arc::new(PostgresStore::new(pool.clone()));
        let accounts = AccountService::new(store.clone(), config.ledger.clone());
        let rates = RateService::new(
            pool.clone(),
            store.clone(),
            config.ledger.clone(),
            accounts.ledger().appended(),
            config.rates.clone(),
        );
        let payments = crate::payments::PaymentService::new(
            pool.clone(),
            store.clone(),
            config.ledger.clone(),
            accounts.clone(),
            config.payments.clone(),
            config.stripe_webhook_secrets(),
        );
        let calls = CallService::new(
            pool.clone(),
            store.clone(),
            config.ledger.clone(),
            accounts.clone(),
            rates.clone(),
            config.calls.clone(),
        )
        .with_media_secret(config.media_secret.clone());
        let fraud = crate::fraud::FraudService::new(
            pool.clone(),
            calls.clone(),
            accounts.clone(),
            config.fraud.clone(),
        );
        let metering = MeteringSecrets {
            media_secret: config.media_secret.clone(),
            call_token_secret: config.call_token_secret.clone(),
        };
        let listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding {}", config.http_addr))?;
        let public_url = config.public_url.clone().unwrap_or_else(|| {
            // Unset: the bound port on loopback (a wildcard bind is not an address to link to).
            let port = listener
                .local_addr()
                .map_or(config.http_addr.port(), |a| a.port());
            format!("http://127.0.0.1:{port}")
        });
        let checkout = checkout_setup(&config, store, accounts.ledger().appended(), &public_url).await?;
        let secret_box = crate::auth::secret_box::SecretBox::from_config(&config)?;
        let auth = AuthService::new(
            pool.clone(),
            config.auth.clone(),
            accounts.clone(),
            public_url,
            secret_box,
        )?;
        let state = AppState {
            pool,
            accounts,
            rates,
            metrics: crate::telemetry::metrics_handle(),
            expected_migrations: Arc::new(MIGRATOR.iter().map(|m| m.version).collect()),
            dev_mailbox: config.mode == Mode::Development,
            auth,
            calls,
            fraud,
            metering,
            checkout,
            payments,
        };
        Ok(Application {
            listener,
            state,
            private_postgres,
            database_url,
            mode: config.mode,
            mailer,
            mail_catcher,
        })
    }

    /// The development mail catcher `serve` started (development with `smtp_url` unset).
    pub fn mail_catcher(&self) -> Option<&MailCatcher> {
        self.mail_catcher.as_ref()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The database URL in use (it holds no password in development; never log it otherwise).
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    pub fn private_postgres(&self) -> Option<&PrivatePostgres> {
        self.private_postgres.as_ref()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    pub async fn run_until(self, stop: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Application {
            listener,
            state,
            private_postgres,
            mode,
            mailer,
            mail_catcher,
            ..
        } = self;
        let stop_notify = Arc::new(Notify::new());
        let notifier = tokio::spawn(crate::notify::run(
            state.pool.clone(),
            state.accounts.ledger().appended(),
            stop_notify.clone(),
        ));
        let (stop_runners, runners_stop) = tokio::sync::watch::channel(false);
        let runners = tokio::spawn(ringledger_projections::supervisor::run(
            state.pool.clone(),
            ringledger_projections::all(),
            ringledger_projections::RunnerConfig::default(),
            runners_stop,
        ));
        let background = crate::background::Background::start(
            state.pool.clone(),
            mailer,
            state.rates.clone(),
            state.calls.clone(),
            state.fraud.clone(),
            state.payments.clone(),
        )
        .await?;
        if mode == Mode::Development && state.rates.config().seed_sample_deck {
            if let Err(e) = crate::rates::seed_development_deck(&state.rates).await {
                tracing::warn!(error = %e, "development: could not seed the sample rate deck");
            }
        }
        let (stop_book, book_stop) = tokio::sync::watch::channel(false);
        let book = tokio::spawn(state.rates.book().clone().run(state.pool.clone(), book_stop));
        let pool = state.pool.clone();
        let app = http::router(state).into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(listener, app).with_graceful_shutdown(stop).await;
        stop_notify.notify_one();
        let _ = stop_runners.send(true);
        let _ = stop_book.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), book).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), notifier).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), runners).await;
        background.shutdown(Duration::from_secs(20)).await;
        if let Some(catcher) = mail_catcher {
            catcher.stop().await;
        }
        pool.close().await;
        if let Some(pg) = private_postgres {
            pg.stop().await;
        }
        served.context("serving HTTP")
    }
}

/// The mailer from `smtp_url`; in development without one, the mail catcher is started on a
/// free loopback port and the mailer points at it.
async fn mail_setup(
    config: &Config,
    pool: &PgPool,
) -> anyhow::Result<(crate::mail::Mailer, Option<MailCatcher>)> {
    if let Some(url) = &config.smtp_url {
        let mailer = crate::mail::Mailer::new(url, config.smtp_password.as_ref(), &config.mail_from)?;
        return Ok((mailer, None));
    }
    anyhow::ensure!(config.mode == Mode::Development, "production mode needs smtp_url");
    let bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let catcher = MailCatcher::start(pool.clone(), bind, CatcherLimits::default()).await?;
    let mailer = crate::mail::Mailer::new(&catcher.smtp_url(), None, &config.mail_from)?;
    Ok((mailer, Some(catcher)))
}

/// The Stripe client (when a key is configured) and the checkout service, with the default
/// top-up offers set on a fresh database.
async fn checkout_setup(
    config: &Config,
    store: Arc<PostgresStore>,
    appended: Arc<Notify>,
    public_url: &str,
) -> anyhow::Result<CheckoutService> {
    let stripe = match &config.stripe_secret_key {
        Some(key) => Some(StripeClient::new(&config.stripe_api_base, key.clone())?),
        None => {
            tracing::warn!("no stripe_secret_key: the buy page says payments are not set up");
            None
        }
    };
    let checkout = CheckoutService::new(
        store,
        config.ledger.clone(),
        appended,
        stripe,
        config.checkout.clone(),
        public_url.to_owned(),
    );
    checkout
        .seed_defaults()
        .await
        .context("setting the default top-up offers")?;
    Ok(checkout)
}

/// Connections the process holds for itself: a LISTEN per projection runner (11) and per job
/// pool (8), the rate book's LISTEN, and the claim, tick and notify loops — about 22 before a
/// request arrives. Below this, requests and background work would starve each other (a stop
/// then waits out the pool's acquire timeout).
const MIN_CONNECTIONS: u32 = 32;

async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    if max_connections < MIN_CONNECTIONS {
        tracing::warn!(
            configured = max_connections,
            using = MIN_CONNECTIONS,
            "database_max_connections raised to the minimum"
        );
    }
    PgPoolOptions::new()
        .max_connections(max_connections.max(MIN_CONNECTIONS))
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .context("connecting to Postgres")
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
