//! What an authenticated member of an organisation sees of a patient's shared data: its own
//! facility's submissions always; anything else only under the patient's active consent to its
//! organisation, and only the kinds of data its organisation kind and role are for. Tried as
//! another facility would: reads, searches (matches and totals), compartments, summaries,
//! includes and history, before and after consent, after revocation, with an expired consent, and
//! with roles that may not see clinical data.

use app::{App, Member, OrganisationKind, Role, SearchInput, Viewer};
use axum::http::StatusCode;
use serde_json::Value;

use crate::TestApp;

const AUTHOR: &str = "1318814790";
const OTHER: &str = "1311234567";

fn labs() -> Value {
    let path = format!(
        "{}/../../fixtures/jp/clins/Bundle-Bundle-CLINS-Observations-Example-01.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON")
}

fn member(organisation: &str, institution: &str, kind: OrganisationKind, role: Role) -> Member {
    Member {
        organisation: organisation.to_owned(),
        institution: Some(institution.to_owned()),
        kind,
        role,
        user: "user-1".to_owned(),
        emergency_privilege: false,
        token_types: None,
    }
}

fn other_doctor() -> Member {
    member("org-other", OTHER, OrganisationKind::Hospital, Role::Doctor)
}

/// A façade answering for one request of `member` (consents are decided afresh per request).
fn as_member(app: &TestApp, member: &Member) -> App {
    app.state.app.for_viewer(Viewer::Member(member.clone()))
}

async fn count(
    app: &App,
    types: &[&str],
    compartment: Option<&str>,
    params: &[(&str, &str)],
) -> u64 {
    let mut params: Vec<(String, String)> = params
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    params.push(("_total".into(), "accurate".into()));
    let outcome = app
        .search(&SearchInput {
            types: types.iter().map(|t| (*t).to_owned()).collect(),
            compartment: compartment.map(str::to_owned),
            params,
            strict: false,
        })
        .await
        .expect("search");
    outcome.page.total.expect("total")
}

