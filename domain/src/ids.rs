//! Typed identifiers. A bare `Uuid` or `String` never crosses a module boundary.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id (UUIDv7). Ids are minted at the edge, never in aggregates.
            pub fn new_v7() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn parse(text: &str) -> Result<Self, IdError> {
                Uuid::parse_str(text).map(Self).map_err(|_| IdError::NotUuid {
                    kind: stringify!($name),
                    text: text.chars().take(64).collect(),
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(text: &str) -> Result<Self, IdError> {
                let ok = !text.is_empty()
                    && text.len() <= 255
                    && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if ok {
                    Ok(Self(text.to_owned()))
                } else {
                    Err(IdError::BadExternalId { kind: stringify!($name), text: text.chars().take(64).collect() })
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("`{text}` is not a valid {kind}: expected a UUID")]
    NotUuid { kind: &'static str, text: String },
    #[error("`{text}` is not a valid {kind}: use 1-255 letters, digits, `_` or `-`")]
    BadExternalId { kind: &'static str, text: String },
}

uuid_id!(
    /// A customer's wallet (the Account aggregate).
    AccountId
);
uuid_id!(
    /// One call, from `start` to its settlement.
    CallId
);
uuid_id!(
    /// One grant of credit held for a call.
    ReservationId
);
uuid_id!(
    /// A promotional grant, so the same promotion is not granted twice.
    GrantId
);
uuid_id!(
    /// A person acting on the system (an admin, or a service identity).
    ActorId
);
uuid_id!(
    /// One imported rate deck (its own event stream).
    DeckId
);
uuid_id!(
    /// A price quote shown to a caller; the call is charged by it.
    QuoteId
);
text_id!(
    /// A Stripe payment intent id (`pi_...`).
    PaymentId
);
text_id!(
    /// A Stripe dispute id (`dp_...`).
    DisputeId
);
text_id!(
    /// A Stripe charge id (`ch_...`): refunds and disputes name it.
    ChargeId
);
text_id!(
    /// A Stripe Checkout Session id (`cs_...`).
    CheckoutSessionId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_ids_are_validated() {
        assert!(PaymentId::parse("pi_3Nabc123").is_ok());
        assert!(PaymentId::parse("").is_err());
        assert!(PaymentId::parse("pi 1").is_err());
        assert!(serde_json::from_str::<PaymentId>("\"x;drop\"").is_err());
        assert!(AccountId::parse("nope")
            .unwrap_err()
            .to_string()
            .contains("AccountId"));
    }
}
