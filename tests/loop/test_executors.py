"""`ralis benchmark` on three executors: one process, a local process pool, a local Ray cluster.

Each cell computes the same numbers wherever it runs (one torch thread everywhere), so the three
results.csv must agree exactly; a failing cell is reported and the others finish; a killed worker's
cell resumes from its own saved state.
"""

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from ralis.config import apply_overrides, get_preset
from ralis.errors import ConfigError
from ralis.loop.cells import run_cell
from ralis.loop.executors import (
    EXECUTORS,
    LocalExecutor,
    RayExecutor,
    SequentialExecutor,
    make_executor,
)
from ralis.loop.grid import GridError, grid_cells, run_grid
from ralis.report import read_csv

ROOT = Path(__file__).resolve().parents[2]
GRID = {"strategies": ["random", "ralis"], "seeds": [0, 1], "agent_seeds": [0, 1]}
# wall-clock seconds differ; the git revision is read once per process (others may commit)
NOT_COMPARED = {"wall_time", "git_revision"}


def by_cell(rows):
    return {(r["strategy"], r["seed"], r["regions"]): r for r in rows}


def assert_same_numbers(rows, expected):
    """Every column of every row equal to the expected row of that cell and budget (floats
    exactly), but the wall-clock time and the git revision."""
    rows, expected = by_cell(rows), by_cell(expected)
    assert set(rows) <= set(expected)
    for key, row in rows.items():
        numbers = {k: v for k, v in row.items() if k not in NOT_COMPARED}
        assert numbers == {k: v for k, v in expected[key].items() if k not in NOT_COMPARED}, key


@pytest.fixture(scope="module")
def sequential_rows(tiny_cfg, tmp_path_factory):
    out = tmp_path_factory.mktemp("sequential") / "g"
    rows = read_csv(run_grid(tiny_cfg, out, **GRID, progress=False,
                             executor=SequentialExecutor(threads=1, progress=False)))
    cells = {(r["strategy"], r["seed"]) for r in rows}
    assert cells == {("theta0", 0), ("full", 0)} | {(s, seed) for s in ("random", "ralis")
                                                    for seed in (0, 1)}
    return rows


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    # workers import this module (the failing and dying cell functions below) like the driver
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}})
    yield ray
    ray.shutdown()


def test_the_grid_waits_for_what_each_cell_needs(tiny_cfg, tmp_path):
    cells = {c.name: c for c in grid_cells(tiny_cfg, tmp_path, ["random", "ralis"], [0, 1, 2],
                                           agent_seeds=[0, 1])}
    assert cells["theta0"].needs == () and cells["full"].needs == ()
    assert cells["agent-s0"].needs == cells["agent-s1"].needs == ()  # agents train side by side
    assert cells["random-s2"].needs == ("theta0",)
    assert cells["ralis-s1"].needs == ("theta0", "agent-s1")
    assert cells["ralis-s2"].needs == ("theta0", "agent-s0")  # no agent 2: the first one
    assert cells["ralis-s2"].policy == tmp_path.absolute() / "agent-s0" / "policy.safetensors"
    order = [c.name for c in grid_cells(tiny_cfg, tmp_path, ["random"], [0], upper_first=True)]
    assert order == ["theta0", "full", "random-s0"]  # a pool starts the long bound early


def test_local_pool_gives_the_same_table(tiny_cfg, tmp_path, sequential_rows):
    out = tmp_path / "g"
    rows = read_csv(run_grid(tiny_cfg, out, **GRID, progress=False,
                             executor=LocalExecutor(jobs=2, threads=1)))
    assert list(by_cell(rows)) == list(by_cell(sequential_rows))  # same rows, same order
    assert_same_numbers(rows, sequential_rows)
    # the driver held the grid folder's lock; every cell had its own; all were released
    assert (out / "agent-s1" / "policy.safetensors").exists()
    assert not (out / ".lock").read_text().strip()  # blanked, never emptied
    assert not (out / "ralis-s1" / ".lock").read_text().strip()


def test_ray_gives_the_same_table(tiny_cfg, tmp_path, sequential_rows, ray_cluster):
    rows = read_csv(run_grid(tiny_cfg, tmp_path / "g", **GRID, progress=False,
                             executor=RayExecutor(threads=1)))
    assert list(by_cell(rows)) == list(by_cell(sequential_rows))
    assert_same_numbers(rows, sequential_rows)


