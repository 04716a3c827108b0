//! Given/when/then for TopUpOffers, and the minor-unit conversions.

use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::ids::ActorId;
use crate::money::{Currency, Money};

type Test = TestFramework<TopUpOffers>;

fn admin() -> ActorId {
    ActorId(Uuid::from_u128(0xAD))
}

fn usd(units: i64) -> Money {
    Money::from_units(units, Currency::USD).unwrap()
}

fn defaults() -> Offers {
    Offers::defaults(Currency::USD).unwrap()
}

fn changed(version: u32, offers: Offers) -> OffersEvent {
    OffersEvent::TopUpOffersChanged {
        version,
        offers,
        actor: admin(),
    }
}

#[test]
fn the_first_set_is_version_one_and_each_change_the_next() {
    Test::with(())
        .given_no_previous_events()
        .when(OffersCommand::SetOffers {
            offers: defaults(),
            actor: admin(),
        })
        .then_expect_events(vec![changed(1, defaults())]);
    let mut cheaper = defaults();
    cheaper.tiers[0].price = usd(3);
    Test::with(())
        .given(vec![changed(1, defaults())])
        .when(OffersCommand::SetOffers {
            offers: cheaper.clone(),
            actor: admin(),
        })
        .then_expect_events(vec![changed(2, cheaper)]);
    Test::with(())
        .given(vec![changed(1, defaults())])
        .when(OffersCommand::SetOffers {
            offers: defaults(),
            actor: admin(),
        })
        .then_expect_error(OffersError::Unchanged);
}

#[test]
fn terms_name_the_version_they_were_bought_under() {
    let mut offers = TopUpOffers::default();
    offers.fold(&changed(1, defaults()));
    let bought = offers.terms(&Choice::Tier("25".into())).unwrap();
    assert_eq!(bought.terms_version, 1);
    assert_eq!(bought.bonus_bps, 500);
    assert_eq!(
        bought.bonus().unwrap(),
        Money::parse("1.25", Currency::USD).unwrap()
    );

    // The admin drops the bonus: new purchases get version 2, the one above keeps its terms.
    let mut changed_offers = defaults();
    changed_offers.tiers[2].bonus_bps = 0;
    for event in offers
        .decide(&OffersCommand::SetOffers {
            offers: changed_offers,
            actor: admin(),
        })
        .unwrap()
    {
        offers.fold(&event);
    }
    let later = offers.terms(&Choice::Tier("25".into())).unwrap();
    assert_eq!((later.terms_version, later.bonus_bps), (2, 0));
    assert_eq!((bought.terms_version, bought.bonus_bps), (1, 500));
}

#[test]
fn custom_amounts_stay_in_range_and_in_whole_cents() {
    let mut offers = TopUpOffers::default();
    assert_eq!(offers.terms(&Choice::Tier("10".into())), Err(OffersError::NotSet));
    offers.fold(&changed(1, defaults()));
    let terms = offers
        .terms(&Choice::Custom(Money::parse("12.34", Currency::USD).unwrap()))
        .unwrap();
    assert_eq!((terms.tier.as_str(), terms.bonus_bps), (CUSTOM_TIER, 0));
    assert!(matches!(
        offers.terms(&Choice::Custom(usd(501))),
        Err(OffersError::CustomOutOfRange { .. })
    ));
    assert!(matches!(
        offers.terms(&Choice::Custom(usd(4))),
        Err(OffersError::CustomOutOfRange { .. })
    ));
    assert!(matches!(
        offers.terms(&Choice::Custom(Money::parse("12.345", Currency::USD).unwrap())),
        Err(OffersError::NotWholeMinorUnits { .. })
    ));
    assert!(matches!(
        offers.terms(&Choice::Custom(Money::from_units(10, Currency::EUR).unwrap())),
        Err(OffersError::CustomOutOfRange { .. })
    ));
    assert_eq!(
        offers.terms(&Choice::Tier("7".into())),
        Err(OffersError::UnknownTier("7".into()))
    );
}

#[test]
fn bad_offer_sets_are_refused_with_the_reason() {
    let check = |edit: fn(&mut Offers), expected: fn(&OffersError) -> bool| {
        let mut offers = defaults();
        edit(&mut offers);
        let err = TopUpOffers::default()
            .decide(&OffersCommand::SetOffers {
                offers,
                actor: admin(),
            })
            .unwrap_err();
        assert!(expected(&err), "{err:?}");
    };
    check(
        |o| o.tiers[1].id = "custom".into(),
        |e| matches!(e, OffersError::BadTierId(_)),
    );
    check(
        |o| o.tiers[1].id = "5".into(),
        |e| matches!(e, OffersError::DuplicateTier(_)),
    );
    check(
        |o| o.tiers[0].price = usd(0),
        |e| matches!(e, OffersError::OutOfRange { .. }),
    );
    check(
        |o| o.tiers[0].price = Money::from_units(5, Currency::EUR).unwrap(),
        |e| matches!(e, OffersError::WrongCurrency { .. }),
    );
    check(
        |o| o.tiers[0].bonus_bps = 10_001,
        |e| matches!(e, OffersError::BonusTooLarge(_)),
    );
    check(
        |o| {
            o.custom = Some(CustomRange {
                min: usd(10),
                max: usd(5),
            })
        },
        |e| *e == OffersError::CustomRangeInverted,
    );
    check(
        |o| {
            o.tiers.clear();
            o.custom = None;
        },
        |e| *e == OffersError::Empty,
    );
}

#[test]
fn currency_is_data_minor_units_follow_it() {
    let yen = Currency::parse("JPY").unwrap();
    let offers = Offers::defaults(yen).unwrap();
    assert!(offers.validate().is_ok());
    assert_eq!(minor::to_minor(offers.tiers[1].price), Some(10));
    assert_eq!(minor::to_minor(usd(10)), Some(1_000));
    assert_eq!(
        minor::to_minor(Money::parse("0.001", Currency::USD).unwrap()),
        None
    );
    let bhd = Currency::parse("BHD").unwrap();
    assert_eq!(
        minor::from_minor(1_005, bhd).unwrap(),
        Money::parse("1.005", bhd).unwrap()
    );
    assert_eq!(minor::display(usd(10)), "10.00 USD");
    assert_eq!(
        minor::display(Money::parse("-0.125", Currency::USD).unwrap()),
        "-0.13 USD"
    );
    assert_eq!(minor::display(Money::from_units(500, yen).unwrap()), "500 JPY");
    assert!(minor::from_minor(i64::MAX, Currency::USD).is_err());
}
