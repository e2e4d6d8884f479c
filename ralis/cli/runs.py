"""The commands that run experiments: ``demo``, ``pretrain``, ``simulate``, ``upper-bound``,
``train-agent`` and ``benchmark``. Each resolves its options into a config
(:mod:`ralis.cli.options`), calls one entry point of :mod:`ralis.loop` and prints a table."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ralis.cli.options import (
    DataRoot,
    Dataset,
    Device,
    Out,
    Preset,
    Quiet,
    RegionKind,
    RegionSize,
    Resolution,
    Resume,
    Seed,
    Sets,
    build_config,
    console,
    default_out,
    int_list,
    resolve_options,
    with_kind,
)
from ralis.config import validate
from ralis.errors import RalisError


def budgets_table(title: str, results: list[dict]) -> Table:
    table = Table(title=title)
    table.add_column("strategy")
    budgets = sorted({b["regions"] for r in results for b in r["budgets"]})
    for b in budgets:
        table.add_column(f"{b} regions", justify="right")
    for r in results:
        by = {b["regions"]: b for b in r["budgets"]}
        table.add_row(r["strategy"], *[
            f"{100 * by[b]['miou']:.2f} ({100 * by[b]['pixel_fraction']:.1f}% px)"
            f"{' REGRESSED' if by[b].get('regressed') else ''}" if b in by else "" for b in budgets
        ])
    return table


def per_class_table(result: dict) -> Table:
    last = result["budgets"][-1]
    table = Table(title=f"{result['strategy']}: per-class IoU (%) at {last['regions']} regions")
    table.add_column("class")
    table.add_column("IoU", justify="right")
    table.add_column("labelled px %", justify="right")
    dist = last.get("class_distribution") or {}
    for name, v in last["iou"].items():
        share = dist.get(name)
        table.add_row(name, "-" if v is None else f"{100 * v:.2f}",
                      "" if share is None else f"{100 * share:.2f}")
    return table


def demo(
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/demo"),
    seed: Annotated[int, typer.Option(
        help="Seed of the run: pools, training order, dropout.")] = 0,
    workers: Annotated[int, typer.Option(
        min=1, help="Runs at a time after θ0, one process and one thread each.")] = 2,
    quiet: Quiet = False,
) -> None:
    """What labels do: θ0, random / entropy / BALD at two budgets and full supervision on
    synthetic street scenes, as one table and a plot (a few minutes)."""
    from ralis.loop.demo import demo_notes, demo_table, run_demo, summary_line

    cfg = build_config("synthetic-demo", seed=seed)
    console.print(f"[bold]ralis demo[/bold]: synthetic street scenes, preset synthetic-demo, "
                  f"seed {seed}, run directory {out}")
    done = run_demo(cfg, out, progress=not quiet, say=lambda text: console.print(text),
                    workers=workers)
    console.print(demo_table(done["rows"], f"test mIoU (%) on {cfg.data.synthetic_images[2]} "
                             f"test scenes, seed {seed}"))
    for line in demo_notes(done["rows"], cfg.data.pool_images, seed):
        console.print(line, highlight=False)
    console.print(summary_line(done["rows"]))
    console.print(f"plot: {done['plot']}; table: {done['csv']} (`ralis report {done['csv']}` "
                  f"for the full report); runs: {out}/<pretrain|random|entropy|bald|full>")


def pretrain_cmd(
    preset: Preset = None, dataset: Dataset = None, data_root: DataRoot = None,
    seed: Seed = None, out: Out = None, device: Device = None, resolution: Resolution = None,
    region_size: RegionSize = None, regions: RegionKind = None, set_: Sets = None, resume: Resume = False, quiet: Quiet = False,
) -> None:
    """Train the start model θ0 on the labelled start set D_T (early stopping on D_R).

    Writes model.safetensors and metrics.json into --out (default:
    runs/pretrain-PRESET-sSEED). Every epoch is checkpointed: rerun with --resume after an
    interruption.
    """
    from ralis.loop.pretrain import pretrain

    req = resolve_options(preset, dataset, data_root, seed, device, resolution, region_size, with_kind(set_, regions),
                          resume=resume)
    out = default_out("pretrain", req.cfg, out)
    path = pretrain(req.cfg, out, resume=resume, progress=not quiet, given=req.given,
                    given_preset=req.preset)
    m = json.loads((path.parent / "metrics.json").read_text())
    console.print(f"θ0 saved to {path}: val mIoU {100 * m['val_miou']:.2f}%, "
                  f"test mIoU {100 * m['test_miou']:.2f}% ({m['epochs']} epochs)")


def simulate(
    strategy: Annotated[str | None, typer.Option(
        help="random, entropy, bald or ralis (default: random; with --resume, the run's).")
    ] = None,
    budgets: Annotated[str | None, typer.Option(
        help="Comma-separated labelled-region budgets, e.g. 480,960,1440 (default: the "
             "preset's).")] = None,
    pool_size: Annotated[int | None, typer.Option(
        "--pool-size", help="Candidates per pool N for this strategy (default: the "
                            "preset's).")] = None,
    pretrained: Annotated[Path | None, typer.Option(
        help="θ0 model.safetensors from `ralis pretrain` (default: pretrain into "
             "OUT/pretrain).")] = None,
    policy: Annotated[Path | None, typer.Option(
        help="policy.safetensors from `ralis train-agent` (--strategy ralis only).")] = None,
    preset: Preset = None, dataset: Dataset = None, data_root: DataRoot = None,
    seed: Seed = None, out: Out = None, device: Device = None, resolution: Resolution = None,
    region_size: RegionSize = None, regions: RegionKind = None, set_: Sets = None, resume: Resume = False, quiet: Quiet = False,
) -> None:
    """Run one active-learning simulation; writes results.json into the run directory.

    --out defaults to runs/simulate-PRESET-STRATEGY-sSEED. Every acquisition is committed as
    it happens: rerun with --resume after an interruption.
    """
    from ralis.acquisition import STRATEGIES
    from ralis.loop.simulate import simulate as run_simulation
    from ralis.run.rundir import stored_command

    if strategy is None:
        stored = stored_command(out) if resume and out is not None else None
        strategy = stored.split(":", 1)[1] if stored and stored.startswith("simulate:") \
            else "random"
    STRATEGIES.get(strategy)
    if policy is not None and strategy != "ralis":
        raise RalisError(f"--policy is only used by --strategy ralis, not {strategy}; leave it "
                         "out")
    if strategy == "ralis" and policy is None and not resume:
        raise RalisError("--strategy ralis needs --policy PATH (a policy.safetensors from "
                         "`ralis train-agent`)")
    extra = []
    if budgets:
        extra.append(f"al.budgets={budgets}")
    if pool_size is not None:
        extra.append(f"al.pool_sizes.{strategy}={pool_size}")
    req = resolve_options(preset, dataset, data_root, seed, device, resolution, region_size,
                          with_kind(set_, regions), extra, resume=resume)
    kwargs = {"policy": policy} if policy is not None else {}
    out = default_out("simulate", req.cfg, out, f"-{strategy}")
    results = run_simulation(req.cfg, strategy, out, pretrained, resume, not quiet, kwargs,
                             given=req.given, given_preset=req.preset)
    console.print(budgets_table(f"test mIoU (%) — {strategy}, seed {results['seed']}",
                                [results]))
    for line in results.get("warnings", []):  # a budget that ended below θ0: what to change
        console.print(f"[bold yellow]warning[/bold yellow] {line}", highlight=False)
    console.print(f"results: {out / 'results.json'}")


def upper_bound_cmd(
    preset: Preset = None, dataset: Dataset = None, data_root: DataRoot = None,
    seed: Seed = None, out: Out = None, device: Device = None, resolution: Resolution = None,
    region_size: RegionSize = None, regions: RegionKind = None, set_: Sets = None, resume: Resume = False, quiet: Quiet = False,
) -> None:
    """Full supervision with the same recipe (every training image fully labelled).

    --out defaults to runs/upper-bound-PRESET-sSEED.
    """
    from ralis.loop.pretrain import upper_bound

    req = resolve_options(preset, dataset, data_root, seed, device, resolution, region_size, with_kind(set_, regions),
                          resume=resume)
    out = default_out("upper-bound", req.cfg, out)
    results = upper_bound(req.cfg, out, resume=resume, progress=not quiet, given=req.given,
                          given_preset=req.preset)
    console.print(per_class_table(results))
    console.print(f"upper bound test mIoU {100 * results['budgets'][0]['miou']:.2f}%; "
                  f"results: {out / 'results.json'}")


def train_agent_cmd(
    episodes: Annotated[int | None, typer.Option(
        help="Training episodes (search: generations; default: the preset's).")] = None,
    mode: Annotated[str | None, typer.Option(
        help="Learner: faithful or fixed (the paper's DQN), credit (per-step credit over an "
             "entropy-started scorer), search (entropy-started scorer tuned by episode-level "
             "search) or imitation (entropy-started scorer imitating a ground-truth expert); "
             "default: the preset's.")] = None,
    preset: Preset = None, dataset: Dataset = None, data_root: DataRoot = None,
    seed: Seed = None, out: Out = None, device: Device = None, resolution: Resolution = None,
    region_size: RegionSize = None, regions: RegionKind = None, set_: Sets = None, resume: Resume = False, quiet: Quiet = False,
) -> None:
    """Train the RALIS query agent on D_T by playing the labelling game.

    Writes policy.safetensors and agent.json into --out (default: runs/agent-PRESET-sSEED);
    rerun with --resume after an interruption.
    """
    from ralis.loop.agent import train_agent

    extra = []
    if episodes is not None:
        extra.append(f"agent.episodes={episodes}")
    if mode is not None:
        extra.append(f"agent.mode={mode}")
    req = resolve_options(preset, dataset, data_root, seed, device, resolution, region_size,
                          with_kind(set_, regions), extra, resume=resume)
    out = default_out("agent", req.cfg, out)
    summary = train_agent(req.cfg, out, resume=resume, progress=not quiet, given=req.given,
                          given_preset=req.preset)
    table = Table(title=f"agent training ({summary['mode']} mode), seed {summary['seed']}")
    explore = "expert share" if summary["mode"] == "imitation" else "epsilon"
    for col in ("episode", "return", "final D_R mIoU", explore, "loss", "s"):
        table.add_column(col, justify="right")
    for e in summary["episodes_log"]:
        table.add_row(str(e["episode"]), f"{e['return']:.2f}", f"{100 * e['final_miou']:.2f}",
                      "-" if e["epsilon"] is None else f"{e['epsilon']:.2f}",
                      "-" if e["loss"] is None else f"{e['loss']:.4f}",
                      f"{e['wall']:.0f}")
    console.print(table)
    console.print(f"start-model D_R mIoU {100 * summary['start_miou']:.2f}%; "
                  f"policy: {summary['policy']}")
    if summary.get("selected_episode") is not None:
        start = "" if summary["mode"] == "fixed" else "; 0 = the start scorer, entropy"
        console.print(f"handed out: the policy of episode {summary['selected_episode']} (best "
                      f"on the held-out selection episodes{start})")


def benchmark(
    strategies: Annotated[str, typer.Option(help="Comma-separated strategies.")] =
        "random,entropy,bald,ralis",
    seeds: Annotated[str, typer.Option(help="Comma-separated AL seeds.")] = "20,50,82",
    agent_seeds: Annotated[str | None, typer.Option(
        "--agent-seeds", help="Seeds of the RALIS agents to train (default: the first seed; "
        "RALIS seed s uses agent s if trained, else the first).")] = None,
    budgets: Annotated[str | None, typer.Option(
        help="Comma-separated region budgets (default: the preset's).")] = None,
    no_upper_bound: Annotated[bool, typer.Option(
        "--no-upper-bound", help="Skip the full-supervision run.")] = False,
    report_dir: Annotated[Path | None, typer.Option(
        "--report", help="Also write the Markdown report into this folder.")] = None,
    executor: Annotated[str, typer.Option(
        "--executor", help="Where the cells run: sequential (one at a time, here), local (a "
        "pool of --jobs processes on this machine) or ray (Ray tasks; pip install "
        "'ralis[ray]').")] = "sequential",
    jobs: Annotated[int | None, typer.Option(
        "--jobs", help="local: worker processes; ray: most cells at once (default: the CPU "
        "count for local, every cell that is ready for ray).")] = None,
    threads_per_job: Annotated[int | None, typer.Option(
        "--threads-per-job", help="Torch threads of each cell, and its Ray CPUs (default: the "
        "config's threads, else 1, in every executor: a cell's numbers do not depend on where "
        "it runs).")] = None,
    address: Annotated[str | None, typer.Option(
        "--address", help="ray: the cluster to join, e.g. auto or HOST:6379 (default: a Ray "
        "started on this machine).")] = None,
    gpus_per_job: Annotated[float | None, typer.Option(
        "--gpus-per-job", help="ray: GPUs each cell asks for (default: 1 on CUDA, else 0).")
        ] = None,
    preset: Preset = None, dataset: Dataset = None, data_root: DataRoot = None,
    out: Out = None, device: Device = None, resolution: Resolution = None,
    region_size: RegionSize = None, regions: RegionKind = None, set_: Sets = None, quiet: Quiet = False,
) -> None:
    """Run the grid strategies x seeds x budgets (+ θ0, agents, upper bound) into one CSV.

    --out defaults to runs/grid-PRESET. There is no --resume flag: finished cells are skipped
    and interrupted ones resume, so rerun the same command after an interruption. A cell
    whose stored settings differ from the command's is refused.

    With --executor local or ray, cells run side by side: θ0, the agents and the upper bound
    at once, each AL run once θ0 (and, for ralis, its agent) is there. A cell that fails is
    reported in one line and the others finish; the command then exits with 2.
    """
    from ralis.acquisition import STRATEGIES
    from ralis.loop.executors import make_executor
    from ralis.loop.grid import run_grid

    names = [s.strip() for s in strategies.split(",") if s.strip()]
    for name in names:
        STRATEGIES.get(name)
    extra = [f"al.budgets={budgets}"] if budgets else []
    # on Ray the GPUs are the workers': this machine need not have one
    on_ray_gpu = executor == "ray" and device is not None and device.startswith("cuda")
    cfg = build_config(preset, dataset, data_root, 0, "cpu" if on_ray_gpu else device,
                       resolution, region_size, with_kind(set_, regions), extra)
    if on_ray_gpu:
        cfg = validate(replace(cfg, device=device))
    out = out or Path("runs") / f"grid-{cfg.preset}"
    seed_list = int_list(seeds, "--seeds")
    runner = make_executor(executor, jobs, threads_per_job, address, gpus_per_job,
                           progress=not quiet)
    # a failed cell: the others finish, then one `error:` line (GridError) and exit 2
    csv_path = run_grid(cfg, out, names, seed_list,
                        int_list(agent_seeds, "--agent-seeds") if agent_seeds else None,
                        upper=not no_upper_bound, progress=not quiet, executor=runner)
    console.print(f"results table: {csv_path}")
    if report_dir is not None:
        from ralis.report import write_report

        run_dirs = {n: out / f"{n}-s{seed_list[0]}" for n in names}
        console.print(f"report: {write_report(csv_path, report_dir, run_dirs=run_dirs)}")
