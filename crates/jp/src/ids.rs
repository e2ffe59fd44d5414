//! The identifiers JP-CLINS keys things by, parsed into types that keep their invariants.
//!
//! - [`InsuredPersonId`]: 被保険者個人識別子 `insurer8:symbol:number:branch2`, the national patient key.
//! - [`PublicPayerId`]: 生活保護受給者識別子 `payer8::recipient7:`, the key of public-assistance recipients.
//! - [`InstitutionNumber`]: 保険医療機関番号, 10 digits (prefecture, point table, 7-digit code).
//! - [`BundleIdentifier`]: 報告単位識別ID `facility10^YYYY^local-id`, the unit of replacement.
//!
//! Errors name the part and the rule that failed, never the value: these are patient identifiers.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// `Patient.identifier.system` of the insured-person identifier.
pub const INSURED_PERSON_SYSTEM: &str =
    "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID";
/// `Patient.identifier.system` of the public-assistance (生活保護) recipient identifier.
pub const PUBLIC_PAYER_SYSTEM: &str =
    "http://jpfhir.jp/fhir/clins/Idsystem/JP_PublicPayer_memberID";
/// The identifier system of 10-digit medical institution numbers.
pub const INSTITUTION_NUMBER_SYSTEM: &str =
    "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no";
/// `Bundle.identifier.system` of JP-CLINS submissions.
pub const BUNDLE_IDENTIFIER_SYSTEM: &str = "http://jpfhir.jp/fhir/clins/bundle-identifier";
/// Prefix of a facility's own patient-id system: this, then `1`, then the 10-digit institution number.
pub const FACILITY_PATIENT_ID_PREFIX: &str = "urn:oid:1.2.392.100495.20.3.51.";

/// Why an identifier was refused. Says which part broke which rule; never contains the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The value does not split into the expected parts.
    #[error("{what} must be {expected} parts joined by the half-width {separator}")]
    PartCount {
        /// Which identifier, e.g. "insured-person identifier".
        what: &'static str,
        /// How many parts it has.
        expected: usize,
        /// The separator, e.g. "colon `:`".
        separator: &'static str,
    },
    /// One part breaks a rule.
    #[error("{part} must be {rule}")]
    Part {
        /// Which part, e.g. "insurer number".
        part: &'static str,
        /// The rule, e.g. "8 half-width digits".
        rule: &'static str,
    },
}

/// A 被保険者個人識別子 in its canonical form.
///
/// Parts that consist of letters and digits only may be written in half-width or in full-width
/// characters (JP-CLINS 「被保険者個人識別子」の文字列仕様): both denote the same card, so they are folded to
/// half-width. A part containing kana, kanji or symbols must be entirely full-width and is kept as sent
/// (after Unicode NFC). Empty parts (no symbol, no branch) are kept: the canonical form always has four
/// parts. [`fmt::Display`] gives the canonical string, the national key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InsuredPersonId {
    insurer: String,
    symbol: String,
    number: String,
    branch: String,
}

impl InsuredPersonId {
    /// 保険者等番号: 8 half-width digits.
    pub fn insurer(&self) -> &str {
        &self.insurer
    }

    /// 被保険者証等の記号, canonical; empty when the card has none.
    pub fn symbol(&self) -> &str {
        &self.symbol
    }

    /// 被保険者証等の番号, canonical; never empty.
    pub fn number(&self) -> &str {
        &self.number
    }

    /// 枝番: two half-width digits, or empty when the card shows none.
    pub fn branch(&self) -> &str {
        &self.branch
    }
}

impl fmt::Display for InsuredPersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.insurer, self.symbol, self.number, self.branch
        )
    }
}

