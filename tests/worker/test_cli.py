"""`openmesh worker keygen|register|run` through worker.cli.main, with a fake coordinator."""

from __future__ import annotations

import functools
import json
import subprocess
import sys

import pytest

import worker.client
import worker.model
from backend.core.canonical import b64url_decode
from tests.worker.fakes import FakeCoordinator, assignment
from worker.cli import main, run_command
from worker.signing import load_key


@pytest.fixture
def key_file(tmp_path):
    return tmp_path / "keys" / "worker.key"


@pytest.fixture
def fake_coordinator(monkeypatch, key_file):
    """Route every CoordinatorClient the CLI builds to a fake coordinator that knows the CLI's key."""
    assert main(["keygen", "--key-file", str(key_file)]) == 0
    fake = FakeCoordinator(load_key(key_file).verify_key)
    original = worker.client.CoordinatorClient
    monkeypatch.setattr(
        worker.client, "CoordinatorClient", functools.partial(original, transport=fake.transport)
    )
    return fake


class TestKeygen:
    def test_prints_public_key_and_writes_0600(self, key_file, capsys):
        assert main(["keygen", "--key-file", str(key_file)]) == 0
        public_key = capsys.readouterr().out.strip()
        assert len(b64url_decode(public_key)) == 32
        assert (key_file.stat().st_mode & 0o777) == 0o600

    def test_refuses_to_overwrite_without_force(self, key_file, capsys):
        assert main(["keygen", "--key-file", str(key_file)]) == 0
        first = capsys.readouterr().out.strip()
        assert main(["keygen", "--key-file", str(key_file)]) == 1
        assert "already exists" in capsys.readouterr().err
        assert main(["keygen", "--key-file", str(key_file), "--force"]) == 0
        assert capsys.readouterr().out.strip() != first


class TestRegister:
    def test_prints_worker_id_and_saves_it(self, fake_coordinator, key_file, capsys, monkeypatch):
        monkeypatch.setenv("OPENMESH_PASSWORD", "pw")
        capsys.readouterr()
        code = main(
            [
                "register",
                "--coordinator",
                "http://coord",
                "--email",
                "w@x.io",
                "--name",
                "box-1",
                "--region",
                "eu",
                "--key-file",
                str(key_file),
                "--latency-ms",
                "40",
                "--max-concurrency",
                "8",
            ]
        )
        assert code == 0
        assert capsys.readouterr().out.strip() == "7"
        saved = json.loads(key_file.with_suffix(".json").read_text())
        assert saved["worker_id"] == 7 and saved["coordinator"] == "http://coord"
        _, body = next(r for r in fake_coordinator.requests if r[0] == "/workers/register")
        assert body["specs_json"]["estimated_latency_ms"] == 40
        assert body["specs_json"]["max_concurrency"] == 8
        assert body["specs_json"]["dtype"] == "fp32"
        assert "password" not in json.dumps(saved)

    def test_missing_credentials(self, fake_coordinator, key_file, capsys, monkeypatch):
        monkeypatch.delenv("OPENMESH_EMAIL", raising=False)
        monkeypatch.delenv("OPENMESH_PASSWORD", raising=False)
        assert (
            main(["register", "--coordinator", "http://coord", "--name", "x", "--key-file", str(key_file)])
            == 1
        )
        assert "--email" in capsys.readouterr().err


class TestRun:
    def test_burst_run_uses_saved_worker_id(self, fake_coordinator, key_file, monkeypatch, fake_encoder):
        monkeypatch.setenv("OPENMESH_EMAIL", "w@x.io")
        monkeypatch.setenv("OPENMESH_PASSWORD", "pw")
        assert (
            main(["register", "--coordinator", "http://coord", "--name", "box", "--key-file", str(key_file)])
            == 0
        )
        monkeypatch.setattr(worker.model, "load_encoder", lambda *a, **k: fake_encoder)
        fake_coordinator.batches = [[assignment(1), assignment(2)]]
        code = main(
            ["run", "--key-file", str(key_file), "--burst", "--wait-seconds", "0", "--log-format", "json"]
        )
        assert code == 0
        assert {s["assignment_id"] for s in fake_coordinator.submissions} == {1, 2}
        assert all(s["worker_id"] == 7 for s in fake_coordinator.submissions)

    def test_run_without_worker_id(self, key_file, capsys):
        main(["keygen", "--key-file", str(key_file)])
        assert main(["run", "--key-file", str(key_file), "--email", "a", "--password", "b"]) == 1
        assert "worker-id" in capsys.readouterr().err


def test_python_dash_m_entry_points():
    for module in ("worker", "worker.cli"):
        out = subprocess.run(
            [sys.executable, "-m", module, "run", "--help"], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        assert "--batch-size" in out.stdout


def test_run_command_builds_subprocess_argv():
    argv = run_command("http://c:8001", worker_id=3, backend="onnx", batch_size=8, threads=1)
    assert argv[:4] == [sys.executable, "-m", "worker", "run"]
    assert "--password" not in argv
