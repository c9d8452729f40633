"""`roon ingest / models / show / sql` end to end through typer's CliRunner."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roon.cli import app
from roon.store import layout

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data"
ACAS = DATA / "ACASXU_experimental_v2a_1_1.nnet"
runner = CliRunner()


def roon(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    return tmp_path / "cat"


def test_ingest_then_reingest_is_a_no_op(catalogue: Path):
    first = roon("ingest", ACAS, "--catalogue", catalogue)
    assert first.exit_code == 0, first.output
    assert "ingested 1, already present 0, failed 0" in first.stdout
    count = roon("sql", "select count(*) as n from neurons", "-c", catalogue, "--json")
    assert json.loads(count.stdout) == [{"n": 305}]  # 6×50 hidden + 5 outputs
    again = roon("ingest", ACAS, "--catalogue", catalogue)
    assert again.exit_code == 0
    assert "ingested 0, already present 1, failed 0" in again.stdout
    assert json.loads(
        roon("sql", "select count(*) as n from models", "-c", catalogue, "--json").stdout
    ) == [{"n": 1}]


def test_one_bad_file_does_not_stop_the_others(tmp_path: Path, catalogue: Path):
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(ACAS, folder / "good.nnet")
    (folder / "bad.onnx").write_bytes(b"\x00\x01 not onnx at all")
    (folder / "notes.txt").write_text("ignored: not a model file")
    result = roon("ingest", folder, "--catalogue", catalogue, "--json")
    assert result.exit_code == 1
    rows = {Path(r["source"]).name: r for r in json.loads(result.stdout)}
    assert set(rows) == {"good.nnet", "bad.onnx"}
    assert rows["good.nnet"]["status"] == "ingested"
    assert rows["bad.onnx"]["status"] == "failed"
    assert "bad.onnx" in rows["bad.onnx"]["reason"]
    assert "\n" not in rows["bad.onnx"]["reason"]


def test_state_dict_activation_is_reported_as_assumed(tmp_path: Path, catalogue: Path):
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    path = tmp_path / "net.pt"
    torch.save(net.state_dict(), path)
    result = roon("ingest", path, "--catalogue", catalogue)
    assert result.exit_code == 0, result.output
    assert "activation relu assumed" in result.stdout
    prov = json.loads(roon("sql", "select * from provenance", "-c", catalogue, "--json").stdout)
    assert prov[0]["activation_assumed"] is True and prov[0]["format"] == "state_dict"


def test_a_missing_path_is_one_failed_row_and_the_rest_ingest(tmp_path: Path, catalogue: Path):
    (tmp_path / "empty").mkdir()
    missing, empty, pattern = "no/such/file.nnet", tmp_path / "empty", "nothing-matches-*.onnx"
    result = roon("ingest", missing, ACAS, empty, pattern, "--catalogue", catalogue, "--json")
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert [(r["source"], r["status"]) for r in rows] == [
        (missing, "failed"),
        (str(ACAS), "ingested"),
        (str(empty), "failed"),
        (pattern, "failed"),
    ]
    assert "no such file or directory" in rows[0]["reason"]
    assert "no model files" in rows[2]["reason"] and "matches no files" in rows[3]["reason"]
    count = roon("sql", "select count(*) as n from models", "-c", catalogue, "--json")
    assert json.loads(count.stdout) == [{"n": 1}]


def test_an_ingest_where_everything_fails_creates_no_catalogue(tmp_path: Path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00 not onnx")
    target = tmp_path / "new" / "cat"
    result = roon("ingest", "no/such.pt", bad, "--catalogue", target)
    assert result.exit_code == 1
    assert "failed 2" in result.stdout and "no catalogue created" in result.stdout
    assert not (tmp_path / "new").exists()
    # a file in the catalogue's place is refused up front, in one line
    result = roon("ingest", ACAS, "--catalogue", bad)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip() == f"roon: error: catalogue {bad} is a file, not a directory"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["sql", "drop view models"], "read-only"),
        (["show", "nope"], "no model 'nope'"),
    ],
)
def test_errors_are_one_line_exit_1(tmp_path: Path, catalogue: Path, args, needle):
    (tmp_path / "empty").mkdir()
    roon("ingest", ACAS, "--catalogue", catalogue)
    args = [a.replace("{empty}", str(tmp_path / "empty")) for a in args]
    result = roon(*args, "--catalogue", catalogue)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("roon: error:") and needle in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["ingest"], "Missing argument"),
        (["ingest", ACAS, "--bogus"], "No such option: --bogus"),
        (["ingest", ACAS, "--input-domain", "ternary"], "'ternary' is not one of"),
        (["ingest", ACAS, "--min-weight", "lots"], "Invalid value for '--min-weight'"),
        (["nosuchcommand"], "No such command 'nosuchcommand'"),
        (["normalize"], "Missing argument"),
    ],
)
def test_usage_errors_are_one_line_exit_1_and_touch_nothing(catalogue: Path, args, needle):
    result = roon(*args, "--catalogue", catalogue)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("roon: error: ") and needle in lines[0]
    assert "--help" in lines[0] and "╭" not in result.stderr
    assert not catalogue.exists()


def test_roon_alone_prints_help_and_succeeds():
    result = roon()
    assert result.exit_code == 0 and "Usage: roon" in result.stdout


def test_a_bug_is_one_line_that_says_so(monkeypatch, catalogue: Path):
    from roon.query import inspect as inspect_module

    def broken(*args, **kwargs):
        raise TypeError("'NoneType' object is not subscriptable")

    roon("ingest", ACAS, "--catalogue", catalogue)
    monkeypatch.setattr(inspect_module, "describe_model", broken)
    result = roon("show", "ACASXU_experimental_v2a_1_1", "--catalogue", catalogue)
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("roon: error: internal error, a bug in roon (TypeError: ")
    assert "roon --debug" in line


def test_models_show_and_sql_formats(catalogue: Path):
    roon("ingest", ACAS, "--catalogue", catalogue)
    models = json.loads(roon("models", "-c", catalogue, "--json").stdout)
    assert len(models) == 1 and models[0]["widths"] == "5-50-50-50-50-50-50-5"
    assert models[0]["format"] == "nnet"
    table = roon("models", "-c", catalogue)
    assert "ACASXU_experimental_v2a_1_1" in table.stdout

    shown = roon("show", "ACASXU_experimental_v2a_1_1", "-c", catalogue, "--json")
    info = json.loads(shown.stdout)
    assert [layer["width"] for layer in info["layers"]] == [50] * 6 + [5]
    assert info["model"]["metadata"]["nnet.means"][0] == pytest.approx(19791.091)
    text = roon("show", models[0]["model_id"][:8], "-c", catalogue)
    assert text.exit_code == 0 and "relu" in text.stdout and "linear" in text.stdout

    csv = roon(
        "sql",
        "select layer, count(*) as n from neurons group by 1 order by 1",
        "-c",
        catalogue,
        "--format",
        "csv",
    )
    assert csv.stdout.splitlines()[:2] == ['"layer","n"', "0,50"]


def test_signature_methods_are_queryable(catalogue: Path):
    roon("ingest", ACAS, "--catalogue", catalogue)
    rows = json.loads(
        roon(
            "sql",
            "select method, exact, count(*) as n from signatures group by all order by all",
            "-c",
            catalogue,
            "--json",
        ).stdout
    )
    assert sum(r["n"] for r in rows) == 305
    assert all(r["exact"] == (r["method"] != "sampled") for r in rows)


@pytest.mark.slow
def test_two_ingest_processes_on_one_catalogue_lose_nothing(tmp_path: Path, catalogue: Path):
    torch = pytest.importorskip("torch")
    files = []
    for seed in range(6):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
        files.append(tmp_path / f"net{seed}.pt")
        torch.save(net.state_dict(), files[-1])
    shared = files[2:4]  # both processes ingest these two
    cmd = [sys.executable, "-m", "roon", "ingest", "--catalogue", str(catalogue), "--json"]
    procs = [
        subprocess.Popen([*cmd, *map(str, part + shared)], stdout=subprocess.PIPE, text=True)
        for part in (files[:2], files[4:])
    ]
    outputs = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    statuses = [r["status"] for out in outputs for r in out]
    assert statuses.count("ingested") == 6 and statuses.count("present") == 2
    rows = json.loads(
        roon("sql", "select count(*) as n from models", "-c", catalogue, "--json").stdout
    )
    assert rows == [{"n": 6}]
    assert not any((catalogue / ".staging").iterdir())


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys; from roon.cli import app; from typer.testing import CliRunner;"
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0;"
        "heavy = [m for m in ('torch', 'triton', 'duckdb', 'pyarrow', 'neo4j', 'onnx') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_python_dash_m_and_version():
    out = subprocess.run(
        [sys.executable, "-m", "roon", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("roon 0.")


def _nets(folder: Path, count: int, widths=(4, 6, 2)) -> list[Path]:
    """``count`` distinct small state_dict files (relu assumed)."""
    torch = pytest.importorskip("torch")
    folder.mkdir(exist_ok=True)
    files = []
    for seed in range(count):
        torch.manual_seed(seed)
        layers = [torch.nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)]
        files.append(folder / f"net{seed}.pt")
        torch.save(torch.nn.Sequential(*layers).state_dict(), files[-1])
    return files


def test_failure_reasons_stay_on_one_line_in_the_summary(tmp_path: Path, catalogue: Path):
    bad = tmp_path / ("a-model-file-with-a-long-name-" * 4 + ".onnx")
    bad.write_bytes(b"\x00 not onnx")
    result = roon("ingest", bad, ACAS, "--catalogue", catalogue)
    assert result.exit_code == 1
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(rows) == 2, result.stdout  # one line per source, the reason cut to fit
    assert "…" in rows[0] and "--json shows the full reasons" in result.stdout
    full = json.loads(roon("ingest", bad, "--catalogue", catalogue, "--json").stdout)
    assert full[0]["reason"].startswith(str(bad)) and "…" not in full[0]["reason"]


def test_a_full_disk_fails_one_model_skips_the_rest_and_prints_the_summary(
    tmp_path: Path, catalogue: Path, monkeypatch
):
    import errno

    import pyarrow.parquet as pq

    files = _nets(tmp_path / "nets", 3)
    assert roon("ingest", files[0], "-c", catalogue).exit_code == 0
    real = pq.ParquetWriter.write_table

    def full(self, table, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    result = roon("ingest", *files[1:], "-c", catalogue)
    assert result.exit_code == 1
    assert "ingested 0, already present 0, failed 1, skipped 1" in result.stdout
    report = json.loads(roon("ingest", *files[1:], "-c", catalogue, "--json").stdout)
    assert [r["status"] for r in report] == ["failed", "skipped"]
    assert "the disk holding the catalogue is full" in report[0]["reason"]
    assert ".parquet" in report[0]["reason"] and "cannot write" in report[0]["reason"]
    monkeypatch.setattr(pq.ParquetWriter, "write_table", real)
    assert roon("check", "-c", catalogue).exit_code == 0  # consistent: one whole model
    assert not any((catalogue / ".staging").iterdir())
    again = roon("ingest", *files, "-c", catalogue)
    assert "ingested 2, already present 1" in again.stdout


def test_ctrl_c_in_a_reading_command_exits_130(catalogue: Path, monkeypatch):
    import roon.query.scan as scan

    roon("ingest", ACAS, "--catalogue", catalogue)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(scan, "stream_sql", interrupted)
    result = roon("sql", "select 1", "-c", catalogue)
    assert result.exit_code == 130
    assert result.stderr.strip() == "roon: interrupted; the catalogue is unchanged"


@pytest.mark.slow
def test_ctrl_c_during_ingest_exits_130_and_leaves_whole_models(tmp_path: Path, catalogue: Path):
    import signal
    import time

    # fan-in 64: ~0.05-0.2 s each; enough of them that the 1 s batches cannot hold them all
    files = _nets(tmp_path / "nets", 60, widths=(24, 64, 64, 4))
    cmd = [sys.executable, "-m", "roon", "ingest", "-c", str(catalogue), "--backend", "ref"]
    cmd += ["--jobs", "1"]  # batches of 1 s in this process: the kill lands between commits
    proc = subprocess.Popen([*cmd, *map(str, files)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if layout.marker_path(catalogue).is_file() and layout.committed_models(catalogue):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().endswith(
        "roon: interrupted; what was committed before it is kept whole and nothing partial "
        "was written; run the command again to finish"
    )
    assert roon("check", "-c", catalogue).exit_code == 0
    assert not any((catalogue / ".staging").iterdir())
    done = len(layout.committed_models(catalogue))
    assert 1 <= done < len(files)
    again = roon("ingest", *files, "-c", catalogue, "--backend", "ref")
    assert f"ingested {len(files) - done}, already present {done}" in again.stdout
