//! Key files: the RFC 8032 test key in the PEM forms openssl reads and writes, file modes, and
//! generation that never overwrites.

use super::*;

/// RFC 8032 §7.1 TEST 1 secret key as PKCS#8 PEM (the form `openssl genpkey` writes; `openssl pkey
/// -pubout` on it prints [`RFC8032_PUBLIC_PEM`]).
const RFC8032_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g
-----END PRIVATE KEY-----
";
const RFC8032_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
-----END PUBLIC KEY-----
";

#[test]
fn reads_the_rfc_8032_key_and_signs_like_the_rfc() {
    let key = AuditKey::from_pkcs8_pem(RFC8032_PRIVATE_PEM).unwrap();
    let public = key.public_key();
    assert_eq!(
        crate::hash::hex_encode(&public.to_bytes()),
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    );
    assert_eq!(public.to_pem(), RFC8032_PUBLIC_PEM);
    assert_eq!(PublicKey::from_pem(RFC8032_PUBLIC_PEM).unwrap(), public);
    // TEST 1 signs the empty message.
    let signature = key.sign(b"");
    assert_eq!(
        crate::hash::hex_encode(&signature),
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    );
    assert!(public.verifies(b"", &signature));
    assert!(!public.verifies(b"x", &signature));
    let mut flipped = signature;
    flipped[0] ^= 1;
    assert!(!public.verifies(b"", &flipped));
}

#[test]
fn refuses_what_is_not_an_ed25519_key() {
    assert!(matches!(
        AuditKey::from_pkcs8_pem(RFC8032_PUBLIC_PEM),
        Err(KeyError::Malformed("private"))
    ));
    assert!(matches!(
        PublicKey::from_pem(RFC8032_PRIVATE_PEM),
        Err(KeyError::Malformed("public"))
    ));
    assert!(AuditKey::from_pkcs8_pem("").is_err());
}

#[test]
fn generated_key_files_are_private_and_never_overwritten() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("audit.key");
    let key = AuditKey::generate_to_file(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let loaded = AuditKey::load(&path).unwrap();
    assert_eq!(loaded.public_key(), key.public_key());
    // The Debug form names the key, never its secret.
    let debug = format!("{loaded:?}");
    assert!(debug.contains(&key.public_key().key_id().to_hex()));
    assert!(!std::fs::read_to_string(&path).unwrap().contains(&debug));

    assert!(matches!(
        AuditKey::generate_to_file(&path),
        Err(KeyError::Io { .. })
    ));
    let (again, created) = AuditKey::load_or_generate(&path).unwrap();
    assert!(!created);
    assert_eq!(again.public_key(), key.public_key());

    let fresh = directory.path().join("fresh.key");
    let (generated, created) = AuditKey::load_or_generate(&fresh).unwrap();
    assert!(created);
    assert_ne!(generated.public_key(), key.public_key());
}

#[cfg(unix)]
#[test]
fn refuses_a_private_key_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("audit.key");
    std::fs::write(&path, RFC8032_PRIVATE_PEM).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        AuditKey::load(&path),
        Err(KeyError::TooOpen { mode: 0o644, .. })
    ));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(AuditKey::load(&path).is_ok());
}