def break_cells(out, *names):
    """A run file without its run.sqlite: the cell refuses to open (one line), instantly."""
    for name in names:
        (out / name).mkdir(parents=True)
        (out / name / "checkpoint.safetensors").write_bytes(b"left over")


@pytest.mark.parametrize("executor", ["sequential", "local", "ray"])
def test_a_failing_cell_is_reported_and_the_others_finish(tiny_cfg, tmp_path, sequential_rows,
                                                         executor, request):
    if executor == "ray":
        request.getfixturevalue("ray_cluster")
    out = tmp_path / "g"
    break_cells(out, "agent-s0", "random-s1")
    runner = {"sequential": lambda: SequentialExecutor(threads=1, progress=False),
              "local": lambda: LocalExecutor(jobs=2, threads=1),
              "ray": lambda: RayExecutor(threads=1)}[executor]()
    with pytest.raises(GridError) as exc:
        run_grid(tiny_cfg, out, ["random", "ralis"], [0, 1], progress=False, executor=runner)
    failures = exc.value.failures
    assert set(failures) == {"agent-s0", "random-s1", "ralis-s0", "ralis-s1"}
    assert "checkpoint.safetensors" in failures["random-s1"]
    assert "no run.sqlite" in failures["agent-s0"]
    assert failures["ralis-s1"] == "not run: it needs agent-s0, which failed"
    assert "4 of 7 cells failed" in str(exc.value) and "random-s1:" in str(exc.value)
    # results.csv holds the cells that finished, with the numbers they always give
    rows = read_csv(exc.value.csv_path)
    assert {(r["strategy"], r["seed"]) for r in rows} == {("theta0", 0), ("random", 0),
                                                         ("full", 0)}
    assert_same_numbers(rows, sequential_rows)


def test_benchmark_command_reports_a_failed_cell_and_exits_2(tmp_path, monkeypatch, capsys):
    from cli_helpers import run_cli

    out = tmp_path / "g"
    break_cells(out, "random-s1")
    code, _, err = run_cli(monkeypatch, capsys, "benchmark", "--preset", "synthetic-tiny",
                           "--quiet", "--strategies", "random", "--seeds", "0,1",
                           "--no-upper-bound", "--out", str(out), "--threads-per-job", "1")
    assert code == 2
    assert "failed random-s1: " in err and "run.sqlite" in err
    lines = err.strip().splitlines()  # one error line, last (as benchmarks/faults.py expects)
    assert lines[-1].startswith("error: 1 of 3 cells failed (random-s1: ")
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:]
    assert "Traceback" not in err
    assert {r["seed"] for r in read_csv(out / "results.csv")} == {0}


@pytest.mark.parametrize("args, message", [
    (["--executor", "dask"], "choose one of sequential, local, ray"),
    (["--jobs", "4"], "add --executor local"),
    (["--executor", "local", "--address", "auto"], "needs --executor ray"),
    (["--executor", "local", "--jobs", "0"], "--jobs 0"),
    (["--executor", "local", "--threads-per-job", "0"], "--threads-per-job 0"),
])
def test_executor_options_are_checked_before_any_work(tmp_path, monkeypatch, capsys, args,
                                                      message):
    from cli_helpers import run_cli

    code, _, err = run_cli(monkeypatch, capsys, "benchmark", "--quiet", "--out",
                           str(tmp_path / "g"), *args)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "g").exists()


def test_an_unreachable_ray_address_is_one_line_at_once(tmp_path, monkeypatch, capsys):
    pytest.importorskip("ray")
    import socket

    from cli_helpers import run_cli

    with socket.socket() as free:  # a port where nothing listens
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    code, _, err = run_cli(monkeypatch, capsys, "benchmark", "--quiet", "--strategies", "random",
                           "--seeds", "0", "--no-upper-bound", "--out", str(tmp_path / "g"),
                           "--executor", "ray", "--address", f"127.0.0.1:{port}")
    assert code == 2 and f"--address 127.0.0.1:{port}: no Ray cluster answers there" in err
    assert "Traceback" not in err and not (tmp_path / "g").exists()


