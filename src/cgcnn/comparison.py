"""Compare training settings over several seeds, with statistics: ``cgcnn compare``.

A *grid* names options of :func:`cgcnn.training.train` and the values to try, e.g.
``{"conv": ["gated", "shared", "none"]}``; every combination (a *configuration*) is
trained with seeds ``0 .. seeds - 1``.  Each run is one call of
:func:`~cgcnn.training.train` into ``OUT/runs/<configuration>/seed<k>/``.

* The grid is checked completely before anything runs: unknown options, values outside
  an option's choices and values of the wrong type are refused with one line.
* Every distinct graph setting (radius, neighbours, ...) is featurized once, up front,
  into the shared graph cache, so the runs (also parallel ones) only read it.
* A run whose ``metrics.json`` exists is finished and never redone; a run without it was
  interrupted and is redone from scratch.  Running the same comparison again only reads.
* ``OUT`` receives ``results.csv`` (a row per run), ``summary.csv`` (a row per
  configuration: mean, std, 95 % CI, rank, paired t-test against the best),
  ``comparison.png``, ``learning_curves.png`` and ``report.md``.

The seed sets the initial weights and the batch order; without a split file it also
draws the random split, so configurations that share a seed share the split and the
paired test compares them on the same crystals.

``cgcnn.compare`` is the function :func:`compare` of this module.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import shutil
import sys
import time
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cgcnn.errors import InputError
from cgcnn.grid import NOT_IDENTITY, RESERVED, grid_options, jsonable, value_label
from cgcnn.metrics import higher_is_better
from cgcnn.parallel import available_cores, require_jobs, run_in_processes

if typing.TYPE_CHECKING:
    import pandas as pd

#: options that decide the crystal graphs (featurized once per distinct combination)
_GRAPH_KEYS = (
    "target",
    "radius",
    "max_neighbors",
    "grow_radius",
    "skip_invalid",
    "id_column",
    "structure_column",
)
#: grid keys accepted as another name of an option: name -> (option, invert a boolean)
_ALIASES = {"no_batchnorm": ("batchnorm", True), "cache": ("cache_dir", False)}
_TRUE = {"on", "true", "yes", "1"}
_FALSE = {"off", "false", "no", "0"}


# --------------------------------------------------------------------------- options


def _choice_sets() -> dict[str, tuple[str, ...]]:
    """Setting -> its accepted names (from the settings' fields, :mod:`cgcnn.config`)."""
    from cgcnn.config import fields_by_name

    return {
        name: item.metadata["choices"]
        for name, (_, item) in fields_by_name().items()
        if item.metadata.get("choices")
    }


def _normalise_key(key: str, valid: Mapping[str, Any]) -> tuple[str, bool]:
    name = str(key).strip().lstrip("-").replace("-", "_").lower()
    if name in _ALIASES:
        return _ALIASES[name]
    if name in RESERVED:
        raise InputError("--grid", f"{name!r} cannot be a grid axis: {RESERVED[name]}")
    if name not in valid:
        raise InputError(
            "--grid",
            f"unknown option {key!r}; valid keys: {', '.join(sorted(valid))}",
        )
    return name, False


def _convert(name: str, value: Any, spec: tuple[str, bool, Any], invert: bool = False) -> Any:
    """``value`` (a string from the command line or a Python value) as option ``name`` wants."""
    kind, optional, _ = spec
    choices = _choice_sets().get(name)
    text = value.strip() if isinstance(value, str) else None
    if text == "":
        raise InputError("--grid", f"{name}: empty value")
    if choices is not None:
        key = str(value).strip().lower()
        if key not in choices:
            raise InputError(
                "--grid", f"{name}={value!r} is not valid; choose from: {', '.join(choices)}"
            )
        return key
    if value is None or (optional and text is not None and text.lower() == "none"):
        if not optional:
            raise InputError("--grid", f"{name} cannot be None")
        return None
    try:
        if kind == "bool":
            if isinstance(value, bool | np.bool_):
                result = bool(value)
            elif text is not None and text.lower() in _TRUE | _FALSE:
                result = text.lower() in _TRUE
            else:
                raise ValueError
            return (not result) if invert else result
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(text) if text is not None else int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            number = float(text) if text is not None else float(value)
            if not math.isfinite(number):
                raise ValueError
            return number
        if kind == "int_list":
            if text is not None:
                parts = [p for p in re.split(r"[\s/;]+", text) if p]
            else:
                parts = list(value) if isinstance(value, Sequence) else [value]
            if not parts:
                raise ValueError
            return [int(p) for p in parts]
    except (TypeError, ValueError):
        wanted = {
            "bool": "on/off (true/false, yes/no)",
            "int": "a whole number",
            "float": "a number",
            "int_list": "whole numbers separated by '/'",
        }[kind]
        raise InputError("--grid", f"{name}={value!r} is not valid: give {wanted}") from None
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """``["conv=gated,shared", "lr=1e-3,3e-3"]`` as ``{"conv": ["gated", "shared"], ...}``.

    Only the syntax is checked here (``KEY=V1,V2,...``, no empty key or value, no key
    twice); :func:`compare` checks the names and the values.
    """
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = str(item).partition("=")
        key = key.strip()
        parts = [v.strip() for v in values.split(",")]
        if not sep or not key or not values.strip() or any(not p for p in parts):
            raise InputError(
                "--grid", f"malformed {item!r}: write KEY=V1,V2,... (e.g. conv=gated,shared)"
            )
        if key in grid:
            raise InputError("--grid", f"{key!r} is given twice")
        grid[key] = parts
    return grid


def _check_grid(
    grid: Mapping[str, Sequence[Any] | Any], options: Mapping[str, tuple[str, bool, Any]]
) -> dict[str, list[Any]]:
    checked: dict[str, list[Any]] = {}
    for key, values in grid.items():
        name, invert = _normalise_key(key, options)
        if name in checked:
            raise InputError("--grid", f"{name!r} is given twice")
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            values = [values]
        if not values:
            raise InputError("--grid", f"{name}: no values")
        converted = [_convert(name, v, options[name], invert) for v in values]
        labels = [value_label(v) for v in converted]
        if len(set(labels)) != len(labels):
            raise InputError("--grid", f"{name}: a value is given twice ({', '.join(labels)})")
        checked[name] = converted
    return checked


def _check_fixed(
    fixed: Mapping[str, Any], options: Mapping[str, tuple[str, bool, Any]]
) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for key, value in fixed.items():
        name = key.replace("-", "_")
        if name in RESERVED:
            raise InputError(name, f"cannot be set in a comparison: {RESERVED[name]}")
        if name not in options:
            raise InputError(
                name, f"is not an option of train; valid: {', '.join(sorted(options))}"
            )
        if value is None:
            checked[name] = options[name][2]
        elif isinstance(value, str | bool | int | float | list | os.PathLike):
            try:
                checked[name] = _convert(name, value, options[name])
            except InputError as exc:
                raise InputError(None, exc.reason) from None
        else:
            checked[name] = value  # e.g. an AtomFeatures object
    return checked


def _slug(config: Mapping[str, Any]) -> str:
    if not config:
        return "default"
    text = "__".join(f"{k}-{value_label(v)}" for k, v in config.items())
    text = re.sub(r"[^A-Za-z0-9.+=-]+", "_", text.replace("=", "-"))
    if len(text) > 120:
        import hashlib

        text = text[:100] + "-" + hashlib.sha1(text.encode()).hexdigest()[:10]
    return text


def config_name(config: Mapping[str, Any]) -> str:
    """A configuration as people read it: ``conv=gated, pooling=sum``."""
    return ", ".join(f"{k}={value_label(v)}" for k, v in config.items()) or "default"


# --------------------------------------------------------------------------- runs


def _run_one(task: dict[str, Any]) -> str:
    """Train one configuration with one seed into ``task["run_dir"]`` (a fresh folder)."""
    from cgcnn.training import train

    run_dir = Path(task["run_dir"])
    if run_dir.exists():
        shutil.rmtree(run_dir)  # an interrupted run: start again from scratch
    run_dir.mkdir(parents=True)
    (run_dir / "options.json").write_text(json.dumps(task["identity"], indent=2) + "\n")
    options = dict(task["options"])
    if options.get("workers") is None:
        options["workers"] = 1  # the graphs are cached: nothing to featurize
    train(task["data"], run_dir, seed=task["seed"], progress=False, plots=False, **options)
    return str(run_dir)


def _read_run(run_dir: Path) -> dict[str, Any]:
    """The numbers of a finished run: metrics.json, the best validation values, parameters."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    row: dict[str, Any] = {
        k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    log = run_dir / "metrics.csv"
    if log.is_file():
        from cgcnn.plots import read_epoch_log

        try:
            epochs = read_epoch_log(log)
        except InputError:
            epochs = {}
        for column, values in epochs.items():
            if not column.startswith("val_") or not np.isfinite(values).any():
                continue
            higher = higher_is_better(column)
            index = int(np.nanargmax(values) if higher else np.nanargmin(values))
            row[f"best_{column}"] = float(values[index])
            if column in ("val_mae", "val_loss") and f"best_{column}_epoch" not in row:
                row[f"best_{column}_epoch"] = int(epochs["epoch"][index])
    row["n_params"] = _count_parameters(run_dir, metrics)
    return row


def _count_parameters(run_dir: Path, metrics: Mapping[str, Any]) -> int:
    from cgcnn.nn.model import CGCNN
    from cgcnn.trained import open_checkpoint

    path = run_dir / "best.ckpt"
    if not path.is_file():
        path = Path(str(metrics.get("checkpoint", run_dir / "last.ckpt")))
    model = CGCNN(open_checkpoint(path).model_config)
    return int(sum(p.numel() for p in model.parameters()))


def _resolve_data(data: Any) -> Any:
    if isinstance(data, str | os.PathLike) and not Path(data).exists():
        from cgcnn.datasets import resolve_data

        return str(resolve_data(str(data), None))
    if isinstance(data, str | os.PathLike):
        return str(Path(data).resolve())
    return data


def _featurize_once(data: Any, configs: list[dict[str, Any]], cores: int, verbose: bool) -> None:
    """Build the graphs of every distinct graph setting now, before any run starts."""
    from cgcnn.dataset import CrystalGraphDataset

    defaults = {k: v[2] for k, v in grid_options().items()}
    done: set[tuple] = set()
    for options in configs:
        setting = {k: options.get(k, defaults[k]) for k in _GRAPH_KEYS}
        key = tuple(value_label(setting[k]) for k in _GRAPH_KEYS)
        if key in done:
            continue
        done.add(key)
        started = time.perf_counter()
        dataset = CrystalGraphDataset(
            data,
            **setting,
            cache_dir=options.get("cache_dir"),
            workers=options.get("workers") or cores,
            progress=False,
        )
        if verbose:
            report = dataset.report
            print(
                f"graphs (radius {setting['radius']:g}, max_neighbors "
                f"{setting['max_neighbors']}): {len(dataset)} ready, {report.featurized} "
                f"featurized, {report.reused} from the cache "
                f"({time.perf_counter() - started:.1f} s)",
                file=sys.stderr,
            )


# --------------------------------------------------------------------------- statistics


def choose_metric(results: pd.DataFrame, task: str = "regression") -> str:
    """The metric a comparison ranks by: ``test_mae`` for regression (the first target's
    when there are several); ``test_roc_auc`` for classification when every run has one,
    else ``test_accuracy``; the best validation value when there is no test split."""

    def usable(column: str) -> bool:
        return column in results and bool(np.isfinite(results[column].astype(float)).all())

    if task == "classification":
        candidates = ["test_roc_auc", "test_accuracy", "best_val_accuracy", "best_val_loss"]
    else:
        candidates = ["test_mae"]
        candidates += sorted(c for c in results.columns if c.startswith("test_mae_"))[:1]
        candidates += ["best_val_mae"]
    for column in candidates:
        if usable(column):
            return column
    raise InputError("metric", f"no usable metric in the results (tried {candidates})")


def summarize(
    results: pd.DataFrame,
    keys: Sequence[str],
    metric: str,
    *,
    higher: bool | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """The summary table of a comparison: one row per configuration.

    Args:
        results: one row per run with the columns ``keys``, ``seed``, ``metric`` and
            optionally ``train_seconds`` and ``n_params``.
        keys: the grid's options (the columns that make a configuration).
        metric: the column compared.
        higher: whether a larger value is better (default: from the metric's name).
        alpha: significance level of the paired tests.

    Returns:
        A DataFrame with the columns ``keys``, then ``metric``, ``n``, ``mean``, ``std``,
        ``ci95`` (half-width of the symmetric 95 % t-interval of the mean), ``ci_low`` and
        ``ci_high`` (the 95 % interval within the metric's range, as the figures draw it:
        :func:`cgcnn.stats.confidence_interval`),
        ``rank`` (1 = best mean), ``p_vs_best`` (two-sided paired t-test against the best
        configuration over the seeds both have; NaN for the best itself), ``significant``
        (``"yes"`` / ``"no"`` at ``alpha``, ``"best"`` for the best, ``"n/a"`` with fewer
        than two paired seeds), ``seconds`` (mean training seconds), ``n_params`` and
        ``config``, in grid order.
    """
    import pandas as pd

    from cgcnn.stats import ci_halfwidth, confidence_interval, paired_t_test

    higher = higher_is_better(metric) if higher is None else higher
    keys = list(keys)
    frame = results.copy()
    frame["config"] = [config_name({k: row[k] for k in keys}) for row in frame.to_dict("records")]
    order = list(dict.fromkeys(frame["config"]))
    per_config = {name: frame[frame["config"] == name] for name in order}
    rows = []
    for name, group in per_config.items():
        values = group[metric].astype(float).to_numpy()
        finite = values[np.isfinite(values)]
        row = {k: group[k].iloc[0] for k in keys}
        row.update(
            metric=metric,
            n=int(finite.size),
            mean=float(finite.mean()) if finite.size else math.nan,
            std=float(finite.std(ddof=1)) if finite.size > 1 else math.nan,
            ci95=ci_halfwidth(finite),
        )
        row["ci_low"], row["ci_high"] = confidence_interval(finite, metric)
        if "train_seconds" in group:
            row["seconds"] = float(group["train_seconds"].astype(float).mean())
        if "n_params" in group:
            row["n_params"] = int(group["n_params"].iloc[0])
        row["config"] = name
        rows.append(row)
    summary = pd.DataFrame(rows)
    score = summary["mean"] if higher else -summary["mean"]
    summary["rank"] = score.rank(ascending=False, method="min").astype("Int64")
    best = order[int(np.nanargmax(score.to_numpy()))] if np.isfinite(score).any() else None
    p_values, verdicts = [], []
    for name in order:
        if name == best:
            p_values.append(math.nan)
            verdicts.append("best")
            continue
        if best is None:
            p_values.append(math.nan)
            verdicts.append("n/a")
            continue
        mine = per_config[name].set_index("seed")[metric].astype(float)
        theirs = per_config[best].set_index("seed")[metric].astype(float)
        common = sorted(set(mine.index) & set(theirs.index))
        _, p = paired_t_test(mine.loc[common].to_numpy(), theirs.loc[common].to_numpy())
        p_values.append(p)
        verdicts.append("n/a" if not math.isfinite(p) else ("yes" if p < alpha else "no"))
    summary["p_vs_best"] = p_values
    summary["significant"] = verdicts
    columns = [*keys, "metric", "n", "mean", "std", "ci95", "ci_low", "ci_high", "rank"]
    columns += ["p_vs_best", "significant"]
    columns += [c for c in ("seconds", "n_params") if c in summary] + ["config"]
    return summary[columns]


# --------------------------------------------------------------------------- figures


# --------------------------------------------------------------------------- compare()


def compare(
    data: Any,
    grid: Mapping[str, Sequence[Any]],
    *,
    seeds: int = 3,
    out: str | os.PathLike = "cgcnn-compare",
    jobs: int = 1,
    metric: str | None = None,
    verbose: bool = True,
    command: str | None = None,
    **train_options: Any,
) -> pd.DataFrame:
    """Train every combination of ``grid`` with ``seeds`` seeds and compare them.

    Args:
        data: anything :func:`cgcnn.training.train` reads (or a registered dataset name).
        grid: option of :func:`~cgcnn.training.train` -> values to try, e.g.
            ``{"conv": ["gated", "shared"], "max_neighbors": [8, 12]}``; names may use
            dashes; values may be strings as on the command line (``"on"``/``"off"`` for
            booleans).  An empty grid compares the seeds of one configuration.
        seeds: seeds per configuration, ``0 .. seeds - 1``.  Without a ``split`` file the
            seed also draws the random split (the same one for every configuration).
        out: output folder; running again into it reuses every finished run.
        jobs: runs trained at once, in separate processes (at most one per core); each
            keeps the user's thread setting (torch's thread count: ``OMP_NUM_THREADS`` or
            ``torch.set_num_threads``) unless runs times threads would exceed the cores,
            in which case each gets ``max(1, cores // jobs)`` threads.
        metric: the column to compare (default: ``test_mae`` for regression,
            ``test_roc_auc`` or ``test_accuracy`` for classification).
        verbose: print a line per run on stderr.
        command: how the comparison was asked for, for ``report.md`` (default: this call).
        **train_options: every other option of :func:`~cgcnn.training.train`, applied to
            every run (e.g. ``epochs=20, split="split.csv", extensive=True``).

    Returns:
        The summary (see :func:`summarize`), one row per configuration; its
        ``attrs["results"]`` holds the per-run table.  Both are also written to ``out``
        with ``comparison.png``, ``learning_curves.png`` and ``report.md``.

    Raises:
        InputError: an unknown option, a value outside an option's choices or of the
            wrong type, or an ``out`` holding runs made with other settings; all before
            any training.
    """
    import pandas as pd

    started = time.perf_counter()
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise InputError("--seeds", f"must be a whole number >= 1, got {seeds!r}")
    require_jobs(jobs)
    options = grid_options()
    checked = _check_grid(grid, options)
    fixed = _check_fixed(train_options, options)
    both = sorted(set(checked) & set(fixed))
    if both:
        raise InputError("--grid", f"{', '.join(both)} given both in the grid and as an option")
    keys = list(checked)
    configs = [
        dict(zip(keys, values, strict=True)) for values in itertools.product(*checked.values())
    ]
    _validate_runs(configs, fixed)
    if metric is not None and not re.fullmatch(r"(test|best_val)_\w+", metric):
        raise InputError("--metric", f"{metric!r}: give a test_* or best_val_* column")

    data = _resolve_data(data)
    out = Path(out)
    identity_base = {
        "data": jsonable(data),
        **{k: jsonable(v) for k, v in fixed.items() if k not in NOT_IDENTITY},
    }
    tasks, finished = [], []
    for seed in range(seeds):
        for config in configs:
            run_dir = out / "runs" / _slug(config) / f"seed{seed}"
            identity = {**identity_base, **{k: jsonable(v) for k, v in config.items()}}
            identity["seed"] = seed
            task = {
                "config": config,
                "seed": seed,
                "run_dir": str(run_dir),
                "identity": identity,
                "data": data,
                "options": {**fixed, **config},
            }
            if (run_dir / "metrics.json").is_file():
                _check_same(run_dir, identity)
                finished.append(task)
            else:
                tasks.append(task)

    cores = available_cores()
    if tasks:
        _featurize_once(data, [t["options"] for t in tasks], cores, verbose)
    out.mkdir(parents=True, exist_ok=True)
    if verbose and finished:
        print(f"{len(finished)} finished run(s) reused from {out}/runs", file=sys.stderr)
    _execute(tasks, jobs, verbose)

    rows = []
    for task in sorted(finished + tasks, key=lambda t: (configs.index(t["config"]), t["seed"])):
        run_dir = Path(task["run_dir"])
        row = {"config": config_name(task["config"]), **task["config"], "seed": task["seed"]}
        row.update(_read_run(run_dir))
        row["run_dir"] = str(run_dir)
        for key, value in fixed.items():
            row.setdefault(key, value_label(value) if isinstance(value, list) else jsonable(value))
        rows.append(row)
    results = pd.DataFrame(rows)
    task_kind = str(fixed.get("task", "regression"))
    if "task" in checked:
        task_kind = str(checked["task"][0])
    metric = metric or choose_metric(results, task_kind)
    if metric not in results:
        raise InputError("--metric", f"{metric!r} is not in the results")
    summary = summarize(results, keys, metric)
    results.to_csv(out / "results.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    from cgcnn.comparison_report import plot_comparison, plot_learning_curves, write_report

    plot_comparison(results, summary, metric, out / "comparison.png")
    plot_learning_curves(results, metric, out / "learning_curves.png")
    if command is None:
        shown = ", ".join(
            [repr(str(data)), repr({k: [value_label(v) for v in vs] for k, vs in checked.items()})]
            + [f"seeds={seeds}", f"out={str(out)!r}", f"jobs={jobs}"]
            + [f"{k}={jsonable(v)!r}" for k, v in train_options.items()]
        )
        command = f"cgcnn.compare({shown})"
    write_report(
        out,
        command=command,
        data=data,
        grid=checked,
        fixed=fixed,
        seeds=seeds,
        metric=metric,
        summary=summary,
        wall_seconds=time.perf_counter() - started,
        n_new=len(tasks),
    )
    if verbose:
        print(f"{len(rows)} runs ({len(tasks)} trained now) in {out}/", file=sys.stderr)
    summary.attrs["results"] = results
    return summary


def _validate_runs(configs: list[dict[str, Any]], fixed: Mapping[str, Any]) -> None:
    """Refuse settings that train() would refuse, before anything runs."""
    from dataclasses import fields

    from cgcnn.training import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    for config in configs:
        options = {**fixed, **config}
        try:
            TrainConfig(**{k: v for k, v in options.items() if k in names and v is not None})
        except InputError as exc:
            raise InputError(
                exc.source, f"{exc.reason} (configuration {config_name(config)})"
            ) from None
        for name in ("max_neighbors", "n_conv", "atom_fea_len", "h_fea_len", "n_h"):
            value = options.get(name)
            least = 0 if name == "n_conv" else 1
            if value is not None and value < least:
                raise InputError(name, f"must be >= {least}, got {value}")
        if options.get("radius") is not None and not options["radius"] > 0:
            raise InputError("radius", f"must be positive, got {options['radius']}")


#: Options that a run's ``hparams.yaml`` records under the same name and meaning.
_RECORDED = {
    "model_config": [
        "conv",
        "activation",
        "pooling",
        "readout",
        "batchnorm",
        "atom_fea_len",
        "n_conv",
        "h_fea_len",
        "n_h",
    ],
    "train_config": [
        "batch_size",
        "ema",
        "epochs",
        "gradient_clip",
        "loss",
        "lr",
        "momentum",
        "optim",
        "patience",
        "scheduler",
        "weight_decay",
    ],
    "graph_settings": ["radius", "max_neighbors", "grow_radius"],
    "meta": ["atom_features"],
}


def _recorded_options(run_dir: Path) -> dict[str, Any]:
    """The settings a finished run was trained with, from its ``hparams.yaml`` (empty if none)."""
    import yaml

    try:
        hparams = yaml.safe_load((run_dir / "hparams.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    recorded = {}
    for section, names in _RECORDED.items():
        values = hparams.get(section) or {}
        recorded.update({k: values[k] for k in names if k in values})
    return recorded


def _with_readout(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the readout and pooling a run resolves them to (each one's default
    depends on the other)."""
    from cgcnn.config import resolve_readout

    readout, pooling = resolve_readout(options.get("readout"), options.get("pooling"))
    return {**options, "readout": readout, "pooling": pooling}


def _check_same(run_dir: Path, identity: Mapping[str, Any]) -> None:
    saved_path = run_dir / "options.json"
    if not saved_path.is_file():
        return
    saved = json.loads(saved_path.read_text())
    # options.json holds the options given; one left out took the default of its day, which
    # the run's hparams.yaml records (a default may have changed since); an option that
    # neither records (made before the option existed) counts as today's default
    defaults = {k: jsonable(v[2]) for k, v in grid_options().items()}
    used = _with_readout({**defaults, **_recorded_options(run_dir), **saved})
    expected = _with_readout({**defaults, **identity})
    differ = sorted(k for k in set(used) | set(expected) if used.get(k) != expected.get(k))
    if differ:
        raise InputError(
            str(run_dir),
            f"was trained with other settings ({', '.join(differ)}); use another --out, or "
            "delete the old runs",
        )


def _execute(tasks: list[dict[str, Any]], jobs: int, verbose: bool) -> None:
    total = len(tasks)

    def done(finished: int, task: dict[str, Any], _result: Any, seconds: float) -> None:
        if not verbose:
            return
        try:
            metrics = json.loads((Path(task["run_dir"]) / "metrics.json").read_text())
        except (OSError, ValueError):
            metrics = {}
        shown = ", ".join(
            f"{m} {metrics[m]:.4g}"
            for m in ("test_mae", "test_roc_auc", "test_accuracy")
            if isinstance(metrics.get(m), int | float)
        )
        trained = metrics.get("train_seconds")
        timing = f"training {trained:.1f} s, " if isinstance(trained, int | float) else ""
        print(
            f"[{finished}/{total}] {config_name(task['config'])}, seed {task['seed']}: "
            f"{shown or 'done'} ({timing}{seconds:.1f} s in all)",
            file=sys.stderr,
        )

    # the user's thread setting, cut so that runs times threads never exceed the cores
    run_in_processes(_run_one, tasks, jobs, on_done=done)
