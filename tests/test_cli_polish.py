"""Issue 9, items 14, 15, 16, 20: `check -o json` and JSON errors; history with its steps and
unknown environments refused; info's last operation started and finished; ISO 8601
timestamps; destroy repeatable and its leftovers naming the operation to resume; an `api`
endpoint that answers; NO_COLOR without any style; bytes progress of backups and restores."""

from __future__ import annotations

import io
import json
import re
import socket
import sys
import urllib.request
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.support import SMALL_MATRIX

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$")


def _small(project: Project) -> None:
    """One fast environment (supervisor, storage, config, nginx), destroyable without --force."""
    project.matrix.write_text(
        SMALL_MATRIX.replace("approval_required: true", "approval_required: false")
    )


def _json_error(result: object, code: int) -> dict[str, object]:
    """The one JSON line an error under `-o json` is, with stdout empty."""
    returncode, stdout, stderr = (getattr(result, k) for k in ("returncode", "stdout", "stderr"))
    assert returncode == code, (returncode, stdout, stderr)
    assert stdout == "", stdout
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    doc = json.loads(lines[0])
    assert isinstance(doc, dict) and list(doc) == ["error", "hint", "exit_code"], doc
    assert doc["exit_code"] == code
    return doc


# ---- 14: check -o json, errors as JSON ---------------------------------------------------


def test_check_has_a_json_document(project: Project) -> None:
    result = project.run("check", "-o", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["project"] == "sunday"
    assert doc["matrix"] == str(project.matrix)
    assert [e["name"] for e in doc["environments"]] == ["production", "staging", "development"]
    assert all(e["resources"] > 0 and e["services"] == 1 for e in doc["environments"])
    text = project.run("check")
    assert text.returncode == 0 and "3 environment(s)" in text.stdout


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["info", "no-such-env", "-o", "json"], 2, "no-such-env"),
        (["history", "developmnt", "-ojson"], 2, "did you mean 'development'"),
        (["plan", "Bad_Name", "--output=json"], 2, "invalid environment name"),
        (["history", "--limit", "0", "-o", "json"], 2, "--limit"),  # click's own usage error
        (["list", "--bogus", "-o", "json"], 2, "--bogus"),  # before -o was parsed
        (["backups", "list", "no-such-env", "-o", "json"], 2, "no-such-env"),  # a subgroup
        (["backup", "development", "-o", "json"], 2, "development"),  # refused: not created
    ],
)
def test_errors_under_o_json_are_one_json_line(
    project: Project, args: list[str], code: int, needle: str
) -> None:
    doc = _json_error(project.run(*args), code)
    assert needle in str(doc["error"])
    assert doc["hint"] is None or isinstance(doc["hint"], str)


def test_a_broken_matrix_under_check_o_json_is_a_located_json_error(project: Project) -> None:
    project.edit_matrix("min_size: 3\n", "min_size: 30\n")
    doc = _json_error(project.run("check", "-o", "json"), 2)
    assert "environment-matrix.yaml:" in str(doc["error"]) and "min_size" in str(doc["error"])
    text = project.run("check")  # without -o json: the error:/hint: lines as before
    assert text.returncode == 2 and text.stderr.startswith("error: ")


# ---- 15: history, info, timestamps -------------------------------------------------------


def test_history_of_an_unknown_environment_exits_2_with_a_did_you_mean(project: Project) -> None:
    unknown = project.run("history", "developmnt")
    assert unknown.returncode == 2, unknown.stdout + unknown.stderr
    assert "did you mean 'development'" in unknown.stderr
    assert unknown.stdout == ""
    known = project.run("history", "development")  # in the matrix, never created: empty
    assert known.returncode == 0 and "No operations" in known.stdout
    assert project.json("history", "development") == []


def test_timestamps_are_iso_8601_utc() -> None:
    from envplane.service.results import OperationSummary, iso

    t = datetime(2026, 11, 27, 2, 15, 3, 123456, tzinfo=UTC)
    assert iso(t) == "2026-11-27T02:15:03.123456+00:00"
    assert iso(t, "seconds") == "2026-11-27T02:15:03+00:00"
    assert iso(t.replace(tzinfo=None)) == iso(t)  # naive: UTC, as the store keeps them
    assert iso(t.astimezone(timezone(timedelta(hours=2)))) == iso(t)
    doc = OperationSummary(
        id="op", kind="create", status="succeeded", started_at=t, finished_at=None, error=None
    ).model_dump(mode="json")
    assert doc["started_at"] == "2026-11-27T02:15:03.123456+00:00"


