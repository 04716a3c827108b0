//! The sign-up, confirmation, sign-in, second-factor, reset, unlock, password-change and
//! deletion flows. Handlers parse forms and render pages; every decision is here. Answers
//! that could tell whether an email is registered (sign-up, reset) are the same either way.

use std::net::IpAddr;
use std::sync::Arc;

use ringledger_domain::account::AccountCommand;
use ringledger_domain::{AccountId, Currency, GrantId, Money};
use sqlx::PgPool;

use super::emails::{self, Kind};
use super::passwords::{self, Password, PasswordError};
use super::rate_limit::{Action, RateLimiter};
use super::secret_box::SecretBox;
use super::tokens::{self, Purpose};
use super::users::{self, User};
use super::{totp, AuthConfig, Email, Role};
use crate::ledger::{AccountService, Envelope};
use crate::store::PostgresStore;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("too many attempts; wait a little and try again")]
    RateLimited,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Field errors of a form, shown next to each field.
#[derive(Debug, Default, Clone)]
pub struct FieldErrors {
    pub email: Option<String>,
    pub password: Option<String>,
}

impl FieldErrors {
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.password.is_none()
    }
}

/// What a correct password leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Signed in.
    Done,
    /// A TOTP or recovery code is still needed.
    SecondFactor,
    /// An admin without TOTP: enrol before anything else.
    EnrolTotp,
}

#[derive(Debug)]
pub enum SignIn {
    Accepted {
        user: AccountId,
        next: Next,
    },
    /// Wrong email or password, or locked: one message for all, so nothing is revealed.
    Refused,
    /// Right password, email not confirmed yet.
    Unconfirmed,
}

/// The sign-in and account service. Cheap to clone.
#[derive(Clone)]
pub struct AuthService {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    config: AuthConfig,
    limiter: RateLimiter,
    accounts: AccountService<PostgresStore>,
    public_url: String,
    signup_credit: Money,
    secret_box: SecretBox,
}

