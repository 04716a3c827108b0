//! Small value types of a call: the media node's id, the dialled number (in a command only,
//! never in an event), the destination sealed with the account's key, causes and quality.
//! A full number must never reach a log, an error message or an event in the clear.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A media node's id as it registers (`media-1`): 1-64 of `[A-Za-z0-9_-]`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("`{0}` is not a media node id: use 1-64 letters, digits, `_` or `-`")]
    NodeId(String),
    #[error("a dialled number is 1-15 digits, country code first, without `+`")]
    Dialled,
    #[error("the sealed destination is not valid base64")]
    Base64,
    #[error("the sealed destination is empty or longer than {0} bytes")]
    SealedSize(usize),
}

impl NodeId {
    pub fn parse(text: &str) -> Result<NodeId, ValueError> {
        let ok = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(NodeId(text.to_owned()))
        } else {
            Err(ValueError::NodeId(text.chars().take(64).collect()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NodeId {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        NodeId::parse(&s)
    }
}

impl From<NodeId> for String {
    fn from(id: NodeId) -> String {
        id.0
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The number dialled, as E.164 digits (country code first, no `+`), e.g. from
/// `E164::digits()`. Used by `start` to check the quote; never stored, and its `Debug` masks it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DialledNumber(String);

impl DialledNumber {
    pub fn parse(digits: &str) -> Result<DialledNumber, ValueError> {
        if (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(DialledNumber(digits.to_owned()))
        } else {
            Err(ValueError::Dialled)
        }
    }
    pub fn digits(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DialledNumber {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        DialledNumber::parse(&s)
    }
}

impl From<DialledNumber> for String {
    fn from(n: DialledNumber) -> String {
        n.0
    }
}

impl fmt::Debug for DialledNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.len().min(4);
        write!(f, "DialledNumber(+{}…)", &self.0[..shown])
    }
}

/// The destination number encrypted by the api with the account's key (kept outside the log;
/// deleting the key shreds every number). `key_version` says which of the account's keys.
/// In JSON the ciphertext is standard base64 with padding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedDestination {
    pub key_version: u32,
    #[serde(serialize_with = "to_base64", deserialize_with = "from_base64")]
    pub ciphertext: Vec<u8>,
}

/// Nonce, number and tag fit easily; anything longer is not a sealed phone number.
pub const MAX_SEALED_BYTES: usize = 256;

impl SealedDestination {
    pub fn new(key_version: u32, ciphertext: Vec<u8>) -> Result<SealedDestination, ValueError> {
        if ciphertext.is_empty() || ciphertext.len() > MAX_SEALED_BYTES {
            return Err(ValueError::SealedSize(MAX_SEALED_BYTES));
        }
        Ok(SealedDestination {
            key_version,
            ciphertext,
        })
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4); small enough not to need a dependency.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn base64_decode(text: &str) -> Result<Vec<u8>, ValueError> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return Err(ValueError::Base64);
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let quads = bytes.len() / 4;
    for (q, quad) in bytes.chunks(4).enumerate() {
        let pad = quad.iter().rev().take_while(|b| **b == b'=').count();
        if pad > 2 || (pad > 0 && q + 1 != quads) {
            return Err(ValueError::Base64);
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            let v = ALPHABET.iter().position(|a| *a == c).ok_or(ValueError::Base64)?;
            n = (n << 6) | v as u32;
        }
        n <<= 6 * pad as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Ok(out)
}

fn to_base64<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&base64_encode(bytes))
}

fn from_base64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(d)?;
    base64_decode(&text).map_err(serde::de::Error::custom)
}

/// How the media node saw one leg of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegQuality {
    pub rtt_ms: u32,
    pub jitter_ms: u32,
    /// Packets lost per thousand.
    pub loss_per_mille: u16,
}

/// Both legs: the browser's WebRTC leg and the RTP leg toward the trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallQuality {
    pub browser: LegQuality,
    pub trunk: LegQuality,
}