/// Parses a 被保険者個人識別子 (`Patient.identifier.value` for [`INSURED_PERSON_SYSTEM`]).
///
/// Rules (JP-CLINS 「被保険者個人識別子」の文字列仕様 and invariant R1013 of `JP_Patient_eCS`): four parts
/// joined by the half-width colon; insurer number exactly 8 half-width digits (shorter numbers are padded
/// with zeros by the sender, not here); symbol may be empty; number must not be empty; neither contains
/// spaces, and each is either all half-width letters/digits, all full-width letters/digits, or entirely
/// full-width when it contains kana, kanji or symbols; branch empty or exactly two half-width digits.
///
/// # Errors
/// [`IdError`] naming the part and the rule it breaks.
pub fn insured_person_id(value: &str) -> Result<InsuredPersonId, IdError> {
    let parts: Vec<&str> = value.split(':').collect();
    if parts.len() != 4 {
        return Err(IdError::PartCount {
            what: "an insured-person identifier",
            expected: 4,
            separator: "colon `:`",
        });
    }
    let insurer = ascii_digits(parts[0], 8).ok_or(IdError::Part {
        part: "the insurer number (first part)",
        rule: "exactly 8 half-width digits, zero-padded",
    })?;
    let symbol = card_part(parts[1], "the symbol (second part)")?;
    let number = card_part(parts[2], "the number (third part)")?;
    if number.is_empty() {
        return Err(IdError::Part {
            part: "the number (third part)",
            rule: "present",
        });
    }
    let branch = if parts[3].is_empty() {
        String::new()
    } else {
        ascii_digits(parts[3], 2).ok_or(IdError::Part {
            part: "the branch number (fourth part)",
            rule: "empty or exactly 2 half-width digits",
        })?
    };
    Ok(InsuredPersonId {
        insurer,
        symbol,
        number,
        branch,
    })
}

/// A 生活保護受給者識別子 in its canonical form: `payer8::recipient7:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicPayerId {
    payer: String,
    recipient: String,
}

impl PublicPayerId {
    /// 公費負担者番号: 8 half-width digits.
    pub fn payer(&self) -> &str {
        &self.payer
    }

    /// 受給者番号, canonical (7 characters).
    pub fn recipient(&self) -> &str {
        &self.recipient
    }
}

impl fmt::Display for PublicPayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{}:", self.payer, self.recipient)
    }
}

/// Parses a 生活保護受給者識別子 (`Patient.identifier.value` for [`PUBLIC_PAYER_SYSTEM`]).
///
/// Rules (JP-CLINS invariant `valid-value-publicPayer-patientIdentifier`, regex
/// `^[0-9]{8}::[^:\s　]{7}:$`): 8-digit public payer number, empty second part, a 7-character recipient
/// number (letters and digits folded to half-width like an insured-person number), empty fourth part.
///
/// # Errors
/// [`IdError`] naming the part and the rule it breaks.
pub fn public_payer_id(value: &str) -> Result<PublicPayerId, IdError> {
    let parts: Vec<&str> = value.split(':').collect();
    if parts.len() != 4 {
        return Err(IdError::PartCount {
            what: "a public-assistance recipient identifier",
            expected: 4,
            separator: "colon `:`",
        });
    }
    let payer = ascii_digits(parts[0], 8).ok_or(IdError::Part {
        part: "the public payer number (first part)",
        rule: "exactly 8 half-width digits",
    })?;
    if !parts[1].is_empty() || !parts[3].is_empty() {
        return Err(IdError::Part {
            part: "the second and fourth parts of a public-assistance recipient identifier",
            rule: "empty",
        });
    }
    let recipient = card_part(parts[2], "the recipient number (third part)")?;
    if recipient.chars().count() != 7 {
        return Err(IdError::Part {
            part: "the recipient number (third part)",
            rule: "7 characters",
        });
    }
    Ok(PublicPayerId { payer, recipient })
}

/// The 点数表 digit of an institution number: what kind of facility it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PointTable {
    /// `1`: 医科, a hospital or clinic.
    Medical,
    /// `3`: 歯科, a dental clinic.
    Dental,
    /// `4`: 調剤, a pharmacy.
    Pharmacy,
    /// `6`: 訪問看護, a home-visit nursing station.
    VisitingNursing,
}

impl PointTable {
    /// The digit as written in the number.
    pub fn digit(self) -> char {
        match self {
            PointTable::Medical => '1',
            PointTable::Dental => '3',
            PointTable::Pharmacy => '4',
            PointTable::VisitingNursing => '6',
        }
    }

    /// Whether JP-CLINS accepts submissions from this kind of facility: the profiles' institution-number
    /// pattern `[0-4][0-9][1-3][0-9]{7}` admits point tables 1–3 only.
    pub fn may_submit(self) -> bool {
        matches!(self, PointTable::Medical | PointTable::Dental)
    }
}

/// A 10-digit 保険医療機関番号: prefecture (01–47), point table, 7-digit institution code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstitutionNumber(String);

