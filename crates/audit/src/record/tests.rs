//! Records: the canonical bytes (pinned), their uniqueness, field checks that never echo values,
//! query names without values, and the AuditEvent form (pinned, and valid R4 by the `fhir`
//! crate's schema validator).

use expect_test::{Expect, expect};

use super::*;

fn record() -> AuditRecord {
    AuditRecord {
        recorded: UtcTime::parse_rfc3339("2026-11-24T09:30:00.125000Z").unwrap(),
        request_id: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".to_owned(),
        agent: Agent {
            user_id: "dr-0042".to_owned(),
            display_name: "山田 太郎".to_owned(),
            role: "doctor".to_owned(),
            organisation: Some(OrganisationId {
                system: INSTITUTION_NUMBER_SYSTEM.to_owned(),
                value: "1312345678".to_owned(),
            }),
            client_id: Some("clinic-emr-1".to_owned()),
        },
        purpose_of_use: PurposeOfUse::Treatment,
        patient: Some("demo-patient-001".to_owned()),
        action: Action {
            interaction: Interaction::SearchType,
            operation: None,
            resource_type: Some("Observation".to_owned()),
            resource_id: None,
            query: query_parameter_names("patient=demo-patient-001&code=2345-7&_count=10"),
        },
        outcome: Outcome {
            decision: Decision::Permitted,
            http_status: 200,
        },
        emergency: false,
    }
}

fn check_bytes(record: &AuditRecord, expect: Expect) {
    let bytes = record.to_canonical_bytes().unwrap();
    expect.assert_eq(std::str::from_utf8(&bytes).unwrap());
}

#[test]
fn canonical_bytes_are_pinned() {
    check_bytes(
        &record(),
        expect![[
            r#"{"v":1,"record":{"recorded":"2026-11-24T09:30:00.125000Z","request_id":"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0","agent":{"user_id":"dr-0042","display_name":"山田 太郎","role":"doctor","organisation":{"system":"http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no","value":"1312345678"},"client_id":"clinic-emr-1"},"purpose_of_use":"TREAT","patient":"demo-patient-001","action":{"interaction":"search-type","operation":null,"resource_type":"Observation","resource_id":null,"query":["patient","code","_count"]},"outcome":{"decision":"permitted","http_status":200},"emergency":false}}"#
        ]],
    );
}

