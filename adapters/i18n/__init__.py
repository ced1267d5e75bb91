"""Message catalogs (gettext .po files read with Babel) for English, Ukrainian and Vietnamese.

The msgid of every catalog entry is the English text, so English needs no catalog and a text
missing from a catalog falls back to English rather than to a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

from domain.messages import DEFAULT_LOCALE, Message

LOCALES = ("en", "uk", "vi")


def N_(text: str) -> str:
    """Marks a text for the catalogs (babel extracts `N_` and `Message`) without translating it."""
    return text


_DIR = Path(__file__).parent / "locales"


class Catalogs:
    """Translates texts and formats their `{name}` placeholders."""

    def __init__(self, directory: Path = _DIR, locales: tuple[str, ...] = LOCALES) -> None:
        self.locales = locales
        self._texts = {locale: _load(directory, locale) for locale in locales}

    def gettext(self, text: str, locale: str) -> str:
        return self._texts.get(locale, {}).get(text) or text

    def render(self, message: Message | str, locale: str, **params: Any) -> str:
        if isinstance(message, Message):
            text, params = message.text, {**message.params, **params}
        else:
            text = message
        translated = self.gettext(text, locale)
        return translated.format_map(_Defaulting(params)) if params else translated


class _Defaulting(dict):
    # A translator's typo in a placeholder must not turn a message into a server error.
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@cache
def _load(directory: Path, locale: str) -> Mapping[str, str]:
    if locale == DEFAULT_LOCALE:
        return {}
    path = directory / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    # A plural entry (tuple id, list of strings) is never looked up: texts here are singular.
    return {
        m.id: m.string
        for m in catalog
        if isinstance(m.id, str) and isinstance(m.string, str) and m.id and m.string and not m.fuzzy
    }
