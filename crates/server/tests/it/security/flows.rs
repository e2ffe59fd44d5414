//! Consent revoked then read at once; emergency access end to end; the audit trail (entries per
//! patient, tampering detected, a failing audit store answers 503 without data); rate limits;
//! unusual-access alerts.

use std::time::Duration;

use auth::Role;
use axum::http::{Method, StatusCode};
use serde_json::json;

use super::{World, generous, leaked};

#[tokio::test]
async fn a_revoked_consent_takes_effect_on_the_very_next_request() {
    let world = World::new().await;
    let token = world
        .token(&World::user("other-hospital", Role::Doctor))
        .await;
    let uri = format!("/fhir/Observation/{}", world.consented.observation);
    assert_eq!(world.get(&token, &uri).await.status, StatusCode::OK);
    world
        .app
        .state
        .app
        .revoke_consent(&world.consents["other-hospital"])
        .await
        .unwrap();
    let reply = world.get(&token, &uri).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
    let reply = world
        .get(
            &token,
            &format!(
                "/fhir/Observation?patient={}&_total=accurate",
                world.consented.patient
            ),
        )
        .await;
    assert_eq!(reply.json()["total"], 0);
    assert!(leaked(&reply.text, &world.consented.markers).is_none());
    // Another organisation's consent is untouched.
    let pharmacy = world
        .token(&World::user("pharmacy", Role::Pharmacist))
        .await;
    assert_eq!(world.get(&pharmacy, &uri).await.status, StatusCode::OK);
}

