//! The rate book: the active deck and the pricing policy held in memory for lookups, rebuilt
//! from the rate table projection when a deck is activated or the policy changes, and swapped
//! in atomically (readers keep the book they started with). Rate corrections of the active
//! deck are held beside the rows and applied to a lookup whose instant falls in their range. A lookup goes from a dialled
//! number to the matched deck row and the selling price; it never touches the database.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ringledger_domain::e164::Region;
use ringledger_domain::rates::lookup::{AdminBlock, AdminTarget, BlockList, PrefixEntry, PrefixTable};
use ringledger_domain::rates::policy::BlockRule;
use ringledger_domain::rates::pricing::{PricingRules, SellingPrice};
use ringledger_domain::rates::quote::Destination;
use ringledger_domain::{BillingPlan, Currency, DeckId, Money};
use sqlx::postgres::PgListener;
use sqlx::{PgPool, Row};
use tokio::sync::watch;

use super::RateError;

/// One deck row as the book needs it.
#[derive(Debug, Clone)]
struct Entry {
    iso: String,
    country: String,
    description: String,
    cost_per_minute: Money,
    plan: BillingPlan,
}

/// A rate correction of one destination prefix over its effective range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookCorrection {
    pub number: u64,
    pub cost_per_minute: Money,
    pub selling_per_minute: Money,
    pub effective_from: DateTime<Utc>,
    pub effective_to: Option<DateTime<Utc>>,
}

impl BookCorrection {
    fn covers(&self, at: DateTime<Utc>) -> bool {
        at >= self.effective_from && self.effective_to.is_none_or(|to| at < to)
    }
}

/// What the book was built from; a change means a rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Generation {
    pub deck: Option<(DeckId, i64)>,
    pub pricing_position: Option<i64>,
    pub blocks_position: Option<i64>,
    pub corrections_position: Option<i64>,
}

/// An immutable snapshot of the active rates.
pub struct RateBook {
    pub generation: Generation,
    pub deck_id: Option<DeckId>,
    pub currency: Option<Currency>,
    pub activated_at: Option<DateTime<Utc>>,
    pub rows: usize,
    entries: Vec<Entry>,
    /// Destination prefixes per entry, for the price list.
    prefixes: Vec<Vec<String>>,
    table: PrefixTable<u32>,
    pub pricing: PricingRules,
    pub blocks: BlockList,
    /// Corrections of the active deck by destination prefix, newest first.
    corrections: HashMap<String, Vec<BookCorrection>>,
}

/// One line of the public price list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceListRow {
    pub iso: String,
    pub country: String,
    pub description: String,
    pub prefix: String,
    pub price: SellingPrice,
}

/// Per country, the cheapest and the dearest line (one if they are the same).
fn cheapest_and_dearest(rows: Vec<PriceListRow>) -> Vec<PriceListRow> {
    let mut out: Vec<PriceListRow> = Vec::new();
    for group in rows.chunk_by(|a, b| a.iso == b.iso) {
        let rate = |r: &&PriceListRow| r.price.selling.rate_per_minute.micros();
        let (Some(low), Some(high)) = (group.iter().min_by_key(rate), group.iter().max_by_key(rate)) else {
            continue;
        };
        out.push(low.clone());
        if high.prefix != low.prefix {
            out.push(high.clone());
        }
    }
    out
}

/// A number's rate: where it landed and what it costs the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rated {
    pub destination: Destination,
    pub price: SellingPrice,
}

impl RateBook {
    fn empty() -> RateBook {
        RateBook {
            generation: Generation::default(),
            deck_id: None,
            currency: None,
            activated_at: None,
            rows: 0,
            entries: Vec::new(),
            prefixes: Vec::new(),
            table: PrefixTable::empty(),
            pricing: PricingRules::default(),
            blocks: BlockList::default_rules(),
            corrections: HashMap::new(),
        }
    }

    /// The rate for E.164 `digits` (country code first, no `+`), calling from `origin`, now.
    pub fn rate(&self, digits: &str, origin: Option<&str>) -> Result<Option<Rated>, RateError> {
        self.rate_at(digits, origin, Utc::now())
    }

    /// The newest correction of destination prefix `prefix` whose range holds `at`.
    pub fn correction(&self, prefix: &str, at: DateTime<Utc>) -> Option<&BookCorrection> {
        self.corrections.get(prefix)?.iter().find(|c| c.covers(at))
    }

