//! An [`AuditRecord`] as a FHIR R4 `AuditEvent` in the IHE BALP shape, for `GET /fhir/AuditEvent`
//! (a patient's access history, a privacy officer's review).
//!
//! - `type` `audit-event-type#rest`, `subtype` the `restful-interaction` code (authentication:
//!   DICOM `110114` User Authentication / `110122` Login);
//! - `action` C/R/U/D/E as BALP uses them (searches and operations are E);
//! - `outcome` `0` when permitted and answered below 400, `4` when denied or answered 4xx, `8` for
//!   5xx; `outcomeDesc` says `permitted`/`denied` and the status;
//! - `purposeOfEvent` the ActReason code, plus `ETREAT` when under emergency access;
//! - agents: the user (requestor; BALP user types `IRCP` for reads, `AGNT` for writes, `PAT` for
//!   the patient; `role.text` the role; `who.identifier` the user id, `who.display` the name), the
//!   organisation (`who` an Organization by identifier), the client system (DICOM `110153` Source
//!   Role ID) and tsunagu itself (DICOM `110152` Destination Role ID);
//! - `source`: tsunagu as an application server (`security-source-type#4`);
//! - entities: the request id (BALP `XrequestId`), the patient (`audit-entity-type#1`,
//!   `object-role#1`), the resource (`#2`, `object-role#4`, with the operation as a `detail`), and
//!   for searches a query entity (`object-role#24`) whose `description` lists the parameter names —
//!   the values were never recorded, so `entity.query` is not used.

use serde_json::{Map, Value, json};

use crate::record::{AuditRecord, Decision, Interaction, PurposeOfUse};

/// The name tsunagu uses for itself as audit source and destination agent.
const SERVER_NAME: &str = "tsunagu";

impl AuditRecord {
    /// The record as a FHIR R4 `AuditEvent` with logical id `id` (the entry's sequence number).
    pub fn to_audit_event(&self, id: &str) -> Value {
        let interaction = self.action.interaction;
        let mut event = Map::new();
        event.insert("resourceType".into(), json!("AuditEvent"));
        event.insert("id".into(), json!(id));
        if interaction == Interaction::Authenticate {
            event.insert("type".into(), dicom("110114", "User Authentication"));
            event.insert("subtype".into(), json!([dicom("110122", "Login")]));
        } else {
            event.insert(
                "type".into(),
                json!({
                    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
                    "code": "rest",
                    "display": "Restful Operation"
                }),
            );
            event.insert(
                "subtype".into(),
                json!([{
                    "system": "http://hl7.org/fhir/restful-interaction",
                    "code": interaction_code(interaction)
                }]),
            );
        }
        event.insert("action".into(), json!(action_code(interaction)));
        event.insert("recorded".into(), json!(self.recorded.to_rfc3339()));
        let status = self.outcome.http_status;
        let outcome = match (self.outcome.decision, status) {
            (_, 500..) => "8",
            (Decision::Denied, _) | (_, 400..) => "4",
            (Decision::Permitted, _) => "0",
        };
        event.insert("outcome".into(), json!(outcome));
        let decision = match self.outcome.decision {
            Decision::Permitted => "permitted",
            Decision::Denied => "denied",
        };
        event.insert(
            "outcomeDesc".into(),
            json!(format!("{decision}, HTTP {status}")),
        );
        let mut purposes = vec![act_reason(self.purpose_of_use)];
        if self.emergency && self.purpose_of_use != PurposeOfUse::EmergencyTreatment {
            purposes.push(act_reason(PurposeOfUse::EmergencyTreatment));
        }
        event.insert("purposeOfEvent".into(), Value::Array(purposes.clone()));
        event.insert("agent".into(), Value::Array(self.agents(purposes)));
        event.insert(
            "source".into(),
            json!({
                "observer": {"display": SERVER_NAME},
                "type": [{
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "4",
                    "display": "Application Server"
                }]
            }),
        );
        event.insert("entity".into(), Value::Array(self.entities()));
        Value::Object(event)
    }

    fn agents(&self, purposes: Vec<Value>) -> Vec<Value> {
        let agent = &self.agent;
        let is_patient = agent.role == "patient";
        let user_type = if is_patient {
            coding_concept(
                "http://terminology.hl7.org/CodeSystem/v3-RoleClass",
                "PAT",
                "patient",
            )
        } else if matches!(
            self.action.interaction,
            Interaction::Create
                | Interaction::Update
                | Interaction::Patch
                | Interaction::Delete
                | Interaction::Transaction
                | Interaction::Batch
        ) {
            coding_concept(
                "http://terminology.hl7.org/CodeSystem/v3-RoleClass",
                "AGNT",
                "agent",
            )
        } else {
            coding_concept(
                "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                "IRCP",
                "information recipient",
            )
        };
        let mut agents = vec![json!({
            "type": user_type,
            "role": [{"text": agent.role}],
            "who": {
                "identifier": {"value": agent.user_id},
                "display": agent.display_name
            },
            "requestor": true,
            "purposeOfUse": purposes
        })];
        if let Some(organisation) = &agent.organisation {
            agents.push(json!({
                "type": {"text": "organisation"},
                "who": {
                    "type": "Organization",
                    "identifier": {"system": organisation.system, "value": organisation.value}
                },
                "requestor": false
            }));
        }
        let mut client = json!({
            "type": dicom_concept("110153", "Source Role ID"),
            "requestor": false
        });
        if let Some(client_id) = &agent.client_id {
            client["who"] = json!({"identifier": {"value": client_id}});
        }
        agents.push(client);
        agents.push(json!({
            "type": dicom_concept("110152", "Destination Role ID"),
            "who": {"display": SERVER_NAME},
            "requestor": false
        }));
        agents
    }

