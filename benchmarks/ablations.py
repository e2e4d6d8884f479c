"""The paper's appendix-E ablations (RALIS, Casanova et al. ICLR 2020) as one resumable script.

Three studies on one preset (default ``camvid-cpu``), every AL run starting from one shared θ0:

``features``           E.1, the agent's state/action features: ``max`` (max-pooled entropy only),
                       ``3H`` (min, mean and max pooling) and ``3H+KL`` (the full agent). One agent
                       per variant, trained with the first seed, evaluated greedily on every seed;
                       the entropy baseline on the same seeds for reference.
``image_vs_region``    E.2, labelling K regions per step vs one whole image per step at equal pixel
                       budgets (budgets divided by the regions per image), for random, entropy and
                       BALD; with ``--policy`` also RALIS, under region labelling only (a policy is
                       tied to its region grid).
``regions_per_step``   E.3, K = 1, 12, 24, 48 regions per step for one ``--strategy`` (default
                       entropy; ``ralis`` needs ``--policy``).

Usage::

    .venv/bin/python benchmarks/ablations.py                      # all studies on camvid-cpu
    .venv/bin/python benchmarks/ablations.py --study features --seeds 20,50
    .venv/bin/python benchmarks/ablations.py --study regions_per_step --strategy ralis \\
        --policy runs/grid/agent-s20/policy.safetensors --budgets 480,960
    .venv/bin/python benchmarks/ablations.py --preset synthetic-demo --set agent.episodes=2

Everything goes under ``--out`` (default ``runs/ablations-<preset>``)::

    theta0/                                        θ0 (pretrained on D_T), shared by every cell
    features/agent-<variant>/                      one agent per feature variant
    features/<variant>-s<seed>/                    ralis-max, ralis-3h, ralis-3h-kl, entropy
    image_vs_region/<unit>-<strategy>-s<seed>/     unit = region | image
    regions_per_step/k<K>-<strategy>-s<seed>/
    ablations.csv                                  one row per cell x budget
    ablations.md                                   Markdown tables, mean ± std over seeds

Every cell resumes: a finished cell is skipped and an interrupted one continues, so after an
interruption run the same command again. Cells with identical settings (on camvid-cpu: the entropy
baseline of ``features``, region/entropy of ``image_vs_region`` and K = 24 of ``regions_per_step``)
run once and are shared; the ``run_dir`` column says where each row comes from. A directory that
holds a run with other settings (another ``--set`` or ``--budgets``) is an error, never reused.

``ablations.csv`` has the columns of :func:`ralis.report.runs.collect` (``miou`` is test mIoU,
a fraction) plus ``study``, ``variant``, ``unit`` (region | image), ``regions_per_step``,
``region_budget`` (the budget in regions of the preset's grid, also for whole images) and
``budget_pixels_fraction`` (labelled share of the pool's pixels).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ralis.acquisition import STRATEGIES
from ralis.config import RunConfig, apply_overrides, get_preset, to_dict, validate
from ralis.data.protocol import Protocol, load_protocol
from ralis.errors import RalisError
from ralis.loop.agent import train_agent
from ralis.loop.grid import FINAL_TRAINING_FIELDS, MACHINE_FIELDS, check_reuse, finished
from ralis.loop.pretrain import pretrain
from ralis.loop.simulate import simulate
from ralis.rl.observe import FeatureSpec
from ralis.rl.policy import load_policy

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its summary module beside it
from ablations_plan import Agent, Cell, Plan  # noqa: E402
from ablations_summary import write_summary  # noqa: E402

STUDIES: tuple[str, ...] = ("features", "image_vs_region", "regions_per_step")
FEATURE_VARIANTS: dict[str, tuple[tuple[str, ...], bool, str]] = {
    # variant: (entropy poolings, KL histograms in the action, directory name)
    "max": (("max",), False, "ralis-max"),
    "3H": (("min", "mean", "max"), False, "ralis-3h"),
    "3H+KL": (("min", "mean", "max"), True, "ralis-3h-kl"),
}
IMAGE_VS_REGION_STRATEGIES: tuple[str, ...] = ("random", "entropy", "bald")
K_VALUES: tuple[int, ...] = (1, 12, 24, 48)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ the plan
def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise RalisError(f"{what} expects comma-separated integers, got {text!r}") from None
    if not values:
        raise RalisError(f"{what} needs at least one value")
    if len(set(values)) != len(values):
        raise RalisError(f"{what} lists a value twice: {text!r}")
    return values


def parse_studies(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    for name in names:
        if name not in STUDIES:
            raise RalisError(f"unknown study {name!r}; valid: {', '.join(STUDIES)}")
    if not names:
        raise RalisError(f"--study needs at least one of {', '.join(STUDIES)}")
    return [s for s in STUDIES if s in names]


def base_config(args: argparse.Namespace) -> RunConfig:
    cfg = apply_overrides(get_preset(args.preset), list(args.set))
    if args.budgets:
        cfg = replace(cfg, al=replace(cfg.al, budgets=tuple(_ints(args.budgets, "--budgets"))))
    return validate(cfg)


def whole_image_config(cfg: RunConfig, proto: Protocol) -> RunConfig:
    """One region = one image, one image per step, budgets in images of equal pixel count."""
    per_image = proto.grid.per_image
    odd = [b for b in cfg.al.budgets if b % per_image]
    if odd:
        raise RalisError(
            f"image_vs_region: budgets {odd} are not multiples of the {per_image} regions per "
            f"image, so no whole number of images has the same pixels; use e.g. --budgets "
            f"{','.join(str(per_image * (i + 1)) for i in range(3))}"
        )
    return validate(replace(
        cfg,
        data=replace(cfg.data, region_size=tuple(proto.grid.image_size)),
        al=replace(cfg.al, regions_per_step=1,
                   budgets=tuple(b // per_image for b in cfg.al.budgets)),
    ))


def check_policy(path: Path, proto: Protocol) -> None:
    """Fail before any training when ``--policy`` cannot be used on the preset's region grid."""
    _, spec, _ = load_policy(path)
    here = FeatureSpec(num_classes=proto.num_classes, state_images=len(proto.state),
                       **FeatureSpec.layout(proto.regions_of(proto.state)))
    spec.check_compatible(here, f"--policy {path}")


