//! Deck imports as a durable job. An upload (the file's bytes, bounded) is stored first; the
//! `rate_deck_import` job on the `rates` queue then streams it through the reader, appending
//! `RateDeckRowsImported` every 5,000 good rows and `RateDeckImported` at the end, and writes
//! its progress to `rate_imports` for progress bars. Each chunk's command carries the key
//! `chunk-N`, so a job that dies half-way and runs again appends nothing twice. The same
//! file (by SHA-256) imported again is recognised and not imported twice.

use std::io::Read;

use chrono::{DateTime, Utc};
use ringledger_domain::rates::deck::{
    deck_id_for_sha256, DeckCommand, DeckSummary, RateDeck, RowProblem, MAX_CHUNK_ROWS, MAX_REPORTED_PROBLEMS,
};
use ringledger_domain::rates::formats::{DeckReader, ReadOptions};
use ringledger_domain::rates::{DeckFormat, DeckRow};
use ringledger_domain::{ActorId, BillingPlan, Currency, DeckId, Money};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::{RateError, RateService};
use crate::ledger::{Envelope, Pending};

/// What the admin asks for when importing a file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportRequest {
    pub file_name: String,
    /// `None`: detected from the header.
    pub format: Option<DeckFormat>,
    pub currency: Currency,
    pub effective_from: DateTime<Utc>,
    pub actor: ActorId,
}

/// Where an import run stands (`rate_imports`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportStatus {
    pub id: Uuid,
    pub deck_id: DeckId,
    pub file_name: String,
    pub status: String,
    pub bytes_total: i64,
    pub bytes_done: i64,
    pub rows_done: i64,
    pub error_count: i64,
    pub message: Option<String>,
}

impl ImportStatus {
    pub fn is_finished(&self) -> bool {
        matches!(self.status.as_str(), "imported" | "duplicate" | "failed")
    }
}

/// Chunks queued ahead of the one being appended (bounded memory: 4 × 5,000 rows).
const CHUNKS_IN_FLIGHT: usize = 3;

async fn settle_chunk(pending: Option<Pending<RateDeck>>) -> Result<(), RateError> {
    if let Some(pending) = pending {
        pending.outcome().await.map_err(RateError::deck)?;
    }
    Ok(())
}

/// How often progress is written (good rows).
const PROGRESS_EVERY_ROWS: u64 = 25_000;

/// Hex SHA-256 and the deck id the bytes would get.
pub fn fingerprint(bytes: &[u8]) -> (String, DeckId) {
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    (hex::encode(digest), deck_id_for_sha256(&digest))
}

