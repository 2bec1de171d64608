"""Read and write canonical sites of a model through the adapter (docs/adapter.md)."""

import torch

from circuitry.models import Edit, load_model

model = load_model("zoo:attn-only-2l")
print(model.model_id, model.info.family, f"{model.info.n_layers} layers x {model.info.n_heads} heads")

ids = torch.tensor([[0, 5, 9, 3, 7, 5, 9, 3, 7]])  # BOS + a block of 4 tokens, repeated
out = model.run(ids, reads=[("pattern", 0), ("z", 1), ("head_out", 1)])
print("pattern of layer 0:", tuple(out[("pattern", 0)].shape), " z of layer 1:", tuple(out[("z", 1)].shape))

# zero one head everywhere and see the logits move; the model itself is never modified
mask = model.mask("z", batch=1, seq=ids.shape[1], heads=[0])
ablated = model.run(ids, edits=[Edit("z", 1, 0.0, mask)]).logits
print("max logit change from zeroing L1H0:", float((ablated - out.logits).abs().max()))
assert torch.equal(model.logits(ids), out.logits)

W = model.weights(fold_ln=True)
print("W_Q", tuple(W.W_Q.shape), "W_O", tuple(W.W_O.shape), "W_E", tuple(W.W_E.shape))
