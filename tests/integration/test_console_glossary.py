"""docs/glossary.md and the console's catalogue say the same words, each state, reason, role
and kind has one word in each language, and no code the console shows is left untranslated."""

from __future__ import annotations

import re
from pathlib import Path

from interlink.config import Contact
from interlink.features.incidents.service import SEVERITIES, STATUSES
from interlink.model import DeadReason, HoldReason, Status
from interlink.web.console.i18n import EN, TERMS, ZH, term

GLOSSARY = Path(__file__).parents[2] / "docs" / "glossary.md"
ROW = re.compile(r"^\| `([a-z_]+)` \| ([^|]+) \| ([^|]+) \| [^|]+ \|$")
HEADING = re.compile(r"^## .*\(`([a-z]+)`\)$")


def glossary() -> dict[str, dict[str, tuple[str, str]]]:
    found: dict[str, dict[str, tuple[str, str]]] = {}
    group = None
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        heading = HEADING.match(line)
        if heading:
            group = heading.group(1)
            found[group] = {}
        row = ROW.match(line)
        if row and group:
            found[group][row.group(1)] = (row.group(2).strip(), row.group(3).strip())
    return found


def test_the_glossary_page_and_the_catalogue_agree() -> None:
    assert glossary() == TERMS


def test_each_code_the_console_shows_has_a_word_in_both_languages() -> None:
    shown = {
        "status": [s.value for s in Status],
        "reason": [r.value for r in HoldReason] + [r.value for r in DeadReason],
        "role": ["viewer", "operator", "admin", *Contact.model_fields["role"].annotation.__args__],
        "severity": list(SEVERITIES),
        "incident": list(STATUSES),
        "window": ["scheduled", "active", "ended", "cancelled"],
        "event": ["circuit_opened", "circuit_closed", "delivery_rejected", "delivery_gave_up"],
    }
    for group, codes in shown.items():
        for code in codes:
            assert code in TERMS[group], (group, code)
            assert term("zh-CN", group, code) != code, (group, code)
            assert re.search(r"[\u4e00-\u9fff]", term("zh-CN", group, code)), (group, code)


def test_the_words_that_misled_are_apart() -> None:
    assert ZH["held"] == ZH["state.held"] == "挂起"
    assert "暂停" not in ZH["held"] and ZH["pause"] == ZH["noun.pause"] == "暂停"
    assert ZH["nav.incidents"] == ZH["noun.incident"] == "故障单"
    assert ZH["events"] == ZH["noun.event"] == "事件记录"
    assert "事件" not in ZH["incidents.register"] and "事件" not in ZH["overview.incidents"]
    assert ZH["dead"] == "死信" and ZH["state.failing"] == "出错"
    # one word per code: no two reasons, and no two states of a delivery, share a word
    for group in ("status", "reason", "outcome", "severity", "incident", "window"):
        words = [zh for _, zh in TERMS[group].values()]
        assert len(set(words)) == len(words), group
    assert set(EN) == set(ZH)
