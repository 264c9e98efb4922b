"""A bounded schemathesis run against the API in-process (ASGI), with a valid reviewer token.

Every operation of the OpenAPI document except the two heavy ones (``POST
/recommendations/run`` runs the whole daily recommendation, ``GET /letters`` renders through
Chromium; both have their own tests) gets schema-conforming and schema-violating requests.
Expected: no server error (5xx), and every error in the documented ``{"error", "problems"}``
format. Bounded to a few hundred requests (well under 30 s on the shared 2 cores); seeded.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode

from dunning.api import ApiConfig, create_app, load_tokens
from engine.store import Store

from .test_api import READ, REVIEW

EXAMPLES_PER_OPERATION = 12
SKIPPED = {("POST", "/recommendations/run"), ("GET", "/letters/{invoice_id}")}


@pytest.fixture
def app(db, as_of):
    from dunning.ops.recommend import Recommender

    Recommender(Store(db)).run(as_of)  # recommendations, review items and audit records
    tokens = load_tokens(env=f"{READ}:read:dashboards,{REVIEW}:reviewer:alice")
    return create_app(ApiConfig(db=db, tokens=tokens, auth_backoff_s=0.0))


def test_schemathesis_finds_no_server_error(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations()]
    tested, failures = [], []
    for op in operations:
        if (op.method.upper(), op.path) in SKIPPED:
            continue
        tested.append(f"{op.method.upper()} {op.path}")
        strategy = st.one_of(op.as_strategy(GenerationMode.POSITIVE),
                             op.as_strategy(GenerationMode.NEGATIVE))

        @seed(0)
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), derandomize=True)
        @given(case=strategy)
        def check(case) -> None:  # noqa: ANN001
            response = case.call(headers={"Authorization": f"Bearer {REVIEW}"})
            where = f"{case.method} {case.formatted_path} -> {response.status_code}"
            if response.status_code >= 500:
                failures.append(f"{where}: {response.text[:200]}")
            elif response.status_code >= 400:
                body = response.json()
                if set(body) != {"error", "problems"}:
                    failures.append(f"{where}: error body {body!r}")

        check()
    assert len(tested) >= 12, tested
    assert not failures, "\n".join(failures[:20])
