//! Every role × every interaction × own / consented / unconsented / nonexistent patient.
//!
//! The expected outcome is derived from three published rules, not from the server's answers:
//! the scopes the token endpoint granted (403 when the interaction needs one it lacks), the
//! write rule (members write only by submitting: 403), and what the member may see (its own
//! facility's submissions; a consented patient's data when the request is about that one
//! patient; only the types `app::allowed_types` gives its kind and role). A hidden patient is
//! indistinguishable from a nonexistent one: 404 for reads, an empty searchset (total 0) for
//! searches, and none of the patient's marker strings anywhere in the response.

use std::collections::HashMap;

use auth::{Permission, Role};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use auth::Registry as _;

use super::{Seeded, World, batch, leaked};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Own,
    Consented,
    Unconsented,
    Nonexistent,
}

/// When the target's data may be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// A request about one patient: own submissions or that patient's consent.
    OnePatient,
    /// A request across patients: narrowed to the member's own submissions and linked patients.
    OwnOnly,
    /// Looks at other resources than it returns (`_has`): nothing without consent, and the
    /// suite's requests name no single patient.
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A single resource or a document: 200 or 404.
    Single,
    /// A searchset: 200, with matches or without.
    Searchset,
    /// A batch-response: 200, entries succeed or fail one by one.
    BatchResponse,
    /// A write: members never write outside submissions.
    Write,
    /// A history Bundle across patients: the target's data appears in it or not.
    History,
}

