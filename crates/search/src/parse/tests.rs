//! Tests of search URL parsing: every parameter type, modifier and prefix, chains, `_has`, result
//! parameters, and strict versus lenient handling.

use expect_test::{Expect, expect};
use store::{Condition, Prefix, SortParam, TokenSystem, TotalMode, ValueTest};

use crate::test_util::instant;
use crate::{Registry, SearchRequest};

/// Parses `query` (`a=1&b=2`, no percent-decoding) as a search of `types`, leniently, and renders it.
fn check(types: &[&str], query: &str, expected: Expect) {
    check_with(types, query, false, expected);
}

fn check_strict(types: &[&str], query: &str, expected: Expect) {
    check_with(types, query, true, expected);
}

fn check_with(types: &[&str], query: &str, strict: bool, expected: Expect) {
    let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
    let params: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name.to_owned(), value.to_owned())
        })
        .collect();
    let request = SearchRequest {
        types: &types,
        compartment: None,
        params: &params,
        strict,
        default_count: 20,
        max_count: 100,
    };
    expected.assert_eq(&render(Registry::r4().parse(&request)));
}

fn render(result: Result<crate::ParsedSearch, Vec<crate::SearchError>>) -> String {
    let parsed = match result {
        Ok(parsed) => parsed,
        Err(errors) => {
            return errors
                .iter()
                .map(|error| format!("error {error}"))
                .collect::<Vec<_>>()
                .join("\n");
        }
    };
    let query = &parsed.query;
    let mut lines = Vec::new();
    if !query.types.is_empty() {
        lines.push(format!("types {}", query.types.join(",")));
    }
    for group in &query.filters {
        let alternatives: Vec<String> = group.iter().map(condition).collect();
        lines.push(format!("filter {}", alternatives.join(" OR ")));
    }
    for key in &query.sort {
        let param = match &key.param {
            SortParam::Id => "_id".to_owned(),
            SortParam::LastUpdated => "_lastUpdated".to_owned(),
            SortParam::Param { code, kind } => format!("{code} ({kind:?})"),
        };
        let direction = if key.descending { "desc" } else { "asc" };
        lines.push(format!("sort {param} {direction}"));
    }
    if query.count != 20 {
        lines.push(format!("count {}", query.count));
    }
    if query.total != TotalMode::None {
        lines.push(format!("total {:?}", query.total));
    }
    for (label, includes) in [
        ("include", &query.includes),
        ("revinclude", &query.revincludes),
    ] {
        for include in includes {
            lines.push(format!(
                "{label} {}:{}{}{}",
                include.source_type,
                include.param,
                include
                    .target_type
                    .as_ref()
                    .map(|target| format!(":{target}"))
                    .unwrap_or_default(),
                if include.iterate { " iterate" } else { "" }
            ));
        }
    }
    if let Some(cursor) = &query.cursor {
        lines.push(format!("cursor {}", cursor.0));
    }
    if let Some(summary) = parsed.summary {
        lines.push(format!("summary {summary:?}"));
    }
    if let Some(elements) = &parsed.elements {
        lines.push(format!("elements {}", elements.join(",")));
    }
    for warning in &parsed.warnings {
        lines.push(format!("warning {warning}"));
    }
    let canonical: Vec<String> = parsed
        .canonical
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    lines.push(format!("canonical {}", canonical.join("&")));
    lines.join("\n")
}

fn condition(condition: &Condition) -> String {
    match condition {
        Condition::Id(id) => format!("_id={id}"),
        Condition::LastUpdated { prefix, range } => format!(
            "_lastUpdated {} {}..{}",
            prefix_name(*prefix),
            instant(range.low),
            instant(range.high)
        ),
        Condition::Match { param, test } => format!("{param} {}", value_test(test)),
        Condition::Missing {
            param,
            kind,
            missing,
        } => format!("{param} missing={missing} ({kind:?})"),
        Condition::Not(inner) => format!("not({})", self::condition(inner)),
        Condition::Chain {
            reference,
            target_types,
            inner,
        } => format!(
            "{reference}->[{}]({})",
            target_types.join(","),
            self::condition(inner)
        ),
        Condition::Has {
            source_type,
            reference_param,
            inner,
        } => format!(
            "has {source_type}.{reference_param}({})",
            self::condition(inner)
        ),
    }
}