    /// The deck's price for `prefix`, with the correction in force at `at` applied: the
    /// corrected cost and selling rate replace the deck's and the pricing rules' (the plan stays).
    fn corrected(
        &self,
        prefix: &str,
        mut price: SellingPrice,
        at: DateTime<Utc>,
    ) -> Result<SellingPrice, RateError> {
        if let Some(c) = self.correction(prefix, at) {
            price.cost_per_minute = c.cost_per_minute;
            price.selling.rate_per_minute = c.selling_per_minute;
            price.margin_per_minute = c
                .selling_per_minute
                .checked_sub(c.cost_per_minute)
                .map_err(|e| RateError::Invalid(format!("correction rc-{}: {e}", c.number)))?;
        }
        Ok(price)
    }

    /// The rate for `digits` as it stands at `at` (quotes pass their own instant).
    pub fn rate_at(
        &self,
        digits: &str,
        origin: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Option<Rated>, RateError> {
        let Some(deck_id) = self.deck_id else {
            return Err(RateError::NoActiveDeck);
        };
        let Some(found) = self.table.lookup(digits, origin) else {
            return Ok(None);
        };
        let entry = &self.entries[*found.value as usize];
        debug_assert!(found.prefix_len <= digits.len());
        let prefix = &digits[..found.prefix_len];
        let price = self
            .pricing
            .sell(&entry.iso, prefix, entry.cost_per_minute)
            .map_err(|e| RateError::Invalid(format!("pricing {prefix}: {e}")))?;
        let price = self.corrected(prefix, price, at)?;
        Ok(Some(Rated {
            destination: Destination {
                iso: entry.iso.clone(),
                country: entry.country.clone(),
                description: entry.description.clone(),
                prefix: prefix.to_owned(),
                deck_id,
            },
            price,
        }))
    }

    /// The public price list: every destination prefix of `country` (ISO, as the deck spells
    /// it) with its selling price, or, without a country, each country's cheapest and dearest
    /// rate. Bounded by the deck.
    pub fn price_list(&self, country: Option<&str>) -> Result<Vec<PriceListRow>, RateError> {
        if self.deck_id.is_none() {
            return Err(RateError::NoActiveDeck);
        }
        let now = Utc::now();
        let mut out = Vec::new();
        for (index, entry) in self.entries.iter().enumerate() {
            if country.is_some_and(|c| !c.eq_ignore_ascii_case(&entry.iso)) {
                continue;
            }
            for prefix in self.prefixes_of(index) {
                let price = self
                    .pricing
                    .sell(&entry.iso, &prefix, entry.cost_per_minute)
                    .map_err(|e| RateError::Invalid(format!("pricing {prefix}: {e}")))?;
                let price = self.corrected(&prefix, price, now)?;
                out.push(PriceListRow {
                    iso: entry.iso.clone(),
                    country: entry.country.clone(),
                    description: entry.description.clone(),
                    prefix,
                    price,
                });
            }
        }
        out.sort_by(|a, b| a.iso.cmp(&b.iso).then_with(|| a.prefix.cmp(&b.prefix)));
        out.dedup_by(|a, b| a.prefix == b.prefix && a.iso == b.iso);
        if country.is_none() {
            out = cheapest_and_dearest(out);
        }
        Ok(out)
    }

    fn prefixes_of(&self, index: usize) -> Vec<String> {
        self.prefixes.get(index).cloned().unwrap_or_default()
    }

    /// The cost plan of the row a number matched (our cost side, for margins).
    pub fn cost_plan(&self, digits: &str, origin: Option<&str>) -> Option<BillingPlan> {
        let found = self.table.lookup(digits, origin)?;
        Some(self.entries[*found.value as usize].plan)
    }
}

/// The shared, swappable book. Cheap to clone.
#[derive(Clone)]
pub struct RateBookHandle {
    current: Arc<RwLock<Arc<RateBook>>>,
}

impl Default for RateBookHandle {
    fn default() -> Self {
        RateBookHandle {
            current: Arc::new(RwLock::new(Arc::new(RateBook::empty()))),
        }
    }
}

impl RateBookHandle {
    /// The book as it is now; it stays valid however long the caller holds it.
    pub fn get(&self) -> Arc<RateBook> {
        match self.current.read() {
            Ok(book) => book.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn swap(&self, book: RateBook) {
        let book = Arc::new(book);
        match self.current.write() {
            Ok(mut slot) => *slot = book,
            Err(poisoned) => *poisoned.into_inner() = book,
        }
    }

    /// Rebuilds from the rate table if it changed since the book was built; true if it did.
    pub async fn refresh(&self, pool: &PgPool) -> Result<bool, RateError> {
        let now = generation(pool).await?;
        if now == self.get().generation {
            return Ok(false);
        }
        let started = std::time::Instant::now();
        let book = load(pool, now).await?;
        tracing::info!(deck = ?book.deck_id, rows = book.rows, ms = started.elapsed().as_millis() as u64,
            "rate book rebuilt");
        metrics::gauge!("ringledger_rate_book_rows").set(ringledger_projections::gauge_count(book.rows));
        self.swap(book);
        Ok(true)
    }

    /// Keeps the book current until `stop`: wakes on `NOTIFY ringledger_rates` (sent by the
    /// projection when it commits a change) and checks every few seconds in case one was missed.
    pub async fn run(self, pool: PgPool, mut stop: watch::Receiver<bool>) {
        const POLL: Duration = Duration::from_secs(5);
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(mut l) => match l.listen(ringledger_projections::rates::RATES_CHANNEL).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "rate book: LISTEN failed; polling only");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "rate book: no listener connection; polling only");
                None
            }
        };
        loop {
            if let Err(e) = self.refresh(&pool).await {
                tracing::warn!(error = %e, "rate book: refresh failed; keeping the previous book");
            }
            let woke = async {
                match listener.as_mut() {
                    Some(l) => {
                        let _ = tokio::time::timeout(POLL, l.recv()).await;
                    }
                    None => tokio::time::sleep(POLL).await,
                }
            };
            tokio::select! {
                _ = woke => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}

async fn generation(pool: &PgPool) -> Result<Generation, RateError> {
    let row = sqlx::query(
        "SELECT (SELECT deck_id FROM rate_decks WHERE activated_position IS NOT NULL
                  ORDER BY activated_position DESC LIMIT 1) AS deck_id,
                (SELECT max(activated_position) FROM rate_decks) AS activated_position,
                (SELECT pricing_position FROM rate_policy WHERE id = 1) AS pricing_position,
                (SELECT blocks_position FROM rate_policy WHERE id = 1) AS blocks_position",
    )
    .fetch_one(pool)
    .await?;
    let deck: Option<uuid::Uuid> = row.try_get("deck_id")?;
    let position: Option<i64> = row.try_get("activated_position")?;
    Ok(Generation {
        deck: deck.zip(position).map(|(d, p)| (DeckId(d), p)),
        pricing_position: row.try_get("pricing_position")?,
        blocks_position: row.try_get("blocks_position")?,
        corrections_position: corrections_position(pool).await?,
    })
}

/// The newest correction's position; none until the corrections read model exists (an api
/// may start before its projections are set up).
async fn corrections_position(pool: &PgPool) -> Result<Option<i64>, RateError> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('rate_corrections') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(None);
    }
    Ok(sqlx::query_scalar("SELECT max(position) FROM rate_corrections")
        .fetch_one(pool)
        .await?)
}