def test_history_shows_steps_and_info_the_last_operation_started_and_finished(
    project: Project,
) -> None:
    _small(project)
    created = project.run("create", "prod-like")
    assert created.returncode == 0, created.stderr

    ops = project.json("history", "prod-like")
    assert isinstance(ops, list) and len(ops) == 1
    op = ops[0]
    for moment in (op["started_at"], op["finished_at"], *(s["started_at"] for s in op["steps"])):
        assert ISO_UTC.match(moment), moment

    shown = project.run("history", "prod-like")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    head = next(line for line in lines if line.startswith(op["id"]))
    assert "prod-like" in head and "create succeeded" in head
    steps = [line for line in lines if line.startswith("    ")]
    assert len(steps) == len(op["steps"]) == 4
    for line, step in zip(steps, op["steps"], strict=True):
        assert line.split()[:4] == [
            str(step["index"]),
            step["action"],
            step["resource_key"],
            step["status"],
        ], line

    def seconds(moment: str) -> str:
        return datetime.fromisoformat(moment).isoformat(timespec="seconds")

    info = project.run("info", "prod-like")
    assert info.returncode == 0, info.stderr
    last = next(line for line in info.stdout.splitlines() if line.startswith("Last operation:"))
    assert last == (
        f"Last operation: {op['id']} create succeeded, started {seconds(op['started_at'])}, "
        f"finished {seconds(op['finished_at'])}"
    )


# ---- 16: destroy is repeatable; its leftovers name the operation to resume ---------------


def test_destroying_a_destroyed_environment_is_done_already(project: Project) -> None:
    _small(project)
    assert project.run("create", "prod-like").returncode == 0
    first = project.run("destroy", "prod-like", "--force")
    assert first.returncode == 0, first.stderr
    for args in (["--force"], [], ["--dry-run"]):
        again = project.run("destroy", "prod-like", *args)
        assert again.returncode == 0, again.stdout + again.stderr
        assert again.stdout.strip() == "prod-like is already destroyed"
    ops = project.json("history", "prod-like")
    assert isinstance(ops, list) and [o["kind"] for o in ops] == ["destroy", "create"]  # no more
    never = project.run("destroy", "never-was", "--force")
    assert never.returncode == 2 and "does not exist" in never.stderr


