//! The two JWTs of metering (docs/metering-protocol.md, "Transport and authentication"): the
//! media node's request token (HS256 with `media_secret`, ≤ 60 s) and the call token the api
//! signs for the browser (HS256 with `call_token_secret`, ≤ 120 s), which names the account and
//! the node and starts at most one call: `call_id = UUIDv5(NS_CALL, jti)`. Never logs a token.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ringledger_domain::call::NodeId;
use ringledger_domain::{AccountId, CallId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The namespace of call ids derived from call token `jti`s (the protocol doc names it).
pub const NS_CALL: Uuid = Uuid::from_u128(0x3d6e_8f2b_a0c4_4e71_b5d9_1f08_c2a7_e001);
pub const MEDIA_ISSUER: &str = "ringledger-media";
pub const METERING_AUDIENCE: &str = "ringledger-metering";
pub const API_ISSUER: &str = "ringledger-api";
pub const CALL_AUDIENCE: &str = "ringledger-call";
/// Longest life of a media request token, and of a call token.
pub const MAX_MEDIA_TOKEN_SECONDS: i64 = 60;
pub const MAX_CALL_TOKEN_SECONDS: i64 = 120;
const LEEWAY_SECONDS: u64 = 5;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is not a valid, unexpired HS256 JWT for this audience: {0}")]
    Invalid(String),
    #[error("the token lives {0} s; at most {1} s is allowed between iat and exp")]
    TooLong(i64, i64),
    #[error("the token's claims are malformed: {0}")]
    Claims(String),
}

/// A media node's request claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MediaClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
}

/// The call token's claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub acc: Uuid,
    pub node: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
}

/// What a checked call token grants.
#[derive(Debug, Clone)]
pub struct CallGrant {
    pub call_id: CallId,
    pub account_id: AccountId,
    pub node_id: NodeId,
}

fn check<T: serde::de::DeserializeOwned>(
    token: &str,
    secret: &[u8],
    iss: &str,
    aud: &str,
) -> Result<T, TokenError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[aud]);
    validation.set_issuer(&[iss]);
    validation.leeway = LEEWAY_SECONDS;
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub"]);
    decode::<T>(token, &DecodingKey::from_secret(secret), &validation)
        .map(|data| data.claims)
        .map_err(|e| TokenError::Invalid(e.to_string()))
}

fn sign<T: Serialize>(claims: &T, secret: &[u8]) -> Result<String, TokenError> {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| TokenError::Claims(e.to_string()))
}

/// Checks a media request token (not its `jti`: replay is checked against the store).
pub fn check_media(token: &str, secret: &[u8]) -> Result<MediaClaims, TokenError> {
    let claims: MediaClaims = check(token, secret, MEDIA_ISSUER, METERING_AUDIENCE)?;
    let life = claims.exp - claims.iat;
    if life > MAX_MEDIA_TOKEN_SECONDS {
        return Err(TokenError::TooLong(life, MAX_MEDIA_TOKEN_SECONDS));
    }
    Ok(claims)
}

/// Signs a media request token for `node` valid for `life_seconds` from `now` (for media
/// nodes written in Rust and for tests).
pub fn mint_media(node: &str, secret: &[u8], now: i64, life_seconds: i64) -> Result<String, TokenError> {
    let claims = MediaClaims {
        iss: MEDIA_ISSUER.into(),
        sub: node.into(),
        aud: METERING_AUDIENCE.into(),
        iat: now,
        exp: now + life_seconds,
        jti: Uuid::new_v4(),
    };
    sign(&claims, secret)
}

/// The `sub` of the api's requests to media nodes.
pub const API_SUBJECT: &str = "api";

/// Signs the api's request token for `node` (`hangup`): HS256 with `media_secret`, `iss`
/// `ringledger-api`, `sub` `api`, `aud` the node id, at most 60 s.
pub fn mint_api(node: &str, secret: &[u8], now: i64, life_seconds: i64) -> Result<String, TokenError> {
    let claims = MediaClaims {
        iss: API_ISSUER.into(),
        sub: API_SUBJECT.into(),
        aud: node.into(),
        iat: now,
        exp: now + life_seconds.min(MAX_MEDIA_TOKEN_SECONDS),
        jti: Uuid::new_v4(),
    };
    sign(&claims, secret)
}

