"""Forms of the reader-study pages: create a study, invite readers, answer."""

from __future__ import annotations

from django import forms

from atlas.models import Condition
from atlas.skin import FITZPATRICK_TYPES, roman
from generation.experiments.reader_studies import MAX_PER_CONDITION, Unmatched
from generation.models import ReaderStudy


class StudyCreateForm(forms.Form):
    name = forms.CharField(max_length=120)
    kind = forms.ChoiceField(choices=ReaderStudy.Kind.choices, initial=ReaderStudy.Kind.REALISM)
    per_condition = forms.IntegerField(
        min_value=1, max_value=MAX_PER_CONDITION, initial=5, label="Images per condition",
        help_text="Realism: N real and N synthetic per condition. Quiz: N per condition and skin type.",
    )
    conditions = forms.ModelMultipleChoiceField(
        queryset=Condition.objects.public(), to_field_name="slug", required=False, label="Conditions",
        help_text="None selected = every condition with images.", widget=forms.SelectMultiple(attrs={"size": 8}),
    )
    skin_types = forms.TypedMultipleChoiceField(
        choices=[(str(n), f"Type {roman(n)}") for n in FITZPATRICK_TYPES], coerce=int, required=False,
        label="Only these skin types", widget=forms.CheckboxSelectMultiple,
    )
    seed = forms.IntegerField(min_value=0, required=False, help_text="Empty = a random draw.")
    # Sent only by the buttons under an "unmatched" warning; absent = warn and create nothing.
    unmatched = forms.ChoiceField(choices=Unmatched.choices, required=False)


class InviteForm(forms.Form):
    usernames = forms.CharField(required=False, label="Accounts (usernames, comma-separated)")
    links = forms.IntegerField(min_value=0, max_value=100, initial=0, required=False, label="One-time links")

    def usernames_list(self) -> list[str]:
        return [u.strip() for u in self.cleaned_data["usernames"].split(",") if u.strip()]


YES_NO = [("yes", "Yes"), ("no", "No")]


class RealismAnswerForm(forms.Form):
    item = forms.CharField(widget=forms.HiddenInput, max_length=64)
    origin = forms.ChoiceField(choices=[("real", "Real photograph"), ("synthetic", "Synthetic (generated)")],
                               widget=forms.RadioSelect, label="Is this image real or synthetic?")
    shows = forms.ChoiceField(choices=YES_NO, widget=forms.RadioSelect)


class QuizAnswerForm(forms.Form):
    item = forms.CharField(widget=forms.HiddenInput, max_length=64)
    chosen = forms.ChoiceField(choices=[], widget=forms.RadioSelect, label="Which condition is this?")

    def __init__(self, *args, choices: list[tuple[str, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["chosen"].choices = list(choices)
