//! Quotes: for an account and a dialled number, the destination, selling rate, plan and the
//! longest call the available credit buys, stored until it expires. The call's `start` names
//! the quote and is charged by it. The number is kept only as a hash keyed by the quote id,
//! enough to check that the call dials what was quoted; it is never logged in full.

use chrono::{DateTime, Utc};
use ringledger_domain::e164::Region;
use ringledger_domain::rates::lookup::DialError;
use ringledger_domain::rates::quote::Quote;
use ringledger_domain::{AccountId, Currency, Money, QuoteId, E164};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{RateError, RateService};

/// A request for a quote.
#[derive(Debug, Clone)]
pub struct QuoteRequest {
    pub account_id: AccountId,
    /// As typed: international (`+44…`, `0044…`, `011…`) or national for `region`.
    pub number: String,
    /// ISO region for national formats; the configured default when `None`.
    pub region: Option<String>,
}

/// What the caller is told: a price, or why the number cannot be called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuoteOutcome {
    Quoted {
        number: E164,
        quote: Quote,
    },
    Blocked {
        reason: String,
    },
    /// Parsed, but no row of the active deck covers it.
    NoRate {
        number: E164,
    },
}

fn number_hash(id: QuoteId, digits: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(id.0.as_bytes());
    h.update(digits.as_bytes());
    h.finalize().to_vec()
}

impl RateService {
    pub async fn quote(&self, request: &QuoteRequest, now: DateTime<Utc>) -> Result<QuoteOutcome, RateError> {
        let book = self.book().get();
        let region_text = request.region.as_deref().unwrap_or(&self.config().default_region);
        let region = Region::parse(region_text).map_err(|e| RateError::Invalid(e.to_string()))?;
        let number = match book.blocks.classify(&request.number, Some(region)) {
            Ok(number) => number,
            Err(DialError::Blocked(blocked)) => {
                return Ok(QuoteOutcome::Blocked {
                    reason: blocked.reason,
                })
            }
            Err(DialError::Invalid(e)) => return Err(RateError::Invalid(e.to_string())),
        };
        let origin = self.config().origination_number.as_deref();
        let Some(rated) = book.rate_at(number.digits(), origin, now)? else {
            return Ok(QuoteOutcome::NoRate { number });
        };
        let currency = rated.price.selling.rate_per_minute.currency();
        let available = self.available(request.account_id, currency).await?;
        let quote = Quote::new(
            QuoteId::new_v7(),
            request.account_id,
            rated.destination,
            rated.price,
            available,
            self.config().max_call_seconds,
            now,
            self.config().quote_ttl_seconds,
        )
        .map_err(|e| RateError::Invalid(format!("computing the quote: {e}")))?;
        self.store_quote(&quote, number.digits()).await?;
        metrics::counter!("ringledger_quotes_total").increment(1);
        Ok(QuoteOutcome::Quoted { number, quote })
    }

    /// Available credit from the balance projection (0 for an account it has not seen yet).
    async fn available(&self, account: AccountId, currency: Currency) -> Result<Money, RateError> {
        let row = sqlx::query("SELECT currency, available_micros FROM balances WHERE account_id = $1")
            .bind(account.0)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else {
            return Ok(Money::zero(currency));
        };
        let theirs: String = row.try_get("currency")?;
        if theirs != currency.as_str() {
            return Err(RateError::Refused(format!(
                "your account is in {theirs} but rates are in {currency}; contact support"
            )));
        }
        Ok(Money::from_micros(row.try_get("available_micros")?, currency))
    }

    async fn store_quote(&self, quote: &Quote, digits: &str) -> Result<(), RateError> {
        let body = serde_json::to_value(quote).map_err(|e| RateError::Store(e.to_string()))?;
        sqlx::query(
            "INSERT INTO quotes (id, account_id, number_hash, quote, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(quote.id.0)
        .bind(quote.account_id.0)
        .bind(number_hash(quote.id, digits))
        .bind(body)
        .bind(quote.issued_at)
        .bind(quote.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The quote a call names, checked: this account, this number, not expired.
    pub async fn quote_for_call(
        &self,
        id: QuoteId,
        account: AccountId,
        number: &E164,
        now: DateTime<Utc>,
    ) -> Result<Quote, RateError> {
        let row = sqlx::query("SELECT account_id, number_hash, quote FROM quotes WHERE id = $1")
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or(RateError::Quote(QuoteRefusal::Unknown(id)))?;
        let owner: uuid::Uuid = row.try_get("account_id")?;
        let hash: Vec<u8> = row.try_get("number_hash")?;
        if owner != account.0 {
            return Err(RateError::Quote(QuoteRefusal::OtherAccount(id)));
        }
        if hash != number_hash(id, number.digits()) {
            return Err(RateError::Quote(QuoteRefusal::OtherNumber(id)));
        }
        let quote: Quote = serde_json::from_value(row.try_get("quote")?)
            .map_err(|e| RateError::Store(format!("quote {id}: {e}")))?;
        if quote.is_expired(now) {
            return Err(RateError::Quote(QuoteRefusal::Expired {
                id,
                expired_at: quote.expires_at,
            }));
        }
        Ok(quote)
    }
}

/// Why a stored quote cannot start this call; `code()` is the metering protocol's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteRefusal {
    #[error("quote {0} does not exist; ask for a new quote")]
    Unknown(QuoteId),
    #[error("quote {0} belongs to another account; ask for a new quote")]
    OtherAccount(QuoteId),
    #[error("quote {0} is for another number; ask for a quote for the number dialled")]
    OtherNumber(QuoteId),
    #[error("quote {id} expired at {}; ask for a new quote", .expired_at.to_rfc3339())]
    Expired { id: QuoteId, expired_at: DateTime<Utc> },
}

impl QuoteRefusal {
    /// The protocol's machine code (docs/metering-protocol.md, "Errors").
    pub fn code(&self) -> &'static str {
        match self {
            QuoteRefusal::Unknown(_) => "unknown_quote",
            QuoteRefusal::OtherAccount(_) => "quote_other_account",
            QuoteRefusal::OtherNumber(_) => "quote_other_number",
            QuoteRefusal::Expired { .. } => "quote_expired",
        }
    }
}
