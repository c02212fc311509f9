"""Hostile alert rules through the CLI: every malformed rule in a zones file is refused in one line naming the file,
the line and the rule, before any work; the inputs stay byte-identical and an earlier run's outputs untouched.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.test_zones_hostile import refused

GEOMETRY = "zones:\n  bay 3: [[0, 0], [50, 0], [50, 50]]\nlines:\n  door: [[10, 0], [10, 100]]\nrules:\n"


def _rule(text: str) -> str:
    """A zones file whose only rule, on line 6, is ``text``."""
    return GEOMETRY + f"  r: {text}\n"


# (the rule, words the error line must mention)
RULE_CASES = [
    pytest.param("pump", ["rule 'r' must be a mapping"], id="scalar"),
    pytest.param("[appears, pump]", ["must be a mapping"], id="list"),
    pytest.param("", ["must be a mapping"], id="null"),
    pytest.param("{zone: bay 3}", ["exactly one of appears, dwell, count, crosses"], id="no-kind"),
    pytest.param("{appears: pump, count: pump, at_least: 2}", ["exactly one"], id="two-kinds"),
    pytest.param("{alarm: pump}", ["unknown rule 'alarm'"], id="unknown-kind"),
    pytest.param("{apears: pump}", ["did you mean 'appears'"], id="misspelt-kind"),
    pytest.param("{appears: pump, zonee: bay 3}", ["unknown key 'zonee'", "did you mean 'zone'"], id="unknown-key"),
    pytest.param("{crosses: pump, line: door, zone: bay 3}", ["unknown key 'zone'"], id="zone-on-crosses"),
    pytest.param("{appears: pump, seconds: 5}", ["unknown key 'seconds'"], id="seconds-on-appears"),
    pytest.param("{appears: pump, line: door}", ["unknown key 'line'"], id="line-on-appears"),
    pytest.param("{appears: ''}", ["must name a class"], id="empty-class"),
    pytest.param("{appears: '   '}", ["must name a class"], id="blank-class"),
    pytest.param("{appears: [pump, person]}", ["must name a class"], id="class-list"),
    pytest.param("{appears: {a: 1}}", ["must name a class"], id="class-mapping"),
    pytest.param("{appears: infusion pump}", ["'infusion pump'", "not in the vocabulary"], id="class-unknown"),
    pytest.param("{appears: pmup}", ["did you mean 'pump'"], id="class-misspelt"),
    pytest.param("{appears: Pump}", ["not in the vocabulary"], id="class-other-case"),
    pytest.param("{dwell: pump, zone: bay 3}", ["needs 'seconds'"], id="dwell-no-seconds"),
    pytest.param("{dwell: pump, seconds: 5}", ["needs 'zone'"], id="dwell-no-zone"),
    pytest.param("{count: pump, zone: bay 3}", ["needs 'at_least'"], id="count-no-at-least"),
    pytest.param("{crosses: pump}", ["needs 'line'"], id="crosses-no-line"),
    pytest.param("{dwell: pump, zone: bay 3, seconds: .nan}", ["seconds", "number"], id="seconds-nan"),
    pytest.param("{dwell: pump, zone: bay 3, seconds: .inf}", ["seconds", "number"], id="seconds-inf"),
    pytest.param("{dwell: pump, zone: bay 3, seconds: -1}", ["-1 s", "0 or more"], id="seconds-negative"),
    pytest.param("{dwell: pump, zone: bay 3, seconds: ten}", ["seconds", "number"], id="seconds-text"),
    pytest.param("{dwell: pump, zone: bay 3, seconds: yes}", ["seconds", "number"], id="seconds-bool"),
    pytest.param("{dwell: pump, zone: bay 3, seconds: [5]}", ["seconds", "number"], id="seconds-list"),
    pytest.param("{appears: pump, cooldown: -0.5}", ["cooldown", "0 or more"], id="cooldown-negative"),
    pytest.param("{appears: pump, cooldown: .nan}", ["cooldown", "number"], id="cooldown-nan"),
    pytest.param("{appears: pump, cooldown: ~}", ["cooldown", "number"], id="cooldown-null"),
    pytest.param("{appears: pump, after_absence: -.inf}", ["after_absence", "number"], id="absence-minus-inf"),
    pytest.param("{appears: pump, after_absence: 1 minute}", ["after_absence", "number"], id="absence-with-unit"),
    pytest.param("{count: pump, zone: bay 3, at_least: 0}", ["at_least", "1 or more"], id="at-least-zero"),
    pytest.param("{count: pump, zone: bay 3, at_least: 2.5}", ["at_least", "whole number"], id="at-least-fraction"),
    pytest.param("{count: pump, zone: bay 3, at_least: -3}", ["at_least"], id="at-least-negative"),
    pytest.param("{count: pump, zone: bay 3, at_least: many}", ["at_least", "number"], id="at-least-text"),
    pytest.param("{count: pump, zone: bay 3, at_least: .inf}", ["at_least", "number"], id="at-least-inf"),
    pytest.param("{crosses: pump, line: door, direction: up}", ["direction", "in, out, any"], id="direction-up"),
    pytest.param("{crosses: pump, line: door, direction: IN}", ["direction"], id="direction-capitalised"),
    pytest.param("{crosses: pump, line: door, direction: [in]}", ["direction"], id="direction-list"),
    pytest.param("{dwell: pump, zone: bay 4, seconds: 5}", ["zone 'bay 4'", "did you mean 'bay 3'"], id="zone-unknown"),
    pytest.param("{dwell: pump, zone: [bay 3], seconds: 5}", ["zone ''", "not defined"], id="zone-a-list"),
    pytest.param("{dwell: pump, zone: door, seconds: 5}", ["zone 'door'", "not defined"], id="zone-names-a-line"),
    pytest.param("{crosses: pump, line: bay 3}", ["line 'bay 3'", "not defined"], id="line-names-a-zone"),
    pytest.param("{crosses: pump, line: gate}", ["line 'gate'", "lines: door"], id="line-unknown"),
    pytest.param("{appears: !!python/name:os.system pump}", ["tag"], id="python-tag"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "mentions"), RULE_CASES)
def test_hostile_rule_is_refused_naming_its_line(
    tmp_path: Path, image: Path, capfd: pytest.CaptureFixture[str], rule: str, mentions: list[str]
) -> None:
    line = refused(tmp_path, image, capfd, _rule(rule), "--alerts", tmp_path / "outputs" / "a.jsonl")
    for mention in ["ward.yaml:6:", *mentions]:
        assert mention.lower() in line.lower(), f"{mention!r} not in {line!r}"


# (the rules section, words the error line must mention)
SECTION_CASES = [
    pytest.param("rules: [a, b]\n", ["rules must be a mapping"], id="rules-a-list"),
    pytest.param("rules: fire\n", ["rules must be a mapping"], id="rules-a-scalar"),
    pytest.param("rules:\n  r: {appears: pump}\n  R: {appears: person}\n", ["duplicate", "'R'"], id="duplicate-rule"),
    pytest.param("rules:\n  '': {appears: pump}\n", ["blank"], id="blank-rule-name"),
    pytest.param("rule:\n  r: {appears: pump}\n", ["unknown key 'rule'", "did you mean 'rules'"], id="misspelt-rules"),
]  # fmt: skip


@pytest.mark.parametrize(("section", "mentions"), SECTION_CASES)
def test_hostile_rules_section_is_refused(
    tmp_path: Path, image: Path, capfd: pytest.CaptureFixture[str], section: str, mentions: list[str]
) -> None:
    content = GEOMETRY.removesuffix("rules:\n") + section
    line = refused(tmp_path, image, capfd, content, "--alerts", tmp_path / "outputs" / "a.jsonl")
    for mention in mentions:
        assert mention.lower() in line.lower(), f"{mention!r} not in {line!r}"
