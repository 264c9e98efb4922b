"""The human review gate on every path (letter endpoint, letters, ERP export, record-action)
and the legal check of recorded actions with the reviewer's audited override (issue 21)."""

from __future__ import annotations

import datetime as dt
import shutil

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from dunning.api import LETTER_CSP, ApiConfig, create_app, load_tokens
from dunning.business.erp_export import export_recommendations
from dunning.cli import app
from dunning.ops.actions import record_action
from dunning.ops.audit import AuditLog
from dunning.ops.creditor import EXAMPLE_PROFILE
from dunning.ops.gate import ReviewRequired, legal_decisions
from dunning.ops.letters import Creditor, InterestRateUnknown, letters_for
from dunning.ops.recommend import LoadedPolicy, Recommender, invoice_state
from dunning.ops.review import ReviewQueue
from engine.contract import Action
from engine.ingest import ingest
from engine.store import Store
from simulations.policy import Policy

AS_OF = dt.date(2024, 12, 2)  # a Monday
SUNDAY = dt.date(2024, 12, 1)
READ = "rd-gate-Xq7vP2mLk9TzR4wN8sYb3HcJ6fUe1aGd"
REVIEW = "rv-gate-Bn5tW8qZr2LxM7kP4vYh9DsC3jFe6uAg"
runner = CliRunner()


class EscalateWhereAllowed(Policy):
    """Hand over to the agency whenever the rules allow it (raises review items)."""

    name = "escalate"

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return np.where(masks[:, Action.AGENCY], int(Action.AGENCY), int(Action.WAIT))


def _ingest(tables: dict, folder) -> object:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
        files.append(folder / f"{name}.csv")
    db = folder / "store" / "dunning.duckdb"
    assert ingest(files, db=db).quarantined == 0
    return db


@pytest.fixture(scope="module")
def gate_base(tmp_path_factory, make_ops_tables):
    """A store with three agency handovers awaiting review (A, B, C: email, letter, final
    notice sent before), a customer who opted out of email (D), a disputed open invoice
    (E) and a plain overdue one (F); the escalating policy's recommendations of AS_OF."""
    import pandas as pd

    tables = make_ops_tables(n_customers=40, n_invoices=400)
    probe = _ingest(tables, tmp_path_factory.mktemp("gate-probe"))
    state = invoice_state(Store(probe).tables(as_of=AS_OF), AS_OF)
    ok = state[(state["days_overdue"] > 70) & ~state["disputed_now"]
               & state["jurisdiction"].isin(["DE", "FR", "NL", "AT"])]
    # B's pre-agency letter is rendered once approved: a consumer in FR, NL or AT, whose
    # carried claims need no reference rate (FR, NL: no statutory consumer interest rule; AT:
    # a fixed 4 %); the packaged rate table has no rate in the synthetic 2024 and interest on
    # such a period is refused (fail closed, tests/ops/test_letters.py).
    ok = ok.drop_duplicates("customer_id")
    fixed = (ok["customer_type"].eq("b2c") & ok["jurisdiction"].isin(["FR", "NL", "AT"]))
    b = ok.loc[fixed, "invoice_id"].iloc[0]
    # C: a German business, whose carried interest needs the 2024 base rate (not in the table)
    c = ok.loc[ok["customer_type"].eq("b2b") & ok["jurisdiction"].eq("DE"), "invoice_id"].iloc[0]
    by_customer = [i for i in ok["invoice_id"] if i not in (b, c)]
    assert len(by_customer) >= 4, "the synthetic data has too few long-overdue invoices"
    a, d, e, f = by_customer[:4]
    cust = state.set_index("invoice_id")["customer_id"]
    customers, invoices = tables["customers"].copy(), tables["invoices"].copy()
    customers["opted_out_channels"] = np.where(customers["customer_id"] == cust[d], "email",
                                               None)
    at_e = invoices["invoice_id"] == e
    invoices.loc[at_e, "disputed"] = True
    invoices.loc[at_e, "dispute_opened"] = (AS_OF - dt.timedelta(days=10)).isoformat()
    history = [(inv, ch, AS_OF - dt.timedelta(days=n)) for inv in (a, b, c)
               for n, ch in ((60, "email"), (45, "letter"), (30, "final_notice"))]
    actions = pd.DataFrame([{"invoice_id": i, "action_date": day.isoformat(), "channel": ch,
                             "decided_by": "erp", "complaint": False}
                            for i, ch, day in history])
    db = _ingest({**tables, "customers": customers, "invoices": invoices,
                  "actions": actions}, tmp_path_factory.mktemp("gate"))
    store = Store(db)
    for check in legal_decisions(store, {i: Action.AGENCY for i in (a, b, c)}, AS_OF):
        assert check.decision.allowed and check.decision.needs_review, check.decision.status
    policy = LoadedPolicy(EscalateWhereAllowed(), "escalate", "test-escalate-v1")
    frame = Recommender(store, policy=policy).run(AS_OF).frame.set_index("invoice_id")
    for i in (a, b, c):
        assert (frame.at[i, "action"], frame.at[i, "status"]) == ("agency", "needs_review")
    shutil.copy(EXAMPLE_PROFILE, db.parent / "creditor.yaml")
    return db, dict(zip("ABCDEF", (a, b, c, d, e, f), strict=True))


