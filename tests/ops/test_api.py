"""The REST API over real HTTP: uvicorn on 127.0.0.1, httpx client, real store."""

from __future__ import annotations

import shutil

import httpx
import pytest

from dunning.api import ApiConfig, create_app, load_tokens
from dunning.ops.creditor import EXAMPLE_PROFILE
from engine.errors import InputError
from engine.store import Store

READ = "read-token-0123456789abcdef"
REVIEW = "review-token-0123456789abcdef"


@pytest.fixture
def api(db, serve, tmp_path):
    token_file = tmp_path / "tokens.txt"
    token_file.write_text(f"# token role name\n{READ} read dashboards\n{REVIEW} reviewer alice\n")
    app = create_app(ApiConfig(db=db, tokens=load_tokens(token_file), max_body_bytes=4096))
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_come_from_file_or_env_and_are_checked(tmp_path):
    toks = load_tokens(env=f"{READ}:read,{REVIEW}:reviewer:bob")
    assert toks[REVIEW].role == "reviewer" and toks[REVIEW].name == "bob"
    bad = tmp_path / "t.txt"
    bad.write_text(f"{READ} admin\n")
    with pytest.raises(InputError, match="line 1"):
        load_tokens(bad)
    with pytest.raises(InputError, match="at least 16"):
        load_tokens(env="short:read")
    with pytest.raises(InputError, match="no API tokens"):
        load_tokens(env="")


def test_authentication_and_roles(api, as_of):
    assert api.get("/health").status_code == 200
    assert api.get("/rules").status_code == 401
    r = api.get("/rules", headers=auth("x" * 30))
    assert r.status_code == 401 and r.json()["error"] == "unknown token"
    assert api.get("/rules", headers={"Authorization": READ}).status_code == 401  # no scheme
    body = {"as_of": as_of.isoformat()}
    assert api.post("/recommendations/run", json=body, headers=auth(READ)).status_code == 403
    assert api.post("/recommendations/run", json=body, headers=auth(REVIEW)).status_code == 200


def test_recommendations_round_trip(api, as_of):
    run = api.post("/recommendations/run", json={"as_of": as_of.isoformat()},
                   headers=auth(REVIEW)).json()
    assert run["n_new"] == run["n_open"] > 0 and run["started_by"] == "alice"
    again = api.post("/recommendations/run", json={"as_of": as_of.isoformat()},
                     headers=auth(REVIEW)).json()
    assert again["n_new"] == 0  # idempotent
    listing = api.get("/recommendations", params={"as_of": as_of.isoformat()},
                      headers=auth(READ)).json()
    assert listing["count"] == run["n_open"]
    one = listing["recommendations"][0]
    got = api.get(f"/recommendations/{one['invoice_id']}", headers=auth(READ))
    assert got.status_code == 200 and got.json() == one
    assert api.get("/recommendations/NOPE", headers=auth(READ)).status_code == 404
    audit = api.get("/audit", params={"invoice_id": one["invoice_id"]},
                    headers=auth(READ)).json()
    assert audit["count"] == 1 and audit["records"][0]["payload"]["action"] == one["action"]
    assert api.get("/audit/verify", headers=auth(READ)).json()["ok"] is True


@pytest.mark.parametrize("body, field", [
    ({"as_of": "2024-13-40"}, "body.as_of"),
    ({"as_of": "2024-12-02", "extra": 1}, "body.extra"),
    ({}, "body.as_of"),
])
def test_malformed_bodies_get_clear_422(api, body, field):
    r = api.post("/recommendations/run", json=body, headers=auth(REVIEW))
    assert r.status_code == 422
    assert any(p.startswith(field) for p in r.json()["problems"]), r.json()


