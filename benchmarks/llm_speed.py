"""Generation speed of a local language model on the profile prompts of MovieLens-100K.

    python benchmarks/llm_speed.py --entity item --batch-size 8 32 --threads 2 --prompts 32 \\
        --out results/llm_speed.json

Builds the first ``--prompts`` item or user prompts of ``darec profiles`` (the default templates,
training interactions only), generates their answers greedily with the prefill and the
repetition penalty that ``darec profiles --backend hf`` uses, once per batch size, and reports
new tokens per second (prompt processing included: it is part of the cost of a profile). Run it
on an idle machine: under load the figures fall several-fold.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2", help="a local model folder or 'smollm2' (default)")
    parser.add_argument("--entity", default="item", choices=("user", "item"))
    parser.add_argument("--prompts", type=int, default=32, help="how many prompts (default: 32)")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: PyTorch's)")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--out", default=None, help="append the measurements to this JSON list")
    args = parser.parse_args()

    from darec.llm import HFCausalLM
    from darec.profiles import ProfilePrompts, ProfileSource
    from darec.profiles.command import HF_REPETITION_PENALTY
    from darec.profiles.profile_job import PREFILL

    source = ProfileSource.load("ml100k")
    templates = ProfilePrompts()
    prompts = [templates.prompt(source, args.entity, k) for k in range(args.prompts)]
    rows = []
    for batch_size in args.batch_size:
        llm = HFCausalLM(args.model, max_batch_size=batch_size, num_threads=args.threads, progress=False)
        prompt_tokens = sum(len(llm.tokenizer(llm.render(p, response_prefix=PREFILL))["input_ids"]) for p in prompts)
        load = os.getloadavg()[0]
        start = time.perf_counter()
        llm.generate(prompts, max_new_tokens=args.max_new_tokens, response_prefix=PREFILL, repetition_penalty=HF_REPETITION_PENALTY)
        seconds = time.perf_counter() - start
        row = {
            "model": args.model, "entity": args.entity, "prompts": len(prompts), "batch_size": batch_size,
            "threads": args.threads, "prompt_tokens": prompt_tokens, "new_tokens": llm.stats["new_tokens"],
            "seconds": round(seconds, 2), "new_tokens_per_s": round(llm.stats["new_tokens"] / seconds, 1),
            "seconds_per_prompt": round(seconds / len(prompts), 3), "cpus": os.cpu_count(),
            "load_1min_before": load, "machine": platform.machine(),
        }  # fmt: skip
        print(json.dumps(row))
        rows.append(row)
    if args.out:
        path = Path(args.out)
        old = json.loads(path.read_text()) if path.exists() else []
        path.write_text(json.dumps(old + rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