impl AuthService {
    pub fn new(
        pool: PgPool,
        config: AuthConfig,
        accounts: AccountService<PostgresStore>,
        public_url: String,
        secret_box: SecretBox,
    ) -> anyhow::Result<AuthService> {
        let signup_credit = Money::parse(&config.signup_credit, Currency::USD)
            .map_err(|e| anyhow::anyhow!("auth.signup_credit `{}`: {e}", config.signup_credit))?;
        anyhow::ensure!(
            signup_credit.micros() >= 0,
            "auth.signup_credit must not be negative"
        );
        anyhow::ensure!(
            public_url.starts_with("http://") || public_url.starts_with("https://"),
            "public_url `{public_url}` must start with http:// or https://"
        );
        Ok(AuthService {
            inner: Arc::new(Inner {
                pool,
                limiter: RateLimiter::new(config.rate_limit.clone()),
                config,
                accounts,
                public_url: public_url.trim_end_matches('/').to_owned(),
                signup_credit,
                secret_box,
            }),
        })
    }

    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }
    /// Cookies get `Secure` (and the `__Host-` name) when the public URL is https.
    pub fn secure(&self) -> bool {
        self.inner.public_url.starts_with("https://")
    }
    pub fn public_url(&self) -> &str {
        &self.inner.public_url
    }

    fn link(&self, path: &str, token: &tokens::Token) -> String {
        format!("{}{path}?token={}", self.inner.public_url, token.expose())
    }

    fn allow(&self, action: Action, key: &str) -> Result<(), AuthError> {
        if self.inner.limiter.allow(action, key) {
            Ok(())
        } else {
            tracing::warn!(?action, "rate limit reached");
            Err(AuthError::RateLimited)
        }
    }

    fn ip_key(ip: Option<IpAddr>) -> String {
        ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }

    /// Sign-up. The answer is "check your email" whether or not the email was free.
    pub async fn sign_up(
        &self,
        email: &str,
        password: Password,
        ip: Option<IpAddr>,
    ) -> Result<Result<(), FieldErrors>, AuthError> {
        let mut errors = FieldErrors::default();
        let email = Email::parse(email)
            .map_err(|e| errors.email = Some(e.to_string()))
            .ok();
        if let Err(e) = passwords::check_policy(&password) {
            errors.password = Some(e.to_string());
        }
        let Some(email) = email.filter(|_| errors.is_empty()) else {
            return Ok(Err(errors));
        };
        self.allow(Action::SignUpIp, &Self::ip_key(ip))?;
        self.allow(Action::SignUpAccount, email.as_str())?;
        let hash = passwords::hash(password).await?;
        let pool = &self.inner.pool;
        let mut tx = pool.begin().await?;
        match users::insert(&mut tx, &email, &hash, Role::Customer).await? {
            Some(id) => {
                let ttl = self.inner.config.confirm_token_hours.saturating_mul(3_600);
                let token = tokens::issue(&mut tx, id, Purpose::Confirm, ttl).await?;
                tx.commit().await?;
                emails::send(pool, Kind::Confirm, &email, &self.link("/confirm", &token)).await?;
                tracing::info!(user = %id, email = %email.masked(), "signed up");
            }
            None => {
                tx.rollback().await?;
                self.existing_signed_up_again(&email).await?;
            }
        }
        Ok(Ok(()))
    }

    async fn existing_signed_up_again(&self, email: &Email) -> Result<(), AuthError> {
        let pool = &self.inner.pool;
        let Some(user) = users::by_email(pool, email).await? else {
            return Ok(());
        };
        if user.confirmed_at.is_none() {
            let ttl = self.inner.config.confirm_token_hours.saturating_mul(3_600);
            let mut conn = pool.acquire().await?;
            let token = tokens::issue(&mut conn, user.id, Purpose::Confirm, ttl).await?;
            emails::send(pool, Kind::Confirm, email, &self.link("/confirm", &token)).await?;
        } else {
            let link = format!("{}/signin", self.inner.public_url);
            emails::send(pool, Kind::AlreadyRegistered, email, &link).await?;
        }
        Ok(())
    }

    /// Confirms an email by its token and opens the ledger account. `None`: bad token.
    pub async fn confirm(&self, token: &str) -> Result<Option<AccountId>, AuthError> {
        let pool = &self.inner.pool;
        let Some(id) = tokens::consume(pool, Purpose::Confirm, token).await? else {
            return Ok(None);
        };
        let mut tx = pool.begin().await?;
        users::confirm(&mut tx, id).await?;
        tx.commit().await?;
        self.open_account(id).await?;
        tracing::info!(user = %id, "email confirmed");
        Ok(Some(id))
    }

    /// Opens the Account in the ledger (and grants the sign-up credit), idempotently: a retry
    /// after a crash appends nothing twice.
    pub async fn open_account(&self, id: AccountId) -> Result<(), AuthError> {
        let open = AccountCommand::OpenAccount {
            account_id: id,
            currency: Currency::USD,
        };
        self.inner
            .accounts
            .execute(id, Envelope::with_key(open, "identity:open"))
            .await
            .map_err(|e| anyhow::anyhow!("opening the account: {e}"))?;
        let credit = self.inner.signup_credit;
        if credit.micros() > 0 {
            let grant = AccountCommand::GrantCredit {
                grant_id: signup_grant_id(id),
                amount: credit,
                promotion: "signup".to_owned(),
            };
            self.inner
                .accounts
                .execute(id, Envelope::with_key(grant, "identity:signup-credit"))
                .await
                .map_err(|e| anyhow::anyhow!("granting the sign-up credit: {e}"))?;
        }
        users::mark_account_opened(&self.inner.pool, id).await?;
        Ok(())
    }

    /// Checks a password sign-in: rate limits, lockout, confirmation, trackable.
    pub async fn sign_in(
        &self,
        email: &str,
        password: Password,
        ip: Option<IpAddr>,
    ) -> Result<SignIn, AuthError> {
        self.allow(Action::SignInIp, &Self::ip_key(ip))?;
        let Ok(email) = Email::parse(email) else {
            let _ = passwords::verify(None, password).await;
            return Ok(SignIn::Refused);
        };
        self.allow(Action::SignInAccount, email.as_str())?;
        let pool = &self.inner.pool;
        let user = users::by_email(pool, &email).await?;
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let ok = passwords::verify(hash, password).await;
        let Some(user) = user else {
            return Ok(SignIn::Refused);
        };
        if self.is_locked(&user) {
            users::record_event(pool, user.id, ip, "locked").await?;
            return Ok(SignIn::Refused);
        }
        if !ok {
            users::record_event(pool, user.id, ip, "bad_password").await?;
            if users::record_failure(pool, user.id, self.inner.config.max_failed_attempts).await? {
                self.send_unlock(&user, &email).await?;
                tracing::warn!(user = %user.id, "account locked after failed sign-ins");
            }
            return Ok(SignIn::Refused);
        }
        if user.confirmed_at.is_none() {
            users::record_event(pool, user.id, ip, "unconfirmed").await?;
            return Ok(SignIn::Unconfirmed);
        }
        if !user.account_opened {
            self.open_account(user.id).await?;
        }
        let next = if user.totp_enabled {
            Next::SecondFactor
        } else {
            users::record_sign_in(pool, user.id, ip).await?;
            if user.role == Role::Admin {
                Next::EnrolTotp
            } else {
                Next::Done
            }
        };
        Ok(SignIn::Accepted { user: user.id, next })
    }

    fn is_locked(&self, user: &User) -> bool {
        user.locked_at.is_some_and(|at| {
            let until = at + chrono::Duration::minutes(self.inner.config.unlock_after_minutes);
            chrono::Utc::now() < until
        })
    }

    async fn send_unlock(&self, user: &User, email: &Email) -> Result<(), AuthError> {
        let ttl = self.inner.config.unlock_token_hours.saturating_mul(3_600);
        let mut conn = self.inner.pool.acquire().await?;
        let token = tokens::issue(&mut conn, user.id, Purpose::Unlock, ttl).await?;
        drop(conn);
        emails::send(
            &self.inner.pool,
            Kind::Unlock,
            email,
            &self.link("/unlock", &token),
        )
        .await?;
        Ok(())
    }

    /// The second step: a TOTP code or a recovery code. True: signed in.
    pub async fn second_factor(
        &self,
        user: AccountId,
        code: &str,
        ip: Option<IpAddr>,
    ) -> Result<bool, AuthError> {
        self.allow(Action::SignInAccount, &user.to_string())?;
        let pool = &self.inner.pool;
        let Some(u) = users::by_id(pool, user).await? else {
            return Ok(false);
        };
        let ok = self.check_code(&u, code).await?;
        if ok {
            users::record_sign_in(pool, user, ip).await?;
        } else {
            users::record_event(pool, user, ip, "bad_code").await?;
            if users::record_failure(pool, user, self.inner.config.max_failed_attempts).await? {
                if let Some(email) = u.email.as_deref().and_then(|e| Email::parse(e).ok()) {
                    self.send_unlock(&u, &email).await?;
                }
            }
        }
        Ok(ok)
    }

    /// A TOTP code (used once) or a recovery code (used up).
    pub async fn check_code(&self, user: &User, code: &str) -> Result<bool, AuthError> {
        let pool = &self.inner.pool;
        if self.is_locked(user) {
            return Ok(false);
        }
        if let (true, Some(secret)) = (user.totp_enabled, self.totp_secret(user)) {
            if totp::verify_and_use(pool, user.id, &secret, code).await? {
                return Ok(true);
            }
        }
        Ok(totp::use_recovery_code(pool, user.id, code).await?)
    }

    /// The user's TOTP secret in the clear, if one is stored and opens.
    pub fn totp_secret(&self, user: &User) -> Option<Vec<u8>> {
        let sealed = user.totp_secret.as_deref()?;
        self.inner.secret_box.open(sealed, user.id.0.as_bytes())
    }

    /// A pending enrolment's secret: the stored one, or a fresh one (sealed and stored).
    pub async fn enrolment_secret(&self, user: &User) -> Result<Vec<u8>, AuthError> {
        if let Some(secret) = self.totp_secret(user).filter(|_| !user.totp_enabled) {
            return Ok(secret);
        }
        let secret = totp::new_secret();
        let sealed = self.inner.secret_box.seal(&secret, user.id.0.as_bytes())?;
        totp::store_secret(&self.inner.pool, user.id, &sealed).await?;
        Ok(secret)
    }

    /// "Forgot password": queues a reset link if the email has an account. Same answer always.
    pub async fn forgot(&self, email: &str, ip: Option<IpAddr>) -> Result<(), AuthError> {
        self.allow(Action::ResetIp, &Self::ip_key(ip))?;
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        self.allow(Action::ResetAccount, email.as_str())?;
        let pool = &self.inner.pool;
        if let Some(user) = users::by_email(pool, &email).await? {
            let ttl = self.inner.config.reset_token_minutes.saturating_mul(60);
            let mut conn = pool.acquire().await?;
            let token = tokens::issue(&mut conn, user.id, Purpose::Reset, ttl).await?;
            drop(conn);
            emails::send(pool, Kind::Reset, &email, &self.link("/password/reset", &token)).await?;
        }
        Ok(())
    }

    pub async fn reset_token_valid(&self, token: &str) -> Result<bool, AuthError> {
        Ok(tokens::is_valid(&self.inner.pool, Purpose::Reset, token).await?)
    }

    /// Sets a new password with a reset token; ends every session of the user.
    /// `Ok(Err(None))`: the token is invalid; `Ok(Err(Some(e)))`: the password is refused.
    pub async fn reset(
        &self,
        token: &str,
        password: Password,
    ) -> Result<Result<(), Option<PasswordError>>, AuthError> {
        if let Err(e) = passwords::check_policy(&password) {
            return Ok(Err(Some(e)));
        }
        let pool = &self.inner.pool;
        let Some(id) = tokens::consume(pool, Purpose::Reset, token).await? else {
            return Ok(Err(None));
        };
        let hash = passwords::hash(password).await?;
        users::set_password(pool, id, &hash).await?;
        super::sessions::destroy_all_for(pool, id, None).await?;
        tracing::info!(user = %id, "password reset");
        Ok(Ok(()))
    }

    pub async fn unlock(&self, token: &str) -> Result<bool, AuthError> {
        let pool = &self.inner.pool;
        match tokens::consume(pool, Purpose::Unlock, token).await? {
            Some(id) => {
                users::unlock(pool, id).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Verifies the user's current password (for changes and deletion).
    pub async fn check_password(&self, user: &User, password: Password) -> bool {
        passwords::verify(user.password_hash.clone(), password).await
    }

    /// Changes the password after checking the current one. Field errors: `password` for the
    /// new one, `email` unused.
    pub async fn change_password(
        &self,
        user: &User,
        current: Password,
        new: Password,
    ) -> Result<Result<(), (Option<String>, Option<String>)>, AuthError> {
        if !self.check_password(user, current).await {
            return Ok(Err((Some("that is not your current password".to_owned()), None)));
        }
        if let Err(e) = passwords::check_policy(&new) {
            return Ok(Err((None, Some(e.to_string()))));
        }
        let hash = passwords::hash(new).await?;
        users::set_password(&self.inner.pool, user.id, &hash).await?;
        tracing::info!(user = %user.id, "password changed");
        Ok(Ok(()))
    }

    /// Erases the person's data and key; the ledger keeps the pseudonymous account.
    pub async fn delete_user(&self, user: &User) -> Result<(), AuthError> {
        users::erase(&self.inner.pool, user.id).await?;
        tracing::info!(user = %user.id, "user erased (personal data and account key deleted)");
        Ok(())
    }

    /// Creates a confirmed admin with an opened ledger account (the `admin create` command).
    pub async fn create_admin(&self, email: &Email, password: Password) -> anyhow::Result<AccountId> {
        passwords::check_policy(&password).map_err(|e| anyhow::anyhow!("password refused: {e}"))?;
        let hash = passwords::hash(password).await?;
        let pool = &self.inner.pool;
        let mut tx = pool.begin().await?;
        let id = users::insert(&mut tx, email, &hash, Role::Admin)
            .await?
            .ok_or_else(|| anyhow::anyhow!("a user with that email already exists"))?;
        users::confirm(&mut tx, id).await?;
        tx.commit().await?;
        self.open_account(id).await?;
        Ok(id)
    }
}

/// The sign-up grant's id, derived from the account so a retry names the same grant.
pub fn signup_grant_id(account: AccountId) -> GrantId {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("signup-credit:{account}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    GrantId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}
