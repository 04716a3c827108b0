//! `Money`: an exact count of micro-units (1 unit = 1,000,000) of one currency, in an `i64`.
//!
//! Every operation is checked: overflow and mixing currencies are errors, never wraps or panics.
//! This module must never convert money to or from a float.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Micro-units in one whole unit of any currency.
pub const MICROS_PER_UNIT: i64 = 1_000_000;
const FRACTION_DIGITS: usize = 6;

/// An ISO 4217 currency code: three ASCII capital letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    pub const USD: Currency = Currency(*b"USD");
    pub const EUR: Currency = Currency(*b"EUR");

    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        let bytes = code.as_bytes();
        match bytes {
            [a, b, c] if bytes.iter().all(u8::is_ascii_uppercase) => Ok(Currency([*a, *b, *c])),
            _ => Err(MoneyError::BadCurrency(code.chars().take(16).collect())),
        }
    }

    /// Decimal places of the currency's minor unit as card processors count it (ISO 4217 and
    /// Stripe's lists): 0 for JPY, KRW and the other zero-decimal currencies, 3 for BHD, JOD,
    /// KWD, OMR and TND, 2 for the rest.
    pub fn minor_exponent(&self) -> u32 {
        const ZERO: &[&str] = &[
            "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
            "XAF", "XOF", "XPF",
        ];
        const THREE: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];
        let code = self.as_str();
        if ZERO.contains(&code) {
            0
        } else if THREE.contains(&code) {
            3
        } else {
            2
        }
    }

    pub fn as_str(&self) -> &str {
        // Constructed only from three ASCII capitals.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("cannot combine {left} with {right}: amounts in different currencies")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("amount out of range: the result does not fit in 64-bit micro-units")]
    Overflow,
    #[error("`{0}` is not a currency code; use three capital letters such as USD")]
    BadCurrency(String),
    #[error("{0}")]
    Parse(#[from] ParseMoneyError),
}

/// Why a decimal string is not an exact amount. Each message says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseMoneyError {
    #[error("amount is empty; write a number such as 0.0135")]
    Empty,
    #[error("`{0}` uses a comma; use a dot as decimal separator (for example 0.013)")]
    Comma(String),
    #[error("`{0}` is not a number; write digits with an optional dot, such as 0.0135")]
    NotANumber(String),
    #[error("`{0}` has more than 6 decimal places; amounts are exact to the micro-unit (0.000001)")]
    TooPrecise(String),
    #[error("`{0}` is too large; amounts must stay below 9,223,372,036,854 units")]
    TooLarge(String),
}

/// An exact amount of money.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    micros: i64,
    currency: Currency,
}

impl Money {
    pub const fn from_micros(micros: i64, currency: Currency) -> Money {
        Money { micros, currency }
    }

    pub const fn zero(currency: Currency) -> Money {
        Money { micros: 0, currency }
    }

    /// Whole units, e.g. `Money::from_units(5, USD)` is 5.000000 USD.
    pub fn from_units(units: i64, currency: Currency) -> Result<Money, MoneyError> {
        units
            .checked_mul(MICROS_PER_UNIT)
            .map(|micros| Money { micros, currency })
            .ok_or(MoneyError::Overflow)
    }

    /// An amount in the currency's minor unit (Stripe's `amount`: cents for USD, yen for JPY),
    /// converted exactly with [`Currency::minor_exponent`].
    pub fn from_minor(minor: i64, currency: Currency) -> Result<Money, MoneyError> {
        let per_minor = 10i64.pow(6 - currency.minor_exponent());
        minor
            .checked_mul(per_minor)
            .filter(|m| *m != i64::MIN)
            .map(|micros| Money { micros, currency })
            .ok_or(MoneyError::Overflow)
    }

    /// Parses an exact decimal string (`"0.0135"`, `"-2"`, `"10.5"`). Refuses anything that
    /// would need guessing: commas, exponents, currency symbols, more than six decimals.
    pub fn parse(text: &str, currency: Currency) -> Result<Money, ParseMoneyError> {
        parse_micros(text).map(|micros| Money { micros, currency })
    }

    pub const fn micros(&self) -> i64 {
        self.micros
    }

    pub const fn currency(&self) -> Currency {
        self.currency
    }

    pub const fn is_zero(&self) -> bool {
        self.micros == 0
    }

    pub const fn is_negative(&self) -> bool {
        self.micros < 0
    }

    pub const fn is_positive(&self) -> bool {
        self.micros > 0
    }

    /// `i64::MIN` has no positive counterpart (and no decimal form that parses back), so
    /// checked arithmetic treats it as out of range: every result can be negated and stored.
    fn in_range(micros: i64, currency: Currency) -> Result<Money, MoneyError> {
        if micros == i64::MIN {
            Err(MoneyError::Overflow)
        } else {
            Ok(Money { micros, currency })
        }
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        let micros = self
            .micros
            .checked_add(other.micros)
            .ok_or(MoneyError::Overflow)?;
        Money::in_range(micros, self.currency)
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        let micros = self
            .micros
            .checked_sub(other.micros)
            .ok_or(MoneyError::Overflow)?;
        Money::in_range(micros, self.currency)
    }

    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        let micros = self.micros.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Money { micros, ..self })
    }

    /// The smaller of two amounts of the same currency.
    pub fn min(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        Ok(if other.micros < self.micros { other } else { self })
    }

    /// `self × numerator ÷ denominator`, rounded down, computed in 128 bits. Used for exact
    /// proportional shares (a refund's part of a bonus); `denominator` must be positive.
    pub fn mul_div_floor(self, numerator: i64, denominator: i64) -> Result<Money, MoneyError> {
        if denominator <= 0 {
            return Err(MoneyError::Overflow);
        }
        let product = i128::from(self.micros) * i128::from(numerator);
        let quotient = product.div_euclid(i128::from(denominator));
        let micros = i64::try_from(quotient).map_err(|_| MoneyError::Overflow)?;
        Money::in_range(micros, self.currency)
    }

    /// The decimal amount with all six places, e.g. `"0.013500"`.
    pub fn amount_string(&self) -> String {
        let sign = if self.micros < 0 { "-" } else { "" };
        let abs = self.micros.unsigned_abs();
        let unit = MICROS_PER_UNIT.unsigned_abs();
        format!("{sign}{}.{:06}", abs / unit, abs % unit)
    }
}

