//! The policy table: what product.md's principals may be granted, printed as a snapshot so that
//! any change to it shows in review.

use expect_test::expect;

use super::*;
use crate::scope::parse_requested;

#[test]
fn the_table_as_granted_to_each_kind_and_role_asking_for_everything() {
    let everything = parse_requested("system/*.cruds");
    let mut table = String::new();
    for row in &POLICY {
        for role in row.roles {
            let granted = grant(row.kind, *role, &everything);
            table.push_str(&format!("{} {}: {granted}\n", row.kind.code(), role.code()));
        }
    }
    expect![[r#"
        hospital doctor: system/Patient.cruds system/Condition.cruds system/AllergyIntolerance.cruds system/Observation.cruds system/MedicationRequest.cruds system/Composition.cruds system/Encounter.cruds system/DocumentReference.cruds system/Specimen.cruds system/ServiceRequest.cruds system/CarePlan.cruds system/Coverage.cruds system/Bundle.cruds system/Consent.crs system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        hospital dentist: system/Patient.cruds system/Condition.cruds system/AllergyIntolerance.cruds system/Observation.cruds system/MedicationRequest.cruds system/Composition.cruds system/Encounter.cruds system/DocumentReference.cruds system/Specimen.cruds system/ServiceRequest.cruds system/CarePlan.cruds system/Coverage.cruds system/Bundle.cruds system/Consent.crs system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        hospital nurse: system/Patient.cruds system/Condition.cruds system/AllergyIntolerance.cruds system/Observation.cruds system/MedicationRequest.cruds system/Composition.cruds system/Encounter.cruds system/DocumentReference.cruds system/Specimen.cruds system/ServiceRequest.cruds system/CarePlan.cruds system/Coverage.cruds system/Bundle.cruds system/Consent.crs system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        hospital pharmacist: system/Patient.cruds system/Condition.cruds system/AllergyIntolerance.cruds system/Observation.cruds system/MedicationRequest.cruds system/Composition.cruds system/Encounter.cruds system/DocumentReference.cruds system/Specimen.cruds system/ServiceRequest.cruds system/CarePlan.cruds system/Coverage.cruds system/Bundle.cruds system/Consent.crs system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        hospital clerk: system/Patient.cud system/Condition.cud system/AllergyIntolerance.cud system/Observation.cud system/MedicationRequest.cud system/Composition.cud system/Encounter.cud system/DocumentReference.cud system/Specimen.cud system/ServiceRequest.cud system/CarePlan.cud system/Coverage.cud system/Bundle.cud system/Consent.crs system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        hospital administrator: system/Patient.cud system/Condition.cud system/AllergyIntolerance.cud system/Observation.cud system/MedicationRequest.cud system/Composition.cud system/Encounter.cud system/DocumentReference.cud system/Specimen.cud system/ServiceRequest.cud system/CarePlan.cud system/Coverage.cud system/Bundle.cud system/Consent.crs system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        clinic doctor: system/Patient.cruds system/Condition.cruds system/AllergyIntolerance.cruds system/Observation.cruds system/MedicationRequest.cruds system/Composition.cruds system/Encounter.cruds system/DocumentReference.cruds system/Specimen.cruds system/ServiceRequest.cruds system/CarePlan.cruds system/Coverage.cruds system/Bundle.cruds system/Consent.crs system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        clinic dentist: system/Patient.cruds system/Condition.cruds system/AllergyIntolerance.cruds system/Observation.cruds system/MedicationRequest.cruds system/Composition.cruds system/Encounter.cruds system/DocumentReference.cruds system/Specimen.cruds system/ServiceRequest.cruds system/CarePlan.cruds system/Coverage.cruds system/Bundle.cruds system/Consent.crs system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        clinic nurse: system/Patient.cruds system/Condition.cruds system/AllergyIntolerance.cruds system/Observation.cruds system/MedicationRequest.cruds system/Composition.cruds system/Encounter.cruds system/DocumentReference.cruds system/Specimen.cruds system/ServiceRequest.cruds system/CarePlan.cruds system/Coverage.cruds system/Bundle.cruds system/Consent.crs system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        clinic pharmacist: system/Patient.cruds system/Condition.cruds system/AllergyIntolerance.cruds system/Observation.cruds system/MedicationRequest.cruds system/Composition.cruds system/Encounter.cruds system/DocumentReference.cruds system/Specimen.cruds system/ServiceRequest.cruds system/CarePlan.cruds system/Coverage.cruds system/Bundle.cruds system/Consent.crs system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        clinic clerk: system/Patient.cud system/Condition.cud system/AllergyIntolerance.cud system/Observation.cud system/MedicationRequest.cud system/Composition.cud system/Encounter.cud system/DocumentReference.cud system/Specimen.cud system/ServiceRequest.cud system/CarePlan.cud system/Coverage.cud system/Bundle.cud system/Consent.crs system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        clinic administrator: system/Patient.cud system/Condition.cud system/AllergyIntolerance.cud system/Observation.cud system/MedicationRequest.cud system/Composition.cud system/Encounter.cud system/DocumentReference.cud system/Specimen.cud system/ServiceRequest.cud system/CarePlan.cud system/Coverage.cud system/Bundle.cud system/Consent.crs system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        pharmacy pharmacist: system/Patient.rs system/AllergyIntolerance.rs system/Observation.rs system/MedicationRequest.rs system/Consent.crs system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        pharmacy clerk: system/Consent.crs system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        pharmacy administrator: system/Consent.crs system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        public-health-centre public-health-officer: system/Patient.rs system/Condition.rs system/Observation.rs system/Bundle.rs system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        public-health-centre clerk: system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        public-health-centre administrator: system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        municipality municipal-officer: system/Bundle.rs system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        municipality clerk: system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        municipality administrator: system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        care-provider care-worker: system/Patient.rs system/AllergyIntolerance.rs system/MedicationRequest.rs system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        care-provider clerk: system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        care-provider administrator: system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        insurer insurer-staff: system/Bundle.rs system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        insurer clerk: system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
        insurer administrator: system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs system/Location.rs
    "#]]
    .assert_eq(&table);
}

#[test]
fn product_rules_hold() {
    let everything = parse_requested("system/*.cruds");
    // No organisation ever reads the audit log through a token.
    for kind in OrganisationKind::ALL {
        for role in Role::ALL {
            assert!(
                grant(kind, role, &everything)
                    .permissions("AuditEvent")
                    .is_empty()
            );
        }
    }
    // Pharmacies never see diagnoses; municipalities and insurers only documents.
    assert!(ceiling(OrganisationKind::Pharmacy, Role::Pharmacist, "Condition").is_empty());
    for kind in [OrganisationKind::Municipality, OrganisationKind::Insurer] {
        let types: Vec<&str> = policy(kind)
            .grants()
            .map(|(resource_type, _)| resource_type)
            .filter(|resource_type| !DIRECTORY.iter().any(|(known, _)| known == resource_type))
            .collect();
        assert_eq!(types, ["Bundle"]);
    }
    // The directory holds no patient's data and is read-only for everyone.
    for row in &POLICY {
        for (resource_type, permissions) in DIRECTORY {
            assert_eq!(ceiling(row.kind, Role::Clerk, resource_type), *permissions);
        }
    }
    // Only hospital doctors may hold the emergency privilege.
    for row in &POLICY {
        let expected: &[Role] = match row.kind {
            OrganisationKind::Hospital => &[Role::Doctor],
            _ => &[],
        };
        assert_eq!(row.emergency_roles, expected);
        assert_eq!(
            row.purposes.contains(&PurposeOfUse::EmergencyTreatment),
            !expected.is_empty()
        );
    }
    // Every kind has a row.
    for kind in OrganisationKind::ALL {
        assert_eq!(policy(kind).kind, kind);
    }
}

#[test]
fn requests_are_intersected_not_widened() {
    let asked = parse_requested("system/Observation.r system/Observation.s system/Condition.c");
    let granted = grant(
        OrganisationKind::PublicHealthCentre,
        Role::PublicHealthOfficer,
        &asked,
    );
    assert_eq!(granted.to_string(), "system/Observation.rs");
}
