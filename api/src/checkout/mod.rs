//! Buying credit: the top-up offers (their stream and command service) and starting a Stripe
//! Checkout Session for one choice. The session carries the purchase's terms as metadata — the
//! contract with the webhook side (`payments`), which credits what Stripe says was paid, never
//! what the tiers say. This module never credits anything.

mod config;

use std::collections::BTreeMap;
use std::sync::Arc;

use ringledger_domain::topup::{
    minor, Choice, Offers, OffersCommand, OffersError, PurchaseTerms, TopUpOffers, OFFERS_STREAM,
};
use ringledger_domain::{AccountId, ActorId, Currency};
use sha2::{Digest, Sha256};

pub use config::CheckoutConfig;

use crate::ledger::{CommandError, Envelope, Ledger, LedgerConfig};
use crate::store::{PostgresStore, StoreError};
use crate::stripe::client::{CheckoutSession, NewCheckoutSession, StripeClient, StripeError};

/// Metadata keys on the Checkout Session and its payment intent (`payment_intent_data`): the
/// contract with the webhook side. Values are strings, as Stripe stores them.
pub mod metadata_keys {
    /// The account to credit: a UUID.
    pub const ACCOUNT_ID: &str = "account_id";
    /// A tier id, or `custom`.
    pub const TIER: &str = "tier";
    /// The offer set's version, an integer.
    pub const TERMS_VERSION: &str = "terms_version";
    /// The bonus in basis points of the paid amount, an integer ("0" when none).
    pub const BONUS_BPS: &str = "bonus_bps";
}

