#!/usr/bin/env python3
"""Derive `profiles.json`, the compact JP-CLINS profile rules compiled into the `jp` crate.

Usage (Python 3, standard library only; SOURCES.md says where the inputs come from):

    python3 derive.py PACKAGES_DIR OUT_FILE

PACKAGES_DIR holds the unpacked FHIR packages `jp-clins-1.5.2/`, `jp-core-1.1.2/` and
`jp-echeckup-1.0.0-temp/` (the project's `shared/fixtures/jp/packages/`).

For each profile the crate validates against (PROFILES below), the script reads the elements named in the
profile's *differential* and takes their effective constraints from its *snapshot*:

- `card`: cardinality (min > 0, or a max other than `*`) of an element outside any slice;
- `fixed`: a fixed[x] or pattern[x] primitive value of an element outside any slice;
- `slice`: a slice discriminated by value on `system` (Coding, Identifier) or `url` (Extension) with
  its min/max and the card/fixed rules of its direct children;
- `binding`: a required binding whose value set can be expanded from CodeSystems of the packages
  (R4 core value sets are left to the `fhir` crate's structural validation).

It also writes the codes of the JP-CLINS-owned code systems listed in CHECKED_CODE_SYSTEMS, which the
crate checks wherever a Coding names one of them.

Everything else (FHIRPath invariants, profile-discriminated slices, nested slices) is hand-written in the
crate, which cites the invariant keys. The output is deterministic: run it again and diff.
"""

import hashlib
import json
import os
import sys

# (package folder, file) of each profile that the crate checks.
PROFILES = [
    ("jp-clins-1.5.2", "StructureDefinition-JP-Patient-eCS.json"),
    ("jp-clins-1.5.2", "StructureDefinition-JP-Condition-eCS.json"),
    ("jp-clins-1.5.2", "StructureDefinition-JP-AllergyIntolerance-eCS.json"),
    ("jp-clins-1.5.2", "StructureDefinition-JP-Observation-LabResult-eCS.json"),
    ("jp-clins-1.5.2", "StructureDefinition-JP-MedicationRequest-eCS.json"),
    ("jp-clins-1.5.2", "StructureDefinition-JP-Encounter-eCS.json"),
    ("jp-clins-1.5.2", "StructureDefinition-JP-Organization-eCS.json"),
    ("jp-clins-1.5.2", "StructureDefinition-JP-Practitioner-eCS.json"),
    ("jp-clins-1.5.2", "StructureDefinition-JP-Bundle-CLINS.json"),
    ("jp-clins-1.5.2", "StructureDefinition-JP-Bundle-eReferral.json"),
    ("jp-clins-1.5.2", "StructureDefinition-JP-Bundle-eDischargeSummary.json"),
    ("jp-clins-1.5.2", "StructureDefinition-JP-Bundle-ePCS.json"),
    ("jp-clins-1.5.2", "StructureDefinition-JP-Composition-eReferral.json"),
    ("jp-clins-1.5.2", "StructureDefinition-JP-Composition-eDischargeSummary.json"),
    ("jp-clins-1.5.2", "StructureDefinition-JP-Composition-ePCS.json"),
    ("jp-echeckup-1.0.0-temp", "StructureDefinition-JP-Bundle-clins-eCheckupGeneral.json"),
    ("jp-echeckup-1.0.0-temp", "StructureDefinition-JP-Composition-eCheckupGeneral.json"),
]

# JP-CLINS-owned complete CodeSystems whose codes the crate checks wherever a Coding names the system
# (the leaves only: JLAC code systems group their codes under abstract item names such as `ALB`).
CHECKED_CODE_SYSTEMS = [
    "http://jpfhir.jp/fhir/clins/CodeSystem/JLAC10/JP_CLINS_ObsLabResult_CoreLabo_CS",
    "http://jpfhir.jp/fhir/clins/CodeSystem/JLAC10/JP_CLINS_ObsLabResult_InfectionLabo_CS",
    "http://jpfhir.jp/fhir/clins/CodeSystem/JP_CLINS_ObsLabResult_Uncoded_CS",
    "http://jpfhir.jp/fhir/clins/CodeSystem/JP_CLINS_MedicationUsage_Uncoded_CS",
    "http://jpfhir.jp/fhir/eCS/CodeSystem/MedicationCodeNocoded_CS",
    "http://jpfhir.jp/fhir/clins/CodeSystem/JP_ehrshrs_indication",
    "http://jpfhir.jp/fhir/clins/CodeSystem/BundleResourceType_CS",
]

