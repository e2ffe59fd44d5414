//! Search URL parsing: turns decoded query pairs into a [`store::SearchQuery`] against the
//! parameters of the searched types.
//!
//! Every parameter instance becomes one AND group of OR alternatives (its comma-separated values),
//! with two exceptions: token `:not` puts each value in its own group (`:not=a,b` excludes both),
//! and a chain whose target types read the chained parameter differently splits per type.
//!
//! Problems come in three classes. A value or modifier that cannot be understood is always an
//! error. A parameter this server does not know or support is an error under
//! `Prefer: handling=strict` and otherwise ignored with a warning; so is a result parameter feature
//! that is not supported (`_include=*`, `_contained`). A parameter with an empty value is ignored
//! with a warning in both modes.
//!
//! Choices left open by the specification:
//! - Numbers and quantities: `eq`, `ne` and `ap` use the range implied by the value's precision;
//!   the ordering prefixes (`gt`, `lt`, `ge`, `le`, `sa`, `eb`) compare with the value itself, so
//!   `gt5.4` matches 5.41.
//! - `ap` on numbers and quantities also admits ±10% of the value. On dates, where the
//!   specification asks for 10% of the distance from now, this pure parser widens the range on
//!   each side by 10% of its own width and by at least one day, so results do not depend on the
//!   clock.
//! - `_summary=count` asks the store for no page and an accurate total.
//! - Repeated `_type`, `_sort` and `_elements` parameters add up, in the order given.

#[cfg(test)]
mod tests;

use store::{
    Condition, DateBound, Include, PageCursor, ParamKind, Prefix, SearchQuery, SortKey, SortParam,
    StringMode, TokenSystem, TotalMode, UriMode, ValueTest,
};

use crate::extract::{is_id, is_type_name};
use crate::registry::{Lookup, RESOURCE, Registry};
use crate::value::{
    Decimal, normalize_string, parse_date_range, parse_decimal, split_unescaped, unescape,
};
use crate::{ParsedSearch, SearchError, SearchRequest, Summary};

const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;

/// Parses `request` against `registry`.
pub(crate) fn parse(
    registry: &Registry,
    request: &SearchRequest<'_>,
) -> Result<ParsedSearch, Vec<SearchError>> {
    let mut parser = QueryParser {
        registry,
        strict: request.strict,
        max_count: request.max_count,
        scope: request.types.to_vec(),
        query: SearchQuery {
            types: request.types.to_vec(),
            compartment: request.compartment.clone(),
            count: request.default_count.min(request.max_count),
            ..SearchQuery::default()
        },
        summary: None,
        elements: None,
        errors: Vec::new(),
        warnings: Vec::new(),
        canonical: Vec::new(),
    };
    parser.types(request.params);
    for (name, value) in request.params {
        parser.param(name, value);
    }
    parser.finish()
}

/// What went wrong with one parameter.
#[derive(Debug, Clone, PartialEq)]
enum Problem {
    /// A value or modifier that cannot be understood: always an error.
    Invalid(String),
    /// A parameter (or feature) that is unknown or unsupported: an error when strict, else ignored.
    NotSupported(String),
    /// A parameter without a value: ignored, with a warning, in both modes.
    Ignored(String),
}

fn invalid<T>(message: impl Into<String>) -> Result<T, Problem> {
    Err(Problem::Invalid(message.into()))
}

fn not_supported<T>(message: impl Into<String>) -> Result<T, Problem> {
    Err(Problem::NotSupported(message.into()))
}

/// AND groups of OR alternatives.
type Groups = Vec<Vec<Condition>>;

/// A parameter resolved on every type of a scope.
struct Resolved<'r> {
    code: &'r str,
    kind: ParamKind,
    /// Union of the reference targets on the scope's types.
    targets: Vec<&'r str>,
}

/// Where a filter parameter sits: at the top of the query, or inside a chain or `_has`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Depth {
    Top,
    Nested,
}

struct QueryParser<'r> {
    registry: &'r Registry,
    strict: bool,
    max_count: u32,
    /// The types whose parameters apply: the searched type, the `_type` list, or none (then the
    /// parameters common to every resource).
    scope: Vec<String>,
    query: SearchQuery,
    summary: Option<Summary>,
    elements: Option<Vec<String>>,
    errors: Vec<SearchError>,
    warnings: Vec<SearchError>,
    canonical: Vec<(String, String)>,
}