#[tokio::test]
async fn emergency_access_end_to_end() {
    let world = World::new().await;
    let patient = world.unconsented.patient.clone();
    let mut doctor = World::user("other-hospital", Role::Doctor);
    doctor.emergency_privilege = true;
    doctor.purpose_of_use = auth::PurposeOfUse::EmergencyTreatment;
    let token = world.token(&doctor).await;
    let summary = format!("/fhir/Patient/{patient}/$emergency-summary");
    assert_eq!(
        world.get(&token, &summary).await.status,
        StatusCode::NOT_FOUND
    );

    let open = |token: String, reason: &'static str| {
        let uri = format!("/fhir/Patient/{patient}/$emergency-access");
        let body = json!({"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": reason}]});
        let world = &world;
        async move {
            world
                .call(&token, Method::POST, &uri, Some(body.to_string()))
                .await
        }
    };
    // Without a reason: refused. Without the privilege (a nurse): refused.
    assert_eq!(
        open(token.clone(), " ").await.status,
        StatusCode::BAD_REQUEST
    );
    let nurse = world
        .token(&World::user("other-hospital", Role::Nurse))
        .await;
    assert_eq!(
        open(nurse, "意識障害で搬送").await.status,
        StatusCode::FORBIDDEN
    );
    // A clinic cannot even be granted the privilege.
    let mut clinic_doctor = World::user("clinic", Role::Doctor);
    clinic_doctor.emergency_privilege = true;
    let reply = world
        .token_request(&auth::token_request(
            &world.assertion(&clinic_doctor),
            "system/Patient.rs",
        ))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    let reply = open(token.clone(), "意識障害で救急搬送、本人同意取得不能").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let parameters = reply.json();
    let review = parameters["parameter"][0]["valueReference"]["reference"]
        .as_str()
        .unwrap()
        .trim_start_matches("Task/")
        .to_owned();
    assert!(parameters["parameter"][1]["valueInstant"].is_string());

    // The window opens the emergency summary, and only it.
    let reply = world.get(&token, &summary).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(leaked(&reply.text, &world.unconsented.markers).is_some());
    assert_eq!(
        world
            .get(&token, &format!("/fhir/Patient/{patient}/$summary"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        world
            .get(
                &token,
                &format!("/fhir/Observation/{}", world.unconsented.observation)
            )
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Another user of the same hospital has no window.
    let mut colleague = doctor.clone();
    colleague.id = "colleague".into();
    let colleague = world.token(&colleague).await;
    assert_eq!(
        world.get(&colleague, &summary).await.status,
        StatusCode::NOT_FOUND
    );

    // The privacy officer's alert: the review, organisation and user, no patient data.
    let alerts = world.alerts();
    let alert = alerts
        .iter()
        .find(|alert| alert["kind"] == "emergency-access")
        .expect("an emergency-access alert");
    assert_eq!(alert["review"], review.as_str());
    assert_eq!(alert["organisation"], "other-hospital");
    let text = alert.to_string();
    assert!(!text.contains(&patient));
    assert!(leaked(&text, &world.unconsented.markers).is_none());

    // The patient's access history shows the emergency access and the reading under it.
    let security = world.app.state.security.as_ref().unwrap();
    let history = security
        .audit()
        .patient_history(&patient, None, 100)
        .unwrap();
    let emergency: Vec<_> = history
        .iter()
        .filter(|entry| entry.record.emergency)
        .collect();
    assert!(emergency.len() >= 2, "{history:?}");
    assert!(
        emergency
            .iter()
            .any(|entry| entry.record.action.operation.as_deref() == Some("$emergency-access"))
    );
    assert!(
        emergency
            .iter()
            .any(
                |entry| entry.record.action.operation.as_deref() == Some("$emergency-summary")
                    && entry.record.outcome.decision == audit::Decision::Permitted
            )
    );
    // The denied attempts before the window are in it too.
    assert!(
        history
            .iter()
            .any(|entry| entry.record.outcome.decision == audit::Decision::Denied)
    );

    // Open for review until closed.
    let reviews = world.app.state.app.open_reviews().await.unwrap();
    assert!(reviews.iter().any(|r| r.id == review));
    world.app.state.app.close_review(&review).await.unwrap();
    let reviews = world.app.state.app.open_reviews().await.unwrap();
    assert!(!reviews.iter().any(|r| r.id == review));
}

#[tokio::test]
async fn every_answer_is_audited_per_patient_and_tampering_is_detected() {
    let world = World::new().await;
    let token = world.token(&World::user("author", Role::Doctor)).await;
    let before = world.audit_entries().len();
    // Own patient: permitted. Unconsented patient: denied, recorded against that patient.
    let own = world
        .get(&token, &format!("/fhir/Patient/{}", world.own.patient))
        .await;
    assert_eq!(own.status, StatusCode::OK);
    let denied = world
        .get(
            &token,
            &format!("/fhir/Observation/{}", world.unconsented.observation),
        )
        .await;
    assert_eq!(denied.status, StatusCode::NOT_FOUND);
    let entries = world.audit_entries();
    let new = &entries[before..];
    assert_eq!(new.len(), 2, "{new:?}");
    assert_eq!(
        new[0].record.patient.as_deref(),
        Some(world.own.patient.as_str())
    );
    assert_eq!(new[0].record.outcome.decision, audit::Decision::Permitted);
    assert_eq!(new[0].record.agent.role, "doctor");
    assert_eq!(new[0].record.purpose_of_use, audit::PurposeOfUse::Treatment);
    assert_eq!(
        new[1].record.patient.as_deref(),
        Some(world.unconsented.patient.as_str())
    );
    assert_eq!(new[1].record.outcome.decision, audit::Decision::Denied);
    assert_eq!(new[1].record.outcome.http_status, 404);
    // A search over several patients' data: one entry per patient.
    let before = world.audit_entries().len();
    let reply = world.get(&token, "/fhir/Patient?_count=100").await;
    assert_eq!(reply.status, StatusCode::OK);
    let shown = reply.match_ids().len();
    assert!(shown >= 1);
    assert_eq!(world.audit_entries().len() - before, shown);

    // The log verifies; an edit behind its back does not.
    let dir = world.dir.path();
    let public_key = audit::PublicKey::load(dir.join("audit-key.pub.pem")).unwrap();
    let report = audit::verify(dir.join("audit.sqlite"), &public_key).unwrap();
    assert!(report.is_intact(), "{report}");
    let connection = rusqlite::Connection::open(dir.join("audit.sqlite")).unwrap();
    connection
        .execute_batch(
            "DROP TRIGGER IF EXISTS entry_no_update;
             UPDATE entry SET bytes = CAST(replace(CAST(bytes AS TEXT), '\"Denied\"', '\"Permitted\"') AS BLOB)
             WHERE seq = 1;
             UPDATE entry SET bytes = CAST(replace(CAST(bytes AS TEXT), 'denied', 'permitted') AS BLOB);",
        )
        .unwrap();
    drop(connection);
    let report = audit::verify(dir.join("audit.sqlite"), &public_key).unwrap();
    assert!(!report.is_intact(), "an edited entry went unnoticed");
    assert!(report.first_bad_entry.is_some(), "{report}");
}

#[tokio::test]
async fn a_failing_audit_store_answers_503_without_data() {
    let options = audit::Options {
        busy_timeout: Duration::from_millis(100),
        ..audit::Options::default()
    };
    let world = World::with(generous(), options).await;
    let token = world.token(&World::user("author", Role::Doctor)).await;
    let uri = format!("/fhir/Patient/{}", world.own.patient);
    assert_eq!(world.get(&token, &uri).await.status, StatusCode::OK);
    // Another process holds the audit database's write lock: commits fail.
    let blocker = rusqlite::Connection::open(world.dir.path().join("audit.sqlite")).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let reply = world.get(&token, &uri).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text
    );
    assert!(reply.header("retry-after").is_some());
    assert!(
        leaked(&reply.text, &world.own.markers).is_none(),
        "{}",
        reply.text
    );
    assert!(!reply.text.contains("\"resourceType\":\"Patient\""));
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    let reply = world.get(&token, &uri).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "the service recovers: {}",
        reply.text
    );
    // The failed commit is counted for the operators.
    let metrics = world.app.get("/metrics").await.text;
    let failed = metrics
        .lines()
        .find_map(|line| line.strip_prefix("tsunagu_audit_failed_batches_total "))
        .expect("the audit metrics");
    assert!(failed.parse::<u64>().unwrap() >= 1, "{metrics}");
}

