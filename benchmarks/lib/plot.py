"""Plots benchmarks/edge_vs_peers.sh results (JSON from lib/peers_report.py) as bars, one panel per metric."""
import json
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

results = json.load(open(sys.argv[1]))
metrics = results["metrics"]
colors = {"edge": "#2b7bba", "nginx": "#999999", "ats": "#d9822b", "varnish": "#7b4fa0", "static": "#55a868",
          "floor": "#cccccc"}
columns = 4
fig, axes = plt.subplots(math.ceil(len(metrics) / columns), columns, figsize=(4.2 * columns, 3.6 * math.ceil(
    len(metrics) / columns)), squeeze=False)
for ax in axes.flat[len(metrics):]:
    ax.set_visible(False)
for ax, metric in zip(axes.flat, metrics):
    servers = [s for s in results["servers"] if metric["key"] in results["median"].get(s, {})]
    values = [results["median"][s][metric["key"]] for s in servers]
    bars = ax.bar([results["names"][s] for s in servers], values, color=[colors[s] for s in servers])
    ax.set_title(f"{metric['title']} ({metric['better']} is better)", fontsize=9)
    ax.set_ylabel(metric["unit"])
    ax.tick_params(axis="x", labelsize=7, labelrotation=20)
    for bar, value in zip(bars, values):
        ax.annotate(f"{value:,.0f}".replace(",", " ") if value >= 1000 else f"{value:.3g}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                    fontsize=8)
fig.suptitle(f"edge vs its peers, median of {results['rounds']} rounds ({results['machine']}; {results['versions']})",
             fontsize=10)
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=90)