impl QueryParser<'_> {
    fn finish(mut self) -> Result<ParsedSearch, Vec<SearchError>> {
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        if self.summary == Some(Summary::Count) {
            self.query.count = 0;
            self.query.total = TotalMode::Accurate;
        }
        // Sorting by name only keeps repeated parameters (such as `_sort`) in their given order.
        self.canonical.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(ParsedSearch {
            query: self.query,
            summary: self.summary,
            elements: self.elements,
            warnings: self.warnings,
            canonical: self.canonical,
        })
    }

    /// Records the outcome of one parameter.
    fn record(&mut self, name: &str, value: &str, outcome: Result<(), Problem>) {
        match outcome {
            Ok(()) => self.canonical.push((name.to_owned(), value.to_owned())),
            Err(Problem::Invalid(message)) => self.errors.push(SearchError {
                param: name.to_owned(),
                message,
            }),
            Err(Problem::NotSupported(message)) => {
                let error = SearchError {
                    param: name.to_owned(),
                    message,
                };
                if self.strict {
                    self.errors.push(error);
                } else {
                    self.warnings.push(error);
                }
            }
            Err(Problem::Ignored(message)) => self.warnings.push(SearchError {
                param: name.to_owned(),
                message,
            }),
        }
    }

    /// Reads `_type` first, since it decides which parameters the others may use.
    fn types(&mut self, params: &[(String, String)]) {
        let system_search = self.scope.is_empty();
        let mut listed: Vec<String> = Vec::new();
        for (name, value) in params.iter().filter(|(name, _)| name == "_type") {
            let outcome = if system_search {
                self.type_list(value).map(|types| {
                    for resource_type in types {
                        if !listed.contains(&resource_type) {
                            listed.push(resource_type);
                        }
                    }
                })
            } else {
                not_supported("applies only to a system search")
            };
            self.record(name, value, outcome);
        }
        if system_search {
            self.scope = listed.clone();
            self.query.types = listed;
        }
    }

    fn type_list(&self, value: &str) -> Result<Vec<String>, Problem> {
        value
            .split(',')
            .map(|resource_type| {
                let resource_type = resource_type.trim();
                if self.registry.is_type(resource_type) {
                    Ok(resource_type.to_owned())
                } else {
                    invalid("names an unknown resource type")
                }
            })
            .collect()
    }

    /// Handles one parameter other than `_type` (see [`Self::types`]).
    fn param(&mut self, name: &str, value: &str) {
        let base = name.split([':', '.']).next().unwrap_or_default();
        let outcome = match base {
            "_type" if name == base => return,
            "_format" | "_pretty" => return,
            "_cursor" if name == base => {
                self.query.cursor = Some(PageCursor(value.to_owned()));
                return;
            }
            "_count" => {
                let outcome = self.count(name, value);
                if outcome.is_err() {
                    self.record(name, value, outcome);
                }
                return;
            }
            "_type" | "_cursor" => invalid("takes no modifier"),
            "_sort" => self.sort(name, value),
            "_total" => self.total(name, value),
            "_summary" => self.summary(name, value),
            "_elements" => self.elements(name, value),
            "_include" | "_revinclude" => self.include(name, value),
            "_contained" | "_containedType" => not_supported("is not supported"),
            _ => match self.filter(&self.scope, name, value, Depth::Top) {
                Ok(groups) => {
                    self.query.filters.extend(groups);
                    Ok(())
                }
                Err(problem) => Err(problem),
            },
        };
        self.record(name, value, outcome);
    }

    // -----------------------------------------------------------------------------------------
    // Result parameters.

    /// `_count`: values above the maximum are clamped to it; `0` asks for the total only.
    fn count(&mut self, name: &str, value: &str) -> Result<(), Problem> {
        if name != "_count" {
            return invalid("takes no modifier");
        }
        let Ok(count) = value.trim().parse::<u32>() else {
            return invalid("must be a non-negative integer");
        };
        self.query.count = count.min(self.max_count);
        Ok(())
    }

    fn sort(&mut self, name: &str, value: &str) -> Result<(), Problem> {
        if name != "_sort" {
            return invalid("takes no modifier");
        }
        let mut keys = Vec::new();
        for key in value.split(',') {
            let key = key.trim();
            let (code, descending) = match key.strip_prefix('-') {
                Some(code) => (code, true),
                None => (key, false),
            };
            let param = match code {
                "" => return invalid("has an empty sort key"),
                "_id" => SortParam::Id,
                "_lastUpdated" => SortParam::LastUpdated,
                _ => {
                    let resolved =
                        self.resolve(&self.scope, code)
                            .map_err(|problem| match problem {
                                Problem::NotSupported(_) => Problem::NotSupported(
                                    "sorts by an unknown or unsupported parameter".to_owned(),
                                ),
                                other => other,
                            })?;
                    SortParam::Param {
                        code: resolved.code.to_owned(),
                        kind: resolved.kind,
                    }
                }
            };
            keys.push(SortKey { param, descending });
        }
        self.query.sort.extend(keys);
        Ok(())
    }

    fn total(&mut self, name: &str, value: &str) -> Result<(), Problem> {
        if name != "_total" {
            return invalid("takes no modifier");
        }
        self.query.total = match value {
            "none" => TotalMode::None,
            "estimate" | "accurate" => TotalMode::Accurate,
            _ => return invalid("must be none, estimate or accurate"),
        };
        Ok(())
    }

    fn summary(&mut self, name: &str, value: &str) -> Result<(), Problem> {
        if name != "_summary" {
            return invalid("takes no modifier");
        }
        self.summary = Some(match value {
            "true" => Summary::True,
            "text" => Summary::Text,
            "data" => Summary::Data,
            "count" => Summary::Count,
            "false" => Summary::False,
            _ => return invalid("must be true, text, data, count or false"),
        });
        Ok(())
    }

    fn elements(&mut self, name: &str, value: &str) -> Result<(), Problem> {
        if name != "_elements" {
            return invalid("takes no modifier");
        }
        let mut names = Vec::new();
        for element in value.split(',').map(str::trim) {
            let valid = !element.is_empty()
                && element
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
            if !valid {
                return invalid("must be a comma-separated list of element names");
            }
            names.push(element.to_owned());
        }
        self.elements.get_or_insert_with(Vec::new).extend(names);
        Ok(())
    }

    /// `_include` / `_revinclude`: `Source:param[:Target]`, with the modifier `:iterate` (or the
    /// legacy `:recurse`).
    fn include(&mut self, name: &str, value: &str) -> Result<(), Problem> {
        let (which, modifier) = name.split_once(':').unwrap_or((name, ""));
        let iterate = match modifier {
            "" => false,
            "iterate" | "recurse" => true,
            _ => return invalid("has an unknown modifier"),
        };
        if value.contains('*') {
            return not_supported("wildcard includes are not supported");
        }
        let mut parts = value.split(':');
        let (Some(source_type), Some(code), target, None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return invalid("must be Type:parameter or Type:parameter:TargetType");
        };
        if !self.registry.is_type(source_type) {
            return invalid("names an unknown resource type");
        }
        let Some(param) = self
            .registry
            .find(source_type, code)
            .filter(|param| param.def.kind == ParamKind::Reference)
        else {
            return invalid("names no reference parameter of its resource type");
        };
        if let Some(target) = target {
            let allowed = param.def.targets.is_empty()
                || param.def.targets.iter().any(|allowed| allowed == target);
            if !self.registry.is_type(target) || !allowed {
                return invalid("names a target type the parameter cannot point at");
            }
        }
        let include = Include {
            source_type: source_type.to_owned(),
            param: code.to_owned(),
            target_type: target.map(str::to_owned),
            iterate,
        };
        if which == "_include" {
            self.query.includes.push(include);
        } else {
            self.query.revincludes.push(include);
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Filter parameters.

    /// Resolves `code` on every type of `scope` (the common parameters when `scope` is empty).
    fn resolve(&self, scope: &[String], code: &str) -> Result<Resolved<'_>, Problem> {
        let common = [RESOURCE.to_owned()];
        let scope = if scope.is_empty() { &common[..] } else { scope };
        let mut resolved: Option<Resolved<'_>> = None;
        for resource_type in scope {
            let param = match self.registry.lookup(resource_type, code) {
                Lookup::Found(param) => param,
                Lookup::Unsupported => return not_supported("is not supported"),
                Lookup::Unknown if resource_type == RESOURCE => {
                    return not_supported(
                        "is not a parameter of every resource type: use _type to choose types",
                    );
                }
                Lookup::Unknown => {
                    return not_supported(format!("is not a known parameter of {resource_type}"));
                }
            };
            match &mut resolved {
                None => {
                    resolved = Some(Resolved {
                        code: &param.def.code,
                        kind: param.def.kind,
                        targets: param.def.targets.iter().map(String::as_str).collect(),
                    });
                }
                Some(resolved) => {
                    if resolved.kind != param.def.kind {
                        return invalid("has different types on the searched resource types");
                    }
                    for target in &param.def.targets {
                        if !resolved.targets.contains(&target.as_str()) {
                            resolved.targets.push(target);
                        }
                    }
                }
            }
        }
        resolved.ok_or_else(|| Problem::NotSupported("is not a known parameter".to_owned()))
    }

    /// A filter parameter (`code[:modifier][.chained]=value`, or `_has:...`) on `scope`.
    fn filter(
        &self,
        scope: &[String],
        name: &str,
        value: &str,
        depth: Depth,
    ) -> Result<Groups, Problem> {
        if let Some(rest) = name.strip_prefix("_has:") {
            if depth == Depth::Nested {
                return invalid("chains deeper than one level are not supported");
            }
            return self.has(scope, rest, value);
        }
        let (head, chained) = match name.split_once('.') {
            Some((head, chained)) => (head, Some(chained)),
            None => (name, None),
        };
        let (code, modifier) = match head.split_once(':') {
            Some((code, modifier)) => (code, Some(modifier)),
            None => (head, None),
        };
        let resolved = self.resolve(scope, code)?;
        if let Some(chained) = chained {
            if depth == Depth::Nested {
                return invalid("chains deeper than one level are not supported");
            }
            if resolved.kind != ParamKind::Reference {
                return invalid("only reference parameters can be chained");
            }
            return self.chain(&resolved, modifier, chained, value);
        }
        if value.is_empty() {
            return Err(Problem::Ignored("has no value and is ignored".to_owned()));
        }
        if modifier == Some("missing") {
            let missing = match value {
                "true" => true,
                "false" => false,
                _ => return invalid("with :missing must be true or false"),
            };
            return Ok(vec![vec![Condition::Missing {
                param: resolved.code.to_owned(),
                kind: resolved.kind,
                missing,
            }]]);
        }
        let alternatives = split_unescaped(value, ',');
        if alternatives
            .iter()
            .any(|alternative| alternative.is_empty())
        {
            return invalid("has an empty value between commas");
        }
        match resolved.code {
            "_id" => {
                no_modifier(modifier)?;
                return Ok(vec![
                    alternatives
                        .iter()
                        .map(|alternative| Condition::Id(unescape(alternative).into_owned()))
                        .collect(),
                ]);
            }
            "_lastUpdated" => {
                no_modifier(modifier)?;
                let conditions = alternatives
                    .iter()
                    .map(|alternative| {
                        let (prefix, range) = date_value(alternative)?;
                        Ok(Condition::LastUpdated { prefix, range })
                    })
                    .collect::<Result<_, Problem>>()?;
                return Ok(vec![conditions]);
            }
            _ => {}
        }
        if resolved.kind == ParamKind::Token && modifier == Some("not") {
            return alternatives
                .iter()
                .map(|alternative| {
                    let test = token_test(alternative)?;
                    Ok(vec![Condition::Not(Box::new(Condition::Match {
                        param: resolved.code.to_owned(),
                        test,
                    }))])
                })
                .collect();
        }
        let conditions = alternatives
            .iter()
            .map(|alternative| self.condition(&resolved, modifier, alternative))
            .collect::<Result<_, Problem>>()?;
        Ok(vec![conditions])
    }

    /// One alternative of a (non-chained, non-`:missing`, non-`:not`) filter.
    fn condition(
        &self,
        resolved: &Resolved<'_>,
        modifier: Option<&str>,
        alternative: &str,
    ) -> Result<Condition, Problem> {
        let code = resolved.code;
        let matching = |param: String, test: ValueTest| Condition::Match { param, test };
        let condition = match resolved.kind {
            ParamKind::Token => match modifier {
                None => matching(code.to_owned(), token_test(alternative)?),
                Some("text") => matching(
                    code.to_owned(),
                    ValueTest::TokenText(normalize_string(&unescape(alternative))),
                ),
                Some("of-type") => {
                    let parts = split_unescaped(alternative, '|');
                    let [system, type_code, value] = parts.as_slice() else {
                        return invalid("with :of-type must be system|code|value");
                    };
                    if system.is_empty() || type_code.is_empty() || value.is_empty() {
                        return invalid("with :of-type must be system|code|value");
                    }
                    matching(
                        format!("{code}:of-type"),
                        ValueTest::Token {
                            system: TokenSystem::Is(unescape(system).into_owned()),
                            code: Some(format!("{}|{}", unescape(type_code), unescape(value))),
                        },
                    )
                }
                Some("in" | "not-in" | "above" | "below") => {
                    return invalid("uses a modifier that is not supported");
                }
                Some(_) => return invalid("has an unknown modifier"),
            },
            ParamKind::String => {
                let text = unescape(alternative);
                let (value, mode) = match modifier {
                    None => (normalize_string(&text), StringMode::StartsWith),
                    Some("contains") => (normalize_string(&text), StringMode::Contains),
                    Some("exact") => (text.into_owned(), StringMode::Exact),
                    Some(_) => return invalid("has an unknown modifier"),
                };
                matching(code.to_owned(), ValueTest::String { value, mode })
            }
            ParamKind::Date => {
                no_modifier(modifier)?;
                let (prefix, range) = date_value(alternative)?;
                matching(code.to_owned(), ValueTest::Date { prefix, range })
            }
            ParamKind::Number => {
                no_modifier(modifier)?;
                let (prefix, number) = prefixed(alternative);
                let Some(decimal) = parse_decimal(number) else {
                    return invalid("must be a number, optionally with a comparison prefix");
                };
                let (low, high) = number_range(prefix, decimal);
                matching(code.to_owned(), ValueTest::Number { prefix, low, high })
            }
            ParamKind::Quantity => {
                no_modifier(modifier)?;
                matching(code.to_owned(), quantity_test(alternative)?)
            }
            ParamKind::Reference => self.reference_condition(resolved, modifier, alternative)?,
            ParamKind::Uri => {
                let mode = match modifier {
                    None => UriMode::Exact,
                    Some("below") => UriMode::Below,
                    Some("above") => UriMode::Above,
                    Some(_) => return invalid("has an unknown modifier"),
                };
                let value = unescape(alternative).into_owned();
                matching(code.to_owned(), ValueTest::Uri { value, mode })
            }
        };
        Ok(condition)
    }

    /// `Type/id`, `id`, a URL, `:Type` + id, or `:identifier` + token.
    fn reference_condition(
        &self,
        resolved: &Resolved<'_>,
        modifier: Option<&str>,
        alternative: &str,
    ) -> Result<Condition, Problem> {
        let code = resolved.code;
        if modifier == Some("identifier") {
            return Ok(Condition::Match {
                param: format!("{code}:identifier"),
                test: token_test(alternative)?,
            });
        }
        let type_modifier = match modifier {
            None => None,
            Some(target) => Some(self.target_modifier(resolved, target)?),
        };
        let text = unescape(alternative);
        let test = if text.contains(':') {
            if type_modifier.is_some() {
                return invalid("with a type modifier must be an id or Type/id");
            }
            ValueTest::Reference {
                target_type: None,
                id: None,
                url: Some(text.into_owned()),
            }
        } else {
            let segments: Vec<&str> = text.split('/').collect();
            let (target_type, id) = match segments.as_slice() {
                [id] => (type_modifier.map(str::to_owned), *id),
                [target_type, id] | [target_type, id, "_history", _] => {
                    if !self.registry.is_type(target_type)
                        || type_modifier.is_some_and(|wanted| wanted != *target_type)
                    {
                        return invalid("names a resource type the parameter cannot point at");
                    }
                    (Some((*target_type).to_owned()), *id)
                }
                _ => return invalid("must be an id, Type/id or an absolute URL"),
            };
            if !is_id(id) {
                return invalid("must be an id, Type/id or an absolute URL");
            }
            ValueTest::Reference {
                target_type,
                id: Some(id.to_owned()),
                url: None,
            }
        };
        Ok(Condition::Match {
            param: code.to_owned(),
            test,
        })
    }

    /// Checks a `:Type` modifier of a reference parameter.
    fn target_modifier<'m>(
        &self,
        resolved: &Resolved<'_>,
        target: &'m str,
    ) -> Result<&'m str, Problem> {
        let allowed = resolved.targets.is_empty() || resolved.targets.contains(&target);
        if is_type_name(target) && self.registry.is_type(target) && allowed {
            Ok(target)
        } else {
            invalid("has an unknown modifier")
        }
    }

    /// One level of chaining: `reference[:Type].chained[:modifier]=value`.
    fn chain(
        &self,
        resolved: &Resolved<'_>,
        modifier: Option<&str>,
        chained: &str,
        value: &str,
    ) -> Result<Groups, Problem> {
        let target_types: Vec<&str> = match modifier {
            Some(target) => vec![self.target_modifier(resolved, target)?],
            None if resolved.targets.is_empty() => {
                return invalid("needs a :Type modifier to be chained");
            }
            None => resolved.targets.clone(),
        };
        // Target types that read the chained parameter the same way share one Chain condition.
        let mut readings: Vec<(Groups, Vec<String>)> = Vec::new();
        for target_type in target_types {
            let scope = [target_type.to_owned()];
            let groups = match self.filter(&scope, chained, value, Depth::Nested) {
                Ok(groups) => groups,
                Err(Problem::NotSupported(_)) => continue,
                Err(problem) => return Err(problem),
            };
            match readings.iter_mut().find(|(known, _)| *known == groups) {
                Some((_, types)) => types.push(target_type.to_owned()),
                None => readings.push((groups, vec![target_type.to_owned()])),
            }
        }
        let chain = |target_types: &[String], inner: Condition| Condition::Chain {
            reference: resolved.code.to_owned(),
            target_types: target_types.to_vec(),
            inner: Box::new(inner),
        };
        match readings.as_slice() {
            [] => invalid("no target type of the reference defines the chained parameter"),
            [(groups, types)] => Ok(groups
                .iter()
                .map(|group| {
                    group
                        .iter()
                        .map(|inner| chain(types, inner.clone()))
                        .collect()
                })
                .collect()),
            _ if readings.iter().all(|(groups, _)| groups.len() == 1) => Ok(vec![
                readings
                    .iter()
                    .flat_map(|(groups, types)| {
                        groups[0].iter().map(|inner| chain(types, inner.clone()))
                    })
                    .collect(),
            ]),
            _ => invalid("is ambiguous across target types: add a :Type modifier"),
        }
    }

    /// Reverse chaining: `_has:Source:reference:parameter=value` (after `_has:`).
    fn has(&self, scope: &[String], rest: &str, value: &str) -> Result<Groups, Problem> {
        let mut parts = rest.splitn(3, ':');
        let (Some(source_type), Some(reference), Some(inner)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return invalid("must be _has:Type:reference:parameter");
        };
        if !self.registry.is_type(source_type) {
            return invalid("names an unknown resource type");
        }
        let Some(param) = self
            .registry
            .find(source_type, reference)
            .filter(|param| param.def.kind == ParamKind::Reference)
        else {
            return invalid("names no reference parameter of its resource type");
        };
        let points_here = param.def.targets.is_empty()
            || scope
                .iter()
                .all(|searched| param.def.targets.iter().any(|target| target == searched));
        if !points_here {
            return invalid("names a reference that cannot point at the searched type");
        }
        if inner.starts_with("_has") || inner.contains('.') {
            return invalid("chains deeper than one level are not supported");
        }
        let groups = self.filter(&[source_type.to_owned()], inner, value, Depth::Nested)?;
        Ok(groups
            .into_iter()
            .map(|group| {
                group
                    .into_iter()
                    .map(|inner| Condition::Has {
                        source_type: source_type.to_owned(),
                        reference_param: reference.to_owned(),
                        inner: Box::new(inner),
                    })
                    .collect()
            })
            .collect())
    }
}

