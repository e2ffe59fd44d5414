//! Bundle-entry plumbing: splitting an entry's request URL, and rewriting the references of a
//! transaction's resources once their targets have ids.

use std::collections::HashMap;

use serde_json::Value;

/// What an entry's `request.url` addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryTarget {
    /// `[type]` or `[type]?params`.
    Type {
        resource_type: String,
        params: Vec<(String, String)>,
    },
    /// `[type]/[id]`.
    Instance { resource_type: String, id: String },
    /// `[type]/[id]/_history/[vid]`.
    Version {
        resource_type: String,
        id: String,
        version: u64,
    },
}

/// Splits a relative request URL (an absolute one is cut down to the part after `/fhir/` or after
/// the first path segment that is a resource type).
pub(crate) fn parse_entry_url(url: &str) -> Option<EntryTarget> {
    let url = url.trim();
    let relative = match url.find("://") {
        Some(_) => {
            let path_start = url.find("/fhir/").map(|at| at + "/fhir/".len())?;
            &url[path_start..]
        }
        None => url.trim_start_matches('/'),
    };
    let (path, query) = match relative.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (relative, None),
    };
    let segments: Vec<&str> = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    match (segments.as_slice(), query) {
        ([resource_type], query) => Some(EntryTarget::Type {
            resource_type: (*resource_type).to_owned(),
            params: query.map(decode_query).unwrap_or_default(),
        }),
        ([resource_type, id], None) => Some(EntryTarget::Instance {
            resource_type: (*resource_type).to_owned(),
            id: (*id).to_owned(),
        }),
        ([resource_type, id, "_history", version], None) => Some(EntryTarget::Version {
            resource_type: (*resource_type).to_owned(),
            id: (*id).to_owned(),
            version: version.parse().ok()?,
        }),
        _ => None,
    }
}

/// Decodes an `application/x-www-form-urlencoded` query into ordered pairs.
pub(crate) fn decode_query(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

/// Replaces every string equal to a key of `resolved` (a `urn:uuid:` fullUrl or a conditional
/// reference) with its target (`Type/id`), wherever it occurs: `Reference.reference`, and
/// `uri`/`canonical` elements that carry the same placeholder.
pub(crate) fn rewrite_references(value: &mut Value, resolved: &HashMap<String, String>) {
    match value {
        Value::String(text) => {
            if let Some(target) = resolved.get(text.as_str()) {
                *text = target.clone();
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| rewrite_references(item, resolved)),
        Value::Object(object) => object
            .values_mut()
            .for_each(|item| rewrite_references(item, resolved)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Every `Reference.reference` of the form `Type?params` (a conditional reference), once each.
pub(crate) fn conditional_references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Array(items) => items
            .iter()
            .for_each(|item| conditional_references(item, found)),
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get("reference")
                && reference.contains('?')
                && !reference.contains("://")
                && !found.contains(reference)
            {
                found.push(reference.clone());
            }
            object
                .values()
                .for_each(|item| conditional_references(item, found));
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_entry_urls() {
        assert_eq!(
            parse_entry_url("Patient?identifier=urn%3Aoid%3A1%7C42&name=yamada"),
            Some(EntryTarget::Type {
                resource_type: "Patient".into(),
                params: vec![
                    ("identifier".into(), "urn:oid:1|42".into()),
                    ("name".into(), "yamada".into())
                ],
            })
        );
        assert_eq!(
            parse_entry_url("http://example.org/fhir/Observation/a-1"),
            Some(EntryTarget::Instance {
                resource_type: "Observation".into(),
                id: "a-1".into()
            })
        );
        assert_eq!(
            parse_entry_url("Patient/p1/_history/3"),
            Some(EntryTarget::Version {
                resource_type: "Patient".into(),
                id: "p1".into(),
                version: 3
            })
        );
        assert_eq!(parse_entry_url("Patient/p1/_history/x"), None);
        assert_eq!(parse_entry_url("http://example.org/other/Patient/1"), None);
    }

    #[test]
    fn rewrites_placeholders_everywhere_and_only_exact_matches() {
        let mut resource = serde_json::json!({
            "subject": {"reference": "urn:uuid:1"},
            "basedOn": [{"reference": "urn:uuid:2"}, {"reference": "urn:uuid:1x"}],
            "instantiatesUri": ["urn:uuid:2"]
        });
        let resolved = HashMap::from([
            ("urn:uuid:1".to_owned(), "Patient/a".to_owned()),
            ("urn:uuid:2".to_owned(), "ServiceRequest/b".to_owned()),
        ]);
        rewrite_references(&mut resource, &resolved);
        assert_eq!(
            resource,
            serde_json::json!({
                "subject": {"reference": "Patient/a"},
                "basedOn": [{"reference": "ServiceRequest/b"}, {"reference": "urn:uuid:1x"}],
                "instantiatesUri": ["ServiceRequest/b"]
            })
        );
    }

    #[test]
    fn finds_conditional_references_once() {
        let resource = serde_json::json!({
            "subject": {"reference": "Patient?identifier=x|1"},
            "performer": [{"reference": "Patient?identifier=x|1"}, {"reference": "Practitioner/1"}],
            "source": {"reference": "http://example.org/fhir/Patient?x=1"}
        });
        let mut found = Vec::new();
        conditional_references(&resource, &mut found);
        assert_eq!(found, vec!["Patient?identifier=x|1".to_owned()]);
    }
}
