//! Who may ask for tokens: organisations (with their kind, national identifiers and area), the
//! clients they register (each with its public keys), and the users a client acts for.
//!
//! Every type here is parsed at the edge and keeps its invariant: an [`Organisation`] of kind
//! hospital always has a medical or dental institution number in its own prefecture, a
//! [`MunicipalityCode`] always has a valid check digit, a [`Client`] always has exactly one source
//! of keys. The registry file is read through the same constructors, so a hand-edited file that
//! breaks a rule does not load.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::jwk::{JwkSet, JwksUrl};

/// Why a model value was refused. Names the field and the rule, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct ModelError {
    /// The field at fault, e.g. `identifiers`.
    pub field: &'static str,
    /// The rule it breaks.
    pub rule: &'static str,
}

pub(crate) fn invalid(field: &'static str, rule: &'static str) -> ModelError {
    ModelError { field, rule }
}

/// An organisation's id in the registry: 1–64 characters of `A–Z a–z 0–9 - .` (the FHIR id
/// alphabet), so that it can name an `Organization` resource later.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrganisationId(String);

impl OrganisationId {
    /// Parses an organisation id.
    ///
    /// # Errors
    /// [`ModelError`] when the id is empty, longer than 64 characters or uses other characters.
    pub fn new(id: impl Into<String>) -> Result<Self, ModelError> {
        let id = id.into();
        let ok = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if ok {
            Ok(OrganisationId(id))
        } else {
            Err(invalid(
                "organisation id",
                "1-64 characters of A-Z a-z 0-9 - .",
            ))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client's id (`client_id`, and `iss`/`sub` of its assertions): 1–64 characters of
/// `A–Z a–z 0–9 - . _ ~` (URL-unreserved, so it needs no escaping anywhere).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId(String);

impl ClientId {
    /// Parses a client id.
    ///
    /// # Errors
    /// [`ModelError`] when the id is empty, longer than 64 characters or uses other characters.
    pub fn new(id: impl Into<String>) -> Result<Self, ModelError> {
        let id = id.into();
        let ok = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if ok {
            Ok(ClientId(id))
        } else {
            Err(invalid(
                "client id",
                "1-64 characters of A-Z a-z 0-9 - . _ ~",
            ))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_newtype_conversions {
    ($($name:ident),*) => {$(
        impl TryFrom<String> for $name {
            type Error = ModelError;
            fn try_from(value: String) -> Result<Self, ModelError> {
                $name::new(value)
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
string_newtype_conversions!(OrganisationId, ClientId);

/// What an organisation is; decides which identifiers it needs, which roles its users may have,
/// which purposes of use it may state and which scopes it may be granted (`policy.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrganisationKind {
    /// 病院: a medical institution with 20 beds or more.
    Hospital,
    /// 診療所: a medical or dental clinic.
    Clinic,
    /// 薬局.
    Pharmacy,
    /// 保健所.
    PublicHealthCentre,
    /// 市区町村.
    Municipality,
    /// 介護事業所: a nursing-care provider.
    CareProvider,
    /// 保険者.
    Insurer,
}

impl OrganisationKind {
    /// Every kind, in the order of the policy table.
    pub const ALL: [OrganisationKind; 7] = [
        OrganisationKind::Hospital,
        OrganisationKind::Clinic,
        OrganisationKind::Pharmacy,
        OrganisationKind::PublicHealthCentre,
        OrganisationKind::Municipality,
        OrganisationKind::CareProvider,
        OrganisationKind::Insurer,
    ];

    /// The code used in the registry file, in tokens and on the command line.
    pub fn code(self) -> &'static str {
        match self {
            OrganisationKind::Hospital => "hospital",
            OrganisationKind::Clinic => "clinic",
            OrganisationKind::Pharmacy => "pharmacy",
            OrganisationKind::PublicHealthCentre => "public-health-centre",
            OrganisationKind::Municipality => "municipality",
            OrganisationKind::CareProvider => "care-provider",
            OrganisationKind::Insurer => "insurer",
        }
    }

    /// Parses [`OrganisationKind::code`].
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.code() == code)
    }
}

/// A prefecture code (JIS X 0401): 1 (Hokkaido) to 47 (Okinawa); written as two digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Prefecture(u8);

impl Prefecture {
    /// Parses a two-digit prefecture code, `01` to `47`.
    ///
    /// # Errors
    /// [`ModelError`] for anything else.
    pub fn new(code: &str) -> Result<Self, ModelError> {
        let number: u8 = match code.len() == 2 && code.bytes().all(|b| b.is_ascii_digit()) {
            true => code.parse().unwrap_or(0),
            false => 0,
        };
        if (1..=47).contains(&number) {
            Ok(Prefecture(number))
        } else {
            Err(invalid("prefecture", "two digits, 01 to 47"))
        }
    }

    /// The number, 1 to 47.
    pub fn number(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Prefecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}", self.0)
    }
}

impl TryFrom<String> for Prefecture {
    type Error = ModelError;
    fn try_from(value: String) -> Result<Self, ModelError> {
        Prefecture::new(&value)
    }
}

impl From<Prefecture> for String {
    fn from(value: Prefecture) -> String {
        value.to_string()
    }
}

/// A municipality code (全国地方公共団体コード): six digits, the first two the prefecture, the last a
/// check digit over the first five (weights 6, 5, 4, 3, 2; check = (11 − sum mod 11) mod 10).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MunicipalityCode(String);

impl MunicipalityCode {
    /// Parses a six-digit municipality code and checks its check digit.
    ///
    /// # Errors
    /// [`ModelError`] when it is not six half-width digits, its prefecture is not 01–47 or its
    /// check digit is wrong.
    pub fn new(code: impl Into<String>) -> Result<Self, ModelError> {
        let code = code.into();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("municipality code", "six half-width digits"));
        }
        Prefecture::new(&code[..2])
            .map_err(|_| invalid("municipality code", "prefecture digits 01 to 47"))?;
        let digits: Vec<u32> = code.bytes().map(|b| u32::from(b - b'0')).collect();
        let sum: u32 = digits[..5]
            .iter()
            .zip([6, 5, 4, 3, 2])
            .map(|(digit, weight)| digit * weight)
            .sum();
        if (11 - sum % 11) % 10 != digits[5] {
            return Err(invalid("municipality code", "check digit (6th digit)"));
        }
        Ok(MunicipalityCode(code))
    }

    /// The prefecture the municipality is in.
    pub fn prefecture(&self) -> Prefecture {
        Prefecture(self.0[..2].parse().unwrap_or(0))
    }

    /// The six digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_conversions!(MunicipalityCode);

/// The identifier system of 保険者番号 (JP Core `JP_Organization.identifier:insurerNumber`).
pub const INSURER_NUMBER_SYSTEM: &str = "urn:oid:1.2.392.100495.20.3.61";
/// The identifier system of 介護保険事業所番号. JP Core names none; this one is ours.
pub const CARE_PROVIDER_NUMBER_SYSTEM: &str =
    "https://tsunagu.jp/fhir/NamingSystem/care-provider-number";
/// The identifier system of the 10-digit medical institution number (保険医療機関番号).
pub use jp::INSTITUTION_NUMBER_SYSTEM;

/// A national identifier of an organisation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OrgIdentifier {
    /// 保険医療機関番号 / 保険薬局番号: 10 digits (hospitals, clinics, pharmacies).
    InstitutionNumber(jp::InstitutionNumber),
    /// 保険者番号: 6 (国民健康保険) or 8 digits (insurers).
    InsurerNumber(String),
    /// 介護保険事業所番号: 10 digits, the first two the prefecture (care providers).
    CareProviderNumber(String),
}

impl OrgIdentifier {
    /// Parses an identifier from its FHIR `system` and `value`.
    ///
    /// # Errors
    /// [`ModelError`] for an unknown system or a value that breaks its system's rule.
    pub fn new(system: &str, value: &str) -> Result<Self, ModelError> {
        let digits = |n: usize| value.len() == n && value.bytes().all(|b| b.is_ascii_digit());
        match system {
            INSTITUTION_NUMBER_SYSTEM => jp::institution_number(value)
                .map(OrgIdentifier::InstitutionNumber)
                .map_err(|_| {
                    invalid(
                        "institution number",
                        "10 digits: prefecture 01-47, point table 1, 3, 4 or 6, 7-digit code",
                    )
                }),
            INSURER_NUMBER_SYSTEM if digits(6) || digits(8) => {
                Ok(OrgIdentifier::InsurerNumber(value.to_owned()))
            }
            INSURER_NUMBER_SYSTEM => Err(invalid("insurer number", "6 or 8 half-width digits")),
            CARE_PROVIDER_NUMBER_SYSTEM if digits(10) && Prefecture::new(&value[..2]).is_ok() => {
                Ok(OrgIdentifier::CareProviderNumber(value.to_owned()))
            }
            CARE_PROVIDER_NUMBER_SYSTEM => Err(invalid(
                "care provider number",
                "10 half-width digits starting with the prefecture 01-47",
            )),
            _ => Err(invalid(
                "identifier system",
                "the institution number, insurer number or care provider number system",
            )),
        }
    }

    /// The FHIR identifier system.
    pub fn system(&self) -> &'static str {
        match self {
            OrgIdentifier::InstitutionNumber(_) => INSTITUTION_NUMBER_SYSTEM,
            OrgIdentifier::InsurerNumber(_) => INSURER_NUMBER_SYSTEM,
            OrgIdentifier::CareProviderNumber(_) => CARE_PROVIDER_NUMBER_SYSTEM,
        }
    }

    /// The value.
    pub fn value(&self) -> &str {
        match self {
            OrgIdentifier::InstitutionNumber(number) => number.as_str(),
            OrgIdentifier::InsurerNumber(value) | OrgIdentifier::CareProviderNumber(value) => value,
        }
    }
}

/// An organisation that may register clients: a facility, a public body or an insurer.
///
/// Invariants (checked by [`Organisation::new`], and so on every registry load):
///
/// | kind | identifiers | municipalities |
/// |---|---|---|
/// | hospital, clinic | exactly one institution number, point table 1 (医科) or 3 (歯科), in `prefecture` | at most one (its location) |
/// | pharmacy | exactly one institution number, point table 4 (調剤), in `prefecture` | at most one |
/// | public-health-centre | none | one or more: the municipalities it covers |
/// | municipality | none | exactly one: itself |
/// | care-provider | at most one care provider number, in `prefecture` | at most one |
/// | insurer | exactly one insurer number | at most one |
///
/// Every municipality lies in `prefecture`; identifiers of another kind's system are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "OrganisationRecord", into = "OrganisationRecord")]
pub struct Organisation {
    id: OrganisationId,
    kind: OrganisationKind,
    name: String,
    identifiers: Vec<OrgIdentifier>,
    prefecture: Prefecture,
    municipalities: Vec<MunicipalityCode>,
}

impl Organisation {
    /// Builds an organisation and checks the rules of its kind (table above).
    ///
    /// # Errors
    /// [`ModelError`] naming the field and the rule it breaks.
    pub fn new(
        id: OrganisationId,
        kind: OrganisationKind,
        name: impl Into<String>,
        identifiers: Vec<OrgIdentifier>,
        prefecture: Prefecture,
        municipalities: Vec<MunicipalityCode>,
    ) -> Result<Self, ModelError> {
        let name = name.into();
        if name.trim().is_empty()
            || name.chars().count() > 200
            || name.chars().any(char::is_control)
        {
            return Err(invalid("name", "1-200 characters, no control characters"));
        }
        let institution: Vec<&jp::InstitutionNumber> = identifiers
            .iter()
            .filter_map(|identifier| match identifier {
                OrgIdentifier::InstitutionNumber(number) => Some(number),
                _ => None,
            })
            .collect();
        let count = |system: &str| {
            identifiers
                .iter()
                .filter(|identifier| identifier.system() == system)
                .count()
        };
        let (institutions, insurers, care) = (
            institution.len(),
            count(INSURER_NUMBER_SYSTEM),
            count(CARE_PROVIDER_NUMBER_SYSTEM),
        );
        use OrganisationKind as K;
        match kind {
            K::Hospital | K::Clinic => {
                let ok = institutions == 1
                    && insurers + care == 0
                    && institution[0].point_table().may_submit();
                if !ok {
                    return Err(invalid(
                        "identifiers",
                        "a hospital or clinic has exactly one medical or dental institution number \
                         and no other identifier",
                    ));
                }
            }
            K::Pharmacy => {
                let ok = institutions == 1
                    && insurers + care == 0
                    && institution[0].point_table() == jp::PointTable::Pharmacy;
                if !ok {
                    return Err(invalid(
                        "identifiers",
                        "a pharmacy has exactly one pharmacy institution number (point table 4) \
                         and no other identifier",
                    ));
                }
            }
            K::Insurer if insurers != 1 || institutions + care != 0 => {
                return Err(invalid(
                    "identifiers",
                    "an insurer has exactly one insurer number and no other identifier",
                ));
            }
            K::CareProvider if care > 1 || institutions + insurers != 0 => {
                return Err(invalid(
                    "identifiers",
                    "a care provider has at most one care provider number and no other identifier",
                ));
            }
            K::PublicHealthCentre | K::Municipality if !identifiers.is_empty() => {
                return Err(invalid(
                    "identifiers",
                    "public health centres and municipalities are identified by their area",
                ));
            }
            _ => {}
        }
        for identifier in &identifiers {
            let in_prefecture = match identifier {
                OrgIdentifier::InstitutionNumber(number) => {
                    number.prefecture() == prefecture.number()
                }
                OrgIdentifier::CareProviderNumber(value) => value[..2] == prefecture.to_string(),
                OrgIdentifier::InsurerNumber(_) => true,
            };
            if !in_prefecture {
                return Err(invalid(
                    "identifiers",
                    "the identifier's prefecture digits must be the organisation's prefecture",
                ));
            }
        }
        match kind {
            K::Municipality if municipalities.len() != 1 => {
                return Err(invalid(
                    "municipalities",
                    "a municipality has exactly one municipality code: its own",
                ));
            }
            K::PublicHealthCentre if municipalities.is_empty() => {
                return Err(invalid(
                    "municipalities",
                    "a public health centre lists the municipalities it covers",
                ));
            }
            K::Municipality | K::PublicHealthCentre => {}
            _ if municipalities.len() > 1 => {
                return Err(invalid(
                    "municipalities",
                    "at most one municipality code: where the organisation is",
                ));
            }
            _ => {}
        }
        if municipalities
            .iter()
            .any(|code| code.prefecture() != prefecture)
        {
            return Err(invalid(
                "municipalities",
                "every municipality code lies in the organisation's prefecture",
            ));
        }
        let mut sorted = municipalities.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != municipalities.len() {
            return Err(invalid("municipalities", "no municipality code twice"));
        }
        Ok(Organisation {
            id,
            kind,
            name,
            identifiers,
            prefecture,
            municipalities,
        })
    }

    /// The registry id.
    pub fn id(&self) -> &OrganisationId {
        &self.id
    }

    /// The kind.
    pub fn kind(&self) -> OrganisationKind {
        self.kind
    }

    /// The name (as registered; shown to patients in their access history).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The national identifiers.
    pub fn identifiers(&self) -> &[OrgIdentifier] {
        &self.identifiers
    }

    /// The 10-digit institution number of a hospital, clinic or pharmacy: the key JP-CLINS data and
    /// `app::Viewer::Facility` use for a facility.
    pub fn institution_number(&self) -> Option<&jp::InstitutionNumber> {
        self.identifiers
            .iter()
            .find_map(|identifier| match identifier {
                OrgIdentifier::InstitutionNumber(number) => Some(number),
                _ => None,
            })
    }

    /// The prefecture.
    pub fn prefecture(&self) -> Prefecture {
        self.prefecture
    }

    /// The municipality (municipalities), the covered municipalities (public health centres) or
    /// the location, if registered (others).
    pub fn municipalities(&self) -> &[MunicipalityCode] {
        &self.municipalities
    }
}

/// The registry file's shape of an [`Organisation`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrganisationRecord {
    id: OrganisationId,
    kind: OrganisationKind,
    name: String,
    #[serde(default)]
    identifiers: Vec<IdentifierRecord>,
    prefecture: Prefecture,
    #[serde(default)]
    municipalities: Vec<MunicipalityCode>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentifierRecord {
    system: String,
    value: String,
}

impl TryFrom<OrganisationRecord> for Organisation {
    type Error = ModelError;
    fn try_from(record: OrganisationRecord) -> Result<Self, ModelError> {
        let identifiers = record
            .identifiers
            .iter()
            .map(|identifier| OrgIdentifier::new(&identifier.system, &identifier.value))
            .collect::<Result<_, _>>()?;
        Organisation::new(
            record.id,
            record.kind,
            record.name,
            identifiers,
            record.prefecture,
            record.municipalities,
        )
    }
}

impl From<Organisation> for OrganisationRecord {
    fn from(organisation: Organisation) -> Self {
        OrganisationRecord {
            identifiers: organisation
                .identifiers
                .iter()
                .map(|identifier| IdentifierRecord {
                    system: identifier.system().to_owned(),
                    value: identifier.value().to_owned(),
                })
                .collect(),
            id: organisation.id,
            kind: organisation.kind,
            name: organisation.name,
            prefecture: organisation.prefecture,
            municipalities: organisation.municipalities,
        }
    }
}

/// Where a client's public keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientKeys {
    /// An inline JWK Set, registered with the client (`tsunagu client add --jwks FILE`).
    Jwks(JwkSet),
    /// A JWK Set URL on the allow-list, fetched at token time (SMART's `jwks_uri`), so that the
    /// facility can rotate its keys without asking us.
    JwksUrl(JwksUrl),
}

/// A facility system allowed to ask for tokens for its organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ClientRecord", into = "ClientRecord")]
pub struct Client {
    client_id: ClientId,
    organisation: OrganisationId,
    keys: ClientKeys,
    revoked_at: Option<SystemTime>,
}

impl Client {
    /// A new, unrevoked client.
    pub fn new(client_id: ClientId, organisation: OrganisationId, keys: ClientKeys) -> Self {
        Client {
            client_id,
            organisation,
            keys,
            revoked_at: None,
        }
    }

    /// The client id (`iss` and `sub` of its assertions).
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    /// The organisation it acts for.
    pub fn organisation(&self) -> &OrganisationId {
        &self.organisation
    }

    /// Its public keys.
    pub fn keys(&self) -> &ClientKeys {
        &self.keys
    }

    /// When it was revoked; a revoked client gets no token and its tokens stop working.
    pub fn revoked_at(&self) -> Option<SystemTime> {
        self.revoked_at
    }

    /// Whether it is revoked.
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    pub(crate) fn revoke(&mut self, at: SystemTime) {
        // The first revocation time is the one that counts.
        self.revoked_at.get_or_insert(at);
    }
}

/// The registry file's shape of a [`Client`]: exactly one of `jwks` and `jwks_url`; `revoked_at`
/// in seconds since the Unix epoch.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientRecord {
    client_id: ClientId,
    organisation: OrganisationId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jwks: Option<JwkSet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jwks_url: Option<JwksUrl>,
    #[serde(default)]
    revoked_at: Option<u64>,
}

impl TryFrom<ClientRecord> for Client {
    type Error = ModelError;
    fn try_from(record: ClientRecord) -> Result<Self, ModelError> {
        let keys = match (record.jwks, record.jwks_url) {
            (Some(jwks), None) => ClientKeys::Jwks(jwks),
            (None, Some(url)) => ClientKeys::JwksUrl(url),
            _ => return Err(invalid("client keys", "exactly one of jwks and jwks_url")),
        };
        Ok(Client {
            client_id: record.client_id,
            organisation: record.organisation,
            keys,
            revoked_at: record
                .revoked_at
                .map(|seconds| UNIX_EPOCH + Duration::from_secs(seconds)),
        })
    }
}

impl From<Client> for ClientRecord {
    fn from(client: Client) -> Self {
        let (jwks, jwks_url) = match client.keys {
            ClientKeys::Jwks(jwks) => (Some(jwks), None),
            ClientKeys::JwksUrl(url) => (None, Some(url)),
        };
        ClientRecord {
            client_id: client.client_id,
            organisation: client.organisation,
            jwks,
            jwks_url,
            revoked_at: client.revoked_at.map(unix_seconds),
        }
    }
}

/// Whole seconds since the Unix epoch (0 before it).
pub(crate) fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or(0)
}

