//! The R4 JSON Schema, compiled once into the lookup tables that validation and summaries walk.
//!
//! `data/fhir.schema.json` uses a small subset of JSON Schema, and this module understands exactly that
//! subset (anything else fails compilation, which a test exercises):
//!
//! - `definitions`, each either a primitive type (`type` string/number/boolean and a `pattern`), a
//!   closed object (`properties`, `required`, `additionalProperties: false`), `xhtml` (`{}`), or
//!   `ResourceList` (`oneOf` over every resource type);
//! - properties that are a `$ref`, an `enum` of codes, a `const` (`resourceType`), or an array
//!   (`type: array` with `items`) of a `$ref` or an `enum`.
//!
//! `ResourceList` is never tried branch by branch: the validator dispatches on `resourceType`.
//! `data/elements.json` adds what the schema cannot say: mandatory elements (a `status` that may be
//! present as `_status` only, a `value[x]` that any variant satisfies), choice groups, and the summary
//! elements of each resource type. `data/SOURCES.md` says where both files come from.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::RangeInclusive;
use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;

/// The compiled schema: every definition, and the resource types by name.
pub(crate) struct Schema {
    definitions: Vec<Definition>,
    resources: HashMap<Box<str>, DefinitionId>,
}

/// Index of a definition in [`Schema`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DefinitionId(u32);

/// What a schema definition accepts.
pub(crate) enum Definition {
    /// A primitive type such as `date`: one JSON scalar.
    Primitive(Primitive),
    /// A JSON object with known properties: a resource, a data type or a backbone element.
    Complex(Complex),
    /// Narrative XHTML: a non-empty string whose markup is not checked here.
    Xhtml,
    /// Any resource (`ResourceList`), dispatched on its `resourceType`.
    AnyResource,
}

/// A primitive type.
pub(crate) struct Primitive {
    /// The FHIR type name, e.g. `date`; diagnostics use it.
    pub(crate) name: Box<str>,
    /// The JSON type that carries the value.
    pub(crate) json_type: JsonType,
    /// The type's lexical format. For numbers it is checked against the number's exact source text,
    /// which `arbitrary_precision` keeps.
    pub(crate) format: Option<Format>,
    /// The value range of the integer types.
    pub(crate) range: Option<RangeInclusive<i64>>,
    /// The size limit of strings (FHIR: 1 MB), in bytes.
    pub(crate) max_bytes: Option<usize>,
}

/// The lexical format of a primitive type.
pub(crate) enum Format {
    /// The schema's regular expression, anchored at both ends.
    Pattern(Regex),
    /// `base64Binary`'s pattern, checked by hand (see [`is_base64`]).
    Base64,
}

/// The JSON types that carry primitive values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonType {
    String,
    Number,
    Boolean,
}

/// A JSON object type: a resource, data type or backbone element. Closed: no other properties.
pub(crate) struct Complex {
    /// For resource types, the `resourceType` their instances carry.
    pub(crate) resource_type: Option<Box<str>>,
    /// Every allowed JSON property, including `_name` primitive extensions and choice variants.
    pub(crate) properties: HashMap<Box<str>, Property>,
    /// Elements that must be present (FHIR `min > 0`).
    pub(crate) mandatory: Vec<Mandatory>,
    /// Choice elements (`value[x]`); [`Property::choice`] indexes this. At most 64.
    pub(crate) choices: Vec<Choice>,
    /// For resource types: the top-level JSON properties marked isSummary (choices and `_name`
    /// siblings expanded).
    pub(crate) summary: HashSet<Box<str>>,
}

/// One allowed JSON property of a [`Complex`] type.
pub(crate) struct Property {
    /// What each value must be.
    pub(crate) rule: Rule,
    /// Whether the JSON value is an array of such values.
    pub(crate) array: bool,
    /// Set on the variants of a choice element (and their `_name` siblings): the index of the
    /// choice in [`Complex::choices`].
    pub(crate) choice: Option<u8>,
}

