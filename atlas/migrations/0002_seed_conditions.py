"""Seed the 26 conditions + "other" (atlas/taxonomy.py). Existing rows are left as curators edited them."""

from django.db import migrations


def seed_conditions(apps, schema_editor):
    from atlas.taxonomy import SEED_CONDITIONS

    Condition = apps.get_model("atlas", "Condition")
    for seed in SEED_CONDITIONS:
        Condition.objects.get_or_create(
            slug=seed.slug,
            defaults={"name": seed.name, "category": seed.category, "synonyms": list(seed.synonyms)},
        )


class Migration(migrations.Migration):
    dependencies = [("atlas", "0001_initial")]

    operations = [migrations.RunPython(seed_conditions, migrations.RunPython.noop)]
