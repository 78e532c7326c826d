"""The strategy-comparison table of the insights report (``wsnas insights --strategy``)."""

from __future__ import annotations

from wsnas.analysis.comparison import options_text
from wsnas.report.figures import fmt

__all__ = ["comparison_table"]


CREDIT_NOTE = (" PA&DA's credit rules: ops (the authors' code) credits each op with the gradient norm of "
               "its own convolutions, so parameter-free ops (none, skip, pooling) get none and their "
               "sampling probability falls to (1 - tau) / |O|; path credits every op of the sampled path "
               "with the norm of the step's whole gradient.")


def _pm(mean, sd, digits: int = 3) -> str:
    return fmt(mean, digits) + (f" ± {fmt(sd, digits)}" if fmt(sd, digits) != "–" else "")


def _sci(value) -> str:
    return "–" if fmt(value) == "–" else f"{float(value):.3g}"


def comparison_table(a: dict) -> tuple[str, list[str], list[list[tuple[str, str]]], list[str]] | None:
    """One row per strategy: GT-Tau, T1R/T3R, gradient variance and time per epoch over its seeds."""
    comp = a.get("comparison")
    if not comp or not comp.get("rows"):
        return None
    k = comp.get("k") or "k"
    header = ["strategy", "seeds", "final GT-Tau ± SD", f"GT-Tau-Mean-{k}", "T1R", "T3R", "S-Tau",
              "gradient variance", "relative variance", "s / epoch"]
    base = next((r for r in comp["rows"] if r["strategy"] == "spos"), None)
    rows = []
    for r in comp["rows"]:
        var = _sci(r.get("grad_variance"))
        if base is not None and r is not base and fmt(r.get("grad_variance")) != "–" \
                and fmt(base.get("grad_variance")) != "–" and base["grad_variance"] > 0:
            var += f" ({100 * (r['grad_variance'] / base['grad_variance'] - 1):+.0f}%)"
        secs = r.get("epoch_seconds")
        if base is not None and r is not base and secs is not None and base.get("epoch_seconds"):
            secs_text = f"{secs:.2f} ({secs / base['epoch_seconds']:.2f}x)"
        else:
            secs_text = fmt(secs, 2)
        rows.append([
            (r["title"] + ("" if r["done"] == r["n"] else f" ({r['done']} of {r['n']} done)"), ""),
            (str(r["n"]), ""),
            (_pm(r.get("gt_tau"), r.get("gt_tau_sd")), ""),
            (fmt(r.get("gt_tau_mean_k")), ""),
            (fmt(r.get("t1r"), 1), ""),
            (fmt(r.get("t3r"), 1), ""),
            (fmt(r.get("s_tau")), ""),
            (var, ""),
            (fmt(r.get("grad_relative_variance")), ""),
            (secs_text, ""),
        ])
    window = comp.get("grad_window")
    notes = [
        "Each strategy trains fully shared supernets with the same budget, one per seed (seed k: "
        "initial weights, data order and the strategy's own sampling). SPOS samples every edge's op "
        "uniformly; FairNAS trains |O| paths per mini-batch (every op of every edge once), "
        "accumulates their gradients and makes one update; PA&DA samples ops and data in proportion "
        "to normalised gradient norms, mixed with uniform by tau = e / E after epoch e (from 0) of E.",
        f"Gradient variance: the trace of the covariance of the supernet's gradient over windows of "
        f"{window} consecutive steps, averaged over the windows and the seeds (percent: against "
        "SPOS); relative variance: the same divided by the mean squared gradient norm (0: every step "
        "pushes the same way; 1: they cancel out). FairNAS's gradient is the sum over its |O| paths, "
        "so its absolute variance is on another scale; compare its relative variance."
        if window else "Gradient variance was not recorded (--grad-window 0).",
        "s / epoch: median training seconds per epoch on this machine, leaving out the epochs that "
        "ran dense evaluations (the ratio is against SPOS). GT-Tau, T1R/T3R (true rank of the child "
        "the supernet ranks first / best true rank among its top three) and S-Tau (mean tau between "
        "the seeds' rankings) are as in the main table.",
        "Published: " + comp.get("published", ""),
    ]
    for r in comp["rows"]:
        options = r.get("options") or {}
        if options:
            defaults = options_text(r.get("defaults") or {})
            notes.append(f"{r['title']}: {r.get('base', r['strategy'])} with " + options_text(options)
                         + (f" instead of its default {defaults}" if defaults else "")
                         + f" (entry {r['strategy']})." + (CREDIT_NOTE if "credit" in options else ""))
    for r in comp["rows"]:
        if r.get("path_probs"):
            probs = ", ".join(f"{op} {p:.3f}" for op, p in r["path_probs"].items())
            credit = (r.get("options") or {}).get("credit", "ops")
            notes.append(f"{r['title']}: op sampling probabilities after the last epoch (mean over the "
                         f"seeds; uniform {1 / len(r['path_probs']):.3f}): {probs}. "
                         + ("Every op of the sampled path is credited with the step's whole gradient norm "
                            "(credit=path), parameter-free ops included." if credit == "path" else
                            "A parameter-free op's gradient norm is zero by definition, so its probability "
                            "falls to (1 - tau) / |O|."))
    return "Training strategies compared (PA&DA, its halves, SPOS, FairNAS)", header, rows, notes
