//! The model's invariants: codes with check digits, and the identifier and area rules of each
//! kind of organisation.

use super::*;

fn organisation(
    kind: OrganisationKind,
    identifiers: &[(&str, &str)],
    municipalities: &[&str],
) -> Result<Organisation, ModelError> {
    Organisation::new(
        OrganisationId::new("org-1").unwrap(),
        kind,
        "つなぐ病院",
        identifiers
            .iter()
            .map(|(system, value)| OrgIdentifier::new(system, value).unwrap())
            .collect(),
        Prefecture::new("13").unwrap(),
        municipalities
            .iter()
            .map(|code| MunicipalityCode::new(*code).unwrap())
            .collect(),
    )
}

#[test]
fn municipality_codes_carry_a_check_digit() {
    // 千代田区, 中央区, 新宿区 (remainder 0 gives check digit 1), 札幌市.
    for valid in ["131016", "131024", "131041", "011002"] {
        assert!(MunicipalityCode::new(valid).is_ok(), "{valid}");
    }
    for invalid in [
        "131017",
        "13101",
        "1310166",
        "13101a",
        "481009",
        "001007",
        "１３１０１６",
    ] {
        assert!(MunicipalityCode::new(invalid).is_err(), "{invalid}");
    }
    assert_eq!(
        MunicipalityCode::new("011002")
            .unwrap()
            .prefecture()
            .number(),
        1
    );
}

#[test]
fn prefectures_are_01_to_47() {
    assert_eq!(Prefecture::new("47").unwrap().to_string(), "47");
    assert_eq!(Prefecture::new("01").unwrap().number(), 1);
    for invalid in ["00", "48", "1", "013", "ab", ""] {
        assert!(Prefecture::new(invalid).is_err(), "{invalid}");
    }
}

#[test]
fn ids_use_a_safe_alphabet() {
    assert!(OrganisationId::new("hosp-1.tokyo").is_ok());
    assert!(OrganisationId::new("hosp_1").is_err());
    assert!(OrganisationId::new("").is_err());
    assert!(OrganisationId::new("x".repeat(65)).is_err());
    assert!(ClientId::new("ehr_system~2").is_ok());
    assert!(ClientId::new("ehr system").is_err());
    assert!(ClientId::new("ehr/system").is_err());
}

#[test]
fn identifiers_follow_their_system() {
    assert!(OrgIdentifier::new(INSTITUTION_NUMBER_SYSTEM, "1311234567").is_ok());
    assert!(OrgIdentifier::new(INSTITUTION_NUMBER_SYSTEM, "131123456").is_err());
    assert!(OrgIdentifier::new(INSTITUTION_NUMBER_SYSTEM, "4811234567").is_err());
    assert!(OrgIdentifier::new(INSURER_NUMBER_SYSTEM, "06130012").is_ok());
    assert!(OrgIdentifier::new(INSURER_NUMBER_SYSTEM, "138016").is_ok());
    assert!(OrgIdentifier::new(INSURER_NUMBER_SYSTEM, "1380161").is_err());
    assert!(OrgIdentifier::new(CARE_PROVIDER_NUMBER_SYSTEM, "1370000001").is_ok());
    assert!(OrgIdentifier::new(CARE_PROVIDER_NUMBER_SYSTEM, "9970000001").is_err());
    assert!(OrgIdentifier::new("urn:other", "1").is_err());
}

#[test]
fn each_kind_has_its_identifiers_and_area() {
    use OrganisationKind as K;
    let institution = INSTITUTION_NUMBER_SYSTEM;
    // Valid registrations.
    assert!(organisation(K::Hospital, &[(institution, "1311234567")], &["131016"]).is_ok());
    assert!(organisation(K::Clinic, &[(institution, "1331234567")], &[]).is_ok());
    assert!(organisation(K::Pharmacy, &[(institution, "1341234567")], &[]).is_ok());
    assert!(organisation(K::PublicHealthCentre, &[], &["131016", "131024"]).is_ok());
    assert!(organisation(K::Municipality, &[], &["131016"]).is_ok());
    assert!(organisation(K::CareProvider, &[], &[]).is_ok());
    assert!(organisation(K::Insurer, &[(INSURER_NUMBER_SYSTEM, "06130012")], &[]).is_ok());

    let refused = [
        // A hospital without an institution number, or with a pharmacy's.
        organisation(K::Hospital, &[], &[]),
        organisation(K::Hospital, &[(institution, "1341234567")], &[]),
        // A pharmacy with a medical institution number.
        organisation(K::Pharmacy, &[(institution, "1311234567")], &[]),
        // An institution number of another prefecture (27: Osaka).
        organisation(K::Clinic, &[(institution, "2711234567")], &[]),
        // Two institution numbers.
        organisation(
            K::Hospital,
            &[(institution, "1311234567"), (institution, "1311234568")],
            &[],
        ),
        // An insurer without its number; a hospital with one.
        organisation(K::Insurer, &[], &[]),
        organisation(
            K::Hospital,
            &[
                (institution, "1311234567"),
                (INSURER_NUMBER_SYSTEM, "06130012"),
            ],
            &[],
        ),
        // A municipality is exactly one municipality; a health centre covers at least one.
        organisation(K::Municipality, &[], &[]),
        organisation(K::Municipality, &[], &["131016", "131024"]),
        organisation(K::PublicHealthCentre, &[], &[]),
        // Areas lie in the organisation's prefecture, each once.
        organisation(K::Municipality, &[], &["011002"]),
        organisation(K::PublicHealthCentre, &[], &["131016", "131016"]),
        // A care provider number of another prefecture.
        organisation(
            K::CareProvider,
            &[(CARE_PROVIDER_NUMBER_SYSTEM, "2770000001")],
            &[],
        ),
    ];
    for (index, result) in refused.into_iter().enumerate() {
        assert!(result.is_err(), "case {index} was accepted");
    }
}

#[test]
fn organisations_round_trip_through_the_registry_format_and_are_checked_on_the_way_in() {
    let hospital = organisation(
        OrganisationKind::Hospital,
        &[(INSTITUTION_NUMBER_SYSTEM, "1311234567")],
        &["131016"],
    )
    .unwrap();
    let json = serde_json::to_value(&hospital).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "id": "org-1", "kind": "hospital", "name": "つなぐ病院",
            "identifiers": [{ "system": INSTITUTION_NUMBER_SYSTEM, "value": "1311234567" }],
            "prefecture": "13", "municipalities": ["131016"],
        })
    );
    assert_eq!(
        serde_json::from_value::<Organisation>(json.clone()).unwrap(),
        hospital
    );

    let mut pharmacy_number = json.clone();
    pharmacy_number["identifiers"][0]["value"] = serde_json::json!("1341234567");
    assert!(serde_json::from_value::<Organisation>(pharmacy_number).is_err());
    let mut unknown_field = json;
    unknown_field["beds"] = serde_json::json!(20);
    assert!(serde_json::from_value::<Organisation>(unknown_field).is_err());
}

#[test]
fn codes_round_trip() {
    for kind in OrganisationKind::ALL {
        assert_eq!(OrganisationKind::from_code(kind.code()), Some(kind));
    }
    for role in Role::ALL {
        assert_eq!(Role::from_code(role.code()), Some(role));
    }
    for purpose in PurposeOfUse::ALL {
        assert_eq!(PurposeOfUse::from_code(purpose.code()), Some(purpose));
    }
    assert_eq!(Role::from_code("Doctor"), None);
}
