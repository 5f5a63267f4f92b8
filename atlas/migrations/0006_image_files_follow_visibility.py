"""Hidden images' files move under private/ (never served publicly), then a constraint keeps
file names and is_public in step (atlas/services/image_files.py).

Not atomic: each image is moved and committed on its own (copy, update the row, delete the
old files), so a migration stopped half-way keeps what it moved and a re-run goes on.
"""

import secrets
from pathlib import PurePosixPath

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import migrations, models, transaction

PRIVATE_PREFIX = "private/"


def _private_name(folder: str, old: str) -> str:
    token = secrets.token_hex(16)
    suffix = PurePosixPath(old).suffix or ".bin"
    return f"{PRIVATE_PREFIX}{folder}/{token[:2]}/{token}{suffix}"


def move_hidden_files(apps, schema_editor):
    Image = apps.get_model("atlas", "Image")
    hidden = Image.objects.filter(is_public=False).exclude(file__startswith=PRIVATE_PREFIX, thumbnail__startswith=PRIVATE_PREFIX)
    for image in hidden.iterator():
        old = [image.file.name, image.thumbnail.name]
        new = []
        for folder, name in zip(("images", "thumbnails"), old):
            if name.startswith(PRIVATE_PREFIX):
                new.append(name)
                continue
            with default_storage.open(name, "rb") as handle:
                new.append(default_storage.save(_private_name(folder, name), ContentFile(handle.read())))
        with transaction.atomic():
            Image.objects.filter(pk=image.pk).update(file=new[0], thumbnail=new[1])
        for name in old:
            if name not in new:
                default_storage.delete(name)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("atlas", "0005_condition_lay_phrases"),
    ]

    operations = [
        migrations.RunPython(move_hidden_files, migrations.RunPython.noop, elidable=False),
        migrations.AddConstraint(
            model_name="image",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("is_public", True),
                        models.Q(("file__startswith", "private/"), _negated=True),
                        models.Q(("thumbnail__startswith", "private/"), _negated=True),
                    ),
                    models.Q(("is_public", False), ("file__startswith", "private/"), ("thumbnail__startswith", "private/")),
                    _connector="OR",
                ),
                name="image_files_follow_visibility",
            ),
        ),
    ]
