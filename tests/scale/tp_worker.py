"""Run under ``torchrun --nproc-per-node N``: an activation-patching sweep and a path-patching run on a model
directory, sharded ``tensor_parallel=N`` (or unsharded with ``--single``); each rank writes its numbers.

    torchrun --nproc-per-node 2 tests/scale/tp_worker.py MODEL_DIR OUT_DIR
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--single", action="store_true", help="no tensor parallelism (the reference)")
    args = ap.parse_args()
    import torch

    from circuitry.interventions import activation_patch, path_patch
    from circuitry.models import load_model
    from circuitry.prompts import induction_pairs

    torch.set_num_threads(1)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    model = load_model(args.model_dir, tensor_parallel=None if args.single else world, bos="none")
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    sharded = [n for n, p in model.module.named_parameters() if type(p.data).__name__ == "DTensor"]
    data = induction_pairs(4, block_len=5, vocab_size=model.info.d_vocab, bos=0, seed=1)
    patch = activation_patch(model, data, site="z", direction="noising", progress=False)
    paths = path_patch(model, data, progress=False)
    out = {"rank": rank, "world": world, "sharded_params": len(sharded),
           "weights_sha256": model.weights_sha256,
           "patch": patch.per_prompt.numpy().tolist(), "patch_clean": patch.clean,
           "paths": [list(p) for p in paths.paths], "path_values": paths.per_prompt.numpy().tolist()}
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, f"rank{rank}{'-single' if args.single else ''}.json"), "w") as fh:
        json.dump(out, fh)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
