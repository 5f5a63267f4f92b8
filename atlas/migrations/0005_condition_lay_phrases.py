"""Add the lay phrases search understands (atlas/taxonomy.py) to existing conditions.

Only adds synonyms a row lacks; curators' own edits stay.
"""

from django.db import migrations

LAY_PHRASES = {
    "melanoma": ["changing mole", "mole that changed", "mole that has changed"],
    "melanocytic-nevus": ["changing mole", "mole that changed", "mole that has changed"],
    "tinea-versicolor": ["white patches", "pale patches", "light patches"],
    "vitiligo": ["pale patches", "light patches"],
}


def add_lay_phrases(apps, schema_editor):
    Condition = apps.get_model("atlas", "Condition")
    for slug, phrases in LAY_PHRASES.items():
        condition = Condition.objects.filter(slug=slug).first()
        if condition is None:
            continue
        known = {s.casefold() for s in condition.synonyms}
        missing = [p for p in phrases if p.casefold() not in known]
        if missing:
            condition.synonyms = [*condition.synonyms, *missing]
            condition.save(update_fields=["synonyms"])


class Migration(migrations.Migration):
    dependencies = [("atlas", "0004_api_clients_tokens_exports")]

    operations = [migrations.RunPython(add_lay_phrases, migrations.RunPython.noop)]
