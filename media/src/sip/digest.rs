//! Digest authentication toward the trunk (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760):
//! parse a `WWW-Authenticate`/`Proxy-Authenticate` challenge and compute the credentials for
//! MD5 or SHA-256, with `qop=auth` (and `nc`/`cnonce`) when the challenge offers it. Pure: the
//! cnonce comes from the caller. Never logs or formats the password.

use md5::{Digest as _, Md5};
use sha2::Sha256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("the trunk's challenge is not a Digest challenge")]
    NotDigest,
    #[error("the trunk's challenge lacks `{0}`")]
    Missing(&'static str),
    #[error("the trunk asks for digest algorithm `{0}`; only MD5 and SHA-256 are supported")]
    Algorithm(String),
    #[error("the trunk offers qop `{0}`; only `auth` (or none) is supported")]
    Qop(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    fn parse(text: &str) -> Result<Algorithm, DigestError> {
        match text.to_ascii_uppercase().as_str() {
            "MD5" => Ok(Algorithm::Md5),
            "MD5-SESS" => Ok(Algorithm::Md5Sess),
            "SHA-256" => Ok(Algorithm::Sha256),
            "SHA-256-SESS" => Ok(Algorithm::Sha256Sess),
            _ => Err(DigestError::Algorithm(text.to_string())),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex::encode(Md5::digest(data.as_bytes())),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex::encode(Sha256::digest(data.as_bytes())),
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }
}

/// A parsed challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// `qop=auth` offered (we never use `auth-int`).
    pub qop_auth: bool,
    pub stale: bool,
}

/// Splits `k=v, k="v, with comma"` into pairs (names lower-cased, quotes removed).
fn params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(stripped) = rest.strip_prefix('"') {
            let mut end = None;
            let mut escaped = false;
            for (i, c) in stripped.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => {
                        end = Some(i);
                        break;
                    }
                    _ => escaped = false,
                }
            }
            let end = end.unwrap_or(stripped.len());
            value = stripped[..end].replace("\\\"", "\"");
            rest = stripped.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        out.push((name, value));
    }
    out
}

impl Challenge {
    /// Parses the value of a `WWW-Authenticate` or `Proxy-Authenticate` header.
    pub fn parse(header_value: &str) -> Result<Challenge, DigestError> {
        let text = header_value.trim();
        let (scheme, rest) = text
            .split_once(char::is_whitespace)
            .ok_or(DigestError::NotDigest)?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(DigestError::NotDigest);
        }
        let pairs = params(rest);
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let algorithm = match get("algorithm") {
            Some(a) => Algorithm::parse(&a)?,
            None => Algorithm::Md5,
        };
        let qop_auth = match get("qop") {
            None => false,
            Some(q) => {
                if q.split(',').any(|o| o.trim().eq_ignore_ascii_case("auth")) {
                    true
                } else {
                    return Err(DigestError::Qop(q));
                }
            }
        };
        Ok(Challenge {
            realm: get("realm").ok_or(DigestError::Missing("realm"))?,
            nonce: get("nonce").ok_or(DigestError::Missing("nonce"))?,
            opaque: get("opaque"),
            algorithm,
            qop_auth,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The `response` value and the full `Authorization` header value for one request.
    /// `nc` counts the requests made with this nonce (from 1); `cnonce` is fresh randomness.
    pub fn answer(
        &self,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> Credentials {
        let alg = self.algorithm;
        let mut ha1 = alg.hash(&format!("{username}:{}:{password}", self.realm));
        if alg.is_sess() {
            ha1 = alg.hash(&format!("{ha1}:{}:{cnonce}", self.nonce));
        }
        let ha2 = alg.hash(&format!("{method}:{uri}"));
        let nc_text = format!("{nc:08x}");
        let response = if self.qop_auth {
            alg.hash(&format!("{ha1}:{}:{nc_text}:{cnonce}:auth:{ha2}", self.nonce))
        } else {
            alg.hash(&format!("{ha1}:{}:{ha2}", self.nonce))
        };
        let mut header = format!(
            "Digest username=\"{username}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm={}",
            self.realm,
            self.nonce,
            alg.name()
        );
        if self.qop_auth || alg.is_sess() {
            header.push_str(&format!(", cnonce=\"{cnonce}\""));
        }
        if self.qop_auth {
            header.push_str(&format!(", qop=auth, nc={nc_text}"));
        }
        if let Some(opaque) = &self.opaque {
            header.push_str(&format!(", opaque=\"{opaque}\""));
        }
        Credentials { response, header }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub response: String,
    pub header: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_md5_qop_auth_vector() {
        let c = Challenge::parse(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .expect("challenge");
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert!(c.qop_auth);
        let a = c.answer(
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            1,
            "0a4f113b",
        );
        assert_eq!(a.response, "6629fae49393a05397450978507c4ef1");
        assert!(a.header.contains("nc=00000001"), "{}", a.header);
        assert!(a.header.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
        assert!(!a.header.contains("Circle"), "the password never appears");
    }

    #[test]
    fn rfc7616_sha256_and_md5_vectors() {
        let base = r#"realm="http-auth@example.org", qop="auth, auth-int", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let sha = Challenge::parse(&format!("Digest {base}, algorithm=SHA-256")).expect("sha");
        let a = sha.answer("Mufasa", "Circle of Life", "GET", "/dir/index.html", 1, cnonce);
        assert_eq!(
            a.response,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert!(a.header.contains("algorithm=SHA-256"));
        let md5 = Challenge::parse(&format!("Digest {base}, algorithm=MD5")).expect("md5");
        let a = md5.answer("Mufasa", "Circle of Life", "GET", "/dir/index.html", 1, cnonce);
        assert_eq!(a.response, "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn without_qop_the_rfc2069_form_is_used() {
        let c = Challenge::parse(r#"Digest realm="r", nonce="n""#).expect("challenge");
        let a = c.answer("u", "p", "INVITE", "sip:1@h", 1, "c");
        let ha1 = hex::encode(Md5::digest(b"u:r:p"));
        let ha2 = hex::encode(Md5::digest(b"INVITE:sip:1@h"));
        let want = hex::encode(Md5::digest(format!("{ha1}:n:{ha2}").as_bytes()));
        assert_eq!(a.response, want);
        assert!(!a.header.contains("qop"));
    }

    #[test]
    fn bad_challenges_are_named() {
        assert_eq!(Challenge::parse("Basic realm=\"x\""), Err(DigestError::NotDigest));
        assert_eq!(
            Challenge::parse("Digest realm=\"x\""),
            Err(DigestError::Missing("nonce"))
        );
        assert!(matches!(
            Challenge::parse("Digest realm=\"x\", nonce=\"y\", algorithm=SHA-512-256"),
            Err(DigestError::Algorithm(_))
        ));
        assert!(matches!(
            Challenge::parse("Digest realm=\"x\", nonce=\"y\", qop=\"auth-int\""),
            Err(DigestError::Qop(_))
        ));
        let stale = Challenge::parse("Digest realm=\"x\", nonce=\"y\", stale=TRUE").expect("ok");
        assert!(stale.stale);
    }
}
