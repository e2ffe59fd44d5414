//! Reduced views of a resource for the `_summary` and `_elements` search parameters.
//!
//! Both keep `resourceType`, `id`, `meta` and the resource type's mandatory top-level elements, work on
//! top-level elements only (a kept element is kept whole), and mark a resource they removed anything
//! from with the `SUBSETTED` tag, as FHIR requires, so that nobody stores it back as if it were whole.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::schema::{Complex, Schema};

/// The `_summary` modes that return a reduced resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryMode {
    /// `_summary=true`: the elements marked isSummary in the base definition.
    True,
    /// `_summary=text`: `text`, `id`, `meta` and the mandatory top-level elements.
    Text,
    /// `_summary=data`: everything but `text`.
    Data,
}

/// The system of the `SUBSETTED` tag.
const OBSERVATION_VALUE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

/// Top-level elements every reduced view keeps.
const ALWAYS_KEPT: [&str; 3] = ["resourceType", "id", "meta"];

/// The resource as `_summary` asks for it.
///
/// `True` keeps `resourceType`, `id`, `meta`, the top-level elements marked isSummary and the
/// mandatory ones; for a resource type this crate does not know, only the first three. A value that is
/// not a JSON object is returned unchanged.
pub fn summarize(resource: &Value, mode: SummaryMode) -> Value {
    let Some(object) = resource.as_object() else {
        return resource.clone();
    };
    let definition = definition_of(object);
    subset(object, |name| match mode {
        SummaryMode::True => {
            ALWAYS_KEPT.contains(&name)
                || definition.is_some_and(|definition| {
                    definition.summary.contains(name) || definition.is_mandatory(name)
                })
        }
        SummaryMode::Text => {
            ALWAYS_KEPT.contains(&name)
                || name == "text"
                || definition.is_some_and(|definition| definition.is_mandatory(name))
        }
        SummaryMode::Data => name != "text",
    })
}

/// The resource as `_elements` asks for it.
///
/// Keeps `resourceType`, `id`, `meta`, the mandatory top-level elements and the listed ones. A listed
/// name is a top-level element, optionally prefixed by the resource type (`Patient.name`); a choice is
/// listed by its base name (`value` keeps `valueQuantity`), and an element's primitive extension
/// (`_birthDate`) goes with it. Names that match nothing are ignored.
pub fn select_elements(resource: &Value, elements: &[String]) -> Value {
    let Some(object) = resource.as_object() else {
        return resource.clone();
    };
    let definition = definition_of(object);
    let resource_type = object
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let listed: HashSet<&str> = elements
        .iter()
        .map(|element| {
            let element = element.trim();
            element
                .strip_prefix(resource_type)
                .and_then(|rest| rest.strip_prefix('.'))
                .unwrap_or(element)
        })
        .collect();
    subset(object, |name| {
        let element = name.strip_prefix('_').unwrap_or(name);
        ALWAYS_KEPT.contains(&name)
            || listed.contains(element)
            || definition.is_some_and(|definition| {
                definition.is_mandatory(name)
                    || is_variant_of_listed_choice(definition, name, &listed)
            })
    })
}

fn definition_of(object: &Map<String, Value>) -> Option<&'static Complex> {
    Schema::get().resource(object.get("resourceType")?.as_str()?)
}

fn is_variant_of_listed_choice(definition: &Complex, name: &str, listed: &HashSet<&str>) -> bool {
    let Some(choice) = definition
        .properties
        .get(name)
        .and_then(|property| property.choice)
    else {
        return false;
    };
    let element = &definition.choices[usize::from(choice)].element;
    element
        .strip_suffix("[x]")
        .is_some_and(|base| listed.contains(base))
}

/// Copies the top-level elements `keep` accepts, tagging the copy if anything was left out.
fn subset(object: &Map<String, Value>, keep: impl Fn(&str) -> bool) -> Value {
    let mut result = Map::with_capacity(object.len());
    let mut removed = false;
    for (name, value) in object {
        if keep(name) {
            result.insert(name.clone(), value.clone());
        } else {
            removed = true;
        }
    }
    if removed {
        tag_subsetted(&mut result);
    }
    Value::Object(result)
}

/// Adds the `SUBSETTED` tag to `meta.tag`, creating `meta` (after `resourceType` and `id`, where FHIR
/// puts it) and `tag` as needed.
fn tag_subsetted(resource: &mut Map<String, Value>) {
    if !resource.contains_key("meta") {
        let position = resource
            .keys()
            .enumerate()
            .filter(|(_, name)| *name == "resourceType" || *name == "id")
            .map(|(index, _)| index + 1)
            .max()
            .unwrap_or(0);
        resource.shift_insert(position, "meta".to_owned(), Value::Object(Map::new()));
    }
    let Some(Value::Object(meta)) = resource.get_mut("meta") else {
        // A `meta` that is not an object is invalid anyway; there is nowhere to put the tag.
        return;
    };
    let Value::Array(tags) = meta
        .entry("tag")
        .or_insert_with(|| Value::Array(Vec::new()))
    else {
        return;
    };
    let tagged = tags.iter().any(|tag| {
        tag.get("system").and_then(Value::as_str) == Some(OBSERVATION_VALUE_SYSTEM)
            && tag.get("code").and_then(Value::as_str) == Some("SUBSETTED")
    });
    if !tagged {
        tags.push(json!({ "system": OBSERVATION_VALUE_SYSTEM, "code": "SUBSETTED" }));
    }
}

#[cfg(test)]
mod tests;
