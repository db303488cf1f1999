//! SIP digest authentication, server side (RFC 3261 §22, RFC 2617 with
//! `qop=auth`), checked against the stored HA1 so the service never keeps a
//! SIP password in clear.
//!
//! `rsipstack` parses the `Authorization` header, but its own check wants the
//! password itself; the check against HA1 is the two hashes below.

use md5::{Digest as _, Md5};
use rand::RngCore as _;
use rsipstack::sip::headers::auth::AuthQop;
use rsipstack::sip::typed::Authorization;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a nonce we handed out stays good.
const NONCE_TTL: Duration = Duration::from_secs(300);

/// `md5(username:realm:password)`, hex: what the service stores.
#[must_use]
pub fn ha1(username: &str, realm: &str, password: &str) -> String {
    hex_md5(&format!("{username}:{realm}:{password}"))
}

fn hex_md5(text: &str) -> String {
    let digest = Md5::digest(text.as_bytes());
    let mut out = String::with_capacity(32);
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Nonces handed out and not yet expired, each to the address it was
/// handed to: a nonce answered from anywhere else is stale, so a guesser
/// cannot fetch nonces at its own address and spend them from forged ones.
#[derive(Debug, Default)]
pub struct Nonces {
    issued: Mutex<HashMap<String, (Instant, IpAddr)>>,
}

impl Nonces {
    /// A fresh nonce for a client at `source`.
    pub fn issue(&self, source: IpAddr) -> String {
        let mut bytes = [0_u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let nonce: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut issued = self.issued.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        issued.retain(|_, (at, _)| now.duration_since(*at) < NONCE_TTL);
        issued.insert(nonce.clone(), (now, source));
        nonce
    }

    /// Whether `nonce` is one of ours, still good, and was handed to `source`.
    pub fn is_fresh(&self, nonce: &str, source: IpAddr) -> bool {
        let issued = self.issued.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        issued.get(nonce).is_some_and(|(at, to)| at.elapsed() < NONCE_TTL && *to == source)
    }
}

/// A parsed `Authorization` / `Proxy-Authorization` header with the raw
/// values the hash is computed over.
#[derive(Debug)]
pub struct Credentials {
    /// The digest user name (an Earshot user's e-mail address).
    pub username: String,
    parsed: Authorization,
    uri: String,
    nc: Option<String>,
}

impl Credentials {
    /// Parses a header value; `None` when it is not a digest answer.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        let parsed = Authorization::parse(value).ok()?;
        let uri = rsipstack::dialog::authenticate::extract_digest_uri_raw(value)
            .unwrap_or_else(|| parsed.uri.to_string());
        Some(Self { username: parsed.username.clone(), uri, nc: raw_param(value, "nc"), parsed })
    }

    /// The nonce it answers.
    #[must_use]
    pub fn nonce(&self) -> &str {
        &self.parsed.nonce
    }

    /// The realm it answers.
    #[must_use]
    pub fn realm(&self) -> &str {
        &self.parsed.realm
    }

    /// Whether the response was computed from `ha1` for a request with `method`.
    #[must_use]
    pub fn verify(&self, ha1: &str, method: &str) -> bool {
        let ha2 = hex_md5(&format!("{method}:{}", self.uri));
        let nonce = &self.parsed.nonce;
        let expected = match (&self.parsed.qop, &self.nc) {
            (Some(AuthQop::Auth { cnonce, .. }), Some(nc)) => {
                hex_md5(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
            }
            (Some(_), _) => return false,
            (None, _) => hex_md5(&format!("{ha1}:{nonce}:{ha2}")),
        };
        constant_time_eq(expected.as_bytes(), self.parsed.response.to_ascii_lowercase().as_bytes())
    }
}

/// The challenge header value for `realm` with `nonce`.
#[must_use]
pub fn challenge(realm: &str, nonce: &str) -> String {
    format!("Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"")
}

fn raw_param(value: &str, name: &str) -> Option<String> {
    value.split(',').find_map(|part| {
        let (key, val) = part.trim().split_once('=')?;
        let key = key.trim().rsplit(' ').next()?;
        key.eq_ignore_ascii_case(name).then(|| val.trim().trim_matches('"').to_owned())
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5's worked example (realm, nonce, cnonce and response from the RFC).
    #[test]
    fn rfc2617_example_verifies_and_a_wrong_password_does_not() {
        let header = "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
            nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, \
            nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", \
            opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
        let credentials = Credentials::parse(header).expect("parses");
        assert_eq!(credentials.username, "Mufasa");
        assert!(credentials.verify(&ha1("Mufasa", "testrealm@host.com", "Circle Of Life"), "GET"));
        assert!(!credentials.verify(&ha1("Mufasa", "testrealm@host.com", "circle of life"), "GET"));
        assert!(!credentials.verify(&ha1("Mufasa", "testrealm@host.com", "Circle Of Life"), "POST"));
    }

    #[test]
    fn nonces_are_ours_only_and_for_the_address_they_were_given_to() {
        let nonces = Nonces::default();
        let (here, there) = (IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2]));
        let nonce = nonces.issue(here);
        assert!(nonces.is_fresh(&nonce, here));
        assert!(!nonces.is_fresh(&nonce, there), "spent from another address");
        assert!(!nonces.is_fresh("0123456789abcdef0123456789abcdef", here));
        assert_ne!(nonces.issue(here), nonce);
    }
}