    fn entities(&self) -> Vec<Value> {
        let action = &self.action;
        let mut entities = vec![json!({
            "what": {"identifier": {"value": self.request_id}},
            "type": {
                "system": "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType",
                "code": "XrequestId"
            }
        })];
        if let Some(patient) = &self.patient {
            entities.push(json!({
                "what": {"reference": format!("Patient/{patient}")},
                "type": entity_type("1", "Person"),
                "role": entity_role("1", "Patient")
            }));
        }
        if action.resource_type.is_some() || action.operation.is_some() {
            let mut entity = Map::new();
            match (&action.resource_type, &action.resource_id) {
                (Some(resource_type), Some(id)) => {
                    entity.insert(
                        "what".into(),
                        json!({"reference": format!("{resource_type}/{id}")}),
                    );
                }
                (Some(resource_type), None) => {
                    entity.insert("what".into(), json!({"type": resource_type}));
                }
                _ => {}
            }
            entity.insert("type".into(), entity_type("2", "System Object"));
            entity.insert("role".into(), entity_role("4", "Domain Resource"));
            if let Some(operation) = &action.operation {
                entity.insert(
                    "detail".into(),
                    json!([{"type": "operation", "valueString": operation}]),
                );
            }
            entities.push(Value::Object(entity));
        }
        let is_search = matches!(
            action.interaction,
            Interaction::SearchType | Interaction::SearchSystem
        );
        if is_search || !action.query.is_empty() {
            let description = if action.query.is_empty() {
                "no parameters".to_owned()
            } else {
                format!("parameter names: {}", action.query.join(", "))
            };
            entities.push(json!({
                "type": entity_type("2", "System Object"),
                "role": entity_role("24", "Query"),
                "description": description
            }));
        }
        entities
    }
}

fn interaction_code(interaction: Interaction) -> &'static str {
    match interaction {
        Interaction::Read => "read",
        Interaction::Vread => "vread",
        Interaction::Update => "update",
        Interaction::Patch => "patch",
        Interaction::Delete => "delete",
        Interaction::HistoryInstance => "history-instance",
        Interaction::HistoryType => "history-type",
        Interaction::HistorySystem => "history-system",
        Interaction::Create => "create",
        Interaction::SearchType => "search-type",
        Interaction::SearchSystem => "search-system",
        Interaction::Capabilities => "capabilities",
        Interaction::Transaction => "transaction",
        Interaction::Batch => "batch",
        Interaction::Operation => "operation",
        Interaction::Authenticate => "login",
    }
}

/// AuditEvent.action: C create, R read/view, U update, D delete, E execute (BALP uses E for
/// queries).
fn action_code(interaction: Interaction) -> &'static str {
    match interaction {
        Interaction::Create => "C",
        Interaction::Read
        | Interaction::Vread
        | Interaction::HistoryInstance
        | Interaction::HistoryType
        | Interaction::HistorySystem => "R",
        Interaction::Update | Interaction::Patch => "U",
        Interaction::Delete => "D",
        Interaction::SearchType
        | Interaction::SearchSystem
        | Interaction::Capabilities
        | Interaction::Transaction
        | Interaction::Batch
        | Interaction::Operation
        | Interaction::Authenticate => "E",
    }
}

fn act_reason(purpose: PurposeOfUse) -> Value {
    let (code, display) = match purpose {
        PurposeOfUse::Treatment => ("TREAT", "treatment"),
        PurposeOfUse::EmergencyTreatment => ("ETREAT", "Emergency Treatment"),
        PurposeOfUse::PatientRequest => ("PATRQT", "patient requested"),
        PurposeOfUse::PublicHealth => ("PUBHLTH", "public health"),
        PurposeOfUse::CareManagement => ("CAREMGT", "care management"),
        PurposeOfUse::Coverage => ("COVERAGE", "coverage under policy or program"),
        PurposeOfUse::PopulationHealth => ("POPHLTH", "population health"),
        PurposeOfUse::Operations => ("HOPERAT", "healthcare operations"),
        PurposeOfUse::SystemAdministration => ("HSYSADMIN", "health system administration"),
    };
    coding_concept(
        "http://terminology.hl7.org/CodeSystem/v3-ActReason",
        code,
        display,
    )
}

fn coding_concept(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}]})
}

fn dicom(code: &str, display: &str) -> Value {
    json!({"system": "http://dicom.nema.org/resources/ontology/DCM", "code": code, "display": display})
}

fn dicom_concept(code: &str, display: &str) -> Value {
    json!({"coding": [dicom(code, display)]})
}

fn entity_type(code: &str, display: &str) -> Value {
    json!({
        "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
        "code": code,
        "display": display
    })
}

fn entity_role(code: &str, display: &str) -> Value {
    json!({
        "system": "http://terminology.hl7.org/CodeSystem/object-role",
        "code": code,
        "display": display
    })
}