/// The system itself, as the actor of the default offers.
pub const SYSTEM_ACTOR: ActorId = ActorId(uuid::Uuid::nil());
const NONCE_MIN_CHARS: usize = 16;
const NONCE_MAX_CHARS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("payments are not configured here (no Stripe secret key)")]
    NotConfigured,
    #[error("{0}")]
    Offers(#[from] OffersError),
    #[error("this form is out of date; reload the page and try again")]
    BadNonce,
    #[error("the offers were busy; try again")]
    Busy,
    #[error("Stripe: {0}")]
    Stripe(#[from] StripeError),
    #[error("event store: {0}")]
    Store(#[from] StoreError),
    #[error("Stripe answered a session without a payment page")]
    NoUrl,
}

impl From<CommandError<OffersError>> for CheckoutError {
    fn from(e: CommandError<OffersError>) -> Self {
        match e {
            CommandError::Rejected(e) => CheckoutError::Offers(e),
            CommandError::Store(e) => CheckoutError::Store(e),
            _ => CheckoutError::Busy,
        }
    }
}

#[derive(Clone)]
pub struct CheckoutService {
    offers: Ledger<TopUpOffers, PostgresStore>,
    stripe: Option<StripeClient>,
    config: CheckoutConfig,
    public_url: String,
}

impl CheckoutService {
    pub fn new(
        store: Arc<PostgresStore>,
        ledger: LedgerConfig,
        appended: Arc<tokio::sync::Notify>,
        stripe: Option<StripeClient>,
        config: CheckoutConfig,
        public_url: String,
    ) -> CheckoutService {
        CheckoutService {
            offers: Ledger::with_appended(store, ledger, appended),
            stripe,
            config,
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    pub fn stripe(&self) -> Option<&StripeClient> {
        self.stripe.as_ref()
    }

    pub fn config(&self) -> &CheckoutConfig {
        &self.config
    }

    /// Sets the launch offers in the configured currency once, on a stream that has none. The
    /// fixed idempotency key makes concurrent starts of several replicas append one event.
    pub async fn seed_defaults(&self) -> Result<(), CheckoutError> {
        if self.offers.load(OFFERS_STREAM).await?.version() > 0 {
            return Ok(());
        }
        let currency = Currency::parse(&self.config.currency).map_err(|_| OffersError::Empty)?;
        let offers = Offers::defaults(currency).map_err(|_| OffersError::Empty)?;
        let command = OffersCommand::SetOffers {
            offers,
            actor: SYSTEM_ACTOR,
        };
        match self
            .offers
            .execute(
                OFFERS_STREAM,
                Envelope::with_key(command, "topup-offers-defaults"),
            )
            .await
        {
            Ok(_) | Err(CommandError::Rejected(OffersError::Unchanged)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The offers in force and their version.
    pub async fn offers(&self) -> Result<TopUpOffers, CheckoutError> {
        Ok(self.offers.load(OFFERS_STREAM).await?)
    }

    /// Replaces the offers; returns the new version.
    pub async fn set_offers(&self, offers: Offers, actor: ActorId) -> Result<u32, CheckoutError> {
        let outcome = self
            .offers
            .execute(
                OFFERS_STREAM,
                Envelope::new(OffersCommand::SetOffers { offers, actor }),
            )
            .await?;
        metrics::counter!("ringledger_topup_offers_changed_total").increment(1);
        let mut version = outcome.events.iter().map(|c| match &c.event {
            ringledger_domain::topup::OffersEvent::TopUpOffersChanged { version, .. } => *version,
        });
        Ok(version.next_back().unwrap_or_default())
    }

    /// Creates the Checkout Session for `choice` and returns the URL of its payment page. The
    /// idempotency key comes from the form's nonce, so a double submit gets the same session.
    pub async fn start(
        &self,
        account: AccountId,
        choice: &Choice,
        nonce: &str,
    ) -> Result<String, CheckoutError> {
        let stripe = self.stripe.as_ref().ok_or(CheckoutError::NotConfigured)?;
        if nonce.len() < NONCE_MIN_CHARS
            || nonce.len() > NONCE_MAX_CHARS
            || !nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(CheckoutError::BadNonce);
        }
        let terms = self.offers().await?.terms(choice)?;
        let amount_minor = minor::to_minor(terms.price).ok_or(OffersError::NotWholeMinorUnits {
            what: "price".to_owned(),
            amount: terms.price.amount_string(),
        })?;
        let session = NewCheckoutSession {
            amount_minor,
            currency: terms.price.currency().as_str().to_owned(),
            product_name: self.config.product_name.clone(),
            client_reference_id: account.0.to_string(),
            success_url: format!(
                "{}/account/credit/success?session_id={{CHECKOUT_SESSION_ID}}",
                self.public_url
            ),
            cancel_url: format!("{}/account/credit/cancel", self.public_url),
            metadata: metadata(account, &terms),
        };
        let key = idempotency_key(account, nonce, &terms);
        let created = stripe.create_checkout_session(&session, &key).await;
        let outcome = match &created {
            Ok(_) => "created",
            Err(e) => e.kind(),
        };
        metrics::counter!("ringledger_checkout_sessions_total", "outcome" => outcome).increment(1);
        let created = created?;
        tracing::info!(
            account = %account.0,
            session = %created.id,
            tier = %terms.tier,
            terms_version = terms.terms_version,
            "checkout session created"
        );
        created.url.ok_or(CheckoutError::NoUrl)
    }

    /// The session `id` if it belongs to `account` (a session of someone else is "not found").
    pub async fn session_for(
        &self,
        account: AccountId,
        id: &str,
    ) -> Result<Option<CheckoutSession>, CheckoutError> {
        let stripe = self.stripe.as_ref().ok_or(CheckoutError::NotConfigured)?;
        match stripe.retrieve_checkout_session(id).await {
            Ok(s) if s.client_reference_id.as_deref() == Some(account.0.to_string().as_str()) => Ok(Some(s)),
            Ok(_) => Ok(None),
            Err(StripeError::InvalidRequest { status: 404, .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The contract metadata of one purchase.
pub fn metadata(account: AccountId, terms: &PurchaseTerms) -> BTreeMap<String, String> {
    use metadata_keys::*;
    BTreeMap::from([
        (ACCOUNT_ID.to_owned(), account.0.to_string()),
        (TIER.to_owned(), terms.tier.clone()),
        (TERMS_VERSION.to_owned(), terms.terms_version.to_string()),
        (BONUS_BPS.to_owned(), terms.bonus_bps.to_string()),
    ])
}

/// One key per (account, form, choice, terms): a double submit repeats it; another choice
/// from the same form, or new terms, gets a new session instead of Stripe's parameter clash.
pub fn idempotency_key(account: AccountId, nonce: &str, terms: &PurchaseTerms) -> String {
    let mut h = Sha256::new();
    for part in [
        account.0.to_string().as_str(),
        nonce,
        terms.tier.as_str(),
        terms.price.amount_string().as_str(),
        terms.price.currency().as_str(),
        terms.terms_version.to_string().as_str(),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("checkout-{}", hex::encode(h.finalize()))
}

/// A fresh form nonce: 128 random bits, URL-safe.
pub fn new_nonce() -> String {
    use base64::Engine;
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
