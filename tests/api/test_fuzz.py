"""Property-based fuzzing of every operation against the OpenAPI schema (schemathesis, in-process).

Every response must be documented (status, content type, headers, body schema) and none may be
a server error. Runs as staff so writes are exercised too; a bounded number of examples per
operation keeps the run short.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import token_for

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

MAX_EXAMPLES = 15  # per operation and phase: enough to find the cracks, short enough for CI

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass
class Fuzzing:
    token: str
    known: dict[str, dict[str, object]]  # path template -> path parameters of existing objects
    calls: itertools.count

    def aim(self, case) -> None:
        """Every other case addresses objects that exist, so more than the 404 branch is exercised."""
        known = self.known.get(case.path)
        if known and next(self.calls) % 2 == 0:
            case.path_parameters = dict(known)


@pytest.fixture
def wsgi_keeps_the_test_connection():
    """Requests go through the real WSGI handler, which closes the database connection after
    each one; on PostgreSQL that would end the test's transaction (Django's test client
    disconnects the same handlers)."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzzing(catalogue, gan_checkpoint, settings, wsgi_keeps_the_test_connection) -> Fuzzing:
    from django.contrib.auth.models import User

    from atlas.api.exports import export_job_run
    from atlas.filters import ImageFilters
    from atlas.models import ExportJob
    from generation.models import GenerationJob

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {key: "100000/min" for key in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]},
    }
    token = token_for("Fuzzer", User.objects.create_user("fuzzer", is_staff=True))
    export = ExportJob.objects.create(filters=ImageFilters(conditions=("tinea",)).as_dict())
    export_job_run(job_id=export.pk)
    job = GenerationJob.objects.create(checkpoint=gan_checkpoint, target=1, seed=1, plan=[])
    image = {"public_id": str(catalogue[0].public_id)}
    known = {
        "/api/v1/images/{public_id}/": image,
        "/api/v1/similar/{public_id}/": image,
        "/api/v1/exports/{public_id}/": {"public_id": str(export.public_id)},
        "/api/v1/exports/{public_id}/download/": {"public_id": str(export.public_id)},
        "/api/v1/conditions/{slug}/": {"slug": "melanoma"},
        "/api/v1/generation/jobs/{id}/": {"id": job.pk},
        "/api/v1/generation/jobs/{id}/cancel/": {"id": job.pk},
    }
    return Fuzzing(token=token, known=known, calls=itertools.count())


def _load_schema():
    from atlas.wsgi import application

    # Loaded at collection time through the WSGI app itself: the schema under test is the served one.
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


schema = _load_schema()


@schema.parametrize()
@hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_to_the_schema(case, fuzzing):
    fuzzing.aim(case)
    case.call_and_validate(headers={"Authorization": f"Bearer {fuzzing.token}"}, checks=CHECKS)