#[tokio::test]
async fn a_client_over_its_rate_limit_gets_429_with_retry_after() {
    let abuse = server::security::AbuseSettings {
        requests_per_second: 0.5,
        burst: 3.0,
        ..generous()
    };
    let world = World::with(abuse, audit::Options::default()).await;
    let token = world.token(&World::user("author", Role::Doctor)).await;
    let statuses: Vec<StatusCode> = {
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(world.get(&token, "/fhir/Organization").await.status);
        }
        statuses
    };
    assert_eq!(&statuses[..3], &[StatusCode::OK; 3]);
    let reply = world.get(&token, "/fhir/Organization").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        reply
            .header("retry-after")
            .is_some_and(|v| v.parse::<u64>().unwrap() >= 1)
    );
    assert_eq!(reply.json()["issue"][0]["code"], "throttled");
    // Another client is not limited by it.
    let pharmacy = world
        .token(&World::user("pharmacy", Role::Pharmacist))
        .await;
    assert_eq!(
        world.get(&pharmacy, "/fhir/Organization").await.status,
        StatusCode::OK
    );

    // Requests without a token share one bucket: they cannot flood the audit trail.
    let before = world.audit_entries().len();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(world.app.get("/fhir/Organization").await.status);
    }
    assert_eq!(
        &statuses[..3],
        &[StatusCode::UNAUTHORIZED; 3],
        "{statuses:?}"
    );
    assert!(
        statuses[3..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert_eq!(
        world.audit_entries().len() - before,
        3,
        "only the answered refusals are recorded"
    );
    // ... and cannot lock patients out: challenges and patients' logins have their own buckets.
    let form = world.login_form(super::PATIENT_PASSWORD).await;
    let login = world.token_request(&form).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
}

#[tokio::test]
async fn one_user_reading_many_patients_raises_an_alert_without_patient_data() {
    let abuse = server::security::AbuseSettings {
        unusual_patients: 1,
        ..generous()
    };
    let world = World::with(abuse, audit::Options::default()).await;
    let token = world.token(&World::user("author", Role::Doctor)).await;
    for patient in [&world.own.patient, &world.consented.patient] {
        let reply = world.get(&token, &format!("/fhir/Patient/{patient}")).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let alerts = world.alerts();
    let alert = alerts
        .iter()
        .find(|alert| alert["kind"] == "unusual-access")
        .expect("an unusual-access alert");
    assert_eq!(alert["organisation"], "author");
    assert_eq!(alert["distinct_patients"], 2);
    let text = alert.to_string();
    for seeded in [&world.own, &world.consented] {
        assert!(!text.contains(&seeded.patient));
        assert!(leaked(&text, &seeded.markers).is_none());
    }
}

#[tokio::test]
async fn a_patient_logs_in_with_two_factors_only() {
    let world = World::new().await;
    // Password and card: a token for their own compartment.
    let form = world.login_form(super::PATIENT_PASSWORD).await;
    let reply = world.token_request(&form).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["patient"], world.unconsented.patient.as_str());
    // The same challenge again: refused (single use).
    let replay = world.token_request(&form).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.text);
    // The password alone never suffices.
    let mut password_only = world.login_form(super::PATIENT_PASSWORD).await;
    password_only.retain(|(name, _)| name != "card_signature");
    password_only.push(("card_signature".into(), String::new()));
    assert_eq!(
        world.token_request(&password_only).await.status,
        StatusCode::BAD_REQUEST
    );
    // The card with the wrong password: the same single reason.
    let reply = world
        .token_request(&world.login_form("wrong password!").await)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error_description"], "patient_login_failed");
    // A patient token is not a facility's: it cannot ask for another patient or write.
    let token = world.patient_token().await;
    let other = world
        .get(&token, &format!("/fhir/Patient/{}", world.own.patient))
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert!(leaked(&other.text, &world.own.markers).is_none());
    let write = world
        .call(
            &token,
            Method::POST,
            "/fhir/Bundle",
            Some(json!({"resourceType": "Bundle", "type": "collection"}).to_string()),
        )
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN, "{}", write.text);
    // Login attempts are recorded, refused ones as denied.
    let logins: Vec<_> = world
        .audit_entries()
        .into_iter()
        .filter(|entry| entry.record.action.interaction == audit::Interaction::Authenticate)
        .collect();
    assert!(
        logins
            .iter()
            .any(|e| e.record.outcome.decision == audit::Decision::Denied)
    );
    assert!(
        logins
            .iter()
            .any(|e| e.record.outcome.decision == audit::Decision::Permitted
                && e.record.agent.user_id == super::PATIENT_ACCOUNT)
    );
}

