"""Compile the zoo's tracr models: RASP programs -> zoo weights, ground-truth edges, reference outputs.

Run in an environment with ``tracr-pypi`` (and jax), never at run time::

    python -m circuitry.zoo.tracr_build --out circuitry/zoo/checkpoints/

For each program of :data:`PROGRAMS` it compiles the RASP program with tracr, copies the assembled
weights into the layout of :class:`~circuitry.zoo.arch.ZooTransformer` (``nn.Linear`` stores the
transpose of haiku's ``w``; tracr's biases are all zero and stay zero), and writes ``NAME.safetensors``
and ``NAME.json`` (a :class:`~circuitry.zoo.tracr_models.TracrManifest`): the architecture, the
input encoding and output values, the residual stream's labels, which labelled subspaces every
component reads and writes, the ground-truth edges (:mod:`circuitry.zoo.ground_truth`), and tracr's
own outputs on reference inputs (its final residual stream and its decoded output), against which
``tests/zoo/test_tracr_models.py`` pins circuitry's forward pass.

Only numpy, tracr and the standard library are imported (tracr's environment has no torch); the
safetensors file is written by :func:`safetensors_bytes`. Building twice gives the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import struct
from importlib.metadata import version
from pathlib import Path

import numpy as np

from circuitry.zoo.ground_truth import EMBED, LOGITS, edge_subspaces, live_edges

BOS, PAD = "BOS", "compiler_pad"

#: name -> (tracr.compiler.lib call as text, vocabulary, max_seq_len, task input length, unique tokens).
#: sort-unique's task draws 3 distinct tokens of 4 (with 4 of 4 the sorted output never changes).
#: ACDC (Conmy et al. 2023, acdc/tracr_task/utils.py) compiles reverse with vocab {1, 2, 3} and
#: max_seq_len 5 and "proportion" = make_frac_prevs(tokens == "x") with vocab {w, x, y, z}, max_seq_len 5,
#: BOS "BOS"; the others follow tracr's own test cases (tracr/compiler/test_cases.py).
PROGRAMS: dict[str, tuple[str, list, int, int, bool]] = {
    "tracr-reverse": ("make_reverse(rasp.tokens)", [1, 2, 3], 5, 4, False),
    "tracr-frac-prevs": ('make_frac_prevs(rasp.tokens == "x")', ["w", "x", "y", "z"], 5, 4, False),
    "tracr-sort": ("make_sort(rasp.tokens, rasp.tokens, max_seq_len=5, min_key=1)", [1, 2, 3, 4], 5, 4, False),
    "tracr-sort-unique": ("make_sort_unique(rasp.tokens, rasp.tokens)", [1, 2, 3, 4], 5, 3, True),
    "tracr-hist": ("make_hist()", ["a", "b", "c", "d"], 5, 4, False),
    "tracr-pair-balance": ('make_pair_balance(rasp.tokens, "(", ")")', ["(", ")", "a"], 5, 4, False),
    "tracr-shuffle-dyck": ('make_shuffle_dyck(["()", "{}"])', ["(", ")", "{", "}"], 5, 4, False),
}

DESCRIPTIONS = {
    "tracr-reverse": "tracr: reverse the input (ACDC's 'reverse'); categorical output",
    "tracr-frac-prevs": "tracr: fraction of previous tokens equal to 'x' (ACDC's 'proportion'); numerical output",
    "tracr-sort": "tracr: sort the input, duplicates allowed (keys made unique by position); categorical",
    "tracr-sort-unique": "tracr: sort an input of distinct tokens; categorical",
    "tracr-hist": "tracr: how often each token occurs in the input; categorical",
    "tracr-pair-balance": "tracr: fraction of '(' minus fraction of ')' so far; numerical output",
    "tracr-shuffle-dyck": "tracr: is the input a shuffle of balanced () and {}? categorical (True/False)",
}

N_REFERENCE = 24


def safetensors_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    """A safetensors file (float32, little-endian, names sorted, no metadata) of ``tensors``."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(blobs)


