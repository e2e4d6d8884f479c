"""Runs you can trust: one lock per run directory, files that agree with run.sqlite, exact
resumes, refused resumes with other settings, non-finite training stopped with a message."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ralis.config import apply_overrides
from ralis.errors import ConfigError, RalisError
from ralis.loop.simulate import simulate
from ralis.run.rundir import RunLockedError, lock_dir, open_run, unlock_dir
from ralis.run.store import RunStore
from ralis.training.divergence import DivergenceError

ROOT = Path(__file__).resolve().parents[2]


def run(cfg, proto, theta0, out, strategy="random", **kw):
    return simulate(cfg, strategy, out, pretrained=theta0, progress=False, proto=proto, **kw)


@pytest.fixture(scope="module")
def finished(tiny_cfg, tiny_proto, tiny_theta0, tmp_path_factory):
    """A finished reference run, copied by tests that damage it."""
    out = tmp_path_factory.mktemp("ref") / "run"
    res = run(tiny_cfg, tiny_proto, tiny_theta0, out, "entropy")
    return out, res


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock"))
    return dst


# --- the lock ----------------------------------------------------------------------------------
def test_a_second_process_is_refused_with_the_holder_named(tmp_path):
    code = ("import sys, time; from ralis.run.rundir import lock_dir; "
            f"lock_dir({str(tmp_path)!r}, 'simulate:entropy'); print('locked', flush=True); "
            "time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=rf"in use by process {proc.pid} .*simulate"):
            lock_dir(tmp_path, "simulate:entropy")
    finally:
        proc.kill()
        proc.wait()
    lock_dir(tmp_path, "simulate:entropy")  # the lock died with its process
    lock_dir(tmp_path, "simulate:entropy")  # re-entrant within one process
    unlock_dir(tmp_path)
    unlock_dir(tmp_path)


def test_two_resumes_at_once_give_one_correct_run(finished, tmp_path):
    """Two `ralis simulate --resume` on one interrupted directory: one runs, the other is
    refused or finds it finished; the store never holds a region twice."""
    ref, res = finished
    cut = copy_run(ref, tmp_path / "cut")
    store = RunStore(cut)
    steps = store.acquisitions()
    store.close()
    # roll the copy back to an interrupted state: keep only the first step's record
    store = RunStore(cut)
    store.drop_acquisitions_after(0)
    store._write("DELETE FROM steps")
    store._write("DELETE FROM budgets")
    store._write("DELETE FROM meta WHERE key LIKE 'checkpoint:%'")
    store.close()
    (cut / "checkpoint.safetensors").unlink()
    (cut / "results.json").unlink()
    cmd = [sys.executable, "-m", "ralis", "simulate", "--strategy", "entropy", "--out", str(cut),
           "--resume", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=ROOT, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    assert 0 in codes, outs
    for code, (_, err) in zip(codes, outs, strict=True):
        assert code == 0 or (code == 2 and "in use by process" in err and "Traceback" not in err)
    store = RunStore(cut)
    after = store.acquisitions()
    budgets = store.budgets()
    store.close()
    assert after == steps  # every region once, in the same order as the uninterrupted run
    assert [b["miou"] for b in budgets] == pytest.approx([b["miou"] for b in res["budgets"]])


# --- files that agree ------------------------------------------------------------------------
def test_lost_or_damaged_store_is_an_error_not_a_new_run(finished, tiny_cfg, tiny_proto,
                                                          tiny_theta0, tmp_path):
    ref, _ = finished
    lost = copy_run(ref, tmp_path / "lost")
    (lost / "run.sqlite").unlink()
    with pytest.raises(ConfigError, match="no run.sqlite: its record is lost"):
        run(tiny_cfg, tiny_proto, tiny_theta0, lost, "entropy", resume=True)
    damaged = copy_run(ref, tmp_path / "damaged")
    data = (damaged / "run.sqlite").read_bytes()
    (damaged / "run.sqlite").write_bytes(data[: len(data) // 2])
    with pytest.raises(RalisError, match="run.sqlite is damaged"):
        run(tiny_cfg, tiny_proto, tiny_theta0, damaged, "entropy", resume=True)


def test_missing_or_foreign_checkpoint_is_an_error(finished, tiny_cfg, tiny_proto, tiny_theta0,
                                                   tmp_path):
    ref, _ = finished
    gone = copy_run(ref, tmp_path / "gone")
    (gone / "checkpoint.safetensors").unlink()
    with pytest.raises(ConfigError, match="checkpoint.safetensors is missing"):
        run(tiny_cfg, tiny_proto, tiny_theta0, gone, "entropy", resume=True)
    other = run(tiny_cfg, tiny_proto, tiny_theta0, tmp_path / "other", "entropy")
    assert other
    foreign = copy_run(ref, tmp_path / "foreign")
    shutil.copy(tmp_path / "other" / "checkpoint.safetensors",
                foreign / "checkpoint.safetensors")
    with pytest.raises(ConfigError, match="belongs to another run"):
        run(tiny_cfg, tiny_proto, tiny_theta0, foreign, "entropy", resume=True)
    truncated = copy_run(ref, tmp_path / "truncated")
    ck = truncated / "checkpoint.safetensors"
    ck.write_bytes(ck.read_bytes()[:1000])
    with pytest.raises(RalisError, match="checkpoint.safetensors"):
        run(tiny_cfg, tiny_proto, tiny_theta0, truncated, "entropy", resume=True)


def test_views_are_rewritten_or_refused(finished, tiny_cfg, tiny_proto, tiny_theta0, tmp_path):
    ref, res = finished
    views = copy_run(ref, tmp_path / "views")
    for name in ("config.json", "command.json", "results.json", "acquired_regions.csv",
                 "inputs.json"):
        (views / name).unlink()
    again = run(tiny_cfg, tiny_proto, tiny_theta0, views, "entropy", resume=True)
    assert [b["miou"] for b in again["budgets"]] == [b["miou"] for b in res["budgets"]]
    assert (views / "config.json").exists() and (views / "results.json").exists()
    edited = copy_run(ref, tmp_path / "edited")
    text = (edited / "config.json").read_text().replace('"seed": 0', '"seed": 7')
    (edited / "config.json").write_text(text)
    with pytest.raises(ConfigError, match="config.json differs .*seed"):
        run(tiny_cfg, tiny_proto, tiny_theta0, edited, "entropy", resume=True)
    (edited / "config.json").write_text(text[: len(text) // 2])  # unreadable: rewritten
    again = run(tiny_cfg, tiny_proto, tiny_theta0, edited, "entropy", resume=True)
    assert [b["miou"] for b in again["budgets"]] == [b["miou"] for b in res["budgets"]]


def test_changed_start_model_is_refused(finished, tiny_cfg, tiny_proto, tiny_theta0, tmp_path):
    ref, _ = finished
    moved = copy_run(ref, tmp_path / "moved")
    fake = tmp_path / "theta0-copy.safetensors"
    from ralis.files.safe import load_file, save_file

    tree, record = load_file(tiny_theta0, "model")
    first = next(iter(tree["state_dict"]))
    tree["state_dict"][first] = tree["state_dict"][first] + 1
    save_file(fake, tree, "model", record)
    with pytest.raises(ConfigError, match="another --pretrained file"):
        run(tiny_cfg, tiny_proto, fake, moved, "entropy", resume=True)
    # a moved run directory with its θ0 moved along resumes: files are known by content
    shutil.copy(tiny_theta0, tmp_path / "theta0-moved.safetensors")
    run(tiny_cfg, tiny_proto, tmp_path / "theta0-moved.safetensors", moved, "entropy",
        resume=True)


# --- resume checks the command line ------------------------------------------------------------
def test_resume_with_other_settings_is_refused_with_every_field(finished, tiny_cfg, tiny_proto,
                                                                 tiny_theta0, tmp_path):
    ref, _ = finished
    again = copy_run(ref, tmp_path / "again")
    other = apply_overrides(replace(tiny_cfg, seed=3), ["train.lr=0.5"])
    with pytest.raises(ConfigError, match=r"seed: stored 0, given 3; train.lr: stored 0.01, "
                                          r"given 0.5"):
        run(other, tiny_proto, tiny_theta0, again, "entropy", resume=True)
    # from the command line only what was said is compared; the rest is the stored run
    with pytest.raises(ConfigError, match="agent.episodes: stored 2, given 9"):
        run(tiny_cfg, tiny_proto, tiny_theta0, again, "entropy", resume=True,
            given=["agent.episodes=9"])
    res = run(apply_overrides(tiny_cfg, ["train.lr=0.5"]), tiny_proto, tiny_theta0, again,
              "entropy", resume=True, given=["seed=0"])
    assert res["seed"] == 0
    with pytest.raises(ConfigError, match="preset: stored 'synthetic-tiny', given "
                                          "'synthetic-demo'"):
        run(tiny_cfg, tiny_proto, tiny_theta0, again, "entropy", resume=True, given=[],
            given_preset="synthetic-demo")


def test_out_that_cannot_be_a_run_directory(tmp_path, tiny_cfg, monkeypatch):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        open_run(tmp_path / "f", tiny_cfg, "pretrain", False)
    with pytest.raises(ConfigError, match="part of the path is a file"):
        open_run(tmp_path / "f" / "run", tiny_cfg, "pretrain", False)
    real_open = os.open

    def read_only(path, flags, *a):
        if str(path).endswith(".lock"):
            raise OSError(30, "Read-only file system")
        return real_open(path, flags, *a)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(ConfigError, match="cannot write in run directory .*Read-only"):
        open_run(tmp_path / "ro", tiny_cfg, "pretrain", False)


# --- non-finite is an error ------------------------------------------------------------------
@pytest.mark.parametrize("setting, needle", [
    ("train.lr=1e6", "train.lr=1e\\+06 is likely too high"),
    ("train.pretrain_lr=1e6", "train.pretrain_lr=1e\\+06 is likely too high"),
])
def test_divergent_training_stops_with_the_setting_named(setting, needle, tiny_cfg, tiny_proto,
                                                         tmp_path):
    cfg = apply_overrides(tiny_cfg, [setting])
    with pytest.raises(DivergenceError, match=needle):
        simulate(cfg, "random", tmp_path / "d", progress=False, proto=tiny_proto)


def test_divergent_agent_stops_with_agent_lr_named(tiny_cfg, tiny_proto, tmp_path):
    from ralis.loop.agent import train_agent

    cfg = apply_overrides(tiny_cfg, ["agent.lr=1e12", "agent.episodes=3"])
    with pytest.raises(DivergenceError, match="agent.lr=1e\\+12"):
        train_agent(cfg, tmp_path / "a", progress=False, proto=tiny_proto)


def test_nan_policy_is_refused(tiny_cfg, tiny_proto, tmp_path):
    from ralis.files.safe import load_file, save_file
    from ralis.loop.agent import train_agent
    from ralis.rl.policy import load_policy

    summary = train_agent(apply_overrides(tiny_cfg, ["agent.episodes=1"]), tmp_path / "a",
                          progress=False, proto=tiny_proto)
    tree, record = load_file(Path(summary["policy"]), "policy")
    tree["state_dict"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                          for k, v in tree["state_dict"].items()}
    save_file(tmp_path / "nan.safetensors", tree, "policy", record)
    with pytest.raises(RalisError, match="NaN or infinite"):
        load_policy(tmp_path / "nan.safetensors")
    # a policy of other classes is refused by name
    record["classes"] = ["x"] * len(record["classes"])
    save_file(tmp_path / "other.safetensors", load_file(Path(summary["policy"]), "policy")[0],
              "policy", record)
    with pytest.raises(ConfigError, match="trained on classes x, x"):
        simulate(tiny_cfg, "ralis", tmp_path / "s", progress=False, proto=tiny_proto,
                 strategy_kwargs={"policy": tmp_path / "other.safetensors"})


# --- θ0 pretraining checkpoints every epoch and resumes exactly -------------------------------
def test_pretraining_resumes_exactly(tiny_cfg, tiny_proto, tmp_path, monkeypatch):
    from ralis.loop.pretrain import pretrain
    from ralis.run import names as pre
    from ralis.training import train as train_mod

    cfg = apply_overrides(tiny_cfg, ["train.pretrain_epochs=4", "train.pretrain_patience=4"])
    ref = pretrain(cfg, tmp_path / "ref", progress=False, proto=tiny_proto)
    real_pass = train_mod.train_pass
    calls = {"n": 0}

    def crash_in_epoch_3(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_pass(*a, **k)

    monkeypatch.setattr(train_mod, "train_pass", crash_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        pretrain(cfg, tmp_path / "cut", progress=False, proto=tiny_proto)
    assert pre.TRAIN_CHECKPOINT in os.listdir(tmp_path / "cut")
    monkeypatch.setattr(train_mod, "train_pass", real_pass)
    resumed_calls = {"n": 0}

    def counting(*a, **k):
        resumed_calls["n"] += 1
        return real_pass(*a, **k)

    monkeypatch.setattr(train_mod, "train_pass", counting)
    cut = pretrain(cfg, tmp_path / "cut", resume=True, progress=False, proto=tiny_proto)
    assert resumed_calls["n"] == 2  # epochs 3 and 4 only
    a = load_file_state(ref)
    b = load_file_state(cut)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def load_file_state(path, kind="model"):
    from ralis.files.safe import load_file

    return load_file(path, kind)[0]["state_dict"]


# --- progress in logs ---------------------------------------------------------------------
def test_progress_in_a_file_is_plain_lines(tmp_path):
    from ralis.progress import progress_bar

    log = tmp_path / "log.txt"
    with log.open("w") as f:
        bar = progress_bar(range(50), desc="work", file=f, interval=0.0)
        for _ in bar:
            time.sleep(0.001)
        bar2 = progress_bar(total=10, desc="regions", file=f, interval=3600)
        bar2.update(4)
        bar2.close()
    text = log.read_text()
    assert "\r" not in text and "\x1b" not in text
    assert "work: 50/50 it (100%)" in text
    assert text.count("regions:") == 1 and "regions: 4/10" in text


# --- files in run directories are data, never code -------------------------------------------
def test_run_directory_loaders_refuse_pickle_payloads(finished, tiny_cfg, tiny_proto,
                                                      tiny_theta0, tmp_path, pickle_payload):
    """A crafted checkpoint, agent state or training checkpoint in a run directory (they get
    copied between machines and people) is refused on --resume; its payload never runs."""
    from ralis.loop.agent import train_agent
    from ralis.loop.pretrain import pretrain

    ref, _ = finished
    marker = tmp_path / "marker"
    sim = copy_run(ref, tmp_path / "sim")
    pickle_payload(sim / "checkpoint.safetensors", marker, {"step": 1})
    with pytest.raises(RalisError, match="pickled torch file"):
        run(tiny_cfg, tiny_proto, tiny_theta0, sim, "entropy", resume=True)
    cfg = apply_overrides(tiny_cfg, ["agent.episodes=1"])
    train_agent(cfg, tmp_path / "agent", progress=False, proto=tiny_proto)
    pickle_payload(tmp_path / "agent" / "agent_checkpoint.safetensors", marker)
    with pytest.raises(RalisError, match="pickled torch file"):
        train_agent(cfg, tmp_path / "agent", resume=True, progress=False, proto=tiny_proto)
    cut = tmp_path / "pre"
    pretrain(tiny_cfg, cut, progress=False, proto=tiny_proto)
    store = RunStore(cut)
    store._write("DELETE FROM meta WHERE key LIKE 'file:%'")  # as if killed before the end
    store.close()
    pickle_payload(cut / "train_checkpoint.safetensors", marker)
    with pytest.raises(RalisError, match="pickled torch file"):
        pretrain(tiny_cfg, cut, resume=True, progress=False, proto=tiny_proto)
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    pickle_payload(legacy / "checkpoint.pt", marker)
    with pytest.raises(ConfigError, match="written by ralis 0.1"):
        run(tiny_cfg, tiny_proto, tiny_theta0, legacy, "entropy", resume=True)
    assert not marker.exists()


def test_policy_with_shapes_that_do_not_fit_its_record(tiny_cfg, tiny_proto, tmp_path):
    from ralis.files.safe import load_file, save_file
    from ralis.loop.agent import train_agent
    from ralis.rl.policy import load_policy

    summary = train_agent(apply_overrides(tiny_cfg, ["agent.episodes=1"]), tmp_path / "a",
                          progress=False, proto=tiny_proto)
    tree, record = load_file(Path(summary["policy"]), "policy")
    record["features"]["kl_bins"] = 16  # the record now describes a smaller network
    save_file(tmp_path / "p.safetensors", tree, "policy", record)
    with pytest.raises(RalisError, match="does not match the query network"):
        load_policy(tmp_path / "p.safetensors")
    record["features"]["num_classes"] = 10**9  # never allocated: refused from the record
    save_file(tmp_path / "p.safetensors", tree, "policy", record)
    with pytest.raises(RalisError, match="invalid feature layout"):
        load_policy(tmp_path / "p.safetensors")


# --- regressions from the review -------------------------------------------------------------
def test_resume_on_changed_data_is_refused(finished, tiny_cfg, tiny_proto, tiny_theta0, tmp_path):
    from ralis.data.protocol import ImageSet

    ref, _ = finished
    moved = copy_run(ref, tmp_path / "moved")
    test = tiny_proto.test
    other = replace(tiny_proto, test=ImageSet(test.images_u8.flip(-1), test.masks.flip(-1),
                                                 test.names))
    with pytest.raises(ConfigError, match=r"data of .* changed since the run started \(test"):
        run(tiny_cfg, other, tiny_theta0, moved, "entropy", resume=True)


def test_bad_data_leaves_no_run_directory_behind(tiny_cfg, tmp_path):
    from ralis.errors import DataError

    bad = apply_overrides(tiny_cfg, ["data.dataset=folder", f"data.root={tmp_path / 'none'}"])
    with pytest.raises(RalisError):
        simulate(bad, "random", tmp_path / "r", progress=False)
    assert not (tmp_path / "r" / "run.sqlite").exists()
    assert DataError


def test_a_failed_simulation_releases_its_lock(tiny_cfg, tiny_proto, tiny_theta0, tmp_path):
    from ralis.files import folders
    from ralis.loop.simulate import Simulation
    from ralis.models import load_model

    model, _ = load_model(tiny_theta0)
    with pytest.raises(ConfigError, match="larger than the pool"):
        Simulation(apply_overrides(tiny_cfg, ["al.budgets=99999"]), "random", tmp_path / "s",
                   tiny_proto, model, progress=False)
    assert os.path.realpath(tmp_path / "s") not in folders._HELD


def test_agent_policy_is_rewritten_after_a_crash_between_files(tiny_cfg, tiny_proto, tmp_path,
                                                               monkeypatch):
    from ralis.agents import persist as agent_mod
    from ralis.loop.agent import train_agent

    cfg = apply_overrides(tiny_cfg, ["agent.episodes=2"])
    ref = train_agent(cfg, tmp_path / "ref", progress=False, proto=tiny_proto)
    real = agent_mod.save_policy
    calls = {"n": 0}

    def crash_on_second(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:  # episode 2's checkpoint is saved, its policy is not
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(agent_mod, "save_policy", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        train_agent(cfg, tmp_path / "cut", progress=False, proto=tiny_proto)
    monkeypatch.setattr(agent_mod, "save_policy", real)
    cut = train_agent(cfg, tmp_path / "cut", resume=True, progress=False, proto=tiny_proto)
    a, b = load_file_state(Path(ref["policy"]), "policy"), load_file_state(Path(cut["policy"]),
                                                                           "policy")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_of_a_run_on_a_missing_device_is_one_line(tmp_path, tiny_cfg):
    cuda = replace(tiny_cfg, device="cuda")
    open_run(tmp_path / "r", cuda, "pretrain", False).close()
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        open_run(tmp_path / "r", cuda, "pretrain", True)


def test_empty_store_is_named(tmp_path, tiny_cfg):
    open_run(tmp_path / "r", tiny_cfg, "pretrain", False).close()
    (tmp_path / "r" / "run.sqlite").write_bytes(b"")
    with pytest.raises(RalisError, match="run.sqlite is empty"):
        open_run(tmp_path / "r", tiny_cfg, "pretrain", True)


def test_a_moved_run_finds_its_own_theta0_and_misses_a_deleted_one(tiny_cfg, tiny_proto,
                                                                   tmp_path):
    first = simulate(tiny_cfg, "random", tmp_path / "a", progress=False, proto=tiny_proto)
    shutil.move(tmp_path / "a", tmp_path / "b")
    again = simulate(tiny_cfg, "random", tmp_path / "b", resume=True, progress=False,
                     proto=tiny_proto)
    assert [b["miou"] for b in again["budgets"]] == [b["miou"] for b in first["budgets"]]
    (tmp_path / "b" / "pretrain" / "model.safetensors").unlink()
    with pytest.raises(RalisError, match="model.safetensors"):
        simulate(tiny_cfg, "random", tmp_path / "b", resume=True, progress=False,
                 proto=tiny_proto)


def test_store_names_the_code_that_wrote_its_results(tmp_path, monkeypatch):
    """The first step, budget or episode a store writes adds this process's revision, once."""
    import ralis.provenance as provenance
    from ralis.run.store import RunStore

    store = RunStore.create(tmp_path, {"command": "train-agent", "git_revision": "c0ffee1"})
    assert store.computed_by() == "c0ffee1"  # nothing computed yet: the creating revision
    monkeypatch.setattr(provenance, "git_revision", lambda: "aaa1111")
    store.add_episode({"episode": 1, "final_miou": 0.2})
    monkeypatch.setattr(provenance, "git_revision", lambda: "bbb2222")
    store.add_episode({"episode": 2, "final_miou": 0.3})  # the same process: noted already
    assert store.computed_by() == "aaa1111"
    store.close()
    reopened = RunStore(tmp_path)
    assert reopened.computed_by() == "aaa1111"  # reading adds nothing
    reopened.add_step({"step": 1, "labelled": 4})
    assert reopened.computed_by() == "aaa1111 + bbb2222"
    reopened.close()
