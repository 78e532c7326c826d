"""Analysis of an insights study: reads only the store, computes every metric of the paper.

``analyse_insights(store, experiment)`` returns a plain dict (JSON-ready) with, per group of
supernet instances (seeds, orders, shuffle): S-Tau across instances, GT-Tau, T1R/T3R,
GT-Tau-Mean-k/Std-k over the dense evaluations, and the tau between consecutive epochs; the
ground truth's own seed-to-seed tau as the ceiling; the interference pattern (rank of the
child trained in the latest mini-batch); GT-Tau during fine-tuning; the published CIFAR-10
numbers; and a list of findings, each stated as holding or not on this data.
"""

from __future__ import annotations

import math

import numpy as np

from wsnas import metrics
from wsnas.core.errors import WsnasError
from wsnas.groundtruth.table import TruthTable
from wsnas.groundtruth.truth import resolve_truth
from wsnas.store import Store

# algorithms.md 1.4, CIFAR-10, 10 instances each
PUBLISHED = {
    "seeds": {"s_tau": 0.5415, "gt_tau": 0.457, "gt_tau_std": 0.148, "t1r": 18.5, "t3r": 17.6},
    "orders": {"s_tau": 0.3930, "gt_tau": 0.463, "gt_tau_std": 0.099, "t1r": 16.9, "t3r": 11.5},
    "shuffle": {"s_tau": 0.4403, "gt_tau": 0.511, "gt_tau_std": 0.067, "t1r": 15.6, "t3r": 11.2},
    "groundtruth": {"s_tau": 0.7120, "gt_tau": 0.799, "gt_tau_std": 0.026, "t1r": 4.8, "t3r": 1.6},
    "random": {"s_tau": 0.0382},
    "gt_tau_mean_64": 0.499, "gt_tau_std_64": 0.032,
}
# algorithms.md 1.5, CIFAR-10 GT-Tau-Mean-64 (group sharing: Table 3; prefix sharing after 2000 epochs)
PUBLISHED_SHARING = {
    "full": 0.499, "group:4:similarity": 0.708, "group:8:similarity": 0.692,
    "group:16:similarity": 0.720, "group:32:similarity": 0.736, "group:16:random": 0.166,
    "group:64:similarity": 0.803,
    "prefix:0": 0.696, "prefix:1": 0.484, "prefix:2": 0.416, "prefix:3": 0.445, "prefix:4": 0.517,
}
GROUP_TITLES = {"seeds": "different seeds", "orders": "different orders",
                "shuffle": "orders reshuffled every cycle"}


