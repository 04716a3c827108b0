//! The development mailbox: what the mail catcher received, in the `dev_mailbox` table, with
//! the subject and the text and HTML parts parsed out of the raw message once, on arrival. It
//! is bounded: each insert deletes all but the newest [`KEEP_MESSAGES`]. Development and tests
//! only; nothing in production may read or write it.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Messages kept; older ones are deleted as new ones arrive.
pub const KEEP_MESSAGES: i64 = 500;
/// Rows one listing returns at most.
pub const MAX_LIST_ROWS: i64 = 200;

/// One received message as the pages and tests read it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReceivedMail {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub subject: String,
    pub text_body: Option<String>,
    pub html_body: Option<String>,
}

/// A line of the listing.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MailSummary {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub rcpt_to: Vec<String>,
    pub subject: String,
}

/// The parts of a raw message the mailbox shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedMail {
    pub subject: String,
    pub text_body: Option<String>,
    pub html_body: Option<String>,
}

/// Parses `raw` (RFC 5322, MIME): the subject, the first text/plain and first text/html part,
/// transfer encodings undone. A message that does not parse keeps empty fields.
pub fn parse(raw: &[u8]) -> ParsedMail {
    let Some(message) = mail_parser::MessageParser::default().parse(raw) else {
        return ParsedMail::default();
    };
    // mail-parser offers the text part as HTML when there is no HTML part; keep real parts only.
    let html_body = message
        .html_part(0)
        .filter(|part| part.is_text_html())
        .and_then(|_| message.body_html(0))
        .map(|html| html.into_owned());
    let text_body = message
        .text_part(0)
        .filter(|part| !part.is_text_html())
        .and_then(|_| message.body_text(0))
        .map(|text| text.into_owned());
    ParsedMail {
        subject: message.subject().unwrap_or_default().to_owned(),
        text_body,
        html_body,
    }
}

/// Stores one received message and trims the mailbox to [`KEEP_MESSAGES`]; returns its id.
pub async fn store(
    pool: &PgPool,
    mail_from: &str,
    rcpt_to: &[String],
    raw: &[u8],
) -> Result<i64, sqlx::Error> {
    let parsed = parse(raw);
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO dev_mailbox (mail_from, rcpt_to, subject, text_body, html_body, raw)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(mail_from)
    .bind(rcpt_to)
    .bind(&parsed.subject)
    .bind(&parsed.text_body)
    .bind(&parsed.html_body)
    .bind(raw)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM dev_mailbox WHERE id <= (SELECT id FROM dev_mailbox ORDER BY id DESC OFFSET $1 LIMIT 1)",
    )
    .bind(KEEP_MESSAGES)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// The newest messages first, at most `limit` (capped at [`MAX_LIST_ROWS`]).
pub async fn list(pool: &PgPool, limit: i64) -> Result<Vec<MailSummary>, sqlx::Error> {
    sqlx::query_as("SELECT id, received_at, rcpt_to, subject FROM dev_mailbox ORDER BY id DESC LIMIT $1")
        .bind(limit.clamp(1, MAX_LIST_ROWS))
        .fetch_all(pool)
        .await
}

pub async fn get(pool: &PgPool, id: i64) -> Result<Option<ReceivedMail>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, received_at, mail_from, rcpt_to, subject, text_body, html_body FROM dev_mailbox WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The newest message to `address` (tests and the browser test's helper read mail this way).
pub async fn latest_to(pool: &PgPool, address: &str) -> Result<Option<ReceivedMail>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, received_at, mail_from, rcpt_to, subject, text_body, html_body FROM dev_mailbox
         WHERE $1 = ANY (rcpt_to) ORDER BY id DESC LIMIT 1",
    )
    .bind(address)
    .fetch_optional(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_quoted_printable_and_base64_parts() {
        let raw = b"Subject: =?utf-8?q?Caf=C3=A9?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nhttps://x/confirm?token=3Dabc\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nPGEgaHJlZj0ieCI+Y29uZmlybTwvYT4=\r\n--b--\r\n";
        let parsed = parse(raw);
        assert_eq!(parsed.subject, "Café");
        assert_eq!(
            parsed.text_body.as_deref().map(str::trim),
            Some("https://x/confirm?token=abc")
        );
        assert_eq!(parsed.html_body.as_deref(), Some("<a href=\"x\">confirm</a>"));
    }

    #[test]
    fn a_text_only_message_has_no_html_part() {
        let parsed = parse(b"Subject: hi\r\n\r\njust text\r\n");
        assert_eq!(parsed.html_body, None);
        assert_eq!(parsed.text_body.as_deref().map(str::trim), Some("just text"));
    }
}
