"""Peak memory of EAP-IG on a Llama-3-shaped random model against weights + 2 x one forward pass's activations
(issue 27; the memory model in docs/scale.md).

    MALLOC_MMAP_THRESHOLD_=131072 python benchmarks/memory_llama.py 1b 4 16 128
        shape (50m, 50m-m2, 300m, 1b), prompts, tokens per prompt, gradient budget in MB (default 512)

Prints one JSON line: the weights, one forward pass's activations ``A`` (what autograd saves in a plain
Hugging Face forward with a gradient on the input embedding, plus its logits; storages counted once,
parameters excluded), the rise of the process's peak resident set over the loaded model during
``score_edges(..., method="eap-ig", steps=5)`` (after a warm-up call that imports everything; the peak is
reset through ``/proc/self/clear_refs``), and its ratio to ``2 A``. Run one shape per process, with
``MALLOC_MMAP_THRESHOLD_`` set so that freed tensors leave the resident set. fp32, one thread.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHAPES = {
    "50m": dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=4, num_attention_heads=8,
                num_key_value_heads=2, vocab_size=32000),
    "50m-m2": dict(hidden_size=512, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=8,
                   num_key_value_heads=2, vocab_size=32000),
    "300m": dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=8, num_attention_heads=16,
                 num_key_value_heads=4, vocab_size=128256),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256),  # Llama-3.2 1B
}


def _status() -> dict[str, int]:
    with open("/proc/self/status") as fh:
        return {line.split(":")[0]: int(line.split()[1]) * 1024 for line in fh if line.startswith(("VmRSS", "VmHWM"))}


def forward_activations(hf, ids: torch.Tensor) -> int:
    """Bytes autograd saves in one plain forward pass (gradient on the input embedding), plus its logits."""
    params = {q.untyped_storage().data_ptr() for q in hf.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            saved[ptr] = t.untyped_storage().nbytes()
        return t

    emb = hf.model.embed_tokens(ids).detach().requires_grad_(True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits = hf(inputs_embeds=emb).logits
    return sum(saved.values()) + logits.numel() * logits.element_size()


def main(argv: list[str]) -> dict:
    from transformers import LlamaConfig, LlamaForCausalLM

    import circuitry.discovery.attribution as attribution
    from circuitry.discovery import edge_set, score_edges
    from circuitry.models import load_model
    from circuitry.prompts import induction_pairs

    shape, n, p = argv[0], int(argv[1]), int(argv[2])
    budget = int(argv[3]) if len(argv) > 3 else 512
    attribution.GRADIENT_BYTES = budget * 2**20
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = LlamaConfig(**SHAPES[shape], tie_word_embeddings=True, max_position_embeddings=256, bos_token_id=0,
                      eos_token_id=0, rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
                                                       "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                       "original_max_position_embeddings": 128})
    hf = LlamaForCausalLM(cfg).eval()
    for prm in hf.parameters():
        prm.requires_grad_(False)
    weights = sum(t.numel() * t.element_size() for t in {id(t): t for t in hf.parameters()}.values())
    model = load_model(hf)
    data = induction_pairs(n, block_len=p // 2, vocab_size=1000, bos=None, seed=0)
    A = forward_activations(hf, data.clean_ids())
    score_edges(model, induction_pairs(2, block_len=4, vocab_size=1000, bos=None, seed=1), method="eap-ig", steps=2,
                progress=False)  # imports everything the call needs (code is resident memory too)
    gc.collect()
    base = _status()["VmRSS"]
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset the peak resident set
    t = time.process_time()
    score_edges(model, data, method="eap-ig", steps=5, progress=False)
    cpu = time.process_time() - t
    rise = _status()["VmHWM"] - base
    es = edge_set(model)
    return {"shape": shape, "prompts": n, "tokens": p, "gradient_budget_mb": budget, "weights_bytes": weights,
            "forward_activation_bytes": A, "peak_rise_bytes": rise, "ratio_to_2A": round(rise / (2 * A), 2),
            "edges": len(es), "senders": len(es.senders), "receivers": len(es.receivers),
            "cpu_seconds": round(cpu, 1)}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