/// Submits the lab example; returns the person and one of its Observations.
async fn submitted(app: &TestApp) -> (String, String) {
    let reply = app.post("/fhir/Bundle", &labs()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let service = app.state.app.for_viewer(Viewer::Service);
    let page = service
        .search(&SearchInput {
            types: vec!["Observation".into()],
            ..SearchInput::default()
        })
        .await
        .expect("search")
        .page;
    let observation: Value = serde_json::from_str(&page.matches[0].json).expect("JSON");
    let person = observation["subject"]["reference"]
        .as_str()
        .expect("subject")
        .trim_start_matches("Patient/")
        .to_owned();
    (person, page.matches[0].id.clone())
}

#[tokio::test]
async fn another_facility_learns_nothing_without_consent_and_everything_allowed_with_it() {
    let app = TestApp::new();
    let (person, observation) = submitted(&app).await;
    let other = other_doctor();

    let without = as_member(&app, &other);
    assert!(without.read("Observation", &observation).await.is_err());
    assert!(
        without.read("Patient", &person).await.is_err(),
        "not even that the patient exists"
    );
    assert_eq!(
        count(&without, &["Observation"], None, &[("patient", &person)]).await,
        0
    );
    assert_eq!(
        count(&without, &["Observation"], None, &[]).await,
        0,
        "nor a count across patients"
    );
    assert_eq!(
        count(&without, &[], Some(&person), &[]).await,
        0,
        "$everything"
    );
    assert_eq!(count(&without, &["Patient"], None, &[]).await, 0);
    assert!(
        without
            .summary(
                app::SummaryKind::Patient,
                &person,
                "http://x/fhir",
                app::now()
            )
            .await
            .is_err()
    );
    let history = without
        .history(&app::HistoryRequest {
            scope: app::HistoryScope::Type("Observation".into()),
            params: Vec::new(),
        })
        .await
        .expect("history");
    assert!(history.entries.is_empty());

    // The patient consents to the other organisation for a year.
    let now = app::now();
    let consent = app
        .state
        .app
        .grant_consent(
            &person,
            "org-other",
            now,
            app::Timestamp(now.0 + 365 * 86_400_000_000),
        )
        .await
        .expect("consent");
    let with = as_member(&app, &other);
    assert!(with.read("Observation", &observation).await.is_ok());
    assert!(with.read("Patient", &person).await.is_ok());
    assert_eq!(
        count(&with, &["Observation"], None, &[("patient", &person)]).await,
        4
    );
    assert_eq!(count(&with, &["Observation"], Some(&person), &[]).await, 4);
    assert!(
        with.summary(
            app::SummaryKind::Patient,
            &person,
            "http://x/fhir",
            app::now()
        )
        .await
        .is_ok()
    );
    // Still nothing of anyone else: a search across patients counts only what it may see.
    assert_eq!(count(&with, &["Observation"], None, &[]).await, 0);

    // Revoked: the very next request is decided without it.
    app.state
        .app
        .revoke_consent(&consent.id)
        .await
        .expect("revoke");
    let revoked = as_member(&app, &other);
    assert!(revoked.read("Observation", &observation).await.is_err());
    assert_eq!(
        count(&revoked, &["Observation"], None, &[("patient", &person)]).await,
        0
    );
}

#[tokio::test]
async fn the_submitting_facility_sees_its_own_submissions_without_consent() {
    let app = TestApp::new();
    let (person, observation) = submitted(&app).await;
    let author = as_member(
        &app,
        &member("org-author", AUTHOR, OrganisationKind::Clinic, Role::Nurse),
    );
    assert!(author.read("Observation", &observation).await.is_ok());
    assert_eq!(
        count(&author, &["Observation"], None, &[("patient", &person)]).await,
        4
    );
    // It holds the patient's facility id: it may see who the patient is.
    assert!(author.read("Patient", &person).await.is_ok());
}

#[tokio::test]
async fn an_expired_consent_and_roles_without_clinical_purpose_see_nothing() {
    let app = TestApp::new();
    let (person, observation) = submitted(&app).await;
    let now = app::now();
    let day = 86_400_000_000_i64;
    // A consent that ended yesterday.
    app.state
        .app
        .grant_consent(
            &person,
            "org-other",
            app::Timestamp(now.0 - 30 * day),
            app::Timestamp(now.0 - day),
        )
        .await
        .expect("consent");
    assert!(
        as_member(&app, &other_doctor())
            .read("Observation", &observation)
            .await
            .is_err()
    );

    // A current consent to a pharmacy: its pharmacist sees labs, not diagnoses; its clerk nothing.
    app.state
        .app
        .grant_consent(&person, "org-pharmacy", now, app::Timestamp(now.0 + day))
        .await
        .expect("consent");
    let pharmacist = as_member(
        &app,
        &member(
            "org-pharmacy",
            "1341234567",
            OrganisationKind::Pharmacy,
            Role::Pharmacist,
        ),
    );
    assert!(pharmacist.read("Observation", &observation).await.is_ok());
    assert_eq!(
        count(&pharmacist, &["Condition"], Some(&person), &[]).await,
        0
    );
    let clerk = as_member(
        &app,
        &member(
            "org-pharmacy",
            "1341234567",
            OrganisationKind::Pharmacy,
            Role::Clerk,
        ),
    );
    assert!(clerk.read("Observation", &observation).await.is_err());
    assert_eq!(count(&clerk, &[], Some(&person), &[]).await, 0);
    assert!(
        app::allowed_types(OrganisationKind::Hospital, Role::Administrator)
            .iter()
            .all(|t| [
                "Organization",
                "Practitioner",
                "PractitionerRole",
                "Location"
            ]
            .contains(t))
    );
}

#[tokio::test]
async fn an_emergency_window_opens_the_emergency_data_set_only_and_awaits_review() {
    let app = TestApp::new();
    let (person, observation) = submitted(&app).await;
    let now = app::now();
    let emergency = |at: app::Timestamp, who: &Member| {
        let app = as_member(&app, who);
        let person = person.clone();
        async move {
            app.summary(app::SummaryKind::Emergency, &person, "http://x/fhir", at)
                .await
        }
    };
    let physician = Member {
        emergency_privilege: true,
        token_types: None,
        ..other_doctor()
    };
    assert!(emergency(now, &physician).await.is_err(), "no window yet");

    // Only a hospital user holding the privilege, with a reason, may open one.
    let clinic = Member {
        kind: OrganisationKind::Clinic,
        ..physician.clone()
    };
    let unprivileged = other_doctor();
    for who in [&clinic, &unprivileged] {
        let refused = app
            .state
            .app
            .open_emergency_access(who, &person, "意識障害で搬送", now)
            .await;
        assert!(
            matches!(refused, Err(app::AppError::Denied(_))),
            "{refused:?}"
        );
    }
    assert!(
        app.state
            .app
            .open_emergency_access(&physician, &person, " ", now)
            .await
            .is_err()
    );
    let review = app
        .state
        .app
        .open_emergency_access(&physician, &person, "意識障害で搬送", now)
        .await
        .expect("opened");

    let summary = emergency(now, &physician)
        .await
        .expect("the emergency data set");
    assert_eq!(summary["type"], "document");
    assert_eq!(
        summary["entry"][1]["resource"]["id"],
        Value::String(person.clone())
    );
    // The window opens nothing else, and is the user's own.
    let member_app = as_member(&app, &physician);
    assert!(member_app.read("Observation", &observation).await.is_err());
    assert!(
        member_app
            .summary(app::SummaryKind::Patient, &person, "http://x/fhir", now)
            .await
            .is_err()
    );
    let colleague = Member {
        user: "user-2".to_owned(),
        ..physician.clone()
    };
    assert!(emergency(now, &colleague).await.is_err());
    // The same user name at another hospital holds no window either.
    let namesake = Member {
        organisation: format!("{}-elsewhere", physician.organisation),
        ..physician.clone()
    };
    assert!(emergency(now, &namesake).await.is_err());
    // Time-boxed.
    let later = app::Timestamp(now.0 + (app::EMERGENCY_WINDOW_MINUTES + 1) * 60_000_000);
    assert!(emergency(later, &physician).await.is_err());

    // The privacy officer sees it to review, without patient data, until it is closed.
    let open = app.state.app.open_reviews().await.expect("reviews");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, review.id);
    assert_eq!(open[0].organisation, "org-other");
    assert!(!format!("{open:?}").contains(&person));
    app.state
        .app
        .close_review(&review.id)
        .await
        .expect("closed");
    assert!(
        app.state
            .app
            .open_reviews()
            .await
            .expect("reviews")
            .is_empty()
    );
}