# (package, file) of the ValueSets and CodeSystems that the compiled bindings were expanded from.
USED_FILES = []

# The largest value set worth compiling in; bigger ones need a terminology service.
MAX_EXPANSION = 200


def main():
    packages_dir, out_file = sys.argv[1:3]
    code_systems, value_sets, sources = load_terminology(packages_dir)

    profiles = {}
    used_value_sets = {}
    for package, file_name in PROFILES:
        path = os.path.join(packages_dir, package, file_name)
        sources.append(source_entry(packages_dir, package, file_name))
        with open(path, encoding="utf-8") as f:
            definition = json.load(f)
        rules = derive_rules(definition, code_systems, value_sets, used_value_sets)
        for package_file in USED_FILES:
            entry = source_entry(packages_dir, *package_file)
            if entry not in sources:
                sources.append(entry)
        profiles[definition["url"]] = {
            "type": definition["type"],
            "source": f"{package}/{file_name}",
            "rules": rules,
        }

    checked = {}
    for url in CHECKED_CODE_SYSTEMS:
        code_system, package, file_name = code_systems[url]
        sources.append(source_entry(packages_dir, package, file_name))
        checked[url] = sorted(set(leaf_codes(code_system.get("concept", []))))
    sources = [dict(s) for s in {tuple(sorted(s.items())) for s in sources}]

    out = {
        "comment": "Generated by derive.py from the FHIR packages listed in sources; never edit by hand.",
        "sources": sorted(sources, key=lambda s: s["file"]),
        "profiles": profiles,
        "valueSets": dict(sorted(used_value_sets.items())),
        "codeSystems": checked,
    }
    with open(out_file, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1, sort_keys=False)
        f.write("\n")


def load_terminology(packages_dir):
    """CodeSystems (complete only) and ValueSets of all three packages, by canonical URL."""
    code_systems, value_sets = {}, {}
    origins = {}
    for package in sorted(os.listdir(packages_dir)):
        folder = os.path.join(packages_dir, package)
        if not os.path.isdir(folder):
            continue
        for file_name in sorted(os.listdir(folder)):
            if not file_name.endswith(".json"):
                continue
            with open(os.path.join(folder, file_name), encoding="utf-8") as f:
                resource = json.load(f)
            kind = resource.get("resourceType")
            if kind == "CodeSystem" and resource.get("content") == "complete":
                code_systems.setdefault(resource["url"], (resource, package, file_name))
            elif kind == "ValueSet":
                value_sets.setdefault(resource["url"], (resource, package, file_name))
    return code_systems, value_sets, []