def _f(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def experiment_truth(store: Store, run: dict) -> TruthTable:
    """The ground truth an experiment is compared against (stored, or a built-in table)."""
    cfg = run["config"]
    truth, _ = resolve_truth(cfg.get("truth", "store"), store=store, space=cfg["space"]["space"],
                             dataset=cfg["data"]["name"], config_hash=cfg["groundtruth"]["config_hash"])
    return truth


def _aligned(truth: TruthTable, archs: list[str], matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``matrix`` unchanged, and the truth accuracies in the order of its columns (``archs``)."""
    pos = [truth.position(a) for a in archs]
    return matrix, truth.accuracy[pos]


def dense_window(last: int, every: int = 1) -> str:
    """The dense evaluations in words: 'each of the last 64 mini-batches', 'every 2nd of the last
    64 mini-batches'."""
    if every == 1:
        return f"each of the last {last} mini-batches"
    return f"every {ordinal(every)} of the last {last} mini-batches"


def ordinal(n: int) -> str:
    """'1st', '2nd', '3rd', '4th', '11th', '22nd' ..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def instance_metrics(store: Store, run_id: str, truth: TruthTable, k: int) -> dict:
    """One supernet run against ``truth``: ``final`` (GT-Tau, Spearman, T1R, T3R and the accuracies
    after the last epoch), ``epochs`` and ``epoch_gt_tau`` (after every epoch),
    ``consecutive_epoch_tau``, and ``dense`` (GT-Tau over the last ``k`` mini-batches) when the run
    has dense evaluations."""
    labels, archs, matrix = store.prediction_matrix(run_id)
    matrix, gt = _aligned(truth, archs, matrix)
    epoch_rows = [i for i, lab in enumerate(labels) if lab.startswith("epoch:")]
    dense_rows = [i for i, lab in enumerate(labels) if lab.startswith("step:")]
    dense_rows.sort(key=lambda i: int(labels[i].split(":")[1]))
    epoch_rows.sort(key=lambda i: int(labels[i].split(":")[1]))
    out: dict = {"run_id": run_id, "archs": archs}
    if epoch_rows:
        final = matrix[epoch_rows[-1]]
        out["final"] = {
            "gt_tau": metrics.gt_tau(final, gt), "spearman": metrics.spearman(final, gt),
            "t1r": metrics.top_n_rank(final, gt, 1), "t3r": metrics.top_n_rank(final, gt, 3),
            "accuracy": final.tolist(),
        }
        out["epochs"] = [int(labels[i].split(":")[1]) for i in epoch_rows]
        out["epoch_gt_tau"] = [metrics.gt_tau(matrix[i], gt) for i in epoch_rows]
        taus = [metrics.kendall_tau(matrix[a], matrix[b]) for a, b in zip(epoch_rows, epoch_rows[1:])]
        out["consecutive_epoch_tau"] = taus
    if dense_rows:
        steps = [int(labels[i].split(":")[1]) for i in dense_rows]
        dense = matrix[dense_rows]
        taus = [metrics.gt_tau(row, gt) for row in dense]
        # the last k mini-batches, by step: every one of them, or every n-th (--dense-every n);
        # k no wider than the mini-batches the evaluations cover
        every = steps[-1] - steps[-2] if len(steps) > 1 else 1
        k = min(k, len(steps) * every)
        window = [j for j, s in enumerate(steps) if s > steps[-1] - k]
        use = [taus[j] for j in window]
        out["dense"] = {"steps": steps, "gt_tau": taus, "mean": float(np.mean(use)),
                        "std": float(np.std(use)), "k": k, "every": every, "first": window[0],
                        "t1r_mean": float(np.mean([metrics.top_n_rank(dense[j], gt, 1) for j in window])),
                        "t3r_mean": float(np.mean([metrics.top_n_rank(dense[j], gt, 3) for j in window])),
                        "matrix": dense.tolist()}
    return out


def _group_summary(instances: list[dict]) -> dict:
    finals = [i["final"] for i in instances if "final" in i]
    out: dict = {"n": len(instances)}
    if len(finals) >= 2:
        out["s_tau"] = metrics.s_tau(np.array([f["accuracy"] for f in finals]))
    if finals:
        taus = [f["gt_tau"] for f in finals]
        out["gt_tau"] = float(np.mean(taus))
        out["gt_tau_std"] = float(np.std(taus))
        out["t1r"] = float(np.mean([f["t1r"] for f in finals]))
        out["t3r"] = float(np.mean([f["t3r"] for f in finals]))
    dense = [i["dense"] for i in instances if "dense" in i]
    if dense:
        out["gt_tau_mean_k"] = float(np.mean([d["mean"] for d in dense]))
        out["gt_tau_std_k"] = float(np.mean([d["std"] for d in dense]))
        out["k"] = dense[0]["k"]
    consec = [t for i in instances for t in i.get("consecutive_epoch_tau", []) if not math.isnan(t)]
    if consec:
        out["consecutive_epoch_tau"] = float(np.mean(consec))
    return out


def _ceiling(truth: TruthTable) -> dict | None:
    """The ground truth against itself: tau between independent trainings (seeds)."""
    seeds = sorted(truth.per_seed)
    rows = [truth.per_seed[s] for s in seeds if not np.isnan(truth.per_seed[s]).any()]
    if len(rows) < 2:
        return None
    mean = truth.accuracy
    gt_taus = [metrics.gt_tau(r, mean) for r in rows]
    # each seed against the mean of the *other* seeds (an independent ground truth)
    loo = [metrics.gt_tau(r, np.mean([o for j, o in enumerate(rows) if j != i], axis=0))
           for i, r in enumerate(rows)]
    return {
        "n": len(rows), "s_tau": metrics.s_tau(np.array(rows)),
        "gt_tau": float(np.mean(gt_taus)), "gt_tau_std": float(np.std(gt_taus)),
        "gt_tau_leave_one_out": float(np.mean(loo)),
        "t1r": float(np.mean([metrics.top_n_rank(r, mean, 1) for r in rows])),
        "t3r": float(np.mean([metrics.top_n_rank(r, mean, 3) for r in rows])),
    }


def _best_first_ranks(row: np.ndarray) -> np.ndarray:
    """Ranks 1..n with 1 = highest accuracy; tied children share the mean of their ranks.

    Mean ranks keep the chance level at (n + 1) / 2 even when many children tie (coarse
    accuracies on a small validation split); giving ties the best rank of their group would
    push a trained child that ties with others towards 1 and fake an interference effect.
    """
    return row.size + 1 - metrics.average_ranks(row)


def _interference(store: Store, run_id: str, dense: dict) -> dict | None:
    """Rank (1 = best, ties at their mean rank) of the child trained in each dense step,
    just after that step."""
    trained = {r["step"]: r["arch"] for r in store.train_steps(run_id)}
    archs = store.prediction_matrix(run_id)[1]
    col = {a: j for j, a in enumerate(archs)}
    ranks, idx, at = [], [], []
    matrix = np.asarray(dense["matrix"])
    for row, step in zip(matrix, dense["steps"]):
        arch = trained.get(step)
        if arch is None:
            continue
        ranks.append(float(_best_first_ranks(row)[col[arch]]))
        idx.append(col[arch])
        at.append(step)
    if not ranks:
        return None
    n = matrix.shape[1]
    # interference matrix: change of every child's accuracy across the step that trained A
    delta_sum, delta_count = np.zeros((n, n)), np.zeros(n)
    for t in range(1, len(matrix)):
        arch = trained.get(dense["steps"][t])
        if arch is not None and dense["steps"][t] == dense["steps"][t - 1] + 1:
            delta_sum[col[arch]] += matrix[t] - matrix[t - 1]
            delta_count[col[arch]] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = delta_sum / delta_count[:, None]
    diag = np.diag(delta)[delta_count > 0]
    off = delta[delta_count > 0][~np.eye(n, dtype=bool)[delta_count > 0]]
    expected = (n + 1) / 2
    sd = math.sqrt((n * n - 1) / 12) / math.sqrt(len(ranks))  # std of a mean of uniform ranks
    rank_matrix = np.array([_best_first_ranks(r) for r in matrix]).T  # child x step
    return {"run_id": run_id, "steps": dense["steps"], "trained_step": at,
            "trained_rank": ranks, "trained_col": idx,
            "mean_trained_rank": float(np.mean(ranks)), "expected_rank": expected,
            "every": dense.get("every", 1),
            "z": float((expected - np.mean(ranks)) / sd),
            "top_quarter_share": float(np.mean([r <= n / 4 for r in ranks])),
            "rank_matrix": rank_matrix.tolist(), "archs": archs,
            # consecutive evaluations only (none with --dense-every above 1)
            "delta_matrix": np.where(np.isnan(delta), None, delta).tolist() if delta_count.any() else None,
            "delta_self": float(np.mean(diag)) if diag.size else None,
            "delta_others": float(np.mean(off)) if off.size else None}


def _finetune(store: Store, run_id: str, truth: TruthTable) -> dict | None:
    if store.get_run(run_id) is None or not store.checkpoints(run_id):
        return None  # not started yet (a study still running)
    labels, archs, matrix = store.prediction_matrix(run_id)
    if np.isnan(matrix).any():
        return None
    _, gt = _aligned(truth, archs, matrix)
    steps = [int(lab.split(":")[1]) for lab in labels]
    order = np.argsort(steps)
    return {"run_id": run_id, "steps": [steps[i] for i in order],
            "gt_tau": [metrics.gt_tau(matrix[i], gt) for i in order],
            "t1r": [metrics.top_n_rank(matrix[i], gt, 1) for i in order],
            "t3r": [metrics.top_n_rank(matrix[i], gt, 3) for i in order]}


def analyse_insights(store: Store, experiment: str = "insights", *, k: int | None = None) -> dict:
    """Every metric of the insights study, read from the store."""
    run = store.get_run(experiment)
    if run is None or run["kind"] != "insights":
        found = [r["run_id"] for r in store.list_runs("insights")]
        raise WsnasError(f"no insights experiment {experiment!r} in {store.path}; "
                         f"found: {', '.join(found) or 'none'}")
    cfg = run["config"]
    k = k or cfg["study"]["dense_last"] or 64
    truth = experiment_truth(store, run)
    groups = {}
    for group, run_ids in cfg["groups"].items():
        instances = [instance_metrics(store, r, truth, k) for r in run_ids
                     if store.get_run(r) is not None and store.checkpoints(r)]
        if not instances:
            continue
        groups[group] = {"title": GROUP_TITLES.get(group, group),
                         "strategy": cfg["strategies"][group], "instances": instances,
                         "summary": _group_summary(instances)}
    ceiling = _ceiling(truth)
    interference = None
    for group in ("seeds", "orders", "shuffle"):
        for inst in groups.get(group, {}).get("instances", []):
            if "dense" in inst:
                interference = _interference(store, inst["run_id"], inst["dense"])
                break
        if interference:
            break
    sharing = _sharing_sweep(store, cfg, truth, k) if cfg.get("sweep") else None
    comparison = None
    if cfg.get("comparison"):
        from wsnas.analysis.comparison import analyse_comparison

        comparison = analyse_comparison(store, cfg, truth, k, instance_metrics, _run_metrics)
    if interference is None and sharing:
        for row in sharing["rows"]:
            if row["label"] == "full" and row.get("dense"):
                interference = _interference(store, row["run_id"], row["dense"])
    if interference is None and comparison:
        for row in comparison["rows"]:
            first = row["seeds"][0]
            if row["strategy"] in ("spos", "round-robin") and first.get("dense"):
                interference = _interference(store, first["run_id"], first["dense"])
                break
    finetune = None
    if cfg.get("finetune"):
        finetune = _finetune(store, cfg["finetune"]["run_id"], truth)
    result = {
        "experiment": experiment, "status": run["status"], "space": cfg["space"],
        "data": cfg["data"], "study": cfg["study"], "k": k,
        "truth": {"source": truth.source or cfg.get("truth"), "dataset": truth.dataset,
                  "n": len(truth), "accuracy": truth.accuracy.tolist(), "archs": truth.archs,
                  "ceiling": ceiling},
        "groups": groups, "interference": interference, "finetune": finetune,
        "sharing": sharing, "comparison": comparison, "published": PUBLISHED,
    }
    result["findings"] = findings(result)
    return result


def _sharing_sweep(store: Store, cfg: dict, truth: TruthTable, k: int) -> dict:
    """One row per sharing setting of the sweep: GT-Tau-Mean-k / Std-k, final GT-Tau, compute."""
    from wsnas.supernet.sharing import parse_sharing

    rows = []
    for label, info in cfg["sweep"].items():
        run_id = info["run_id"]
        run = store.get_run(run_id)
        if run is None or not store.checkpoints(run_id):
            continue
        sharing = parse_sharing(label)
        inst = instance_metrics(store, run_id, truth, k)
        dense, final = inst.get("dense") or {}, inst.get("final") or {}
        seconds = [r["value"] for r in _run_metrics(store, run_id, "epoch_seconds")]
        rows.append({
            "label": label, "run_id": run_id, "status": run["status"], "kind": sharing.kind,
            "groups": sharing.groups if sharing.kind == "group" else (1 if sharing.is_full else None),
            "partition": sharing.partition if sharing.kind == "group" else None,
            "prefix": sharing.prefix if sharing.kind == "prefix" else None,
            "compute": info["compute"], "budget": info.get("budget", "paper"),
            "train_seconds": float(sum(seconds)) if seconds else None,
            "gt_tau_mean_k": dense.get("mean"), "gt_tau_std_k": dense.get("std"), "k": dense.get("k"),
            "gt_tau": final.get("gt_tau"), "t1r": final.get("t1r"), "t3r": final.get("t3r"),
            "published": PUBLISHED_SHARING.get(label),
            "dense": {"steps": dense["steps"], "matrix": dense["matrix"], "every": dense["every"]} if dense else None,
        })
    return {"rows": rows, "findings_input": _sharing_series(rows)}


def _run_metrics(store: Store, run_id: str, name: str) -> list[dict]:
    reader = getattr(store, "run_metrics", None)
    if reader is None:
        return []
    try:
        return reader(run_id, name=name)
    except Exception:  # noqa: BLE001 - an older store without the table
        return []


def _sharing_series(rows: list[dict]) -> dict:
    """GT-Tau-Mean-k and Std-k against M for each partition (M = 1 and 64 belong to both)."""
    series: dict[str, dict[int, dict]] = {"similarity": {}, "random": {}}
    for r in rows:
        if r["kind"] == "full" or (r["kind"] == "group" and r["groups"] in (1, 64)):
            m = 1 if r["kind"] == "full" else r["groups"]
            for s in series.values():
                s[m] = r
        elif r["kind"] == "group" and r["partition"] in series:
            series[r["partition"]][r["groups"]] = r
    return {name: sorted(((m, r["gt_tau_mean_k"], r["gt_tau_std_k"]) for m, r in s.items()
                          if r["gt_tau_mean_k"] is not None), key=lambda t: t[0])
            for name, s in series.items()}


def _sharing_findings(a: dict) -> list[dict]:
    sweep = a.get("sharing")
    if not sweep:
        return []
    out = []
    sim = sweep["findings_input"].get("similarity") or []
    if len(sim) >= 2 and sim[0][0] == 1:
        ms, means, stds = zip(*sim)
        t_mean = metrics.kendall_tau(list(ms), list(means))
        t_std = metrics.kendall_tau(list(ms), list(stds))
        out.append({"claim": "reducing sharing (more groups, similarity partition) raises GT-Tau",
                    "holds": _decided(t_mean > 0 and means[-1] > means[0], t_mean, means[0], means[-1]),
                    "evidence": f"GT-Tau-Mean-k {means[0]:.3f} with full sharing, {means[-1]:.3f} with "
                                f"M = {ms[-1]}; tau between M and GT-Tau-Mean-k over {len(ms)} settings "
                                f"{t_mean:.2f} (paper: 0.499 at M = 1 up to 0.803 at M = 64)"})
        out.append({"claim": "reducing sharing lowers the variance of the ranking (GT-Tau-Std-k)",
                    "holds": _decided(t_std < 0 and stds[-1] < stds[0], t_std, stds[0], stds[-1]),
                    "evidence": f"GT-Tau-Std-k {stds[0]:.3f} with full sharing, {stds[-1]:.3f} with "
                                f"M = {ms[-1]}; tau between M and Std-k {t_std:.2f}"})
    rnd = dict((m, mean) for m, mean, _ in sweep["findings_input"].get("random") or [])
    pairs = [(m, mean, rnd[m]) for m, mean, _ in sim if m in rnd and 1 < m < 64]
    if pairs:
        diff = float(np.mean([s - r for _, s, r in pairs]))
        out.append({"claim": "a similarity partition ranks better than a random one with as many groups",
                    "holds": _decided(diff > 0, diff),
                    "evidence": f"mean GT-Tau-Mean-k difference (similarity - random) {diff:+.3f} over M in "
                                f"{{{', '.join(str(m) for m, _, _ in pairs)}}} (paper at M = 16: 0.720 vs 0.166)"})
    prefix = {r["prefix"]: r for r in sweep["rows"] if r["kind"] == "prefix" and r["gt_tau_mean_k"] is not None}
    if len(prefix) >= 2:
        first, last = min(prefix), max(prefix)
        a0, a1 = prefix[first]["gt_tau_mean_k"], prefix[last]["gt_tau_mean_k"]
        out.append({"claim": "prefix sharing: sharing fewer cells ranks better",
                    "holds": _decided(a0 > a1, a0, a1),
                    "evidence": f"GT-Tau-Mean-k {a0:.3f} at K = {first} vs {a1:.3f} at K = {last} "
                                "(paper, after 2000 epochs: 0.696 at K = 0, 0.517 at K = 4, lowest 0.416 at K = 2)"})
    return out


def _decided(holds: bool, *values: float) -> bool | None:
    """``holds``, or None when a statistic it rests on is undefined (NaN)."""
    return None if any(_f(v) is None for v in values) else bool(holds)


def findings(a: dict) -> list[dict]:
    """The paper's findings, each checked on this data and stated plainly.

    ``holds`` is True or False, or None when the claim cannot be decided on this data because a
    statistic it rests on is undefined (e.g. a tau with a ranking where every child ties).
    """
    out = []
    ceiling = (a["truth"].get("ceiling") or {}).get("s_tau", {}).get("mean")
    for group in ("seeds", "orders", "shuffle"):
        s = a["groups"].get(group, {}).get("summary", {})
        if "s_tau" in s and ceiling is not None:
            v = s["s_tau"]["mean"]
            out.append({
                "claim": f"rankings differ strongly across {GROUP_TITLES[group].replace('different ', '')}",
                "holds": _decided(v < ceiling - 0.05, v, ceiling),
                "evidence": f"S-Tau across {s['n']} instances {v:.3f} vs the ground truth's own "
                            f"seed-to-seed tau {ceiling:.3f} (paper: "
                            f"{PUBLISHED[group]['s_tau']:.3f} vs {PUBLISHED['groundtruth']['s_tau']:.3f})"})
    consec = [g["summary"]["consecutive_epoch_tau"] for g in a["groups"].values()
              if "consecutive_epoch_tau" in g["summary"]]
    if consec and ceiling is not None:
        v = float(np.mean(consec))
        out.append({"claim": "rankings change between consecutive epochs",
                    "holds": _decided(v < ceiling - 0.05, v, ceiling),
                    "evidence": f"mean tau between consecutive epochs {v:.3f} vs ground-truth "
                                f"seed-to-seed tau {ceiling:.3f}"})
    inter = a.get("interference")
    if inter:
        out.append({"claim": "the child trained in the latest mini-batch ranks high (interference)",
                    "holds": _decided(inter["z"] > 2.0, inter["z"]),
                    "evidence": f"its mean rank just after its step is {inter['mean_trained_rank']:.1f} "
                                f"of {len(inter['archs'])} (chance {inter['expected_rank']:.1f}, "
                                f"z = {inter['z']:.1f}); in the top quarter "
                                f"{100 * inter['top_quarter_share']:.0f}% of the time"
                                + (f"; a step changes its own child's accuracy by "
                                   f"{100 * inter['delta_self']:+.2f} points on average and the others' by "
                                   f"{100 * inter['delta_others']:+.2f}"
                                   if inter.get("delta_self") is not None and inter.get("delta_others") is not None
                                   else "")})
    ft = a.get("finetune")
    if ft and len(ft["gt_tau"]) > 1:
        t0, t1 = ft["gt_tau"][0], ft["gt_tau"][-1]
        best = max(ft["gt_tau"])
        out.append({"claim": "fine-tuning each child briefly from a snapshot raises GT-Tau",
                    "holds": _decided(t1 > t0 + 0.02, t0, t1),
                    "evidence": f"GT-Tau {t0:.3f} at the snapshot, {t1:.3f} after "
                                f"{ft['steps'][-1]} steps (best {best:.3f}); paper: about 0.8 "
                                "within ~5 steps on CIFAR-10"})
    out += _sharing_findings(a)
    if a.get("comparison"):
        from wsnas.analysis.comparison import comparison_findings

        out += comparison_findings(a)
    groups = a["groups"]
    if ceiling is not None and groups:
        gts = [i["final"]["gt_tau"] for g in groups.values() for i in g["instances"]
               if "final" in i and not math.isnan(i["final"]["gt_tau"])]
        gt_ceiling = a["truth"]["ceiling"]["gt_tau_leave_one_out"]
        if gts:
            # standard error of Kendall's tau between independent rankings of n items, for the
            # mean over the instances: "informative" means at least two of them above zero
            n = len(a["truth"]["archs"])
            se = math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1))) / math.sqrt(len(gts))
            mean = float(np.mean(gts))
            out.append({"claim": "the supernet ranking is informative but below the ground truth's own",
                        "holds": _decided(2 * se < mean < gt_ceiling, mean, gt_ceiling),
                        "evidence": f"mean GT-Tau of the supernets {mean:.3f} over {len(gts)} instances "
                                    f"(a random ranking: 0 ± {se:.3f}); one independent training "
                                    f"against the others {gt_ceiling:.3f}"})
    return out