def _compile(expr: str, vocab: list, max_seq_len: int):
    """tracr's ``compile_rasp_to_model``, step by step, to keep the craft model (which components read
    and write which subspaces) next to the assembled one."""
    from tracr.compiler import (
        basis_inference,
        craft_graph_to_model,
        craft_model_to_transformer,
        expr_to_craft_graph,
        lib,
        nodes,
        rasp_to_graph,
    )
    from tracr.craft import bases
    from tracr.rasp import rasp

    # tracr numbers its expressions from a global counter (labels like "length_5"), and the residual
    # basis is sorted by label: restart it so a program compiles the same whatever was built before
    rasp.RASPExpr._ids = itertools.count(1)
    program = eval(expr, {"rasp": rasp, **{k: getattr(lib, k) for k in dir(lib) if k.startswith("make_")}})
    extracted = rasp_to_graph.extract_rasp_graph(program)
    graph, sources, sink = extracted.graph, extracted.sources, extracted.sink
    basis_inference.infer_bases(graph, sink, set(vocab), max_seq_len)
    expr_to_craft_graph.add_craft_components_to_rasp_graph(
        graph, bos_dir=bases.BasisDirection(rasp.tokens.label, BOS), mlp_exactness=100)
    craft = craft_graph_to_model.craft_graph_to_model(graph, sources)
    assembled = craft_model_to_transformer.craft_model_to_transformer(
        craft_model=craft, graph=graph, sink=sink, max_seq_len=max_seq_len, compiler_bos=BOS, compiler_pad=PAD)
    categorical = rasp.is_categorical(sink[nodes.EXPR])
    return assembled, craft, list(sink[nodes.OUTPUT_BASIS]), categorical


def _components(craft, out_basis, residual_labels: list[str], n_layers: int) -> dict:
    """Which labelled subspaces each component reads and writes, in circuitry's node names."""
    from tracr.compiler import assemble
    from tracr.craft import transformers

    _, module_names = assemble._get_model_config_and_module_names(craft)
    labels = lambda space: sorted(str(d) for d in space.basis)
    comps: dict = {EMBED: {"layer": -1, "writes": sorted(
        x for x in residual_labels if x.startswith(("tokens:", "indices:")) or x == "one")}}
    for name, block in zip(module_names, craft.blocks):
        layer = int(name.split("_")[1].split("/")[0])
        if isinstance(block, transformers.MLP):
            comps[f"MLP{layer}"] = {"layer": layer, "reads": labels(block.fst.input_space),
                                    "writes": labels(block.snd.output_space)}
        else:
            for h, head in enumerate(block.as_multi().heads()):
                comps[f"L{layer}H{h}"] = {"layer": layer, "q": labels(head.w_qk.left_space),
                                         "k": labels(head.w_qk.right_space), "v": labels(head.w_ov.input_space),
                                         "writes": labels(head.w_ov.output_space)}
    comps[LOGITS] = {"reads": sorted(str(d) for d in out_basis)}
    assert all(c["layer"] < n_layers for n, c in comps.items() if n != LOGITS)
    return comps


def _read_by_weights(comps: dict, w: dict[str, np.ndarray], labels: list[str], dh: int) -> dict:
    """Keep, of each declared read subspace, the directions the weights really read (a non-zero input row).

    tracr declares ``tokens:BOS`` in the value space of a numerical aggregate but gives it zero weight."""
    def nonzero(mat: np.ndarray) -> set[str]:  # mat: [out, d_model] (nn.Linear layout)
        return {labels[i] for i in np.flatnonzero(np.abs(mat).sum(0))}

    for node, c in comps.items():
        if node.startswith("L"):
            layer, h = (int(x) for x in node[1:].split("H"))
            for kind in ("q", "k", "v"):
                used = nonzero(w[f"blocks.{layer}.attn.{kind}_proj.weight"][h * dh:(h + 1) * dh])
                c[kind] = [x for x in c[kind] if x in used]
        elif node.startswith("MLP"):
            used = nonzero(w[f"blocks.{c['layer']}.mlp.fc_in.weight"])
            c["reads"] = [x for x in c["reads"] if x in used]
    return comps


