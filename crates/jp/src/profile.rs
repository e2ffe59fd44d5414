//! The profile rules derived from the JP-CLINS packages (`data/profiles.json`) and their interpreter.
//!
//! `data/derive.py` reads the StructureDefinitions and writes, per profile, the cardinalities, fixed
//! values, value-discriminated slices and required bindings of small code systems that the profile's
//! differential states. This module walks a resource along those element paths and reports each
//! violation as an [`Issue`] whose expression is the element's FHIRPath-like location.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use fhir::{Issue, IssueCode};
use serde_json::Value;

const PROFILES_JSON: &str = include_str!("../data/profiles.json");

/// One compiled profile.
#[derive(Debug)]
pub(crate) struct Profile {
    /// The resource type it constrains.
    pub(crate) resource_type: String,
    /// Its short name, e.g. `JP_Condition_eCS`, for diagnostics.
    pub(crate) name: String,
    rules: Vec<Rule>,
}

#[derive(Debug)]
enum Rule {
    /// The element at `path` occurs `min..=max` times in each parent.
    Card {
        path: Vec<String>,
        min: usize,
        max: Option<usize>,
    },
    /// The primitive at `path` equals `value` wherever it occurs.
    Fixed { path: Vec<String>, value: String },
    /// The codes at `path` come from the value set.
    Binding {
        path: Vec<String>,
        value_set: String,
    },
    /// Among the elements at `path`, those whose `on` equals `value` form a slice.
    Slice {
        path: Vec<String>,
        name: String,
        on: String,
        value: String,
        min: usize,
        max: Option<usize>,
        children: Vec<Rule>,
    },
}

/// All compiled profiles and value sets.
#[derive(Debug)]
pub(crate) struct Profiles {
    by_url: HashMap<String, Profile>,
    value_sets: HashMap<String, HashSet<(String, String)>>,
    code_systems: HashMap<String, HashSet<String>>,
}

