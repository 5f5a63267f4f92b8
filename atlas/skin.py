"""Skin-tone scales: Fitzpatrick I-VI and the Monk Skin Tone scale (1-10).

Names and phrasings here are shared by pages, search captions and importers.
"""

from __future__ import annotations

FITZPATRICK_TYPES = (1, 2, 3, 4, 5, 6)
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI"}
FITZPATRICK_CHOICES = [(n, f"Type {ROMAN[n]}") for n in FITZPATRICK_TYPES]
MONK_CHOICES = [(n, f"Monk {n}") for n in range(1, 11)]

# Swatch colours for pages (approximate, for orientation only).
FITZPATRICK_SWATCH = {
    1: "#f6d7c3",
    2: "#eac0a1",
    3: "#d49e7a",
    4: "#a8734f",
    5: "#7a4e31",
    6: "#4a2f20",
}

# Plain-language tone words, used in captions and matched in free-text queries.
FITZPATRICK_TONE_WORDS = {
    1: ("very light", "very fair", "pale"),
    2: ("light", "fair"),
    3: ("light brown", "medium light", "olive"),
    4: ("moderate brown", "medium", "tan"),
    5: ("dark brown", "dark"),
    6: ("very dark", "deeply pigmented", "black"),
}


def roman(fitzpatrick_type: int | None) -> str:
    return ROMAN.get(fitzpatrick_type, "unknown") if fitzpatrick_type else "unknown"


def parse_fitzpatrick(value: object) -> int | None:
    """Read a Fitzpatrick type written as 1-6, "I".."VI", "FST3" or "type iv"; None when unknown.

    Raises ValueError on anything that is neither a type nor a recognised "unknown".
    """
    if value is None:
        return None
    text = str(value).strip().upper()
    if text in {"", "-1", "NONE", "NONE_SELECTED", "UNKNOWN", "NAN", "NA", "N/A"}:
        return None
    for prefix in ("FST", "TYPE", "FITZPATRICK"):
        if text.startswith(prefix):
            text = text[len(prefix) :].strip(" _-")
    if text.endswith(".0"):
        text = text[:-2]
    if text.isdigit() and int(text) in FITZPATRICK_TYPES:
        return int(text)
    for number, numeral in ROMAN.items():
        if text == numeral:
            return number
    raise ValueError(f"not a Fitzpatrick type: {value!r}")
