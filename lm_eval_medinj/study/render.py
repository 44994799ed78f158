"""The report folder: ``report.md``, ``table1.csv``, ``report.json`` and PNG plots."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from lm_eval_medinj.files import write_text_atomic
from lm_eval_medinj.study.published import PUBLISHED_TABLE1

_SEVERAL_SEEDS_NOTE = (
    "a model with several seeds is not one fixed model, which McNemar's test needs; the seed-aware interval of "
    "the difference is the comparison there."
)
METRIC_NAMES = {
    "em": "EM (mean of formats)",
    "em_mcqu": "EM MCQU",
    "em_mcq": "EM MCQ",
    "hamming_mcq": "Hamming MCQ",
}


def _ci(cell: dict[str, Any], digits: int = 2) -> str:
    if cell["low"] is None or cell["high"] is None:
        return f"{cell['estimate']:.{digits}f} [n/a]"
    text = f"{cell['estimate']:.{digits}f} [{cell['low']:.{digits}f}, {cell['high']:.{digits}f}]"
    if "seeds" in cell:
        text += f" ({cell['seeds']} seeds, sd {cell['seed_sd']:.{digits}f})"
    return text


def _p(value: float) -> str:
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def table1_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per model, suite and metric (and judge metric): the CSV a user can diff.

    The clean subset (``--exclude``) adds ``<metric>_clean`` and ``<metric>_full_minus_clean`` rows."""
    rows = []
    for suite, content in report["suites"].items():
        tables = [("", content["table"])]
        clean = content.get("clean") or {}
        if "table" in clean:
            tables += [("_clean", clean["table"]), ("_full_minus_clean", clean["full_minus_clean"])]
        for suffix, table in tables:
            for model, metrics in table.items():
                for metric, cell in metrics.items():
                    row = {"model": model, "suite": suite, "mode": content["mode"], "metric": metric + suffix}
                    rows.append({**row, **cell})
    for model, metrics in (report.get("judge") or {}).get("table", {}).items():
        for metric, cell in metrics.items():
            if isinstance(cell, dict) and "estimate" in cell:
                rows.append({"model": model, "suite": "judge", "mode": "judge", "metric": metric, **cell})
    for model, cell in (report.get("human") or {}).get("table", {}).items():
        if cell is not None:
            rows.append({"model": model, "suite": "human", "mode": "human", "metric": "rating", **cell})
    return rows


def to_csv(report: dict[str, Any]) -> str:
    """``table1_rows`` as CSV; with several seeds per model, ``seeds`` and ``seed_sd`` columns too."""
    rows = table1_rows(report)
    columns = ["model", "suite", "mode", "metric", "estimate", "low", "high", "n"]
    if any("seeds" in row for row in rows):
        columns += ["seeds", "seed_sd"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: round(value, 6) if isinstance(value, float) else value for key, value in row.items()})
    return buffer.getvalue()


def _table1_md(report: dict[str, Any]) -> list[str]:
    lines = ["## Table 1", ""]
    confidence = int(100 * report["bootstrap"]["confidence"])
    lines.append(
        f"Scores in %, each with its {confidence}% bootstrap interval over questions "
        f"({report['bootstrap']['resamples']} resamples, seed {report['bootstrap']['seed']}; clusters resampled "
        "whole; EM is the unweighted mean of the MCQU and MCQ scores, as in the paper)."
    )
    if "seeds" in report["bootstrap"]:
        lines.append(
            "A model with several runs is one configuration trained with several seeds: its score is the mean over "
            "seeds (sd: the between-seed standard deviation), its interval a two-level bootstrap over seeds and "
            "questions."
        )
    for suite, content in report["suites"].items():
        metrics = [m for m in METRIC_NAMES if m in next(iter(content["table"].values()))]
        lines += ["", f"### {suite} ({content['mode']})", ""]
        lines.append("| model | " + " | ".join(METRIC_NAMES[m] for m in metrics) + " | n |")
        lines.append("|---|" + "---|" * (len(metrics) + 1))
        for model, cells in content["table"].items():
            n = cells["em"]["n"]
            lines.append(f"| {model} | " + " | ".join(_ci(cells[m]) for m in metrics) + f" | {n} |")
    judge = report.get("judge")
    if judge:
        lines += ["", "### Judge (open answers)", ""]
        lines.append(
            "| model | mean verdict | mean P(equivalent) | calibrated P | length-controlled P | answer words |"
        )
        lines.append("|---|---|---|---|---|---|")
        for model, cells in judge["table"].items():
            calibrated = _ci(cells["p_calibrated"], 3) if "p_calibrated" in cells else ""
            controlled = cells.get("length_controlled")
            lc = f"{controlled['mean_p']:.3f}" if isinstance(controlled, dict) and "mean_p" in controlled else ""
            lines.append(
                f"| {model} | {_ci(cells['verdict'], 3)} | {_ci(cells['p_equivalent'], 3)} | {calibrated} | {lc} "
                f"| {_ci(cells['words'], 1)} |"
            )
    lines += _human_md(report)
    return lines