impl Profiles {
    /// The profiles compiled from `data/profiles.json`, parsed on first use.
    pub(crate) fn get() -> &'static Profiles {
        static PROFILES: OnceLock<Profiles> = OnceLock::new();
        PROFILES.get_or_init(|| {
            let data: Value =
                serde_json::from_str(PROFILES_JSON).expect("data/profiles.json is valid JSON");
            Profiles::from_json(&data)
        })
    }

    fn from_json(data: &Value) -> Profiles {
        let mut by_url = HashMap::new();
        for (url, profile) in data["profiles"].as_object().into_iter().flatten() {
            let resource_type = profile["type"].as_str().unwrap_or_default().to_owned();
            let rules = profile["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|rule| parse_rule(rule, true))
                .collect();
            let name = url.rsplit('/').next().unwrap_or(url).to_owned();
            by_url.insert(
                url.clone(),
                Profile {
                    resource_type,
                    name,
                    rules,
                },
            );
        }
        let mut value_sets = HashMap::new();
        for (url, codes) in data["valueSets"].as_object().into_iter().flatten() {
            let codes = codes
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|pair| {
                    Some((pair[0].as_str()?.to_owned(), pair[1].as_str()?.to_owned()))
                })
                .collect();
            value_sets.insert(url.clone(), codes);
        }
        let mut code_systems = HashMap::new();
        for (url, codes) in data["codeSystems"].as_object().into_iter().flatten() {
            let codes = codes
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|code| Some(code.as_str()?.to_owned()))
                .collect();
            code_systems.insert(url.clone(), codes);
        }
        Profiles {
            by_url,
            value_sets,
            code_systems,
        }
    }

    /// Reports every Coding in `value` (at `location`) whose system is a JP-CLINS code system compiled
    /// in and whose code is not one of its codes.
    pub(crate) fn check_codings(&self, value: &Value, location: &str, issues: &mut Vec<Issue>) {
        match value {
            Value::Object(object) => {
                if let (Some(system), Some(code)) = (
                    object.get("system").and_then(Value::as_str),
                    object.get("code").and_then(Value::as_str),
                ) && let Some(codes) = self.code_systems.get(system)
                    && !codes.contains(code)
                {
                    issues.push(Issue::error(
                        IssueCode::CodeInvalid,
                        Some(format!("{location}.code")),
                        format!("the code is not defined in the code system {system}"),
                    ));
                }
                for (key, child) in object {
                    self.check_codings(child, &format!("{location}.{key}"), issues);
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    self.check_codings(item, &format!("{location}[{index}]"), issues);
                }
            }
            _ => {}
        }
    }

    /// The profile with this canonical URL (a `|version` suffix is ignored).
    pub(crate) fn profile(&self, url: &str) -> Option<&Profile> {
        self.by_url.get(canonical_url(url))
    }

    /// Checks `resource` (found at `location`, e.g. `Bundle.entry[2].resource`) against `profile`.
    pub(crate) fn check(
        &self,
        profile: &Profile,
        resource: &Value,
        location: &str,
        issues: &mut Vec<Issue>,
    ) {
        let root = [Node {
            value: resource,
            location: location.to_owned(),
        }];
        for rule in &profile.rules {
            self.check_rule(profile, rule, &root, issues);
        }
    }

    fn check_rule(&self, profile: &Profile, rule: &Rule, roots: &[Node], issues: &mut Vec<Issue>) {
        match rule {
            Rule::Card { path, min, max } => {
                let (parent_path, last) = path.split_at(path.len() - 1);
                for parent in select(roots, parent_path) {
                    let found = children(&parent, &last[0]);
                    let element = format!("{}.{}", parent.location, last[0]);
                    if found.len() < *min {
                        issues.push(Issue::error(
                            IssueCode::Required,
                            Some(element),
                            format!(
                                "{} requires at least {min} of this element (profile cardinality)",
                                profile.name
                            ),
                        ));
                    } else if max.is_some_and(|max| found.len() > max) {
                        let max = max.unwrap_or_default();
                        issues.push(Issue::error(
                            IssueCode::Invalid,
                            Some(element),
                            format!(
                                "{} allows at most {max} of this element (profile cardinality)",
                                profile.name
                            ),
                        ));
                    }
                }
            }
            Rule::Fixed { path, value } => {
                for node in select(roots, path) {
                    if let Some(actual) = node.value.as_str()
                        && actual != value
                    {
                        issues.push(Issue::error(
                            IssueCode::Value,
                            Some(node.location),
                            format!("{} fixes this element to `{value}`", profile.name),
                        ));
                    }
                }
            }
            Rule::Binding { path, value_set } => {
                let Some(codes) = self.value_sets.get(value_set) else {
                    return;
                };
                for node in select(roots, path) {
                    if !in_value_set(node.value, codes) {
                        issues.push(Issue::error(
                            IssueCode::CodeInvalid,
                            Some(node.location),
                            format!(
                                "{} requires a code from the value set {value_set} (required binding)",
                                profile.name
                            ),
                        ));
                    }
                }
            }
            Rule::Slice {
                path,
                name,
                on,
                value,
                min,
                max,
                children: child_rules,
            } => {
                let (parent_path, last) = path.split_at(path.len() - 1);
                for parent in select(roots, parent_path) {
                    let members: Vec<Node> = children(&parent, &last[0])
                        .into_iter()
                        .filter(|member| member.value[on.as_str()].as_str() == Some(value.as_str()))
                        .collect();
                    let element = format!("{}.{}", parent.location, last[0]);
                    if members.len() < *min {
                        issues.push(Issue::error(
                            IssueCode::Required,
                            Some(element),
                            format!(
                                "{} requires at least {min} element with {on} {value} (slice {name})",
                                profile.name
                            ),
                        ));
                    } else if max.is_some_and(|max| members.len() > max) {
                        let max = max.unwrap_or_default();
                        issues.push(Issue::error(
                            IssueCode::Invalid,
                            Some(element),
                            format!(
                                "{} allows at most {max} element with {on} {value} (slice {name})",
                                profile.name
                            ),
                        ));
                    }
                    for child in child_rules {
                        self.check_rule(profile, child, &members, issues);
                    }
                }
            }
        }
    }
}