fn parse_micros(raw: &str) -> Result<i64, ParseMoneyError> {
    if raw.is_empty() {
        return Err(ParseMoneyError::Empty);
    }
    let echo = || raw.chars().take(40).collect::<String>();
    if raw.contains(',') {
        return Err(ParseMoneyError::Comma(echo()));
    }
    let (negative, unsigned) = match raw.as_bytes()[0] {
        b'-' => (true, &raw[1..]),
        b'+' => (false, &raw[1..]),
        _ => (false, raw),
    };
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((w, f)) => (w, f),
        None => (unsigned, ""),
    };
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits_only(whole) || !digits_only(fraction) {
        return Err(ParseMoneyError::NotANumber(echo()));
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > FRACTION_DIGITS {
        return Err(ParseMoneyError::TooPrecise(echo()));
    }
    let too_large = || ParseMoneyError::TooLarge(echo());
    let whole_value: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let mut fraction_value: i64 = 0;
    for (i, b) in fraction.bytes().enumerate() {
        fraction_value += i64::from(b - b'0') * 10_i64.pow((FRACTION_DIGITS - 1 - i) as u32);
    }
    let magnitude = whole_value
        .checked_mul(MICROS_PER_UNIT)
        .and_then(|m| m.checked_add(fraction_value))
        .ok_or_else(too_large)?;
    Ok(if negative { -magnitude } else { magnitude })
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_string(), self.currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_string(), self.currency)
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

/// The JSON form ARCHITECTURE.md fixes: `{"amount": "0.013500", "currency": "USD"}`.
#[derive(Serialize, Deserialize)]
struct MoneyJson {
    amount: String,
    currency: Currency,
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        MoneyJson {
            amount: self.amount_string(),
            currency: self.currency,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = MoneyJson::deserialize(d)?;
        Money::parse(&json.amount, json.currency).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const USD: Currency = Currency::USD;

    #[test]
    fn parses_exact_decimals() {
        assert_eq!(Money::parse("0.0135", USD).unwrap().micros(), 13_500);
        assert_eq!(Money::parse("10", USD).unwrap().micros(), 10_000_000);
        assert_eq!(Money::parse("-2.5", USD).unwrap().micros(), -2_500_000);
        assert_eq!(Money::parse("0.000001", USD).unwrap().micros(), 1);
        assert_eq!(Money::parse(".5", USD).unwrap().micros(), 500_000);
        assert_eq!(Money::parse("1.1000000", USD).unwrap().micros(), 1_100_000);
    }

    #[test]
    fn refuses_ambiguous_or_inexact_input_with_advice() {
        let err = Money::parse("0,013", USD).unwrap_err();
        assert!(matches!(err, ParseMoneyError::Comma(_)));
        assert!(
            err.to_string().contains("use a dot as decimal separator"),
            "{err}"
        );
        assert!(matches!(
            Money::parse("0.0000001", USD),
            Err(ParseMoneyError::TooPrecise(_))
        ));
        for bad in ["", "abc", "1e-3", "$1", " 1", "1.2.3", ".", "-", "1_000"] {
            assert!(Money::parse(bad, USD).is_err(), "{bad:?} should be refused");
        }
        assert!(matches!(
            Money::parse("99999999999999999", USD),
            Err(ParseMoneyError::TooLarge(_))
        ));
    }

    #[test]
    fn minor_units_convert_by_the_currencys_exponent() {
        let usd = Money::from_minor(1_050, Currency::USD).unwrap();
        assert_eq!(usd.micros(), 10_500_000);
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(Money::from_minor(500, jpy).unwrap().micros(), 500_000_000);
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(Money::from_minor(1_234, kwd).unwrap().micros(), 1_234_000);
        assert_eq!(
            Money::from_minor(i64::MAX, Currency::USD),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn mixing_currencies_is_an_error() {
        let a = Money::from_micros(1, USD);
        let b = Money::from_micros(1, Currency::EUR);
        assert!(matches!(
            a.checked_add(b),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
        assert_eq!(
            Money::from_micros(i64::MAX, USD).checked_add(a),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn json_is_a_decimal_string_with_currency() {
        let m = Money::from_micros(13_500, USD);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"amount":"0.013500","currency":"USD"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m);
        assert!(serde_json::from_str::<Money>(r#"{"amount":"0,1","currency":"USD"}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"amount":"1","currency":"usd"}"#).is_err());
    }

    proptest! {
        #[test]
        fn display_parse_round_trips(micros in any::<i64>().prop_filter("not MIN", |m| *m != i64::MIN)) {
            let m = Money::from_micros(micros, USD);
            prop_assert_eq!(Money::parse(&m.amount_string(), USD).unwrap(), m);
        }

        #[test]
        fn mul_div_floor_never_exceeds_the_whole(amount in 0i64..1_000_000_000_000, part in 0i64..1_000_000, whole in 1i64..1_000_000) {
            prop_assume!(part <= whole);
            let share = Money::from_micros(amount, USD).mul_div_floor(part, whole).unwrap();
            prop_assert!(share.micros() <= amount && share.micros() >= 0);
        }
    }
}
