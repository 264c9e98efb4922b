"""Fixtures of the workspace tests: a small store (the ops tests' deterministic tables, one
customer renamed to hostile HTML) with a payment model and one day of recommendations, the
real API + workspace app served by uvicorn on 127.0.0.1, and tokens for three roles."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from ..ops.conftest import AS_OF, _plant_actions, make_tables, running_server

READ = "rd-ws-Hq4tN8vBz1XkP6mW3yLc9RsD5jGf2uAe"
REVIEW = "rv-ws-Mv7pK2xQw5ZnT9bL4cYh8DsF1jRg6uEa"
LEGAL = "lg-ws-M3YuDG4KRvQ3dBz-ejfErDeGNCNLRlWY"  # lena: proposes rule files
LEGAL2 = "lg-ws-WGzjX8jRUWOw1noAV7yiWHzUdWKLXJ3i"  # otto: the second pair of eyes
HOSTILE = '<script>alert("x")</script> & <b>Co</b>'
HOSTILE_ID = "C000038"


def build_workspace_store(folder: Path) -> Path:
    """Ingest the tables (customer ``HOSTILE_ID`` named :data:`HOSTILE`), train a small
    payment model (30 trees, seeded) and run the day's recommendations; return the db path."""
    from dunning.ops.recommend import Recommender, load_payment_model
    from dunning.pipeline import demo_creditor_profile
    from engine.features import build_training_frame
    from engine.ingest import ingest
    from engine.models import PaymentModel
    from engine.store import Store

    tables = make_tables()
    customers = tables["customers"]
    customers.loc[customers["customer_id"] == HOSTILE_ID, "name"] = HOSTILE
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
        files.append(folder / f"{name}.csv")
    db = folder / "store" / "dunning.duckdb"
    assert ingest(files, db=db).quarantined == 0
    demo_creditor_profile(db.parent)
    store = Store(db)
    # two emails to the hostile customer: one known on the day, one after it (not shown)
    inv = tables["invoices"]
    mine = inv[(inv["customer_id"] == HOSTILE_ID) & (inv["due_date"] < "2024-11-01")]
    reminded = str(mine["invoice_id"].iloc[-1])
    _plant_actions(db, [(reminded, "email", AS_OF - dt.timedelta(days=5)),
                        (reminded, "email", AS_OF + dt.timedelta(days=3))], folder)
    tf = build_training_frame(store.tables(as_of=AS_OF), AS_OF)
    PaymentModel(n_estimators=30, random_state=0).fit(tf.X, tf.days_late, order=tf.ref_day) \
        .save(folder / "model")
    result = Recommender(store, model=load_payment_model(folder / "model")).run(AS_OF)
    assert result.review_ids, "the fixture needs at least one review item"
    return db


@pytest.fixture(scope="session")
def workspace_base(tmp_path_factory) -> Path:
    return build_workspace_store(tmp_path_factory.mktemp("workspace-base"))


@pytest.fixture
def workspace_db(workspace_base, tmp_path) -> Path:
    """A fresh copy of the base store (and its audit anchor) for one test."""
    target = tmp_path / "store" / "dunning.duckdb"
    shutil.copytree(workspace_base.parent, target.parent)
    return target


def make_workspace_app(db: Path, tmp_path: Path):  # noqa: ANN201
    from dunning.api import ApiConfig, create_app, load_tokens

    token_file = tmp_path / "tokens.txt"
    token_file.write_text(f"{READ} read dora\n{REVIEW} reviewer alice\n"
                          f"{LEGAL} legal lena\n{LEGAL2} legal otto\n")
    return create_app(ApiConfig(db=db, tokens=load_tokens(token_file)))


@pytest.fixture(scope="session")
def as_of() -> dt.date:
    return AS_OF


@pytest.fixture(scope="session")
def serve():
    return running_server


def decided_reviews(log) -> list[dict]:  # noqa: ANN001 - an AuditLog
    """The audit chain's review decisions (not the records of items being queued)."""
    return [r for r in log.records(kind="review") if "decision" in r["payload"]]
