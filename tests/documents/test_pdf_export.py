"""`flask billing export-pdfs`: one file per issued invoice (the stored document, byte for
byte), filters, a report of what was skipped and why, several processes, and a run that
is interrupted and resumed without ever leaving a partial file under a final name."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from pdf_support import document_row, line, make_customer, make_invoice, set_up_entity

from billing_app.documents.export import ALREADY_COMPLETE, DRAFT_REASON, safe_component
from billing_app.extensions import db
from billing_app.invoices import service as invoices

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def world(app, tenant):
    """Three issued invoices (open, paid, void) and a draft."""
    set_up_entity(app, tenant.account_id)
    customer_id = make_customer(app, tenant.account_id)
    ids = [
        make_invoice(app, tenant.account_id, customer_id, [line(f"Item {i}", "1", "1000")])
        for i in range(3)
    ]
    make_invoice(app, tenant.account_id, customer_id, [line("Draft", "1", "1")], finalize=False)
    with app.app_context():
        invoices.mark_paid(tenant.account_id, ids[1])
        invoices.void_invoice(tenant.account_id, ids[2])
        db.session.remove()
    return {"ids": ids, "customer_id": customer_id}


def export(runner, out: Path, *args: str):
    result = runner.invoke(
        args=["billing", "export-pdfs", "--out", str(out), "--processes", "1", *args]
    )
    return result, json.loads(result.stdout.strip().splitlines()[-1])


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_export_writes_the_stored_documents_and_resumes(app, tenant, world, runner, tmp_path):
    out = tmp_path / "pdfs"
    result, report = export(runner, out)
    assert result.exit_code == 0, result.output
    assert report["written"] == 3 and report["replaced"] == 0 and report["failed"] == []
    assert report["skipped"] == {DRAFT_REASON: 1}
    folder = out / str(tenant.account_id) / "default"
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == ["INV-000001.pdf", "INV-000002.pdf", "INV-000003.pdf"]
    for iid, path in zip(world["ids"], files, strict=True):
        row = document_row(app, iid)
        assert row["state"] == "stored" and path.read_bytes() == row["pdf"]
    # Progress and the human report go to stderr.
    assert "3/3" in result.stderr and "skipped 1: draft" in result.stderr

    result, report = export(runner, out)
    assert report["written"] == 0 and report["skipped"][ALREADY_COMPLETE] == 3

    # A damaged file is replaced; a temporary file of an interrupted run is removed.
    files[1].write_bytes(files[1].read_bytes()[:100])
    stray = folder / ".INV-000002.pdf.4242.part"
    stray.write_bytes(b"%PDF-partial")
    result, report = export(runner, out)
    assert report["replaced"] == 1 and report["skipped"][ALREADY_COMPLETE] == 2
    assert sha(files[1]) == document_row(app, world["ids"][1])["sha256"]
    assert not stray.exists()


def test_export_filters(app, tenant, other_tenant, world, runner, tmp_path):
    _, report = export(runner, tmp_path / "paid", "--status", "paid")
    assert report["written"] == 1 and report["skipped"] == {}
    _, report = export(runner, tmp_path / "fin", "--status", "finalized", "--status", "voided")
    assert report["written"] == 2
    tomorrow = (date.today() + timedelta(days=2)).isoformat()
    _, report = export(runner, tmp_path / "none", "--since", tomorrow)
    assert report["written"] == 0
    _, report = export(runner, tmp_path / "acct", "--account", str(tenant.account_id))
    assert report["written"] == 3
    assert (tmp_path / "acct" / "default" / "INV-000001.pdf").is_file()
    _, report = export(runner, tmp_path / "other", "--account", str(other_tenant.account_id))
    assert report["written"] == 0 and report["skipped"] == {}
    result = runner.invoke(
        args=["billing", "export-pdfs", "--out", str(tmp_path), "--account", "x"]
    )
    assert result.exit_code != 0 and "UUID" in result.output


def test_safe_file_names():
    assert safe_component("INV-000042") == "INV-000042"
    risky = safe_component("../2026/11/0001")
    assert (
        "/" not in risky and not risky.startswith(".") and risky != safe_component("2026_11_0001")
    )


def _cli(database_url: str, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "FLASK_APP": "billing_app",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "billing", "export-pdfs", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_export_on_two_processes(app, tenant, world, database_url, tmp_path):
    out = tmp_path / "pdfs"
    proc = _cli(database_url, "--out", str(out), "--processes", "2")
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["written"] == 3 and report["processes"] == 2, report
    for iid in world["ids"]:
        row = document_row(app, iid)
        assert row["state"] == "stored"
    written = sorted(out.rglob("*.pdf"))
    assert len(written) == 3
    assert {sha(p) for p in written} == {document_row(app, i)["sha256"] for i in world["ids"]}


@pytest.mark.slow
def test_interrupted_export_leaves_only_complete_files_and_resumes(
    app, tenant, database_url, tmp_path
):
    set_up_entity(app, tenant.account_id)
    customer_id = make_customer(app, tenant.account_id)
    ids = [
        make_invoice(app, tenant.account_id, customer_id, [line(f"Item {i}", "1", "100")])
        for i in range(12)
    ]
    out = tmp_path / "pdfs"
    proc = _cli(database_url, "--out", str(out), "--processes", "1")
    deadline = time.monotonic() + 120
    while not list(out.rglob("*.pdf")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["interrupted"] is True
    stored = {document_row(app, i)["sha256"] for i in ids} - {None}
    finals = list(out.rglob("*.pdf"))
    done = len(finals)
    # The signal may land between a file's rename and its count: at most one uncounted.
    assert report["written"] <= done <= report["written"] + 1
    assert 1 <= done < 12
    assert all(sha(p) in stored for p in finals)
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]

    proc = _cli(database_url, "--out", str(out), "--processes", "2")
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["written"] == 12 - done
    assert report["skipped"] == {ALREADY_COMPLETE: done}
    assert len(list(out.rglob("*.pdf"))) == 12