/// The constraint on one value of a property.
pub(crate) enum Rule {
    /// An instance of the definition.
    Type(DefinitionId),
    /// A code from a required value set, listed in the specification's order.
    Code(Box<[Box<str>]>),
    /// Exactly this string (`resourceType`).
    Const(Box<str>),
}

/// A mandatory element and the JSON properties that count as its presence.
pub(crate) struct Mandatory {
    /// The element as FHIR names it: `status`, `value[x]`.
    pub(crate) element: Box<str>,
    /// `status` and `_status`; or every variant of a choice and their `_name` siblings.
    pub(crate) present_as: Box<[Box<str>]>,
}

/// A choice element: at most one of its variants may be present.
pub(crate) struct Choice {
    /// The element as FHIR names it: `value[x]`.
    pub(crate) element: Box<str>,
    /// The JSON property names of its variants: `valueQuantity`, `valueString`, ...
    pub(crate) variants: Box<[Box<str>]>,
}

impl Schema {
    /// The schema, compiled on first use.
    pub(crate) fn get() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| {
            compile(
                include_str!("../data/fhir.schema.json"),
                include_str!("../data/elements.json"),
            )
            .expect("the vendored schema is covered by the tests and compiles")
        })
    }

    /// The definition with this id.
    pub(crate) fn definition(&self, id: DefinitionId) -> &Definition {
        &self.definitions[id.0 as usize]
    }

    /// The definition of a resource type, or `None` if `resource_type` is not an R4 resource type.
    pub(crate) fn resource(&self, resource_type: &str) -> Option<&Complex> {
        match self.definition(*self.resources.get(resource_type)?) {
            Definition::Complex(complex) => Some(complex),
            _ => None,
        }
    }

    /// The resource types the schema defines.
    #[cfg(test)]
    pub(crate) fn resource_type_names(&self) -> impl Iterator<Item = &str> {
        self.resources.keys().map(|name| &**name)
    }
}

impl Complex {
    /// Whether `property` is one of the JSON properties that make up a mandatory element.
    pub(crate) fn is_mandatory(&self, property: &str) -> bool {
        self.mandatory
            .iter()
            .any(|mandatory| mandatory.present_as.iter().any(|name| **name == *property))
    }
}

impl Format {
    /// Whether `text` is in this format.
    pub(crate) fn matches(&self, text: &str) -> bool {
        match self {
            Format::Pattern(regex) => regex.is_match(text),
            Format::Base64 => is_base64(text),
        }
    }
}

impl JsonType {
    /// How diagnostics name the JSON type.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            JsonType::String => "string",
            JsonType::Number => "number",
            JsonType::Boolean => "boolean",
        }
    }
}

/// The schema's pattern for `string` and `markdown`: any non-empty text.
const ANY_TEXT_PATTERN: &str = r"^[ \r\n\t\S]+$";

/// The schema's pattern for `base64Binary`, which [`is_base64`] implements.
const BASE64_PATTERN: &str = r"^(\s*([0-9a-zA-Z\+/=]){4}\s*)+$";

/// FHIR's size limit for `string` (and `markdown`, a specialisation of it).
const MAX_STRING_BYTES: usize = 1024 * 1024;

