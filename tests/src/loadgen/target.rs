//! The api under load and what the product would use beside it: the api's base URL, its
//! database (for accounts, quotes and the end checks), the rate service that quotes (the same
//! code behind `GET /api/rates/quote`) and the two metering secrets. Either an api started
//! in-process on a database given to it (`Application::build`, port 0), or one already
//! running (`--api URL --database-url …`). Never logs a secret or a full number.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use ringledger_api::calls::{token, CallsConfig};
use ringledger_api::config::{Config, Secret};
use ringledger_api::ledger::{AccountService, Envelope, LedgerConfig};
use ringledger_api::rates::{QuoteOutcome, QuoteRequest, RateService, RatesConfig};
use ringledger_api::startup::Application;
use ringledger_api::store::PostgresStore;
use ringledger_domain::account::AccountCommand;
use ringledger_domain::call::NodeId;
use ringledger_domain::rates::quote::Quote;
use ringledger_domain::{AccountId, CallId, Currency, GrantId, Money};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// The deck the in-process api is started with (the tests' Twilio sample).
const DECK: &[u8] = include_bytes!("../../fixtures/rates/twilio-voice.csv");

/// Numbers the simulated browsers dial, all covered by the sample deck at several prices.
pub const NUMBERS: &[&str] = &[
    "+447712345678",
    "+442079460958",
    "+12025550123",
    "+390612345678",
    "+4915112345678",
    "+33142685300",
];

/// The shared secrets of metering (both ≥ 32 bytes).
#[derive(Clone)]
pub struct Secrets {
    pub media: Arc<str>,
    pub call_token: Arc<str>,
}

impl Secrets {
    /// Fresh random secrets for an api started in-process.
    pub fn random() -> Secrets {
        let hex = |_: u8| {
            format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            )
        };
        Secrets {
            media: hex(0).into(),
            call_token: hex(1).into(),
        }
    }
}

/// How to start an in-process api.
#[derive(Debug, Clone)]
pub struct InProcess {
    /// An empty (or migrated) database of the caller's.
    pub database_url: String,
    /// The api's pool size (`database_max_connections`).
    pub pool_size: u32,
    pub calls: CallsConfig,
}

pub struct Target {
    pub base: String,
    pub database_url: String,
    pub pool: PgPool,
    pub rates: RateService,
    pub accounts: AccountService<PostgresStore>,
    pub secrets: Secrets,
    /// The in-process api's own call service (for its configuration); `None` when remote.
    pub calls: Option<ringledger_api::calls::CallService>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Target {
    /// Imports and activates the sample deck, then starts the api on port 0.
    pub async fn in_process(how: InProcess) -> anyhow::Result<Target> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect(&how.database_url)
            .await
            .context("connecting to the load generator's database")?;
        ringledger_api::startup::MIGRATOR.run(&pool).await?;
        let deck_rates = RateService::standalone(pool.clone(), RatesConfig::default());
        import_sample_deck(&deck_rates).await?;
        let secrets = Secrets::random();
        let config = Config {
            http_addr: ([127, 0, 0, 1], 0).into(),
            database_url: Some(Secret::new(how.database_url.clone())),
            database_max_connections: how.pool_size,
            media_secret: Some(Secret::new(secrets.media.to_string())),
            call_token_secret: Some(Secret::new(secrets.call_token.to_string())),
            calls: how.calls,
            ..Config::default()
        };
        let app = Application::build(config).await?;
        let base = format!("http://{}", app.local_addr());
        let state = app.state();
        let (rates, accounts, calls) = (state.rates.clone(), state.accounts.clone(), state.calls.clone());
        // The app's rate book loads in the background once it runs; quotes need it now.
        tokio::time::timeout(Duration::from_secs(30), rates.book().refresh(&pool))
            .await
            .context("loading the rate book timed out")??;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        Ok(Target {
            base,
            database_url: how.database_url,
            pool,
            rates,
            accounts,
            secrets,
            calls: Some(calls),
            stop: Some(stop),
            served: Some(served),
        })
    }

    /// An api already running at `base` on `database_url`, which has an active deck.
    pub async fn remote(base: &str, database_url: &str, secrets: Secrets) -> anyhow::Result<Target> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect(database_url)
            .await
            .context("connecting to --database-url")?;
        let rates = RateService::standalone(pool.clone(), RatesConfig::default());
        tokio::time::timeout(Duration::from_secs(30), rates.book().refresh(&pool))
            .await
            .context("loading the rate book timed out")??;
        let accounts = AccountService::new(
            Arc::new(PostgresStore::new(pool.clone())),
            LedgerConfig::default(),
        );
        Ok(Target {
            base: base.trim_end_matches('/').to_owned(),
            database_url: database_url.to_owned(),
            pool,
            rates,
            accounts,
            secrets,
            calls: None,
            stop: None,
            served: None,
        })
    }

    /// Stops the in-process api (a no-op for a remote one).
    pub async fn shutdown(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            tokio::time::timeout(Duration::from_secs(60), served)
                .await
                .context("the in-process api did not stop within 60 s")???;
        }
        Ok(())
    }

    /// Opens an account and grants it `micros` of promotional credit, as sign-up credit is.
    pub async fn open_account(&self, micros: i64) -> anyhow::Result<AccountId> {
        let account = AccountId::new_v7();
        let open = AccountCommand::OpenAccount {
            account_id: account,
            currency: Currency::USD,
        };
        self.accounts.execute(account, Envelope::new(open)).await?;
        let grant = AccountCommand::GrantCredit {
            grant_id: GrantId::new_v7(),
            amount: Money::from_micros(micros, Currency::USD),
            promotion: "loadgen".into(),
        };
        self.accounts.execute(account, Envelope::new(grant)).await?;
        Ok(account)
    }

    /// A quote for `account` to call `number`, as the dialer page gets one.
    pub async fn quote(&self, account: AccountId, number: &str) -> anyhow::Result<Quote> {
        let request = QuoteRequest {
            account_id: account,
            number: number.to_owned(),
            region: None,
        };
        match self.rates.quote(&request, Utc::now()).await? {
            QuoteOutcome::Quoted { quote, .. } => Ok(quote),
            QuoteOutcome::NoRate { .. } => {
                anyhow::bail!("the active rate deck has no rate for a loadgen number; activate a deck covering GB, US, IT, DE and FR")
            }
            QuoteOutcome::Blocked { reason } => anyhow::bail!("a loadgen number is blocked: {reason}"),
        }
    }

    /// A call token for `account` on `node`, signed as `/api/webrtc/token` signs it.
    pub fn call_token(&self, account: AccountId, node: &NodeId) -> anyhow::Result<(String, CallId)> {
        Ok(token::mint_call(
            &format!("loadgen-{}", account.0.simple()),
            account,
            node,
            self.secrets.call_token.as_bytes(),
            Utc::now().timestamp(),
            60,
        )?)
    }
}

async fn import_sample_deck(rates: &RateService) -> anyhow::Result<()> {
    let request = crate::rates::request("twilio-voice.csv", None);
    let status = crate::rates::import(rates, DECK, &request).await?;
    crate::rates::activate(rates, &status, false).await
}