@pytest.fixture
def gate(gate_base, tmp_path):
    """A fresh copy of the gate store for one test: ``(db, picks)``."""
    base, picks = gate_base
    db = tmp_path / "store" / "dunning.duckdb"
    db.parent.mkdir(parents=True)
    for f in base.parent.iterdir():
        shutil.copyfile(f, db.parent / f.name)
    return db, picks


def _review_id(db, invoice_id: str) -> str:
    with Store(db).connect() as con:
        return con.execute("SELECT review_id FROM ops_review_queue WHERE invoice_id = ? AND "
                           "action = 'agency'", [invoice_id]).fetchone()[0]


def _decide(db, invoice_id: str, approve: bool) -> str:
    rid = _review_id(db, invoice_id)
    with Store(db).connect() as con:
        ReviewQueue(con, AuditLog(con, anchor=db.parent / "audit.anchor")).decide(
            rid, approve, "alice", "checked the file and the debtor's letters")
    return rid


def _n_actions(db, invoice_id: str, channel: str) -> int:
    with Store(db).connect() as con:
        return con.execute("SELECT count(*) FROM actions WHERE invoice_id = ? AND channel = ?",
                           [invoice_id, channel]).fetchone()[0]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(gate, serve, tmp_path):
    db, picks = gate
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{READ} read dashboards\n{REVIEW} reviewer alice\n")
    app_ = create_app(ApiConfig(db=db, tokens=load_tokens(tokens)))
    with serve(app_) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, db, picks


# ------------------------------------------------------------------ letters
def test_letter_endpoint_renders_a_review_action_only_once_approved(api):
    client, db, p = api
    params = {"as_of": AS_OF.isoformat(), "action": "agency"}
    rid_a = _review_id(db, p["A"])
    r = client.get(f"/letters/{p['A']}", params=params, headers=auth(READ))
    assert r.status_code == 409
    assert rid_a in r.json()["error"] and "pending" in r.json()["error"]
    _decide(db, p["A"], approve=False)
    r = client.get(f"/letters/{p['A']}", params={**params, "format": "txt"},
                   headers=auth(READ))
    assert r.status_code == 409 and "rejected by alice" in r.json()["error"]
    _decide(db, p["B"], approve=True)
    for fmt, media in (("html", "text/html"), ("txt", "text/plain")):
        r = client.get(f"/letters/{p['B']}", params={**params, "format": fmt},
                       headers=auth(READ))
        assert r.status_code == 200 and p["B"] in r.text
        assert r.headers["content-type"].startswith(media)
        assert r.headers["content-security-policy"] == LETTER_CSP
        assert "default-src 'none'" in LETTER_CSP and "script" not in LETTER_CSP
        assert r.headers["x-content-type-options"] == "nosniff"
    assert "Nordlicht Maschinenbau GmbH" in r.text
    r = client.get(f"/letters/{p['B']}", params={**params, "format": "pdf"},
                   headers=auth(READ))
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert r.headers["content-security-policy"] == LETTER_CSP


