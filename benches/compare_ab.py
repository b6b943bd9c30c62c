"""Side-by-side A/B of bench CSVs (benches/topk.rs or benches/sampling.rs --csv): the best device
time over the rounds of each side, per shape and strategy (top-k) or mode (sampling), and each
side's ratio to the first.

    python3 benches/compare_ab.py --side base base-1.csv base-2.csv --side new new-1.csv new-2.csv
"""
import csv
import sys


# The columns that name a case, in the order the table shows them (each bench has some of them),
# and each bench's host-side time: the top-k bench's wall time per call, the sampling bench's
# host time per call.
KEY_COLUMNS = ["dtype", "batch", "vocab", "k", "strategy", "mode"]
HOST_COLUMNS = ["wall_us", "host_us"]


def best(paths, columns):
    out = {}
    for path in paths:
        try:
            reader = csv.DictReader(open(path))
            rows = list(reader)
        except OSError:
            continue
        names = reader.fieldnames or []
        host = next((c for c in HOST_COLUMNS if c in names), None)
        if host is None:
            # Empty: a bench that died before its header.
            continue
        columns.extend(c for c in KEY_COLUMNS if c in names and c not in columns)
        for r in rows:
            key = tuple(int(r[c]) if r[c].isdigit() else r[c] for c in KEY_COLUMNS if c in names)
            dev, wall = float(r["device_us"]), float(r[host])
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
    columns = []
    results = [(name, best(paths, columns)) for name, paths in sides]
    keys = sorted(set().union(*(r for _, r in results)))
    head = " | ".join(f"{name} dev / host µs" for name, _ in results)
    ratios = " | ".join(f"{name} / {results[0][0]}" for name, _ in results[1:])
    print(f"| {' | '.join(columns)} | {head} | {ratios} |")
    print("|---" * (len(columns) + 2 * len(results) - 1) + "|")
    for key in keys:
        cells = []
        for _, r in results:
            x = r.get(key)
            cells.append(f"{x[0]:.1f} / {x[1]:.1f}" if x else "—")
        first = results[0][1].get(key)
        for _, r in results[1:]:
            x = r.get(key)
            cells.append(f"{x[0] / first[0]:.2f}" if x and first and first[0] > 0 else "—")
        print("| " + " | ".join(str(c) for c in key) + " | " + " | ".join(cells) + " |")


main()