fn value_test(test: &ValueTest) -> String {
    match test {
        ValueTest::Token { system, code } => {
            let code = code.as_deref().unwrap_or("*");
            match system {
                TokenSystem::Any => format!("token {code}"),
                TokenSystem::None => format!("token |{code}"),
                TokenSystem::Is(system) => format!("token {system}|{code}"),
            }
        }
        ValueTest::TokenText(text) => format!("text {text:?}"),
        ValueTest::String { value, mode } => format!("string {mode:?} {value:?}"),
        ValueTest::Date { prefix, range } => format!(
            "date {} {}..{}",
            prefix_name(*prefix),
            instant(range.low),
            instant(range.high)
        ),
        ValueTest::Number { prefix, low, high } => {
            format!("number {} [{low:?}, {high:?}]", prefix_name(*prefix))
        }
        ValueTest::Quantity {
            prefix,
            low,
            high,
            system,
            code,
        } => format!(
            "quantity {} [{low:?}, {high:?}] system={} code={}",
            prefix_name(*prefix),
            system.as_deref().unwrap_or("-"),
            code.as_deref().unwrap_or("-")
        ),
        ValueTest::Reference {
            target_type,
            id,
            url,
        } => match url {
            Some(url) => format!("ref url={url}"),
            None => format!(
                "ref {}/{}",
                target_type.as_deref().unwrap_or("*"),
                id.as_deref().unwrap_or("-")
            ),
        },
        ValueTest::Uri { value, mode } => format!("uri {mode:?} {value}"),
    }
}

fn prefix_name(prefix: Prefix) -> &'static str {
    match prefix {
        Prefix::Eq => "eq",
        Prefix::Ne => "ne",
        Prefix::Gt => "gt",
        Prefix::Lt => "lt",
        Prefix::Ge => "ge",
        Prefix::Le => "le",
        Prefix::Sa => "sa",
        Prefix::Eb => "eb",
        Prefix::Ap => "ap",
    }
}

