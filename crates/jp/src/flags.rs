//! The JP-CLINS indication flags a resource carries in `meta.tag`: keep longer, not yet told to the
//! patient, not to be provided outside the submitting facility.

use serde_json::Value;

/// `meta.tag.system` of the flags (CodeSystem `JP_ehrshrs_indication` in the JP-CLINS package).
pub const INDICATION_SYSTEM: &str = "http://jpfhir.jp/fhir/clins/CodeSystem/JP_ehrshrs_indication";

/// The flags of one resource.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// `LTS` (長期保存): keep longer than the item's default retention.
    pub lts: bool,
    /// `UNINFORMED` (未告知): the patient has not been told; never shown in the patient's own view.
    pub uninformed: bool,
    /// `UNDELIVERED` (未提供): shown to nobody outside the submitting facility.
    pub undelivered: bool,
}

/// The flags in `resource.meta.tag`. Tags of other systems, and unknown codes, are ignored.
pub fn flags(resource: &Value) -> Flags {
    let mut flags = Flags::default();
    for tag in resource["meta"]["tag"].as_array().into_iter().flatten() {
        if tag["system"].as_str() != Some(INDICATION_SYSTEM) {
            continue;
        }
        match tag["code"].as_str() {
            Some("LTS") => flags.lts = true,
            Some("UNINFORMED") => flags.uninformed = true,
            Some("UNDELIVERED") => flags.undelivered = true,
            _ => {}
        }
    }
    flags
}

#[cfg(test)]
mod tests;
