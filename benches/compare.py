"""Joins the CSVs of benches/topk.rs and benches/torch_topk.py into one Markdown table:
every strategy's device and wall time, the best, and torch's, with the ratio torch / best.

    python3 benches/compare.py ours.csv torch.csv [more ours.csv ...]
"""
import csv
import sys
from collections import defaultdict


def main():
    ours, theirs = defaultdict(dict), {}
    for path in sys.argv[1:]:
        for r in csv.DictReader(open(path)):
            key = (r["dtype"], int(r["batch"]), int(r["vocab"]), int(r["k"]))
            if r["strategy"] == "torch":
                theirs[key] = r
            else:
                ours[key][r["strategy"]] = r
    names = sorted({s for v in ours.values() for s in v})
    head = ["dtype", "b", "V", "k"] + [f"{s} dev/wall µs" for s in names]
    head += ["best dev µs", "% copy", "torch dev/wall µs", "torch/best dev", "torch/best wall"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for key in sorted(ours, key=lambda k: (k[0] != "f32", k[1], k[2], k[3])):
        row = ours[key]
        cells = [key[0], str(key[1]), str(key[2]), str(key[3])]
        for s in names:
            r = row.get(s)
            cells.append(f"{float(r['device_us']):.1f} / {float(r['wall_us']):.1f}" if r else "")
        best = min(row.values(), key=lambda r: float(r["device_us"]))
        best_wall = min(float(r["wall_us"]) for r in row.values())
        cells += [f"{float(best['device_us']):.1f} ({best['strategy']})", f"{float(best['pct_copy']):.0f}"]
        t = theirs.get(key)
        if t:
            cells.append(f"{float(t['device_us']):.1f} / {float(t['wall_us']):.1f}")
            cells.append(f"{float(t['device_us']) / max(float(best['device_us']), 1e-3):.2f}×")
            cells.append(f"{float(t['wall_us']) / best_wall:.2f}×")
        else:
            cells += ["", "", ""]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