def build_plan(args: argparse.Namespace, cfg: RunConfig, proto: Protocol) -> Plan:
    out = Path(args.out or f"runs/ablations-{cfg.preset}")
    policy = Path(args.policy) if args.policy else None
    plan = Plan(cfg, out, parse_studies(args.study), _ints(args.seeds, "--seeds"), args.strategy,
                policy, tuple(_ints(args.k_values, "--k-values")), proto)
    if any(s < 0 for s in plan.seeds):
        raise RalisError("--seeds must be >= 0")
    if any(k < 1 for k in plan.k_values):
        raise RalisError("--k-values must be >= 1")
    STRATEGIES.get(plan.strategy)  # unknown names fail with the valid list
    if plan.strategy == "ralis" and policy is None:
        raise RalisError("--strategy ralis needs --policy PATH (a policy.safetensors of this preset's grid)")
    if policy is not None:
        check_policy(policy, proto)
    seeds = plan.seeds

    if "features" in plan.studies:
        agents = {}
        for variant, (poolings, use_kl, name) in FEATURE_VARIANTS.items():
            vcfg = replace(cfg, agent=replace(cfg.agent, poolings=poolings, use_kl=use_kl))
            agents[variant] = Agent(variant, replace(vcfg, seed=seeds[0]),
                                    out / "features" / f"agent-{name}")
        plan.agents.extend(agents.values())
        for seed in seeds:
            for variant, (_, _, name) in FEATURE_VARIANTS.items():
                plan.cells.append(Cell(
                    "features", variant, (variant,), "ralis", seed,
                    replace(agents[variant].cfg, seed=seed), out / "features" / f"{name}-s{seed}",
                    policy=agents[variant].policy))
            plan.cells.append(Cell("features", "entropy", ("entropy",), "entropy", seed,
                                   replace(cfg, seed=seed), out / "features" / f"entropy-s{seed}"))

    if "image_vs_region" in plan.studies:
        image_cfg = whole_image_config(cfg, proto)
        strategies = IMAGE_VS_REGION_STRATEGIES + (("ralis",) if policy else ())
        for seed in seeds:
            for unit, ucfg in (("region", cfg), ("image", image_cfg)):
                for strategy in strategies:
                    if unit == "image" and strategy == "ralis":
                        continue  # a policy is tied to its region grid (see the md)
                    plan.cells.append(Cell(
                        "image_vs_region", unit, (unit, strategy), strategy, seed,
                        replace(ucfg, seed=seed),
                        out / "image_vs_region" / f"{unit}-{strategy}-s{seed}", unit=unit,
                        regions_per_unit=proto.grid.per_image if unit == "image" else 1,
                        policy=policy if strategy == "ralis" else None))

    if "regions_per_step" in plan.studies:
        for seed in seeds:
            for k in plan.k_values:
                kcfg = replace(cfg, seed=seed, al=replace(cfg.al, regions_per_step=k))
                plan.cells.append(Cell(
                    "regions_per_step", f"K={k}", (str(k), plan.strategy), plan.strategy, seed,
                    kcfg, out / "regions_per_step" / f"k{k}-{plan.strategy}-s{seed}",
                    policy=policy if plan.strategy == "ralis" else None))
    share_identical_cells(plan.cells)
    check_directories(plan)
    return plan


def _cell_key(cell: Cell) -> str:
    return json.dumps([to_dict(cell.cfg), cell.strategy, str(cell.policy)], sort_keys=True,
                      default=str)


