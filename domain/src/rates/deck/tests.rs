//! Given/when/then for the RateDeck aggregate: chunks in order, one summary that must agree
//! with the chunks, and activation refused for unfinished, empty or dirty decks unless the
//! admin chooses to skip bad rows.

use chrono::{TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::ids::{ActorId, DeckId};
use crate::money::{Currency, Money};
use crate::rates::{DeckFormat, DeckRow};
use crate::rating::BillingPlan;

type Test = TestFramework<RateDeck>;

fn deck() -> DeckId {
    DeckId(Uuid::from_u128(0xDEC))
}

fn admin() -> ActorId {
    ActorId(Uuid::from_u128(0xAD))
}

fn row(line: u64, currency: Currency) -> DeckRow {
    DeckRow {
        line,
        iso: "GB".into(),
        country: "United Kingdom".into(),
        description: "Mobile".into(),
        destination_prefixes: vec![format!("447{line}")],
        origination_prefixes: vec![],
        cost_per_minute: Money::from_micros(13_500, currency),
        plan: BillingPlan::per_second(Money::zero(currency)),
    }
}

fn rows(from: u64, n: u64) -> Vec<DeckRow> {
    (from..from + n).map(|l| row(l, Currency::USD)).collect()
}

fn chunk(n: u32, rows: Vec<DeckRow>) -> DeckEvent {
    DeckEvent::RateDeckRowsImported {
        deck_id: deck(),
        chunk: n,
        rows,
    }
}

fn summary(row_count: u64, error_count: u64) -> DeckSummary {
    DeckSummary {
        file_name: "twilio.csv".into(),
        sha256: "ab".repeat(32),
        format: DeckFormat::Twilio,
        currency: Currency::USD,
        row_count,
        error_count,
        problems: (0..error_count.min(3))
            .map(|i| RowProblem {
                line: 100 + i,
                column: Some("Price / min".into()),
                message: "price is empty".into(),
            })
            .collect(),
        effective_from: Utc
            .with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
            .single()
            .expect("valid time"),
        imported_by: admin(),
    }
}

fn imported(row_count: u64, error_count: u64) -> DeckEvent {
    DeckEvent::RateDeckImported {
        deck_id: deck(),
        summary: summary(row_count, error_count),
    }
}

fn activate(skip_bad_rows: bool) -> DeckCommand {
    DeckCommand::Activate {
        deck_id: deck(),
        actor: admin(),
        skip_bad_rows,
    }
}

#[test]
fn chunks_arrive_in_order() {
    Test::with(())
        .given(vec![chunk(0, rows(2, 3))])
        .when(DeckCommand::ImportRows {
            deck_id: deck(),
            chunk: 1,
            rows: rows(5, 2),
        })
        .then_expect_events(vec![chunk(1, rows(5, 2))]);
    Test::with(())
        .given(vec![chunk(0, rows(2, 3))])
        .when(DeckCommand::ImportRows {
            deck_id: deck(),
            chunk: 0,
            rows: rows(2, 3),
        })
        .then_expect_error(RateDeckError::ChunkOutOfOrder { expected: 1, got: 0 });
    Test::with(())
        .given_no_previous_events()
        .when(DeckCommand::ImportRows {
            deck_id: deck(),
            chunk: 2,
            rows: rows(2, 3),
        })
        .then_expect_error(RateDeckError::ChunkOutOfOrder { expected: 0, got: 2 });
}

#[test]
fn a_chunk_holds_at_most_five_thousand_rows() {
    Test::with(())
        .given_no_previous_events()
        .when(DeckCommand::ImportRows {
            deck_id: deck(),
            chunk: 0,
            rows: rows(2, MAX_CHUNK_ROWS as u64 + 1),
        })
        .then_expect_error(RateDeckError::ChunkSize(MAX_CHUNK_ROWS + 1));
    Test::with(())
        .given_no_previous_events()
        .when(DeckCommand::ImportRows {
            deck_id: deck(),
            chunk: 0,
            rows: vec![],
        })
        .then_expect_error(RateDeckError::ChunkSize(0));
}

#[test]
fn one_deck_has_one_currency() {
    let mut mixed = rows(2, 2);
    mixed.push(row(4, Currency::EUR));
    Test::with(())
        .given_no_previous_events()
        .when(DeckCommand::ImportRows {
            deck_id: deck(),
            chunk: 0,
            rows: mixed,
        })
        .then_expect_error(RateDeckError::MixedCurrency {
            line: 4,
            expected: Currency::USD,
            got: Currency::EUR,
        });
}

#[test]
fn the_summary_must_count_the_rows_that_arrived() {
    Test::with(())
        .given(vec![chunk(0, rows(2, 3))])
        .when(DeckCommand::FinishImport {
            deck_id: deck(),
            summary: summary(4, 0),
        })
        .then_expect_error(RateDeckError::RowCountMismatch {
            claimed: 4,
            imported: 3,
        });
    Test::with(())
        .given(vec![chunk(0, rows(2, 3))])
        .when(DeckCommand::FinishImport {
            deck_id: deck(),
            summary: summary(3, 0),
        })
        .then_expect_events(vec![imported(3, 0)]);
}

#[test]
fn a_finished_deck_takes_no_more_rows_and_no_second_summary() {
    let already = RateDeckError::AlreadyImported {
        file_name: "twilio.csv".into(),
    };
    Test::with(())
        .given(vec![chunk(0, rows(2, 3)), imported(3, 0)])
        .when(DeckCommand::ImportRows {
            deck_id: deck(),
            chunk: 1,
            rows: rows(5, 1),
        })
        .then_expect_error(already.clone());
    Test::with(())
        .given(vec![chunk(0, rows(2, 3)), imported(3, 0)])
        .when(DeckCommand::FinishImport {
            deck_id: deck(),
            summary: summary(3, 0),
        })
        .then_expect_error(already);
}

#[test]
fn activation_needs_a_finished_deck_with_rows() {
    Test::with(())
        .given(vec![chunk(0, rows(2, 3))])
        .when(activate(false))
        .then_expect_error(RateDeckError::NotImported);
    Test::with(())
        .given(vec![imported(0, 2)])
        .when(activate(true))
        .then_expect_error(RateDeckError::Empty);
}

#[test]
fn a_deck_with_bad_rows_is_activated_only_when_the_admin_skips_them() {
    Test::with(())
        .given(vec![chunk(0, rows(2, 3)), imported(3, 2)])
        .when(activate(false))
        .then_expect_error(RateDeckError::HasBadRows(2));
    Test::with(())
        .given(vec![chunk(0, rows(2, 3)), imported(3, 2)])
        .when(activate(true))
        .then_expect_events(vec![DeckEvent::RateDeckActivated {
            deck_id: deck(),
            activated_by: admin(),
            skipped_rows: 2,
        }]);
}

#[test]
fn a_clean_deck_can_be_activated_again_to_roll_back_to_it() {
    let activated = DeckEvent::RateDeckActivated {
        deck_id: deck(),
        activated_by: admin(),
        skipped_rows: 0,
    };
    Test::with(())
        .given(vec![chunk(0, rows(2, 3)), imported(3, 0), activated.clone()])
        .when(activate(false))
        .then_expect_events(vec![activated]);
}

#[test]
fn the_same_bytes_give_the_same_deck_id_and_other_bytes_another() {
    let a = deck_id_for_sha256(&[7u8; 32]);
    assert_eq!(a, deck_id_for_sha256(&[7u8; 32]));
    assert_ne!(a, deck_id_for_sha256(&[8u8; 32]));
    assert_eq!(a.0.get_version_num(), 8);
}
