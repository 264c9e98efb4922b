"""Four-eyes approval of rule changes: a team's rule file is used only once a second person
with the ``legal`` role approved it.

Layout next to the store (``<store folder>/rules/``)::

    pending/<sha256>/<name>.yaml   a proposed file, byte for byte
    pending/<sha256>/proposal.json who proposed it, when, the file name and its sha256, the
                                   sha256 of the file it replaces
    approved/<name>.yaml           the team files in force (each replaces the packaged file
                                   of the same name, ``legal_rules.loader.layered_files``)
    approved.json                  manifest: name -> sha256, and who approved which, when, why

:func:`rules_in_force` is what ``recommend``, the legal gate, letters and the API load: the
packaged rules plus the approved files, each checked against the manifest's sha256. A file
in ``approved/`` that is not in the manifest or differs from its approved bytes stops every
decision (fail closed) instead of being used. Proposals and approvals are audit records of
kind ``rules`` (who, when, why, file sha256, resulting rule-set hash).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import InputError
from engine.files import atomic_write_text

LEGAL_ROLE = "legal"
MANIFEST = "approved.json"
PROPOSAL = "proposal.json"


def rules_area(store_path: Path) -> Path:
    """``<store folder>/rules``: pending and approved rule files of this store."""
    return Path(store_path).parent / "rules"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _manifest(area: Path) -> dict[str, Any]:
    path = area / MANIFEST
    if not path.is_file():
        return {"files": {}, "approvals": []}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: unreadable approval manifest ({exc.msg}); "
                         "no team rules are used until it is repaired") from None


def approved_files(store_path: Path) -> list[Path]:
    """The approved team rule files, each verified against its approved sha256.

    Raises :class:`InputError` (every decision then stops: fail closed) when a file was
    changed, added or removed in ``approved/`` outside ``dunning rules approve``.
    """
    area = rules_area(store_path)
    approved = _manifest(area)["files"]
    folder = area / "approved"
    present = {p.name for p in folder.glob("*.y*ml")} if folder.is_dir() else set()
    problems = [f"{folder / n}: not approved (use `dunning rules propose` and `approve`)"
                for n in sorted(present - set(approved))]
    problems += [f"{folder / n}: approved but missing" for n in sorted(set(approved) - present)]
    for name in sorted(present & set(approved)):
        if file_sha256(folder / name) != approved[name]:
            problems.append(f"{folder / name}: changed after its approval (sha256 "
                            f"{approved[name][:12]} approved); propose and approve it again")
    if approved and not problems:
        problems += _unaudited(store_path, approved)
    if problems:
        raise InputError("rules not in force, no decision is made: " + "; ".join(problems))
    return [folder / n for n in sorted(approved)]


def _unaudited(store_path: Path, approved: dict[str, str]) -> list[str]:
    """Manifest entries that are not the latest approval in the audit chain.

    The manifest is a plain file; the approvals are records of the keyed chain (whoever
    forges one without the key fails ``dunning audit verify``), so an edited manifest that
    names a file nobody approved is caught here.
    """
    import duckdb

    from engine.store import Store

    try:
        with Store(store_path).connect() as con:
            rows = con.execute("SELECT payload FROM ops_audit_log WHERE kind = 'rules' "
                               "ORDER BY seq").fetchall()
    except duckdb.CatalogException:
        rows = []
    latest: dict[str, str] = {}
    for (payload,) in rows:
        rec = json.loads(payload)
        if rec.get("event") == "approved":
            latest[rec["name"]] = rec["sha256"]
    return [f"{MANIFEST}: {name} (sha256 {sha[:12]}) is not the approved version in the "
            "audit log; propose and approve it again"
            for name, sha in sorted(approved.items()) if latest.get(name) != sha]


def rules_in_force(store_path: Path, extra: Path | None = None) -> Any:
    """The packaged rules with the approved team files (plus ``extra``, a proposed file,
    replacing its namesake); a ``legal_rules`` RuleSet. Raises ``RuleFileError`` / InputError."""
    from legal_rules.loader import layered_files, load_rules

    files = approved_files(store_path)
    if extra is not None:
        files = [f for f in files if f.name != extra.name] + [extra]
    return load_rules(layered_files(files, packaged=True))


@dataclass(frozen=True)
class Proposal:
    """A pending rule file: ``sha256`` of its bytes, the rule-set hash it would give."""

    sha256: str
    name: str
    proposed_by: str
    proposed_at: str
    ruleset_hash: str
    path: Path
    replaces_sha256: str = ""  # the file of that name in force when proposed ("": a new one)


def _audit(store: Any, payload: dict[str, Any], day: dt.date,
           personal: dict[str, Any] | None = None) -> int:
    from dunning.ops.audit import AuditRecord, append_audit, default_anchor

    with store.connect() as con:
        return append_audit(con, [AuditRecord("rules", payload, as_of=day, personal=personal)],
                            anchor=default_anchor(store.path))[0]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def in_force_file(store_path: Path, name: str) -> Path | None:
    """The rule file called ``name`` that decisions use now: the approved team file, else
    the packaged one, else None (a proposal of that name adds a new file)."""
    from legal_rules.loader import packaged_rules_dir

    approved = rules_area(store_path) / "approved" / name
    if name in _manifest(rules_area(store_path))["files"] and approved.is_file():
        return approved
    packaged = packaged_rules_dir() / name
    return packaged if packaged.is_file() else None


def propose(store: Any, file: Path, by: str) -> tuple[Proposal, int]:
    """Validate ``file`` with the rules in force, store it as pending, audit it.

    All or nothing: the file and its ``proposal.json`` are written to a staging folder that
    is renamed into ``pending/`` in one step, and removed again if the audit record cannot be
    written; a file already pending (same bytes) is refused. The record names the file, who
    and when, its sha256 and the sha256 of the file it replaces (``replaces_sha256``).
    Returns ``(proposal, audit seq)``. Raises ``RuleFileError`` when the file (together with
    the rules in force) does not load, ``InputError`` for the other refusals.
    """
    import shutil
    import tempfile

    file = Path(file)
    if not file.is_file() or file.suffix not in (".yaml", ".yml"):
        raise InputError(f"{file}: expected a rule file (*.yaml)")
    if not by.strip():
        raise InputError("--by: give the proposer's name")
    ruleset = rules_in_force(store.path, extra=file)
    raw = file.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    root = rules_area(store.path) / "pending"
    if (root / sha / PROPOSAL).is_file():
        held = json.loads((root / sha / PROPOSAL).read_text(encoding="utf-8"))
        raise InputError(f"{file.name}: this exact file (sha256 {sha[:12]}) is already "
                         f"pending, proposed by {held['proposed_by']} at {held['proposed_at']}")
    old = in_force_file(store.path, file.name)
    when = _now()
    meta = {"sha256": sha, "name": file.name, "proposed_by": by.strip(),
            "proposed_at": when.isoformat(), "ruleset_hash": ruleset.hash,
            "replaces_sha256": file_sha256(old) if old is not None else ""}
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root.parent))
    (staging / file.name).write_bytes(raw)
    (staging / PROPOSAL).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    try:
        staging.rename(root / sha)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        raise InputError(f"{file.name}: proposed at the same moment by someone else; "
                         "reload the pending changes") from None
    try:
        seq = _audit(store, {"event": "proposed", **meta}, when.date())
    except BaseException:
        shutil.rmtree(root / sha, ignore_errors=True)  # no pending file without its record
        raise
    return Proposal(**meta, path=root / sha / file.name), seq


def pending(store_path: Path) -> list[Proposal]:
    """The pending proposals, oldest first."""
    root = rules_area(store_path) / "pending"
    out = []
    for meta_file in sorted(root.glob(f"*/{PROPOSAL}")) if root.is_dir() else []:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        out.append(Proposal(**meta, path=meta_file.parent / meta["name"]))
    return sorted(out, key=lambda p: p.proposed_at)


def _find(store_path: Path, sha: str) -> Proposal:
    if len(sha) < 6:
        raise InputError(f"{sha!r}: give at least the first 6 characters of the sha256")
    hits = [p for p in pending(store_path) if p.sha256.startswith(sha.lower())]
    if len(hits) != 1:
        known = ", ".join(f"{p.sha256[:12]} ({p.name})" for p in pending(store_path))
        what = "no pending proposal" if not hits else "more than one pending proposal"
        raise InputError(f"{sha!r}: {what} with that hash; pending: {known or 'none'}")
    return hits[0]


def approve(store: Any, sha: str, who: Any, reason: str) -> tuple[Proposal, str, int]:
    """Put the pending file ``sha`` (a prefix is enough) in force.

    ``who``: the authenticated approver (``name``, ``role``). Refused when the role is not
    ``legal``, the approver proposed it, the reason is empty, the pending file was changed,
    or it no longer loads with the rules in force. Returns ``(proposal, rule-set hash now in
    force, audit seq)``.
    """
    prop = _find(store.path, sha)
    if who.role != LEGAL_ROLE:
        raise InputError(f"approve: the token's role is {who.role!r}; only the "
                         f"{LEGAL_ROLE!r} role approves rule changes")
    if who.name.strip().casefold() == prop.proposed_by.strip().casefold():
        raise InputError(f"approve: {who.name!r} proposed {prop.name}; a second person must "
                         "approve it (four eyes)")
    if not reason or not reason.strip():
        raise InputError("approve needs --reason TEXT (why; recorded in the audit log)")
    if file_sha256(prop.path) != prop.sha256:
        raise InputError(f"{prop.path}: changed since it was proposed; propose it again")
    ruleset = rules_in_force(store.path, extra=prop.path)
    area = rules_area(store.path)
    manifest = _manifest(area)
    (area / "approved").mkdir(parents=True, exist_ok=True)
    atomic_write_text(area / "approved" / prop.name, prop.path.read_bytes().decode("utf-8"))
    when = _now()
    record = {"event": "approved", "name": prop.name, "sha256": prop.sha256,
              "proposed_by": prop.proposed_by, "proposed_at": prop.proposed_at,
              "approved_by": who.name, "role": who.role, "approved_at": when.isoformat(),
              "reason": reason.strip(), "ruleset_hash": ruleset.hash}
    manifest["files"][prop.name] = prop.sha256
    manifest["approvals"].append(record)
    manifest["ruleset_hash"] = ruleset.hash
    atomic_write_text(area / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    # free text goes to the erasable personal part of the audit record, like a veto override's
    seq = _audit(store, {k: v for k, v in record.items() if k != "reason"}, when.date(),
                 personal={"reason": record["reason"]})
    for f in prop.path.parent.iterdir():
        f.unlink()
    prop.path.parent.rmdir()
    return prop, ruleset.hash, seq
