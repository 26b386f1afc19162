"""The CLI's error boundary over every subcommand: malformed invocations (hypothesis) and each
class of bad results location or store (fixtures). Every one must exit 2 with one line on
stderr and no traceback, and leave every store byte for byte as it was (and create none)."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnphys.cli import main
from nnphys.lab.store import DB_NAME

COUNT = {"tried": 0, "exit2_one_line": 0}


@pytest.fixture(scope="module")
def toy_registered():
    import toy_study

    from nnphys.studies import register, unregister

    register(toy_study.STUDY)
    yield toy_study.STUDY
    unregister("toy")


def _make_fixtures(root: Path) -> dict[str, Path]:
    """One results location per class: a good finished store and every bad kind."""
    good = root / "good"
    assert main(["run", "toy", "--set", "n_jobs=3", "--results", str(good), "-q"]) == 0
    c = sqlite3.connect(good / DB_NAME)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    fx = {"good": good, "fresh": root / "fresh" / "sub"}
    data = (good / DB_NAME).read_bytes()
    (root / "afile").write_text("not a folder\n")
    fx["afile"] = root / "afile"
    fx["underfile"] = root / "afile" / "results"
    for name, content in {"junk": b"this is not a database\n" * 50, "truncated": data[: len(data) // 2],
                          "header_only": data[:100]}.items():
        (root / name).mkdir()
        (root / name / DB_NAME).write_bytes(content)
        fx[name] = root / name
    (root / "foreign").mkdir()
    c = sqlite3.connect(root / "foreign" / DB_NAME)
    c.execute("CREATE TABLE measurements (t REAL, v REAL)")
    c.execute("INSERT INTO measurements VALUES (1, 2)")
    c.commit()
    c.close()
    fx["foreign"] = root / "foreign"
    (root / "dirdb" / DB_NAME).mkdir(parents=True)
    fx["dirdb"] = root / "dirdb"
    shutil.copytree(good, root / "newer")
    c = sqlite3.connect(root / "newer" / DB_NAME)
    c.execute("PRAGMA user_version = 99")
    c.close()
    fx["newer"] = root / "newer"
    (root / "fifo").mkdir()
    os.mkfifo(root / "fifo" / DB_NAME)  # opening it would block: must be refused unopened
    fx["fifo"] = root / "fifo"
    fx["unwritable"] = Path("/proc/nnphys-results")  # not creatable, even by root
    return fx


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory, toy_registered):
    return _make_fixtures(tmp_path_factory.mktemp("cli_err"))


def _snapshot(fx: dict[str, Path]) -> dict[str, str]:
    """sha256 of every file under the fixtures (SQLite's -wal/-shm side files aside: a reader
    may create and remove them, the database bytes are what must not change)."""
    out = {}
    for name, p in fx.items():
        if not p.exists() or p.is_relative_to("/proc"):
            out[name] = "absent"
            continue
        for f in sorted(p.rglob("*")) if p.is_dir() else [p]:
            if f.is_file() and not f.name.endswith(("-wal", "-shm")):
                out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def _expect_refusal(capsys, argv: list[str], fx: dict[str, Path]) -> str:
    before = _snapshot(fx)
    COUNT["tried"] += 1
    code = main(argv)
    cap = capsys.readouterr()
    err = cap.err.strip()
    assert code == 2, (argv, code, cap.out[-500:], cap.err[-2000:])
    assert "Traceback" not in cap.err + cap.out, (argv, cap.err)
    assert err.count("\n") == 0 and err.startswith("nnphys: error:"), (argv, err)
    assert _snapshot(fx) == before, f"{argv} changed a store"
    assert not fx["fresh"].exists() and not fx["fresh"].parent.exists(), f"{argv} created a store"
    COUNT["exit2_one_line"] += 1
    return err


# -- fixtures: every store/path class with every command that takes --results ---------------

BAD_LOCATIONS = ["afile", "underfile", "junk", "truncated", "header_only", "foreign", "dirdb", "fifo", "newer",
                 "unwritable"]
READERS_MISSING_STORE = ["status", "report", "export"]  # a missing store is an error for these


@pytest.mark.parametrize("where", BAD_LOCATIONS)
@pytest.mark.parametrize("cmd", [["run", "toy"], ["reproduce", "--studies", "toy"], ["status"], ["report"],
                                 ["export"], ["plan", "toy"]])
def test_every_bad_location_is_refused_untouched(capsys, fixtures, cmd, where):
    if where == "unwritable" and cmd[0] in ("status", "report", "export", "plan"):
        where = "fresh"  # nothing to read there; plan alone accepts a missing store
        if cmd[0] == "plan":
            return
    err = _expect_refusal(capsys, [*cmd, "--results", str(fixtures[where])], fixtures)
    assert str(fixtures[where]).split("/")[-1] in err or "--results" in err or "/proc" in err, err


def test_messages_name_the_problem(capsys, fixtures):
    msg = {w: _expect_refusal(capsys, ["status", "--results", str(fixtures[w])], fixtures) for w in
           ("afile", "underfile", "junk", "truncated", "foreign", "dirdb", "newer")}
    assert "not a directory" in msg["afile"] and "lies under a file" in msg["underfile"]
    assert "not an SQLite database" in msg["junk"] and "truncated" in msg["truncated"]
    assert "not an nnphys store (tables: measurements)" in msg["foreign"] and "is a directory" in msg["dirdb"]
    assert "newer nnphys (store version 99" in msg["newer"] and "upgrade" in msg["newer"]


def test_export_destinations_and_study_filter(capsys, fixtures, tmp_path):
    good = str(fixtures["good"])
    (tmp_path / "f").write_text("x")
    for output, needle in [(tmp_path, "is a directory"), (tmp_path / "missing" / "x.csv", "does not exist"),
                           (tmp_path / "f" / "x.csv", "does not exist"), ("/proc/x.csv", "/proc/x.csv"),
                           (fixtures["fifo"] / DB_NAME, "not a regular file")]:
        err = _expect_refusal(capsys, ["export", "--results", good, "--output", str(output)], fixtures)
        assert "--output" in err and needle in err, err
    err = _expect_refusal(capsys, ["export", "--results", good, "--study", "no-such-study"], fixtures)
    assert "--study" in err and "stored: toy" in err
    assert not list(fixtures["good"].glob("results.*"))


def test_subprocess_bad_store_one_line(fixtures):
    p = subprocess.run([sys.executable, "-m", "nnphys.cli", "status", "--results", str(fixtures["truncated"])],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0 and "truncated" in p.stderr, p.stderr


# -- property test: malformed invocations of every subcommand -------------------------------

def _opt(name: str, values: list) -> st.SearchStrategy:
    return st.sampled_from(values).map(lambda v: [name, str(v)])


UNKNOWN = st.sampled_from([["--nope"], ["--workers=1", "--bogus", "3"], ["-Z"]])
BAD_SET_TEXT = st.sampled_from(["n_jobs=0", "nope=1", "n_jobs", "=3", "n_jobs=", "dim=abc", "fail_every=-1",
                                "sleep=9", "n_jobs=1e3", "tag=" + "x" * 30, "n_jobs=[1,2]", "dim=[]"])
BAD = {
    "workers": _opt("--workers", [0, -1, 257, 10**20, "x", "1.5", ""]),
    "threads": _opt("--threads", [0, 257, -3, "two", 10**30]),
    "scale": _opt("--scale", ["huge", "", "QUICK", "paper2"]),
    "engine": _opt("--engine", ["spark", "", "Dask"]),
    "device": _opt("--device", ["tpu", "gpu", ""]),
    "address": _opt("--address", ["not-an-address", "foo://x:1", "tcp://:1", "tcp://h:0", "tcp://h:99999",
                                  "tcp://h", "://", "tcp://h:1:2", "tcp://bad host:1", "tcp://h:-5"]),
    "set": BAD_SET_TEXT.map(lambda s: ["--set", s]),
    "rerun": _opt("--rerun", ["all", "FAILED", ""]),
    "format": _opt("--format", ["xlsx", "", "CSV", "json"]),
    "studies": _opt("--studies", ["nope", ",", "toy,nope", " "]),
    "study_opt": _opt("--study", ["no-such-study", ""]),
}
NEUTRAL = {
    "run": [["-q"], ["--scale", "quick"], ["--set", "n_jobs=2"], ["--set", "tag=b"], ["--workers", "1"],
            ["--threads", "1"], ["--device", "cpu"], ["--engine", "inline"]],
    "reproduce": [["-q"], ["--studies", "toy"], ["--set", "n_jobs=2"], ["--threads", "1"], ["--scale", "quick"]],
    "plan": [["--scale", "paper"], ["--set", "n_jobs=4"], ["--workers", "2"]],
    "export": [["--format", "csv"], ["--study", "toy"]],
}
BAD_FOR = {
    "run": ["workers", "threads", "scale", "engine", "device", "address", "set", "rerun"],
    "reproduce": ["workers", "threads", "scale", "engine", "device", "address", "set", "studies"],
    "plan": ["workers", "scale", "device", "set"],
    "export": ["format", "study_opt"],
    "status": [], "report": [], "fields": [], "list": [],
}
POSITIONAL = {"run": "toy", "plan": "toy", "fields": "toy"}


@st.composite
def malformed(draw, fixtures: dict[str, Path]):
    cmd = draw(st.sampled_from(sorted(BAD_FOR)))
    takes_results = cmd not in ("fields", "list")
    pieces = [draw(st.sampled_from(NEUTRAL.get(cmd, [[]]))) for _ in range(draw(st.integers(0, 3)))]
    bad_kinds = [draw(st.sampled_from(["unknown", *BAD_FOR[cmd]])) for _ in range(draw(st.integers(1, 2)))]
    bad = [draw(UNKNOWN) if k == "unknown" else draw(BAD[k]) for k in bad_kinds]
    # the last of a repeated option wins (typer), so a neutral one must not hide a bad one; a repeated
    # --set key is itself refused, so --set pieces are kept
    bad_opts = {b[0] for b in bad if b and b[0] != "--set"}
    pieces = [p for p in pieces if not p or p[0] not in bad_opts]
    where = draw(st.sampled_from(["good", "fresh", *BAD_LOCATIONS])) if takes_results else None
    positional = []
    if cmd in POSITIONAL:
        name = draw(st.sampled_from([POSITIONAL[cmd], POSITIONAL[cmd], "no-such-study"]))
        positional = [name]
        if name == "no-such-study":
            bad.append([])
    if where is not None:
        pieces.append(["--results", str(fixtures[where])])
        if where in BAD_LOCATIONS and not (cmd == "plan" and where == "unwritable"):
            bad.append([])  # the location alone is bad
        if where == "fresh" and cmd in READERS_MISSING_STORE:
            bad.append([])
    if cmd in ("fields", "list") and draw(st.booleans()):
        bad = [["extra-arg", "more"]]
    order = draw(st.permutations(pieces + bad))
    return [cmd, *positional, *[x for piece in order for x in piece]]


@settings(max_examples=350, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_property_malformed_invocations(capsys, fixtures, data):
    argv = data.draw(malformed(fixtures))
    _expect_refusal(capsys, argv, fixtures)


# draws that once failed, kept as explicit cases (a repeated --set used to mean "last wins", so the
# first of these was valid and exited 0)
KNOWN = [
    ["plan", "toy", "--scale", "paper", "--results", "{good}", "--set", "n_jobs=0", "--set", "n_jobs=0",
     "--set", "n_jobs=4"],
    ["run", "toy", "--set", "n_jobs=2", "--set", "n_jobs=2", "--results", "{fresh}"],
    ["reproduce", "--studies", "toy", "--set", "n_jobs=0", "--set", "n_jobs=3", "--results", "{fresh}"],
    ["run", "toy", "--set", "n-jobs=2", "--set", "n_jobs=3", "--results", "{fresh}"],
]


@pytest.mark.parametrize("argv", KNOWN, ids=range(len(KNOWN)))
def test_known_malformed_invocations(capsys, fixtures, argv):
    argv = [a.format(**{k: str(v) for k, v in fixtures.items()}) for a in argv]
    err = _expect_refusal(capsys, argv, fixtures)
    assert "given twice with --set" in err or "n_jobs" in err, err


def test_repeated_set_names_the_field(capsys, fixtures):
    err = _expect_refusal(capsys, ["run", "toy", "--set", "n_jobs=2", "--set", "n_jobs=3", "--results",
                                   str(fixtures["fresh"])], fixtures)
    assert err.startswith("nnphys: error: n_jobs") and "given twice" in err, err


@pytest.mark.parametrize("order", [0, 1])
def test_study_key_beats_plain_key_in_either_order(capsys, toy_registered, tmp_path, order):
    # reproduce: key=v goes to every study with the field, toy.key=v to toy alone and wins over it
    sets = [["--set", "n_jobs=2"], ["--set", "toy.n_jobs=3"]]
    argv = ["reproduce", "--studies", "toy", *sets[order], *sets[1 - order], "--results", str(tmp_path), "-q"]
    assert main(argv) == 0, capsys.readouterr().err
    from nnphys.lab.store import Store

    with Store(tmp_path) as store:
        assert len(store.results("toy")) == 3


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(min_size=1, max_size=25).filter(lambda s: "\x00" not in s and s.strip()),
       cmd=st.sampled_from(["run", "plan", "reproduce"]))
def test_property_arbitrary_set_values(capsys, fixtures, toy_registered, value, cmd):
    from nnphys.lab.config import listify, parse_value

    try:
        toy_registered.make_spec("quick", listify(toy_registered.spec, {"n_jobs": parse_value(value)}))
        return  # a valid value is not what this test is about
    except Exception:
        pass
    argv = [cmd, *(["toy"] if cmd != "reproduce" else ["--studies", "toy"]), "--set", f"n_jobs={value}",
            "--results", str(fixtures["fresh"])]
    _expect_refusal(capsys, argv, fixtures)


def test_zz_counts(capsys):
    """The tally for the report (printed with -s): every invocation tried gave exit 2 + one line."""
    with capsys.disabled():
        print(f"\nmalformed CLI invocations tried: {COUNT['tried']}, exit 2 with one line: "
              f"{COUNT['exit2_one_line']}")
    assert COUNT["tried"] == COUNT["exit2_one_line"]
