//! Admin pages for calls and accounts (under `/admin`, so behind `web::admin_only`): the live
//! calls with an "End call" button (a forced hangup, reason `admin`), the global call log with
//! filters (account, UTC days, cause), and an account's standing with freeze / unfreeze / ban.
//! A freeze or ban from here is an Account command like any other: the `account_hangups`
//! process manager ends the account's calls. Numbers are shown masked only.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use chrono::{NaiveDate, Utc};
use ringledger_domain::account::{Account, AccountCommand, AccountError, FreezeReason};
use ringledger_domain::call::{CallError, HangupReason};
use ringledger_domain::{AccountId, ActorId, CallId};
use serde::Deserialize;

use super::web::{self, Ctx, Page};
use super::{AppState, Error};
use crate::auth::sessions::Flash;
use crate::calls::listing::{self, CallFilter, CallRow};
use crate::calls::CallsError;
use crate::ledger::{CommandError, Envelope};

/// Routes added to the admin router (which puts `admin_only` in front of all of them).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/calls", get(live))
        .route("/admin/calls/log", get(log))
        .route("/admin/calls/{id}/end", post(end_call))
        .route("/admin/accounts/{id}", get(account))
        .route("/admin/accounts/{id}/freeze", post(freeze))
        .route("/admin/accounts/{id}/unfreeze", post(unfreeze))
        .route("/admin/accounts/{id}/ban", post(ban))
}

fn calls_error(e: CallsError) -> Error {
    Error::Internal(anyhow::anyhow!("{e}"))
}

/// The signed-in admin as the actor of a command.
fn actor(ctx: &Ctx) -> Result<ActorId, Error> {
    ctx.signed_in().map(|u| ActorId(u.id.0)).ok_or(Error::Forbidden)
}

#[derive(Template)]
#[template(path = "admin/calls.html")]
struct LivePage {
    page: Page,
    calls: Vec<CallRow>,
}

async fn live(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Result<Response, Error> {
    let session = ctx.session.as_ref().ok_or(Error::Forbidden)?;
    let t = LivePage {
        page: web::page(&state, &ctx, session, "Live calls").await?,
        calls: listing::live_calls(&state.pool).await.map_err(calls_error)?,
    };
    web::html(StatusCode::OK, &t, None)
}

async fn end_call(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let call_id = CallId::parse(&id).map_err(|_| Error::NotFound)?;
    let flash = match state
        .calls
        .request_hangup(call_id, HangupReason::Admin, Utc::now())
        .await
    {
        Ok(_) => {
            tracing::info!(call_id = %call_id, admin = %actor(&ctx)?, "admin ended a call");
            Flash::notice("Hangup sent: the call ends as soon as the media node confirms.")
        }
        Err(CallsError::Call(CallError::CallOver(_))) => Flash::notice("That call is already over."),
        Err(CallsError::Call(CallError::UnknownCall)) => return Err(Error::NotFound),
        Err(e) => return Err(calls_error(e)),
    };
    web::redirect_with_flash(&state, &ctx, "/admin/calls", flash).await
}

/// The call log's filters as typed in the form (kept as text to show them back).
#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(default)]
struct LogQuery {
    account: String,
    cause: String,
    from: String,
    to: String,
    page: i64,
}

impl LogQuery {
    fn filter(&self) -> Result<CallFilter, String> {
        let trimmed = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let day = |s: &str, name: &str| {
            trimmed(s)
                .map(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d"))
                .transpose()
                .map_err(|_| format!("{name} is not a day such as 2026-11-25"))
        };
        let account = trimmed(&self.account)
            .map(|a| AccountId::parse(&a))
            .transpose()
            .map_err(|_| "the account id is not a UUID".to_owned())?;
        let cause = trimmed(&self.cause);
        if let Some(c) = &cause {
            if c.len() > 32 || !c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                return Err("a cause is a name such as caller_hangup or orphaned".to_owned());
            }
        }
        Ok(CallFilter {
            account,
            from: day(&self.from, "from")?,
            to: day(&self.to, "to")?,
            cause,
            page: self.page.clamp(0, 100_000),
        })
    }

    fn href(&self, page: i64) -> String {
        let q = LogQuery {
            account: self.account.clone(),
            cause: self.cause.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            page,
        };
        format!(
            "/admin/calls/log?{}",
            serde_urlencoded::to_string(&q).unwrap_or_default()
        )
    }
}

#[derive(Template)]
#[template(path = "admin/call_log.html")]
struct LogPage {
    page: Page,
    calls: Vec<CallRow>,
    admin: bool,
    account: String,
    cause: String,
    from: String,
    to: String,
    error: String,
    prev_href: String,
    next_href: String,
}

async fn log(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<LogQuery>,
) -> Result<Response, Error> {
    let session = ctx.session.as_ref().ok_or(Error::Forbidden)?;
    let (calls, more, error, status) = match q.filter() {
        Ok(filter) => {
            let (calls, more) = listing::log_page(&state.pool, &filter)
                .await
                .map_err(calls_error)?;
            (calls, more, String::new(), StatusCode::OK)
        }
        Err(e) => (vec![], false, e, StatusCode::UNPROCESSABLE_ENTITY),
    };
    let page_no = q.page.clamp(0, 100_000);
    let t = LogPage {
        page: web::page(&state, &ctx, session, "Call log").await?,
        prev_href: if page_no > 0 {
            q.href(page_no - 1)
        } else {
            String::new()
        },
        next_href: if more { q.href(page_no + 1) } else { String::new() },
        calls,
        admin: true,
        account: q.account,
        cause: q.cause,
        from: q.from,
        to: q.to,
        error,
    };
    web::html(status, &t, None)
}

#[derive(Template)]
#[template(path = "admin/account.html")]
struct AccountPage {
    page: Page,
    account_id: AccountId,
    standing: String,
    banned: bool,
    available: String,
    reserved: String,
    live_calls: usize,
    /// Freeze reasons an admin may lift (the receivable one lifts itself).
    lifting: Vec<&'static str>,
}

fn reason_name(reason: FreezeReason) -> &'static str {
    match reason {
        FreezeReason::Fraud => "fraud",
        FreezeReason::Dispute => "dispute",
        FreezeReason::Admin => "admin",
        FreezeReason::Receivable => "receivable",
    }
}

