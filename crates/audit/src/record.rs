//! What one audit entry says, in the shape of IHE Basic Audit Log Patterns (BALP), and its
//! canonical bytes: the bytes that are stored and hashed into the tree.
//!
//! The canonical form is compact JSON, `{"v":1,"record":{...}}`, with the fields in declaration
//! order, every optional field present (`null` when absent), strings as serde_json writes them
//! (only `"`, `\` and control characters escaped; UTF-8 otherwise) and the time as
//! `YYYY-MM-DDThh:mm:ss.ffffffZ`. Decoding accepts only bytes that re-encode to themselves, so one
//! record has exactly one encoding. Verification never re-encodes: it hashes the stored bytes.
//!
//! Privacy: the record names the patient and the resource touched (that is what an access
//! history is), but never resource content, and the query only as parameter *names*
//! ([`query_parameter_names`]): search values (names, birth dates, identifiers, possibly of other
//! people) would otherwise sit forever in a log that by design cannot be edited.

use serde::{Deserialize, Serialize};

use crate::time::UtcTime;

/// The identifier system of the 10-digit medical institution number (JP Core).
pub const INSTITUTION_NUMBER_SYSTEM: &str =
    "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no";

/// The version tag of the canonical encoding.
const FORMAT_VERSION: u32 = 1;

/// One decision about one request, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// When the request was decided, in UTC.
    pub recorded: UtcTime,
    /// The request id the server gave the request (also in its log line and `X-Request-Id`).
    pub request_id: String,
    /// Who asked.
    pub agent: Agent,
    /// Why, as the token asserted it (HL7 v3 ActReason).
    pub purpose_of_use: PurposeOfUse,
    /// The logical id of the Patient whose data the request touched; `None` for requests about no
    /// single patient. A request that touches several patients is recorded once per patient.
    pub patient: Option<String>,
    /// What was done.
    pub action: Action,
    /// The decision and the HTTP status that was answered.
    pub outcome: Outcome,
    /// True when the request used an emergency-access window (break-glass).
    pub emergency: bool,
}

/// The acting user and the organisation and client system they acted through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// The user's id as their organisation asserted it (the IUA `subject`), or the patient's
    /// account id when the patient acts.
    pub user_id: String,
    /// The user's name as shown in the patient's access history.
    pub display_name: String,
    /// The role acted in (e.g. `doctor`, `pharmacist`, `clerk`, `public-health-officer`);
    /// `patient` when the patient acts for themself.
    pub role: String,
    /// The organisation, e.g. by its institution number; `None` for a patient.
    pub organisation: Option<OrganisationId>,
    /// The registered client system (SMART `client_id`) the request came through.
    pub client_id: Option<String>,
}

/// An organisation identifier: a system URI and a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganisationId {
    /// The identifier system, e.g. [`INSTITUTION_NUMBER_SYSTEM`].
    pub system: String,
    /// The identifier, e.g. the 10-digit institution number.
    pub value: String,
}

/// Purpose of use, HL7 v3 ActReason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PurposeOfUse {
    /// `TREAT`: treatment, with the patient's consent.
    #[serde(rename = "TREAT")]
    Treatment,
    /// `ETREAT`: emergency treatment (emergency access).
    #[serde(rename = "ETREAT")]
    EmergencyTreatment,
    /// `PATRQT`: the patient's own request (the patient viewing their record).
    #[serde(rename = "PATRQT")]
    PatientRequest,
    /// `PUBHLTH`: public health (notifiable-disease reports, surveillance).
    #[serde(rename = "PUBHLTH")]
    PublicHealth,
    /// `CAREMGT`: care management (nursing-care providers, municipalities).
    #[serde(rename = "CAREMGT")]
    CareManagement,
    /// `COVERAGE`: coverage under a policy or program (insurers' checkup reports).
    #[serde(rename = "COVERAGE")]
    Coverage,
    /// `POPHLTH`: population health (insurers' and municipalities' programmes).
    #[serde(rename = "POPHLTH")]
    PopulationHealth,
    /// `HOPERAT`: healthcare operations (submissions from the facility's own system).
    #[serde(rename = "HOPERAT")]
    Operations,
    /// `HSYSADMIN`: system administration (privacy officers, administrators).
    #[serde(rename = "HSYSADMIN")]
    SystemAdministration,
}

