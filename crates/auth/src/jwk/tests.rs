//! What a JWK Set may hold, and which JWK Set URLs the allow-list admits.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::*;

fn rsa(kid: &str, bytes: usize) -> Value {
    let mut modulus = vec![0xC5u8; bytes];
    modulus[bytes - 1] = 0x01;
    json!({ "kty": "RSA", "kid": kid, "n": URL_SAFE_NO_PAD.encode(modulus), "e": "AQAB" })
}

fn ec(kid: &str, curve: &str, bytes: usize) -> Value {
    let coordinate = URL_SAFE_NO_PAD.encode(vec![7u8; bytes]);
    json!({ "kty": "EC", "crv": curve, "kid": kid, "x": coordinate, "y": coordinate })
}

fn parse(keys: Vec<Value>) -> Result<JwkSet, ModelError> {
    JwkSet::parse(&json!({ "keys": keys }).to_string())
}

#[test]
fn rsa_and_p384_signing_keys_are_accepted_and_written_back_public_only() {
    let set = parse(vec![rsa("r", 256), ec("e", "P-384", 48)]).unwrap();
    assert_eq!(set.keys().len(), 2);
    assert!(set.find("e").is_some() && set.find("x").is_none());
    let written = set.to_json();
    assert_eq!(written["keys"][0]["kty"], "RSA");
    assert_eq!(written["keys"][1]["crv"], "P-384");
    assert_eq!(JwkSet::try_from(written).unwrap(), set);
    // Debug shows kid and type, not key bytes.
    let debug = format!("{set:?}");
    assert!(
        debug.contains("\"r\"") && !debug.contains("AQAB"),
        "{debug}"
    );
}

#[test]
fn registered_sets_are_refused_when_any_key_is_unfit() {
    let mut private = rsa("r", 256);
    private["d"] = json!("c2VjcmV0");
    let mut symmetric = json!({ "kty": "oct", "kid": "h", "k": "c2VjcmV0" });
    let mut encryption = ec("e", "P-384", 48);
    encryption["use"] = json!("enc");
    let mut wrong_alg = rsa("r", 256);
    wrong_alg["alg"] = json!("RS256");
    let mut no_kid = rsa("r", 256);
    no_kid.as_object_mut().unwrap().remove("kid");
    symmetric["alg"] = json!("HS256");
    let cases = [
        vec![private],
        vec![symmetric],
        vec![encryption],
        vec![wrong_alg],
        vec![no_kid],
        vec![rsa("small", 128)],
        vec![ec("p256", "P-256", 32)],
        vec![ec("short", "P-384", 32)],
        vec![rsa("same", 256), ec("same", "P-384", 48)],
        vec![],
        (0..17).map(|i| rsa(&format!("k{i}"), 256)).collect(),
    ];
    for (index, keys) in cases.into_iter().enumerate() {
        assert!(parse(keys).is_err(), "case {index} was accepted");
    }
    assert!(JwkSet::parse("not json").is_err());
    assert!(JwkSet::parse("[]").is_err());
}

#[test]
fn fetched_sets_skip_other_keys_but_never_use_a_leaked_private_key() {
    let mixed = json!({ "keys": [ec("p256", "P-256", 32), rsa("r", 256)] }).to_string();
    let set = JwkSet::parse_fetched(&mixed).unwrap();
    assert_eq!(set.keys().len(), 1);
    let mut leaked = rsa("r", 256);
    leaked["p"] = json!("AQ");
    assert!(JwkSet::parse_fetched(&json!({ "keys": [leaked] }).to_string()).is_err());
    let nothing_usable = json!({ "keys": [ec("p256", "P-256", 32)] }).to_string();
    assert!(JwkSet::parse_fetched(&nothing_usable).is_err());
}

#[test]
fn the_allow_list_admits_https_urls_of_its_origins_only() {
    let list =
        JwksUrlAllowList::new(["https://Keys.Example.jp", "https://idp.example.jp:8443/"]).unwrap();
    let allowed = |url: &str| JwksUrl::new(url, &list).is_ok();
    assert!(allowed("https://keys.example.jp/jwks.json"));
    assert!(allowed("https://KEYS.example.jp:443/a/b?c=d"));
    assert!(allowed("https://idp.example.jp:8443/jwks"));
    for refused in [
        "http://keys.example.jp/jwks.json",
        "https://keys.example.jp.evil.jp/jwks.json",
        "https://evil.jp/https://keys.example.jp/",
        "https://user:pw@keys.example.jp/jwks.json",
        "https://keys.example.jp@evil.jp/jwks.json",
        "https://idp.example.jp/jwks",
        "https://keys.example.jp/jwks.json#x",
        "https://keys.example.jp/jw ks.json",
        "https://keys.example.jp:99999/",
        "keys.example.jp/jwks.json",
        "https:/é.example.jp/",
        "ｈttps://keys.example.jp/",
        "https://ｋeys.example.jp/",
    ] {
        assert!(!allowed(refused), "{refused}");
    }
    for bad_entry in [
        "http://keys.example.jp",
        "https://keys.example.jp/path",
        "*.example.jp",
    ] {
        assert!(JwksUrlAllowList::new([bad_entry]).is_err(), "{bad_entry}");
    }
}