#[test]
fn canonical_bytes_decode_to_the_record_and_nothing_else_does() {
    let record = record();
    let bytes = record.to_canonical_bytes().unwrap();
    assert_eq!(AuditRecord::from_canonical_bytes(&bytes).unwrap(), record);

    let text = std::str::from_utf8(&bytes).unwrap();
    let variants = [
        // Whitespace, another field order, a missing null, an escape serde_json would not write,
        // another version, trailing bytes.
        text.replacen(r#""v":1,"#, r#""v": 1,"#, 1),
        text.replacen(
            r#"{"v":1,"record":{"recorded":"2026-11-24T09:30:00.125000Z","request_id""#,
            r#"{"record":{"recorded":"2026-11-24T09:30:00.125000Z","request_id""#,
            1,
        )
        .replacen(r#""emergency":false}}"#, r#""emergency":false},"v":1}"#, 1),
        text.replacen(r#""operation":null,"#, "", 1),
        text.replacen("dr-0042", r"dr-\u0030042", 1),
        text.replacen(r#""v":1"#, r#""v":2"#, 1),
        format!("{text}\n"),
        text.replacen("2026-11-24T09:30:00.125000Z", "2026-11-24T09:30:00.125Z", 1),
        text.replacen(r#""emergency":false"#, r#""emergency":false,"extra":1"#, 1),
    ];
    for variant in variants {
        assert_ne!(variant, text);
        assert_eq!(
            AuditRecord::from_canonical_bytes(variant.as_bytes()),
            Err(RecordError::NotCanonical),
            "{variant}"
        );
    }
}

#[test]
fn invalid_fields_are_named_and_their_values_are_not_echoed() {
    type Change = Box<dyn Fn(&mut AuditRecord)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "patient",
            Box::new(|r| r.patient = Some("Patient/SECRET".into())),
        ),
        ("patient", Box::new(|r| r.patient = Some(String::new()))),
        (
            "request_id",
            Box::new(|r| r.request_id = "SECRET id".into()),
        ),
        (
            "agent.display_name",
            Box::new(|r| r.agent.display_name = "SECRET\n".into()),
        ),
        (
            "agent.display_name",
            Box::new(|r| r.agent.display_name = "SECRET".repeat(50)),
        ),
        (
            "agent.role",
            Box::new(|r| r.agent.role = "SECRET role".into()),
        ),
        (
            "action.resource_type",
            Box::new(|r| r.action.resource_type = Some("SECRET1".into())),
        ),
        (
            "action.resource_id",
            Box::new(|r| r.action.resource_id = Some("SECRET/1".into())),
        ),
        (
            "action.operation",
            Box::new(|r| r.action.operation = Some("$everything".into())),
        ),
        (
            "action.operation",
            Box::new(|r| {
                r.action.interaction = Interaction::Operation;
                r.action.operation = Some("SECRET".into());
            }),
        ),
        (
            "action.query",
            Box::new(|r| r.action.query = vec!["name=SECRET".into()]),
        ),
        (
            "outcome.http_status",
            Box::new(|r| r.outcome.http_status = 42),
        ),
    ];
    for (field, change) in cases {
        let mut record = record();
        change(&mut record);
        let error = record.to_canonical_bytes().unwrap_err();
        assert_eq!(error, RecordError::Invalid(field));
        assert!(!error.to_string().contains("SECRET"));
    }
}

#[test]
fn query_names_keep_names_and_drop_values() {
    assert_eq!(
        query_parameter_names(
            "family=%E5%B1%B1%E7%94%B0&birthdate=ge1980-01-01&subject:Patient.name=Taro&_has:Observation:patient:code=1234&code%3Aexact=x&&=orphan"
        ),
        [
            "family",
            "birthdate",
            "subject:Patient.name",
            "_has:Observation:patient:code",
            "code:exact"
        ]
    );
    // A name that could carry data is replaced.
    assert_eq!(
        query_parameter_names("Yamada Taro=1&%E5%B1%B1%E7%94%B0=2&a/b=3"),
        ["?", "?", "?"]
    );
    let many = (0..100)
        .map(|i| format!("p{i}=v"))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(query_parameter_names(&many).len(), MAX_QUERY_NAMES);
    assert_eq!(parameter_names(["_id", "x y"]), ["_id", "?"]);
}

fn check_event(record: &AuditRecord, expect: Expect) {
    let event = record.to_audit_event("42");
    let issues = fhir::validate_resource(&event);
    assert!(issues.is_empty(), "{issues:?}");
    expect.assert_eq(&serde_json::to_string_pretty(&event).unwrap());
}

#[test]
fn a_search_becomes_a_balp_query_audit_event() {
    check_event(
        &record(),
        expect![[r#"
            {
              "resourceType": "AuditEvent",
              "id": "42",
              "type": {
                "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
                "code": "rest",
                "display": "Restful Operation"
              },
              "subtype": [
                {
                  "system": "http://hl7.org/fhir/restful-interaction",
                  "code": "search-type"
                }
              ],
              "action": "E",
              "recorded": "2026-11-24T09:30:00.125000Z",
              "outcome": "0",
              "outcomeDesc": "permitted, HTTP 200",
              "purposeOfEvent": [
                {
                  "coding": [
                    {
                      "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                      "code": "TREAT",
                      "display": "treatment"
                    }
                  ]
                }
              ],
              "agent": [
                {
                  "type": {
                    "coding": [
                      {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                        "code": "IRCP",
                        "display": "information recipient"
                      }
                    ]
                  },
                  "role": [
                    {
                      "text": "doctor"
                    }
                  ],
                  "who": {
                    "identifier": {
                      "value": "dr-0042"
                    },
                    "display": "山田 太郎"
                  },
                  "requestor": true,
                  "purposeOfUse": [
                    {
                      "coding": [
                        {
                          "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                          "code": "TREAT",
                          "display": "treatment"
                        }
                      ]
                    }
                  ]
                },
                {
                  "type": {
                    "text": "organisation"
                  },
                  "who": {
                    "type": "Organization",
                    "identifier": {
                      "system": "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no",
                      "value": "1312345678"
                    }
                  },
                  "requestor": false
                },
                {
                  "type": {
                    "coding": [
                      {
                        "system": "http://dicom.nema.org/resources/ontology/DCM",
                        "code": "110153",
                        "display": "Source Role ID"
                      }
                    ]
                  },
                  "requestor": false,
                  "who": {
                    "identifier": {
                      "value": "clinic-emr-1"
                    }
                  }
                },
                {
                  "type": {
                    "coding": [
                      {
                        "system": "http://dicom.nema.org/resources/ontology/DCM",
                        "code": "110152",
                        "display": "Destination Role ID"
                      }
                    ]
                  },
                  "who": {
                    "display": "tsunagu"
                  },
                  "requestor": false
                }
              ],
              "source": {
                "observer": {
                  "display": "tsunagu"
                },
                "type": [
                  {
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "4",
                    "display": "Application Server"
                  }
                ]
              },
              "entity": [
                {
                  "what": {
                    "identifier": {
                      "value": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
                    }
                  },
                  "type": {
                    "system": "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType",
                    "code": "XrequestId"
                  }
                },
                {
                  "what": {
                    "reference": "Patient/demo-patient-001"
                  },
                  "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "1",
                    "display": "Person"
                  },
                  "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "1",
                    "display": "Patient"
                  }
                },
                {
                  "what": {
                    "type": "Observation"
                  },
                  "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "2",
                    "display": "System Object"
                  },
                  "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "4",
                    "display": "Domain Resource"
                  }
                },
                {
                  "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "2",
                    "display": "System Object"
                  },
                  "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "24",
                    "display": "Query"
                  },
                  "description": "parameter names: patient, code, _count"
                }
              ]
            }"#]],
    );
}