def test_letters_for_needs_the_approval_too(gate):
    db, p = gate
    creditor = Creditor.from_yaml(EXAMPLE_PROFILE)
    with pytest.raises(ReviewRequired, match="pending") as info:
        letters_for(Store(db), AS_OF, creditor, actions={p["C"]: Action.AGENCY})
    assert info.value.review_id == _review_id(db, p["C"]) and info.value.status == "pending"
    _decide(db, p["B"], approve=True)
    made = letters_for(Store(db), AS_OF, creditor, actions={p["B"]: Action.AGENCY})
    assert [m.kind for m in made] == ["pre_agency"]


def test_letter_without_a_rate_for_its_interest_goes_to_review(gate):
    """C's pre-agency letter carries the final notice's interest, which needs the German
    base rate of 2024 (not in the packaged table). The daily run put it in the review queue
    with ``rates.missing_period`` and the reason; unapproved it is not rendered (the error
    names the missing rate and the review item); approved, it goes out without the interest
    claim and says the claim is reserved: never a wrong figure."""
    db, p = gate
    creditor = Creditor.from_yaml(EXAMPLE_PROFILE)
    with Store(db).connect() as con:
        queue = ReviewQueue(con, AuditLog(con, anchor=db.parent / "audit.anchor"))
        items = {i["invoice_id"]: i for i in queue.list()}
    assert "rates.missing_period" in items[p["C"]]["rule_ids"]
    assert "gdpr.art22_agency_review" in items[p["C"]]["rule_ids"]
    why = items[p["C"]]["explanation"]["reason"]["blocked_claims"]
    assert len(why) == 1 and "base_rate(DE)" in why[0] and "2024-" in why[0]
    assert "rates.missing_period" not in items[p["B"]]["rule_ids"]  # B claims a fixed rate
    _decide(db, p["B"], approve=True)
    with pytest.raises(ReviewRequired, match=r"base_rate\(DE\).*review R-\w+ .*pending"):
        letters_for(Store(db), AS_OF, creditor, actions={p["C"]: Action.AGENCY})
    refused: list[str] = []
    made = letters_for(Store(db), AS_OF, creditor, actions={p["C"]: Action.AGENCY,
                                                            p["B"]: Action.AGENCY},
                       refused=refused)
    assert [m.invoice_id for m in made] == [p["B"]]  # the other letter is rendered
    assert len(refused) == 1 and p["C"] in refused[0] and "pending" in refused[0]
    _decide(db, p["C"], approve=True)
    made = letters_for(Store(db), AS_OF, creditor, actions={p["C"]: Action.AGENCY})
    letter = made[0]
    assert letter.interest_withheld and letter.amounts["interest"] == 0.0
    assert letter.interest_periods == [] and "Zinsberechnung" not in letter.text
    assert "Verzugszinsen sind in diesem Schreiben nicht enthalten" in letter.text
    assert "vorbehalten" in letter.html
    a = letter.amounts
    assert a["total"] == pytest.approx(a["principal"] + a["fees"] + a["compensation"])


def test_an_approval_for_another_reason_does_not_drop_the_interest(gate):
    """Rejected: no letter at all; and an approved item whose rules do not include
    ``rates.missing_period`` never lets a letter go out without its interest."""
    db, p = gate
    creditor = Creditor.from_yaml(EXAMPLE_PROFILE)
    _decide(db, p["C"], approve=False)
    with pytest.raises(ReviewRequired, match="rejected"):
        letters_for(Store(db), AS_OF, creditor, actions={p["C"]: Action.AGENCY})
    with Store(db).connect() as con:  # an approval raised only for the handover itself
        con.execute("UPDATE ops_review_queue SET status = 'approved', rule_ids = ? "
                    "WHERE invoice_id = ?", ['["gdpr.art22_agency_review"]', p["C"]])
    with pytest.raises(InterestRateUnknown, match=r"base_rate\(DE\).*rates.missing_period"):
        letters_for(Store(db), AS_OF, creditor, actions={p["C"]: Action.AGENCY})


