//! Person identity: which Patient a submission belongs to.
//!
//! The national key is the insured-person identifier (`JP_Insurance_memberID`,
//! `insurer8:symbol:number:branch2`), kept in its canonical form (`jp::insured_person_id`: the
//! full-width digits and letters that occur match their half-width forms), or, for recipients of
//! public assistance, the public-payer recipient number (`JP_PublicPayer_memberID`). Facility patient
//! ids (`urn:oid:1.2.392.100495.20.3.51.1<institution number>`) link to the same person.
//!
//! A submission finds the Patient holding any of its keys:
//!
//! * none: a Patient is created from the submitted one, holding all the keys (a conditional create
//!   on the keys, so that concurrent first submissions for one person make one Patient);
//! * one: keys it lacks are added (If-Match on the version read); a key of the same system with a
//!   different value (another insured-person id, another patient id at the same facility) is a
//!   conflict, and the submission is **rejected**, never merged: mis-linking two people's records is
//!   the failure this guards against;
//! * several: the keys belong to different people: rejected.
//!
//! `GET /fhir/Patient?identifier=<JP_Insurance_memberID system>|<value>` finds the person whichever
//! width the digits are written in: the search value is canonicalised the same way
//! ([`canonical_identifier_params`]).

use fhir::IssueCode;
use serde_json::{Value, json};
use store::{StoreError, WriteOp, WriteOutcome};

use crate::{App, AppError, new_id};

use jp::{
    FACILITY_PATIENT_ID_PREFIX as FACILITY_PATIENT_PREFIX, INSURED_PERSON_SYSTEM as INSURED_SYSTEM,
    PUBLIC_PAYER_SYSTEM,
};
/// How many times identity resolution starts again after losing a race.
const ATTEMPTS: usize = 4;

/// The identifiers that decide who a Patient is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    /// `(system, canonical value)`, national keys first.
    pub(crate) keys: Vec<(String, String)>,
}

impl Keys {
    /// The keys of a submitted Patient.
    ///
    /// # Errors
    /// `Invalid` when it has no national key, or an insured-person id that is malformed.
    pub(crate) fn of(patient: &Value) -> Result<Keys, AppError> {
        let mut national = Vec::new();
        let mut facility = Vec::new();
        for (index, identifier) in patient
            .get("identifier")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let system = identifier
                .get("system")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let Some(value) = identifier.get("value").and_then(Value::as_str) else {
                continue;
            };
            if system == INSURED_SYSTEM {
                let canonical = jp::insured_person_id(value).map_err(|_| {
                    AppError::invalid(
                        IssueCode::Value,
                        Some(format!("Patient.identifier[{index}].value")),
                        "the insured-person identifier is not insurer8:symbol:number:branch2",
                    )
                })?;
                national.push((system.to_owned(), canonical.to_string()));
            } else if system == PUBLIC_PAYER_SYSTEM {
                let canonical = jp::public_payer_id(value).map_err(|_| {
                    AppError::invalid(
                        IssueCode::Value,
                        Some(format!("Patient.identifier[{index}].value")),
                        "the public-payer recipient identifier is malformed",
                    )
                })?;
                national.push((system.to_owned(), canonical.to_string()));
            } else if system.starts_with(FACILITY_PATIENT_PREFIX) {
                facility.push((system.to_owned(), value.to_owned()));
            }
        }
        if national.is_empty() {
            return Err(AppError::invalid(
                IssueCode::Required,
                Some("Patient.identifier".into()),
                "the patient has neither an insured-person identifier nor a public-payer \
                 recipient number",
            ));
        }
        national.sort();
        national.dedup();
        facility.sort();
        facility.dedup();
        national.extend(facility);
        Ok(Keys { keys: national })
    }

    /// `identifier=<s1>|<v1>,<s2>|<v2>,...`: a Patient holding any of the keys.
    fn condition(&self) -> Vec<(String, String)> {
        let any: Vec<String> = self
            .keys
            .iter()
            .map(|(system, value)| format!("{}|{}", escape(system), escape(value)))
            .collect();
        vec![("identifier".to_owned(), any.join(","))]
    }
}

/// Escapes a token search value's `,`, `|`, `$` and `\`.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(character, ',' | '|' | '$' | '\\') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

