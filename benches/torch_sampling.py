#!/usr/bin/env python3
"""torch's usual sampling composition on the grid of benches/sampling.rs, for a side-by-side.

    python3 benches/torch_sampling.py [--quick] [--csv FILE]

Per mode: softmax(logits / T), then top-k (torch.topk) and/or top-p (sort, cumsum, mask), renormalise,
torch.multinomial. Device time: CUDA events around 50 calls, divided by 50 (median of 5); host: wall
time for the call to return, median; call + sync: wall time with torch.cuda.synchronize, median.
"""
import argparse
import statistics
import time

import torch


def sample(logits, top_k=None, top_p=1.0, min_p=0.0, greedy=False, temperature=1.0):
    if greedy:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_k is not None:
        values, indices = torch.topk(probs, top_k, dim=-1)
        if top_p < 1.0:
            before = values.cumsum(-1) - values
            values = values.masked_fill(before >= top_p * values.sum(-1, keepdim=True), 0.0)
        choice = torch.multinomial(values, 1)
        return indices.gather(-1, choice).squeeze(-1)
    if top_p < 1.0:
        values, indices = torch.sort(probs, dim=-1, descending=True)
        before = values.cumsum(-1) - values
        values = values.masked_fill(before >= top_p, 0.0)
        choice = torch.multinomial(values, 1)
        return indices.gather(-1, choice).squeeze(-1)
    if min_p > 0.0:
        probs = probs.masked_fill(probs < min_p * probs.amax(-1, keepdim=True), 0.0)
    return torch.multinomial(probs, 1).squeeze(-1)


MODES = [
    ("plain", {}),
    ("greedy", {"greedy": True}),
    ("top-k 50", {"top_k": 50}),
    ("top-p 0.9", {"top_p": 0.9}),
    ("top-k 50 + top-p 0.9", {"top_k": 50, "top_p": 0.9}),
    ("min-p 0.1", {"min_p": 0.1}),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--csv")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    batches, vocabs = ([1, 4], [1000, 4096]) if args.quick else ([1, 64, 256], [32768, 131072])
    rows = []
    print("| b | V | mode | device µs | host µs | call + sync µs |\n|---|---|---|---|---|---|")
    for b in batches:
        for v in vocabs:
            torch.manual_seed(0)
            x = torch.randn(b, v, device=device) * 3.0
            for name, kw in MODES:
                for _ in range(10):
                    sample(x, **kw)
                sync = torch.cuda.synchronize if cuda else (lambda: None)
                sync()
                device_us = float("nan")
                if cuda:
                    samples = []
                    for _ in range(5):
                        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                        start.record()
                        for _ in range(50):
                            sample(x, **kw)
                        end.record()
                        sync()
                        samples.append(start.elapsed_time(end) * 1e3 / 50)
                    device_us = statistics.median(samples)
                host, trip = [], []
                for _ in range(25):
                    t0 = time.perf_counter()
                    sample(x, **kw)
                    host.append((time.perf_counter() - t0) * 1e6)
                    sync()
                    trip.append((time.perf_counter() - t0) * 1e6)
                row = (b, v, name, device_us, statistics.median(host), statistics.median(trip))
                rows.append(row)
                print("| %d | %d | %s | %.1f | %.1f | %.1f |" % row)
    if args.csv:
        with open(args.csv, "w") as f:
            f.write("batch,vocab,mode,device_us,host_us,round_trip_us\n")
            for row in rows:
                f.write("%d,%d,%s,%.2f,%.2f,%.2f\n" % row)


if __name__ == "__main__":
    main()