/// The corrections of `deck` (and those naming no deck), by prefix, newest first.
async fn load_corrections(
    pool: &PgPool,
    deck: DeckId,
    currency: Currency,
) -> Result<HashMap<String, Vec<BookCorrection>>, RateError> {
    let mut out: HashMap<String, Vec<BookCorrection>> = HashMap::new();
    if corrections_position(pool).await?.is_none() {
        return Ok(out);
    }
    let rows = sqlx::query(
        "SELECT number, prefix, new_cost_micros, new_selling_micros, effective_from, effective_to
           FROM rate_corrections WHERE (deck_id = $1 OR deck_id IS NULL) AND currency = $2
          ORDER BY number DESC",
    )
    .bind(deck.0)
    .bind(currency.as_str())
    .fetch_all(pool)
    .await?;
    for row in rows {
        let prefix: String = row.try_get("prefix")?;
        out.entry(prefix).or_default().push(BookCorrection {
            number: u64::try_from(row.try_get::<i64, _>("number")?).unwrap_or(0),
            cost_per_minute: Money::from_micros(row.try_get("new_cost_micros")?, currency),
            selling_per_minute: Money::from_micros(row.try_get("new_selling_micros")?, currency),
            effective_from: row.try_get("effective_from")?,
            effective_to: row.try_get("effective_to")?,
        });
    }
    Ok(out)
}

