//! Helpers for metering tests: an app on port 0 with metering secrets, a priced deck, a funded
//! account, quotes, and a media node client that signs a fresh JWT per request.

use std::time::Duration;

use chrono::Utc;
use ringledger_api::calls::{token, CallsConfig};
use ringledger_api::config::{Config, Secret};
use ringledger_api::ledger::Envelope;
use ringledger_api::rates::{QuoteOutcome, QuoteRequest, RateService};
use ringledger_api::startup::Application;
use ringledger_domain::account::AccountCommand;
use ringledger_domain::call::NodeId;
use ringledger_domain::rates::quote::Quote;
use ringledger_domain::{AccountId, CallId, Currency, GrantId, Money};
use serde_json::Value;

use crate::TestDb;

pub const MEDIA_SECRET: &str = "media-secret-for-tests-0123456789abcdef";
pub const CALL_TOKEN_SECRET: &str = "call-token-secret-for-tests-0123456789ab";
pub const NODE: &str = "media-1";
/// A Vodafone UK mobile: prefix 4477, $0.057 a minute billed per second in the test deck.
pub const NUMBER: &str = "+447712345678";

const DECK: &[u8] = include_bytes!("../fixtures/rates/twilio-voice.csv");

pub fn usd(micros: i64) -> Money {
    Money::from_micros(micros, Currency::USD)
}

