"""Registers, stack frame and spills of every kernel in a CubeCL compilation log.

    python3 benches/kernel_regs.py CUBECL_LOG NVCC

CUBECL_LOG is the file `CUBECL_DEBUG_LOG=<file>` makes a CUDA run write: each kernel's name,
id (with its comptime parameters) and source. Each source is compiled again with
`NVCC -arch=sm_90a -cubin -Xptxas -v`; one line per kernel: name, parameters, ptxas's summary.
"""
import re
import subprocess
import sys


def kernels(log):
    """(name, parameters, source) of each kernel of the log."""
    for block in log.split("[START_KERNEL_COMPILATION]")[1:]:
        name = re.search(r"name: ([^\n<]+)", block)
        info = re.search(r"info: \w+ \{(.*?)\n    \},", block, re.S)
        source = re.search(r"source:\n```\w*\n(.*)\n```\n\[END_KERNEL_COMPILATION\]", block, re.S)
        if source:
            # The comptime parameters come first; the tensors' compilation arguments after them.
            params = " ".join(info.group(1).split()).split(", input:")[0] if info else ""
            yield (name.group(1).strip() if name else "?", params, source.group(1))


def main():
    log = open(sys.argv[1], errors="replace").read()
    nvcc = sys.argv[2]
    for n, (name, params, source) in enumerate(kernels(log)):
        path = f"/tmp/kernel-{n}.cu"
        with open(path, "w") as f:
            f.write(source)
        result = subprocess.run(
            [nvcc, "-arch=sm_90a", "-cubin", "-o", "/dev/null", "-Xptxas", "-v", path],
            capture_output=True,
            text=True,
        )
        summary = " ".join(
            line.split(":", 1)[-1].strip()
            for line in result.stderr.splitlines()
            if "registers" in line or "spill" in line or "error" in line
        )
        print(f"{n} | {name} | {params} | {summary or result.stderr.strip()[:200]}")


if __name__ == "__main__":
    main()