async fn load(pool: &PgPool, generation: Generation) -> Result<RateBook, RateError> {
    let mut book = RateBook::empty();
    book.generation = generation;
    let policy = sqlx::query("SELECT pricing, blocks FROM rate_policy WHERE id = 1")
        .fetch_optional(pool)
        .await?;
    if let Some(policy) = policy {
        let pricing: Option<serde_json::Value> = policy.try_get("pricing")?;
        if let Some(pricing) = pricing {
            book.pricing = serde_json::from_value(pricing)
                .map_err(|e| RateError::Store(format!("pricing rules: {e}")))?;
        }
        let blocks: Vec<BlockRule> = serde_json::from_value(policy.try_get("blocks")?)
            .map_err(|e| RateError::Store(format!("block list: {e}")))?;
        book.blocks = BlockList::default_rules()
            .with_admin_rules(admin_blocks(&blocks)?)
            .map_err(|e| RateError::Store(e.to_string()))?;
    }
    let Some((deck_id, _)) = generation.deck else {
        return Ok(book);
    };
    let deck = sqlx::query("SELECT currency, activated_at FROM rate_decks WHERE deck_id = $1")
        .bind(deck_id.0)
        .fetch_one(pool)
        .await?;
    let currency_text: String = deck.try_get("currency")?;
    let currency =
        Currency::parse(&currency_text).map_err(|e| RateError::Store(format!("deck currency: {e}")))?;
    book.deck_id = Some(deck_id);
    book.currency = Some(currency);
    book.activated_at = deck.try_get("activated_at")?;
    let (entries, prefixes, keys) = load_rows(pool, deck_id, currency).await?;
    book.rows = entries.len();
    book.entries = entries;
    book.prefixes = prefixes;
    book.table = PrefixTable::build(keys).map_err(|e| RateError::Store(format!("deck {deck_id}: {e}")))?;
    book.corrections = load_corrections(pool, deck_id, currency).await?;
    Ok(book)
}

type Key = PrefixEntry<u32>;

/// The policy's block rules as the lookup takes them.
fn admin_blocks(rules: &[BlockRule]) -> Result<Vec<AdminBlock>, RateError> {
    rules
        .iter()
        .map(|rule| {
            let target = match (&rule.prefix, &rule.country) {
                (Some(prefix), _) => AdminTarget::Prefix(prefix.clone()),
                (None, Some(country)) => AdminTarget::Country(
                    Region::parse(country).map_err(|e| RateError::Store(format!("block list: {e}")))?,
                ),
                (None, None) => return Err(RateError::Store("block rule names nothing".into())),
            };
            Ok(AdminBlock {
                target,
                reason: rule.reason.clone(),
            })
        })
        .collect()
}

type Loaded = (Vec<Entry>, Vec<Vec<String>>, Vec<Key>);

async fn load_rows(pool: &PgPool, deck_id: DeckId, currency: Currency) -> Result<Loaded, RateError> {
    use futures::TryStreamExt;
    let mut rows = sqlx::query(
        "SELECT iso, country, description, destination_prefixes, origination_prefixes, cost_micros,
                connect_fee_micros, first_increment, next_increment
           FROM rate_rows WHERE deck_id = $1 ORDER BY line",
    )
    .bind(deck_id.0)
    .fetch(pool);
    let (mut entries, mut all_prefixes, mut keys) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(row) = rows.try_next().await? {
        let index = u32::try_from(entries.len()).map_err(|_| RateError::Invalid("deck too large".into()))?;
        let plan = BillingPlan::new(
            Money::from_micros(row.try_get("connect_fee_micros")?, currency),
            row.try_get::<i32, _>("first_increment")?.max(0) as u32,
            row.try_get::<i32, _>("next_increment")?.max(0) as u32,
        )
        .map_err(|e| RateError::Store(format!("deck row plan: {e}")))?;
        let destinations: Vec<String> = row.try_get("destination_prefixes")?;
        let origins: Vec<String> = row.try_get("origination_prefixes")?;
        for d in &destinations {
            if origins.is_empty() {
                keys.push(PrefixEntry {
                    destination: d.clone(),
                    origin: None,
                    value: index,
                });
            }
            for o in &origins {
                keys.push(PrefixEntry {
                    destination: d.clone(),
                    origin: Some(o.clone()),
                    value: index,
                });
            }
        }
        entries.push(Entry {
            iso: row.try_get("iso")?,
            country: row.try_get("country")?,
            description: row.try_get("description")?,
            cost_per_minute: Money::from_micros(row.try_get("cost_micros")?, currency),
            plan,
        });
        all_prefixes.push(destinations);
    }
    Ok((entries, all_prefixes, keys))
}