def test_destroy_leftovers_name_the_operation_to_resume(project: Project) -> None:
    from envplane.state.store import StateStore

    _small(project)
    assert project.run("create", "prod-like").returncode == 0
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    port = squatter.getsockname()[1]
    store = StateStore.open(f"sqlite:///{project.home / 'state.db'}", project.home)
    try:  # a port recorded for the environment that something still answers on
        record = store.get_environment("prod-like")
        assert record is not None
        store.save_environment("prod-like", ports={**dict(record.ports or {}), "extra": port})
    finally:
        store.close()
    try:
        failed = project.run("destroy", "prod-like", "--force")
    finally:
        squatter.close()
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"port {port} (extra) still accepts connections" in failed.stderr
    op_id = project.json("history", "prod-like")[0]["id"]  # type: ignore[index]
    assert f"hint: stop or remove what is listed, then run `envplane resume {op_id}`" in (
        failed.stderr
    )
    resumed = project.run("resume", op_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert project.json("info", "prod-like")["status"] == "destroyed"  # type: ignore[index]


# ---- 20: api endpoint, NO_COLOR, bytes progress ------------------------------------------


@pytest.mark.slow
def test_the_api_endpoint_info_prints_answers(project: Project) -> None:
    created = project.run("create", "development")
    assert created.returncode == 0, created.stderr
    info = project.json("info", "development")
    assert isinstance(info, dict)
    api = info["endpoints"]["api"]
    assert api.startswith(info["endpoints"]["frontend"].rstrip("/") + "/api/")
    with urllib.request.urlopen(api, timeout=5) as resp:
        assert resp.status == 200
        assert json.loads(resp.read())["environment"] == "development"
    assert api in project.run("info", "development").stdout


def test_no_api_endpoint_without_a_service_behind_it(project: Project) -> None:
    _small(project)
    assert project.run("create", "prod-like").returncode == 0
    info = project.json("info", "prod-like")
    assert isinstance(info, dict) and "api" not in info["endpoints"]
    assert "frontend" in info["endpoints"]


def test_no_color_means_no_style_at_all(project: Project) -> None:
    styled = {"FORCE_COLOR": "1", "TERM": "xterm-256color", "COLUMNS": "200"}
    plain = project.run("info", "no-such-env", **styled)  # NO_COLOR=1 (Project.env)
    assert plain.returncode == 2 and "error: " in plain.stderr
    assert "\x1b[" not in plain.stderr + plain.stdout, repr(plain.stderr)
    shown = project.run("check", **styled)
    assert shown.returncode == 0 and "\x1b[" not in shown.stdout + shown.stderr
    coloured = project.run("info", "no-such-env", NO_COLOR="", **styled)  # empty: not set
    assert "\x1b[" in coloured.stderr  # the styles exist, NO_COLOR alone removes them


def test_component_writer_and_stage_report_bytes_done_without_flooding(tmp_path: Path) -> None:
    from envplane import events
    from envplane.data import files
    from envplane.data.manifest import Manifest

    seen: list[events.BytesDone] = []
    chunk = b"x" * (1 << 20)
    writer = files.ComponentWriter(
        tmp_path / "storage.tar", None, what="storage", total=200 << 20, events=seen.append
    )
    for _ in range(200):
        writer.write(chunk)
    comp = writer.close("storage", "tar")
    assert all(isinstance(e, events.BytesDone) and e.what == "storage" for e in seen)
    assert 3 <= len(seen) <= 200 // 64 + 1 + 10, len(seen)  # every 64 MB or 0.5 s, and the end
    assert [e.done for e in seen] == sorted(e.done for e in seen)
    assert (seen[-1].done, seen[-1].total) == (200 << 20, 200 << 20)
    assert all(e.total == 200 << 20 and e.done < e.total for e in seen[:-1])

    # An estimate passed is no longer said (None) until the end.
    over: list[events.BytesDone] = []
    small = files.ComponentWriter(tmp_path / "redis.rdb", None, total=1, events=over.append)
    small.write(b"y" * (65 << 20))
    small.close("redis", "rdb")
    assert [e.total for e in over] == [None, 65 << 20]

    manifest = Manifest("backup-x-1", "x", "data", "2026-11-27T02:15:03+00:00", "me", "0")
    manifest.components.append(comp)
    verified: list[events.BytesDone] = []
    staged = files.stage(tmp_path, manifest, tmp_path, None, events=verified.append)
    assert staged == {"storage": tmp_path / "storage.tar"}
    assert verified and (verified[-1].done, verified[-1].total) == (comp.bytes, comp.bytes)
    assert len(verified) <= 200 // 64 + 1 + 10


class _Stderr(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize("tty", [True, False])
def test_the_cli_shows_bytes_progress_without_flooding(
    monkeypatch: pytest.MonkeyPatch, tty: bool
) -> None:
    from envplane import events
    from envplane.cli import output

    err = _Stderr(tty)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(output, "_consoles", {})
    monkeypatch.setattr(output, "_bytes", output._BytesProgress())
    total = 1000 << 20
    for done in range(0, total, 8 << 20):  # 125 events, each component
        output.show_event(events.BytesDone("postgres", done, total))
        output.show_event(events.BytesDone("storage", done // 2, None))
    output.show_event(events.BytesDone("postgres", total, total))
    output.show_event(events.BytesDone("storage", total // 2, total // 2))
    output.progress("postgres: 1048.6 MB written")
    text = err.getvalue()
    lines = text.split("\n")
    assert "\x1b" not in text  # NO_COLOR: not even an erase sequence
    if tty:  # one line, rewritten in place, ended once both are complete
        assert text.count("\r") >= 2
        assert len(lines) == 3 and lines[-1] == "", lines  # progress; the log line; ""
        assert (
            lines[0]
            .rsplit("\r", 1)[-1]
            .startswith("  postgres: 1048.6 of 1048.6 MB; storage: 524.3 of 524.3 MB")
        )
    else:  # a few lines: each quarter of a known total, fourfold growth of an unknown one
        assert "\r" not in text
        pg = [line for line in lines if "postgres: " in line and "written" not in line]
        st = [line for line in lines if "storage: " in line]
        assert len(pg) == 4 and pg[-1] == "  postgres: 1048.6 of 1048.6 MB", pg
        assert 2 <= len(st) <= 4 and st[-1] == "  storage: 524.3 of 524.3 MB", st


def test_backup_and_restore_show_bytes_done_of_total(project: Project) -> None:
    _small(project)
    assert project.run("create", "prod-like").returncode == 0
    info = project.json("info", "prod-like")
    storage = Path(info["endpoints"]["storage"][len("file://") :])  # type: ignore[index]
    (storage / "big.bin").write_bytes(b"\x01" * (150 << 20))
    backup = project.run("backup", "prod-like")
    assert backup.returncode == 0, backup.stderr
    shown = [line for line in backup.stderr.splitlines() if re.search(r"storage: .* of ", line)]
    assert shown and len(shown) <= 5, shown  # piped: a few lines, not one per chunk
    assert re.search(r"storage: ([\d.]+) of \1 MB$", shown[-1]), shown  # done of total
    backup_id = project.json("backups", "prod-like")[0]["backup_id"]  # type: ignore[index]
    restored = project.run("restore", "prod-like", backup_id, "--force")
    assert restored.returncode == 0, restored.stderr
    verified = [line for line in restored.stderr.splitlines() if "storage: " in line]
    assert verified and len(verified) <= 5, verified  # the verification, before the swap
    assert re.search(r"storage: ([\d.]+) of \1 MB$", verified[-1]), verified