/// The app under test and what drives it.
pub struct Metering {
    pub base: String,
    /// The app's own call service (for the sweeper, which runs as a job in the app).
    pub calls: ringledger_api::calls::CallService,
    /// The app's fraud process manager (its scan also runs as a job in the app).
    pub fraud: ringledger_api::fraud::FraudService,
    /// The app's sign-in service (to create admins in page tests).
    pub auth: ringledger_api::auth::AuthService,
    /// The app's own account service (its cache knows every command sent through it).
    pub accounts: ringledger_api::ledger::AccountService<ringledger_api::store::PostgresStore>,
    pub rates: RateService,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Metering {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Imports and activates the test deck, then starts the app with `calls`.
pub async fn start_app(db: &TestDb, calls: CallsConfig) -> anyhow::Result<Metering> {
    let config = Config {
        calls,
        ..Config::default()
    };
    start_app_with(db, config).await
}

/// As `start_app`, with the rest of the configuration from `config` (address, database and
/// metering secrets are the test's).
pub async fn start_app_with(db: &TestDb, config: Config) -> anyhow::Result<Metering> {
    let rates = crate::rates::service(db.pool.clone());
    let status = crate::rates::import(&rates, DECK, &crate::rates::request("twilio-voice.csv", None)).await?;
    crate::rates::activate(&rates, &status, false).await?;
    let config = Config {
        http_addr: ([127, 0, 0, 1], 0).into(),
        database_url: Some(Secret::new(db.url.clone())),
        media_secret: Some(Secret::new(MEDIA_SECRET)),
        call_token_secret: Some(Secret::new(CALL_TOKEN_SECRET)),
        ..config
    };
    let app = Application::build(config).await?;
    let base = format!("http://{}", app.local_addr());
    let calls = app.state().calls.clone();
    let fraud = app.state().fraud.clone();
    let auth = app.state().auth.clone();
    let accounts = app.state().accounts.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    Ok(Metering {
        base,
        calls,
        fraud,
        auth,
        accounts,
        rates,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        stop: Some(stop),
    })
}

/// Opens an account holding `micros` of promotional credit.
pub async fn funded_account(db: &TestDb, micros: i64) -> anyhow::Result<AccountId> {
    let accounts = crate::accounts::service(db.pool.clone());
    let account = AccountId::new_v7();
    crate::accounts::open(&accounts, account).await?;
    let grant = AccountCommand::GrantCredit {
        grant_id: GrantId::new_v7(),
        amount: usd(micros),
        promotion: "test".into(),
    };
    accounts.execute(account, Envelope::new(grant)).await?;
    // Quotes read the available credit from the balances projection.
    let balances = ringledger_projections::by_name("balances")?;
    let version = ringledger_projections::versions::ensure_live(&db.pool, balances.as_ref()).await?;
    let runner = ringledger_projections::Runner::new(
        db.pool.clone(),
        balances,
        version,
        ringledger_projections::RunnerConfig::default(),
    );
    crate::eventually(Duration::from_secs(30), || async {
        runner.catch_up(None, |_| {}).await.ok()?;
        let seen: Option<i64> =
            sqlx::query_scalar("SELECT available_micros FROM balances WHERE account_id = $1")
                .bind(account.0)
                .fetch_optional(&db.pool)
                .await
                .ok()?;
        seen.filter(|a| *a == micros)
    })
    .await?;
    Ok(account)
}

impl Metering {
    pub async fn quote(&self, account: AccountId) -> anyhow::Result<Quote> {
        let request = QuoteRequest {
            account_id: account,
            number: NUMBER.into(),
            region: None,
        };
        match self.rates.quote(&request, Utc::now()).await? {
            QuoteOutcome::Quoted { quote, .. } => Ok(quote),
            other => anyhow::bail!("expected a quote, got {other:?}"),
        }
    }

    /// A call token for `account` on the test node, and the call it starts.
    pub fn call_token(&self, account: AccountId) -> anyhow::Result<(String, CallId)> {
        let node = NodeId::parse(NODE)?;
        let now = Utc::now().timestamp();
        Ok(token::mint_call(
            "user-1",
            account,
            &node,
            CALL_TOKEN_SECRET.as_bytes(),
            now,
            60,
        )?)
    }

    /// POSTs `body` to `/metering/v1/{path}` with a fresh media JWT.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let jwt = token::mint_media(NODE, MEDIA_SECRET.as_bytes(), Utc::now().timestamp(), 30)?;
        self.post_with(path, body, Some(&jwt)).await
    }

    pub async fn post_with(
        &self,
        path: &str,
        body: &Value,
        jwt: Option<&str>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self
            .http
            .post(format!("{}/metering/v1/{path}", self.base))
            .json(body);
        if let Some(jwt) = jwt {
            request = request.bearer_auth(jwt);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// Quotes and starts a call for `account`.
    pub async fn start_call(&self, account: AccountId) -> anyhow::Result<(CallId, u16, Value)> {
        let quote = self.quote(account).await?;
        let (call_token, call_id) = self.call_token(account)?;
        let body = serde_json::json!({
            "call_token": call_token, "quote_id": quote.id.to_string(), "destination": NUMBER,
            "leg_id": "leg-1", "sent_at": Utc::now().to_rfc3339(),
        });
        let (status, answer) = self.post("start", &body).await?;
        Ok((call_id, status, answer))
    }
}

/// Events on one call's stream.
pub async fn call_events(db: &TestDb, call: CallId) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'Call' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(call.to_string())
    .fetch_all(&db.pool)
    .await?)
}

/// What a fake media node received on `/v1/hangup`, and when.
#[derive(Debug, Clone)]
pub struct HangupSeen {
    pub body: Value,
    pub at: std::time::Instant,
}

/// A media node's control endpoint for tests: a small axum server answering `hangup` as the
/// protocol says (checks the api's JWT for this node, 202 for calls it holds, 404 otherwise)
/// and recording each request.
pub struct FakeNode {
    pub url: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<HangupSeen>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl FakeNode {
    /// Starts the node's control server on a free loopback port.
    pub async fn start() -> anyhow::Result<FakeNode> {
        use axum::http::{HeaderMap, StatusCode};
        let seen: std::sync::Arc<std::sync::Mutex<Vec<HangupSeen>>> = Default::default();
        let record = seen.clone();
        let handler = move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| {
            let record = record.clone();
            async move {
                let bearer = headers
                    .get(axum::http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or("");
                if token::check_api(bearer, MEDIA_SECRET.as_bytes(), NODE).is_err() {
                    let refused = serde_json::json!({"code": "unauthorised", "message": "bad api token"});
                    return (StatusCode::UNAUTHORIZED, axum::Json(refused));
                }
                let call_id = body["call_id"].clone();
                if let Ok(mut seen) = record.lock() {
                    seen.push(HangupSeen {
                        body,
                        at: std::time::Instant::now(),
                    });
                }
                (
                    StatusCode::ACCEPTED,
                    axum::Json(serde_json::json!({ "call_id": call_id })),
                )
            }
        };
        let app = axum::Router::new().route("/v1/hangup", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(FakeNode {
            url,
            seen,
            stop: Some(stop),
        })
    }

    /// Every hangup received so far for `call`.
    pub fn hangups_for(&self, call: CallId) -> Vec<HangupSeen> {
        let id = call.to_string();
        self.seen
            .lock()
            .map(|seen| {
                seen.iter()
                    .filter(|h| h.body["call_id"] == id.as_str())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits up to `deadline` for the first hangup of `call`.
    pub async fn hangup(&self, call: CallId, deadline: Duration) -> anyhow::Result<HangupSeen> {
        crate::eventually(deadline, || async { self.hangups_for(call).into_iter().next() }).await
    }
}

impl Metering {
    /// Registers the test node with `control_url` (its fake control server).
    pub async fn register(&self, control_url: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({
            "node_id": NODE, "control_url": control_url, "public_ws_url": "ws://127.0.0.1:1/ws",
            "load": {"active_calls": 0, "max_calls": 100, "cpu_per_mille": 10},
        });
        let (status, answer) = self.post("register", &body).await?;
        anyhow::ensure!(status == 200, "register: {status} {answer}");
        Ok(())
    }

    /// Starts a call and reports it answered; returns the call and its selling rate per
    /// minute in micro-units (from the `start` answer's `rate`).
    pub async fn answered_call(&self, account: AccountId) -> anyhow::Result<(CallId, i64)> {
        let (call, status, answer) = self.start_call(account).await?;
        anyhow::ensure!(status == 200, "start: {status} {answer}");
        let rate = rate_micros(&answer)?;
        let body = serde_json::json!({"call_id": call.to_string(), "seq": 1, "state": "answered"});
        let (status, answer) = self.post("progress", &body).await?;
        anyhow::ensure!(status == 200, "answered: {status} {answer}");
        Ok((call, rate))
    }
}

/// The call log's `(state, cause, charged_micros)` of `call`, once the read model has it ended.
pub async fn logged_end(db: &TestDb, call: CallId) -> anyhow::Result<(String, String, i64)> {
    crate::eventually(Duration::from_secs(30), || async {
        let row: Option<(String, Option<String>, i64)> =
            sqlx::query_as("SELECT state, cause, charged_micros FROM call_log WHERE call_id = $1")
                .bind(call.0)
                .fetch_optional(&db.pool)
                .await
                .ok()?;
        match row? {
            (state, Some(cause), charged) if state == "ended" || state == "failed" => {
                Some((state, cause, charged))
            }
            _ => None,
        }
    })
    .await
}

/// The `rate` of a `start` answer (`{"amount": "0.049400", ...}`) in micro-units per minute.
pub fn rate_micros(start_answer: &Value) -> anyhow::Result<i64> {
    let amount = start_answer["rate"]["amount"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no rate in {start_answer}"))?;
    Ok(Money::parse(amount, Currency::USD)?.micros())
}

/// What `seconds` of talk cost at `rate_micros` a minute billed per second: rounded up to the
/// whole micro-unit, as the rating function does.
pub fn per_second_cost(rate_micros: i64, seconds: i64) -> i64 {
    (rate_micros * seconds + 59) / 60
}
