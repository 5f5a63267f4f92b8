"""Seed the default dataset-label -> condition mappings (atlas/importers/mappings.py).

Existing rows are left as curators edited them; labels whose condition is missing are skipped.
"""

from django.db import migrations


def seed_label_mappings(apps, schema_editor):
    from atlas.importers.mappings import DEFAULT_LABEL_MAPPINGS

    Condition = apps.get_model("atlas", "Condition")
    ConditionLabelMapping = apps.get_model("atlas", "ConditionLabelMapping")
    conditions = {condition.slug: condition for condition in Condition.objects.all()}
    for dataset, mapping in DEFAULT_LABEL_MAPPINGS.items():
        for label, slug in mapping.items():
            if slug in conditions:
                ConditionLabelMapping.objects.get_or_create(
                    dataset=dataset, label=" ".join(label.strip().lower().split()), defaults={"condition": conditions[slug]}
                )


class Migration(migrations.Migration):
    dependencies = [("atlas", "0002_seed_conditions")]

    operations = [migrations.RunPython(seed_label_mappings, migrations.RunPython.noop)]
