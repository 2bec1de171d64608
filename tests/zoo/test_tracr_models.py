"""The tracr-compiled zoo models: forward pinned to tracr's own outputs, ground truth checked against the
weights, trained zoo models unchanged by the new architecture options, and (with tracr) a rebuild."""

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from circuitry.discovery import edge_set
from circuitry.models import load_model
from circuitry.zoo import CHECKPOINT_DIR, list_zoo, load_zoo
from circuitry.zoo.arch import ZooConfig
from circuitry.zoo.ground_truth import live_edges
from circuitry.zoo.tracr_models import (
    ACDC_CIRCUITS,
    TRACR_MODELS,
    decode,
    encode,
    ground_truth,
    task_pairs,
)

#: tracr-sort's final residual differs from tracr's by 1.2e-10 at most (one matmul summed in another
#: order by XLA than by torch); the six others are equal bit for bit.
RESID_TOL = {"tracr-sort": 1e-9}


@pytest.fixture(scope="module", params=TRACR_MODELS)
def tracr(request):
    return load_model(f"zoo:{request.param}")


def test_all_tracr_models_are_listed():
    assert set(TRACR_MODELS) <= set(list_zoo())


def test_forward_equals_tracr_on_reference_inputs(tracr):
    """Through the adapter: the final residual stream equals tracr's transformer output, and the decoded
    output (argmax, or the numerical value itself) equals tracr's, on every shipped reference input."""
    man = tracr.manifest
    ref = man.reference
    last = tracr.info.n_layers - 1
    worst = 0.0
    for ids, resid, decoded, output in zip(ref.input_ids, ref.final_residual, ref.decoded, ref.output):
        out = tracr.run(torch.tensor([ids]), reads=[("resid_post", last)])
        worst = max(worst, float((out[("resid_post", last)][0] - torch.tensor(resid)).abs().max()))
        if man.output_kind == "numerical":
            assert torch.equal(out.logits[0, :, 0], torch.tensor(output, dtype=torch.float32))
            assert decode(man, out.logits)[0][1:] == [float(torch.tensor(v, dtype=torch.float32)) for v in decoded[1:]]
        else:
            assert out.logits[0].argmax(-1).tolist() == output
            assert decode(man, out.logits)[0] == decoded
    print(f"{man.name}: max |resid - tracr| = {worst:.3g} over {len(ref.inputs)} inputs")
    assert worst <= RESID_TOL.get(man.name, 0.0)


def test_encode_and_decode_reverse():
    m = load_model("zoo:tracr-reverse")
    ids = encode(m.manifest, [1, 2, 3, 3])
    assert ids == [3, 0, 1, 2, 2]
    assert decode(m.manifest, m.logits(torch.tensor([ids])))[0] == ["BOS", 3, 3, 2, 1]
    with pytest.raises(Exception, match="vocabulary"):
        encode(m.manifest, [1, 4])


def _weight_edges(m):
    """Edges whose receiver's weights read a residual direction the sender's weights write (non-zero)."""
    mod, H, dh = m.module, m.info.n_heads, m.info.d_head
    nz = lambda t: set(torch.nonzero(t).flatten().tolist())
    writes = {"embed": nz(mod.embed.weight.abs().sum(0) + mod.pos_embed.weight.abs().sum(0))}
    reads = {("logits", "out"): nz(mod.unembed.weight.abs().sum(0))}
    for layer, b in enumerate(mod.blocks):
        for h in range(H):
            sl = slice(h * dh, (h + 1) * dh)
            writes[f"L{layer}H{h}"] = nz(b.attn.o_proj.weight[:, sl].abs().sum(1))
            for kind in "qkv":
                reads[(f"L{layer}H{h}", kind)] = nz(getattr(b.attn, f"{kind}_proj").weight[sl].abs().sum(0))
        writes[f"MLP{layer}"] = nz(b.mlp.fc_out.weight.abs().sum(1))
        reads[(f"MLP{layer}", "out")] = nz(b.mlp.fc_in.weight.abs().sum(0))
    es = edge_set(m)
    return [n for n, (s, r, k) in zip(es.names, es.triples) if writes[s] & reads[(r, k)]]


def test_ground_truth_is_what_the_weights_read_and_write(tracr):
    """The 'reads' truth (from tracr's labelled subspaces) is exactly the set of edges whose weights share a
    residual direction; 'counterfactual' is a subset of it, closed under reaching the logits."""
    name = tracr.manifest.name
    reads = ground_truth(name, kind="reads")
    assert sorted(_weight_edges(tracr)) == sorted(reads)
    cf = ground_truth(name, kind="counterfactual")
    assert cf and set(cf) <= set(reads) and live_edges(reads, cf) == cf
    assert any(e.endswith("->logits") for e in cf)