/// Why an answered call ended (the `stop` report's `cause`, or the sweeper).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndCause {
    CallerHangup,
    CalleeHangup,
    /// The final grant was used up.
    FinalUnit,
    /// The api was unreachable until the grant expired.
    GrantExpired,
    HangupRequested,
    MaxDuration,
    MediaError,
    /// No report for twice the grant validity: charged for the seconds last reported. The
    /// api's own cause (a node may not report it); stored as `swept` before it was renamed.
    #[serde(alias = "swept")]
    Orphaned,
    /// The api asked the node to hang up because the account was frozen (api's own cause).
    AccountFrozen,
    /// The api asked the node to hang up because the account was banned (api's own cause).
    AccountBanned,
    /// An admin ended the call (api's own cause).
    Admin,
}

impl EndCause {
    /// Causes only the api records: a media node reporting one of these is refused.
    pub fn is_api_only(self) -> bool {
        matches!(
            self,
            EndCause::Orphaned | EndCause::AccountFrozen | EndCause::AccountBanned | EndCause::Admin
        )
    }
}

impl From<HangupReason> for EndCause {
    /// A call the api asked to end ends with the hangup's reason.
    fn from(reason: HangupReason) -> EndCause {
        match reason {
            HangupReason::FinalUnit => EndCause::FinalUnit,
            HangupReason::MaxDuration => EndCause::MaxDuration,
            HangupReason::AccountFrozen => EndCause::AccountFrozen,
            HangupReason::AccountBanned => EndCause::AccountBanned,
            HangupReason::Admin => EndCause::Admin,
        }
    }
}

/// Why a call failed before it was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailCause {
    Busy,
    NoAnswer,
    RingTimeout,
    Rejected,
    Unreachable,
    CallerCancelled,
    TrunkError,
    /// The first grant could not be reserved (the account's credit or state changed).
    NoCredit,
    /// The account refused the first grant: as many calls as allowed already hold credit.
    ConcurrentCalls,
    /// The account refused the first grant: today's spend reached the daily cap.
    DailySpendCap,
    /// The account was frozen or banned between the checks and the first grant.
    AccountFrozen,
    AccountBanned,
    /// Silent past the ring limit and twice the grant validity; stored as `swept` before.
    #[serde(alias = "swept")]
    Orphaned,
    /// Ended by the api's hangup before it was answered.
    HangupRequested,
}

impl From<FinalUnitReason> for FailCause {
    /// Why a call whose first grant was refused failed.
    fn from(reason: FinalUnitReason) -> FailCause {
        match reason {
            FinalUnitReason::ConcurrentCalls => FailCause::ConcurrentCalls,
            FinalUnitReason::DailySpendCap => FailCause::DailySpendCap,
            FinalUnitReason::AccountFrozen => FailCause::AccountFrozen,
            FinalUnitReason::AccountBanned => FailCause::AccountBanned,
            FinalUnitReason::CreditExhausted
            | FinalUnitReason::MaxDuration
            | FinalUnitReason::HangupRequested => FailCause::NoCredit,
        }
    }
}

/// Why no further grant will come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalUnitReason {
    /// The account could not fund the whole grant asked for.
    CreditExhausted,
    /// The call's grants reached what the daily spend cap left when it started.
    DailySpendCap,
    /// The ceiling reached the maximum call duration.
    MaxDuration,
    AccountFrozen,
    AccountBanned,
    HangupRequested,
    /// The account refused a first grant: its concurrent-calls limit is reached.
    ConcurrentCalls,
}

/// Why the api asks the media node to end a call now (the `hangup` request's `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupReason {
    /// Talk went past a final grant.
    FinalUnit,
    MaxDuration,
    AccountFrozen,
    AccountBanned,
    Admin,
}

impl HangupReason {
    /// The protocol's name (the `hangup` request's `reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            HangupReason::FinalUnit => "final_unit",
            HangupReason::MaxDuration => "max_duration",
            HangupReason::AccountFrozen => "account_frozen",
            HangupReason::AccountBanned => "account_banned",
            HangupReason::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<HangupReason> {
        [
            HangupReason::FinalUnit,
            HangupReason::MaxDuration,
            HangupReason::AccountFrozen,
            HangupReason::AccountBanned,
            HangupReason::Admin,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}
