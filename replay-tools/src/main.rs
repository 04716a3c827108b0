//! `ringledger-replay`: the operator CLI. Finance audits an account to any instant and traces
//! every line to its event; admins check and rebuild projections blue/green; operators look at
//! the job queues; admins import, export and activate rate decks. Reads the database named by
//! `DATABASE_URL`; writes events only through the api's command services (`rates`).

mod commands;
mod output;

use clap::{Parser, Subcommand};
use output::Format;

#[derive(Parser)]
#[command(
    name = "ringledger-replay",
    version,
    about = "Audit, verify and rebuild RingLedger's read models from the event log"
)]
pub struct Cli {
    /// The RingLedger database (in development: the URL `scripts/dev` prints).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table, global = true)]
    format: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// An account's balances and statement as of an instant, each line traced to its event;
    /// computed by folding the stream and from the statement projection, which must agree.
    Audit {
        /// The account id (UUID).
        account: String,
        /// The instant, RFC 3339 (e.g. 2026-11-25T10:00:00Z); default: now.
        #[arg(long)]
        as_of: Option<String>,
    },
    /// An account's raw event stream.
    Events { account: String },
    /// An account's statement lines between two instants.
    Statement {
        account: String,
        /// From this instant (RFC 3339), inclusive.
        #[arg(long)]
        from: Option<String>,
        /// To this instant (RFC 3339), inclusive.
        #[arg(long)]
        to: Option<String>,
    },
    /// Rebuild projections into scratch tables and diff them with the live ones; exits 1 and
    /// prints the differing rows on any mismatch.
    Verify {
        /// Projections to verify (default: all).
        projections: Vec<String>,
        /// Differing rows shown per table and side.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Blue/green rebuild: build a new version from position 0 while the live one serves,
    /// catch up, compare, and switch atomically. The old version is kept until dropped.
    Rebuild {
        projection: String,
        /// Build and compare, but leave the live version in place.
        #[arg(long)]
        no_switch: bool,
    },
    /// Drop an old (retired) version of a projection.
    Drop { projection: String, version: i32 },
    /// Each projection version's state, position and how far behind the log it is.
    Status,
    /// Job queues: depths and dead letters; `jobs retry ID` puts a dead job back.
    Jobs {
        #[command(subcommand)]
        action: Option<JobsAction>,
    },
    /// Rate decks: import, export, activate, list, quote; corrections, re-rating and what-if.
    Rates {
        #[command(subcommand)]
        action: RatesAction,
    },
    /// Fraud rules: `fraud what-if` re-runs them over history without writing anything.
    Fraud {
        #[command(subcommand)]
        action: FraudAction,
    },
}

#[derive(Subcommand)]
pub enum FraudAction {
    /// Which calls the fraud rules would flag and which accounts they would freeze, and why,
    /// over the log (optionally between two instants), with overridden thresholds or ranges.
    /// Reads only: writes no event, read model or checkpoint.
    WhatIf {
        /// Calls placed from this instant (RFC 3339), inclusive.
        #[arg(long)]
        from: Option<String>,
        /// Calls placed up to this instant (RFC 3339), inclusive; later events are not read.
        #[arg(long)]
        to: Option<String>,
        /// The account score that freezes (overrides `freeze_score`).
        #[arg(long)]
        threshold: Option<u32>,
        /// Override a rule threshold, e.g. `--set burst_min_calls=3` (names in docs/fraud.md);
        /// repeatable.
        #[arg(long, value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Only show hits of this rule (repeatable), e.g. `--only high_risk_range`.
        #[arg(long, value_name = "RULE")]
        only: Vec<String>,
        /// Use the ranges in this CSV (`prefix,label[,source]` with a header) instead of the
        /// admin-edited list.
        #[arg(long, value_name = "FILE")]
        ranges: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum RatesAction {
    /// Import a rate deck file (a durable job; progress shown). The same file twice is
    /// recognised by its SHA-256 and not imported again.
    Import {
        file: std::path::PathBuf,
        /// The file's format (default: detected from the header).
        #[arg(long = "deck-format", value_enum)]
        deck_format: Option<DeckFormatArg>,
        /// The deck's currency.
        #[arg(long, default_value = "USD")]
        currency: String,
        /// When the deck's prices apply from (RFC 3339; default now).
        #[arg(long)]
        effective_from: Option<String>,
        /// Who is importing (an admin's id; default: the operator CLI).
        #[arg(long, env = "RINGLEDGER_ACTOR")]
        actor: Option<String>,
        /// Activate the deck once imported.
        #[arg(long)]
        activate: bool,
        /// With --activate: use the deck even though some rows were refused.
        #[arg(long)]
        skip_bad_rows: bool,
    },
    /// Make an imported deck the one quotes and calls use.
    Activate {
        deck: String,
        #[arg(long, env = "RINGLEDGER_ACTOR")]
        actor: Option<String>,
        /// Use the deck even though some of its rows were refused (they are listed by import).
        #[arg(long)]
        skip_bad_rows: bool,
    },
    /// Write a deck back as a file (default: the active deck, generic format, to stdout).
    Export {
        deck: Option<String>,
        #[arg(long = "as", value_enum, default_value_t = DeckFormatArg::Generic)]
        r#as: DeckFormatArg,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
    /// The decks (default), or one deck's rows with cost, selling price and margin.
    List {
        #[arg(long)]
        deck: Option<String>,
        /// Only this country (two-letter code as the deck spells it).
        #[arg(long)]
        country: Option<String>,
    },
    /// What calling a number costs: destination, cost, selling rate, margin and, for an
    /// account, the longest call its credit buys (the quote is stored like the api's).
    Quote {
        number: String,
        /// Region for numbers in national format (e.g. GB).
        #[arg(long)]
        region: Option<String>,
        /// The account to quote for (its available credit sets the maximum duration).
        #[arg(long)]
        account: Option<String>,
    },
    /// Correct the rate of one destination prefix over a range of time: records
    /// `RatesCorrected`, re-rates every ended call placed in the range on that prefix (our cost
    /// always; the customer is refunded when the new price is lower, never charged more) and
    /// prints the summary. Quotes in the range use the corrected price at once.
    Correct {
        /// A destination prefix of the active deck, as calls matched it (e.g. 4477).
        #[arg(long)]
        prefix: String,
        /// The corrected cost to us per minute, in the deck's currency (e.g. 0.0200).
        #[arg(long)]
        cost: String,
        /// The corrected selling rate per minute (default: the pricing rules applied to --cost).
        #[arg(long)]
        selling: Option<String>,
        /// Calls placed from this instant (RFC 3339), inclusive.
        #[arg(long)]
        from: String,
        /// Calls placed before this instant (RFC 3339); default: open-ended while the deck is active.
        #[arg(long)]
        to: Option<String>,
        /// Why (shown in the audit trail and on the customer's statement).
        #[arg(long)]
        reason: String,
        /// Who is correcting (an admin's id; default: the operator CLI).
        #[arg(long, env = "RINGLEDGER_ACTOR")]
        actor: Option<String>,
        /// An idempotency key: the same correction sent twice with one key is recorded once.
        #[arg(long)]
        key: Option<String>,
    },
    /// Run or resume the re-rating of a correction here (idempotent: safe to repeat).
    Rerate {
        /// The correction, `rc-N` or `N`.
        correction: String,
    },
    /// The corrections made, with their ranges, authors and re-rating progress.
    Corrections,
    /// Price the ended calls of a period against a draft deck, as a correction to its rates
    /// would, and print per-account and per-country differences as CSV. Writes nothing.
    WhatIf {
        /// The draft deck file (Twilio or generic format).
        draft: std::path::PathBuf,
        /// Calls placed from this instant (RFC 3339), inclusive.
        #[arg(long)]
        from: String,
        /// Calls placed before this instant (RFC 3339).
        #[arg(long)]
        to: String,
        /// The draft's currency.
        #[arg(long, default_value = "USD")]
        currency: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeckFormatArg {
    Twilio,
    Generic,
}

impl From<DeckFormatArg> for ringledger_domain::rates::DeckFormat {
    fn from(f: DeckFormatArg) -> Self {
        match f {
            DeckFormatArg::Twilio => ringledger_domain::rates::DeckFormat::Twilio,
            DeckFormatArg::Generic => ringledger_domain::rates::DeckFormat::Generic,
        }
    }
}

#[derive(Subcommand)]
pub enum JobsAction {
    /// Queue depths by status (the default).
    Depths,
    /// The dead-letter list with each job's last error.
    Dead {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Put a dead job back on its queue, attempts reset.
    Retry { id: i64 },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    match commands::run(cli).await {
        Ok(code) => std::process::exit(code),
        // Output piped into `head` and closed early is not a failure.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
