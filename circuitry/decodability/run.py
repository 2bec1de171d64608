"""Concept decodability: can the latent task be read from the query position, layer by layer?

The "concept encoding-decoding" view of in-context learning (Hendel et al. 2023, "In-Context Learning
Creates Task Vectors"; Todd et al. 2024, "Function Vectors in Large Language Models"; the survey of
Zheng et al. 2024): a model first infers the latent task from the demonstrations, encoding it in its
residual stream, then applies it to the query. If so, the task should become decodable from the
representation at the query token as examples accumulate, and before the answer is produced.

:func:`decodability` builds prompts with ``k`` examples of several latent tasks
(:mod:`circuitry.decodability.tasks`), reads the residual stream at the query position before every
layer and after the last (``"embed"`` = before layer 0, ``"L{l}"`` = after layer ``l``), and decodes the
task with a cross-validated probe on held-out prompts (:mod:`circuitry.decodability.probe`) against a
shuffled-label null, for each ``k``. It also measures the model's **task accuracy** (top-1 prediction
at the query equals ``f(x_q)``) per task and ``k``, so decodability can be set against what the model
actually does: a task counts as *solved* when its accuracy at the largest ``k`` reaches
``solved_threshold`` (default 0.5).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from circuitry.decodability.probe import Classifier, cv_accuracy
from circuitry.decodability.tasks import SYNTHETIC_TASKS, Query, TaskPrompt, read_task_file, synthetic_prompts
from circuitry.display import Displayed, Table, ranked, spread
from circuitry.errors import bad_value
from circuitry.provenance import Frozen, NamedArray, Provenance, make_provenance, sha256_json

if TYPE_CHECKING:
    from circuitry.models import ModelAdapter


class DecodabilityResult(Displayed, Frozen):
    """Task decodability by number of examples and layer, with its null and the model's task accuracy.

    Attributes
    ----------
    tasks, n_examples, layers
        Task labels (class order), the numbers of in-context examples ``k``, the layer labels.
    accuracy
        ``NamedArray ("n_examples", "layer")``: cross-validated accuracy of decoding the task.
    recall
        ``("n_examples", "layer", "task")``: share of each task's held-out prompts decoded correctly.
    shuffled_mean, shuffled_sd
        ``("n_examples", "layer")``: accuracy of the same probe on shuffled labels (the null).
    pvalue, adjusted_pvalue
        ``("n_examples", "layer")``: permutation p-value of the accuracy, and Holm-adjusted over all cells.
    chance
        ``1 / n_tasks``.
    task_accuracy
        ``("n_examples", "task")``: the model's top-1 accuracy on ``f(x_q)``.
    solved
        Per task: accuracy at the largest ``k`` >= ``solved_threshold``.
    settings
        Classifier, folds, permutations, ridge penalty, query mode, prompts per task, source of tasks.
    """

    tasks: list[str]
    n_examples: list[int]
    layers: list[str]
    accuracy: NamedArray
    recall: NamedArray
    shuffled_mean: NamedArray
    shuffled_sd: NamedArray
    pvalue: NamedArray
    adjusted_pvalue: NamedArray
    chance: float
    task_accuracy: NamedArray
    solved: dict[str, bool]
    solved_threshold: float
    settings: dict
    provenance: Provenance

    def best_layer(self, k: int) -> str:
        """The layer where the task decodes best with ``k`` examples."""
        row = self.accuracy.numpy()[self.n_examples.index(k)]
        return self.layers[int(np.argmax(row))]

    def to_markdown(self) -> str:
        """A Markdown summary: accuracy by ``k`` and layer with p-values, then decodability vs task accuracy."""
        from circuitry.decodability.report import markdown

        return markdown(self)

    def plot(self, path: str | Path) -> Path:
        """Decodability by layer and ``k`` (heatmap), by ``k`` against the null, and per task vs accuracy."""
        from circuitry.decodability.report import plot

        return plot(self, path)

    def _table(self) -> Table:
        """The (``k``, layer) cells decoded furthest above chance with the shuffled-label null, the permutation
        p and Holm's adjusted p; the model's task accuracy at the largest ``k`` in a note."""
        acc, mean, sd, p, adj = (a.numpy() for a in (self.accuracy, self.shuffled_mean, self.shuffled_sd,
                                                     self.pvalue, self.adjusted_pvalue))
        rows = ranked([(k, layer, float(acc[i, j]), spread(float(mean[i, j]), float(sd[i, j])),
                        float(p[i, j]), float(adj[i, j])) for i, k in enumerate(self.n_examples)
                       for j, layer in enumerate(self.layers)], key=lambda r: r[2] - self.chance)
        task = self.task_accuracy.numpy()[-1]
        s = self.settings
        notes = [f"{len(self.tasks)} tasks (chance {self.chance:.3f}), {s.get('n_prompts')} prompts, "
                 f"{s.get('classifier')} probe, {s.get('n_folds')} folds at the {s.get('position', 'query token')}",
                 f"test: {s.get('test', 'permutation test')}, {s.get('n_permutations')} shuffles; "
                 f"{s.get('correction', 'holm')}",
                 f"model's task accuracy at k={self.n_examples[-1]}: " + ", ".join(
                     f"{t} {a:.2f}{' (solved)' if self.solved.get(t) else ''}"
                     for t, a in zip(self.tasks, task.tolist()))]
        return Table(f"DecodabilityResult: {len(self.n_examples)} k x {len(self.layers)} layers",
                     ("k", "layer", "accuracy", "shuffled (mean ± sd)", "p", "p_adj (holm)"), rows, notes=notes,
                     noun="cell")


def _features(model: "ModelAdapter", prompts: Sequence[TaskPrompt], k: int) -> tuple[np.ndarray, np.ndarray]:
    """``([n, n_layers + 1, d_model] residual at the query, [n] top-1 prediction there)``."""
    L = model.info.n_layers
    reads = [("resid_pre", layer) for layer in range(L)] + [("resid_post", L - 1)]
    bos = model.info.bos_token_id
    seqs = [p.tokens(k, bos) for p in prompts]
    by_len: dict[int, list[int]] = defaultdict(list)
    for i, s in enumerate(seqs):
        by_len[len(s)].append(i)
    feats = np.empty((len(seqs), L + 1, model.info.d_model))
    preds = np.empty(len(seqs), dtype=int)
    for idx in by_len.values():
        for start in range(0, len(idx), 64):
            rows = idx[start:start + 64]
            res = model.run(torch.tensor([seqs[i] for i in rows]), reads=reads)
            stack = [res[("resid_pre", layer)][:, -1] for layer in range(L)] + [res[("resid_post", L - 1)][:, -1]]
            feats[rows] = torch.stack(stack, 1).detach().double().cpu().numpy()
            preds[rows] = res.logits[:, -1].argmax(-1).cpu().numpy()
    return feats, preds


def decodability(model: "ModelAdapter", tasks: Sequence[str] | str | Path = SYNTHETIC_TASKS, *,
                 n_examples: Sequence[int] = (0, 1, 2, 4, 8, 16), n_prompts: int = 64, query: Query = "novel",
                 classifier: Classifier = "ridge", n_folds: int = 5, n_permutations: int = 1000, ridge: float = 1.0,
                 solved_threshold: float = 0.5, seed: int = 0, progress: bool = True) -> DecodabilityResult:
    """Decode the latent task from the query position at every layer, for each number of examples.

    Parameters
    ----------
    model
        A loaded model.
    tasks
        Built-in synthetic task names (mapping tasks ``copy``, ``successor``, ``reverse``, ``permutation``;
        concept tasks ``topic_a`` .. ``topic_d``) or the path of a JSONL task file
        (:mod:`circuitry.decodability.tasks`).
    n_examples
        Numbers of in-context examples ``k`` (0 = the query alone: the task cannot be decodable there).
    n_prompts, query, seed
        Synthetic prompts per task, query mode (``"novel"``/``"seen"``), seed of prompts, folds, shuffles.
    classifier, n_folds, n_permutations, ridge
        The probe (:func:`circuitry.decodability.probe.cv_accuracy`).
    solved_threshold
        Task accuracy at the largest ``k`` from which a task counts as solved.
    progress
        A progress bar over ``k``.

    Returns
    -------
    DecodabilityResult

    Raises
    ------
    InputError
        Unknown task, bad ``n_examples``, prompts longer than the context, a bad task file, before any
        forward pass.

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> from circuitry.decodability.tasks import TOPIC_TASKS
    >>> r = decodability(load_model("zoo:attn-only-1l"), TOPIC_TASKS, n_examples=(0, 8), n_prompts=20,
    ...                  n_permutations=20, progress=False)
    >>> bool(r.accuracy.numpy()[1].max() > 0.8 > 0.4 > r.accuracy.numpy()[0].max())
    True
    """
    from tqdm.auto import tqdm

    from circuitry.stats.multiple import adjust_pvalues

    ks = sorted({int(k) for k in n_examples}) if not isinstance(n_examples, (str, int)) else []
    if not ks or ks[0] < 0 or len(ks) != len(list(n_examples)):
        raise bad_value("n_examples", n_examples, "distinct non-negative integers, e.g. 0,1,2,4,8")
    if n_folds < 2 or n_permutations < 0:
        raise bad_value("n_folds/n_permutations", (n_folds, n_permutations), "n_folds >= 2, n_permutations >= 0")
    if isinstance(tasks, (str, Path)) and str(tasks).endswith(".jsonl"):
        prompts, source = read_task_file(tasks, model, max_examples=ks[-1]), {"file": str(tasks)}
    else:
        names = [tasks] if isinstance(tasks, str) else list(tasks)
        if len(set(names)) < 2:
            raise bad_value("tasks", names, "at least 2 distinct tasks")
        prompts = synthetic_prompts(model, tasks=names, n_per_task=n_prompts, max_examples=ks[-1], query=query,
                                    seed=seed)
        source = {"synthetic": names, "query": query}
    labels = sorted({p.task for p in prompts}, key=[p.task for p in prompts].index)
    y = np.array([labels.index(p.task) for p in prompts])
    answer_sets = [set(p.answers) for p in prompts]
    L = model.info.n_layers
    layer_names = ["embed"] + [f"L{i}" for i in range(L)]
    acc, rec, nmean, nsd, pv = (np.empty((len(ks), L + 1)), np.empty((len(ks), L + 1, len(labels))),
                                np.empty((len(ks), L + 1)), np.empty((len(ks), L + 1)), np.empty((len(ks), L + 1)))
    task_acc = np.empty((len(ks), len(labels)))
    for i, k in enumerate(tqdm(ks, desc="examples", disable=not progress, leave=False)):
        feats, preds = _features(model, prompts, k)
        hit = np.array([int(pr) in a for pr, a in zip(preds, answer_sets)])
        task_acc[i] = [hit[y == c].mean() for c in range(len(labels))]
        for layer in range(L + 1):
            r = cv_accuracy(feats[:, layer], y, classifier=classifier, n_folds=n_folds,
                            n_permutations=n_permutations, ridge=ridge, seed=seed)
            acc[i, layer], rec[i, layer], pv[i, layer] = r["accuracy"], r["per_class_recall"], r["pvalue"]
            nmean[i, layer] = r["null"].mean() if len(r["null"]) else np.nan
            nsd[i, layer] = r["null"].std(ddof=1) if len(r["null"]) > 1 else np.nan
    adj = adjust_pvalues(pv.reshape(-1), method="holm").reshape(pv.shape) if n_permutations else pv
    ax, kl = ("n_examples", "layer"), {"n_examples": ks, "layer": layer_names}
    data = [[p.tokens(ks[-1], model.info.bos_token_id), list(p.answers), p.task] for p in prompts]
    return DecodabilityResult(
        tasks=labels, n_examples=ks, layers=layer_names, accuracy=NamedArray.from_array(acc, ax, kl),
        recall=NamedArray.from_array(rec, (*ax, "task"), {**kl, "task": labels}),
        shuffled_mean=NamedArray.from_array(nmean, ax, kl), shuffled_sd=NamedArray.from_array(nsd, ax, kl),
        pvalue=NamedArray.from_array(pv, ax, kl), adjusted_pvalue=NamedArray.from_array(adj, ax, kl),
        chance=1.0 / len(labels),
        task_accuracy=NamedArray.from_array(task_acc, ("n_examples", "task"), {"n_examples": ks, "task": labels}),
        solved={t: bool(task_acc[-1, c] >= solved_threshold) for c, t in enumerate(labels)},
        solved_threshold=solved_threshold,
        settings={"classifier": classifier, "n_folds": n_folds, "n_permutations": n_permutations, "ridge": ridge,
                  "n_prompts": len(prompts), "source": source, "position": "query token (last)",
                  "correction": "holm over all (n_examples, layer) cells",
                  "test": "permutation test: shuffled task labels, (1 + #null >= observed) / (1 + n_permutations)"},
        provenance=make_provenance(model, dataset=sha256_json(data), seed=seed))