/// `url` without a `|version` suffix.
pub(crate) fn canonical_url(url: &str) -> &str {
    url.split('|').next().unwrap_or(url)
}

fn parse_rule(rule: &Value, rooted: bool) -> Option<Rule> {
    let path = |key: &str| -> Option<Vec<String>> {
        let text = rule[key].as_str()?;
        let mut segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        // Rooted paths start with the resource type, which is the root node itself.
        if rooted {
            segments.remove(0);
        }
        (!segments.is_empty()).then_some(segments)
    };
    let max = |rule: &Value| -> Option<usize> {
        match rule["max"].as_str() {
            Some("*") | None => None,
            Some(number) => number.parse().ok(),
        }
    };
    let min = rule["min"].as_u64().unwrap_or_default() as usize;
    if rule.get("card").is_some() {
        return Some(Rule::Card {
            path: path("card")?,
            min,
            max: max(rule),
        });
    }
    if rule.get("fixed").is_some() {
        return Some(Rule::Fixed {
            path: path("fixed")?,
            value: rule["value"].as_str()?.to_owned(),
        });
    }
    if rule.get("binding").is_some() {
        return Some(Rule::Binding {
            path: path("binding")?,
            value_set: rule["valueSet"].as_str()?.to_owned(),
        });
    }
    if rule.get("slice").is_some() {
        return Some(Rule::Slice {
            path: path("slice")?,
            name: rule["name"].as_str()?.to_owned(),
            on: rule["on"].as_str()?.to_owned(),
            value: rule["value"].as_str()?.to_owned(),
            min,
            max: max(rule),
            children: rule["children"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|child| parse_rule(child, false))
                .collect(),
        });
    }
    None
}

/// A value in a resource and where it is.
#[derive(Debug, Clone)]
pub(crate) struct Node<'a> {
    pub(crate) value: &'a Value,
    pub(crate) location: String,
}

/// All nodes reached from `roots` by following `path`.
fn select<'a>(roots: &[Node<'a>], path: &[String]) -> Vec<Node<'a>> {
    let mut nodes = roots.to_vec();
    for segment in path {
        nodes = nodes
            .iter()
            .flat_map(|node| children(node, segment))
            .collect();
    }
    nodes
}

/// The values of element `name` (`value[x]` matches any `valueXxx`) of an object node; array items
/// each become a node.
pub(crate) fn children<'a>(node: &Node<'a>, name: &str) -> Vec<Node<'a>> {
    let Some(object) = node.value.as_object() else {
        return Vec::new();
    };
    let found: Vec<(&String, &Value)> = match name.strip_suffix("[x]") {
        Some(stem) => object
            .iter()
            .filter(|(key, _)| {
                key.strip_prefix(stem)
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
            })
            .collect(),
        None => object.get_key_value(name).into_iter().collect(),
    };
    let mut nodes = Vec::new();
    for (key, value) in found {
        match value {
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    nodes.push(Node {
                        value: item,
                        location: format!("{}.{key}[{index}]", node.location),
                    });
                }
            }
            Value::Null => {}
            _ => nodes.push(Node {
                value,
                location: format!("{}.{key}", node.location),
            }),
        }
    }
    nodes
}

/// Whether a `code`, `Coding` or `CodeableConcept` value is in the value set.
fn in_value_set(value: &Value, codes: &HashSet<(String, String)>) -> bool {
    let coding_in = |coding: &Value| match (coding["system"].as_str(), coding["code"].as_str()) {
        (Some(system), Some(code)) => codes.contains(&(system.to_owned(), code.to_owned())),
        _ => false,
    };
    match value {
        Value::String(code) => codes.iter().any(|(_, known)| known == code),
        Value::Object(object) if object.contains_key("coding") => value["coding"]
            .as_array()
            .is_some_and(|codings| codings.iter().any(coding_in)),
        Value::Object(_) => coding_in(value),
        _ => true,
    }
}

#[cfg(test)]
mod tests;
