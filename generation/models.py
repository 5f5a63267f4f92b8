"""GAN checkpoints, and the gap-filling jobs that sample from them."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.db import models
from django.db.models import Q


class GanCheckpoint(models.Model):
    """One generator checkpoint written by `train_gan`; at most one is active (used for sampling)."""

    path = models.CharField(max_length=500, unique=True, help_text="File path, relative to GAN_ROOT when inside it.")
    run = models.CharField(max_length=120, help_text="Training run directory name.")
    preset = models.CharField(max_length=20)
    step = models.PositiveIntegerField()
    metrics = models.JSONField(default=dict, blank=True, help_text="Loss terms at this step; scores when evaluated.")
    data_fingerprint = models.CharField(max_length=64)
    # What the generator was trained on, for the provenance teachers pass on: the sources of
    # the training images (name, count, procedural or clinical) and a one-line summary.
    data_description = models.JSONField(default=dict, blank=True)
    code_version = models.CharField(max_length=64, blank=True)
    # What planning needs from the file, copied here when the row is written so a web process
    # plans a job without torch (generation.gaps reads the file once for rows made before).
    vocabulary = models.JSONField(default=list, blank=True, help_text="The conditions the generator can draw, in code order.")
    image_size = models.PositiveIntegerField(null=True, blank=True, help_text="Side of the generated square, pixels.")
    crop_window = models.PositiveIntegerField(null=True, blank=True, help_text="ROI window the training crops were cut with (source pixels); empty when not recorded.")
    created_at = models.DateTimeField(auto_now_add=True)
    is_active = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True), name="one_active_gan_checkpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.run}@{self.step}{' (active)' if self.is_active else ''}"

    @property
    def file(self) -> Path:
        """The checkpoint file: `path` as stored, under GAN_ROOT when relative."""
        path = Path(self.path)
        return path if path.is_absolute() else Path(settings.GAN_ROOT) / path


class GenerationJob(models.Model):
    """A gap-filling run: the plan (cells and counts) and everything the pages show about it.

    Jobs are rows: the pages, the status endpoint and the command read this table, never
    Celery's results. `progress` is updated in the same transaction as the samples it counts.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="generation_jobs"
    )
    checkpoint = models.ForeignKey(GanCheckpoint, on_delete=models.PROTECT, related_name="jobs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    target = models.PositiveIntegerField(help_text="At least this many public images per cell, real ones counted first.")
    max_synthetic_share = models.FloatField(
        null=True, blank=True, help_text="Optional cap: synthetic images / all images of a cell, 0-1."
    )
    seed = models.PositiveIntegerField(help_text="Root of every sample's seed; a retry regenerates the same pixels.")
    batch_size = models.PositiveSmallIntegerField(default=8)
    vary_size = models.BooleanField(default=True, help_text="Scale the real boxes by a random factor per sample.")
    # [{"condition": slug, "skin_type": 1-6, "count": n, "real": r, "synthetic": s, "maps": m}, ...]
    plan = models.JSONField(default=list)
    planned_total = models.PositiveIntegerField(default=0)
    # {"<slug>:<skin>": {"stored": n, "closed": bool, "note": str}}
    progress = models.JSONField(default=dict, blank=True)
    stored_total = models.PositiveIntegerField(default=0)
    # Cell counts when the job ended: {"<slug>:<skin>": {"real": r, "synthetic": s}}
    after = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    log = models.JSONField(default=list, blank=True, help_text="[[ISO time, line], ...], the newest last.")
    # Who is working on the job now (host:pid) and until when, renewed every batch.
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"job {self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class SyntheticSample(models.Model):
    """One planned output of a job. The unique key (job, cell, sample index) makes a retried
    batch harmless: a sample that exists is never generated or stored again."""

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="samples")
    condition = models.ForeignKey("atlas.Condition", on_delete=models.PROTECT, related_name="+")
    skin_type = models.PositiveSmallIntegerField()
    sample_index = models.PositiveIntegerField()
    # SET_NULL: a curator may delete a poor image; the sample stays, so the job does not redo it.
    image = models.ForeignKey("atlas.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reused = models.BooleanField(default=False, help_text="The pixels were already in the catalogue (nothing new stored).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "condition", "skin_type", "sample_index"]
        # Granted to the Reviewers group (migration); staff without it cannot use the review queue.
        permissions = [("review_synthetic", "Can approve or reject synthetic images")]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "condition", "skin_type", "sample_index"], name="one_sample_per_job_cell_index"
            ),
            models.CheckConstraint(condition=Q(skin_type__gte=1, skin_type__lte=6), name="sample_skin_type_1_to_6"),
        ]

    def __str__(self) -> str:
        return f"job {self.job_id} {self.condition_id}:{self.skin_type}#{self.sample_index}"