# ------------------------------------------------------------------ ERP export
def test_export_leaves_out_actions_whose_review_is_not_approved(gate, tmp_path):
    db, p = gate
    _decide(db, p["A"], approve=False)
    rid_b = _decide(db, p["B"], approve=True)
    out = tmp_path / "erp.csv"
    done = export_recommendations(db, out, AS_OF)
    import pandas as pd

    rows = pd.read_csv(out, dtype=str).set_index("invoice_id")
    assert p["A"] not in rows.index and p["C"] not in rows.index  # rejected, pending
    assert rows.at[p["B"], "dunning_action"] == "agency"
    assert rows.at[p["B"], "dunning_status"] == "approved"
    assert rows.at[p["B"], "dunning_review_id"] == rid_b
    held = {h["invoice_id"]: h["status"] for h in done.held}
    assert held[p["A"]] == "rejected" and held[p["C"]] == "pending" and p["B"] not in held
    assert "needs_review" not in set(rows["dunning_status"])  # nothing unapproved leaves
    r = runner.invoke(app, ["export", "--db", str(db), "--recommendations",
                            str(tmp_path / "cli.csv"), "--as-of", AS_OF.isoformat()])
    assert r.exit_code == 0 and "left out" in r.output and p["A"] in r.output


# ------------------------------------------------------------------ record-action
def _record(db, *args: str, env: dict | None = None):
    return runner.invoke(app, ["record-action", "--db", str(db), *args], env=env or {})


@pytest.mark.parametrize("pick, channel, day, expected", [
    ("A", "agency", AS_OF, "needs an approved human review"),  # pending
    ("D", "email", AS_OF, "practice.opt_out_email"),
    ("E", "agency", AS_OF, "practice.no_reminder_disputed"),
    ("F", "final_notice", SUNDAY, "practice.no_weekend (Company policy (field practice))"),
])
def test_record_action_refuses_what_a_recommendation_could_not_do(gate, pick, channel, day,
                                                                  expected):
    db, p = gate
    r = _record(db, "--invoice", p[pick], "--channel", channel, "--date", day.isoformat())
    text = " ".join(r.output.split())
    assert r.exit_code == 2, r.output
    assert text.startswith("error:") and expected in text and "Traceback" not in text
    assert _n_actions(db, p[pick], channel) == 0


def test_record_action_agency_after_approval_and_rejection(gate):
    db, p = gate
    rid = _decide(db, p["A"], approve=False)
    r = _record(db, "--invoice", p["A"], "--channel", "agency", "--date", AS_OF.isoformat())
    assert r.exit_code == 2 and rid in r.output and "rejected" in r.output
    _decide(db, p["B"], approve=True)
    r = _record(db, "--invoice", p["B"], "--channel", "agency", "--date",
                (AS_OF + dt.timedelta(days=1)).isoformat(), "--by", "review:alice")
    assert r.exit_code == 0, r.output
    assert _n_actions(db, p["B"], "agency") == 1


def test_record_action_raises_a_review_item_when_there_is_none(gate):
    db, p = gate
    store = Store(db)
    with store.connect() as con:  # an agency handover the daily run never proposed
        con.execute("DELETE FROM ops_review_queue WHERE invoice_id = ?", [p["C"]])
    with pytest.raises(ReviewRequired, match="raised") as info:
        record_action(store, p["C"], "agency", AS_OF)
    with store.connect() as con:
        item = ReviewQueue(con, AuditLog(con)).get(info.value.review_id)
    assert item["status"] == "pending" and "gdpr.art22_agency_review" in item["rule_ids"]
    assert _n_actions(db, p["C"], "agency") == 0


