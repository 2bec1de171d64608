"""Run a patching sweep and path patching on ``zoo:attn-only-2l`` locally and with ``remote="local"``; print
the numbers as JSON. A separate process: nnsight's local backend pops every non-server module from
``sys.modules`` while it deserializes and re-imports some of them, which leaves ``typing`` patched twice by
``typing_extensions`` (a later first import of ``torch.distributed.tensor`` then fails in that process)."""

from __future__ import annotations

import contextlib
import io
import json


def main() -> None:
    from circuitry.interventions import activation_patch, path_patch
    from circuitry.models import load_model
    from circuitry.prompts import induction_pairs

    data = induction_pairs(6, block_len=6, vocab_size=50, bos=0, seed=2)
    kw = {"senders": ["embed", "L0H1"], "receivers": [("L1H6", "k"), ("L1H6", "q")], "progress": False}
    out = {}
    for name, remote in (("local", False), ("remote_local", "local")):
        model = load_model("zoo:attn-only-2l", remote=remote)
        out[name] = {"envoy": type(model._nn).__name__,
                     "patch": activation_patch(model, data, site="z", direction="noising", progress=False)
                     .per_prompt.numpy().tolist(),
                     "paths": path_patch(model, data, **kw).per_prompt.numpy().tolist()}
    model = load_model("zoo:attn-only-2l", remote="local")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), model._nn.trace(data.clean_ids(), remote="local", verbose=True):
        model._nn.unembed.output.save()
    out["verbose"] = buf.getvalue()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
