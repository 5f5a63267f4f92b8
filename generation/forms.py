"""The "Fill gaps" form: which cells, what target. It builds a GapPolicy; services do the rest."""

from __future__ import annotations

from django import forms

from atlas.models import Condition
from atlas.skin import FITZPATRICK_TONE_WORDS, FITZPATRICK_TYPES, roman
from generation.gaps import MAX_TARGET, GapPolicy


class FillGapsForm(forms.Form):
    conditions = forms.ModelMultipleChoiceField(
        queryset=Condition.objects.all(),
        to_field_name="slug",
        required=False,
        label="Conditions",
        help_text="None selected = every condition.",
        widget=forms.SelectMultiple(attrs={"size": 10}),
    )
    skin_types = forms.TypedMultipleChoiceField(
        choices=[(str(n), f"{roman(n)} ({FITZPATRICK_TONE_WORDS[n][0]})") for n in FITZPATRICK_TYPES],
        coerce=int,
        label="Skin types (Fitzpatrick)",
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one skin type."},
    )
    target = forms.IntegerField(
        min_value=1, max_value=MAX_TARGET, initial=10, label="Target images per cell",
        help_text="Real images count first; only the difference is generated.",
    )
    max_synthetic_percent = forms.IntegerField(
        min_value=0, max_value=100, required=False, label="Cap on the synthetic share (%)",
        help_text="Optional. With a cap, a cell with no real image gets no synthetic images.",
    )

    def policy(self) -> GapPolicy:
        data = self.cleaned_data
        share = data.get("max_synthetic_percent")
        return GapPolicy(
            target=data["target"],
            conditions=tuple(c.slug for c in data["conditions"]),
            skin_types=tuple(sorted(data["skin_types"])),
            max_synthetic_share=None if share is None else share / 100,
        )