def test_invalid_json_and_ids(api):
    r = api.post("/recommendations/run", content=b"{not json",
                 headers={**auth(REVIEW), "content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "invalid request"
    r = api.get("/audit", params={"invoice_id": "x' OR 1=1 --"}, headers=auth(READ))
    assert r.status_code == 422
    assert api.get("/audit", headers=auth(READ)).status_code == 422  # needs an id


def test_oversize_requests_are_refused(api):
    big = {"facts": {"industry": "x" * 10_000}, "action": "letter", "as_of": "2026-03-02"}
    r = api.post("/rules/explain", json=big, headers=auth(READ))
    assert r.status_code == 413 and "at most 4096 bytes" in r.json()["problems"][0]

    def chunks():  # no content-length: streamed body counted as it arrives
        for _ in range(10):
            yield b"x" * 1000

    r = api.post("/rules/explain", content=chunks(),
                 headers={**auth(READ), "content-type": "application/json"})
    assert r.status_code == 413


def test_rule_explanations(api):
    rules = api.get("/rules", headers=auth(READ)).json()
    assert rules["count"] > 10 and len(rules["rules_hash"]) == 64
    rid = "practice.no_weekend"
    assert "citation" in api.get(f"/rules/{rid}", headers=auth(READ)).json()
    assert api.get("/rules/no.such.rule", headers=auth(READ)).status_code == 404
    facts = {"days_overdue": 20, "days_since_last_contact": 10_000, "contacts_last_7_days": 0,
             "calls_last_7_days": 0, "reminders_sent": 0, "final_notice_sent": False,
             "days_since_final_notice": 10_000, "disputed": False, "amount": 500.0,
             "currency": "EUR", "customer_type": "b2b", "jurisdiction": "DE", "region": "",
             "industry": "software", "is_weekend": True, "is_bank_holiday": False,
             "limitation_passed": False, "opted_out_email": False, "opted_out_phone": False,
             "opted_out_letter": False, "agency_consent": True, "reminder_fee_agreed": False,
             "milestone_reached": True}
    r = api.post("/rules/explain", json={"facts": facts, "action": "email",
                                         "as_of": "2026-03-07"}, headers=auth(READ)).json()
    assert r["status"] == "vetoed" and rid in [h["rule_id"] for h in r["fired"]]
    facts["is_weekend"] = False
    r = api.post("/rules/explain", json={"facts": facts, "action": "email",
                                         "as_of": "2026-03-02"}, headers=auth(READ)).json()
    assert r["status"] == "allowed"
    assert any(n["rule_id"] == rid for n in r["not_fired"])


def test_review_queue_over_http(api, db, as_of):
    from dunning.ops.audit import AuditLog
    from dunning.ops.review import ReviewItem, ReviewQueue

    with Store(db).connect() as con:
        rid = ReviewQueue(con, AuditLog(con, anchor=db.parent / "audit.anchor")).submit(
            [ReviewItem(as_of, "I00000001", "C000001", "agency",
                        ["gdpr.art22_agency_review"])])[0]
    listing = api.get("/review", headers=auth(READ)).json()
    assert [i["review_id"] for i in listing["items"]] == [rid]
    body = {"reason": "checked the file; customer unreachable"}
    assert api.post(f"/review/{rid}/approve", json=body, headers=auth(READ)).status_code == 403
    assert api.post(f"/review/{rid}/approve", json={"reason": ""},
                    headers=auth(REVIEW)).status_code == 422
    assert api.post("/review/R-0000000000/approve", json=body,
                    headers=auth(REVIEW)).status_code == 404
    ok = api.post(f"/review/{rid}/approve", json=body, headers=auth(REVIEW)).json()
    assert ok["status"] == "approved" and ok["reviewer"] == "alice"
    assert api.post(f"/review/{rid}/reject", json=body,
                    headers=auth(REVIEW)).status_code == 409
    shown = api.get(f"/review/{rid}", headers=auth(READ)).json()
    assert shown["decisions"][0]["personal"]["reason"] == body["reason"]
    assert api.get("/audit/verify", headers=auth(READ)).json()["ok"] is True


def test_openapi_docs(api):
    spec = api.get("/openapi.json").json()
    assert "/recommendations/{invoice_id}" in spec["paths"]
    assert api.get("/docs").status_code == 200


def test_letter_endpoint_renders_from_the_stored_state(api, db, as_of):
    shutil.copy(EXAMPLE_PROFILE, db.parent / "creditor.yaml")
    api.post("/recommendations/run", json={"as_of": as_of.isoformat()}, headers=auth(REVIEW))
    rows = api.get("/recommendations", params={"as_of": as_of.isoformat(), "action": "email"},
                   headers=auth(READ)).json()["recommendations"]
    inv = rows[0]["invoice_id"]
    r = api.get(f"/letters/{inv}", params={"as_of": as_of.isoformat(), "action": "email",
                                           "format": "txt"}, headers=auth(READ))
    assert r.status_code == 200 and "Nordlicht Maschinenbau GmbH" in r.text and inv in r.text
    r = api.get(f"/letters/{inv}", params={"as_of": as_of.isoformat(), "format": "docx"},
                headers=auth(READ))
    assert r.status_code == 422


@pytest.mark.slow
def test_predictions_with_a_payment_model(db, serve, tmp_path, as_of):
    from dunning.ops.recommend import invoice_state
    from engine.features import build_training_frame
    from engine.models import PaymentModel

    tables = Store(db).tables(as_of=as_of)
    tf = build_training_frame(tables, as_of)
    PaymentModel(n_estimators=30, random_state=0).fit(tf.X, tf.days_late, order=tf.ref_day) \
        .save(tmp_path / "model")
    app = create_app(ApiConfig(db=db, tokens=load_tokens(env=f"{READ}:read"),
                               model_dir=tmp_path / "model"))
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        open_ids = invoice_state(tables, as_of)["invoice_id"].tolist()
        body = {"invoice_ids": open_ids[:5], "as_of": as_of.isoformat()}
        r = c.post("/predictions", json=body, headers=auth(READ)).json()
        assert len(r["predictions"]) == 5 and r["model_hash"]
        for p in r["predictions"]:
            assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
            assert len(p["top_factors"]) == 3
        bad = c.post("/predictions", json={"invoice_ids": ["NOPE"], "as_of": "2024-12-02"},
                     headers=auth(READ))
        assert bad.status_code == 404
