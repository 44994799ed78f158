"""The meta-evaluation report: markdown with scatter and reliability plots (PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lm_eval_medinj.judge.metaeval import JudgeReport
from lm_eval_medinj.judge.scoring import slug

_AGREEMENT = ("pearson", "spearman", "kendall_tau_b", "accuracy", "cohen_kappa")


def _ci(d: dict[str, float]) -> str:
    return f"{d['value']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"


def plot_scatter(report: JudgeReport, ratings: np.ndarray, path: Path) -> None:
    """Human rating (jittered) against P(equivalent)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    jitter = np.random.default_rng(0).uniform(-0.08, 0.08, len(ratings))
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(ratings + jitter, report.p, s=12, alpha=0.6)
    ax.set(
        xlabel="human rating (jittered)",
        ylabel="judge P(equivalent)",
        ylim=(-0.02, 1.02),
        title=f"{report.judge}\nPearson r = {_ci(report.agreement['pearson'])}",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_reliability(report: JudgeReport, labels: np.ndarray, path: Path, bins: int = 10) -> None:
    """Observed human-equivalent rate per bin of raw and calibrated P(equivalent)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
    for name, p in (("raw", report.p), (f"calibrated ({report.calibration.method})", report.p_calibrated)):
        index = np.minimum((p * bins).astype(int), bins - 1)
        used = [b for b in range(bins) if (index == b).any()]
        ax.plot([p[index == b].mean() for b in used], [labels[index == b].mean() for b in used], "o-", label=name)
    ax.set(
        xlabel="predicted P(equivalent)",
        ylabel="human says equivalent (rate)",
        xlim=(0, 1),
        ylim=(0, 1),
        title=report.judge,
    )
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(
    reports: Sequence[JudgeReport],
    summary: dict[str, Any],
    ratings: np.ndarray,
    labels: np.ndarray,
    out_dir: Path,
    source: str,
) -> Path:
    """Write ``report.md`` and the plots into ``out_dir``; returns the report path."""
    lines = [
        "# Judge meta-evaluation",
        "",
        f"Items: {summary['n_items']} from `{source}`; rating values {summary['rating_values']}; "
        f"binarised positive rate {summary['positive_rate']:.3f}; prompt `{summary['prompt']}`.",
        "CIs: percentile bootstrap 95% over items. Correlations use P(equivalent); accuracy and "
        "Cohen's kappa use the verdict (P >= 0.5) against the binarised rating.",
        "",
        "## Agreement with the human rating",
        "",
        "| judge | " + " | ".join(_AGREEMENT) + " |",
        "|---" * (len(_AGREEMENT) + 1) + "|",
    ]
    for r in reports:
        lines.append(f"| {r.judge} | " + " | ".join(_ci(r.agreement[m]) for m in _AGREEMENT) + " |")
    lines += ["", "## Paired comparison (same items)", ""]
    if summary["pairs"]:
        lines += [
            "| A | B | r(A) | r(B) | r(A,B) | r(A) - r(B) [95% CI] | bootstrap p | Williams t (df) | p |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for pair in summary["pairs"]:
            lines.append(
                f"| {pair['judge_a']} | {pair['judge_b']} | {pair['r_a']:.3f} | {pair['r_b']:.3f} | "
                f"{pair['r_ab']:.3f} | {_ci(pair['diff'])} | {pair['bootstrap_p']:.4f} | "
                f"{pair['williams_t']:.3f} ({pair['williams_df']}) | {pair['williams_p']:.4f} |"
            )
    else:
        lines.append("One judge only: no paired comparison.")
    best = summary["best"]
    significant = ", ".join(best["significant_vs"]) or (
        "none (no difference's CI excludes 0)" if summary["pairs"] else "no other judge given"
    )
    lines += [
        "",
        "## Chosen judge",
        "",
        f"**{best['judge']}**: {best['criterion']}, r = {_ci(best['pearson'])}. "
        f"Significantly better (paired bootstrap CI of the difference excludes 0) than: {significant}.",
        "",
        "## Calibration (P(equivalent) -> P(human says equivalent))",
        "",
        "| judge | method | file | Brier raw | Brier cal. (in-sample / 5-fold CV) | ECE raw | "
        "ECE cal. (in-sample / CV) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        m = r.calibration.metrics
        lines.append(
            f"| {r.judge} | {r.calibration.method} | `{r.calibration_path.name}` | {m['brier_raw']:.4f} | "
            f"{m['brier_calibrated']:.4f} / {m['brier_calibrated_cv']:.4f} | {m['ece_raw']:.4f} | "
            f"{m['ece_calibrated']:.4f} / {m['ece_calibrated_cv']:.4f} |"
        )
    lines += [
        "",
        "## Verbosity and position",
        "",
        "Partial r: P(equivalent) with candidate length (words) given the human rating. "
        "Length-controlled: logit P with the length term (log relative length, fitted at fixed "
        "label) removed, as if each candidate were as long as its reference. Padding: content-free "
        "text appended to every candidate. Slot swap: candidate and reference exchanged.",
        "",
        "| judge | partial r (p) | raw mean P / verdict | length-controlled mean P / verdict | "
        "padding flips (->eq / ->not) | padding mean dP | swap flips (->eq / ->not) | swap mean dP |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        v, lc, pad, swap = r.verbosity, r.verbosity["length_controlled"], r.padding, r.swap
        lines.append(
            f"| {r.judge} | {v['partial_r_length_given_rating']:.3f} ({v['partial_p']:.3g}) | "
            f"{v['raw_mean_p']:.3f} / {v['raw_mean_verdict']:.3f} | "
            f"{lc['mean_p']:.3f} / {lc['mean_verdict']:.3f} | "
            f"{pad['flips_to_equivalent']} / {pad['flips_to_not_equivalent']} of {pad['n']} | "
            f"{pad['mean_delta_p']:+.3f} | {swap['flips_to_equivalent']} / {swap['flips_to_not_equivalent']} "
            f"of {swap['n']} | {swap['mean_delta_p']:+.3f} |"
        )
    lines += ["", "## Plots", ""]
    for r in reports:
        scatter, reliability = (
            out_dir / f"scatter_{slug(r.judge)}.png",
            out_dir / f"reliability_{slug(r.judge)}.png",
        )
        plot_scatter(r, ratings, scatter)
        plot_reliability(r, labels, reliability)
        lines += [f"![scatter {r.judge}]({scatter.name}) ![reliability {r.judge}]({reliability.name})", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