/// Compiles the schema text and the elements table into a [`Schema`].
///
/// # Errors
///
/// A message naming the definition and the construct this module does not understand.
pub(crate) fn compile(schema_json: &str, elements_json: &str) -> Result<Schema, String> {
    let raw: RawSchema =
        serde_json::from_str(schema_json).map_err(|error| format!("schema: {error}"))?;
    let mut elements: BTreeMap<String, RawElements> =
        serde_json::from_str(elements_json).map_err(|error| format!("elements table: {error}"))?;
    if let Some(unknown) = elements
        .keys()
        .find(|name| !raw.definitions.contains_key(*name))
    {
        return Err(format!(
            "elements table: `{unknown}` is not a schema definition"
        ));
    }

    let ids: HashMap<&str, DefinitionId> = raw
        .definitions
        .keys()
        .enumerate()
        .map(|(index, name)| (name.as_str(), DefinitionId(index as u32)))
        .collect();
    let resolve = |reference: &str| -> Result<DefinitionId, String> {
        reference
            .strip_prefix("#/definitions/")
            .and_then(|name| ids.get(name).copied())
            .ok_or_else(|| format!("dangling reference `{reference}`"))
    };

    let mut definitions = Vec::with_capacity(raw.definitions.len());
    for (name, definition) in &raw.definitions {
        let extra = elements.remove(name).unwrap_or_default();
        let compiled = compile_definition(name, definition, extra, &resolve)
            .map_err(|message| format!("definition `{name}`: {message}"))?;
        definitions.push(compiled);
    }

    if raw.discriminator.property_name != "resourceType" {
        return Err("the root discriminator is not `resourceType`".to_owned());
    }
    let mut resources = HashMap::new();
    for (resource_type, reference) in &raw.discriminator.mapping {
        let id = resolve(reference)?;
        match &definitions[id.0 as usize] {
            Definition::Complex(Complex {
                resource_type: Some(declared),
                ..
            }) if **declared == **resource_type => {}
            _ => {
                return Err(format!(
                    "discriminator: `{resource_type}` is not a resource definition"
                ));
            }
        }
        resources.insert(resource_type.as_str().into(), id);
    }
    Ok(Schema {
        definitions,
        resources,
    })
}

fn compile_definition(
    name: &str,
    raw: &RawDefinition,
    elements: RawElements,
    resolve: &impl Fn(&str) -> Result<DefinitionId, String>,
) -> Result<Definition, String> {
    if let Some(branches) = &raw.one_of {
        // Every branch is checked to be a resource when the discriminator is compiled.
        for branch in branches {
            resolve(&branch.reference)?;
        }
        return Ok(Definition::AnyResource);
    }
    if let Some(properties) = &raw.properties {
        if raw.additional_properties != Some(false) {
            return Err(
                "only closed objects (`additionalProperties: false`) are supported".to_owned(),
            );
        }
        return compile_complex(properties, &raw.required, elements, resolve)
            .map(Definition::Complex);
    }
    let json_type = match raw.json_type.as_deref() {
        None if name == "xhtml" && raw.pattern.is_none() => return Ok(Definition::Xhtml),
        Some("string") => JsonType::String,
        Some("number") => JsonType::Number,
        Some("boolean") => JsonType::Boolean,
        _ => return Err("unsupported primitive type".to_owned()),
    };
    let format = match &raw.pattern {
        // A JSON boolean has no text to match; the schema's pattern for it is a leftover.
        None => None,
        Some(_) if json_type == JsonType::Boolean => None,
        // With XML Schema's `\s`, `[ \r\n\t\S]+` accepts every non-empty text, and emptiness is
        // checked for all strings anyway: no need to run a regex over every `string` and `markdown`.
        Some(pattern) if pattern == ANY_TEXT_PATTERN => None,
        Some(pattern) if pattern == BASE64_PATTERN => Some(Format::Base64),
        Some(pattern) => Some(Format::Pattern(
            fhir_regex(pattern).map_err(|error| format!("pattern: {error}"))?,
        )),
    };
    let range = match name {
        "integer" => Some(i64::from(i32::MIN)..=i64::from(i32::MAX)),
        "positiveInt" => Some(1..=i64::from(i32::MAX)),
        "unsignedInt" => Some(0..=i64::from(i32::MAX)),
        _ => None,
    };
    let max_bytes = matches!(name, "string" | "markdown").then_some(MAX_STRING_BYTES);
    Ok(Definition::Primitive(Primitive {
        name: name.into(),
        json_type,
        format,
        range,
        max_bytes,
    }))
}

