//! The parameter registry: built once from the vendored R4 definitions, it holds every supported
//! parameter per resource type with its compiled expression, the unsupported ones (so that parsing
//! can say "unsupported" rather than "unknown"), and the Patient compartment definition.

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;
use store::{IndexEntry, IndexValue, ParamKind};

use crate::fhirpath::{self, Expr};
use crate::{ParsedSearch, SearchError, SearchParamDef, SearchRequest};

pub(crate) const SEARCH_PARAMETERS: &str = include_str!("../data/search-parameters.json");
pub(crate) const PATIENT_COMPARTMENT: &str =
    include_str!("../data/CompartmentDefinition-patient.json");

/// The pseudo type under which the parameters of every resource (`_id`, `_tag`, …) are kept, for
/// system searches.
pub(crate) const RESOURCE: &str = "Resource";

/// Every search parameter this crate supports, per resource type, with compiled expressions.
#[derive(Debug)]
pub struct Registry {
    /// Every R4 resource type, plus [`RESOURCE`] for the parameters common to all of them.
    types: HashMap<String, TypeParams>,
    /// Per resource type, the parameters that place a resource in a Patient's compartment.
    compartment_params: HashMap<String, Vec<String>>,
}

/// The parameters of one resource type.
#[derive(Debug, Default)]
pub(crate) struct TypeParams {
    /// Supported parameters, sorted by code.
    params: Vec<Param>,
    /// Codes of the official parameters that this crate does not support, sorted.
    unsupported: Vec<String>,
}

/// A supported parameter on one resource type.
#[derive(Debug, Clone)]
pub(crate) struct Param {
    pub def: SearchParamDef,
    /// `None` for `_id` and `_lastUpdated`, which backends answer from their own columns (the
    /// store stamps `meta.lastUpdated` after extraction).
    pub expr: Option<Expr>,
    /// `<code>:identifier`, the synthetic parameter of `Reference.identifier` tokens.
    pub identifier_param: String,
    /// `<code>:of-type`, the synthetic parameter of `Identifier.type` tokens.
    pub of_type_param: String,
}

/// What building found: counts of (base type, parameter) pairs, and expressions that failed to
/// compile.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct BuildReport {
    pub definitions: usize,
    pub supported: usize,
    pub composite: usize,
    pub special: usize,
    /// `(base type, code, error)` for expressions that did not compile (the parameter is dropped).
    pub failures: Vec<(String, String, String)>,
}

/// Why a parameter name cannot be used on a set of types.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lookup<'r> {
    Found(&'r Param),
    Unsupported,
    Unknown,
}