def test_reviewer_override_with_reason_is_audited(gate, tmp_path):
    db, p = gate
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{READ} read dashboards\n{REVIEW} reviewer alice\n")
    base = ["--invoice", p["F"], "--channel", "final_notice", "--date", SUNDAY.isoformat(),
            "--tokens", str(tokens), "--override-veto"]
    refused = [
        (["--reason", "debtor asked for it", "--reviewer", "dashboards"], READ,
         "only the 'reviewer' role"),
        (["--reason", "debtor asked for it", "--reviewer", "bob"], REVIEW, "belongs to"),
        (["--reason", "   ", "--reviewer", "alice"], REVIEW, "needs --reason"),
        (["--reason", "debtor asked for it", "--reviewer", "alice"], "", "DUNNING_TOKEN"),
        (["--reason", "debtor asked for it", "--reviewer", "alice"], "x" * 30,
         "not a known API token"),
    ]
    for extra, token, message in refused:
        r = _record(db, *base, *extra, env={"DUNNING_TOKEN": token})
        assert r.exit_code == 2 and message in " ".join(r.output.split()), r.output
    assert _n_actions(db, p["F"], "final_notice") == 0
    reason = "debtor asked on the phone for the notice before Monday's board meeting"
    r = _record(db, *base, "--reason", reason, "--reviewer", "alice",
                env={"DUNNING_TOKEN": REVIEW})
    assert r.exit_code == 0, r.output
    assert _n_actions(db, p["F"], "final_notice") == 1
    with Store(db).connect() as con:
        log = AuditLog(con, anchor=db.parent / "audit.anchor")
        over = log.records(invoice_id=p["F"], kind="override")
        action = log.records(invoice_id=p["F"], kind="action")
        assert log.verify().ok
    assert len(over) == 1 and over[0]["payload"]["reviewer"] == "alice"
    assert "practice.no_weekend" in {h["rule_id"] for h in over[0]["payload"]["fired_rules"]}
    assert over[0]["personal"]["reason"] == reason
    assert action[0]["payload"]["veto_overridden"] is True
    assert "ok" in runner.invoke(app, ["audit", "verify", "--db", str(db)]).output
    shown = " ".join(runner.invoke(app, ["audit", "show", "--db", str(db), "--invoice",
                                         p["F"]]).output.split())
    assert "veto overridden for final_notice" in shown and "by alice" in shown
    assert "practice.no_weekend" in shown and "board meeting" in shown


def test_an_override_does_not_replace_a_review(gate, tmp_path):
    db, p = gate
    _decide(db, p["A"], approve=False)
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{REVIEW} reviewer alice\n")
    r = _record(db, "--invoice", p["A"], "--channel", "agency", "--date", AS_OF.isoformat(),
                "--tokens", str(tokens), "--override-veto", "--reason", "urgent",
                "--reviewer", "alice", env={"DUNNING_TOKEN": REVIEW})
    assert r.exit_code == 2 and "rejected" in r.output
    assert _n_actions(db, p["A"], "agency") == 0


def test_record_over_the_api_reviewer_override_only(api):
    client, db, p = api
    body = {"invoice_id": p["F"], "channel": "final_notice",
            "action_date": SUNDAY.isoformat()}
    assert client.post("/actions", json=body, headers=auth(READ)).status_code == 403
    r = client.post("/actions", json=body, headers=auth(REVIEW))
    assert r.status_code == 409 and "practice.no_weekend" in r.json()["error"]
    r = client.post("/actions", json={**body, "override_veto": {"reason": "   "}},
                    headers=auth(REVIEW))
    assert r.status_code == 422
    assert _n_actions(db, p["F"], "final_notice") == 0
    r = client.post("/actions", json={**body, "override_veto": {"reason": "debtor asked"}},
                    headers=auth(REVIEW))
    assert r.status_code == 200 and r.json()["recorded"] is True
    audit = client.get("/audit", params={"invoice_id": p["F"]}, headers=auth(READ)).json()
    kinds = [x["kind"] for x in audit["records"]]
    assert "override" in kinds and client.get("/audit/verify",
                                              headers=auth(READ)).json()["ok"] is True
