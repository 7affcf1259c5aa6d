"""The published rules JSON Schema: docs/rules.schema.json is the generated one, it is well-formed and matches
what the domain parser accepts, and every example in docs/rules.md passes the domain parser.

(`jsonschema` is not a dependency; the domain parser is the authority and is what these tests run.)
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from treue.cli.rules import schema_text
from treue.domain.rules import definitions as d
from treue.domain.rules.effects import EFFECT_TYPES

DOCS = Path(__file__).resolve().parents[2] / "docs"
AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_the_published_file_is_the_generated_schema():
    assert (DOCS / "rules.schema.json").read_text(encoding="utf-8") == schema_text(), (
        "regenerate it: treue rules schema --output docs/rules.schema.json"
    )


def test_the_schema_is_well_formed_and_names_what_the_domain_reads():
    schema = json.loads(schema_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["format"] == {"const": "treue.rules/1"}
    defs = schema["$defs"]
    assert defs["rule"]["required"] == ["id", "trigger", "effects"]
    assert set(defs["rule"]["properties"]) == set(d.RULE_FIELDS)
    assert set(defs["campaign"]["properties"]) == set(d.CAMPAIGN_FIELDS)
    assert defs["effect"]["properties"]["type"]["enum"] == list(EFFECT_TYPES)
    for kind in EFFECT_TYPES:
        assert defs[f"effect_{kind}"]["properties"]["type"] == {"const": kind}
    refs = re.findall(r'"\$ref": "#/\$defs/([a-z_]+)"', schema_text())
    assert refs and set(refs) <= set(defs)  # every reference resolves
    assert all(value.get("additionalProperties") is False for key, value in defs.items() if key != "effect")


def parse(example: dict[str, Any]) -> None:
    if "format" in example:
        rules = [d.parse_rule(r, currency="EUR", valid_from=AT, location=f"rules[{i}]")
                 for i, r in enumerate(example.get("rules", []))]  # fmt: skip
        campaigns = [d.parse_campaign(c, timezone="Europe/Berlin", currency="EUR", valid_from=AT)
                     for c in example.get("campaigns", [])]  # fmt: skip
        d.RuleSet(rules, campaigns)
    elif "starts" in example:
        d.RuleSet((), [d.parse_campaign(example, timezone="Europe/Berlin", currency="EUR", valid_from=AT)])
    else:
        d.RuleSet([d.parse_rule(example, currency="EUR", valid_from=AT)])


def test_every_example_in_the_rules_documentation_passes_the_domain_parser():
    text = (DOCS / "rules.md").read_text(encoding="utf-8")
    examples = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]
    assert len(examples) >= 5
    names = set()
    for example in examples:
        parse(example)
        names.add(example.get("name", ""))
    assert {"Doppelte Punkte am Wochenende", "500 Bonuspunkte für die erste Bestellung in der App"} <= names
