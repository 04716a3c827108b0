//! `ringledger admin create EMAIL --password-stdin`: creates a confirmed admin with an opened
//! ledger account. Scriptable (the password is the first line of standard input); when standard
//! input is a terminal it prompts twice without echo instead. The admin enrols TOTP at first
//! sign-in. The password is never printed or logged.

use std::io::{BufRead, IsTerminal};
use std::sync::Arc;

use anyhow::Context;

use super::passwords::Password;
use super::{AuthService, Email};
use crate::config::{Config, Mode};
use crate::ledger::AccountService;
use crate::startup::MIGRATOR;
use crate::store::PostgresStore;

/// Reads the new admin's password from the terminal (no echo) or from standard input.
pub fn read_password(password_stdin: bool) -> anyhow::Result<Password> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password for the new admin: ")?;
        let second = rpassword::prompt_password("Again: ")?;
        anyhow::ensure!(first == second, "the two passwords differ; nothing was created");
        return Ok(Password::new(first));
    }
    anyhow::ensure!(
        password_stdin,
        "standard input is not a terminal: pass --password-stdin and pipe the password in"
    );
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    Ok(Password::new(password))
}

/// Connects (starting the development Postgres if needed), migrates and creates the admin.
pub async fn create(config: &Config, email: &str, password: Password) -> anyhow::Result<()> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("{email:?}: {e}"))?;
    let (url, private) = match (&config.database_url, config.mode) {
        (Some(url), _) => (url.expose().to_owned(), None),
        (None, Mode::Development) => {
            let pg = crate::devdb::ensure_private_postgres(&config.var_dir).await?;
            (pg.url.clone(), Some(pg))
        }
        (None, Mode::Production) => anyhow::bail!("DATABASE_URL is not set"),
    };
    let result = async {
        let pool = sqlx::PgPool::connect(&url)
            .await
            .context("connecting to Postgres")?;
        MIGRATOR.run(&pool).await?;
        let accounts = AccountService::new(Arc::new(PostgresStore::new(pool.clone())), config.ledger.clone());
        // No email is sent from here; the URL only has to be well-formed.
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", config.http_addr.port()));
        let secret_box = super::secret_box::SecretBox::from_config(config)?;
        let auth = AuthService::new(
            pool.clone(),
            config.auth.clone(),
            accounts,
            public_url,
            secret_box,
        )?;
        let id = auth.create_admin(&email, password).await?;
        pool.close().await;
        println!(
            "admin created: {} (account {id}); TOTP enrolment is asked at first sign-in",
            email.masked()
        );
        anyhow::Ok(())
    }
    .await;
    if let Some(pg) = private {
        pg.stop().await;
    }
    result
}
