"""Markdown tables for benchmarks/RESULTS.md from the JSON files the benchmarks write.

    python benchmarks/tables.py results-cpu.json [results-cpu-compiled.json ...]
    python benchmarks/tables.py --steps steps-cpu.json
    python benchmarks/tables.py --repeats results-cpu.json results-cpu-repeat2.json ...

Paths are taken relative to benchmarks/ when they do not exist as given.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(name: str) -> dict:
    path = Path(name)
    return json.loads((path if path.exists() else HERE / name).read_text())


def model_only_table(doc: dict) -> list[str]:
    out = [
        "| variant | batch | eager fp32 median | engine median | engine p90 | ratio of medians"
        " | paired ratio | engine img/s | eager img/s | max diff |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in doc["variants"].items():
        mo = row["model_only"]
        for b, r in mo["batches"].items():
            best = " (best)" if int(b) == mo["best_batch"] else ""
            out.append(
                f"| {name} | {b}{best} | {r['baseline']['median_ms']:.2f} ms"
                f" | {r['engine']['median_ms']:.2f} ms | {r['engine']['p90_ms']:.2f} ms"
                f" | {r['ratio']:.2f} | {r['paired_ratio']:.2f}"
                f" | {r['engine_images_per_s']:.1f} | {r['baseline_images_per_s']:.1f}"
                f" | {r['max_abs_diff']:.1e} |"
            )
    return out


def end_to_end_table(doc: dict) -> list[str]:
    out = [
        "| variant | in flight | e2e fps | model-only fps (batch 1, paired) | **paired ratio**"
        " | model-only fps run the same way (paired) | ratio, same parallelism"
        " | video decode* | model (per frame, its share of the cores) | decode+back-project"
        " | smooth |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in doc["variants"].items():
        e = row.get("end_to_end")
        if not e:
            continue
        s = e["stages_median_ms"]
        out.append(
            f"| {name} | {e.get('in_flight', 1)} | {e['fps']:.1f}"
            f" | {e['paired_model_only_fps']:.1f} | **{e['paired_ratio']:.2f}**"
            f" | {e.get('paired_in_flight_model_only_fps', e['paired_model_only_fps']):.1f}"
            f" | {e.get('paired_ratio_same_parallelism', e['paired_ratio']):.2f}"
            f" | {s.get('video decode (overlapped)', 0):.1f} ms | {s.get('model', 0):.1f} ms"
            f" | {s.get('decode', 0):.1f} ms | {s.get('smooth', 0):.1f} ms |"
        )
    return out


def steps_table(doc: dict) -> list[str]:
    names = list(doc["variants"])
    out = ["| step | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    steps = list(doc["variants"][names[0]])
    for step in steps:
        cells = []
        for n in names:
            r = doc["variants"][n][step]
            cells.append(f"{r['median_ms']:.2f} ms ({r['ratio']:.2f}x)")
        out.append(f"| {step} | " + " | ".join(cells) + " |")
    return out


def repeats_table(docs: list[dict]) -> list[str]:
    names = list(docs[0]["variants"])
    out = [
        "| variant | paired ratio, batch 1, per run | median |",
        "|---|---|---|",
    ]
    for n in names:
        ratios = [d["variants"][n]["model_only"]["batches"]["1"]["paired_ratio"] for d in docs]
        each = ", ".join(f"{r:.2f}" for r in ratios)
        out.append(f"| {n} | {each} | {statistics.median(ratios):.2f} |")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+")
    p.add_argument("--steps", action="store_true", help="the files are steps.py output")
    p.add_argument("--repeats", action="store_true", help="one table over several runs")
    args = p.parse_args()
    docs = [_load(f) for f in args.files]
    if args.repeats:
        print("\n".join(repeats_table(docs)))
        return 0
    for doc in docs:
        if args.steps:
            print("\n".join(steps_table(doc)))
        else:
            print("\n".join(model_only_table(doc)))
            e2e = end_to_end_table(doc)
            if len(e2e) > 2:
                print()
                print("\n".join(e2e))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
