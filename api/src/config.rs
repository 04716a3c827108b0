//! Configuration: defaults, then a TOML file, then `RINGLEDGER_*` environment variables
//! (`DATABASE_URL` is read too). Secrets are taken only from the environment: a file that names
//! one is refused. Every key is listed in docs/configuration.md.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::auth::AuthConfig;
use crate::calls::CallsConfig;
use crate::checkout::CheckoutConfig;
use crate::fraud::FraudConfig;
use crate::ledger::LedgerConfig;
use crate::rates::RatesConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Local work: may start a private Postgres, uses the Stripe test double and simulated trunk.
    Development,
    /// Refuses to start without a database and real Stripe and TURN secrets.
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the development default).
    Pretty,
    /// One JSON object per line (the production default).
    Json,
}

/// A secret string: never printed, never serialised in the clear.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub mode: Mode,
    /// Where the HTTP server listens; port 0 picks a free port.
    pub http_addr: SocketAddr,
    /// The Postgres URL (secret: it may hold a password). Unset in development: a private
    /// Postgres is started under `var_dir`.
    pub database_url: Option<Secret>,
    pub database_max_connections: u32,
    /// Working files of development mode (the private Postgres, logs).
    pub var_dir: PathBuf,
    pub log_format: Option<LogFormat>,
    pub ledger: LedgerConfig,
    pub rates: RatesConfig,
    /// Stripe's API (`https://api.stripe.com`); development points it at `ringledger stripe-sim`.
    pub stripe_api_base: String,
    /// The Stripe secret key (`sk_…`, secret). Unset: the buy page says payments are off.
    pub stripe_secret_key: Option<Secret>,
    pub stripe_webhook_secret: Option<Secret>,
    /// Top-up offers' defaults and the product name on the payment page.
    pub checkout: CheckoutConfig,
    /// The webhook secret being rotated out: while set, a signature by either is accepted.
    pub stripe_webhook_secret_previous: Option<Secret>,
    /// Stripe webhooks: inbox retention, body limit, workers (`payments.*`).
    pub payments: crate::payments::PaymentsConfig,
    pub turn_secret: Option<Secret>,
    /// Where mail is sent, e.g. `smtp://127.0.0.1:2525` or `smtps://user@mail.example.com`
    /// (never with a password: that is `smtp_password`). Unset in development: `serve` starts
    /// the development mail catcher and sends there.
    pub smtp_url: Option<String>,
    /// The SMTP password for the user named in `smtp_url` (secret).
    pub smtp_password: Option<Secret>,
    /// The `From` of every message we send.
    pub mail_from: String,
    /// The address people reach us at, e.g. `https://ringledger.example`: email links are
    /// built from it, and `https` turns on Secure cookies and HSTS. Unset: the bound address
    /// over plain http (development).
    pub public_url: Option<String>,
    /// Accounts and sign-in: lockout, token and session lifetimes, sign-up credit, rate limits.
    pub auth: AuthConfig,
    /// Encrypts TOTP secrets at rest: 32 bytes in base64 (secret; required in production).
    pub totp_encryption_key: Option<Secret>,
    /// HS256 secret shared with media nodes for the metering protocol (≥ 32 bytes).
    pub media_secret: Option<Secret>,
    /// HS256 secret of call tokens; never shared with media nodes (≥ 32 bytes).
    pub call_token_secret: Option<Secret>,
    /// Limits and grant policy of calls (`calls.limits.*`, `calls.policy.*`).
    pub calls: CallsConfig,
    /// Fraud detection: the process manager and the rules' thresholds (`fraud.rules.*`).
    pub fraud: FraudConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Development,
            http_addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            database_url: None,
            database_max_connections: 32,
            var_dir: PathBuf::from("var"),
            log_format: None,
            ledger: LedgerConfig::default(),
            rates: RatesConfig::default(),
            stripe_api_base: crate::stripe::client::DEFAULT_BASE_URL.to_owned(),
            stripe_secret_key: None,
            stripe_webhook_secret: None,
            checkout: CheckoutConfig::default(),
            stripe_webhook_secret_previous: None,
            payments: crate::payments::PaymentsConfig::default(),
            turn_secret: None,
            smtp_url: None,
            smtp_password: None,
            mail_from: "RingLedger <no-reply@localhost>".to_owned(),
            public_url: None,
            auth: AuthConfig::default(),
            totp_encryption_key: None,
            media_secret: None,
            call_token_secret: None,
            calls: CallsConfig::default(),
            fraud: FraudConfig::default(),
        }
    }
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "mode",
    "http_addr",
    "database_url",
    "database_max_connections",
    "var_dir",
    "log_format",
    "ledger",
    "rates",
    "stripe_api_base",
    "stripe_secret_key",
    "stripe_webhook_secret",
    "checkout",
    "stripe_webhook_secret_previous",
    "payments",
    "turn_secret",
    "smtp_url",
    "smtp_password",
    "mail_from",
    "public_url",
    "auth",
    "totp_encryption_key",
    "media_secret",
    "call_token_secret",
    "calls",
    "fraud",
];