def source_entry(packages_dir, package, file_name):
    with open(os.path.join(packages_dir, package, file_name), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {"file": f"{package}/{file_name}", "sha256": digest}


def derive_rules(definition, code_systems, value_sets, used_value_sets):
    snapshot = {element["id"]: element for element in definition["snapshot"]["element"]}
    differential_ids = [element["id"] for element in definition["differential"]["element"]]
    rules = []
    slices = {}
    for element_id in differential_ids:
        element = snapshot.get(element_id)
        if element is None:
            continue
        segments = element_id.split(".")
        sliced = [i for i, segment in enumerate(segments) if ":" in segment]
        if not sliced:
            rules.extend(plain_rules(element_id, element, root="." not in element_id))
            binding = bound_value_set(element, code_systems, value_sets, used_value_sets)
            if binding:
                rules.append({"binding": element_id, "valueSet": binding})
            continue
        if len(sliced) != 1:
            continue  # Nested slices are hand-written where they matter.
        index = sliced[0]
        slice_id = ".".join(segments[: index + 1])
        entry = slices.setdefault(slice_id, {"children": []})
        if index == len(segments) - 1:
            entry["element"] = element
            continue
        relative = ".".join(segments[index + 1 :])
        entry["children"].extend(
            dict(rule, **{key: relative for key in ("card", "fixed") if key in rule})
            for rule in plain_rules(relative, element, root=False)
        )
        if relative in ("system", "url") and (fixed_value(element) is not None):
            entry["on"] = relative
            entry["value"] = fixed_value(element)

    for slice_id, entry in slices.items():
        element = entry.get("element")
        if element is None:
            continue
        parent, name = slice_id.rsplit(":", 1)
        discriminator = slice_discriminator(snapshot.get(parent))
        on, value = entry.get("on"), entry.get("value")
        if discriminator == "url" and on is None:
            profiles = [p for t in element.get("type", []) for p in t.get("profile", [])]
            if len(profiles) == 1:
                on, value = "url", profiles[0]
        if discriminator not in ("system", "url") or on != discriminator or value is None:
            continue
        children = [c for c in entry["children"] if c.get("card") != on and c.get("fixed") != on]
        rules.append(
            {
                "slice": parent,
                "name": name,
                "on": on,
                "value": value,
                "min": element.get("min", 0),
                "max": element.get("max", "*"),
                "children": children,
            }
        )
    return rules


def plain_rules(path, element, root):
    """Cardinality and fixed value of one element; the root element's own say nothing of an instance."""
    if root:
        return []
    rules = []
    minimum, maximum = element.get("min", 0), element.get("max", "*")
    if minimum > 0 or maximum not in ("*", "1"):
        rules.append({"card": path, "min": minimum, "max": maximum})
    value = fixed_value(element)
    if value is not None:
        rules.append({"fixed": path, "value": value})
    return rules


def fixed_value(element):
    for key, value in element.items():
        if (key.startswith("fixed") or key.startswith("pattern")) and isinstance(value, str):
            return value
    return None


def slice_discriminator(parent):
    if parent is None or "slicing" not in parent:
        return None
    discriminators = parent["slicing"].get("discriminator", [])
    if len(discriminators) != 1 or discriminators[0].get("type") != "value":
        return None
    return discriminators[0].get("path")


def bound_value_set(element, code_systems, value_sets, used_value_sets):
    binding = element.get("binding")
    if not binding or binding.get("strength") != "required":
        return None
    url = binding.get("valueSet", "")
    if url.startswith("http://hl7.org/fhir/ValueSet/"):
        return None
    types = {t.get("code") for t in element.get("type", [])}
    if not types & {"code", "Coding", "CodeableConcept"}:
        return None
    codes = expand(url, code_systems, value_sets)
    if codes is None or len(codes) > MAX_EXPANSION:
        return None
    used_value_sets[url] = codes
    return url


def expand(url, code_systems, value_sets):
    """The [system, code] pairs of a value set, or None when the packages cannot expand it."""
    found = value_sets.get(url.split("|")[0])
    if found is None:
        return None
    compose = found[0].get("compose", {})
    if compose.get("exclude"):
        return None
    codes = []
    used = [found[1:]]
    for include in compose.get("include", []):
        system = include.get("system")
        if system is None or include.get("filter") or include.get("valueSet"):
            return None
        if include.get("concept"):
            codes.extend([system, concept["code"]] for concept in include["concept"])
            continue
        code_system = code_systems.get(system)
        if code_system is None:
            return None
        codes.extend([system, code] for code in all_codes(code_system[0].get("concept", [])))
        used.append(code_system[1:])
    for package_file in used:
        if package_file not in USED_FILES:
            USED_FILES.append(package_file)
    return sorted(codes)


def leaf_codes(concepts):
    for concept in concepts:
        if concept.get("concept"):
            yield from leaf_codes(concept["concept"])
        else:
            yield concept["code"]


def all_codes(concepts):
    for concept in concepts:
        yield concept["code"]
        yield from all_codes(concept.get("concept", []))


if __name__ == "__main__":
    main()
