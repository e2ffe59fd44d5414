//! The CapabilityStatement served at `/fhir/metadata`, built once from what the server really does:
//! every R4 resource type with the same interactions, and for each type exactly the search
//! parameters the `search` crate supports.

use serde_json::{Value, json};
use store::ParamKind;

/// The interactions every resource type supports.
const TYPE_INTERACTIONS: [&str; 9] = [
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
];

/// Builds the CapabilityStatement.
pub fn capability_statement(app: &app::App) -> Value {
    let registry = app.registry();
    let resources: Vec<Value> = fhir::resource_types()
        .iter()
        .map(|resource_type| {
            let params = registry.params(resource_type);
            let search_params: Vec<Value> = params
                .iter()
                .map(|param| {
                    let mut entry = json!({
                        "name": param.code,
                        "definition": param.url,
                        "type": kind_name(param.kind),
                    });
                    if !param.documentation.is_empty() {
                        entry["documentation"] = Value::String(param.documentation.clone());
                    }
                    entry
                })
                .collect();
            let includes: Vec<Value> = params
                .iter()
                .filter(|param| param.kind == ParamKind::Reference)
                .map(|param| Value::String(format!("{resource_type}:{}", param.code)))
                .collect();
            let interactions: Vec<Value> = TYPE_INTERACTIONS
                .iter()
                .map(|code| json!({"code": code}))
                .collect();
            let mut resource = json!({
                "type": resource_type,
                "profile": format!("http://hl7.org/fhir/StructureDefinition/{resource_type}"),
                "interaction": interactions,
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalRead": "not-supported",
                "conditionalUpdate": true,
                "conditionalDelete": "single",
                "searchInclude": includes,
                "searchParam": search_params,
            });
            if *resource_type == "Patient" {
                resource["operation"] = json!([
                    {
                        "name": "everything",
                        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"
                    },
                    {
                        "name": "summary",
                        "definition": "http://hl7.org/fhir/uv/ips/OperationDefinition/summary"
                    },
                    {
                        "name": "emergency-summary",
                        "definition": "https://tsunagu.jp/fhir/OperationDefinition/emergency-summary"
                    }
                ]);
            }
            resource
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-24",
        "publisher": "tsunagu",
        "kind": "instance",
        "software": {"name": "tsunagu", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "tsunagu electronic medical record information sharing service"},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [{
            "mode": "server",
            "resource": resources,
            "interaction": [
                {"code": "transaction"},
                {"code": "batch"},
                {"code": "search-system"},
                {"code": "history-system"}
            ],
            "searchParam": [
                {"name": "_id", "definition": "http://hl7.org/fhir/SearchParameter/Resource-id", "type": "token"},
                {"name": "_lastUpdated", "definition": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated", "type": "date"},
                {"name": "_tag", "definition": "http://hl7.org/fhir/SearchParameter/Resource-tag", "type": "token"},
                {"name": "_profile", "definition": "http://hl7.org/fhir/SearchParameter/Resource-profile", "type": "uri"},
                {"name": "_security", "definition": "http://hl7.org/fhir/SearchParameter/Resource-security", "type": "token"}
            ]
        }]
    })
}

fn kind_name(kind: ParamKind) -> &'static str {
    match kind {
        ParamKind::Token => "token",
        ParamKind::String => "string",
        ParamKind::Date => "date",
        ParamKind::Reference => "reference",
        ParamKind::Quantity => "quantity",
        ParamKind::Number => "number",
        ParamKind::Uri => "uri",
    }
}