const SECRET_KEYS: &[&str] = &[
    "database_url",
    "stripe_secret_key",
    "stripe_webhook_secret",
    "stripe_webhook_secret_previous",
    "turn_secret",
    "smtp_password",
    "totp_encryption_key",
    "media_secret",
    "call_token_secret",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} sets `{key}`: secrets are read only from the environment (RINGLEDGER_{upper})", upper = key.to_uppercase())]
    SecretInFile { path: String, key: &'static str },
    #[error("configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    #[error("smtp_url `{0}` holds a password; put the password in RINGLEDGER_SMTP_PASSWORD and keep only the user name in the URL")]
    PasswordInSmtpUrl(String),
    #[error("production mode needs {0}; set them in the environment")]
    MissingForProduction(String),
    #[error("{0} must be at least 32 bytes; generate one with `openssl rand -hex 32`")]
    SecretTooShort(&'static str),
    #[error("production mode needs real Stripe settings: {0}")]
    StripeForProduction(&'static str),
    #[error("checkout.currency `{0}` is not a currency code; use three capital letters such as USD")]
    CheckoutCurrency(String),
    #[error("configuration `payments`: {0}")]
    Payments(String),
    #[error("configuration `calls`: {0}")]
    Calls(ringledger_domain::call::LimitsError),
    #[error("configuration `fraud`: {0}")]
    Fraud(ringledger_domain::fraud::ThresholdsError),
}

impl Config {
    /// The Stripe webhook secrets in force: the current one, then the previous during a rotation.
    pub fn stripe_webhook_secrets(&self) -> Vec<Secret> {
        [&self.stripe_webhook_secret, &self.stripe_webhook_secret_previous]
            .into_iter()
            .flatten()
            .filter(|s| !s.expose().trim().is_empty())
            .cloned()
            .collect()
    }

    /// Loads defaults, then `file` (or `ringledger.toml` if present), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let default_file = Path::new("ringledger.toml");
        let file = file.or_else(|| default_file.exists().then_some(default_file));
        if let Some(path) = file {
            let from_file = Figment::from(Toml::file_exact(path));
            for key in SECRET_KEYS {
                if from_file.find_value(key).is_ok() {
                    return Err(ConfigError::SecretInFile {
                        path: path.display().to_string(),
                        key,
                    });
                }
            }
            figment = figment.merge(from_file);
        }
        let database_url = Env::raw().only(&["DATABASE_URL"]);
        // Other tools share the prefix (RINGLEDGER_TEST_DATABASE_URL, RINGLEDGER_CONFIG): read
        // only our own keys from the environment; a file with an unknown key is still refused.
        let prefixed = Env::prefixed("RINGLEDGER_").split("__").filter(|key| {
            let head = key.as_str().split('.').next().unwrap_or_default();
            TOP_LEVEL_KEYS.iter().any(|k| k.eq_ignore_ascii_case(head))
        });
        let config: Config = figment
            .merge(database_url)
            .merge(prefixed)
            .extract()
            .map_err(|e| ConfigError::Invalid(Box::new(e)))?;
        config.validated()
    }

    fn validated(mut self) -> Result<Config, ConfigError> {
        if self
            .database_url
            .as_ref()
            .is_some_and(|u| u.expose().trim().is_empty())
        {
            self.database_url = None;
        }
        if self.smtp_url.as_deref().is_some_and(|u| u.trim().is_empty()) {
            self.smtp_url = None;
        }
        if let Some(url) = &self.smtp_url {
            if crate::mail::smtp_url_has_password(url) {
                return Err(ConfigError::PasswordInSmtpUrl(crate::mail::redact_smtp_url(url)));
            }
        }
        if self.mode == Mode::Production {
            let missing: Vec<&str> = [
                ("DATABASE_URL", self.database_url.is_none()),
                ("RINGLEDGER_STRIPE_SECRET_KEY", self.stripe_secret_key.is_none()),
                (
                    "RINGLEDGER_STRIPE_WEBHOOK_SECRET",
                    self.stripe_webhook_secret.is_none(),
                ),
                ("RINGLEDGER_TURN_SECRET", self.turn_secret.is_none()),
                ("RINGLEDGER_SMTP_URL", self.smtp_url.is_none()),
                (
                    "RINGLEDGER_TOTP_ENCRYPTION_KEY",
                    self.totp_encryption_key.is_none(),
                ),
                ("RINGLEDGER_MEDIA_SECRET", self.media_secret.is_none()),
                ("RINGLEDGER_CALL_TOKEN_SECRET", self.call_token_secret.is_none()),
            ]
            .into_iter()
            .filter_map(|(name, absent)| absent.then_some(name))
            .collect();
            if !missing.is_empty() {
                return Err(ConfigError::MissingForProduction(missing.join(", ")));
            }
        }
        self.payments.validate().map_err(ConfigError::Payments)?;
        for (name, secret) in [
            ("RINGLEDGER_MEDIA_SECRET", &self.media_secret),
            ("RINGLEDGER_CALL_TOKEN_SECRET", &self.call_token_secret),
        ] {
            if secret.as_ref().is_some_and(|s| s.expose().len() < 32) {
                return Err(ConfigError::SecretTooShort(name));
            }
        }
        if self.mode == Mode::Production {
            self.check_stripe_for_production()?;
        }
        if ringledger_domain::Currency::parse(&self.checkout.currency).is_err() {
            return Err(ConfigError::CheckoutCurrency(self.checkout.currency.clone()));
        }
        self.calls.validate().map_err(ConfigError::Calls)?;
        self.fraud.validate().map_err(ConfigError::Fraud)?;
        Ok(self)
    }

    /// Production talks to Stripe itself: no test double, no made-up keys.
    fn check_stripe_for_production(&self) -> Result<(), ConfigError> {
        if !self.stripe_api_base.starts_with("https://") {
            return Err(ConfigError::StripeForProduction(
                "stripe_api_base must be https (the Stripe test double is for development only)",
            ));
        }
        let key_ok = self.stripe_secret_key.as_ref().is_some_and(|k| {
            ["sk_live_", "sk_test_", "rk_live_", "rk_test_"]
                .iter()
                .any(|p| k.expose().starts_with(p) && k.expose().len() > p.len() + 8)
        });
        if !key_ok {
            return Err(ConfigError::StripeForProduction(
                "RINGLEDGER_STRIPE_SECRET_KEY must be a Stripe secret or restricted key (sk_… or rk_…)",
            ));
        }
        let whsec_ok = self
            .stripe_webhook_secret
            .as_ref()
            .is_some_and(|w| w.expose().starts_with("whsec_") && w.expose().len() > 14);
        if !whsec_ok {
            return Err(ConfigError::StripeForProduction(
                "RINGLEDGER_STRIPE_WEBHOOK_SECRET must be the endpoint's signing secret (whsec_…)",
            ));
        }
        Ok(())
    }

    pub fn log_format(&self) -> LogFormat {
        self.log_format.unwrap_or(match self.mode {
            Mode::Development => LogFormat::Pretty,
            Mode::Production => LogFormat::Json,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_defaults_file_and_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "rl.toml",
                "http_addr = \"127.0.0.1:4000\"\n[ledger]\nmax_batch = 7\nsnapshot_every = 50\n",
            )?;
            jail.set_env("RINGLEDGER_LEDGER__SNAPSHOT_EVERY", "25");
            jail.set_env("DATABASE_URL", "postgres://db/x");
            jail.set_env(
                "RINGLEDGER_TEST_DATABASE_URL",
                "postgres://other/tools/share/the/prefix",
            );
            let c = Config::load(Some(Path::new("rl.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.http_addr.port(), 4000);
            assert_eq!(c.ledger.max_batch, 7);
            assert_eq!(c.ledger.snapshot_every, 25);
            assert_eq!(
                c.database_url.as_ref().map(Secret::expose),
                Some("postgres://db/x")
            );
            assert_eq!(c.mode, Mode::Development);
            Ok(())
        });
    }

    #[test]
    fn secrets_in_a_file_are_refused_and_never_printed() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("rl.toml", "stripe_secret_key = \"sk_live_x\"\n")?;
            let err = Config::load(Some(Path::new("rl.toml"))).unwrap_err();
            assert!(err.to_string().contains("only from the environment"), "{err}");
            jail.set_env("RINGLEDGER_TURN_SECRET", "hunter2");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert!(!format!("{c:?}").contains("hunter2"));
            Ok(())
        });
    }

    #[test]
    fn production_needs_database_and_secrets() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("RINGLEDGER_MODE", "production");
            jail.set_env("DATABASE_URL", "postgres://db/x");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(
                err.contains("RINGLEDGER_STRIPE_SECRET_KEY") && !err.contains("DATABASE_URL"),
                "{err}"
            );
            jail.set_env("RINGLEDGER_STRIPE_SECRET_KEY", "sk_live_0123456789abcdef");
            jail.set_env("RINGLEDGER_STRIPE_WEBHOOK_SECRET", "whsec_0123456789abcdef");
            jail.set_env("RINGLEDGER_TURN_SECRET", "t");
            jail.set_env("RINGLEDGER_SMTP_URL", "smtps://mailer@mail.example.com");
            assert!(Config::load(None)
                .unwrap_err()
                .to_string()
                .contains("RINGLEDGER_TOTP_ENCRYPTION_KEY"));
            jail.set_env(
                "RINGLEDGER_TOTP_ENCRYPTION_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            );
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("RINGLEDGER_MEDIA_SECRET"), "{err}");
            jail.set_env("RINGLEDGER_MEDIA_SECRET", "short");
            jail.set_env("RINGLEDGER_CALL_TOKEN_SECRET", "c".repeat(32));
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("at least 32 bytes"), "{err}");
            jail.set_env("RINGLEDGER_MEDIA_SECRET", "m".repeat(32));
            assert!(Config::load(None).is_ok());
            Ok(())
        });
    }

    #[test]
    fn production_refuses_the_stripe_test_double_and_made_up_keys() {
        figment::Jail::expect_with(|jail| {
            for (k, v) in [
                ("RINGLEDGER_MODE", "production"),
                ("DATABASE_URL", "postgres://db/x"),
                ("RINGLEDGER_STRIPE_SECRET_KEY", "sk_live_0123456789abcdef"),
                ("RINGLEDGER_STRIPE_WEBHOOK_SECRET", "whsec_0123456789abcdef"),
                ("RINGLEDGER_TURN_SECRET", "t"),
                ("RINGLEDGER_SMTP_URL", "smtps://mailer@mail.example.com"),
                (
                    "RINGLEDGER_TOTP_ENCRYPTION_KEY",
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                ),
            ] {
                jail.set_env(k, v);
            }
            jail.set_env("RINGLEDGER_MEDIA_SECRET", "m".repeat(32));
            jail.set_env("RINGLEDGER_CALL_TOKEN_SECRET", "c".repeat(32));
            assert!(Config::load(None).is_ok());
            jail.set_env("RINGLEDGER_STRIPE_API_BASE", "http://127.0.0.1:12111");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("stripe_api_base must be https"), "{err}");
            jail.set_env("RINGLEDGER_STRIPE_API_BASE", "https://api.stripe.com");
            jail.set_env("RINGLEDGER_STRIPE_SECRET_KEY", "sim-key");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("sk_") && !err.contains("sim-key"), "{err}");
            jail.set_env("RINGLEDGER_STRIPE_SECRET_KEY", "sk_live_0123456789abcdef");
            jail.set_env("RINGLEDGER_STRIPE_WEBHOOK_SECRET", "secret");
            assert!(Config::load(None).unwrap_err().to_string().contains("whsec_"));
            jail.set_env("RINGLEDGER_MODE", "development");
            jail.set_env("RINGLEDGER_CHECKOUT__CURRENCY", "usd");
            assert!(Config::load(None)
                .unwrap_err()
                .to_string()
                .contains("checkout.currency"));
            Ok(())
        });
    }

    #[test]
    fn an_smtp_password_comes_only_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "RINGLEDGER_SMTP_URL",
                "smtp://mailer:hunter2@mail.example.com:587",
            );
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("RINGLEDGER_SMTP_PASSWORD"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
            jail.set_env("RINGLEDGER_SMTP_URL", "smtp://mailer@mail.example.com:587");
            jail.set_env("RINGLEDGER_SMTP_PASSWORD", "hunter2");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.smtp_password.as_ref().map(Secret::expose), Some("hunter2"));
            jail.create_file("rl.toml", "smtp_password = \"x\"\n")?;
            assert!(Config::load(Some(Path::new("rl.toml"))).is_err());
            Ok(())
        });
    }

    #[test]
    fn fraud_thresholds_layer_and_are_checked() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "rl.toml",
                "[fraud.rules]\nburst_min_calls = 7\nfreeze_score = 800\n",
            )?;
            jail.set_env("RINGLEDGER_FRAUD__RULES__FREEZE_SCORE", "900");
            let c = Config::load(Some(Path::new("rl.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.fraud.rules.burst_min_calls, 7);
            assert_eq!(c.fraud.rules.freeze_score, 900);
            assert_eq!(c.fraud.rules.high_risk_score, 600, "the rest keep their defaults");
            jail.set_env("RINGLEDGER_FRAUD__RULES__BURST_MIN_CALLS", "1");
            let err = Config::load(Some(Path::new("rl.toml"))).map(|_| ()).unwrap_err();
            assert!(err.to_string().contains("burst_min_calls"), "{err}");
            Ok(())
        });
    }
}