struct Interaction {
    name: &'static str,
    method: Method,
    uri: String,
    body: Option<String>,
    content_type: Option<&'static str>,
    /// The scopes it needs.
    needs: Vec<(&'static str, Permission)>,
    /// The type whose visibility decides.
    shows: &'static str,
    reach: Reach,
    shape: Shape,
    /// Left out of the patient's run: a history across the whole store filtered afterwards
    /// (a page may hold none of the patient's own entries: not a leak, but not a fixed answer).
    members_only: bool,
}

fn interactions(target: &Seeded) -> Vec<Interaction> {
    let p = &target.patient;
    let o = &target.observation;
    let i = |name, method, uri: String, needs, shows, reach, shape| Interaction {
        name,
        method,
        uri,
        body: None,
        content_type: None,
        needs,
        shows,
        reach,
        shape,
        members_only: false,
    };
    use Permission::{Create, Delete, Read, Search, Update};
    use Reach::{Never, OnePatient, OwnOnly};
    use Shape::{BatchResponse, History, Searchset, Single, Write};
    let observation = json!({
        "resourceType": "Observation", "id": o, "status": "final",
        "code": {"text": "x"}, "subject": {"reference": format!("Patient/{p}")}
    });
    vec![
        i("read Patient", Method::GET, format!("/fhir/Patient/{p}"), vec![("Patient", Read)], "Patient", OnePatient, Single),
        i("read Observation", Method::GET, format!("/fhir/Observation/{o}"), vec![("Observation", Read)], "Observation", OnePatient, Single),
        i("vread", Method::GET, format!("/fhir/Observation/{o}/_history/1"), vec![("Observation", Read)], "Observation", OnePatient, Single),
        i("history-instance", Method::GET, format!("/fhir/Observation/{o}/_history"), vec![("Observation", Read)], "Observation", OnePatient, Single),
        Interaction {
            members_only: true,
            ..i("history-type", Method::GET, "/fhir/Observation/_history?_count=1000".into(), vec![("Observation", Read)], "Observation", OnePatient, History)
        },
        Interaction {
            members_only: true,
            ..i("history-system", Method::GET, "/fhir/_history?_count=1000".into(), vec![("*", Read)], "Observation", OnePatient, History)
        },
        i("search-system", Method::GET, format!("/fhir?_type=Observation&patient={p}&_total=accurate"), vec![("Observation", Search)], "Observation", OnePatient, Searchset),
        i("search by patient, _total", Method::GET, format!("/fhir/Observation?patient={p}&_total=accurate"), vec![("Observation", Search)], "Observation", OnePatient, Searchset),
        i("compartment search", Method::GET, format!("/fhir/Patient/{p}/Observation?_total=accurate"), vec![("Observation", Search)], "Observation", OnePatient, Searchset),
        i("$everything", Method::GET, format!("/fhir/Patient/{p}/$everything"), vec![("Patient", Read)], "Patient", OnePatient, Single),
        i("$summary", Method::GET, format!("/fhir/Patient/{p}/$summary"), vec![("Patient", Read)], "Patient", OnePatient, Single),
        i("$emergency-summary", Method::GET, format!("/fhir/Patient/{p}/$emergency-summary"), vec![("Patient", Read)], "Patient", OnePatient, Single),
        i("_include", Method::GET, format!("/fhir/Observation?patient={p}&_include=Observation:subject"), vec![("Observation", Search)], "Observation", OnePatient, Searchset),
        i("_revinclude", Method::GET, format!("/fhir/Patient?_id={p}&_revinclude=Observation:subject&_total=accurate"), vec![("Patient", Search)], "Patient", OwnOnly, Searchset),
        i("chained", Method::GET, format!("/fhir/Observation?subject:Patient._id={p}&_total=accurate"), vec![("Observation", Search)], "Observation", OwnOnly, Searchset),
        i("_has", Method::GET, format!("/fhir/Patient?_has:Observation:subject:_id={o}&_total=accurate"), vec![("Patient", Search)], "Patient", Never, Searchset),
        Interaction {
            body: Some(batch(&[format!("Observation?patient={p}"), format!("Observation/{o}")])),
            ..i("batch", Method::POST, "/fhir".into(), vec![("Observation", Search), ("Observation", Read)], "Observation", OnePatient, BatchResponse)
        },
        Interaction {
            body: Some(
                json!({
                    "resourceType": "Bundle",
                    "type": "transaction",
                    "entry": [{"request": {"method": "GET", "url": format!("Observation/{o}")}}]
                })
                .to_string(),
            ),
            // A transaction fails as a whole when an entry fails: a hidden entry is a 404.
            ..i("transaction", Method::POST, "/fhir".into(), vec![("Observation", Read)], "Observation", OnePatient, Single)
        },
        Interaction {
            body: Some(observation.to_string()),
            ..i("conditional update", Method::PUT, format!("/fhir/Observation?patient={p}"), vec![("Observation", Update)], "Observation", OnePatient, Write)
        },
        Interaction {
            body: Some(observation.to_string()),
            ..i("update", Method::PUT, format!("/fhir/Observation/{o}"), vec![("Observation", Update)], "Observation", OnePatient, Write)
        },
        Interaction {
            body: Some(json!([{"op": "replace", "path": "/status", "value": "cancelled"}]).to_string()),
            content_type: Some("application/json-patch+json"),
            ..i("patch", Method::PATCH, format!("/fhir/Observation/{o}"), vec![("Observation", Update)], "Observation", OnePatient, Write)
        },
        i("delete", Method::DELETE, format!("/fhir/Observation/{o}"), vec![("Observation", Delete)], "Observation", OnePatient, Write),
        i("conditional delete", Method::DELETE, format!("/fhir/Observation?patient={p}"), vec![("Observation", Delete)], "Observation", OnePatient, Write),
        Interaction {
            body: Some(json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": format!("Patient/{p}")}}).to_string()),
            ..i("create", Method::POST, "/fhir/Observation".into(), vec![("Observation", Create)], "Observation", OnePatient, Write)
        },
    ]
}

/// The members of the suite: organisation and role.
const MEMBERS: [(&str, Role); 11] = [
    ("author", Role::Doctor),
    ("author", Role::Nurse),
    ("author", Role::Clerk),
    ("author", Role::Administrator),
    ("other-hospital", Role::Doctor),
    ("clinic", Role::Dentist),
    ("pharmacy", Role::Pharmacist),
    ("care", Role::CareWorker),
    ("phc", Role::PublicHealthOfficer),
    ("city", Role::MunicipalOfficer),
    ("insurer", Role::InsurerStaff),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Forbidden,
    Shown,
    Hidden,
}

/// The granted scopes of a token response: type → permission letters.
fn granted(scope: &str) -> HashMap<String, String> {
    scope
        .split(' ')
        .filter_map(|token| token.strip_prefix("system/")?.split_once('.'))
        .map(|(t, p)| (t.to_owned(), p.to_owned()))
        .collect()
}

fn letter(permission: Permission) -> char {
    match permission {
        Permission::Create => 'c',
        Permission::Read => 'r',
        Permission::Update => 'u',
        Permission::Delete => 'd',
        Permission::Search => 's',
    }
}

#[tokio::test]
async fn every_role_every_interaction_every_kind_of_patient() {
    let world = World::new().await;
    let nonexistent = Seeded {
        patient: "no-such-patient".into(),
        observation: "no-such-observation".into(),
        markers: world.unconsented.markers.clone(),
    };
    let classes = [
        (Class::Own, world.own.clone()),
        (Class::Consented, world.consented.clone()),
        (Class::Unconsented, world.unconsented.clone()),
        (Class::Nonexistent, nonexistent),
    ];
    let mut cases = 0;
    let mut by_outcome: HashMap<&str, usize> = HashMap::new();
    let mut failures = Vec::new();
    for (organisation, role) in MEMBERS {
        let user = World::user(organisation, role);
        let assertion = world.assertion(&user);
        let reply = world
            .token_request(&auth::token_request(
                &assertion,
                "system/Patient.cruds system/Observation.cruds system/Condition.cruds system/Bundle.cruds system/Consent.crs system/Organization.rs",
            ))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{organisation} {role:?}: {}",
            reply.text
        );
        let token = reply.json()["access_token"].as_str().unwrap().to_owned();
        let scopes = granted(reply.json()["scope"].as_str().unwrap_or_default());
        let kind = world
            .registry
            .organisation(&auth::OrganisationId::new(organisation).unwrap())
            .await
            .unwrap()
            .unwrap()
            .kind();
        let types = app::allowed_types(kind, role);
        for (class, target) in &classes {
            for interaction in interactions(target) {
                cases += 1;
                let allowed = interaction.needs.iter().all(|(t, permission)| {
                    scopes
                        .get(*t)
                        .is_some_and(|letters| letters.contains(letter(*permission)))
                });
                let sees_patient = match interaction.reach {
                    Reach::OnePatient => {
                        (*class == Class::Own && organisation == "author")
                            || *class == Class::Consented
                    }
                    Reach::OwnOnly => *class == Class::Own && organisation == "author",
                    Reach::Never => false,
                };
                let expect = if !allowed || interaction.shape == Shape::Write {
                    Expect::Forbidden
                } else if sees_patient && types.contains(&interaction.shows) {
                    Expect::Shown
                } else {
                    Expect::Hidden
                };
                let reply = send(&world, &token, &interaction).await;
                let label = format!(
                    "{organisation}/{} {} on {class:?}: expected {expect:?}",
                    role.code(),
                    interaction.name
                );
                if let Err(problem) = check(&reply, expect, interaction.shape, target) {
                    failures.push(format!(
                        "{label}: {problem} ({} {})",
                        reply.status,
                        truncate(&reply.text)
                    ));
                }
                // Whatever the case, the unconsented patient's data never reaches a member.
                if let Some(marker) = leaked(&reply.text, &world.unconsented.markers) {
                    failures.push(format!(
                        "{label}: the unconsented patient's {marker:?} leaked"
                    ));
                }
                *by_outcome
                    .entry(match expect {
                        Expect::Forbidden => "forbidden",
                        Expect::Shown => "shown",
                        Expect::Hidden => "hidden",
                    })
                    .or_default() += 1;
            }
        }
    }
    println!("security matrix: {cases} cases {by_outcome:?}");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The matrix is not vacuous: every outcome occurs.
    for outcome in ["forbidden", "shown", "hidden"] {
        assert!(
            by_outcome.get(outcome).copied().unwrap_or(0) > 20,
            "{by_outcome:?}"
        );
    }
}

/// Sends one interaction with the bearer token.
async fn send(world: &World, token: &str, interaction: &Interaction) -> crate::Reply {
    let bearer = format!("Bearer {token}");
    let mut headers = vec![("authorization", bearer.as_str())];
    if let Some(content_type) = interaction.content_type {
        headers.push(("content-type", content_type));
    }
    world
        .app
        .request(
            interaction.method.clone(),
            &interaction.uri,
            &headers,
            interaction.body.clone(),
        )
        .await
}

fn truncate(text: &str) -> String {
    text.chars().take(300).collect()
}

fn check(
    reply: &crate::Reply,
    expect: Expect,
    shape: Shape,
    target: &Seeded,
) -> Result<(), String> {
    let status = reply.status;
    match expect {
        Expect::Forbidden => {
            if status != StatusCode::FORBIDDEN {
                return Err("not 403".into());
            }
        }
        Expect::Hidden => match shape {
            Shape::Single => {
                if status != StatusCode::NOT_FOUND {
                    return Err("not 404".into());
                }
            }
            Shape::Searchset => {
                if status != StatusCode::OK {
                    return Err("not 200".into());
                }
                let json = reply.json();
                if json["entry"]
                    .as_array()
                    .is_some_and(|entries| !entries.is_empty())
                {
                    return Err("entries returned".into());
                }
                if json.get("total").is_some_and(|total| total != 0) {
                    return Err("a non-zero total".into());
                }
            }
            Shape::BatchResponse => {
                if status != StatusCode::OK {
                    return Err("not 200".into());
                }
                if reply
                    .text
                    .contains(&format!("\"id\":\"{}\"", target.observation))
                {
                    return Err("the observation came back".into());
                }
            }
            Shape::Write => return Err("a write is never merely hidden".into()),
            Shape::History => {
                if status != StatusCode::OK {
                    return Err("not 200".into());
                }
                if reply
                    .text
                    .contains(&format!("Patient/{}\"", target.patient))
                {
                    return Err("the patient's data is in the history".into());
                }
            }
        },
        Expect::Shown => {
            if status != StatusCode::OK {
                return Err("not 200".into());
            }
            let json: Value = reply.json();
            match shape {
                Shape::Searchset => {
                    let matches = json["entry"]
                        .as_array()
                        .map(|entries| {
                            entries
                                .iter()
                                .filter(|e| e["search"]["mode"] == "match")
                                .count()
                        })
                        .unwrap_or(0);
                    if matches == 0 {
                        return Err("no match".into());
                    }
                }
                Shape::BatchResponse => {
                    if !reply
                        .text
                        .contains(&format!("\"id\":\"{}\"", target.observation))
                    {
                        return Err("the observation did not come back".into());
                    }
                }
                Shape::History => {
                    if !reply
                        .text
                        .contains(&format!("Patient/{}\"", target.patient))
                    {
                        return Err("the patient's data is not in the history".into());
                    }
                }
                _ => {
                    if !reply.text.contains(&target.patient)
                        && !reply.text.contains(&target.observation)
                    {
                        return Err("neither the patient nor the observation in the answer".into());
                    }
                }
            }
            return Ok(());
        }
    }
    match leaked(&reply.text, &target.markers) {
        Some(marker) => Err(format!("marker {marker:?} leaked")),
        None => Ok(()),
    }
}

/// The patient (with their own login) × every interaction × themself / other patients /
/// nobody: their own compartment and nothing else, whatever id they put in the URL or query;
/// writes (other than consents) refused.
#[tokio::test]
async fn the_patient_reaches_only_their_own_compartment() {
    let world = World::new().await;
    let token = world.patient_token().await;
    let nonexistent = Seeded {
        patient: "no-such-patient".into(),
        observation: "no-such-observation".into(),
        markers: world.own.markers.clone(),
    };
    let targets = [
        (true, world.unconsented.clone()),
        (false, world.consented.clone()),
        (false, world.own.clone()),
        (false, nonexistent),
    ];
    let mut cases = 0;
    let mut failures = Vec::new();
    for (themself, target) in &targets {
        for interaction in interactions(target) {
            if interaction.members_only {
                continue;
            }
            cases += 1;
            let expect = if interaction.shape == Shape::Write {
                Expect::Forbidden
            } else if *themself {
                Expect::Shown
            } else {
                Expect::Hidden
            };
            let reply = send(&world, &token, &interaction).await;
            if let Err(problem) = check(&reply, expect, interaction.shape, target) {
                failures.push(format!(
                    "patient {} on {} (themself: {themself}): expected {expect:?}: {problem} ({} {})",
                    interaction.name,
                    target.patient,
                    reply.status,
                    truncate(&reply.text)
                ));
            }
            if !themself {
                for other in [&world.consented, &world.own] {
                    if let Some(marker) = leaked(&reply.text, &other.markers) {
                        failures.push(format!(
                            "patient {}: another patient's {marker:?} leaked",
                            interaction.name
                        ));
                    }
                }
            }
        }
    }
    println!("security matrix (patient): {cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