fn no_modifier(modifier: Option<&str>) -> Result<(), Problem> {
    match modifier {
        None => Ok(()),
        Some(_) => invalid("has an unknown modifier"),
    }
}

/// `system|code`, `|code`, `system|` or `code`.
fn token_test(alternative: &str) -> Result<ValueTest, Problem> {
    let parts = split_unescaped(alternative, '|');
    let owned = |part: &str| unescape(part).into_owned();
    let test = match parts.as_slice() {
        [code] => ValueTest::Token {
            system: TokenSystem::Any,
            code: Some(owned(code)),
        },
        ["", ""] => return invalid("must be system|code, |code, system| or code"),
        ["", code] => ValueTest::Token {
            system: TokenSystem::None,
            code: Some(owned(code)),
        },
        [system, ""] => ValueTest::Token {
            system: TokenSystem::Is(owned(system)),
            code: None,
        },
        [system, code] => ValueTest::Token {
            system: TokenSystem::Is(owned(system)),
            code: Some(owned(code)),
        },
        _ => return invalid("must be system|code, |code, system| or code"),
    };
    Ok(test)
}

/// Splits a comparison prefix (`ge2024`) from its value; no prefix means `eq`.
fn prefixed(alternative: &str) -> (Prefix, &str) {
    let prefix = match alternative.get(..2) {
        Some("eq") => Prefix::Eq,
        Some("ne") => Prefix::Ne,
        Some("gt") => Prefix::Gt,
        Some("lt") => Prefix::Lt,
        Some("ge") => Prefix::Ge,
        Some("le") => Prefix::Le,
        Some("sa") => Prefix::Sa,
        Some("eb") => Prefix::Eb,
        Some("ap") => Prefix::Ap,
        _ => return (Prefix::Eq, alternative),
    };
    (prefix, &alternative[2..])
}

