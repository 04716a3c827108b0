//! Given/when/then for RatePolicy: rules are validated, stored whole, and a no-op is refused.

use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::ids::ActorId;
use crate::rates::pricing::{PricingError, PricingRules};

type Test = TestFramework<RatePolicy>;

fn admin() -> ActorId {
    ActorId(Uuid::from_u128(0xAD))
}

fn block(country: Option<&str>, prefix: Option<&str>, reason: &str) -> BlockRule {
    BlockRule {
        country: country.map(str::to_owned),
        prefix: prefix.map(str::to_owned),
        reason: reason.to_owned(),
    }
}

#[test]
fn pricing_rules_are_validated_and_recorded_whole() {
    let rules = PricingRules {
        markup_bp: 4_000,
        ..PricingRules::default()
    };
    Test::with(())
        .given_no_previous_events()
        .when(PolicyCommand::SetPricingRules {
            rules: rules.clone(),
            actor: admin(),
        })
        .then_expect_events(vec![PolicyEvent::PricingRulesChanged {
            rules,
            actor: admin(),
        }]);
    Test::with(())
        .given_no_previous_events()
        .when(PolicyCommand::SetPricingRules {
            rules: PricingRules {
                rounding_step_micros: 0,
                ..PricingRules::default()
            },
            actor: admin(),
        })
        .then_expect_error(PolicyError::Pricing(PricingError::RoundingStep(0)));
}

#[test]
fn setting_the_rules_in_force_again_is_refused() {
    let rules = PricingRules::default();
    Test::with(())
        .given(vec![PolicyEvent::PricingRulesChanged {
            rules: rules.clone(),
            actor: admin(),
        }])
        .when(PolicyCommand::SetPricingRules {
            rules,
            actor: admin(),
        })
        .then_expect_error(PolicyError::Unchanged);
}

#[test]
fn block_lists_are_sorted_deduplicated_and_checked() {
    let a = block(Some("CU"), None, "not served");
    let b = block(None, Some("3516"), "fraud range");
    Test::with(())
        .given_no_previous_events()
        .when(PolicyCommand::SetBlockList {
            rules: vec![b.clone(), a.clone(), b.clone()],
            actor: admin(),
        })
        .then_expect_events(vec![PolicyEvent::BlockListChanged {
            rules: vec![b, a],
            actor: admin(),
        }]);
    Test::with(())
        .given_no_previous_events()
        .when(PolicyCommand::SetBlockList {
            rules: vec![block(None, None, "everything")],
            actor: admin(),
        })
        .then_expect_error(PolicyError::BadBlockRule {
            index: 0,
            message: "name either a country or a prefix".into(),
        });
    Test::with(())
        .given_no_previous_events()
        .when(PolicyCommand::SetBlockList {
            rules: vec![block(Some("gb"), None, "x")],
            actor: admin(),
        })
        .then_expect_error(PolicyError::BadBlockRule {
            index: 0,
            message: "country must be a two-letter code such as GB".into(),
        });
}
