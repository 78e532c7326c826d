"""Analysis of a strategy comparison (the PA&DA study): reads only the store.

For every strategy of an insights experiment's ``comparison`` (``wsnas insights --strategy``),
over its seeds: GT-Tau of the final ranking, GT-Tau-Mean-k / Std-k over the dense evaluations,
T1R/T3R, S-Tau across seeds, the supernet's gradient variance (mean over the monitor's windows,
absolute and relative to the mean squared gradient norm), and the training time per epoch
(median over the epochs without dense evaluations). Findings compare PA&DA and each of its
halves with SPOS, the baseline the paper improves on.

An entry with strategy options (``pada:credit=path``) is a row of its own: ``strategy`` is its
label, ``base`` the strategy (``pada``), ``options`` / ``defaults`` what it sets and the defaults
it replaces; the same strategy's entry without options then has those defaults as its
``defaults`` and in its title (``PA&DA (paths + data), credit=ops``). A PA&DA entry with options
is compared with SPOS like any PA&DA entry, and with the same strategy at its defaults where the
study has it (``credit=path`` against ``credit=ops``).
"""

from __future__ import annotations

import math

import numpy as np

from wsnas.groundtruth.table import TruthTable
from wsnas.store import Store

TITLES = {"spos": "SPOS (uniform)", "fairnas": "FairNAS", "pada": "PA&DA (paths + data)",
          "pada-path": "PA&DA paths only", "pada-data": "PA&DA data only",
          "round-robin": "round-robin", "fixed-order": "fixed order", "shuffle": "reshuffled order"}

# What the paper reports (algorithms.md 5; Lu et al., CVPR 2023): lower gradient variance and a
# higher Kendall tau than SPOS and FairNAS on NB201 (all 15,625 cells, CIFAR-10, 250 epochs);
# ImageNet (ProxylessNAS space) 77.3% top-1 at 399M FLOPs vs 75.6% for SPOS.
PUBLISHED_COMPARISON = ("PA&DA reports a lower supernet gradient variance and a higher Kendall tau "
                        "than SPOS and FairNAS on NAS-Bench-201 (CIFAR-10, all 15,625 cells, 250 "
                        "epochs), and 77.3% ImageNet top-1 at 399M FLOPs against 75.6% for SPOS "
                        "(ProxylessNAS space).")


# what the findings call each PA&DA strategy, in the order they are stated
PADA_CLAIMS = {"pada": "PA&DA", "pada-path": "path sampling alone", "pada-data": "data sampling alone"}


def option_text(value) -> str:
    """An option's value as the command line spells it (``true``, ``path``, ``3``)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def options_text(options: dict) -> str:
    """Strategy options as the command line spells them: ``credit=path, per_edge=true``."""
    return ", ".join(f"{k}={option_text(v)}" for k, v in options.items())


def entry_title(base: str, options: dict | None = None) -> str:
    """The report's title of a comparison entry: ``PA&DA (paths + data), credit=path``."""
    title = TITLES.get(base, base)
    return f"{title}, {options_text(options)}" if options else title


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(vals)) if vals else None


def _std(values) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.std(vals)) if len(vals) > 1 else None


def epoch_time(rows: list[dict], dense_last: int) -> float | None:
    """Median seconds per epoch over the epochs that ran no dense evaluation.

    ``rows`` are a run's ``epoch_seconds`` metrics (``step`` = the last step of the epoch). Dense
    evaluations run inside the epochs that hold the last ``dense_last`` steps; those are left
    out unless every epoch holds some.
    """
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: r["step"])
    per_epoch = rows[0]["step"]  # steps of the first epoch
    total = rows[-1]["step"]
    clean = [r["value"] for r in rows if r["step"] <= total - dense_last] if dense_last else \
        [r["value"] for r in rows]
    if not clean or per_epoch <= 0:
        clean = [r["value"] for r in rows]
    return float(np.median(clean))