/// A prefixed date: the range it stands for, widened for `ap`.
fn date_value(alternative: &str) -> Result<(Prefix, DateBound), Problem> {
    let (prefix, date) = prefixed(alternative);
    let Some(range) = parse_date_range(date) else {
        return invalid("must be a date, dateTime or instant, optionally with a comparison prefix");
    };
    if prefix != Prefix::Ap {
        return Ok((prefix, range));
    }
    let width = range.high.saturating_sub(range.low).saturating_add(1);
    let margin = (width / 10).max(MICROS_PER_DAY);
    Ok((
        prefix,
        DateBound {
            low: range.low.saturating_sub(margin),
            high: range.high.saturating_add(margin),
        },
    ))
}

/// The search range of a number for `prefix` (see the module doc).
fn number_range(prefix: Prefix, decimal: Decimal) -> (f64, f64) {
    match prefix {
        Prefix::Eq | Prefix::Ne => (decimal.low, decimal.high),
        Prefix::Ap => {
            let margin = decimal.value.abs() / 10.0;
            (
                decimal.low.min(decimal.value - margin),
                decimal.high.max(decimal.value + margin),
            )
        }
        Prefix::Gt | Prefix::Lt | Prefix::Ge | Prefix::Le | Prefix::Sa | Prefix::Eb => {
            (decimal.value, decimal.value)
        }
    }
}

/// `[prefix]value[|system|code]` (also `value||code`).
fn quantity_test(alternative: &str) -> Result<ValueTest, Problem> {
    let parts = split_unescaped(alternative, '|');
    let (number, system, code) = match parts.as_slice() {
        [number] => (*number, None, None),
        [number, system, code] => {
            let optional = |part: &str| (!part.is_empty()).then(|| unescape(part).into_owned());
            (*number, optional(system), optional(code))
        }
        _ => return invalid("must be [prefix]number, number|system|code or number||code"),
    };
    let (prefix, number) = prefixed(number);
    let Some(decimal) = parse_decimal(number) else {
        return invalid("must be [prefix]number, number|system|code or number||code");
    };
    let (low, high) = number_range(prefix, decimal);
    Ok(ValueTest::Quantity {
        prefix,
        low,
        high,
        system,
        code,
    })
}