/// The code system of [`Role`] codes in `subject_role`.
pub const ROLE_SYSTEM: &str = "https://tsunagu.jp/fhir/CodeSystem/user-role";

/// What the acting user is, as asserted by their facility (`subject_role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// 医師.
    Doctor,
    /// 歯科医師.
    Dentist,
    /// 看護師.
    Nurse,
    /// 薬剤師.
    Pharmacist,
    /// 事務: reception and clerical staff. Sees no clinical data.
    Clerk,
    /// The facility's administrator (grants privileges). Sees no clinical data.
    Administrator,
    /// 保健所 staff.
    PublicHealthOfficer,
    /// 市区町村 staff.
    MunicipalOfficer,
    /// 介護職員 / care manager.
    CareWorker,
    /// 保険者 staff.
    InsurerStaff,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 10] = [
        Role::Doctor,
        Role::Dentist,
        Role::Nurse,
        Role::Pharmacist,
        Role::Clerk,
        Role::Administrator,
        Role::PublicHealthOfficer,
        Role::MunicipalOfficer,
        Role::CareWorker,
        Role::InsurerStaff,
    ];

    /// The code in [`ROLE_SYSTEM`].
    pub fn code(self) -> &'static str {
        match self {
            Role::Doctor => "doctor",
            Role::Dentist => "dentist",
            Role::Nurse => "nurse",
            Role::Pharmacist => "pharmacist",
            Role::Clerk => "clerk",
            Role::Administrator => "administrator",
            Role::PublicHealthOfficer => "public-health-officer",
            Role::MunicipalOfficer => "municipal-officer",
            Role::CareWorker => "care-worker",
            Role::InsurerStaff => "insurer-staff",
        }
    }

    /// Parses [`Role::code`].
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.code() == code)
    }

    /// Whether the role reads clinical data at all (clerks and administrators do not).
    pub fn reads_clinical_data(self) -> bool {
        !matches!(self, Role::Clerk | Role::Administrator)
    }
}