def _human_md(report: dict[str, Any]) -> list[str]:
    human = report.get("human")
    if not human:
        return []
    lines = ["", "### Human expert review (rated answers)", ""]
    lines.append(
        f"Mean rating on the {human['scale']} scale of `{human['folder']}` (an item: the mean over its raters), "
        "with a bootstrap interval over each model's rated answers; not rated: no figure."
    )
    lines += ["", "| model | mean human rating | rated answers | raters per answer |", "|---|---|---|---|"]
    for model, cell in human["table"].items():
        if cell is None:
            lines.append(f"| {model} | not rated | 0 | |")
        else:
            lines.append(f"| {model} | {_ci(cell, 3)} | {cell['n']} | {cell['raters_per_item']:.1f} |")
    correlation = human.get("judge_correlation")
    if correlation:
        lines.append(
            f"\nJudge against humans on {correlation['n']} rated answers: Pearson r = "
            f"{_correlation(correlation['pearson'])}, Spearman rho = {_correlation(correlation['spearman'])} "
            "(95% bootstrap intervals over answers; n/a: undefined, as when every rating is equal)."
        )
    return lines


def _correlation(estimate: dict[str, float | None]) -> str:
    value, low, high = estimate["value"], estimate["low"], estimate["high"]
    if value is None:
        return "n/a"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]" if low is not None and high is not None else f"{value:.3f} [n/a]"


def _published_md(report: dict[str, Any]) -> list[str]:
    if not report["published"]:
        return []
    lines = ["", "## The paper's published Table 1 (published figures, not computed here)", ""]
    lines += ["| model | EM (%) | judge (MedGemma-27B) |", "|---|---|---|"]
    for label, (em, judge) in report["published"].items():
        lines.append(f"| {label} | {em:.2f} | {judge:.2f} |")
    known = ", ".join(PUBLISHED_TABLE1)
    lines.append(f"\nShown for models labelled like the paper's rows ({known}).")
    return lines


def _comparisons_md(report: dict[str, Any]) -> list[str]:
    lines = ["", "## Paired differences", ""]
    lines.append(
        f"EM difference a - b in points with its paired bootstrap interval; McNemar's exact test per format "
        f"(only a / only b correct), p-values Holm-corrected over all {report['tests_corrected']} tests; "
        "MDE: the difference McNemar's test detects with 80% power at this discordance (alpha 0.05)."
    )
    lines += ["", "| suite | a | b | EM a - b | format | only a | only b | p | p (Holm) | MDE |"]
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for comparison in report["comparisons"]:
        if not comparison["mcnemar"]:
            lines.append(
                f"| {comparison['suite']} | {comparison['a']} | {comparison['b']} | {_ci(comparison['difference'])} | "
                "all | n/a | n/a | n/a | n/a | n/a |"
            )
        for fmt, test in comparison["mcnemar"].items():
            mde = f"{test['mde_points']:.2f}" if test["mde_points"] is not None else "n/a"
            lines.append(
                f"| {comparison['suite']} | {comparison['a']} | {comparison['b']} | {_ci(comparison['difference'])} | "
                f"{fmt} | {test['only_a']} | {test['only_b']} | {_p(test['p_value'])} | {_p(test['p_holm'])} | {mde} |"
            )
    judge = report.get("judge")
    if judge:
        lines += [
            "",
            "| judge | a | b | verdict a - b | only a | only b | p | p (Holm) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for entry in judge["comparisons"]:
            test = entry["mcnemar"]
            if test is None:
                lines.append(f"| mean verdict | {entry['a']} | {entry['b']} | {_ci(entry['difference'], 3)} | n/a | "
                             "n/a | n/a | n/a |")  # fmt: skip
                continue
            lines.append(
                f"| mean verdict | {entry['a']} | {entry['b']} | {_ci(entry['difference'], 3)} | {test['only_a']} | "
                f"{test['only_b']} | {_p(test['p_value'])} | {_p(test['p_holm'])} |"
            )
    if any("mcnemar_note" in c for c in report["comparisons"] + (judge or {}).get("comparisons", [])):
        lines += ["", "McNemar n/a: " + _SEVERAL_SEEDS_NOTE]
    return lines


def _breakdown_md(report: dict[str, Any]) -> list[str]:
    lines = ["", "## Breakdown by provenance and origin", ""]
    lines.append(f"EM in % per group of questions; difference from the baseline ({report['baseline']}) in points.")
    for suite, content in report["suites"].items():
        for field_name, groups in content["breakdown"].items():
            lines += ["", f"### {suite} by {field_name}", "", "| " + field_name + " | model | EM | a - baseline | n |"]
            lines.append("|---|---|---|---|---|")
            for value, table in groups.items():
                for model, cells in table.items():
                    diff = _ci(cells["difference_from_baseline"]) if "difference_from_baseline" in cells else ""
                    lines.append(
                        f"| {value or '(none)'} | {model} | {_ci(cells['em'])} | {diff} | {cells['em']['n']} |"
                    )
    return lines


def _runs_md(report: dict[str, Any]) -> list[str]:
    lines = ["## Runs", "", "Each model's chat template (lm-eval's sha256 of its text; none: no template applied), "
             "model revision and the dataset revisions its questions were read from.", ""]  # fmt: skip
    lines += ["| model | folder | chat template | model revision | data revision |", "|---|---|---|---|---|"]
    for label, model in report["models"].items():
        for run in model["runs"]:
            template = run["chat_template_sha"] or ("applied, no hash" if run["chat_template_applied"] else "none")
            revision = run.get("model_sha") or run.get("model_revision") or "unknown"
            data = ", ".join(run.get("data_revisions") or []) or "unknown"
            lines.append(f"| {label} | `{run['folder']}` | `{template}` | {revision} | {data} |")
    return lines


def _clean_md(report: dict[str, Any]) -> list[str]:
    if "exclude" not in report:
        return []
    lines = ["", "## Clean subset (questions no training example overlaps)", ""]
    lines.append(
        f"Questions flagged by `{report['exclude']['file']}` are left out of the clean score. Full minus clean is "
        "paired: both are computed on the same resamples of all questions (the clean score of a resample is the "
        "mean over its clean questions). A positive gap that grows with the share of native training data is the "
        "signature of contamination."
    )
    for suite, content in report["suites"].items():
        clean = content["clean"]
        lines += ["", f"### {suite} ({content['mode']}): {clean['flagged']} flagged, {clean['clean']} clean", ""]
        if "table" not in clean:
            lines.append(clean["note"])
            continue
        lines += ["| model | EM full | EM clean | full - clean | n clean |", "|---|---|---|---|---|"]
        for model, cells in clean["table"].items():
            full = content["table"][model]["em"]
            diff = clean["full_minus_clean"][model]["em"]
            lines.append(f"| {model} | {_ci(full)} | {_ci(cells['em'])} | {_ci(diff)} | {cells['em']['n']} |")
    return lines


def to_markdown(report: dict[str, Any], plots: list[str]) -> str:
    lines = ["# MedInjection-FR study report", ""]
    folders = {label: ", ".join(f"`{run['folder']}`" for run in m["runs"]) for label, m in report["models"].items()}
    lines.append("Models: " + ", ".join(f"{label} ({runs})" for label, runs in folders.items()))
    lines.append(f"\nBaseline: {report['baseline']}.")
    if report["mismatches"]:
        lines += ["", "**Compared despite these mismatches (--allow-mismatch); only shared questions are scored:**", ""]
        lines += [f"- {problem}" for problem in report["mismatches"]]
    lines += [""] + _runs_md(report) + [""] + _table1_md(report) + _clean_md(report) + _published_md(report)
    lines += _comparisons_md(report) + _breakdown_md(report)
    if plots:
        lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in plots]
    return "\n".join(lines) + "\n"


