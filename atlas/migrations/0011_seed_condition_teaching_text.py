"""Fill the seeded conditions' teaching text (atlas/condition_content.py).

Only empty fields are filled and look-alikes only added to a condition that lists none, so a
curator's edits stay; conditions that are not in the seed (or were renamed) are left alone.
"""

from django.db import migrations

FIELDS = {"summary": "summary", "description": "about", "appearance_light": "light_skin", "appearance_dark": "dark_skin",
          "see_clinician": "see_clinician"}  # fmt: skip


def seed_teaching_text(apps, schema_editor):
    from atlas.condition_content import CONDITION_TEXT

    Condition = apps.get_model("atlas", "Condition")
    by_slug = {c.slug: c for c in Condition.objects.filter(slug__in=list(CONDITION_TEXT))}
    for slug, text in CONDITION_TEXT.items():
        condition = by_slug.get(slug)
        if condition is None:
            continue
        changed = [field for field, key in FIELDS.items() if not getattr(condition, field).strip()]
        for field in changed:
            setattr(condition, field, getattr(text, FIELDS[field]))
        if not condition.further_reading:
            condition.further_reading = [{"title": title, "url": url} for title, url in text.reading]
            changed.append("further_reading")
        if changed:
            condition.save(update_fields=changed)
        if not condition.lookalikes.exists():
            condition.lookalikes.set([by_slug[s] for s in text.lookalikes if s in by_slug])


class Migration(migrations.Migration):
    dependencies = [("atlas", "0010_condition_teaching_text")]

    operations = [migrations.RunPython(seed_teaching_text, migrations.RunPython.noop)]