def analyse_comparison(store: Store, cfg: dict, truth: TruthTable, k: int, instance, run_metrics) -> dict:
    """One row per strategy of ``cfg["comparison"]`` (``instance`` and ``run_metrics`` are the
    analysis's readers of one run's rankings and metrics)."""
    from wsnas import metrics

    dense_last = cfg["study"].get("dense_last", 0)
    rows = []
    # the store keeps the config as canonical JSON (sorted keys): SPOS first, then as in the paper
    order = {name: i for i, name in enumerate(("spos", "fairnas", "pada-path", "pada-data", "pada"))}
    entries = sorted(cfg["comparison"].items(),
                     key=lambda kv: (order.get(kv[1].get("strategy", kv[0]), len(order)), kv[0]))
    for name, info in entries:
        seeds = []
        for run_id in info["run_ids"]:
            run = store.get_run(run_id)
            if run is None or not store.checkpoints(run_id):
                continue
            inst = instance(store, run_id, truth, k)
            final, dense = inst.get("final") or {}, inst.get("dense") or {}
            named: dict[str, list[dict]] = {}  # the run's metrics, read once, by name
            for r in run_metrics(store, run_id, None):
                named.setdefault(r["name"], []).append(r)
            var = sorted(named.get("grad_variance", []), key=lambda r: r["step"])
            seeds.append({
                "run_id": run_id, "status": run["status"],
                "gt_tau": final.get("gt_tau"), "t1r": final.get("t1r"), "t3r": final.get("t3r"),
                "gt_tau_mean_k": dense.get("mean"), "gt_tau_std_k": dense.get("std"),
                "accuracy": final.get("accuracy"),
                "grad_variance": _mean(r["value"] for r in var),
                "grad_relative_variance": _mean(r["value"] for r in named.get("grad_relative_variance", [])),
                "grad_series": [[r["step"], r["value"]] for r in var],
                "epoch_seconds": epoch_time(named.get("epoch_seconds", []), dense_last),
                "path_probs": _path_probs(named),
                "dense": {"steps": dense["steps"], "matrix": dense["matrix"]} if dense else None,
            })
        if not seeds:
            continue
        finals = [s["accuracy"] for s in seeds if s["accuracy"] is not None]
        s_tau = metrics.s_tau(np.array(finals))["mean"] if len(finals) >= 2 else None
        base, options = info.get("strategy", name), info.get("options") or {}
        rows.append({
            "strategy": name, "base": base, "options": options, "defaults": info.get("defaults") or {},
            "title": entry_title(base, options), "n": len(seeds),
            "done": sum(s["status"] == "done" for s in seeds), "seeds": seeds,
            **{key: _mean(s[key] for s in seeds) for key in
               ("gt_tau", "t1r", "t3r", "gt_tau_mean_k", "gt_tau_std_k", "grad_variance",
                "grad_relative_variance", "epoch_seconds")},
            "gt_tau_sd": _std(s["gt_tau"] for s in seeds),
            "path_probs": _mean_probs([s["path_probs"] for s in seeds if s["path_probs"]]),
            "grad_variance_sd": _std(s["grad_variance"] for s in seeds),
            "s_tau": s_tau,
        })
    for row in rows:  # an entry at its defaults beside entries that change them: named by those defaults
        if not row["options"]:
            for other in rows:
                if other["base"] == row["base"] and other["options"]:
                    row["defaults"].update(other["defaults"])
            row["title"] = entry_title(row["base"], row["defaults"])
    return {"rows": rows, "k": k, "grad_window": cfg["study"].get("grad_window", 0),
            "published": PUBLISHED_COMPARISON}


def _path_probs(named: dict[str, list[dict]]) -> dict | None:
    """The op probabilities path sampling ended with (PA&DA, PA&DA paths only), from a run's
    metrics by name."""
    rows = [r for name, rs in named.items() if name.startswith("path_prob_") for r in rs]
    if not rows:
        return None
    last = max(r["step"] for r in rows)
    return {r["name"][len("path_prob_"):]: r["value"] for r in rows if r["step"] == last}


def _mean_probs(probs: list[dict]) -> dict | None:
    """Each op's final sampling probability, averaged over the seeds."""
    if not probs:
        return None
    return {op: float(np.mean([p.get(op, 0.0) for p in probs])) for op in probs[0]}


def _against(rows: dict, name: str, base: str, key: str) -> tuple[float, float] | None:
    a, b = rows.get(name, {}).get(key), rows.get(base, {}).get(key)
    return None if a is None or b is None else (a, b)


def _diff_se(a: dict, b: dict, key: str) -> float | None:
    """Standard error of the difference of the seed means of ``key`` (None with fewer than two
    seeds on either side)."""
    out = 0.0
    for row in (a, b):
        vals = [s[key] for s in row.get("seeds", []) if s.get(key) is not None and not math.isnan(s[key])]
        if len(vals) < 2:
            return None
        out += float(np.var(vals, ddof=1)) / len(vals)
    return math.sqrt(out)