def plot_forest(report: dict[str, Any], path: Path) -> None:
    """Each model's EM difference from the baseline with its interval, per suite."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [c for c in report["comparisons"] if c["b"] == report["baseline"]]
    confidence = round(100 * report["bootstrap"]["confidence"])
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(rows) + 1.5))
    for y, comparison in enumerate(rows):
        cell = comparison["difference"]
        ax.plot([cell["low"], cell["high"]], [y, y], color="C0")
        ax.plot(cell["estimate"], y, "o", color="C0")
    ax.axvline(0, color="k", lw=1, ls="--")
    ax.set_yticks(range(len(rows)), [f"{c['a']} ({c['suite']})" for c in rows])
    ax.set(
        xlabel=f"EM difference from {report['baseline']} (points)", title=f"Paired differences, {confidence}% bootstrap"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_judge_length(report: dict[str, Any], path: Path) -> None:
    """Mean judge verdict against mean answer length, one point per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for model, cells in report["judge"]["table"].items():
        verdict, words = cells["verdict"], cells["words"]
        ax.errorbar(
            words["estimate"],
            verdict["estimate"],
            yerr=[[verdict["estimate"] - verdict["low"]], [verdict["high"] - verdict["estimate"]]],
            xerr=[[words["estimate"] - words["low"]], [words["high"] - words["estimate"]]],
            fmt="o",
        )
        ax.annotate(model, (words["estimate"], verdict["estimate"]), textcoords="offset points", xytext=(4, 4))
    ax.set(xlabel="mean answer length (words)", ylabel="mean judge verdict", title="Judge score against verbosity")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(report: dict[str, Any], out: Path) -> list[Path]:
    """Write the report folder; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    plots = []
    if report["comparisons"]:
        plot_forest(report, out / "forest.png")
        plots.append("forest.png")
    if report.get("judge"):
        plot_judge_length(report, out / "judge_vs_length.png")
        plots.append("judge_vs_length.png")
    write_text_atomic(out / "report.json", json.dumps(report, indent=2, ensure_ascii=False))
    write_text_atomic(out / "table1.csv", to_csv(report))
    write_text_atomic(out / "report.md", to_markdown(report, plots))
    return [out / name for name in ("report.md", "table1.csv", "report.json", *plots)]