#[test]
fn emergency_operations_denials_and_logins_are_valid_audit_events() {
    let mut emergency = record();
    emergency.emergency = true;
    emergency.action = Action {
        interaction: Interaction::Operation,
        operation: Some("$emergency-summary".to_owned()),
        resource_type: Some("Patient".to_owned()),
        resource_id: Some("demo-patient-001".to_owned()),
        query: Vec::new(),
    };
    let event = emergency.to_audit_event("7");
    assert!(fhir::validate_resource(&event).is_empty());
    let purposes: Vec<&str> = event["purposeOfEvent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|purpose| purpose["coding"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(purposes, ["TREAT", "ETREAT"]);
    assert_eq!(event["action"], "E");
    assert_eq!(
        event["entity"][2]["what"]["reference"],
        "Patient/demo-patient-001"
    );
    assert_eq!(
        event["entity"][2]["detail"][0]["valueString"],
        "$emergency-summary"
    );

    let mut denied = record();
    denied.outcome = Outcome {
        decision: Decision::Denied,
        http_status: 404,
    };
    denied.action.interaction = Interaction::Read;
    denied.action.resource_type = Some("Patient".to_owned());
    denied.action.resource_id = Some("demo-patient-001".to_owned());
    denied.action.query.clear();
    let event = denied.to_audit_event("8");
    assert!(fhir::validate_resource(&event).is_empty());
    assert_eq!(event["outcome"], "4");
    assert_eq!(event["outcomeDesc"], "denied, HTTP 404");
    assert_eq!(event["action"], "R");
    assert_eq!(event["entity"].as_array().unwrap().len(), 3);

    let mut login = record();
    login.patient = None;
    login.outcome = Outcome {
        decision: Decision::Denied,
        http_status: 401,
    };
    login.action = Action {
        interaction: Interaction::Authenticate,
        operation: None,
        resource_type: None,
        resource_id: None,
        query: Vec::new(),
    };
    let event = login.to_audit_event("9");
    assert!(fhir::validate_resource(&event).is_empty());
    assert_eq!(event["type"]["code"], "110114");
    assert_eq!(event["entity"].as_array().unwrap().len(), 1);

    let mut patient = record();
    patient.agent.role = "patient".to_owned();
    patient.agent.organisation = None;
    patient.agent.client_id = None;
    patient.purpose_of_use = PurposeOfUse::PatientRequest;
    let event = patient.to_audit_event("10");
    assert!(fhir::validate_resource(&event).is_empty());
    assert_eq!(event["agent"][0]["type"]["coding"][0]["code"], "PAT");
    assert_eq!(event["agent"].as_array().unwrap().len(), 3);
}
