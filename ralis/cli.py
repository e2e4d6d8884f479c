"""The ``ralis`` command line. User mistakes print one line and exit 2, never a traceback."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ralis.config import PRESETS, RunConfig, apply_overrides, get_preset, validate
from ralis.errors import RalisError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Region-based active learning for semantic segmentation (RALIS and baselines).",
    pretty_exceptions_enable=False,
)
console = Console()

# ------------------------------------------------------------------------- shared options
Preset = Annotated[str, typer.Option(help=f"Starting config: {', '.join(PRESETS.names())}.")]
Dataset = Annotated[str | None, typer.Option(
    help="Dataset: camvid, cityscapes, folder, synthetic (default: the preset's).")]
DataRoot = Annotated[Path | None, typer.Option(
    "--data-root", help="Dataset folder (or the description file for `folder`).")]
Seed = Annotated[int, typer.Option(help="Seed of the run (pools, training order, dropout).")]
Out = Annotated[Path | None, typer.Option(help="Run directory (default: runs/<command>-<preset>-s<seed>).")]
Device = Annotated[str | None, typer.Option(help="Torch device: cpu, cuda, cuda:1 (default: the preset's).")]
Resolution = Annotated[str | None, typer.Option(help="Working resolution HxW, e.g. 180x240.")]
RegionSize = Annotated[str | None, typer.Option(
    "--region-size", help="Region size hxw in pixels at the working resolution, e.g. 45x40.")]
Sets = Annotated[list[str] | None, typer.Option(
    "--set", help="Override any config field: --set train.lr=0.01 (repeatable).")]
Resume = Annotated[bool, typer.Option(help="Continue the interrupted run in --out.")]
Quiet = Annotated[bool, typer.Option(help="No progress bars.")]


def build_config(
    preset: str, dataset: str | None = None, data_root: Path | None = None, seed: int = 0,
    device: str | None = None, resolution: str | None = None, region_size: str | None = None,
    sets: list[str] | None = None, extra: list[str] | None = None,
) -> RunConfig:
    cfg = replace(get_preset(preset), seed=seed)
    assignments = list(extra or [])
    if dataset:
        assignments.append(f"data.dataset={dataset}")
    if data_root:
        assignments.append(f"data.root={data_root}")
    if device:
        assignments.append(f"device={device}")
    if resolution:
        assignments.append(f"data.resolution={resolution}")
    if region_size:
        assignments.append(f"data.region_size={region_size}")
    cfg = apply_overrides(cfg, assignments + list(sets or []))
    if cfg.device != "cpu":
        from ralis.loop.session import check_device

        check_device(cfg.device)
    return validate(cfg)


def default_out(command: str, cfg: RunConfig, out: Path | None, suffix: str = "") -> Path:
    return out or Path("runs") / f"{command}-{cfg.preset}{suffix}-s{cfg.seed}"


def budgets_table(title: str, results: list[dict]) -> Table:
    table = Table(title=title)
    table.add_column("strategy")
    budgets = sorted({b["regions"] for r in results for b in r["budgets"]})
    for b in budgets:
        table.add_column(f"{b} regions", justify="right")
    for r in results:
        by = {b["regions"]: b for b in r["budgets"]}
        table.add_row(r["strategy"], *[
            f"{100 * by[b]['miou']:.2f} ({100 * by[b]['pixel_fraction']:.1f}% px)" if b in by else ""
            for b in budgets
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


# ------------------------------------------------------------------------------- commands
@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/demo"),
    seed: Seed = 0,
    quiet: Quiet = False,
) -> None:
    """Pretrain on synthetic street scenes, then compare random, entropy and BALD (a few minutes)."""
    from ralis.data.protocol import load_protocol
    from ralis.loop.pretrain import pretrain
    from ralis.loop.simulate import simulate

    cfg = build_config("synthetic-demo", seed=seed)
    console.print(f"[bold]ralis demo[/bold]: synthetic street scenes, preset synthetic-demo, "
                  f"seed {seed}, run directory {out}")
    proto = load_protocol(cfg.data, not quiet)
    theta0 = pretrain(cfg, out / "pretrain", resume=True, progress=not quiet, proto=proto)
    results = []
    for strategy in ("random", "entropy", "bald"):
        results.append(simulate(cfg, strategy, out / strategy, pretrained=theta0, resume=True,
                                progress=not quiet, proto=proto))
    console.print(budgets_table("test mIoU (%) by labelled regions", results))
    best = max(results, key=lambda r: r["budgets"][-1]["miou"])
    console.print(per_class_table(best))
    console.print(f"results: {out}/<strategy>/results.json")


@app.command(name="pretrain")
def pretrain_cmd(
    preset: Preset = "synthetic-tiny", dataset: Dataset = None, data_root: DataRoot = None,
    seed: Seed = 0, out: Out = None, device: Device = None, resolution: Resolution = None,
    region_size: RegionSize = None, set_: Sets = None, resume: Resume = False, quiet: Quiet = False,
) -> None:
    """Train the start model θ0 on the labelled start set D_T (early stopping on D_R)."""
    from ralis.loop.pretrain import pretrain

    cfg = build_config(preset, dataset, data_root, seed, device, resolution, region_size, set_)
    out = default_out("pretrain", cfg, out)
    path = pretrain(cfg, out, resume=resume, progress=not quiet)
    import json

    m = json.loads((path.parent / "metrics.json").read_text())
    console.print(f"θ0 saved to {path}: val mIoU {100 * m['val_miou']:.2f}, "
                  f"test mIoU {100 * m['test_miou']:.2f} ({m['epochs']} epochs)")


@app.command()
def simulate(
    strategy: Annotated[str, typer.Option(help="random, entropy, bald or ralis.")] = "random",
    budgets: Annotated[str | None, typer.Option(
        help="Comma-separated labelled-region budgets, e.g. 480,960,1440.")] = None,
    pool_size: Annotated[int | None, typer.Option(
        "--pool-size", help="Candidates per pool N for this strategy.")] = None,
    pretrained: Annotated[Path | None, typer.Option(
        help="θ0 from `ralis pretrain` (default: pretrain into <out>/pretrain).")] = None,
    policy: Annotated[Path | None, typer.Option(help="policy.pt of `ralis train-agent`.")] = None,
    preset: Preset = "synthetic-tiny", dataset: Dataset = None, data_root: DataRoot = None,
    seed: Seed = 0, out: Out = None, device: Device = None, resolution: Resolution = None,
    region_size: RegionSize = None, set_: Sets = None, resume: Resume = False, quiet: Quiet = False,
) -> None:
    """Run one active-learning simulation and write results.json in the run directory."""
    from ralis.acquisition import STRATEGIES
    from ralis.loop.simulate import simulate as run_simulation

    STRATEGIES.get(strategy)
    extra = []
    if budgets:
        extra.append(f"al.budgets={budgets}")
    cfg = build_config(preset, dataset, data_root, seed, device, resolution, region_size, set_, extra)
    if pool_size is not None:
        cfg = apply_overrides(cfg, [f'al.pool_sizes={{"{strategy}": {pool_size}}}'])
    kwargs = {"policy": policy} if policy is not None else {}
    if strategy == "ralis" and policy is None:
        raise RalisError("--strategy ralis needs --policy PATH (a policy.pt from `ralis train-agent`)")
    out = default_out("simulate", cfg, out, f"-{strategy}")
    results = run_simulation(cfg, strategy, out, pretrained, resume, not quiet, kwargs)
    console.print(budgets_table(f"test mIoU (%) — {strategy}, seed {cfg.seed}", [results]))
    console.print(f"results: {out / 'results.json'}")


@app.command(name="upper-bound")
def upper_bound_cmd(
    preset: Preset = "synthetic-tiny", dataset: Dataset = None, data_root: DataRoot = None,
    seed: Seed = 0, out: Out = None, device: Device = None, resolution: Resolution = None,
    region_size: RegionSize = None, set_: Sets = None, resume: Resume = False, quiet: Quiet = False,
) -> None:
    """Full supervision with the same recipe (every training image fully labelled)."""
    from ralis.loop.pretrain import upper_bound

    cfg = build_config(preset, dataset, data_root, seed, device, resolution, region_size, set_)
    out = default_out("upper-bound", cfg, out)
    results = upper_bound(cfg, out, resume=resume, progress=not quiet)
    console.print(per_class_table(results))
    console.print(f"upper bound test mIoU {100 * results['budgets'][0]['miou']:.2f}; "
                  f"results: {out / 'results.json'}")


@app.command(name="train-agent")
def train_agent_cmd(
    episodes: Annotated[int | None, typer.Option(help="DQN-training episodes (default: preset's).")] = None,
    mode: Annotated[str | None, typer.Option(
        help="faithful (the authors' behaviour) or fixed (corrected; default).")] = None,
    preset: Preset = "synthetic-tiny", dataset: Dataset = None, data_root: DataRoot = None,
    seed: Seed = 0, out: Out = None, device: Device = None, resolution: Resolution = None,
    region_size: RegionSize = None, set_: Sets = None, resume: Resume = False, quiet: Quiet = False,
) -> None:
    """Train the RALIS query agent on D_T by playing the labelling game; writes policy.pt."""
    from ralis.loop.agent import train_agent

    extra = []
    if episodes is not None:
        extra.append(f"agent.episodes={episodes}")
    if mode is not None:
        extra.append(f"agent.mode={mode}")
    cfg = build_config(preset, dataset, data_root, seed, device, resolution, region_size, set_, extra)
    out = default_out("agent", cfg, out)
    summary = train_agent(cfg, out, resume=resume, progress=not quiet)
    table = Table(title=f"agent training ({summary['mode']} mode), seed {cfg.seed}")
    for col in ("episode", "return", "final D_R mIoU", "epsilon", "loss", "s"):
        table.add_column(col, justify="right")
    for e in summary["episodes_log"]:
        table.add_row(str(e["episode"]), f"{e['return']:.2f}", f"{100 * e['final_miou']:.2f}",
                      f"{e['epsilon']:.2f}", "-" if e["loss"] is None else f"{e['loss']:.4f}",
                      f"{e['wall']:.0f}")
    console.print(table)
    console.print(f"start-model D_R mIoU {100 * summary['start_miou']:.2f}; policy: {summary['policy']}")


def _int_list(text: str, flag: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise RalisError(f"{flag} expects comma-separated integers, got {text!r}") from None


@app.command()
def benchmark(
    strategies: Annotated[str, typer.Option(help="Comma-separated strategies.")] =
        "random,entropy,bald,ralis",
    seeds: Annotated[str, typer.Option(help="Comma-separated AL seeds.")] = "20,50,82",
    agent_seeds: Annotated[str | None, typer.Option(
        "--agent-seeds", help="Seeds of the RALIS agents to train (default: the first seed; "
        "RALIS seed s uses agent s if trained, else the first).")] = None,
    budgets: Annotated[str | None, typer.Option(help="Comma-separated region budgets.")] = None,
    no_upper_bound: Annotated[bool, typer.Option(
        "--no-upper-bound", help="Skip the full-supervision run.")] = False,
    report_dir: Annotated[Path | None, typer.Option(
        "--report", help="Also write the Markdown report into this folder.")] = None,
    preset: Preset = "synthetic-tiny", dataset: Dataset = None, data_root: DataRoot = None,
    out: Out = None, device: Device = None, resolution: Resolution = None,
    region_size: RegionSize = None, set_: Sets = None, quiet: Quiet = False,
) -> None:
    """Run the grid strategies x seeds x budgets (+ θ0, agents, upper bound) into one CSV.

    Finished cells are skipped and interrupted ones resume, so rerun the same command after
    an interruption.
    """
    from ralis.acquisition import STRATEGIES
    from ralis.loop.grid import run_grid

    names = [s.strip() for s in strategies.split(",") if s.strip()]
    for name in names:
        STRATEGIES.get(name)
    extra = [f"al.budgets={budgets}"] if budgets else []
    cfg = build_config(preset, dataset, data_root, 0, device, resolution, region_size, set_, extra)
    out = out or Path("runs") / f"grid-{cfg.preset}"
    csv_path = run_grid(cfg, out, names, _int_list(seeds, "--seeds"),
                        _int_list(agent_seeds, "--agent-seeds") if agent_seeds else None,
                        upper=not no_upper_bound, progress=not quiet)
    console.print(f"results table: {csv_path}")
    if report_dir is not None:
        from ralis.report import write_report

        run_dirs = {n: out / f"{n}-s{_int_list(seeds, '--seeds')[0]}" for n in names}
        console.print(f"report: {write_report(csv_path, report_dir, run_dirs=run_dirs)}")


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="results.csv of `ralis benchmark`.")],
    out: Annotated[Path, typer.Option(help="Folder for report.md and the figures.")] =
        Path("report"),
    budget: Annotated[int | None, typer.Option(
        help="Budget of the per-class table (default: the largest all strategies reached).")] = None,
    runs: Annotated[Path | None, typer.Option(
        help="Grid folder, to draw each strategy's regions on images (first seed's runs).")] = None,
) -> None:
    """Write a Markdown report with figures from a results table."""
    from ralis.report import read_csv, write_report

    if not results.is_file():
        raise RalisError(f"results table {results} not found; run `ralis benchmark` first")
    run_dirs = None
    if runs is not None:
        rows = read_csv(results)
        first = {}
        for r in rows:
            if r["strategy"] != "full":
                first.setdefault(r["strategy"], r["seed"])
        run_dirs = {s: runs / f"{s}-s{seed}" for s, seed in first.items()
                    if (runs / f"{s}-s{seed}" / "results.json").exists()}
    path = write_report(results, out, budget=budget, run_dirs=run_dirs)
    console.print(f"report: {path}")


def main() -> None:
    try:
        app()  # click handles usage errors itself (usage line, exit 2)
    except RalisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
    except SystemExit as exc:
        if exc.code == 130:  # typer turns Ctrl-C into exit 130
            _interrupted()
        raise


def _interrupted() -> None:
    print("\ninterrupted: everything labelled so far is saved; continue with the same command "
          "and --resume", file=sys.stderr)
    sys.exit(130)


if __name__ == "__main__":
    main()
