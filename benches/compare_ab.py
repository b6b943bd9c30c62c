"""Side-by-side A/B of bench CSVs (benches/topk.rs --csv): the best device time over the rounds
of each side, per shape and strategy, and each side's ratio to the first.

    python3 benches/compare_ab.py --side base base-1.csv base-2.csv --side new new-1.csv new-2.csv
"""
import csv
import sys


def best(paths):
    out = {}
    for path in paths:
        try:
            rows = list(csv.DictReader(open(path)))
        except OSError:
            continue
        for r in rows:
            key = (r["dtype"], int(r["batch"]), int(r["vocab"]), int(r["k"]), r["strategy"])
            dev, wall = float(r["device_us"]), float(r["wall_us"])
            if key not in out or dev < out[key][0]:
                out[key] = (dev, wall)
    return out


def main():
    sides = []
    for arg in sys.argv[1:]:
        if arg == "--side":
            sides.append([None, []])
        elif sides[-1][0] is None:
            sides[-1][0] = arg
        else:
            sides[-1][1].append(arg)
    results = [(name, best(paths)) for name, paths in sides]
    keys = sorted(set().union(*(r for _, r in results)))
    head = " | ".join(f"{name} dev / wall µs" for name, _ in results)
    ratios = " | ".join(f"{name} / {results[0][0]}" for name, _ in results[1:])
    print(f"| dtype | b | V | k | strategy | {head} | {ratios} |")
    print("|---" * (5 + 2 * len(results) - 1) + "|")
    for key in keys:
        cells = []
        for _, r in results:
            x = r.get(key)
            cells.append(f"{x[0]:.1f} / {x[1]:.1f}" if x else "—")
        first = results[0][1].get(key)
        for _, r in results[1:]:
            x = r.get(key)
            cells.append(f"{x[0] / first[0]:.2f}" if x and first and first[0] > 0 else "—")
        print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {key[4]} | " + " | ".join(cells) + " |")


main()