/// What was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// The FHIR interaction (or authentication).
    pub interaction: Interaction,
    /// For [`Interaction::Operation`]: the operation's name with its `$`, e.g. `$everything`.
    pub operation: Option<String>,
    /// The resource type in the URL, if any.
    pub resource_type: Option<String>,
    /// The resource's logical id in the URL, if any.
    pub resource_id: Option<String>,
    /// The names of the query (search or operation) parameters, in request order, values
    /// dropped. Build with [`query_parameter_names`].
    pub query: Vec<String>,
}

/// FHIR restful interactions (codes of `http://hl7.org/fhir/restful-interaction`), plus
/// authentication at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Interaction {
    Read,
    Vread,
    Update,
    Patch,
    Delete,
    HistoryInstance,
    HistoryType,
    HistorySystem,
    Create,
    SearchType,
    SearchSystem,
    Capabilities,
    Transaction,
    Batch,
    Operation,
    /// A token request (SMART Backend Services or a patient login), permitted or refused.
    Authenticate,
}

/// The decision and the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// Whether policy permitted the request.
    pub decision: Decision,
    /// The HTTP status answered.
    pub http_status: u16,
}

/// A policy decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Permitted,
    Denied,
}

impl OrganisationId {
    /// An organisation by its 10-digit medical institution number.
    pub fn institution_number(number: impl Into<String>) -> OrganisationId {
        OrganisationId {
            system: INSTITUTION_NUMBER_SYSTEM.to_owned(),
            value: number.into(),
        }
    }
}

/// Why a record cannot be encoded or decoded. Names the field, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A field is too long or not of its grammar (e.g. a patient id that is not a FHIR id).
    #[error("audit record field `{0}` is empty, too long or malformed")]
    Invalid(&'static str),
    /// The bytes are not a canonical version-1 record.
    #[error("bytes are not a canonical audit record")]
    NotCanonical,
}

/// The most query parameter names kept; further names are dropped.
pub const MAX_QUERY_NAMES: usize = 64;

/// The names of the parameters of a query string (`a=1&b:exact=2` → `["a", "b:exact"]`), in
/// order, percent-decoded, values dropped. A name outside the FHIR parameter-name alphabet
/// (letters, digits, `_ - . : $`) or longer than 128 bytes becomes `"?"`, so that whatever a client
/// puts into a name cannot land in the log. At most [`MAX_QUERY_NAMES`] names are kept.
pub fn query_parameter_names(query: &str) -> Vec<String> {
    parameter_names(
        form_urlencoded::parse(query.as_bytes())
            .map(|(name, _value)| name.into_owned())
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str),
    )
}

/// [`query_parameter_names`] for names already split out (e.g. from a form body).
pub fn parameter_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    names
        .into_iter()
        .filter(|name| !name.is_empty())
        .take(MAX_QUERY_NAMES)
        .map(|name| {
            if is_parameter_name(name) {
                name.to_owned()
            } else {
                "?".to_owned()
            }
        })
        .collect()
}

impl AuditRecord {
    /// The canonical bytes (see the module doc), after checking every field's length and grammar.
    ///
    /// # Errors
    /// [`RecordError::Invalid`] naming the first bad field.
    pub fn to_canonical_bytes(&self) -> Result<Vec<u8>, RecordError> {
        self.validate()?;
        Ok(serde_json::to_vec(&EnvelopeOut {
            v: FORMAT_VERSION,
            record: self,
        })
        .expect("a record always serialises"))
    }