/// The code system of [`PurposeOfUse`] codes (HL7 v3 PurposeOfUse, as IHE IUA and BALP use it).
pub const PURPOSE_OF_USE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";

/// Why the user acts (`purpose_of_use`); recorded in every audit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PurposeOfUse {
    /// `TREAT`: treatment.
    Treatment,
    /// `ETREAT`: emergency treatment (needs the emergency privilege).
    EmergencyTreatment,
    /// `PUBHLTH`: public health (notifiable diseases, surveillance).
    PublicHealth,
    /// `COVERAGE`: a public programme's benefits (long-term-care certification, subsidies).
    Coverage,
    /// `CAREMGT`: care management (nursing care).
    CareManagement,
    /// `POPHLTH`: population health (an insurer's checkup follow-up, 特定保健指導).
    PopulationHealth,
}

impl PurposeOfUse {
    /// Every purpose.
    pub const ALL: [PurposeOfUse; 6] = [
        PurposeOfUse::Treatment,
        PurposeOfUse::EmergencyTreatment,
        PurposeOfUse::PublicHealth,
        PurposeOfUse::Coverage,
        PurposeOfUse::CareManagement,
        PurposeOfUse::PopulationHealth,
    ];

    /// The code in [`PURPOSE_OF_USE_SYSTEM`].
    pub fn code(self) -> &'static str {
        match self {
            PurposeOfUse::Treatment => "TREAT",
            PurposeOfUse::EmergencyTreatment => "ETREAT",
            PurposeOfUse::PublicHealth => "PUBHLTH",
            PurposeOfUse::Coverage => "COVERAGE",
            PurposeOfUse::CareManagement => "CAREMGT",
            PurposeOfUse::PopulationHealth => "POPHLTH",
        }
    }

    /// Parses [`PurposeOfUse::code`].
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|purpose| purpose.code() == code)
    }
}

/// The person a client acts for, as its facility asserts them in the client assertion.
///
/// tsunagu does not authenticate facility staff itself: the facility does, and signs the claims
/// with its client key. The user is bound into the access token and every audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The facility's own id of the user (staff number, login).
    pub id: String,
    /// The user's name as the facility records it.
    pub name: String,
    /// The role.
    pub role: Role,
    /// Whether the facility's administrator granted this user the emergency privilege
    /// (救急時医療情報閲覧). Only doctors at hospitals may hold it.
    pub emergency_privilege: bool,
}

#[cfg(test)]
mod tests;