impl InstitutionNumber {
    /// The prefecture code, 1 (Hokkaido) to 47 (Okinawa).
    pub fn prefecture(&self) -> u8 {
        self.0[..2].parse().unwrap_or_default()
    }

    /// What kind of facility the number designates.
    pub fn point_table(&self) -> PointTable {
        match self.0.as_bytes()[2] {
            b'1' => PointTable::Medical,
            b'3' => PointTable::Dental,
            b'4' => PointTable::Pharmacy,
            _ => PointTable::VisitingNursing,
        }
    }

    /// The last 7 digits (郡市区番号, 医療機関等番号, 検証番号).
    pub fn code(&self) -> &str {
        &self.0[3..]
    }

    /// The 10 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstitutionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a 10-digit institution number.
///
/// Rules: exactly 10 half-width digits; prefecture code 01–47 (JIS X 0401); point-table digit 1 (医科),
/// 3 (歯科), 4 (調剤) or 6 (訪問看護). The check digit is not verified: its algorithm is not part of JP-CLINS
/// and the published examples do not satisfy the common guesses.
///
/// # Errors
/// [`IdError`] naming the part and the rule it breaks.
pub fn institution_number(value: &str) -> Result<InstitutionNumber, IdError> {
    let digits = ascii_digits(value, 10).ok_or(IdError::Part {
        part: "an institution number",
        rule: "exactly 10 half-width digits",
    })?;
    let prefecture: u8 = digits[..2].parse().unwrap_or_default();
    if !(1..=47).contains(&prefecture) {
        return Err(IdError::Part {
            part: "the prefecture code of an institution number (digits 1-2)",
            rule: "01 to 47",
        });
    }
    if !matches!(digits.as_bytes()[2], b'1' | b'3' | b'4' | b'6') {
        return Err(IdError::Part {
            part: "the point-table digit of an institution number (digit 3)",
            rule: "1 (medical), 3 (dental), 4 (pharmacy) or 6 (visiting nursing)",
        });
    }
    Ok(InstitutionNumber(digits))
}

/// A parsed 報告単位識別ID: which facility, which year, which local report unit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BundleIdentifier {
    /// The submitting facility.
    pub facility: InstitutionNumber,
    /// The year, 2020–2039.
    pub year: u16,
    /// The facility's own id of the report unit: 1–36 of `A-Z a-z 0-9 -`.
    pub local: String,
}

impl fmt::Display for BundleIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}^{}^{}", self.facility, self.year, self.local)
    }
}

/// Parses `Bundle.identifier.value` for [`BUNDLE_IDENTIFIER_SYSTEM`].
///
/// Rules (JP-CLINS invariant R2152 of `JP_Bundle_CLINS`,
/// `^[0-4][0-9][1-3][0-9]{7}\^20[2-3][0-9]\^[A-Za-z0-9\-]{1,36}$`): a valid institution number of a
/// medical or dental facility, a year 2020–2039, a local id of 1 to 36 half-width letters, digits and
/// hyphens, joined by `^`.
///
/// # Errors
/// [`IdError`] naming the part and the rule it breaks.
pub fn bundle_identifier(value: &str) -> Result<BundleIdentifier, IdError> {
    let parts: Vec<&str> = value.split('^').collect();
    if parts.len() != 3 {
        return Err(IdError::PartCount {
            what: "a bundle identifier",
            expected: 3,
            separator: "caret `^`",
        });
    }
    let facility = institution_number(parts[0])?;
    if !facility.point_table().may_submit() {
        return Err(IdError::Part {
            part: "the institution number of a bundle identifier",
            rule: "a medical (1) or dental (3) facility",
        });
    }
    let year = ascii_digits(parts[1], 4)
        .and_then(|year| year.parse::<u16>().ok())
        .filter(|year| (2020..=2039).contains(year))
        .ok_or(IdError::Part {
            part: "the year of a bundle identifier (second part)",
            rule: "4 half-width digits from 2020 to 2039",
        })?;
    let local = parts[2];
    let local_ok = (1..=36).contains(&local.len())
        && local
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-');
    if !local_ok {
        return Err(IdError::Part {
            part: "the local id of a bundle identifier (third part)",
            rule: "1 to 36 half-width letters, digits or hyphens",
        });
    }
    Ok(BundleIdentifier {
        facility,
        year,
        local: local.to_owned(),
    })
}