impl RateService {
    /// Stores the file and queues its import. The same bytes already imported give the earlier
    /// deck's id and status `duplicate` without queueing anything.
    pub async fn submit_import(
        &self,
        bytes: Vec<u8>,
        request: &ImportRequest,
    ) -> Result<ImportStatus, RateError> {
        let limit = self.config.max_upload_bytes;
        if bytes.len() as u64 > limit {
            return Err(RateError::Invalid(format!(
                "the file is {} bytes; the upload limit is {limit} bytes (rates.max_upload_bytes)",
                bytes.len()
            )));
        }
        let (sha256, deck_id) = fingerprint(&bytes);
        let import_id = Uuid::now_v7();
        let imported = deck_imported(&self.pool, deck_id).await?;
        let status = if imported { "duplicate" } else { "queued" };
        let mut tx = self.pool.begin().await?;
        let upload_id = if imported {
            None
        } else {
            let id = Uuid::now_v7();
            sqlx::query(
                "INSERT INTO rate_uploads (id, file_name, sha256, size_bytes, content) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(&request.file_name)
            .bind(&sha256)
            .bind(bytes.len() as i64)
            .bind(&bytes)
            .execute(&mut *tx)
            .await?;
            Some(id)
        };
        let message =
            imported.then(|| format!("this file (SHA-256 {sha256}) was imported before as deck {deck_id}"));
        sqlx::query(
            "INSERT INTO rate_imports (id, upload_id, deck_id, file_name, format, currency, effective_from, actor,
                                       status, bytes_total, message)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(import_id)
        .bind(upload_id)
        .bind(deck_id.0)
        .bind(&request.file_name)
        .bind(request.format.map(|f| f.as_str()))
        .bind(request.currency.as_str())
        .bind(request.effective_from)
        .bind(request.actor.0)
        .bind(status)
        .bind(bytes.len() as i64)
        .bind(&message)
        .execute(&mut *tx)
        .await?;
        if !imported {
            super::jobs::enqueue_import(&mut tx, import_id).await?;
        }
        tx.commit().await?;
        self.import_status(import_id).await
    }

    pub async fn import_status(&self, id: Uuid) -> Result<ImportStatus, RateError> {
        let row = sqlx::query(
            "SELECT id, deck_id, file_name, status, bytes_total, bytes_done, rows_done, error_count, message
               FROM rate_imports WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| RateError::NotFound(format!("no import {id}")))?;
        Ok(ImportStatus {
            id: row.try_get("id")?,
            deck_id: DeckId(row.try_get("deck_id")?),
            file_name: row.try_get("file_name")?,
            status: row.try_get("status")?,
            bytes_total: row.try_get("bytes_total")?,
            bytes_done: row.try_get("bytes_done")?,
            rows_done: row.try_get("rows_done")?,
            error_count: row.try_get("error_count")?,
            message: row.try_get("message")?,
        })
    }

    /// Runs one import (the job's body). Safe to run again after a crash: chunks already
    /// appended are answered from their idempotency keys.
    pub async fn run_import(&self, import_id: Uuid) -> Result<ImportStatus, RateError> {
        let row = sqlx::query(
            "SELECT i.deck_id, i.file_name, i.format, i.currency, i.effective_from, i.actor, i.status, u.content, u.sha256
               FROM rate_imports i LEFT JOIN rate_uploads u ON u.id = i.upload_id WHERE i.id = $1",
        )
        .bind(import_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| RateError::NotFound(format!("no import {import_id}")))?;
        let status: String = row.try_get("status")?;
        if matches!(status.as_str(), "imported" | "duplicate") {
            return self.import_status(import_id).await;
        }
        let content: Option<Vec<u8>> = row.try_get("content")?;
        let content =
            content.ok_or_else(|| RateError::NotFound(format!("the file of import {import_id} is gone")))?;
        let format: Option<String> = row.try_get("format")?;
        let request = ImportRequest {
            file_name: row.try_get("file_name")?,
            format: format.as_deref().map(parse_format).transpose()?,
            currency: Currency::parse(&row.try_get::<String, _>("currency")?)
                .map_err(|e| RateError::Invalid(e.to_string()))?,
            effective_from: row.try_get("effective_from")?,
            actor: ActorId(row.try_get("actor")?),
        };
        let deck_id = DeckId(row.try_get("deck_id")?);
        let sha256: String = row.try_get("sha256")?;
        self.set_status(import_id, "running", None).await?;
        match self
            .import_bytes(import_id, deck_id, &sha256, &content, &request)
            .await
        {
            Ok(()) => {
                self.set_status(import_id, "imported", None).await?;
                sqlx::query("UPDATE rate_imports SET upload_id = NULL WHERE id = $1")
                    .bind(import_id)
                    .execute(&self.pool)
                    .await?;
                sqlx::query("DELETE FROM rate_uploads u WHERE NOT EXISTS (SELECT 1 FROM rate_imports i WHERE i.upload_id = u.id)")
                    .execute(&self.pool)
                    .await?;
            }
            Err(e @ RateError::Invalid(_)) => {
                self.set_status(import_id, "failed", Some(&e.to_string())).await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        self.import_status(import_id).await
    }

    async fn import_bytes(
        &self,
        import_id: Uuid,
        deck_id: DeckId,
        sha256: &str,
        content: &[u8],
        request: &ImportRequest,
    ) -> Result<(), RateError> {
        let mut options = ReadOptions::new(request.currency);
        if let Some(format) = request.format {
            options = options.with_format(format);
        }
        let counted = CountingReader::new(content);
        let bytes_read = counted.count.clone();
        let mut reader = DeckReader::new(counted, options)
            .map_err(|e| RateError::Invalid(format!("{}: {e}", request.file_name)))?;
        let format = reader.format();
        let mut chunk: Vec<DeckRow> = Vec::with_capacity(MAX_CHUNK_ROWS);
        let (mut chunk_no, mut rows, mut errors) = (0u32, 0u64, 0u64);
        let mut problems: Vec<RowProblem> = Vec::new();
        let mut last_progress = 0u64;
        let mut in_flight = std::collections::VecDeque::new();
        for item in reader.by_ref() {
            match item {
                Ok(row) => {
                    chunk.push(row);
                    rows += 1;
                }
                Err(e) => {
                    errors += 1;
                    if problems.len() < MAX_REPORTED_PROBLEMS {
                        problems.push(RowProblem {
                            line: e.line,
                            column: e.column.clone(),
                            message: e.kind.to_string(),
                        });
                    }
                    if e.is_fatal() {
                        return Err(RateError::Invalid(format!("{}: {e}", request.file_name)));
                    }
                }
            }
            if chunk.len() == MAX_CHUNK_ROWS {
                in_flight.push_back(
                    self.submit_chunk(deck_id, chunk_no, std::mem::take(&mut chunk))
                        .await?,
                );
                chunk_no += 1;
                if in_flight.len() > CHUNKS_IN_FLIGHT {
                    settle_chunk(in_flight.pop_front()).await?;
                }
            }
            if rows - last_progress >= PROGRESS_EVERY_ROWS {
                last_progress = rows;
                self.progress(import_id, bytes_read.get(), rows, errors).await?;
            }
        }
        if !chunk.is_empty() {
            in_flight.push_back(self.submit_chunk(deck_id, chunk_no, chunk).await?);
        }
        while let Some(pending) = in_flight.pop_front() {
            settle_chunk(Some(pending)).await?;
        }
        let summary = DeckSummary {
            file_name: request.file_name.clone(),
            sha256: sha256.to_owned(),
            format,
            currency: request.currency,
            row_count: rows,
            error_count: errors,
            problems,
            effective_from: request.effective_from,
            imported_by: request.actor,
        };
        self.progress(import_id, content.len() as u64, rows, errors)
            .await?;
        self.decks
            .execute(
                &deck_id.to_string(),
                Envelope::with_key(DeckCommand::FinishImport { deck_id, summary }, "finish"),
            )
            .await
            .map_err(RateError::deck)?;
        Ok(())
    }

    /// Appends one chunk of a deck under the job's key `chunk-N` (a repeat appends nothing).
    pub async fn import_chunk(
        &self,
        deck_id: DeckId,
        chunk: u32,
        rows: Vec<DeckRow>,
    ) -> Result<(), RateError> {
        settle_chunk(Some(self.submit_chunk(deck_id, chunk, rows).await?)).await
    }

    /// Queues one chunk; chunks submitted in order are decided in order, and the ones queued
    /// together are appended in one transaction.
    async fn submit_chunk(
        &self,
        deck_id: DeckId,
        chunk: u32,
        rows: Vec<DeckRow>,
    ) -> Result<Pending<RateDeck>, RateError> {
        let command = DeckCommand::ImportRows { deck_id, chunk, rows };
        self.decks
            .submit(
                &deck_id.to_string(),
                Envelope::with_key(command, format!("chunk-{chunk}")),
            )
            .await
            .map_err(RateError::deck)
    }

    async fn progress(&self, id: Uuid, bytes: u64, rows: u64, errors: u64) -> Result<(), RateError> {
        sqlx::query(
            "UPDATE rate_imports SET bytes_done = $2, rows_done = $3, error_count = $4, updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(bytes as i64)
        .bind(rows as i64)
        .bind(errors as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_status(&self, id: Uuid, status: &str, message: Option<&str>) -> Result<(), RateError> {
        sqlx::query("UPDATE rate_imports SET status = $2, message = COALESCE($3, message), updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(status)
            .bind(message)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn parse_format(text: &str) -> Result<DeckFormat, RateError> {
    match text {
        "twilio" => Ok(DeckFormat::Twilio),
        "generic" => Ok(DeckFormat::Generic),
        other => Err(RateError::Invalid(format!(
            "unknown deck format `{other}`; use twilio or generic"
        ))),
    }
}

/// Whether the log already holds this deck's summary (the log, not a projection: it may lag).
pub async fn deck_imported(pool: &PgPool, deck_id: DeckId) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = 'RateDeck' AND aggregate_id = $1
                                               AND event_type = 'RateDeckImported')",
    )
    .bind(deck_id.to_string())
    .fetch_one(pool)
    .await
}

/// Counts the bytes the reader has taken, for the progress bar.
struct CountingReader<R> {
    inner: R,
    count: ByteCount,
}

#[derive(Clone, Default)]
struct ByteCount(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl ByteCount {
    fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl<R> CountingReader<R> {
    fn new(inner: R) -> Self {
        CountingReader {
            inner,
            count: ByteCount::default(),
        }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .0
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

impl RateService {
    /// A deck's rows back from the rate table, in file order, as the file gave them.
    pub async fn deck_rows(&self, deck: DeckId) -> Result<Vec<DeckRow>, RateError> {
        let currency: Option<String> =
            sqlx::query_scalar("SELECT currency FROM rate_decks WHERE deck_id = $1")
                .bind(deck.0)
                .fetch_optional(&self.pool)
                .await?
                .flatten();
        let currency =
            currency.ok_or_else(|| RateError::NotFound(format!("deck {deck} is not (fully) imported")))?;
        let currency =
            Currency::parse(&currency).map_err(|e| RateError::Store(format!("deck currency: {e}")))?;
        let rows = sqlx::query(
            "SELECT line, iso, country, description, destination_prefixes, origination_prefixes, cost_micros,
                    connect_fee_micros, first_increment, next_increment
               FROM rate_rows WHERE deck_id = $1 ORDER BY line",
        )
        .bind(deck.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| deck_row(r, currency)).collect()
    }
}

fn deck_row(r: &sqlx::postgres::PgRow, currency: Currency) -> Result<DeckRow, RateError> {
    let plan = BillingPlan::new(
        Money::from_micros(r.try_get("connect_fee_micros")?, currency),
        r.try_get::<i32, _>("first_increment")?.max(0) as u32,
        r.try_get::<i32, _>("next_increment")?.max(0) as u32,
    )
    .map_err(|e| RateError::Store(format!("deck row plan: {e}")))?;
    Ok(DeckRow {
        line: r.try_get::<i64, _>("line")?.max(0) as u64,
        iso: r.try_get("iso")?,
        country: r.try_get("country")?,
        description: r.try_get("description")?,
        destination_prefixes: r.try_get("destination_prefixes")?,
        origination_prefixes: r.try_get("origination_prefixes")?,
        cost_per_minute: Money::from_micros(r.try_get("cost_micros")?, currency),
        plan,
    })
}
