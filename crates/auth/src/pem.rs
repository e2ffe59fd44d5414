//! PEM armour (RFC 7468) for the keys this crate reads and writes: the service key and patients'
//! card keys (`PRIVATE KEY`, PKCS#8) and card public keys (`PUBLIC KEY`, SubjectPublicKeyInfo).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The DER inside the first `-----BEGIN <label>-----` … `-----END <label>-----` block of `text`.
/// `None` when there is no such block or its body is not base64.
pub(crate) fn decode(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = text
        .split_once(&begin)
        .and_then(|(_, rest)| rest.split_once(&end))
        .map(|(body, _)| body)?;
    let base64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(base64).ok()
}

/// `der` as a PEM block labelled `label`, in 64-character lines, ending with a newline.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// Whether `text` holds a PEM block labelled `label`.
pub(crate) fn contains(text: &str, label: &str) -> bool {
    text.contains(&format!("-----BEGIN {label}-----"))
}
