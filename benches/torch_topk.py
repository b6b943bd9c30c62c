"""Times torch.topk on the grid of benches/topk.rs, both ways, for a side-by-side ratio.

    python3 benches/torch_topk.py [--quick] [--shapes B:V:K,...] [--dtype f32|bf16|f16] [--csv FILE]

- device time: `n` calls queued behind `torch.cuda._sleep` (so host launch gaps are hidden),
  timed with CUDA events; median of several samples, per call;
- wall time: a steady loop of calls, synchronised at the end, per call; the loop lasts about
  10 ms of device time (5 to 1000 calls), as in the Rust bench;
- inputs rotate over copies totalling at least 128 MiB, as in the Rust bench.
"""
import sys
import time

import torch


def median(v):
    v = sorted(v)
    return v[len(v) // 2]


def main():
    quick = "--quick" in sys.argv
    csv_path = sys.argv[sys.argv.index("--csv") + 1] if "--csv" in sys.argv else None
    dev = torch.device("cuda")
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(dev)}")
    batches, vocabs, ks, dtypes = (
        ([1, 8], [32 << 10], [1, 50, 256], [torch.float32])
        if quick
        else ([1, 8, 64, 256], [32 << 10, 128 << 10, 256 << 10, 1 << 20], [1, 50, 256, 1024, 4096],
              [torch.float32, torch.bfloat16])
    )
    wanted = None
    if "--shapes" in sys.argv:
        wanted = {tuple(int(x) for x in shape.split(":"))
                  for shape in sys.argv[sys.argv.index("--shapes") + 1].split(",")}
        batches = sorted({b for b, _, _ in wanted})
        vocabs = sorted({v for _, v, _ in wanted})
        ks = sorted({k for _, _, k in wanted})
        names = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}
        dtype = sys.argv[sys.argv.index("--dtype") + 1] if "--dtype" in sys.argv else "f32"
        dtypes = [names[dtype]]
    rows = ["dtype,batch,vocab,k,strategy,device_us,wall_us,host_us"]
    print(f"{'dtype':>5} {'b':>4} {'V':>8} {'k':>5} {'device µs':>10} {'wall µs':>10} {'host µs':>10}")
    for dtype in dtypes:
        for batch in batches:
            for vocab in vocabs:
                if wanted is not None and not any(b == batch and v == vocab for b, v, _ in wanted):
                    continue
                size = batch * vocab * (4 if dtype == torch.float32 else 2)
                copies = max(1, min(512, -(-(128 << 20) // size)))
                data = (torch.randn(copies * batch, vocab, device=dev) * 3.0).to(dtype)
                inputs = [data[c * batch:(c + 1) * batch] for c in range(copies)]
                for k in [k for k in ks if k <= vocab
                          and (wanted is None or (batch, vocab, k) in wanted)]:
                    heavy = size >= 64 << 20
                    calls, samples = (3, 3) if heavy else (10, 9)
                    i = [0]

                    def call():
                        x = inputs[i[0] % copies]
                        i[0] += 1
                        return torch.topk(x, k, dim=1)

                    for _ in range(3):
                        call()
                    torch.cuda.synchronize()
                    times = []
                    for _ in range(samples):
                        start = torch.cuda.Event(enable_timing=True)
                        end = torch.cuda.Event(enable_timing=True)
                        torch.cuda._sleep(2_000_000)
                        start.record()
                        for _ in range(calls):
                            call()
                        end.record()
                        torch.cuda.synchronize()
                        times.append(start.elapsed_time(end) * 1e3 / calls)
                    device_us = median(times)
                    loops = min(1000, max(5, -(-10_000 // max(1, int(device_us)))))
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    for _ in range(loops):
                        call()
                    host_us = (time.perf_counter() - t0) * 1e6 / loops
                    torch.cuda.synchronize()
                    wall_us = (time.perf_counter() - t0) * 1e6 / loops
                    dt = {torch.float32: "f32", torch.bfloat16: "bf16", torch.float16: "f16"}[dtype]
                    print(f"{dt:>5} {batch:>4} {vocab:>8} {k:>5} {device_us:>10.1f} {wall_us:>10.1f} {host_us:>10.1f}")
                    rows.append(f"{dt},{batch},{vocab},{k},torch,{device_us:.2f},{wall_us:.2f},{host_us:.2f}")
                del data, inputs
    if csv_path:
        open(csv_path, "w").write("\n".join(rows) + "\n")
        print("wrote", csv_path)


if __name__ == "__main__":
    main()