    /// Decodes canonical bytes.
    ///
    /// # Errors
    /// [`RecordError::NotCanonical`] unless the bytes are exactly what
    /// [`AuditRecord::to_canonical_bytes`] writes for some valid record.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<AuditRecord, RecordError> {
        let envelope: EnvelopeIn =
            serde_json::from_slice(bytes).map_err(|_| RecordError::NotCanonical)?;
        if envelope.v != FORMAT_VERSION {
            return Err(RecordError::NotCanonical);
        }
        match envelope.record.to_canonical_bytes() {
            Ok(again) if again == bytes => Ok(envelope.record),
            _ => Err(RecordError::NotCanonical),
        }
    }

    /// Checks lengths and grammars, so the log holds only well-formed, bounded entries.
    fn validate(&self) -> Result<(), RecordError> {
        check(&self.request_id, 128, is_token, "request_id")?;
        check(&self.agent.user_id, 256, is_text, "agent.user_id")?;
        check(&self.agent.display_name, 256, is_text, "agent.display_name")?;
        check(&self.agent.role, 64, is_token, "agent.role")?;
        if let Some(organisation) = &self.agent.organisation {
            check(
                &organisation.system,
                256,
                is_token,
                "agent.organisation.system",
            )?;
            check(
                &organisation.value,
                64,
                is_token,
                "agent.organisation.value",
            )?;
        }
        if let Some(client_id) = &self.agent.client_id {
            check(client_id, 256, is_token, "agent.client_id")?;
        }
        if let Some(patient) = &self.patient {
            check(patient, 64, is_fhir_id, "patient")?;
        }
        let action = &self.action;
        match (&action.operation, action.interaction) {
            (Some(operation), Interaction::Operation) => {
                check(operation, 64, is_operation_name, "action.operation")?;
            }
            (None, Interaction::Operation) | (Some(_), _) => {
                return Err(RecordError::Invalid("action.operation"));
            }
            (None, _) => {}
        }
        if let Some(resource_type) = &action.resource_type {
            check(resource_type, 64, is_resource_type, "action.resource_type")?;
        }
        if let Some(resource_id) = &action.resource_id {
            check(resource_id, 64, is_fhir_id, "action.resource_id")?;
        }
        if action.query.len() > MAX_QUERY_NAMES {
            return Err(RecordError::Invalid("action.query"));
        }
        for name in &action.query {
            if name != "?" {
                check(name, 128, is_parameter_name, "action.query")?;
            }
        }
        if !(100..=599).contains(&self.outcome.http_status) {
            return Err(RecordError::Invalid("outcome.http_status"));
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    v: u32,
    record: &'a AuditRecord,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeIn {
    v: u32,
    record: AuditRecord,
}

fn check(
    value: &str,
    max_len: usize,
    grammar: fn(&str) -> bool,
    field: &'static str,
) -> Result<(), RecordError> {
    if value.is_empty() || value.len() > max_len || !grammar(value) {
        return Err(RecordError::Invalid(field));
    }
    Ok(())
}

/// Printable text without control characters (names may be Japanese).
fn is_text(value: &str) -> bool {
    !value.chars().any(char::is_control)
}

/// Visible ASCII, no spaces: ids, codes, URIs.
fn is_token(value: &str) -> bool {
    value.bytes().all(|byte| byte.is_ascii_graphic())
}

/// FHIR `id`: `[A-Za-z0-9\-\.]{1,64}`.
fn is_fhir_id(value: &str) -> bool {
    value
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.')
}

/// A resource type name: an upper-case letter, then letters.
fn is_resource_type(value: &str) -> bool {
    value.starts_with(|first: char| first.is_ascii_uppercase())
        && value.bytes().all(|byte| byte.is_ascii_alphabetic())
}

/// `$` then letters, digits and `-`.
fn is_operation_name(value: &str) -> bool {
    value.strip_prefix('$').is_some_and(|name| {
        !name.is_empty()
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
    })
}

/// A search or operation parameter name with modifiers and chains: letters, digits, `_ - . : $`.
fn is_parameter_name(value: &str) -> bool {
    value.len() <= 128
        && value.bytes().all(|byte| {
            byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.' | b':' | b'$')
        })
}

#[cfg(test)]
mod tests;
