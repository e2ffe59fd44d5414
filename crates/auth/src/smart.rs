//! What the server announces about authorisation: the body of
//! `/fhir/.well-known/smart-configuration` and the `rest.security` element of the
//! CapabilityStatement (with the `oauth-uris` extension). Both are built from the same settings
//! and the policy table, so they say exactly what the token service does.

use serde_json::{Value, json};

use crate::policy;
use crate::token::{GRANT_TYPE, TokenService};

/// The `oauth-uris` extension of `CapabilityStatement.rest.security`.
pub const OAUTH_URIS_EXTENSION: &str =
    "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris";

impl TokenService {
    /// The JSON body of `/.well-known/smart-configuration` (SMART App Launch 2.x, §Metadata):
    /// only what Backend Services needs, all of it true of this service. Serve it as
    /// `application/json`, publicly cacheable.
    /// With a patient directory, the patients' own grant (`PATIENT_GRANT_TYPE`) is listed too.
    pub fn smart_configuration(&self) -> Value {
        let mut grants = vec![GRANT_TYPE];
        if self.patient_directory().is_some() {
            grants.push(crate::PATIENT_GRANT_TYPE);
        }
        json!({
            "token_endpoint": self.settings().token_endpoint,
            "grant_types_supported": grants,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
            "scopes_supported": policy::scopes_supported(),
            "capabilities": ["client-confidential-asymmetric", "permission-v2"],
        })
    }

    /// `CapabilityStatement.rest.security`: the SMART-on-FHIR service code and the token endpoint
    /// in the `oauth-uris` extension.
    pub fn capability_security(&self) -> Value {
        json!({
            "extension": [{
                "url": OAUTH_URIS_EXTENSION,
                "extension": [{ "url": "token", "valueUri": self.settings().token_endpoint }],
            }],
            "service": [{
                "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "SMART-on-FHIR",
                }],
            }],
            "description": "SMART Backend Services: client_credentials with a private_key_jwt \
                            assertion (RS384 or ES384) carrying the acting user as IHE IUA claims; \
                            access tokens live five minutes at most.",
        })
    }
}