#[tokio::test]
async fn a_referral_letter_reaches_its_destination_once_the_patient_consents_to_it() {
    let app = TestApp::new();
    let path = format!(
        "{}/../../fixtures/jp/clins/Bundle-Bundle-CLINS-Referral-Example-01.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let referral: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON");
    assert!(
        app.post("/fhir/Bundle", &referral)
            .await
            .status
            .is_success()
    );
    let service = app.state.app.for_viewer(Viewer::Service);
    let composition = service
        .search(&SearchInput {
            types: vec!["Composition".into()],
            ..SearchInput::default()
        })
        .await
        .expect("search")
        .page
        .matches
        .remove(0);
    let body: Value = serde_json::from_str(&composition.json).expect("JSON");
    let destination = body["meta"]["tag"]
        .as_array()
        .expect("tags")
        .iter()
        .find(|tag| tag["system"] == "https://tsunagu.jp/fhir/CodeSystem/referral-destination")
        .and_then(|tag| tag["code"].as_str())
        .expect("a destination")
        .to_owned();
    let person = body["subject"]["reference"]
        .as_str()
        .expect("subject")
        .trim_start_matches("Patient/")
        .to_owned();
    let addressee = member(
        "org-dest",
        &destination,
        OrganisationKind::Hospital,
        Role::Doctor,
    );
    assert_ne!(destination, "2712345678");
    let bystander = member(
        "org-other",
        "2712345678",
        OrganisationKind::Hospital,
        Role::Doctor,
    );

    assert!(
        as_member(&app, &addressee)
            .read("Composition", &composition.id)
            .await
            .is_err()
    );
    let now = app::now();
    let year = app::Timestamp(now.0 + 365 * 86_400_000_000);
    for organisation in ["org-dest", "org-other"] {
        app.state
            .app
            .grant_consent(&person, organisation, now, year)
            .await
            .expect("consent");
    }
    let reader = as_member(&app, &addressee);
    assert!(reader.read("Composition", &composition.id).await.is_ok());
    assert_eq!(
        count(&reader, &["Composition"], Some(&person), &[]).await,
        1
    );
    // A consent to another organisation does not make it the letter's destination.
    let other = as_member(&app, &bystander);
    assert!(other.read("Composition", &composition.id).await.is_err());
    assert_eq!(count(&other, &["Composition"], Some(&person), &[]).await, 0);
}

