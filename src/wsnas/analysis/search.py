"""The search study's numbers, read from the store: per setting the true rank of each selection
method's pick, the final entropy and the search time, and the papers' claims checked on this data
(:func:`analyse_search_study`; the study itself is :mod:`wsnas.experiments.search_study`)."""

from __future__ import annotations

import math

import numpy as np

from wsnas.core.errors import WsnasError
from wsnas.groundtruth.truth import truth_from_store
from wsnas.selection import selection_names
from wsnas.spaces import space_from_description
from wsnas.store import Store


def analyse_search_study(store: Store, experiment: str = "search") -> dict:
    """Per setting: mean true rank of the selected child per selection, final entropy, time."""
    run = store.get_run(experiment)
    if run is None or run["kind"] != "search-study":
        raise WsnasError(f"no search study {experiment!r} in {store.path}")
    cfg = run["config"]
    truth = truth_from_store(store, space=cfg["space"]["space"], dataset=cfg["data"]["name"],
                             config_hash=cfg["groundtruth"]["config_hash"])
    # the study's methods, in the order they run (those no longer registered are left out)
    methods = [m for m in selection_names() if any(m in r["select"] for r in cfg["runs"])]
    settings: dict[str, dict] = {}
    curves = []
    for r in cfg["runs"]:
        if store.get_run(r["run_id"]) is None:
            continue
        sel = {s["method"]: s for s in store.selections(r["run_id"])}
        entropy = store.run_metrics(r["run_id"], name="entropy")
        seconds = sum(m["value"] or 0.0 for m in store.run_metrics(r["run_id"], name="epoch_seconds"))
        free = store.run_metrics(r["run_id"], name="param_free_ops")
        s = settings.setdefault(r["label"], {"label": r["label"], "runs": []})
        s["runs"].append({"run_id": r["run_id"], "seed": r["seed"], "selections": sel,
                          "entropy": entropy[-1]["value"] if entropy else None,
                          "param_free_ops": free[-1]["value"] if free else None, "search_seconds": seconds})
        if entropy:
            argmax = {m["epoch"]: m["value"] for m in store.run_metrics(r["run_id"], name="argmax_index")}
            truth_acc = [float(truth.accuracy[truth.position(int(argmax[m["epoch"]]))])
                         if argmax.get(m["epoch"]) is not None else None for m in entropy]
            curves.append({"label": r["label"], "seed": r["seed"], "epochs": [m["epoch"] for m in entropy],
                           "entropy": [m["value"] for m in entropy], "argmax_truth": truth_acc})
    for s in settings.values():
        for method in methods:
            ranks = [x["selections"][method]["truth_rank"] for x in s["runs"]
                     if method in x["selections"] and x["selections"][method]["truth_rank"] is not None]
            accs = [x["selections"][method]["truth"] for x in s["runs"]
                    if method in x["selections"] and x["selections"][method]["truth"] is not None]
            s[method] = {"n": len(ranks), "rank": float(np.mean(ranks)) if ranks else None,
                         "best_rank": min(ranks) if ranks else None,
                         "accuracy": float(np.mean(accs)) if accs else None}
        ent = [x["entropy"] for x in s["runs"] if x["entropy"] is not None]
        s["entropy"] = float(np.mean(ent)) if ent else None
        free = [x["param_free_ops"] for x in s["runs"] if x["param_free_ops"] is not None]
        s["param_free_ops"] = float(np.mean(free)) if free else None
        s["search_seconds"] = float(np.mean([x["search_seconds"] for x in s["runs"]]))
    n = len(truth)
    result = {"experiment": experiment, "status": run["status"], "config": cfg, "settings": settings,
              "curves": curves, "truth": {"n": n, "best": float(np.nanmax(truth.accuracy)),
                                          "random_rank": (n + 1) / 2,
                                          "max_entropy": math.log(_n_ops(cfg["space"]))}}
    result["methods"] = methods
    result["findings"] = search_findings(result)
    return result


def _n_ops(described: dict) -> int:
    return len(space_from_description(described).relaxation().options)


def search_findings(a: dict) -> list[dict]:
    """The papers' claims, each checked on this data."""
    out = []
    settings = a["settings"]
    pairs = [(s, settings.get(f"{s}-softmax"), settings.get(f"{s}-gaea")) for s in a["config"]["study"]["strategies"]]
    pairs = [(s, soft, gaea) for s, soft, gaea in pairs if soft and gaea and soft["entropy"] is not None
             and gaea["entropy"] is not None]
    if pairs:
        lower = [s for s, soft, gaea in pairs if gaea["entropy"] < soft["entropy"]]
        out.append({"claim": "GAEA's architecture weights are sparser (lower entropy) than softmax's",
                    "holds": len(lower) == len(pairs),
                    "evidence": "; ".join(f"{s}: {gaea['entropy']:.4f} vs {soft['entropy']:.4f}"
                                          for s, soft, gaea in pairs)
                                + " (final mean entropy in nats, GAEA vs softmax; uniform "
                                + f"{a['truth']['max_entropy']:.4f})"})
    both = [(s["magnitude"]["rank"], s["pt"]["rank"]) for s in settings.values()
            if s.get("magnitude", {}).get("rank") is not None and s.get("pt", {}).get("rank") is not None]
    if both:
        mag, pt = float(np.mean([b[0] for b in both])), float(np.mean([b[1] for b in both]))
        out.append({"claim": "perturbation-based selection picks better children than the argmax of alpha",
                    "holds": pt < mag,
                    "evidence": f"mean true rank of the selected child {pt:.1f} with PT vs {mag:.1f} with magnitude "
                                f"over {len(both)} settings (1 = best of {a['truth']['n']}; chance "
                                f"{a['truth']['random_rank']:.1f})"})
    fixed, darts = settings.get("fixed-alpha"), settings.get("darts-softmax")
    if fixed and darts and fixed.get("pt", {}).get("rank") is not None and \
            darts.get("magnitude", {}).get("rank") is not None:
        f, d = fixed["pt"]["rank"], darts["magnitude"]["rank"]
        out.append({"claim": "a fixed-alpha supernet with PT selects better than DARTS with the argmax",
                    "holds": f < d,
                    "evidence": f"mean true rank {f:.1f} vs {d:.1f} (paper, NB201 CIFAR-10: 93.80% vs 54.30%)"})
    return out


__all__ = ["analyse_search_study", "search_findings"]
