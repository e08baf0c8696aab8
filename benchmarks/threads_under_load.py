"""Training speed at 1 and 2 torch threads, with and without other CPU-bound processes beside it.

Chooses the default thread count of the main job and bench (README: "a thread count that does not
collapse on a shared machine"). Each reading trains ResNet-18 width 16 for one epoch on a stratified
Fashion-MNIST subset in a fresh process (torch fixes its thread pool at start), while ``--load K``
busy-loop processes compete for the cores.

    .venv/bin/python benchmarks/threads_under_load.py --limit 2000 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

CHILD = """
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from rlselector import load_dataset
from rlselector.train import TrainConfig, train_model
data = load_dataset("fashion-mnist", limit=int(sys.argv[2]), seed=0)
started = time.process_time()
_, result = train_model(data, model="resnet18", width=16, config=TrainConfig(epochs=1, seed=0), progress=False, evaluate_test=False)
print(json.dumps({"images_per_s": result.images_per_second, "cpu_s": time.process_time() - started}))
"""

BUSY = "while True: pass"


def reading(threads: int, limit: int, load: int) -> dict:
    hogs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(load)]
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, str(threads), str(limit)], capture_output=True, text=True, check=True,
                             env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--loads", default="0,1,2", help="busy processes beside the training, comma-separated")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; load average at start {os.getloadavg()[0]:.2f}; "
          f"ResNet-18 w16, 1 epoch on {args.limit} Fashion-MNIST images\n")
    print("| busy processes beside | threads | images/s (each run) |")
    print("|---:|---:|---|")
    for load in (int(x) for x in args.loads.split(",")):
        for threads in (1, 2):
            rates = []
            for _ in range(args.repeats):
                rates.append(reading(threads, args.limit, load)["images_per_s"])
                time.sleep(1)
            print(f"| {load} | {threads} | " + ", ".join(f"{r:.0f}" for r in rates) + " |", flush=True)


if __name__ == "__main__":
    main()