impl Registry {
    /// The R4 registry, built on first use from the vendored definitions.
    pub fn r4() -> &'static Registry {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        REGISTRY.get_or_init(|| {
            // The data is vendored and checked by the tests, so failing here is a build defect.
            Registry::build(SEARCH_PARAMETERS, PATIENT_COMPARTMENT)
                .map(|(registry, _)| registry)
                .expect("the vendored R4 search definitions are valid")
        })
    }

    /// Every supported parameter usable on `resource_type` (including `_id`, `_lastUpdated`,
    /// `_tag`, `_profile`, `_security`, `_source`), sorted by code. Empty for an unknown type.
    pub fn params(&self, resource_type: &str) -> Vec<&SearchParamDef> {
        self.types
            .get(resource_type)
            .map(|type_params| type_params.params.iter().map(|param| &param.def).collect())
            .unwrap_or_default()
    }

    /// One supported parameter of `resource_type`.
    pub fn param(&self, resource_type: &str, code: &str) -> Option<&SearchParamDef> {
        self.find(resource_type, code).map(|param| &param.def)
    }

    /// The index entries of `resource`, a resource of `resource_type`: one per (parameter,
    /// distinct value). `_id` and `_lastUpdated` are not extracted (backends keep them in their
    /// own columns).
    pub fn extract(&self, resource_type: &str, resource: &Value) -> Vec<IndexEntry> {
        let mut entries = Vec::new();
        if let Some(type_params) = self.types.get(resource_type) {
            for param in &type_params.params {
                crate::extract::extract_param(param, resource, &mut entries);
            }
        }
        entries
    }

    /// The ids of the Patients whose compartment holds this resource, sorted: a Patient is in its
    /// own; other resources are in the compartments of the Patients their compartment parameters
    /// (per the official CompartmentDefinition) reference as `Patient/<id>`.
    pub fn compartments(
        &self,
        resource_type: &str,
        id: &str,
        entries: &[IndexEntry],
    ) -> Vec<String> {
        let mut patients = BTreeSet::new();
        if resource_type == "Patient" && !id.is_empty() {
            patients.insert(id.to_owned());
        }
        if let Some(params) = self.compartment_params.get(resource_type) {
            for entry in entries {
                if let IndexValue::Reference {
                    target_type: Some(target_type),
                    target_id: Some(target_id),
                    ..
                } = &entry.value
                    && target_type == "Patient"
                    && params.contains(&entry.param)
                {
                    patients.insert(target_id.clone());
                }
            }
        }
        patients.into_iter().collect()
    }

    /// Parses a search request against the parameters of its types.
    ///
    /// # Errors
    /// Every problem found, each naming its parameter: invalid values and modifiers always, and
    /// unknown or unsupported parameters under strict handling.
    pub fn parse(&self, request: &SearchRequest<'_>) -> Result<ParsedSearch, Vec<SearchError>> {
        crate::parse::parse(self, request)
    }

    /// Whether `resource_type` is an R4 resource type.
    pub(crate) fn is_type(&self, resource_type: &str) -> bool {
        resource_type != RESOURCE && self.types.contains_key(resource_type)
    }

    /// A supported parameter of `resource_type` (or of every resource, for [`RESOURCE`]).
    pub(crate) fn find(&self, resource_type: &str, code: &str) -> Option<&Param> {
        let params = &self.types.get(resource_type)?.params;
        params
            .binary_search_by(|param| param.def.code.as_str().cmp(code))
            .ok()
            .map(|index| &params[index])
    }

    /// Looks `code` up on `resource_type`, telling unsupported official parameters from unknown
    /// ones.
    pub(crate) fn lookup(&self, resource_type: &str, code: &str) -> Lookup<'_> {
        if let Some(param) = self.find(resource_type, code) {
            return Lookup::Found(param);
        }
        let unsupported = self.types.get(resource_type).is_some_and(|type_params| {
            type_params
                .unsupported
                .binary_search_by(|unsupported| unsupported.as_str().cmp(code))
                .is_ok()
        });
        if unsupported || matches!(code, "_filter" | "_list" | "_contained" | "_containedType") {
            Lookup::Unsupported
        } else {
            Lookup::Unknown
        }
    }

    /// Builds a registry from a `SearchParameter` bundle and the Patient `CompartmentDefinition`.
    pub(crate) fn build(
        search_parameters: &str,
        compartment: &str,
    ) -> Result<(Registry, BuildReport), String> {
        let bundle: RawBundle = serde_json::from_str(search_parameters)
            .map_err(|error| format!("search parameters: {error}"))?;
        let compartment: RawCompartment = serde_json::from_str(compartment)
            .map_err(|error| format!("compartment definition: {error}"))?;

        let mut types: HashMap<String, TypeParams> = compartment
            .resource
            .iter()
            .map(|resource| (resource.code.clone(), TypeParams::default()))
            .collect();
        types.insert(RESOURCE.to_owned(), TypeParams::default());
        let mut report = BuildReport::default();
        let mut common = TypeParams::default();

        for entry in bundle.entry {
            let raw = entry.resource;
            for base in &raw.base {
                report.definitions += 1;
                let common_level = base == "Resource" || base == "DomainResource";
                let target = if common_level {
                    &mut common
                } else {
                    types.entry(base.clone()).or_default()
                };
                let kind = match raw.kind.as_str() {
                    "token" => ParamKind::Token,
                    "string" => ParamKind::String,
                    "date" => ParamKind::Date,
                    "reference" => ParamKind::Reference,
                    "quantity" => ParamKind::Quantity,
                    "number" => ParamKind::Number,
                    "uri" => ParamKind::Uri,
                    other => {
                        if other == "composite" {
                            report.composite += 1;
                        } else {
                            report.special += 1;
                        }
                        target.unsupported.push(raw.code.clone());
                        continue;
                    }
                };
                let Some(expression) = raw.expression.as_deref() else {
                    report.special += 1;
                    target.unsupported.push(raw.code.clone());
                    continue;
                };
                let Some(expression) = fhirpath::branches_for(expression, base) else {
                    let problem = "no branch of the expression applies to this base type";
                    report
                        .failures
                        .push((base.clone(), raw.code.clone(), problem.to_owned()));
                    continue;
                };
                let expr = match fhirpath::compile(&expression, base) {
                    Ok(expr) => expr,
                    Err(error) => {
                        report
                            .failures
                            .push((base.clone(), raw.code.clone(), error.to_string()));
                        target.unsupported.push(raw.code.clone());
                        continue;
                    }
                };
                report.supported += 1;
                let extracted = !matches!(raw.code.as_str(), "_id" | "_lastUpdated");
                target.params.push(Param {
                    def: SearchParamDef {
                        code: raw.code.clone(),
                        url: raw.url.clone(),
                        kind,
                        expression,
                        targets: raw.target.clone(),
                        documentation: documentation_for(raw.description.as_deref(), base),
                    },
                    expr: extracted.then_some(expr),
                    identifier_param: format!("{}:identifier", raw.code),
                    of_type_param: format!("{}:of-type", raw.code),
                });
            }
        }

        for type_params in types.values_mut() {
            type_params.params.extend(common.params.iter().cloned());
            type_params
                .unsupported
                .extend(common.unsupported.iter().cloned());
            type_params
                .params
                .sort_by(|a, b| a.def.code.cmp(&b.def.code));
            type_params.unsupported.sort();
            type_params.unsupported.dedup();
        }

        let compartment_params = compartment
            .resource
            .into_iter()
            .filter(|resource| !resource.param.is_empty())
            .map(|resource| (resource.code, resource.param))
            .collect();
        let registry = Registry {
            types,
            compartment_params,
        };
        Ok((registry, report))
    }
}

/// The part of a definition's description that concerns `base`: shared definitions describe each
/// base type on its own line (`* [Condition](condition.html): Code for the condition`).
fn documentation_for(description: Option<&str>, base: &str) -> String {
    let Some(description) = description else {
        return String::new();
    };
    if !description.starts_with("Multiple Resources:") {
        return description.trim().to_owned();
    }
    let marker = format!("* [{base}](");
    description
        .lines()
        .find_map(|line| line.trim().strip_prefix(marker.as_str()))
        .and_then(|rest| rest.split_once("): "))
        .map(|(_, text)| text.trim().to_owned())
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct RawBundle {
    entry: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    resource: RawParam,
}

#[derive(Deserialize)]
struct RawParam {
    url: String,
    code: String,
    base: Vec<String>,
    #[serde(rename = "type")]
    kind: String,
    expression: Option<String>,
    #[serde(default)]
    target: Vec<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
struct RawCompartment {
    resource: Vec<RawCompartmentResource>,
}

#[derive(Deserialize)]
struct RawCompartmentResource {
    code: String,
    #[serde(default)]
    param: Vec<String>,
}
