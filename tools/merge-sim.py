#!/usr/bin/env python3
"""What tantivy's log merge policy costs the live index, by simulation.

The indexer commits every few changes, each commit a small segment, and
tantivy's `LogMergePolicy` (0.27, `log_merge_policy.rs`) groups the segments
into tiers by log2 of their size (a size below `min_layer_size` counts as that
size) and merges a tier once it holds `min_num_segments`. This replays that
rule commit by commit, merges finishing at once, on top of a rebuilt index's
four large segments, and prints for each setting how many documents are
merged per document indexed (the merge thread's work) and how many segments
a search visits.

    tools/merge-sim.py                 # the settings compared in BENCHMARKS.md
    tools/merge-sim.py --docs 50       # 50 changes a commit (about 1,000/s)
"""
import argparse
import math


def tiers(sizes, min_layer, level_log_size):
    """tantivy's grouping: sizes in descending order, a new tier whenever a
    size's log falls more than `level_log_size` below the tier's first."""
    out = []
    current = math.inf
    for size in sorted(sizes, reverse=True):
        log = math.log2(max(min_layer, size))
        if log < current - level_log_size:
            current = log
            out.append([])
        out[-1].append(size)
    return out


def simulate(docs, min_layer, min_segments, commits, level_log_size=0.75):
    segments = [250_000] * 4
    merged = 0
    visited = []
    for _ in range(commits):
        segments.append(docs)
        while True:
            full = [t for t in tiers(segments, min_layer, level_log_size) if len(t) >= min_segments]
            if not full:
                break
            for tier in full:
                for size in tier:
                    segments.remove(size)
                segments.append(sum(tier))
                merged += sum(tier)
        visited.append(len(segments))
    return merged / (docs * commits), sum(visited) / len(visited), max(visited)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, nargs="*", default=[10, 50], help="documents per commit")
    p.add_argument("--commits", type=int, default=20_000)
    args = p.parse_args()
    print("docs/commit  min_layer  min_segments  merged per indexed  segments mean  max")
    for docs in args.docs:
        for min_layer in (10_000, 1_000, 100):
            for min_segments in (8, 4):
                ratio, mean, most = simulate(docs, min_layer, min_segments, args.commits)
                print(f"{docs:>11}  {min_layer:>9}  {min_segments:>12}  {ratio:>18.1f}  {mean:>13.1f}  {most:>3}")


if __name__ == "__main__":
    main()
