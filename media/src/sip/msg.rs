//! Small helpers over `rsip` messages: read a header's text by name (compact forms too),
//! pick parameters (`tag`, `branch`), build requests and responses from header lines. `rsip`
//! parses and prints the message; these helpers keep the call logic free of its typed-header
//! API, whose parsers are stricter than many trunks.

use rsip::headers::UntypedHeader;
use rsip::{Header, Headers};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsgError {
    #[error("not a SIP message: {0}")]
    Parse(String),
    #[error("the SIP message lacks a usable `{0}` header")]
    Missing(&'static str),
    #[error("`{0}` is not a SIP URI")]
    Uri(String),
}

/// Parses one datagram.
pub fn parse(bytes: &[u8]) -> Result<rsip::SipMessage, MsgError> {
    rsip::SipMessage::try_from(bytes).map_err(|e| MsgError::Parse(e.to_string()))
}

fn full_name(name: &str) -> &str {
    match name {
        "v" => "Via",
        "f" => "From",
        "t" => "To",
        "i" => "Call-ID",
        "m" => "Contact",
        "l" => "Content-Length",
        "c" => "Content-Type",
        _ => name,
    }
}

/// Every header named `name` (case-insensitive), as (name, value) text, in order.
pub fn values(headers: &Headers, name: &str) -> Vec<String> {
    headers
        .iter()
        .filter_map(|h| {
            let line = h.to_string();
            let (n, v) = line.split_once(':')?;
            full_name(n.trim())
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
        .collect()
}

pub fn value(headers: &Headers, name: &str) -> Option<String> {
    values(headers, name).into_iter().next()
}

/// A `;name=value` parameter of a header value, outside any `<…>`.
pub fn param(header_value: &str, name: &str) -> Option<String> {
    let tail = match header_value.rfind('>') {
        Some(i) => &header_value[i + 1..],
        None => header_value,
    };
    tail.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// The URI inside `<…>`, or the value up to its first `;`.
pub fn uri_of(header_value: &str) -> String {
    if let (Some(a), Some(b)) = (header_value.find('<'), header_value.find('>')) {
        if a < b {
            return header_value[a + 1..b].to_string();
        }
    }
    header_value.split(';').next().unwrap_or("").trim().to_string()
}

/// The top Via's branch.
pub fn branch(headers: &Headers) -> Option<String> {
    value(headers, "Via").and_then(|v| param(v.split(',').next().unwrap_or(""), "branch"))
}

/// CSeq number and method.
pub fn cseq(headers: &Headers) -> Option<(u32, String)> {
    let v = value(headers, "CSeq")?;
    let (n, m) = v.trim().split_once(char::is_whitespace)?;
    Some((n.parse().ok()?, m.trim().to_ascii_uppercase()))
}

pub fn call_id(headers: &Headers) -> Option<String> {
    value(headers, "Call-ID")
}

/// A header from its name and value text, in `rsip`'s own variant where it has one.
pub fn header(name: &str, value: impl Into<String>) -> Header {
    use rsip::headers as h;
    let v = value.into();
    match name {
        "Via" => Header::Via(h::Via::new(v)),
        "From" => Header::From(h::From::new(v)),
        "To" => Header::To(h::To::new(v)),
        "Call-ID" => Header::CallId(h::CallId::new(v)),
        "CSeq" => Header::CSeq(h::CSeq::new(v)),
        "Contact" => Header::Contact(h::Contact::new(v)),
        "Max-Forwards" => Header::MaxForwards(h::MaxForwards::new(v)),
        "Content-Type" => Header::ContentType(h::ContentType::new(v)),
        "Content-Length" => Header::ContentLength(h::ContentLength::new(v)),
        "Authorization" => Header::Authorization(h::Authorization::new(v)),
        "Proxy-Authorization" => Header::ProxyAuthorization(h::ProxyAuthorization::new(v)),
        "Route" => Header::Route(h::Route::new(v)),
        "Record-Route" => Header::RecordRoute(h::RecordRoute::new(v)),
        "User-Agent" => Header::UserAgent(h::UserAgent::new(v)),
        "Allow" => Header::Allow(h::Allow::new(v)),
        _ => Header::Other(name.to_string(), v),
    }
}

/// Adds `Content-Type` (when there is a body) and `Content-Length`.
fn finish(headers: &mut Vec<Header>, body: &[u8]) {
    if !body.is_empty() {
        headers.push(header("Content-Type", "application/sdp"));
    }
    headers.push(header("Content-Length", body.len().to_string()));
}

pub fn request(
    method: rsip::Method,
    uri: &str,
    mut headers: Vec<Header>,
    body: Vec<u8>,
) -> Result<rsip::Request, MsgError> {
    let uri = rsip::Uri::try_from(uri).map_err(|_| MsgError::Uri(uri.to_string()))?;
    finish(&mut headers, &body);
    Ok(rsip::Request {
        method,
        uri,
        version: rsip::Version::V2,
        headers: headers.into(),
        body,
    })
}

/// A response to `req`: its Vias, From, Call-ID and CSeq; its To with `to_tag` added when
/// the request's To has none; then `extra` headers and the body.
pub fn response(
    req: &rsip::Request,
    status: u16,
    to_tag: &str,
    extra: Vec<Header>,
    body: Vec<u8>,
) -> rsip::Response {
    let mut headers: Vec<Header> = values(&req.headers, "Via")
        .into_iter()
        .map(|v| header("Via", v))
        .collect();
    for name in ["From", "Call-ID", "CSeq"] {
        if let Some(v) = value(&req.headers, name) {
            headers.push(header(name, v));
        }
    }
    if let Some(to) = value(&req.headers, "To") {
        let to = if param(&to, "tag").is_none() && status > 100 {
            format!("{to};tag={to_tag}")
        } else {
            to
        };
        headers.push(header("To", to));
    }
    headers.extend(extra);
    finish(&mut headers, &body);
    rsip::Response {
        status_code: status.into(),
        version: rsip::Version::V2,
        headers: headers.into(),
        body,
    }
}

/// Random token for tags, branches and Call-IDs.
pub fn token() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("{n:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_headers_params_and_compact_forms() {
        let raw = "SIP/2.0 180 Ringing\r\nv: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;rport\r\nFrom: <sip:1@a>;tag=ours\r\nTo: \"X\" <sip:2@b;user=phone>;tag=theirs\r\nCall-ID: c1\r\nCSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n";
        let msg = parse(raw.as_bytes()).expect("parse");
        let rsip::SipMessage::Response(r) = msg else {
            panic!("a response")
        };
        assert_eq!(branch(&r.headers).as_deref(), Some("z9hG4bKabc"));
        assert_eq!(cseq(&r.headers), Some((2, "INVITE".into())));
        let to = value(&r.headers, "To").expect("to");
        assert_eq!(param(&to, "tag").as_deref(), Some("theirs"));
        assert_eq!(uri_of(&to), "sip:2@b;user=phone");
        assert_eq!(param(&to, "user"), None, "parameters inside <> belong to the URI");
        assert_eq!(u16::from(r.status_code.clone()), 180);
    }

    #[test]
    fn a_response_copies_the_request_and_tags_to() {
        let req = request(
            rsip::Method::Bye,
            "sip:a@10.0.0.2:5060",
            vec![
                header("Via", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1"),
                header("From", "<sip:x@h>;tag=f"),
                header("To", "<sip:y@h>"),
                header("Call-ID", "id"),
                header("CSeq", "5 BYE"),
            ],
            Vec::new(),
        )
        .expect("request");
        let resp = response(&req, 200, "t1", Vec::new(), Vec::new());
        let text = resp.to_string();
        let back = parse(text.as_bytes()).expect("parse back");
        let rsip::SipMessage::Response(back) = back else {
            panic!("a response")
        };
        assert_eq!(
            param(&value(&back.headers, "To").expect("to"), "tag").as_deref(),
            Some("t1")
        );
        assert_eq!(cseq(&back.headers), Some((5, "BYE".into())));
        assert_eq!(value(&back.headers, "Content-Length").as_deref(), Some("0"));
    }
}