impl App {
    /// The id of the Patient a submitted Patient resource is, creating or linking it.
    ///
    /// # Errors
    /// `Invalid` without a national key; `Conflict` when the keys conflict with existing links;
    /// `Unavailable`.
    pub(crate) async fn resolve_person(&self, patient: &Value) -> Result<String, AppError> {
        let keys = Keys::of(patient)?;
        let condition = keys.condition();
        for _ in 0..ATTEMPTS {
            let query = self.condition_query("Patient", &condition)?;
            let mut probe = query.clone();
            probe.count = 2;
            let found = self.store.search_latest(&probe).await?.matches;
            match found.as_slice() {
                [] => {
                    let body = new_person(patient, &keys);
                    let write = self.prepare_write("Patient", &new_id(), body)?;
                    let op = WriteOp::Create {
                        write,
                        if_none_exist: Some(Box::new(query)),
                    };
                    match self.store.write(vec![op]).await?.pop() {
                        Some(WriteOutcome::Created(created)) => return Ok(created.id),
                        // Someone else's submission created the person meanwhile: link to it.
                        Some(WriteOutcome::Existing(_)) => {}
                        _ => {
                            return Err(AppError::Internal(
                                "a person create had no outcome".into(),
                            ));
                        }
                    }
                }
                [person] => {
                    let mut body: Value = serde_json::from_str(&person.json)
                        .map_err(|error| AppError::Internal(Box::new(error)))?;
                    let missing = link(&mut body, &keys)?;
                    if missing == 0 {
                        return Ok(person.id.clone());
                    }
                    let write = self.prepare_write("Patient", &person.id, body)?;
                    let op = WriteOp::Update {
                        write,
                        if_match: Some(person.version),
                    };
                    match self.store.write(vec![op]).await {
                        Ok(_) => return Ok(person.id.clone()),
                        // Linked concurrently: look again.
                        Err(StoreError::VersionConflict { .. }) => {}
                        Err(error) => return Err(error.into()),
                    }
                }
                _ => return Err(conflict()),
            }
        }
        Err(AppError::Conflict(
            "concurrent changes to this person's identifiers; retry".into(),
        ))
    }
}

/// The Patient to create for a new person: the submitted one, with its keys in canonical form.
fn new_person(patient: &Value, keys: &Keys) -> Value {
    let mut body = patient.clone();
    if let Value::Object(object) = &mut body {
        object.shift_remove("id");
        object.shift_remove("meta");
        let mut identifiers: Vec<Value> = object
            .get("identifier")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|identifier| {
                let system = identifier
                    .get("system")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                !is_key_system(system)
            })
            .cloned()
            .collect();
        identifiers.extend(
            keys.keys
                .iter()
                .map(|(system, value)| json!({"system": system, "value": value})),
        );
        object.insert("identifier".into(), Value::Array(identifiers));
    }
    body
}

/// Adds the keys a stored person lacks; returns how many. A key of a system the person already
/// holds with another value is a conflict.
fn link(person: &mut Value, keys: &Keys) -> Result<usize, AppError> {
    let held: Vec<(String, String)> = person
        .get("identifier")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|identifier| {
            let system = identifier.get("system")?.as_str()?;
            let value = identifier.get("value")?.as_str()?;
            is_key_system(system).then(|| (system.to_owned(), value.to_owned()))
        })
        .collect();
    let mut missing = Vec::new();
    for (system, value) in &keys.keys {
        let same_system: Vec<&String> = held
            .iter()
            .filter(|(held_system, _)| held_system == system)
            .map(|(_, held_value)| held_value)
            .collect();
        if same_system.contains(&value) {
            continue;
        }
        if !same_system.is_empty() {
            return Err(conflict());
        }
        missing.push(json!({"system": system, "value": value}));
    }
    let count = missing.len();
    if count > 0
        && let Value::Object(object) = person
    {
        let list = object
            .entry("identifier")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = list {
            list.extend(missing);
        }
    }
    Ok(count)
}

fn is_key_system(system: &str) -> bool {
    system == INSURED_SYSTEM
        || system == PUBLIC_PAYER_SYSTEM
        || system.starts_with(FACILITY_PATIENT_PREFIX)
}

fn conflict() -> AppError {
    AppError::Conflict(
        "the patient's identifiers conflict with an existing link (Patient.identifier): \
         the submission was not merged into another person's record"
            .into(),
    )
}

/// Rewrites `identifier` search values of the national-key systems (insured-person and public-payer
/// ids) to their canonical form, so that a search finds the person whichever width its digits are
/// written in.
pub(crate) fn canonical_identifier_params(params: &mut [(String, String)]) {
    for (name, value) in params.iter_mut() {
        if name != "identifier" && !name.starts_with("identifier:") {
            continue;
        }
        if !value.contains(INSURED_SYSTEM) && !value.contains(PUBLIC_PAYER_SYSTEM) {
            continue;
        }
        let rewritten: Vec<String> = value
            .split(',')
            .map(|alternative| {
                canonical_alternative(alternative).unwrap_or_else(|| alternative.to_owned())
            })
            .collect();
        *value = rewritten.join(",");
    }
}

/// `system|value` with the value in canonical form, for the national-key systems.
fn canonical_alternative(alternative: &str) -> Option<String> {
    let (system, raw) = alternative.split_once('|')?;
    let canonical = if system == INSURED_SYSTEM {
        jp::insured_person_id(raw).ok()?.to_string()
    } else if system == PUBLIC_PAYER_SYSTEM {
        jp::public_payer_id(raw).ok()?.to_string()
    } else {
        return None;
    };
    Some(format!("{system}|{canonical}"))
}

#[cfg(test)]
mod tests;