async fn load_account(state: &AppState, id: &str) -> Result<(AccountId, Account), Error> {
    let account_id = AccountId::parse(id).map_err(|_| Error::NotFound)?;
    let account: Account = state
        .accounts
        .ledger()
        .load(&account_id.to_string())
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("{e}")))?;
    if account.id().is_none() {
        return Err(Error::NotFound);
    }
    Ok((account_id, account))
}

async fn account(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let session = ctx.session.as_ref().ok_or(Error::Forbidden)?;
    let (account_id, account) = load_account(&state, &id).await?;
    let reasons: Vec<&'static str> = account.frozen_reasons().iter().map(|r| reason_name(*r)).collect();
    let standing = if account.is_banned() {
        "banned".to_owned()
    } else if reasons.is_empty() {
        "open".to_owned()
    } else {
        format!("frozen ({})", reasons.join(", "))
    };
    let b = account.balances();
    let t = AccountPage {
        page: web::page(&state, &ctx, session, "Account").await?,
        account_id,
        standing,
        banned: account.is_banned(),
        available: account.money(b.available).to_string(),
        reserved: account.money(b.reserved).to_string(),
        live_calls: account.live_calls(),
        lifting: reasons.into_iter().filter(|r| *r != "receivable").collect(),
    };
    web::html(StatusCode::OK, &t, None)
}

#[derive(Debug, Deserialize)]
struct NoteForm {
    #[serde(default)]
    note: String,
    #[serde(default)]
    reason: String,
}

/// Runs an admin's Account command and goes back to the account page with what happened.
async fn account_command(
    state: &AppState,
    ctx: &Ctx,
    account_id: AccountId,
    command: AccountCommand,
    done: &str,
) -> Result<Response, Error> {
    let to = format!("/admin/accounts/{account_id}");
    let flash = match state.accounts.execute(account_id, Envelope::new(command)).await {
        Ok(_) => {
            tracing::info!(account_id = %account_id, admin = %actor(ctx)?, action = done, "admin changed an account");
            Flash::notice(format!("Account {done}."))
        }
        Err(CommandError::Rejected(
            e @ (AccountError::AlreadyFrozen(_)
            | AccountError::NotFrozenFor(_)
            | AccountError::AlreadyBanned
            | AccountError::MissingText(_)
            | AccountError::TextTooLong { .. }),
        )) => Flash::alert(format!("Nothing changed: {e}.")),
        Err(e) => return Err(Error::Internal(anyhow::anyhow!("{e}"))),
    };
    web::redirect_with_flash(state, ctx, &to, flash).await
}

async fn freeze(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(form): Form<NoteForm>,
) -> Result<Response, Error> {
    let (account_id, _) = load_account(&state, &id).await?;
    let command = AccountCommand::Freeze {
        reason: FreezeReason::Admin,
        actor: Some(actor(&ctx)?),
        note: form.note,
    };
    account_command(
        &state,
        &ctx,
        account_id,
        command,
        "frozen; its live calls are being ended",
    )
    .await
}

async fn unfreeze(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(form): Form<NoteForm>,
) -> Result<Response, Error> {
    let (account_id, _) = load_account(&state, &id).await?;
    let reason = match form.reason.as_str() {
        "fraud" => FreezeReason::Fraud,
        "dispute" => FreezeReason::Dispute,
        "admin" => FreezeReason::Admin,
        _ => {
            return Err(Error::BadRequest(
                "reason must be fraud, dispute or admin".to_owned(),
            ))
        }
    };
    let command = AccountCommand::Unfreeze {
        reason,
        actor: Some(actor(&ctx)?),
        note: form.note,
    };
    account_command(&state, &ctx, account_id, command, "unfrozen for that reason").await
}

async fn ban(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(form): Form<NoteForm>,
) -> Result<Response, Error> {
    let (account_id, _) = load_account(&state, &id).await?;
    let command = AccountCommand::Ban {
        actor: actor(&ctx)?,
        reason: form.reason,
    };
    account_command(
        &state,
        &ctx,
        account_id,
        command,
        "banned; its live calls are being ended",
    )
    .await
}