fn compile_complex(
    raw_properties: &BTreeMap<String, RawProperty>,
    required: &[String],
    elements: RawElements,
    resolve: &impl Fn(&str) -> Result<DefinitionId, String>,
) -> Result<Complex, String> {
    let mut resource_type = None;
    let mut properties = HashMap::with_capacity(raw_properties.len());
    for (name, raw) in raw_properties {
        let (rule, array) = match (&raw.json_type, &raw.items) {
            (Some(array_type), Some(items)) if array_type == "array" => {
                (compile_rule(items, resolve), true)
            }
            (None, None) => (compile_rule(raw, resolve), false),
            _ => (Err("unsupported shape".to_owned()), false),
        };
        let rule = rule.map_err(|message| format!("property `{name}`: {message}"))?;
        if let Rule::Const(value) = &rule {
            if name != "resourceType" {
                return Err(format!(
                    "property `{name}`: `const` is only supported on `resourceType`"
                ));
            }
            resource_type = Some(value.clone());
        }
        properties.insert(
            name.as_str().into(),
            Property {
                rule,
                array,
                choice: None,
            },
        );
    }

    let mut choices = Vec::with_capacity(elements.choices.len());
    for (base, variants) in elements.choices {
        let index = u8::try_from(choices.len())
            .ok()
            .filter(|index| *index < 64)
            .ok_or("more than 64 choices")?;
        for variant in &variants {
            for name in [variant.clone(), format!("_{variant}")] {
                if let Some(property) = properties.get_mut(name.as_str()) {
                    property.choice = Some(index);
                } else if !name.starts_with('_') {
                    return Err(format!("choice variant `{name}` is not a property"));
                }
            }
        }
        choices.push(Choice {
            element: format!("{base}[x]").into(),
            variants: variants.into_iter().map(String::into_boxed_str).collect(),
        });
    }

    // The JSON properties an element may appear as: itself and its primitive extension, or for a
    // choice every variant and their primitive extensions.
    let present_as = |element: &str| -> Result<Box<[Box<str>]>, String> {
        let names: Vec<&str> = match element.strip_suffix("[x]") {
            Some(_) => choices
                .iter()
                .find(|choice| *choice.element == *element)
                .ok_or_else(|| format!("`{element}` is not a choice"))?
                .variants
                .iter()
                .map(|variant| &**variant)
                .collect(),
            None => vec![element],
        };
        let mut present_as = Vec::with_capacity(names.len() * 2);
        for name in names {
            if !properties.contains_key(name) {
                return Err(format!("`{name}` is not a property"));
            }
            present_as.push(Box::from(name));
            let extension = format!("_{name}");
            if properties.contains_key(extension.as_str()) {
                present_as.push(extension.into_boxed_str());
            }
        }
        Ok(present_as.into_boxed_slice())
    };

    let mut mandatory = Vec::new();
    for element in &elements.mandatory {
        mandatory.push(Mandatory {
            element: element.as_str().into(),
            present_as: present_as(element)?,
        });
    }
    for name in required {
        let covered = name == "resourceType"
            || mandatory
                .iter()
                .any(|known| known.present_as.iter().any(|present| **present == **name));
        if !covered {
            mandatory.push(Mandatory {
                element: name.as_str().into(),
                present_as: present_as(name)?,
            });
        }
    }
    let mut summary = HashSet::new();
    for element in &elements.summary {
        summary.extend(present_as(element)?);
    }
    Ok(Complex {
        resource_type,
        properties,
        mandatory,
        choices,
        summary,
    })
}

fn compile_rule(
    raw: &RawProperty,
    resolve: &impl Fn(&str) -> Result<DefinitionId, String>,
) -> Result<Rule, String> {
    match raw {
        RawProperty {
            reference: Some(reference),
            json_type: None,
            items: None,
            codes: None,
            constant: None,
        } => resolve(reference).map(Rule::Type),
        RawProperty {
            reference: None,
            json_type: None,
            items: None,
            codes: Some(codes),
            constant: None,
        } => Ok(Rule::Code(
            codes.iter().map(|code| code.as_str().into()).collect(),
        )),
        RawProperty {
            reference: None,
            json_type: None,
            items: None,
            codes: None,
            constant: Some(constant),
        } => Ok(Rule::Const(constant.as_str().into())),
        _ => Err("unsupported shape".to_owned()),
    }
}

