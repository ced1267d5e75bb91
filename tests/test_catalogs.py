"""Every text the code marks for translation (Message(...) and N_(...)) is translated in
every catalog, with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
LOCALES_DIR = ROOT / "adapters" / "i18n" / "locales"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def marked_texts() -> set[str]:
    texts = set()
    for package in ("app", "application", "domain", "adapters"):
        for _, _, message, _, _ in extract_from_dir(
            ROOT / package,
            method_map=[("**.py", "python")],
            keywords={"Message": None, "N_": None},
        ):
            texts.add(message if isinstance(message, str) else message[0])
    return texts


@pytest.mark.parametrize("locale", ["uk", "vi"])
def test_catalog_translates_every_marked_text(locale):
    with (LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = {m.id: m.string for m in read_po(handle) if m.id and not m.fuzzy}
    texts = marked_texts()
    assert len(texts) > 50
    missing = sorted(t for t in texts if not catalog.get(t))
    assert missing == [], f"untranslated in {locale}: {missing}"
    for text in texts:
        assert set(PLACEHOLDER.findall(catalog[text])) == set(PLACEHOLDER.findall(text)), text