def test_sequential_path_never_imports_ray():
    import subprocess

    code = ("import sys; from ralis.loop.executors import make_executor; "
            "import ralis.loop.grid, ralis.cli; make_executor('sequential'); "
            "make_executor('local', jobs=2); assert 'ray' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_local_executor_defaults(monkeypatch, tiny_cfg, tmp_path):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert make_executor("local").jobs == 8
    cell = grid_cells(tiny_cfg, tmp_path, ["random"], [0])[0]
    for name in EXECUTORS[:2]:  # every executor: the config's threads, else 1, never the CPUs
        assert make_executor(name, jobs=None if name == "local" else 1).prepare(
            cell).cfg.threads == 1
        assert make_executor(name).prepare(replace(cell, cfg=replace(
            tiny_cfg, threads=3))).cfg.threads == 3
        assert make_executor(name, threads=2).prepare(cell).cfg.threads == 2
    with pytest.raises(ConfigError, match="--jobs 0"):
        LocalExecutor(jobs=0)


def cli_benchmark(out, *extra: str) -> list[dict]:
    """``ralis benchmark`` in a process of its own, whose torch has its default thread count
    (the CPU count), as a user runs it."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    done = subprocess.run(
        [sys.executable, "-m", "ralis", "benchmark", "--preset", "synthetic-tiny", "--strategies",
         "random", "--seeds", "0,1", "--budgets", "8,16", "--no-upper-bound", "--quiet",
         "--out", str(out), *extra], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return read_csv(out / "results.csv")


def test_the_executor_does_not_change_the_numbers(tmp_path, request):
    """Sequential and a local pool from the command line, each in a process with torch's
    default threads, and Ray (when installed) with its default: every cell the same numbers;
    each cell's config.json records its thread count."""
    sequential = cli_benchmark(tmp_path / "sequential")
    assert_same_numbers(cli_benchmark(tmp_path / "local", "--executor", "local", "--jobs", "2"),
                        sequential)
    for cell in ("theta0", "random-s0", "random-s1"):
        config = json.loads((tmp_path / "sequential" / cell / "config.json").read_text())
        assert config["threads"] == 1
    if importlib.util.find_spec("ray") is not None:
        request.getfixturevalue("ray_cluster")
        cfg = apply_overrides(get_preset("synthetic-tiny"), ["al.budgets=8,16"])
        rows = read_csv(run_grid(cfg, tmp_path / "ray", ["random"], [0, 1], upper=False,
                                 progress=False, executor=RayExecutor()))
        assert_same_numbers(rows, sequential)


# --------------------------------------------------------------------- a worker that dies
def die_once(cell, **kw):
    """run_cell, but random-s0's first try kills its worker process just before AL step 3
    (steps 1-2 and the final training at budget 8 are saved); every step tried is logged."""
    from ralis.loop.simulate import Simulation

    if cell.name != "random-s0":
        return run_cell(cell, **kw)
    marker, log = cell.run_dir.parent / "killed", cell.run_dir.parent / "steps.log"
    original = Simulation.do_step

    def do_step(self, n):
        with log.open("a") as f:
            f.write(f"{self.step + 1}\n")
        if self.step + 1 == 3 and not marker.exists():
            marker.touch()
            os._exit(9)  # as kill -9: no clean-up, no lock released by hand
        return original(self, n)

    Simulation.do_step = do_step
    try:
        return run_cell(cell, **kw)
    finally:
        Simulation.do_step = original


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_killed_worker_cell_resumes_from_its_saved_state(tiny_cfg, tmp_path, sequential_rows,
                                                          executor, request):
    said = []
    if executor == "ray":
        request.getfixturevalue("ray_cluster")
        runner = RayExecutor(threads=1, fn=die_once)
    else:
        runner = LocalExecutor(jobs=2, threads=1, fn=die_once, say=said.append)
    out = tmp_path / "g"
    rows = read_csv(run_grid(tiny_cfg, out, ["random"], [0, 1], upper=False, progress=False,
                             executor=runner))
    assert (out / "killed").exists()
    # the retry continued at step 3: nothing saved was done again
    assert (out / "steps.log").read_text().split() == ["1", "2", "3", "3", "4"]
    assert {(r["strategy"], r["seed"]) for r in rows} == {("theta0", 0), ("random", 0),
                                                         ("random", 1)}
    assert_same_numbers(rows, sequential_rows)  # as if never interrupted
    if executor == "local":
        assert any(line.startswith("random-s0: its worker process died; try 2") for line in said)
