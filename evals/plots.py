"""PNG plots of a run, with matplotlib: recall@k curves, recall@5 per question type
and the abstention ROC with each configuration's actual operating point."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.metrics import K_MAX, PIPELINE_RETRIEVERS, EvalRun, abstention_auc


def write_plots(run: EvalRun) -> list[str]:
    """recall@k curves, recall@5 per type and the abstention ROC, as PNG files in the run folder."""
    import matplotlib

    matplotlib.use("Agg")
    images = [plot_recall_curves(run.metrics, run.out_dir / "recall_at_k.png"),
              plot_type_bars(run.metrics, run.out_dir / "recall5_by_type.png")]
    roc = plot_roc(run.rows, run.metrics, run.out_dir / "abstention_roc.png")
    images += [roc] if roc else []
    return images


def plot_recall_curves(metrics: dict[str, Any], path: Path) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ks = list(range(1, K_MAX + 1))
    for config, m in metrics.items():
        curve = [v if v is not None else float("nan") for v in m["recall_curve"]]
        ax.plot(ks, curve, marker="o", markersize=3, label=config, linestyle="-" if config in PIPELINE_RETRIEVERS else "--")
    ax.set(xlabel="k", ylabel="mean recall@k", title="Retrieval recall@k", xticks=ks, ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def plot_type_bars(metrics: dict[str, Any], path: Path) -> str:
    import matplotlib.pyplot as plt

    types = list(dict.fromkeys(t for v in metrics.values() for t, s in v["by_type"].items() if s.get("recall@5") is not None))
    configs = list(metrics)
    width = 0.8 / max(len(configs), 1)
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(types) + 2), 5))
    for i, config in enumerate(configs):
        values = [metrics[config]["by_type"].get(t, {}).get("recall@5") or 0.0 for t in types]
        ax.bar([x + i * width - 0.4 + width / 2 for x in range(len(types))], values, width, label=config)
    counts = [max(metrics[c]["by_type"].get(t, {}).get("n_retrieval", 0) for c in configs) for t in types]
    ax.set_xticks(range(len(types)), [f"{t}\n(n={n})" for t, n in zip(types, counts)])
    ax.set(ylabel="recall@5", title="Recall@5 by question type", ylim=(0, 1.05))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=min(len(configs), 6), loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def plot_roc(rows: Sequence[dict[str, Any]], metrics: dict[str, Any], path: Path) -> str | None:
    """ROC of abstaining below an answerability threshold, with each run's actual operating point."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    curves = []
    for config in metrics:
        scored = [r for r in rows if r["config"] == config and r.get("answerability") is not None]
        scores, expected = [r["answerability"] for r in scored], [r["expects_abstention"] for r in scored]
        if any(expected) and not all(expected):
            curves.append((config, roc_curve(expected, [-s for s in scores]), abstention_auc(scores, expected),
                           metrics[config]["overall"]))
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for config, (fpr, tpr, _), area, overall in curves:
        line = ax.plot(fpr, tpr, label=f"{config} (AUC {area:.3f})")[0]
        if overall.get("false_abstention_rate") is not None and overall.get("abstention_recall") is not None:
            ax.plot([overall["false_abstention_rate"]], [overall["abstention_recall"]], "o", color=line.get_color())
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false-abstention rate (answerable refused)", ylabel="abstention recall (unanswerable refused)",
           title="Abstention ROC (dot = actual run)", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name