/// Compiles a FHIR regular expression, anchored at both ends.
///
/// FHIR's expressions come from XML Schema, where `\s` is exactly space, tab, CR and LF. In Rust (and
/// JavaScript) `\s` is Unicode white space, which would reject the ideographic space U+3000 that
/// Japanese names and addresses routinely contain; so `\s` and `\S` are spelt out. The whole pattern
/// is wrapped in `^(?:…)$`, which also repairs the schema's unanchored alternations such as
/// unsignedInt's `^[0]|([1-9][0-9]*)$`.
pub(crate) fn fhir_regex(pattern: &str) -> Result<Regex, regex::Error> {
    const SPACE: &str = " \\t\\n\\r";
    let mut translated = String::with_capacity(pattern.len() + 16);
    let mut in_class = false;
    let mut chars = pattern.chars();
    while let Some(char) = chars.next() {
        match char {
            '\\' => match chars.next() {
                Some('s') if in_class => translated.push_str(SPACE),
                Some('s') => translated.push_str(&format!("[{SPACE}]")),
                Some('S') => translated.push_str(&format!("[^{SPACE}]")),
                Some(escaped) => {
                    translated.push('\\');
                    translated.push(escaped);
                }
                None => translated.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                translated.push(char);
            }
            ']' if in_class => {
                in_class = false;
                translated.push(char);
            }
            _ => translated.push(char),
        }
    }
    Regex::new(&format!("^(?:{translated})$"))
}

/// FHIR's `base64Binary` format, `(\s*([0-9a-zA-Z\+/=]){4}\s*)+`: base64 characters in groups of
/// four, white space only between groups.
///
/// Written out by hand because the regex engine spends several nanoseconds a byte on this pattern,
/// and attachments run to megabytes; a test checks it against the regular expression.
fn is_base64(text: &str) -> bool {
    fn in_alphabet(byte: u8) -> bool {
        byte.is_ascii_alphanumeric() | (byte == b'+') | (byte == b'/') | (byte == b'=')
    }
    let bytes = text.as_bytes();
    // Attachments are usually one unbroken run; a fold without early exit lets the compiler check it
    // many bytes at a time.
    if bytes
        .iter()
        .fold(true, |all, byte| all & in_alphabet(*byte))
    {
        return !bytes.is_empty() && bytes.len().is_multiple_of(4);
    }
    let mut characters = 0usize;
    for byte in bytes {
        match *byte {
            byte if in_alphabet(byte) => characters += 1,
            b' ' | b'\t' | b'\n' | b'\r' if characters.is_multiple_of(4) => {}
            _ => return false,
        }
    }
    characters > 0 && characters.is_multiple_of(4)
}

#[derive(Deserialize)]
struct RawSchema {
    definitions: BTreeMap<String, RawDefinition>,
    discriminator: RawDiscriminator,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDiscriminator {
    property_name: String,
    mapping: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawDefinition {
    properties: Option<BTreeMap<String, RawProperty>>,
    #[serde(default)]
    required: Vec<String>,
    additional_properties: Option<bool>,
    #[serde(rename = "type")]
    json_type: Option<String>,
    pattern: Option<String>,
    one_of: Option<Vec<RawReference>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProperty {
    #[serde(rename = "$ref")]
    reference: Option<String>,
    #[serde(rename = "type")]
    json_type: Option<String>,
    items: Option<Box<RawProperty>>,
    #[serde(rename = "enum")]
    codes: Option<Vec<String>>,
    #[serde(rename = "const")]
    constant: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReference {
    #[serde(rename = "$ref")]
    reference: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawElements {
    #[serde(default)]
    summary: Vec<String>,
    #[serde(default)]
    mandatory: Vec<String>,
    #[serde(default)]
    choices: BTreeMap<String, Vec<String>>,
}

#[cfg(test)]
mod tests;