def test_acdc_circuits_lie_inside_the_reads_truth():
    """ACDC's zero-ablation circuits: frac-prevs equals the reads truth; reverse misses only the three
    attention-to-BOS edges (queries and keys reading 'one' / BOS)."""
    assert sorted(ACDC_CIRCUITS["tracr-frac-prevs"]) == sorted(ground_truth("tracr-frac-prevs", kind="reads"))
    extra = set(ground_truth("tracr-reverse", kind="reads")) - set(ACDC_CIRCUITS["tracr-reverse"])
    assert set(ACDC_CIRCUITS["tracr-reverse"]) <= set(ground_truth("tracr-reverse", kind="reads"))
    assert extra == {"embed->L0H0<q>", "embed->L0H0<k>", "embed->L3H0<q>"}


@pytest.mark.parametrize("name", ["tracr-reverse", "tracr-frac-prevs", "tracr-hist", "tracr-sort"])
def test_exact_patching_finds_the_counterfactual_truth(name):
    """Exact edge patching: every edge outside the counterfactual truth has effect 0 (to float rounding),
    every edge inside it a non-zero one, so ROC AUC = 1."""
    from circuitry.discovery.search import roc_auc, score_edges
    from circuitry.zoo.tracr_models import numerical_output

    m = load_model(f"zoo:{name}")
    data = task_pairs(m.manifest, n=8, seed=1)
    metric = "logit_diff" if m.manifest.output_kind == "categorical" else numerical_output
    res = score_edges(m, data, method="exact", metric=metric, progress=False)
    truth = edge_set(m).mask(ground_truth(name))
    score = torch.tensor(res.score).abs()
    print(name, "largest outside", float(score[~torch.tensor(truth)].max()), "smallest inside",
          float(score[torch.tensor(truth)].min()))
    assert float(score[~torch.tensor(truth)].max()) < 1e-4
    assert float(score[torch.tensor(truth)].min()) > 1e-2
    assert roc_auc(res, truth) == 1.0


def _old_forward(model, ids):
    """The zoo forward pass as it was before the tracr options (causal mask, GELU, d_vocab logits)."""
    cfg = model.cfg
    p = ids.shape[-1]
    x = model.embed(ids)
    pos = model.pos_embed(torch.arange(p))
    for blk in model.blocks:
        a = blk.attn
        h = blk.ln1(x)
        qk = h + pos
        b = h.shape[0]
        q = a.q_proj(qk).view(b, p, cfg.n_heads, cfg.d_head).transpose(1, 2)
        k = a.k_proj(qk).view(b, p, cfg.n_heads, cfg.d_head).transpose(1, 2)
        v = a.v_proj(h).view(b, p, cfg.n_heads, cfg.d_head).transpose(1, 2)
        s = q @ k.transpose(-1, -2) / math.sqrt(cfg.d_head)
        s = s.masked_fill(torch.ones(p, p, dtype=torch.bool).triu(1), float("-inf"))
        x = x + a.o_proj((s.softmax(-1) @ v).transpose(1, 2).reshape(b, p, -1))
        if blk.mlp is not None:
            x = x + blk.mlp.fc_out(F.gelu(blk.mlp.fc_in(blk.ln2(x))))
    return model.unembed(model.ln_final(x))


@pytest.mark.parametrize("name", ["attn-only-1l", "attn-only-2l"])
def test_trained_zoo_models_are_bit_identical(name):
    model, man = load_zoo(name)
    cfg = ZooConfig.model_validate(man.config)
    assert (cfg.activation, cfg.causal, cfg.d_vocab_out) == ("gelu", True, None)
    ids = torch.randint(1, 65, (3, 40), generator=torch.Generator().manual_seed(0))
    ids[:, 0] = 0
    with torch.no_grad():
        assert torch.equal(model(ids), _old_forward(model, ids))


def _tracr_python() -> str | None:
    if importlib.util.find_spec("tracr") is not None:
        return sys.executable
    return os.environ.get("CIRCUITRY_TRACR_PYTHON")


@pytest.mark.slow
@pytest.mark.skipif(_tracr_python() is None, reason="needs tracr (tracr-pypi) importable, or CIRCUITRY_TRACR_PYTHON "
                    "naming a Python that has it")
def test_rebuild_gives_the_shipped_files(tmp_path):
    """Recompile every program with tracr (~45 s) and compare the files byte for byte."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    subprocess.run([_tracr_python(), "-m", "circuitry.zoo.tracr_build", "--out", str(tmp_path)], check=True,
                   env=env, capture_output=True)
    for name in TRACR_MODELS:
        for ext in (".safetensors", ".json"):
            assert (tmp_path / f"{name}{ext}").read_bytes() == (CHECKPOINT_DIR / f"{name}{ext}").read_bytes(), name


def test_cli_lists_tracr_models_and_refuses_to_train_them(capsys):
    from circuitry.cli import main

    assert main(["zoo", "list"]) == 0
    assert "tracr-reverse" in capsys.readouterr().out
    assert main(["zoo", "info", "tracr-frac-prevs"]) == 0
    assert '"output_kind": "numerical"' in capsys.readouterr().out
    assert main(["zoo", "train", "tracr-reverse", "--out", "unused"]) == 2
    assert "compiled by tracr" in capsys.readouterr().err