def _task_inputs(vocab: list, length: int, unique: bool) -> list[list]:
    """Every input of the task: ``length`` tokens from ``vocab`` (distinct ones when ``unique``)."""
    it = itertools.permutations(vocab, length) if unique else itertools.product(vocab, repeat=length)
    return [list(x) for x in it]


def _varying(assembled, comps: dict, edges: dict[str, list[str]], ids: np.ndarray) -> list[str]:
    """Edges whose sender's write into the receiver's subspace differs between two task inputs."""
    import jax.numpy as jnp

    out = assembled.forward(assembled.params, jnp.asarray(ids))
    t = out.transformer_output
    lab = {x: i for i, x in enumerate(assembled.residual_labels)}
    acts = {EMBED: np.asarray(t.input_embeddings)}
    for node, c in comps.items():
        if node in (EMBED, LOGITS):
            continue
        layer = c["layer"]
        acts[node] = np.asarray(t.layer_outputs[2 * layer + (1 if node.startswith("MLP") else 0)])
    vary = []
    for e, shared in edges.items():
        src = e.split("->")[0]
        x = acts[src][..., [lab[s] for s in shared]]
        if float(np.abs(x - x[:1]).max()) > 1e-3:
            vary.append(e)
    return vary


def build(name: str, out_dir: Path) -> dict:
    """Compile one program of :data:`PROGRAMS`, write its two files into ``out_dir``; returns the manifest."""
    import jax

    expr, vocab, max_seq_len, length, unique = PROGRAMS[name]
    assembled, craft, out_basis, categorical = _compile(expr, vocab, max_seq_len)
    cfg, p = assembled.model_config, assembled.params
    labels = list(assembled.residual_labels)
    d_model, H, dh = len(labels), cfg.num_heads, cfg.key_size
    enc = assembled.input_encoder.encoding_map
    d_vocab = len(enc)
    n_ctx = p["pos_embed"]["embeddings"].shape[0]
    out_labels = [str(d) for d in out_basis]
    unembed = np.zeros((len(out_labels), d_model), dtype=np.float32)
    for j, lab in enumerate(out_labels):
        unembed[j, labels.index(lab)] = 1.0
    f32 = lambda a: np.asarray(a, dtype=np.float32)
    w = {"embed.weight": f32(p["token_embed"]["embeddings"]), "pos_embed.weight": f32(p["pos_embed"]["embeddings"]),
         "unembed.weight": unembed, "unembed.bias": np.zeros(len(out_labels), np.float32)}
    for layer in range(cfg.num_layers):
        pre, blk = f"transformer/layer_{layer}", f"blocks.{layer}"
        for src, dst in (("attn/query", "attn.q_proj"), ("attn/key", "attn.k_proj"), ("attn/value", "attn.v_proj"),
                         ("attn/linear", "attn.o_proj"), ("mlp/linear_1", "mlp.fc_in"), ("mlp/linear_2", "mlp.fc_out")):
            w[f"{blk}.{dst}.weight"] = f32(p[f"{pre}/{src}"]["w"]).T.copy()
            w[f"{blk}.{dst}.bias"] = f32(p[f"{pre}/{src}"]["b"])
    data = safetensors_bytes(w)
    comps = _read_by_weights(_components(craft, out_basis, labels, cfg.num_layers), w, labels, dh)
    heads = [c for c in comps if c.startswith("L")]
    for layer in range(cfg.num_layers):  # heads of one layer write disjoint subspaces (checked, relied on)
        ws = [set(comps[h]["writes"]) for h in heads if comps[h]["layer"] == layer]
        if sum(map(len, ws)) != len(set().union(*ws)):
            raise RuntimeError(f"{name}: heads of layer {layer} write overlapping subspaces")
    edges = edge_subspaces(comps)
    task = _task_inputs(vocab, length, unique)
    ids = np.array([[enc[BOS]] + [enc[x] for x in row] for row in task])
    counterfactual = live_edges(list(edges), _varying(assembled, comps, edges, ids))
    rng = np.random.default_rng(0)
    ref_inputs = [task[i] for i in sorted(rng.choice(len(task), N_REFERENCE - 4, replace=False))]
    ref_inputs += [list(x) for x in (vocab[:1] * max_seq_len, vocab[-1:] * 2, vocab[:1], vocab[:max_seq_len])]
    if unique:
        ref_inputs = [x for x in ref_inputs if len(set(x)) == len(x)]
    ref = {"inputs": ref_inputs, "input_ids": [], "decoded": [], "output": [], "final_residual": []}
    for x in ref_inputs:
        o = assembled.apply([BOS] + x)
        ref["input_ids"].append([enc[t] for t in [BOS] + x])
        ref["decoded"].append([_json_value(v) for v in o.decoded])
        ref["output"].append([_json_value(v) for v in np.asarray(o.unembedded[0]).tolist()])
        ref["final_residual"].append(np.asarray(o.transformer_output[0], dtype=np.float32).tolist())
    config = {"n_layers": cfg.num_layers, "n_heads": H, "d_model": d_model, "d_head": dh, "d_vocab": d_vocab,
              "n_ctx": int(n_ctx), "d_mlp": cfg.mlp_hidden_size, "positional": "absolute", "normalization": "none",
              "activation": "relu", "causal": False, "d_vocab_out": len(out_labels)}
    manifest = {
        "kind": "tracr", "name": name, "family": "zoo", "description": DESCRIPTIONS[name], "config": config,
        "steps": 0, "checkpoints": [], "bos_token_id": enc[BOS], "pad_token_id": enc[PAD], "d_vocab": d_vocab,
        "n_ctx": int(n_ctx), "weights_file": f"{name}.safetensors", "weights_sha256": hashlib.sha256(data).hexdigest(),
        "tracr": {"program": f"tracr.compiler.lib.{expr}", "vocab": vocab, "max_seq_len": max_seq_len,
                  "compiler_bos": BOS, "compiler_pad": PAD, "mlp_exactness": 100, "causal": False,
                  "tracr_version": version("tracr-pypi"), "jax_version": jax.__version__,
                  "numpy_version": np.__version__},
        "output_kind": "categorical" if categorical else "numerical",
        "input_encoding": [[_json_value(k), v] for k, v in sorted(enc.items(), key=lambda kv: kv[1])],
        "output_values": ([_json_value(v) for v, _ in sorted(assembled.output_encoder.encoding_map.items(),
                                                             key=lambda kv: kv[1])] if categorical else None),
        "output_labels": out_labels, "residual_labels": labels, "components": comps,
        "ground_truth": {"reads": list(edges), "counterfactual": counterfactual, "subspaces": edges},
        "task": {"length": length, "unique": unique, "n_inputs": len(task)},
        "reference": ref,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    _atomic(out_dir / f"{name}.safetensors", data)
    _atomic(out_dir / f"{name}.json", (json.dumps(manifest, indent=1) + "\n").encode())
    return manifest


def _json_value(v):
    """A token or output value as JSON holds it (numpy scalars -> Python; bools stay bools)."""
    return v.item() if hasattr(v, "item") else v


def _atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m circuitry.zoo.tracr_build", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for NAME.json and NAME.safetensors")
    parser.add_argument("names", nargs="*", help=f"programs to build (default: all of {sorted(PROGRAMS)})")
    args = parser.parse_args(argv)
    for name in args.names or list(PROGRAMS):
        if name not in PROGRAMS:
            parser.error(f"unknown program {name!r}; expected one of {sorted(PROGRAMS)}")
        m = build(name, args.out)
        print(f"{name}: {m['config']['n_layers']} layers x {m['config']['n_heads']} heads, d_model "
              f"{m['config']['d_model']}, d_mlp {m['config']['d_mlp']}; {len(m['ground_truth']['reads'])} edges read, "
              f"{len(m['ground_truth']['counterfactual'])} counterfactual; sha256 {m['weights_sha256']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