/// The HTTP API answers for the reader an authentication layer puts in the request (here a
/// layer standing in for it): the same decisions as the use cases, seen over HTTP.
#[tokio::test]
async fn the_http_api_answers_for_the_reader_the_authentication_layer_names() {
    let app = TestApp::new();
    let (person, observation) = submitted(&app).await;
    let mut as_other = TestApp::from_state(app.state.clone());
    as_other.router = as_other
        .router
        .layer(axum::Extension(Viewer::Member(other_doctor())));
    let read = format!("/fhir/Observation/{observation}");
    let search = format!("/fhir/Observation?patient={person}&_total=accurate");
    assert_eq!(as_other.get(&read).await.status, StatusCode::NOT_FOUND);
    assert_eq!(as_other.get(&search).await.json()["total"], 0);
    assert_eq!(
        as_other
            .get(&format!("/fhir/Patient/{person}/$summary"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let now = app::now();
    app.state
        .app
        .grant_consent(
            &person,
            "org-other",
            now,
            app::Timestamp(now.0 + 86_400_000_000),
        )
        .await
        .expect("consent");
    assert_eq!(as_other.get(&read).await.status, StatusCode::OK);
    assert_eq!(as_other.get(&search).await.json()["total"], 4);
}

#[tokio::test]
async fn a_patient_reaches_only_their_own_compartment_whatever_id_they_ask_for() {
    let app = TestApp::new();
    let (me, _) = submitted(&app).await;
    // Another person, submitted by the same facility.
    let mut other = labs();
    other["identifier"]["value"] = Value::String("1318814790^2024^someone-else".into());
    other["entry"][0]["resource"]["identifier"] = serde_json::json!([
        {"system": "urn:oid:1.2.392.100495.20.3.51.11318814790", "value": "999"},
        {"system": "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID", "value": "00012345:あいう:555:01"}
    ]);
    assert!(app.post("/fhir/Bundle", &other).await.status.is_success());
    let service = app.state.app.for_viewer(Viewer::Service);
    let theirs = service
        .search(&SearchInput {
            types: vec!["Observation".into()],
            params: vec![(
                "_tag".into(),
                "https://tsunagu.jp/fhir/CodeSystem/submission|1318814790^2024^someone-else".into(),
            )],
            ..SearchInput::default()
        })
        .await
        .expect("search")
        .page
        .matches;
    let their_observation = theirs[0].id.clone();
    let their_id =
        serde_json::from_str::<Value>(&theirs[0].json).expect("JSON")["subject"]["reference"]
            .as_str()
            .expect("subject")
            .trim_start_matches("Patient/")
            .to_owned();
    assert_ne!(their_id, me);

    let patient = app.state.app.for_viewer(Viewer::Patient(me.clone()));
    assert!(patient.read("Patient", &me).await.is_ok());
    assert_eq!(
        count(&patient, &["Observation"], None, &[]).await,
        4,
        "their own results"
    );
    assert!(
        patient
            .read("Observation", &their_observation)
            .await
            .is_err()
    );
    assert!(patient.read("Patient", &their_id).await.is_err());
    assert_eq!(
        count(&patient, &["Observation"], None, &[("patient", &their_id)]).await,
        0
    );
    assert_eq!(count(&patient, &[], Some(&their_id), &[]).await, 0);
    assert!(
        patient
            .summary(
                app::SummaryKind::Patient,
                &their_id,
                "http://x/fhir",
                app::now()
            )
            .await
            .is_err()
    );
}

#[tokio::test]
async fn reverse_chaining_cannot_probe_another_facilitys_data_without_consent() {
    let app = TestApp::new();
    let (person, _) = submitted(&app).await;
    // The other facility treats the patient too (it holds a patient id for them)...
    let mut linked = labs();
    linked["identifier"]["value"] = Value::String(format!("{OTHER}^2024^own"));
    linked["entry"][0]["resource"]["identifier"][0] = serde_json::json!({"system": format!("urn:oid:1.2.392.100495.20.3.51.1{OTHER}"), "value": "7"});
    linked["entry"].as_array_mut().expect("entries").truncate(2);
    assert!(app.post("/fhir/Bundle", &linked).await.status.is_success());
    let other = as_member(&app, &other_doctor());
    assert!(
        other.read("Patient", &person).await.is_ok(),
        "its own patient"
    );
    // ...but cannot learn what the first facility recorded about them.
    let probe = [(
        "_has:Observation:patient:code",
        "http://jpfhir.jp/fhir/clins/CodeSystem/JLAC10/JP_CLINS_ObsLabResult_CoreLabo_CS|3A015000001827101",
    )];
    assert_eq!(count(&other, &["Patient"], None, &probe).await, 0);
    assert_eq!(
        count(
            &app.state.app.for_viewer(Viewer::Service),
            &["Patient"],
            None,
            &probe
        )
        .await,
        1,
        "the probe itself works"
    );
}

#[tokio::test]
async fn a_users_window_is_found_however_many_colleagues_opened_one() {
    let app = TestApp::new();
    let (person, _) = submitted(&app).await;
    let now = app::now();
    // 120 colleagues of one hospital open windows on the same patient before this user does:
    // more than a page of open windows.
    for colleague in 0..120 {
        let colleague = Member {
            emergency_privilege: true,
            user: format!("colleague-{colleague}"),
            ..other_doctor()
        };
        app.state
            .app
            .open_emergency_access(&colleague, &person, "多数傷病者", now)
            .await
            .expect("opened");
    }
    let physician = Member {
        emergency_privilege: true,
        user: "last-one".into(),
        ..other_doctor()
    };
    let before = as_member(&app, &physician)
        .summary(app::SummaryKind::Emergency, &person, "http://x/fhir", now)
        .await;
    assert!(before.is_err(), "not before their own window");
    app.state
        .app
        .open_emergency_access(&physician, &person, "多数傷病者", now)
        .await
        .expect("opened");
    let summary = as_member(&app, &physician)
        .summary(app::SummaryKind::Emergency, &person, "http://x/fhir", now)
        .await
        .expect("their own window, found among 121");
    assert_eq!(summary["type"], "document");
}
