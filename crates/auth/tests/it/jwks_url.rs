//! Clients registered with a JWK Set URL: only allow-listed origins, fetched through the
//! server's fetcher, re-checked against the current allow-list at every exchange.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use auth::{
    Client, ClientId, ClientKeys, JwksFetcher, JwksUrl, JwksUrlAllowList, MemoryJtiCache,
    MemoryRegistry, OrganisationId, Registry, ServiceKey, TokenService,
};
use serde_json::json;

use crate::support::*;

const KEYS_URL: &str = "https://keys.hospital.test/.well-known/jwks.json";

/// Serves one JWK Set body and counts the fetches.
struct FakeFetcher {
    body: Mutex<String>,
    fetched: Mutex<Vec<String>>,
}

#[async_trait]
impl JwksFetcher for FakeFetcher {
    async fn fetch(
        &self,
        url: &JwksUrl,
    ) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        self.fetched.lock().unwrap().push(url.as_str().to_owned());
        Ok(self.body.lock().unwrap().clone())
    }
}

fn allow_list(origins: &[&str]) -> JwksUrlAllowList {
    JwksUrlAllowList::new(origins).unwrap()
}

async fn world(settings_allow: &[&str], fetcher: Option<Arc<FakeFetcher>>) -> TokenService {
    let registry = Arc::new(MemoryRegistry::new());
    seed(registry.as_ref()).await;
    let url = JwksUrl::new(KEYS_URL, &allow_list(&["https://keys.hospital.test"])).unwrap();
    registry
        .add_client(Client::new(
            ClientId::new("url-client").unwrap(),
            OrganisationId::new(HOSPITAL).unwrap(),
            ClientKeys::JwksUrl(url),
        ))
        .await
        .unwrap();
    let mut settings = settings();
    settings.jwks_url_allow_list = allow_list(settings_allow);
    let service = TokenService::new(
        settings,
        registry,
        Arc::new(MemoryJtiCache::default()),
        ServiceKey::generate().unwrap(),
    )
    .unwrap();
    match fetcher {
        Some(fetcher) => service.with_jwks_fetcher(fetcher),
        None => service,
    }
}

fn fetcher(body: serde_json::Value) -> Arc<FakeFetcher> {
    Arc::new(FakeFetcher {
        body: Mutex::new(body.to_string()),
        fetched: Mutex::new(Vec::new()),
    })
}

fn assertion() -> String {
    Assertion::new("url-client")
        .claim(
            "extensions/ihe_iua/subject_organization_id",
            json!(HOSPITAL),
        )
        .rs384()
}

#[tokio::test]
async fn keys_fetched_from_an_allow_listed_url_authenticate_the_client() {
    // The published set may hold keys for other uses; they are skipped.
    let mut keys = client_jwks();
    keys["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "kty": "OKP", "crv": "Ed25519", "kid": "other", "x": "AAAA" }));
    let fetcher = fetcher(keys);
    let service = world(&["https://keys.hospital.test"], Some(fetcher.clone())).await;
    let token = service
        .exchange(&form(&assertion(), "system/Patient.rs"), now())
        .await
        .unwrap();
    assert_eq!(token.principal.client_id.as_str(), "url-client");
    assert_eq!(*fetcher.fetched.lock().unwrap(), [KEYS_URL]);
}

#[tokio::test]
async fn a_url_off_the_allow_list_is_refused_at_registration_and_at_exchange() {
    assert!(JwksUrl::new(KEYS_URL, &allow_list(&["https://keys.other.test"])).is_err());
    for bad in [
        "http://keys.hospital.test/jwks.json",
        "https://user@keys.hospital.test/jwks.json",
        "https://keys.hospital.test.evil.test/jwks.json",
        "https://keys.hospital.test:8443/jwks.json",
        "https://keys.hospital.test/jwks.json#fragment",
    ] {
        assert!(
            JwksUrl::new(bad, &allow_list(&["https://keys.hospital.test"])).is_err(),
            "{bad}"
        );
    }
    // Registered while allowed, then the operator removed the origin from the allow-list.
    let service = world(&["https://keys.other.test"], Some(fetcher(client_jwks()))).await;
    assert_eq!(
        reason(
            service
                .exchange(&form(&assertion(), "system/Patient.rs"), now())
                .await
        ),
        "jwks_url_not_allowed"
    );
}

#[tokio::test]
async fn without_a_fetcher_or_with_a_bad_set_the_client_cannot_authenticate() {
    let service = world(&["https://keys.hospital.test"], None).await;
    assert_eq!(
        reason(
            service
                .exchange(&form(&assertion(), "system/Patient.rs"), now())
                .await
        ),
        "jwks_unavailable"
    );
    // A published set that leaks a private key is not used at all.
    let mut leaked = client_jwks();
    leaked["keys"][0]["d"] = json!("c2VjcmV0");
    let service = world(&["https://keys.hospital.test"], Some(fetcher(leaked))).await;
    assert_eq!(
        reason(
            service
                .exchange(&form(&assertion(), "system/Patient.rs"), now())
                .await
        ),
        "jwks_unavailable"
    );
}
