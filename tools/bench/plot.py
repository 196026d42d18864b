#!/usr/bin/env python3
"""Latency against recall@10 for every engine and setting of a harness results file, in the
style of big-ann-benchmarks' plots (one colour and marker per engine, each engine's Pareto
frontier drawn as a line, log latency axis).

    tools/bench/plot.py results.json out.png
"""
import json, sys

STYLE = {"sparsedb": ("tab:blue", "o"), "pisa": ("tab:orange", "s"), "seismic": ("tab:green", "^")}


def frontier(points):
    """Points not dominated in (higher recall, lower latency), by recall."""
    best = []
    for r, l in sorted(points, key=lambda p: (-p[0], p[1])):
        if not best or l < best[-1][1]:
            best.append((r, l))
    return sorted(best)


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in results["rows"] if r.get("recall_at_10") is not None and r.get("mean_ms")]
    meta = results.get("meta", {})
    fig, axes = plt.subplots(1, 3, figsize=(20, 6.5))
    panels = ((axes[0], "mean_ms", "mean wall-clock"), (axes[1], "p99_ms", "p99 wall-clock"), (axes[2], "cpu_mean_ms", "mean CPU-time"))
    for ax, key, name in panels:
        rows_k = [r for r in rows if r.get(key) is not None]
        for engine in sorted({r["engine"] for r in rows_k}):
            colour, marker = STYLE.get(engine, ("tab:gray", "x"))
            pts = [r for r in rows_k if r["engine"] == engine and r.get("threads", 1) == 1 and not r.get("cold")]
            if not pts:
                continue
            ax.scatter([r["recall_at_10"] for r in pts], [r[key] for r in pts], c=colour, marker=marker, s=36, label=engine, zorder=3,
                       edgecolors=["black" if r.get("exact") else colour for r in pts])
            fr = frontier([(r["recall_at_10"], r[key]) for r in pts])
            ax.plot([p[0] for p in fr], [p[1] for p in fr], c=colour, lw=1.2, alpha=0.7, zorder=2)
            for r in pts:
                ax.annotate(r["setting"], (r["recall_at_10"], r[key]), fontsize=6, xytext=(3, 2), textcoords="offset points", color=colour)
        ax.set_yscale("log")
        ax.set_xlabel("recall@10 (exact float top-10, ties counted)")
        ax.set_ylabel("%s latency per query (ms, one core)" % name)
        ax.grid(True, which="both", alpha=0.3)
        lo = min([r["recall_at_10"] for r in rows] + [0.9])
        ax.set_xlim(max(0.0, lo - 0.01), 1.005)
        ax.legend(loc="upper left")
    title = "%s: %s documents, %s queries, k=%s" % (meta.get("corpus", ""), meta.get("documents", "?"), meta.get("queries", "?"), meta.get("k", 10))
    load = meta.get("load_average_1m")
    if load:
        title += " (load average %s during the run; black edge = exact mode)" % load
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        plot(json.load(f), sys.argv[2])