def share_identical_cells(cells: list[Cell]) -> None:
    """Point cells with identical settings at one directory: an existing one if any was started,
    else the first planned."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(_cell_key(cell), []).append(cell)
    for group in groups.values():
        started = [c.run_dir for c in group if (c.run_dir / "config.json").exists()]
        chosen = started[0] if started else group[0].run_dir
        for cell in group:
            cell.shared = cell.run_dir != chosen
            cell.run_dir = chosen


def check_directories(plan: Plan) -> None:
    """Catch a changed --set / --budgets before hours of work, not in the middle."""
    machine = MACHINE_FIELDS
    check_reuse(plan.out / "theta0", plan.cfg, "pretrain",
                ignore=(*machine, *FINAL_TRAINING_FIELDS, "al", "agent"))
    for agent in plan.agents:
        check_reuse(agent.out, agent.cfg, "train-agent",  # agents evaluate every step anyway
                    ignore=(*machine, *FINAL_TRAINING_FIELDS, "al.budgets", "al.eval_every"))
    for cell in plan.cells:
        check_reuse(cell.run_dir, cell.cfg, f"simulate:{cell.strategy}", ignore=machine)


# ------------------------------------------------------------------------------------- running
def agent_finished(agent: Agent) -> bool:
    path = agent.out / "agent.json"
    if not path.exists() or not agent.policy.exists():
        return False
    return json.loads(path.read_text()).get("episodes", 0) >= agent.cfg.agent.episodes


def run_plan(plan: Plan, progress: bool, command: str) -> None:
    protocols: dict[Any, Protocol] = {plan.cfg.data: plan.proto}

    def protocol(cfg: RunConfig) -> Protocol:
        if cfg.data not in protocols:
            protocols[cfg.data] = load_protocol(cfg.data, progress=progress)
        return protocols[cfg.data]

    log(f"θ0 -> {plan.out / 'theta0'}")
    theta0 = pretrain(plan.cfg, plan.out / "theta0", resume=True, progress=progress,
                      proto=plan.proto)
    write_summary(plan, command)
    total = len(plan.cells)
    for i, cell in enumerate(plan.cells, 1):
        where = f"[{i}/{total}] {cell.study} {cell.variant} {cell.strategy} seed {cell.seed}"
        for agent in plan.agents:
            if cell.policy == agent.policy and not agent_finished(agent):
                log(f"{where}: training the {agent.variant} agent -> {agent.out}")
                train_agent(agent.cfg, agent.out, resume=True, progress=progress,
                            proto=protocol(agent.cfg))
        shared = " (shared)" if cell.shared else ""
        if finished(cell.run_dir, cell.cfg.al.budgets):
            log(f"{where}: done, skipped ({cell.run_dir}{shared})")
            continue
        log(f"{where} -> {cell.run_dir}{shared}")
        start = time.perf_counter()
        kwargs = {"policy": cell.policy} if cell.policy is not None else {}
        res = simulate(cell.cfg, cell.strategy, cell.run_dir, pretrained=theta0, resume=True,
                       progress=progress, strategy_kwargs=kwargs, proto=protocol(cell.cfg))
        last = res["budgets"][-1] if res.get("budgets") else None
        score = f", test mIoU {last['miou']:.4f} @ {last['regions']}" if last else ""
        log(f"{where}: finished in {time.perf_counter() - start:.0f} s{score}")
        write_summary(plan, command)
    write_summary(plan, command)


# ----------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        prog="benchmarks/ablations.py",
        description=doc.split("\n\n")[0],
        epilog="examples:" + doc.split("Usage::", 1)[-1].split("``ablations.csv`` has")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--preset", default="camvid-cpu", help="config preset (default camvid-cpu)")
    parser.add_argument("--study", default=",".join(STUDIES),
                        help=f"comma-separated studies (default all: {','.join(STUDIES)})")
    parser.add_argument("--seeds", default="20,50,82", help="AL seeds (default 20,50,82); the "
                        "first also trains the features study's agents")
    parser.add_argument("--budgets", help="region budgets, e.g. 480,960 (default: the preset's)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override a preset field, e.g. agent.episodes=4 (repeatable)")
    parser.add_argument("--strategy", default="entropy",
                        help="strategy of the regions_per_step study (default entropy)")
    parser.add_argument("--policy", help="RALIS policy.safetensors for the preset's region grid: adds "
                        "ralis to image_vs_region, needed for --strategy ralis")
    parser.add_argument("--k-values", default=",".join(map(str, K_VALUES)),
                        help="K values of the regions_per_step study (default 1,12,24,48)")
    parser.add_argument("--out", help="output directory (default runs/ablations-<preset>)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars (the one line per cell still goes to stderr)")
    return parser


def run(args: argparse.Namespace, command: str) -> Path:
    cfg = base_config(args)
    parse_studies(args.study)  # a typo fails before the data is loaded
    proto = load_protocol(cfg.data, progress=not args.quiet)
    plan = build_plan(args, cfg, proto)
    plan.out.mkdir(parents=True, exist_ok=True)
    log(f"ablations: {len(plan.cells)} cells, {len(plan.agents)} agents -> {plan.out}")
    run_plan(plan, progress=not args.quiet, command=command)
    log(f"ablations: wrote {plan.out / 'ablations.csv'} and {plan.out / 'ablations.md'}")
    return plan.out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    command = shlex.join(["python", "benchmarks/ablations.py", *argv])
    try:
        run(args, command)
    except RalisError as exc:
        print(f"ablations: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ablations: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