#[test]
fn token_forms() {
    check(
        &["Observation"],
        "code=http://loinc.org|29463-7,|local,http://snomed.info/sct|,1234-5&status=final",
        expect![[r#"
            types Observation
            filter code token http://loinc.org|29463-7 OR code token |local OR code token http://snomed.info/sct|* OR code token 1234-5
            filter status token final
            canonical code=http://loinc.org|29463-7,|local,http://snomed.info/sct|,1234-5&status=final"#]],
    );
}

#[test]
fn token_modifiers() {
    check(
        &["Observation"],
        "code:text=Body Weight&status:not=final,amended&category:missing=true",
        expect![[r#"
            types Observation
            filter code text "body weight"
            filter not(status token final)
            filter not(status token amended)
            filter category missing=true (Token)
            canonical category:missing=true&code:text=Body Weight&status:not=final,amended"#]],
    );
    check(
        &["Patient"],
        "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|00012345",
        expect![[r#"
            types Patient
            filter identifier:of-type token http://terminology.hl7.org/CodeSystem/v2-0203|MR|00012345
            canonical identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|00012345"#]],
    );
    check(
        &["Observation"],
        "code:in=http://example.org/vs&code:below=x&code:nonsense=y&code:of-type=a|b&code:missing=maybe",
        expect![[r#"
            error code:in: uses a modifier that is not supported
            error code:below: uses a modifier that is not supported
            error code:nonsense: has an unknown modifier
            error code:of-type: with :of-type must be system|code|value
            error code:missing: with :missing must be true or false"#]],
    );
}

#[test]
fn token_escapes() {
    check(
        &["Observation"],
        r"code=sys|a\,b,sys\|x|c\$d",
        expect![[r#"
            types Observation
            filter code token sys|a,b OR code token sys|x|c$d
            canonical code=sys|a\,b,sys\|x|c\$d"#]],
    );
    check(
        &["Observation"],
        "code=|&code=a|b|c",
        expect![[r#"
        error code: must be system|code, |code, system| or code
        error code: must be system|code, |code, system| or code"#]],
    );
}

#[test]
fn string_modes_and_normalisation() {
    check(
        &["Patient"],
        "name=ＹＡＭＡＤＡ&family:exact=山田&given:contains=ｶﾞ&address=José&name:missing=false",
        expect![[r#"
            types Patient
            filter name string StartsWith "yamada"
            filter family string Exact "山田"
            filter given string Contains "ガ"
            filter address string StartsWith "jose"
            filter name missing=false (String)
            canonical address=José&family:exact=山田&given:contains=ｶﾞ&name=ＹＡＭＡＤＡ&name:missing=false"#]],
    );
    check(
        &["Patient"],
        "name:text=x",
        expect!["error name:text: has an unknown modifier"],
    );
}

#[test]
fn date_prefixes_and_partial_dates() {
    check(
        &["Patient"],
        "birthdate=2024&birthdate=eq2024-02-29&birthdate=ge2024-02\
         &birthdate=lt2024-02-29T10:00:00+09:00&birthdate=ne2024-02-29&birthdate=sa2023\
         &birthdate=eb2025&birthdate=gt2024-02-29T10:00Z&birthdate=le2024",
        expect![[r#"
            types Patient
            filter birthdate date eq 2024-01-01T00:00:00.000000Z..2024-12-31T23:59:59.999999Z
            filter birthdate date eq 2024-02-29T00:00:00.000000Z..2024-02-29T23:59:59.999999Z
            filter birthdate date ge 2024-02-01T00:00:00.000000Z..2024-02-29T23:59:59.999999Z
            filter birthdate date lt 2024-02-29T01:00:00.000000Z..2024-02-29T01:00:00.999999Z
            filter birthdate date ne 2024-02-29T00:00:00.000000Z..2024-02-29T23:59:59.999999Z
            filter birthdate date sa 2023-01-01T00:00:00.000000Z..2023-12-31T23:59:59.999999Z
            filter birthdate date eb 2025-01-01T00:00:00.000000Z..2025-12-31T23:59:59.999999Z
            filter birthdate date gt 2024-02-29T10:00:00.000000Z..2024-02-29T10:00:59.999999Z
            filter birthdate date le 2024-01-01T00:00:00.000000Z..2024-12-31T23:59:59.999999Z
            canonical birthdate=2024&birthdate=eq2024-02-29&birthdate=ge2024-02&birthdate=lt2024-02-29T10:00:00+09:00&birthdate=ne2024-02-29&birthdate=sa2023&birthdate=eb2025&birthdate=gt2024-02-29T10:00Z&birthdate=le2024"#]],
    );
    check(
        &["Observation"],
        "date=ap2024-02-29",
        expect![[r#"
        types Observation
        filter date date ap 2024-02-28T00:00:00.000000Z..2024-03-01T23:59:59.999999Z
        canonical date=ap2024-02-29"#]],
    );
    check(
        &["Observation"],
        "date=ap2024",
        expect![[r#"
        types Observation
        filter date date ap 2023-11-25T09:36:00.000000Z..2025-02-06T14:23:59.999999Z
        canonical date=ap2024"#]],
    );
}

#[test]
fn invalid_dates_are_errors_in_both_modes() {
    let query = "birthdate=2024-02-30&birthdate=xx2024&birthdate=yesterday&birthdate:exact=2024";
    check(
        &["Patient"],
        query,
        expect![[r#"
        error birthdate: must be a date, dateTime or instant, optionally with a comparison prefix
        error birthdate: must be a date, dateTime or instant, optionally with a comparison prefix
        error birthdate: must be a date, dateTime or instant, optionally with a comparison prefix
        error birthdate:exact: has an unknown modifier"#]],
    );
    check_strict(
        &["Patient"],
        query,
        expect![[r#"
        error birthdate: must be a date, dateTime or instant, optionally with a comparison prefix
        error birthdate: must be a date, dateTime or instant, optionally with a comparison prefix
        error birthdate: must be a date, dateTime or instant, optionally with a comparison prefix
        error birthdate:exact: has an unknown modifier"#]],
    );
}

#[test]
fn last_updated_and_id() {
    check(
        &["Patient"],
        "_id=a,b&_lastUpdated=gt2024-01-01T00:00:00Z&_lastUpdated=le2024-12",
        expect![[r#"
            types Patient
            filter _id=a OR _id=b
            filter _lastUpdated gt 2024-01-01T00:00:00.000000Z..2024-01-01T00:00:00.999999Z
            filter _lastUpdated le 2024-12-01T00:00:00.000000Z..2024-12-31T23:59:59.999999Z
            canonical _id=a,b&_lastUpdated=gt2024-01-01T00:00:00Z&_lastUpdated=le2024-12"#]],
    );
    check(
        &["Patient"],
        "_id:missing=maybe&_id:exact=a",
        expect![[r#"
        error _id:missing: with :missing must be true or false
        error _id:exact: has an unknown modifier"#]],
    );
}

#[test]
fn number_precision_and_prefixes() {
    check(
        &["RiskAssessment"],
        "probability=0.25&probability=100&probability=gt5.4&probability=le1e2\
         &probability=ap100&probability=ne-3.50&probability=eq7&probability=lt0.5\
         &probability=ge0.5&probability=sa1.5e-1&probability=eb2",
        expect![[r#"
            types RiskAssessment
            filter probability number eq [0.245, 0.25499999999999995]
            filter probability number eq [99.5, 100.49999999999999]
            filter probability number gt [5.4, 5.4]
            filter probability number le [100.0, 100.0]
            filter probability number ap [90.0, 110.0]
            filter probability number ne [-3.505, -3.4950000000000006]
            filter probability number eq [6.5, 7.499999999999999]
            filter probability number lt [0.5, 0.5]
            filter probability number ge [0.5, 0.5]
            filter probability number sa [0.15, 0.15]
            filter probability number eb [2.0, 2.0]
            canonical probability=0.25&probability=100&probability=gt5.4&probability=le1e2&probability=ap100&probability=ne-3.50&probability=eq7&probability=lt0.5&probability=ge0.5&probability=sa1.5e-1&probability=eb2"#]],
    );
    check(
        &["RiskAssessment"],
        "probability=5,4&probability=gtx",
        expect!["error probability: must be a number, optionally with a comparison prefix"],
    );
}

#[test]
fn quantity_forms() {
    check(
        &["Observation"],
        "value-quantity=5.4|http://unitsofmeasure.org|mg&value-quantity=ge185||[lb_av]\
         &value-quantity=lt0.5&value-quantity=ap100|http://unitsofmeasure.org|",
        expect![[r#"
            types Observation
            filter value-quantity quantity eq [5.35, 5.449999999999999] system=http://unitsofmeasure.org code=mg
            filter value-quantity quantity ge [185.0, 185.0] system=- code=[lb_av]
            filter value-quantity quantity lt [0.5, 0.5] system=- code=-
            filter value-quantity quantity ap [90.0, 110.0] system=http://unitsofmeasure.org code=-
            canonical value-quantity=5.4|http://unitsofmeasure.org|mg&value-quantity=ge185||[lb_av]&value-quantity=lt0.5&value-quantity=ap100|http://unitsofmeasure.org|"#]],
    );
    check(
        &["Observation"],
        "value-quantity=5.4|mg&value-quantity=mg&value-quantity:missing=true",
        expect![[r#"
            error value-quantity: must be [prefix]number, number|system|code or number||code
            error value-quantity: must be [prefix]number, number|system|code or number||code"#]],
    );
}

#[test]
fn reference_forms() {
    check(
        &["Observation"],
        "subject=Patient/123,456,https://example.org/fhir/Patient/789,Patient/1/_history/2\
         &subject:Patient=123&patient=urn:uuid:0b2c3a2e-4c8a-4a43-9d3e-8b4d2f3a1c11\
         &performer:identifier=urn:oid:1.2.392.100495.20.3.41|1234567890&encounter:missing=true",
        expect![[r#"
            types Observation
            filter subject ref Patient/123 OR subject ref */456 OR subject ref url=https://example.org/fhir/Patient/789 OR subject ref Patient/1
            filter subject ref Patient/123
            filter patient ref url=urn:uuid:0b2c3a2e-4c8a-4a43-9d3e-8b4d2f3a1c11
            filter performer:identifier token urn:oid:1.2.392.100495.20.3.41|1234567890
            filter encounter missing=true (Reference)
            canonical encounter:missing=true&patient=urn:uuid:0b2c3a2e-4c8a-4a43-9d3e-8b4d2f3a1c11&performer:identifier=urn:oid:1.2.392.100495.20.3.41|1234567890&subject=Patient/123,456,https://example.org/fhir/Patient/789,Patient/1/_history/2&subject:Patient=123"#]],
    );
}

#[test]
fn invalid_references_are_errors() {
    check(
        &["Observation"],
        "subject=Nonsense/1&subject:Patient=Group/1&subject:Organization=1&subject=a b\
         &subject:Patient=https://example.org/Patient/1&subject=a/b/c",
        expect![[r#"
            error subject: names a resource type the parameter cannot point at
            error subject:Patient: names a resource type the parameter cannot point at
            error subject:Organization: has an unknown modifier
            error subject: must be an id, Type/id or an absolute URL
            error subject:Patient: with a type modifier must be an id or Type/id
            error subject: must be an id, Type/id or an absolute URL"#]],
    );
}

#[test]
fn uri_modes() {
    check(
        &["ValueSet"],
        "url=http://example.org/fhir/ValueSet/x&url:below=http://example.org/fhir&url:above=http://example.org/fhir/ValueSet/x/y",
        expect![[r#"
            types ValueSet
            filter url uri Exact http://example.org/fhir/ValueSet/x
            filter url uri Below http://example.org/fhir
            filter url uri Above http://example.org/fhir/ValueSet/x/y
            canonical url=http://example.org/fhir/ValueSet/x&url:above=http://example.org/fhir/ValueSet/x/y&url:below=http://example.org/fhir"#]],
    );
}

#[test]
fn chains() {
    check(
        &["Observation"],
        "subject:Patient.name=peter&subject.name:exact=Peter,Paul&patient.identifier=urn:x|1",
        expect![[r#"
            types Observation
            filter subject->[Patient](name string StartsWith "peter")
            filter subject->[Patient,Location](name string Exact "Peter") OR subject->[Patient,Location](name string Exact "Paul")
            filter patient->[Patient,Group](identifier token urn:x|1)
            canonical patient.identifier=urn:x|1&subject.name:exact=Peter,Paul&subject:Patient.name=peter"#]],
    );
    check(
        &["Observation"],
        "patient._id=p1&subject:Patient.birthdate=ge2000",
        expect![[r#"
            types Observation
            filter patient->[Patient,Group](_id=p1)
            filter subject->[Patient](birthdate date ge 2000-01-01T00:00:00.000000Z..2000-12-31T23:59:59.999999Z)
            canonical patient._id=p1&subject:Patient.birthdate=ge2000"#]],
    );
}

#[test]
fn chain_errors() {
    check(
        &["Observation"],
        "subject.organization.name=x&code.text=x&subject.nonsense=x&subject:Patient.name.family=x\
         &subject:Medication.code=x&subject.birthdate=notadate",
        expect![[r#"
            error subject.organization.name: chains deeper than one level are not supported
            error code.text: only reference parameters can be chained
            error subject.nonsense: no target type of the reference defines the chained parameter
            error subject:Patient.name.family: chains deeper than one level are not supported
            error subject:Medication.code: has an unknown modifier
            error subject.birthdate: must be a date, dateTime or instant, optionally with a comparison prefix"#]],
    );
}

#[test]
fn reverse_chains() {
    check(
        &["Patient"],
        "_has:Observation:patient:code=1234-5&_has:Observation:subject:date=ge2024,lt2000",
        expect![[r#"
            types Patient
            filter has Observation.patient(code token 1234-5)
            filter has Observation.subject(date date ge 2024-01-01T00:00:00.000000Z..2024-12-31T23:59:59.999999Z) OR has Observation.subject(date date lt 2000-01-01T00:00:00.000000Z..2000-12-31T23:59:59.999999Z)
            canonical _has:Observation:patient:code=1234-5&_has:Observation:subject:date=ge2024,lt2000"#]],
    );
    check(
        &["Patient"],
        "_has:Observation:patient:_has:Observation:subject:code=x&_has:Observation:code:code=x\
         &_has:Nonsense:patient:code=x&_has:Observation&_has:Observation:patient:subject.name=x\
         &_has:Observation:encounter:code=x",
        expect![[r#"
            error _has:Observation:patient:_has:Observation:subject:code: chains deeper than one level are not supported
            error _has:Observation:code:code: names no reference parameter of its resource type
            error _has:Nonsense:patient:code: names an unknown resource type
            error _has:Observation: must be _has:Type:reference:parameter
            error _has:Observation:patient:subject.name: chains deeper than one level are not supported
            error _has:Observation:encounter:code: names a reference that cannot point at the searched type"#]],
    );
}

#[test]
fn unknown_and_unsupported_params_lenient_versus_strict() {
    let query = "nonsense=1&_text=fever&code-value-quantity=x$5&_filter=x&_contained=true\
                 &_include=*&gender=female&_format=json&_pretty=true";
    check(
        &["Observation"],
        query,
        expect![[r#"
        types Observation
        warning nonsense: is not a known parameter of Observation
        warning _text: is not supported
        warning code-value-quantity: is not supported
        warning _filter: is not supported
        warning _contained: is not supported
        warning _include: wildcard includes are not supported
        warning gender: is not a known parameter of Observation
        canonical "#]],
    );
    check_strict(
        &["Observation"],
        query,
        expect![[r#"
        error nonsense: is not a known parameter of Observation
        error _text: is not supported
        error code-value-quantity: is not supported
        error _filter: is not supported
        error _contained: is not supported
        error _include: wildcard includes are not supported
        error gender: is not a known parameter of Observation"#]],
    );
}

#[test]
fn empty_values_are_ignored_in_both_modes() {
    check(
        &["Patient"],
        "gender=&name=a",
        expect![[r#"
        types Patient
        filter name string StartsWith "a"
        warning gender: has no value and is ignored
        canonical name=a"#]],
    );
    check_strict(
        &["Patient"],
        "gender=&name=a",
        expect![[r#"
        types Patient
        filter name string StartsWith "a"
        warning gender: has no value and is ignored
        canonical name=a"#]],
    );
    check(
        &["Patient"],
        "name=a,,b",
        expect!["error name: has an empty value between commas"],
    );
}

#[test]
fn result_parameters() {
    check(
        &["Observation"],
        "_count=500&_sort=-date,code,_id&_sort=-_lastUpdated&_total=estimate&_summary=data\
         &_elements=code,subject&_cursor=opaque123&_include=Observation:subject:Patient\
         &_include:iterate=Patient:general-practitioner&_revinclude:recurse=Provenance:target\
         &code=x",
        expect![[r#"
            types Observation
            filter code token x
            sort date (Date) desc
            sort code (Token) asc
            sort _id asc
            sort _lastUpdated desc
            count 100
            total Accurate
            include Observation:subject:Patient
            include Patient:general-practitioner iterate
            revinclude Provenance:target iterate
            cursor opaque123
            summary Data
            elements code,subject
            canonical _elements=code,subject&_include=Observation:subject:Patient&_include:iterate=Patient:general-practitioner&_revinclude:recurse=Provenance:target&_sort=-date,code,_id&_sort=-_lastUpdated&_summary=data&_total=estimate&code=x"#]],
    );
    check(
        &["Observation"],
        "_count=0&_summary=count",
        expect![[r#"
        types Observation
        count 0
        total Accurate
        summary Count
        canonical _summary=count"#]],
    );
    check(
        &["Observation"],
        "_count=5",
        expect![[r#"
        types Observation
        count 5
        canonical "#]],
    );
}

#[test]
fn invalid_result_parameters() {
    check(
        &["Observation"],
        "_count=-1&_count=many&_total=maybe&_summary=short&_elements=a b&_sort=&_sort:asc=date\
         &_include=Observation:code&_include=Nonsense:subject&_include=Observation:subject:Medication\
         &_include:deep=Observation:subject&_include=Observation&_count:x=1&_type:x=Patient\
         &_cursor:x=1",
        expect![[r#"
            error _count: must be a non-negative integer
            error _count: must be a non-negative integer
            error _total: must be none, estimate or accurate
            error _summary: must be true, text, data, count or false
            error _elements: must be a comma-separated list of element names
            error _sort: has an empty sort key
            error _sort:asc: takes no modifier
            error _include: names no reference parameter of its resource type
            error _include: names an unknown resource type
            error _include: names a target type the parameter cannot point at
            error _include:deep: has an unknown modifier
            error _include: must be Type:parameter or Type:parameter:TargetType
            error _count:x: takes no modifier
            error _type:x: takes no modifier
            error _cursor:x: takes no modifier"#]],
    );
    check(
        &["Observation"],
        "_sort=nonsense",
        expect![[r#"
        types Observation
        warning _sort: sorts by an unknown or unsupported parameter
        canonical "#]],
    );
    check_strict(
        &["Observation"],
        "_sort=nonsense",
        expect!["error _sort: sorts by an unknown or unsupported parameter"],
    );
}

#[test]
fn system_search_uses_common_params_unless_type_narrows() {
    check(
        &[],
        "_id=1&_lastUpdated=ge2024&_tag=a|b&_profile=http://x",
        expect![[r#"
        filter _id=1
        filter _lastUpdated ge 2024-01-01T00:00:00.000000Z..2024-12-31T23:59:59.999999Z
        filter _tag token a|b
        filter _profile uri Exact http://x
        canonical _id=1&_lastUpdated=ge2024&_profile=http://x&_tag=a|b"#]],
    );
    check(
        &[],
        "identifier=x&code=y",
        expect![[r#"
        warning identifier: is not a parameter of every resource type: use _type to choose types
        warning code: is not a parameter of every resource type: use _type to choose types
        canonical "#]],
    );
    check(
        &[],
        "_type=Patient,Practitioner&identifier=urn:x|1&_sort=identifier",
        expect![[r#"
            types Patient,Practitioner
            filter identifier token urn:x|1
            sort identifier (Token) asc
            canonical _sort=identifier&_type=Patient,Practitioner&identifier=urn:x|1"#]],
    );
    check(
        &[],
        "_type=Patient,Observation&name=x",
        expect![[r#"
        types Patient,Observation
        warning name: is not a known parameter of Observation
        canonical _type=Patient,Observation"#]],
    );
    check(
        &[],
        "_type=Patient,Nonsense",
        expect!["error _type: names an unknown resource type"],
    );
    check(
        &["Patient"],
        "_type=Observation&gender=male",
        expect![[r#"
        types Patient
        filter gender token male
        warning _type: applies only to a system search
        canonical gender=male"#]],
    );
}

#[test]
fn messages_never_echo_values() {
    let secrets = [
        "山田太郎",
        "19740101",
        "urn:oid:1.2.392|9999",
        "Patient/secret-id",
    ];
    let names = [
        "birthdate",
        "gender:nonsense",
        "code:of-type",
        "subject",
        "subject:Patient",
        "subject.birthdate",
        "value-quantity",
        "_id:missing",
        "_count",
        "_has:Nonsense:x:y",
        "_has:Observation:patient:date",
        "_include",
        "_sort",
        "_summary",
        "_type",
        "nonsense",
    ];
    let mut checked = 0;
    for secret in secrets {
        for name in names {
            for strict in [false, true] {
                let types = ["Observation".to_owned()];
                let params = [(name.to_owned(), format!("xx{secret}"))];
                let request = SearchRequest {
                    types: &types,
                    compartment: None,
                    params: &params,
                    strict,
                    default_count: 20,
                    max_count: 100,
                };
                let messages = match Registry::r4().parse(&request) {
                    Ok(parsed) => parsed.warnings,
                    Err(errors) => errors,
                };
                checked += messages.len();
                for message in messages {
                    assert!(!message.message.contains(secret), "{name}: {message}");
                    assert_eq!(message.param, name);
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} messages");
}

#[test]
fn compartment_passes_through() {
    let types = ["Observation".to_owned()];
    let params = [("code".to_owned(), "x".to_owned())];
    let request = SearchRequest {
        types: &types,
        compartment: Some("p1".to_owned()),
        params: &params,
        strict: false,
        default_count: 10,
        max_count: 5,
    };
    let parsed = Registry::r4().parse(&request).expect("valid");
    assert_eq!(parsed.query.compartment.as_deref(), Some("p1"));
    assert_eq!(
        parsed.query.count, 5,
        "the default is clamped to the maximum too"
    );
}