#[tokio::test]
async fn a_patient_sees_who_accessed_their_record_and_nobody_else_does() {
    let world = World::new().await;
    let patient = world.unconsented.patient.clone();
    // Another hospital tries without consent, then the patient consents and it reads.
    let doctor = world
        .token(&World::user("other-hospital", Role::Doctor))
        .await;
    let uri = format!("/fhir/Observation/{}", world.unconsented.observation);
    assert_eq!(world.get(&doctor, &uri).await.status, StatusCode::NOT_FOUND);
    let token = world.patient_token().await;
    let consent = json!({
        "resourceType": "Consent",
        "provision": {
            "period": {"end": "2099-12-31"},
            "actor": [{"reference": {"reference": "Organization/other-hospital"}}]
        }
    });
    let created = world
        .call(
            &token,
            Method::POST,
            "/fhir/Consent",
            Some(consent.to_string()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let consent_id = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(world.get(&doctor, &uri).await.status, StatusCode::OK);

    // The patient's access history: the denied attempt and the permitted read, with the
    // organisation, role and purpose; newest first.
    let history = world
        .get(&token, &format!("/fhir/AuditEvent?patient={patient}"))
        .await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.text);
    let events: Vec<serde_json::Value> = history.json()["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["resource"].clone())
        .collect();
    let by_doctor: Vec<&serde_json::Value> = events
        .iter()
        .filter(|event| event.to_string().contains("doctor-user"))
        .collect();
    assert!(by_doctor.iter().any(|e| e["outcome"] == "0"), "{events:?}");
    assert!(by_doctor.iter().any(|e| e["outcome"] == "4"), "{events:?}");
    assert!(
        by_doctor
            .iter()
            .all(|e| e["purposeOfEvent"][0]["coding"][0]["code"] == "TREAT")
    );
    assert!(
        by_doctor
            .iter()
            .all(|e| e.to_string().contains("1311234567"))
    );
    // Only their own: another id finds nothing; a member cannot read histories at all.
    let other = world
        .get(
            &token,
            &format!("/fhir/AuditEvent?patient={}", world.own.patient),
        )
        .await;
    assert_eq!(other.status, StatusCode::OK);
    assert!(other.json()["entry"].as_array().unwrap().is_empty());
    let member = world
        .get(&doctor, &format!("/fhir/AuditEvent?patient={patient}"))
        .await;
    assert_eq!(member.status, StatusCode::FORBIDDEN);

    // Revoked by the patient: the very next request is refused.
    let revoked = world
        .call(
            &token,
            Method::DELETE,
            &format!("/fhir/Consent/{consent_id}"),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text);
    assert_eq!(world.get(&doctor, &uri).await.status, StatusCode::NOT_FOUND);
    // Nobody else revokes it: another patient's consent is not found.
    let theirs = world.consents["clinic"].clone();
    let reply = world
        .call(
            &token,
            Method::DELETE,
            &format!("/fhir/Consent/{theirs}"),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let clinic = world.token(&World::user("clinic", Role::Doctor)).await;
    assert_eq!(
        world
            .get(
                &clinic,
                &format!("/fhir/Observation/{}", world.consented.observation)
            )
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_facility_records_a_consent_at_reception_only_with_the_patients_card() {
    let world = World::new().await;
    let patient = world.unconsented.patient.clone();
    let clerk = world.token(&World::user("clinic", Role::Clerk)).await;
    let doctor = world.token(&World::user("clinic", Role::Doctor)).await;
    let uri = format!("/fhir/Observation/{}", world.unconsented.observation);
    assert_eq!(world.get(&doctor, &uri).await.status, StatusCode::NOT_FOUND);
    let consent = |organisation: &str| {
        json!({
            "resourceType": "Consent",
            "patient": {"reference": format!("Patient/{patient}")},
            "provision": {"actor": [{"reference": {"reference": format!("Organization/{organisation}")}}]}
        })
        .to_string()
    };
    let post = |token: String, body: String, card: Option<(String, String)>| {
        let world = &world;
        async move {
            let bearer = format!("Bearer {token}");
            let mut headers = vec![("authorization", bearer.as_str())];
            let card = card.unwrap_or_default();
            if !card.0.is_empty() {
                headers.push(("x-card-challenge", card.0.as_str()));
                headers.push(("x-card-signature", card.1.as_str()));
            }
            world
                .app
                .request(Method::POST, "/fhir/Consent", &headers, Some(body))
                .await
        }
    };
    let account = auth::AccountId::new(super::PATIENT_ACCOUNT).unwrap();
    let signed = |challenge: String, organisation: &str| {
        let purpose = auth::consent_purpose(&auth::OrganisationId::new(organisation).unwrap());
        let signature = world
            .card
            .sign(&auth::card_message(&purpose, &challenge, &account));
        (challenge, signature)
    };
    // Without the card: refused.
    let reply = post(clerk.clone(), consent("clinic"), None).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
    // A card signature made for another organisation: refused.
    let wrong = signed(world.challenge().await, "pharmacy");
    let reply = post(clerk.clone(), consent("clinic"), Some(wrong)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
    // A consent to another organisation than the clerk's own: refused.
    let other = signed(world.challenge().await, "pharmacy");
    let reply = post(clerk.clone(), consent("pharmacy"), Some(other)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
    // The patient's card, signing for this clinic: recorded; the clinic's doctor now reads.
    let card = signed(world.challenge().await, "clinic");
    let reply = post(clerk.clone(), consent("clinic"), Some(card.clone())).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(world.get(&doctor, &uri).await.status, StatusCode::OK);
    // The same signature again: the challenge was used.
    let reply = post(clerk, consent("clinic"), Some(card)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
}

#[tokio::test]
async fn a_paging_link_carries_no_access_to_whoever_follows_it() {
    let world = World::new().await;
    let author = world.token(&World::user("author", Role::Doctor)).await;
    let first = world
        .get(
            &author,
            &format!("/fhir/Observation?patient={}&_count=1", world.own.patient),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let next = first.link("next").expect("a next link");
    let second = world.get(&author, &next).await;
    assert_eq!(second.match_ids().len(), 1, "{}", second.text);
    // Another hospital without consent follows the same link: its search is narrowed for it, and
    // the cursor, bound to the query it was issued for, does not fit that search: refused.
    let other = world
        .token(&World::user("other-hospital", Role::Doctor))
        .await;
    let followed = world.get(&other, &next).await;
    assert_eq!(
        followed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        followed.text
    );
    assert!(followed.match_ids().is_empty(), "{}", followed.text);
    assert!(leaked(&followed.text, &world.own.markers).is_none());
    assert!(!followed.text.contains(&world.own.observation));
}