class GapCellLock(models.Model):
    """The lock of one (condition x skin type) cell. A gap-filling batch counts the cell and
    stores its images while holding it (SELECT ... FOR NO KEY UPDATE on PostgreSQL), so two
    jobs filling the same cell stop at the target. It is its own row, not the Condition's:
    inserting any other image of the condition (which takes a key-share lock on the
    Condition row through the foreign key) never waits for gap filling."""

    condition = models.ForeignKey("atlas.Condition", on_delete=models.CASCADE, related_name="+")
    skin_type = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["condition", "skin_type"], name="one_lock_per_gap_cell")]

    def __str__(self) -> str:
        return f"cell lock {self.condition_id}:{self.skin_type}"


# --- Reader studies (generation/experiments): realism / relevance studies and public quizzes ----


class ReaderStudy(models.Model):
    """A blinded reader study over a fixed random draw of catalogue images (FIG. 10), or a
    public "which condition is this?" quiz on the same machinery."""

    class Kind(models.TextChoices):
        REALISM = "realism", "Realism and relevance (real or synthetic?)"
        QUIZ = "quiz", "Public quiz (which condition is this?)"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.REALISM)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    per_condition = models.PositiveSmallIntegerField(help_text="Realism: N real and N synthetic per condition. Quiz: N per condition and skin type.")
    skin_types = models.JSONField(default=list, blank=True, help_text="Fitzpatrick types drawn from; empty = all.")
    seed = models.PositiveIntegerField(default=0)
    is_open = models.BooleanField(default=True, help_text="Accepting answers.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class StudyItem(models.Model):
    """One image of a study. The truth is copied onto the item, so results survive a curator
    deleting the image; readers reach the pixels only through the opaque `token`."""

    study = models.ForeignKey(ReaderStudy, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    token = models.CharField(max_length=43, unique=True, help_text="Random; the image URL carries only this.")
    image = models.ForeignKey("atlas.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    condition = models.ForeignKey("atlas.Condition", on_delete=models.PROTECT, related_name="+")
    is_real = models.BooleanField()
    skin_type = models.PositiveSmallIntegerField(null=True, blank=True)
    choices = models.JSONField(default=list, blank=True, help_text="Quiz: the condition slugs offered, in order.")

    class Meta:
        ordering = ["study", "position"]
        constraints = [
            models.UniqueConstraint(fields=["study", "position"], name="one_study_item_per_position"),
            models.UniqueConstraint(fields=["study", "image"], name="one_study_item_per_image"),
        ]

    def __str__(self) -> str:
        return f"{self.study_id}#{self.position}"


class StudyInvite(models.Model):
    """A reader of a study: an account, a one-time link (only its SHA-256 is stored; the first
    browser that opens it keeps it), or an anonymous quiz session."""

    study = models.ForeignKey(ReaderStudy, on_delete=models.CASCADE, related_name="invites")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    label = models.CharField(max_length=120, blank=True, help_text="How results and CSV name this reader.")
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    session_hash = models.CharField(max_length=64, blank=True, editable=False, help_text="The browser session bound to it.")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["study", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "user"], condition=Q(user__isnull=False), name="one_invite_per_reader_account"),
            models.UniqueConstraint(fields=["study", "session_hash"], condition=~Q(session_hash=""), name="one_invite_per_session"),
            models.CheckConstraint(
                condition=Q(user__isnull=False) | Q(token_hash__isnull=False) | ~Q(session_hash=""), name="invite_has_a_reader"
            ),
        ]

    def __str__(self) -> str:
        return self.label or f"invite {self.pk}"


class ReaderAnswer(models.Model):
    """One reader's answer to one item: at most one (the unique key refuses a second)."""

    invite = models.ForeignKey(StudyInvite, on_delete=models.CASCADE, related_name="answers")
    item = models.ForeignKey(StudyItem, on_delete=models.CASCADE, related_name="answers")
    judged_real = models.BooleanField(null=True, blank=True, help_text="Realism: 'real or synthetic?'")
    shows_condition = models.BooleanField(null=True, blank=True, help_text="Realism: 'does this image show CONDITION?'")
    chosen = models.ForeignKey("atlas.Condition", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                               help_text="Quiz: the condition the reader chose.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["invite", "item__position"]
        constraints = [models.UniqueConstraint(fields=["invite", "item"], name="one_answer_per_reader_item")]

    def __str__(self) -> str:
        return f"{self.invite} / {self.item}"


# --- The teaching quiz (generation/experiments/quiz.py): rounds, spaced repetition ------------


class QuizRound(models.Model):
    """One learner's run through the standing quiz: a fresh draw of public images, balanced by
    skin type. Bound to an account, or (anonymous) to the browser session that started it."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    session_hash = models.CharField(max_length=64, blank=True, editable=False, help_text="SHA-256 of the anonymous session key.")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(user__isnull=False) | ~Q(session_hash=""), name="quiz_round_has_a_learner"),
        ]

    def __str__(self) -> str:
        return f"quiz round {self.public_id}"


class QuizRoundItem(models.Model):
    """One picture of a round and its answer (at most one: recorded by a conditional update, so a
    replayed form counts once). The truth is copied, so the round survives a deleted image."""

    round = models.ForeignKey(QuizRound, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveSmallIntegerField()
    token = models.CharField(max_length=43, unique=True, help_text="Random; the picture's URL carries only this.")
    image = models.ForeignKey("atlas.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    condition = models.ForeignKey("atlas.Condition", on_delete=models.PROTECT, related_name="+")
    skin_type = models.PositiveSmallIntegerField(null=True, blank=True)
    is_synthetic = models.BooleanField(default=False)
    is_review = models.BooleanField(default=False, help_text="A missed image that spaced repetition brought back.")
    choices = models.JSONField(default=list, help_text="The condition slugs offered, in order.")
    chosen = models.ForeignKey("atlas.Condition", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["round", "position"]
        constraints = [
            models.UniqueConstraint(fields=["round", "position"], name="one_quiz_item_per_position"),
            models.CheckConstraint(
                condition=Q(chosen__isnull=True, answered_at__isnull=True) | Q(chosen__isnull=False, answered_at__isnull=False),
                name="quiz_answer_has_a_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.round_id}#{self.position}"

    @property
    def is_answered(self) -> bool:
        return self.chosen_id is not None

    @property
    def is_correct(self) -> bool:
        return self.chosen_id == self.condition_id


class QuizCard(models.Model):
    """A missed image in a learner's spaced-repetition deck: the FSRS card (fsrs.Card.to_dict)
    and its due time, copied to a column so "what is due" is one indexed query."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    image = models.ForeignKey("atlas.Image", on_delete=models.CASCADE, related_name="+")
    card = models.JSONField(help_text="fsrs.Card.to_dict()")
    due = models.DateTimeField()
    reviews = models.PositiveIntegerField(default=0)
    lapses = models.PositiveIntegerField(default=0, help_text="Times answered wrong.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due", "id"]
        indexes = [models.Index(fields=["user", "due"])]
        constraints = [models.UniqueConstraint(fields=["user", "image"], name="one_quiz_card_per_learner_image")]

    def __str__(self) -> str:
        return f"card {self.user_id}:{self.image_id} due {self.due:%Y-%m-%d %H:%M}"


class QuizReview(models.Model):
    """Every answer of a signed-in learner (standing quiz or a staff quiz): the personal accuracy
    by skin type over time is read from these rows. The skin type is copied at answer time."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    image = models.ForeignKey("atlas.Image", null=True, on_delete=models.SET_NULL, related_name="+")
    skin_type = models.PositiveSmallIntegerField(null=True, blank=True)
    correct = models.BooleanField()
    reviewed_at = models.DateTimeField()

    class Meta:
        ordering = ["-reviewed_at", "-id"]
        indexes = [models.Index(fields=["user", "reviewed_at"])]

    def __str__(self) -> str:
        return f"review {self.user_id}:{self.image_id} {'right' if self.correct else 'wrong'}"