def _verdict(better: bool, diff: float, se: float | None) -> tuple[bool | None, str]:
    """The verdict on a difference of seed means: undecided when it is within twice its
    standard error (the seeds disagree too much to say)."""
    if se is not None and abs(diff) < 2 * se:
        return None, f"; the difference {diff:+.3g} is within twice its standard error over the seeds ({se:.3g})"
    return better, "" if se is None else f"; difference {diff:+.3g}, standard error {se:.3g}"


def _claims(comp: dict, what: str, row: dict, base: dict, versus: str) -> list[dict]:
    """The two claims of PA&DA for ``row`` against ``base`` (named ``versus``): it lowers the
    supernet's gradient variance, and it raises GT-Tau."""
    out = []
    rows = {"a": row, "b": base}
    var = _against(rows, "a", "b", "grad_variance")
    if var is not None:
        rel = _against(rows, "a", "b", "grad_relative_variance")
        holds, note = _verdict(var[0] < var[1], var[0] - var[1], _diff_se(row, base, "grad_variance"))
        out.append({"claim": f"{what} lowers the supernet's gradient variance (vs {versus})",
                    "holds": holds,
                    "evidence": f"mean gradient variance over windows of {comp['grad_window']} steps "
                                f"{var[0]:.4g} vs {var[1]:.4g} ({100 * (var[0] / var[1] - 1):+.1f}%)"
                                + (f"; relative to the mean squared norm {rel[0]:.3f} vs {rel[1]:.3f}"
                                   if rel else "")
                                + f", over {row['n']} and {base['n']} seeds" + note})
    key = "gt_tau_mean_k" if _against(rows, "a", "b", "gt_tau_mean_k") else "gt_tau"
    tau = _against(rows, "a", "b", key)
    if tau is not None:
        final = _against(rows, "a", "b", "gt_tau")
        label = f"GT-Tau-Mean-{comp['k']}" if key == "gt_tau_mean_k" else "final GT-Tau"
        holds, note = _verdict(tau[0] > tau[1], tau[0] - tau[1], _diff_se(row, base, key))
        out.append({"claim": f"{what} raises GT-Tau (vs {versus})",
                    "holds": holds,
                    "evidence": f"{label} {tau[0]:.3f} vs {tau[1]:.3f}"
                                + (f"; final GT-Tau {final[0]:.3f} vs {final[1]:.3f}"
                                   if final and key != "gt_tau" else "") + note})
    return out


def comparison_findings(a: dict) -> list[dict]:
    """PA&DA's claims checked on this data: against SPOS, it lowers the supernet's gradient
    variance and raises GT-Tau; and the same for each half alone, and for every entry of them
    with options (``pada:credit=path``). An entry with options is also checked against the same
    strategy at its defaults where the study has it (``credit=path`` vs ``credit=ops``). A claim
    is undecided when the difference is within twice its standard error over the seeds."""
    comp = a.get("comparison")
    if not comp:
        return []
    rows = {r["strategy"]: r for r in comp["rows"]}
    if "spos" not in rows:
        return []
    out = []
    spos = rows["spos"]
    pada = [r for r in comp["rows"] if r.get("base", r["strategy"]) in PADA_CLAIMS]
    pada.sort(key=lambda r: (list(PADA_CLAIMS).index(r.get("base", r["strategy"])), r["strategy"]))
    for row in pada:
        base, options = row.get("base", row["strategy"]), row.get("options") or {}
        named = options or row.get("defaults") or {}  # at its defaults: named by them beside a variant
        what = PADA_CLAIMS[base] + (f" ({options_text(named)})" if named else "")
        out += _claims(comp, what, row, spos, "SPOS")
        plain = rows.get(base)
        if options and plain is not None and not plain.get("options"):
            defaults = row.get("defaults") or {}
            versus = PADA_CLAIMS[base] + (f" with {options_text(defaults)}" if defaults else "")
            out += _claims(comp, what, row, plain, versus)
    return out


__all__ = ["PADA_CLAIMS", "PUBLISHED_COMPARISON", "TITLES", "analyse_comparison", "comparison_findings",
           "entry_title", "epoch_time", "option_text", "options_text"]