/// Checks an api request token as media node `node` does (for media nodes in Rust, the load
/// generator and tests); the caller checks the `jti` against the ones it has seen.
pub fn check_api(token: &str, secret: &[u8], node: &str) -> Result<MediaClaims, TokenError> {
    let claims: MediaClaims = check(token, secret, API_ISSUER, node)?;
    let life = claims.exp - claims.iat;
    if life > MAX_MEDIA_TOKEN_SECONDS {
        return Err(TokenError::TooLong(life, MAX_MEDIA_TOKEN_SECONDS));
    }
    if claims.sub != API_SUBJECT {
        return Err(TokenError::Claims(format!(
            "`sub` is `{}`, not `api`",
            claims.sub
        )));
    }
    Ok(claims)
}

/// Checks a call token and derives the call it starts.
pub fn check_call(token: &str, secret: &[u8]) -> Result<CallGrant, TokenError> {
    let claims: CallClaims = check(token, secret, API_ISSUER, CALL_AUDIENCE)?;
    let life = claims.exp - claims.iat;
    if life > MAX_CALL_TOKEN_SECONDS {
        return Err(TokenError::TooLong(life, MAX_CALL_TOKEN_SECONDS));
    }
    let node_id = NodeId::parse(&claims.node).map_err(|e| TokenError::Claims(e.to_string()))?;
    Ok(CallGrant {
        call_id: call_id_for(claims.jti),
        account_id: AccountId(claims.acc),
        node_id,
    })
}

/// Signs a call token: for `/api/webrtc/token` (later) and for tests. Returns the token and
/// the id of the call it will start.
pub fn mint_call(
    user: &str,
    account: AccountId,
    node: &NodeId,
    secret: &[u8],
    now: i64,
    life_seconds: i64,
) -> Result<(String, CallId), TokenError> {
    let life = life_seconds.min(MAX_CALL_TOKEN_SECONDS);
    let claims = CallClaims {
        iss: API_ISSUER.into(),
        aud: CALL_AUDIENCE.into(),
        sub: user.into(),
        acc: account.0,
        node: node.as_str().into(),
        iat: now,
        exp: now + life,
        jti: Uuid::new_v4(),
    };
    Ok((sign(&claims, secret)?, call_id_for(claims.jti)))
}

pub fn call_id_for(jti: Uuid) -> CallId {
    CallId(Uuid::new_v5(&NS_CALL, jti.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn media_tokens_check_secret_lifetime_and_audience() {
        let now = chrono::Utc::now().timestamp();
        let ok = mint_media("media-1", SECRET, now, 30).expect("mint");
        assert_eq!(check_media(&ok, SECRET).expect("valid").sub, "media-1");
        assert!(check_media(&ok, b"another secret of thirty-two bytes!").is_err());
        let long = mint_media("media-1", SECRET, now, 61).expect("mint");
        assert_eq!(
            check_media(&long, SECRET).unwrap_err(),
            TokenError::TooLong(61, 60)
        );
        let expired = mint_media("media-1", SECRET, now - 100, 30).expect("mint");
        assert!(check_media(&expired, SECRET).is_err());
    }

    #[test]
    fn api_tokens_are_for_one_node_and_not_media_tokens() {
        let now = chrono::Utc::now().timestamp();
        let token = mint_api("media-1", SECRET, now, 30).expect("mint");
        assert_eq!(check_api(&token, SECRET, "media-1").expect("valid").sub, "api");
        assert!(
            check_api(&token, SECRET, "media-2").is_err(),
            "another node's audience"
        );
        assert!(check_media(&token, SECRET).is_err(), "not a media request token");
        let media = mint_media("media-1", SECRET, now, 30).expect("mint");
        assert!(check_api(&media, SECRET, "media-1").is_err());
    }

    #[test]
    fn a_call_token_names_one_call() {
        let now = chrono::Utc::now().timestamp();
        let node = NodeId::parse("media-1").expect("node");
        let account = AccountId(Uuid::from_u128(9));
        let (token, call) = mint_call("user", account, &node, SECRET, now, 60).expect("mint");
        let grant = check_call(&token, SECRET).expect("valid");
        assert_eq!((grant.call_id, grant.account_id), (call, account));
        assert!(
            check_media(&token, SECRET).is_err(),
            "a call token is not a media token"
        );
    }
}
