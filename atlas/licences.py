"""What each image licence allows, for licence-aware exports and the API's licence list.

The flags are our reading of each licence's terms, kept deliberately conservative: a use a
licence does not clearly allow counts as forbidden, and an unknown licence allows nothing
(its images are left out of exports and listed). The texts are short summaries written for
Atlas, each with the address of the full legal text; they are not the licences themselves.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Licence:
    id: str  # SPDX identifier, or LicenseRef-... for a dataset's own terms
    name: str
    url: str  # the full legal text
    redistribution: bool  # copies may be handed on (in an export zip)
    commercial: bool  # commercial use allowed
    derivatives: bool  # modified versions (crops, annotations, remixes) may be shared
    attribution: bool  # credit must be given
    share_alike: bool  # adaptations must carry the same licence
    summary: str
    short_name: str = ""  # how an attribution names it, e.g. "CC BY 4.0" (the name when empty)

    @property
    def text(self) -> str:
        """The file written into export zips."""
        return f"{self.name} ({self.id})\n\n{self.summary}\n\nFull legal text: {self.url}\n"

    def forbids(self, *, commercial: bool, derivatives: bool) -> str:
        """Why this licence does not allow the use (empty when it does)."""
        if not self.redistribution:
            return f"{self.id} does not allow redistribution; obtain the images from their source"
        if commercial and not self.commercial:
            return f"{self.id} does not allow commercial use"
        if derivatives and not self.derivatives:
            return f"{self.id} does not allow derivatives"
        return ""


def _cc(code: str, version: str, *, commercial: bool, derivatives: bool, share_alike: bool) -> Licence:
    words = {"BY": "Attribution", "NC": "NonCommercial", "ND": "NoDerivatives", "SA": "ShareAlike"}
    # The licences' own titles: 4.0 is "International", 3.0 the "Unported" suite.
    edition = {"4.0": "International", "3.0": "Unported"}[version]
    name = "Creative Commons " + "-".join(words[part] for part in code.split("-")) + f" {version} {edition}"
    terms = ["You may copy and redistribute the material in any medium or format"]
    terms.append("and use it commercially" if commercial else "for non-commercial purposes only")
    summary = " ".join(terms) + ". "
    if derivatives:
        summary += "You may adapt it (remix, transform, build upon it)"
        summary += ", but adaptations you share must carry the same licence. " if share_alike else ". "
    else:
        summary += "You may not share adapted material (crops, annotations, remixes). "
    summary += (
        "You must give appropriate credit (see attribution.txt), link to the licence and say whether changes "
        "were made. No additional restrictions may be applied."
    )
    return Licence(
        id=f"CC-{code}-{version}",
        name=name,
        short_name=f"CC {code} {version}",
        url=f"https://creativecommons.org/licenses/{code.lower()}/{version}/legalcode",
        redistribution=True,
        commercial=commercial,
        derivatives=derivatives,
        attribution=True,
        share_alike=share_alike,
        summary=summary,
    )


_TABLE = [
    Licence(
        id="CC0-1.0",
        name="CC0 1.0 Universal",
        url="https://creativecommons.org/publicdomain/zero/1.0/legalcode",
        redistribution=True,
        commercial=True,
        derivatives=True,
        attribution=False,
        share_alike=False,
        summary="The work is dedicated to the public domain: copy, modify and distribute it, even commercially, "
        "without asking permission. Credit is appreciated but not required.",
    ),
    *(
        _cc(code, version, commercial="NC" not in code, derivatives="ND" not in code, share_alike="SA" in code)
        for version in ("4.0", "3.0")
        for code in ("BY", "BY-SA", "BY-ND", "BY-NC", "BY-NC-SA", "BY-NC-ND")
    ),
    Licence(
        id="LicenseRef-DDI-Research-Use-Agreement",
        name="Diverse Dermatology Images (DDI) Research Use Agreement",
        url="https://ddi-dataset.github.io/",
        redistribution=False,
        commercial=False,
        derivatives=False,
        attribution=True,
        share_alike=False,
        summary="Each user must request the DDI images from Stanford and accept its research use agreement; "
        "the images may not be passed on to others.",
    ),
    Licence(
        id="LicenseRef-SCIN-Data-Use-License",
        name="SCIN Data Use License",
        url="https://github.com/google-research-datasets/scin",
        redistribution=False,
        commercial=False,
        derivatives=False,
        attribution=True,
        share_alike=False,
        summary="The SCIN images come with their own data use terms, which each user accepts at the source; "
        "Atlas does not pass them on.",
    ),
]

LICENCES: dict[str, Licence] = {licence.id: licence for licence in _TABLE}


def licence_get(licence_id: str) -> Licence | None:
    """The licence with this identifier (case-insensitive), or None when Atlas does not know it."""
    if licence_id in LICENCES:
        return LICENCES[licence_id]
    wanted = licence_id.strip().upper()
    return next((licence for key, licence in LICENCES.items() if key.upper() == wanted), None)


def licence_forbids(licence_id: str, *, commercial: bool, derivatives: bool) -> str:
    """Why an image under `licence_id` cannot go into an export for this use ("" = it can)."""
    licence = licence_get(licence_id)
    if licence is None:
        return f"unknown licence {licence_id or '(none)'}: its terms cannot be checked"
    return licence.forbids(commercial=commercial, derivatives=derivatives)