/// A facility's own patient id (`urn:oid:1.2.392.100495.20.3.51.1<facility10>` + value).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FacilityPatientId {
    /// The facility that assigned the id.
    pub facility: InstitutionNumber,
    /// The id, exactly as sent.
    pub value: String,
}

impl FacilityPatientId {
    /// The identifier system, `urn:oid:1.2.392.100495.20.3.51.1` followed by the facility number.
    pub fn system(&self) -> String {
        format!("{FACILITY_PATIENT_ID_PREFIX}1{}", self.facility)
    }
}

/// The facility of a facility patient-id system, if `system` is one (invariant R1010 of `JP_Patient_eCS`).
///
/// `Ok(None)` means the system is some other one; an error means it has the facility prefix but a broken
/// institution number.
///
/// # Errors
/// [`IdError`] when the part after the prefix is not `1` followed by a valid institution number.
pub fn facility_of_patient_id_system(system: &str) -> Result<Option<InstitutionNumber>, IdError> {
    let Some(rest) = system.strip_prefix(FACILITY_PATIENT_ID_PREFIX) else {
        return Ok(None);
    };
    let Some(number) = rest.strip_prefix('1') else {
        return Err(IdError::Part {
            part: "the facility patient-id system",
            rule: "the prefix followed by `1` and a 10-digit institution number",
        });
    };
    institution_number(number).map(Some)
}

/// The value if it is exactly `len` ASCII digits.
fn ascii_digits(value: &str, len: usize) -> Option<String> {
    (value.len() == len && value.bytes().all(|byte| byte.is_ascii_digit()))
        .then(|| value.to_owned())
}

/// How one character of a symbol or number counts under the JP-CLINS width rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Width {
    /// `0-9 A-Z a-z`.
    HalfAlnum,
    /// `０-９ Ａ-Ｚ ａ-ｚ`.
    FullAlnum,
    /// Any other half-width character: ASCII symbols, half-width katakana and forms.
    HalfOther,
    /// Any other character: kana, kanji, full-width symbols.
    FullOther,
}

fn width(character: char) -> Width {
    match character {
        '0'..='9' | 'A'..='Z' | 'a'..='z' => Width::HalfAlnum,
        '０'..='９' | 'Ａ'..='Ｚ' | 'ａ'..='ｚ' => Width::FullAlnum,
        '\u{0}'..='\u{7f}' | '\u{ff61}'..='\u{ffdc}' | '\u{ffe8}'..='\u{ffee}' => Width::HalfOther,
        _ => Width::FullOther,
    }
}

/// Canonical form of a symbol or number part (see [`InsuredPersonId`]).
fn card_part(part: &str, name: &'static str) -> Result<String, IdError> {
    let part: String = part.nfc().collect();
    if part
        .chars()
        .any(|character| character.is_whitespace() || character.is_control())
    {
        return Err(IdError::Part {
            part: name,
            rule: "free of spaces (half- or full-width) and control characters",
        });
    }
    let widths: Vec<Width> = part.chars().map(width).collect();
    let alnum_only = widths
        .iter()
        .all(|w| matches!(w, Width::HalfAlnum | Width::FullAlnum));
    if alnum_only {
        let half = widths.iter().filter(|w| **w == Width::HalfAlnum).count();
        if half != 0 && half != widths.len() {
            return Err(IdError::Part {
                part: name,
                rule: "either all half-width or all full-width letters and digits",
            });
        }
        return Ok(part.chars().map(fold_full_width_alnum).collect());
    }
    if widths
        .iter()
        .any(|w| matches!(w, Width::HalfAlnum | Width::HalfOther))
    {
        return Err(IdError::Part {
            part: name,
            rule: "entirely full-width when it contains kana, kanji or symbols",
        });
    }
    Ok(part)
}

/// `０`→`0`, `Ａ`→`A`, `ａ`→`a`; anything else unchanged.
fn fold_full_width_alnum(character: char) -> char {
    match character {
        '０'..='９' | 'Ａ'..='Ｚ' | 'ａ'..='ｚ' => {
            char::from_u32(character as u32 - 0xFEE0).unwrap_or(character)
        }
        _ => character,
    }
}

#[cfg(test)]
mod tests;
