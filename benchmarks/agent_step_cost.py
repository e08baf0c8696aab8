"""CPU time of one RL-Selector agent step (``SelectorAgent.step``) by reference size and updates per step.

One minibatch of 128 states of 130 dimensions (ResNet-18 width 16's 128 features plus the kept-set
context), one torch thread, the mean of 20 steps after 3 of warm-up.

    .venv/bin/python benchmarks/agent_step_cost.py
"""

from __future__ import annotations

import time

import torch

from rlselector.agent import AgentConfig, SelectorAgent


def main() -> None:
    torch.set_num_threads(1)
    print("| reference states | updates per step | CPU ms per step |")
    print("|---:|---:|---:|")
    for reference_size in (4096, 1024):
        for updates in (4, 2):
            agent = SelectorAgent(130, 0.5, AgentConfig(updates_per_step=updates), seed=0, total_steps=100)
            generator = torch.Generator().manual_seed(0)
            states, cover_hat = torch.randn(128, 130, generator=generator), torch.rand(128, generator=generator) - 0.5
            reference = torch.randn(reference_size, 130, generator=generator)
            for _ in range(3):
                agent.step(states, cover_hat, reference_states=reference)
            start = time.process_time()
            for _ in range(20):
                agent.step(states, cover_hat, reference_states=reference)
            print(f"| {reference_size:,} | {updates} | {(time.process_time() - start) / 20 * 1000:.1f} |")


if __name__ == "__main__":
    main()
