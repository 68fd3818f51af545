"""Plots benchmarks/edge_vs_nginx results (JSON from the script) as grouped bars, one panel per metric."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

results = json.load(open(sys.argv[1]))
metrics = results["metrics"]
fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 4))
for ax, metric in zip(axes, metrics):
    servers = ["edge", "nginx"]
    values = [results["median"][s][metric["key"]] for s in servers]
    bars = ax.bar(servers, values, color=["#2b7bba", "#999999"])
    ax.set_title(metric["title"], fontsize=10)
    ax.set_ylabel(metric["unit"])
    for bar, value in zip(bars, values):
        ax.annotate(f"{value:.3g}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                    fontsize=9)
fig.suptitle(f"edge vs nginx proxy_cache, median of {results['rounds']} rounds ({results['machine']})", fontsize=10)
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=100)
