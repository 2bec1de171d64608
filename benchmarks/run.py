"""circuitry's benchmark suite: each workload with circuitry, TransformerLens 4.3 (where it has the feature)
and a plain-torch reference doing the least work the exact answer allows, side by side in one process.

    python benchmarks/run.py                      # full sizes; writes benchmarks/results.json
    python benchmarks/run.py --quick --out /tmp/r.json   # shrunk sizes (the CI smoke test)
    python benchmarks/run.py --only P4 --before --merge   # P4/P4b beside the issue's baseline commit
    python benchmarks/run.py --only P4b --before --threads 2 --workers 2 --out benchmarks/results-2cores.json
                                                  # the whole machine: 2 threads, and the nulls in 2 processes

Workloads (docs/performance.md):
  P1  per-head z noising, all positions, GPT-2-small shape (random init), 8 prompts x 32 tokens, logit diff
  P2  every head -> later heads' q/k/v path patching on attn-only-2l (P2) and a 4-layer GPT-2 with MLPs (P2b)
  P3  a 1,000-draw random-head null on attn-only-2l
  P4  the full `circuitry analyze` of a random 6-layer x 8-head d 256 GPT-2, vocab 50257; P4b the same on a
      GPT-2 of that shape trained (once, cached) until induction heads form, so every stage runs; with
      --before [REV], each also on the code of git revision REV (default: the issue's baseline), beside it
  P5  exact edge scores over every edge of attn-only-2l (EAP: benchmarks/bench_discovery.py)
  P6  EAP-IG (5 steps) over every edge of the GPT-2-small shape, 64 pairs x 32 tokens, beside its pass-count
      floor (2 forward passes + 5 forward/backward passes to the input, plain torch, no scores) and a
      plain-torch EAP-IG whose scores circuitry's must match

Every implementation's answer is checked against the reference (max abs difference <= 1e-4). Times are
medians of --repeats runs (one run for the slow ones); both CPU time (user + system of the process: on a
machine shared with other jobs it measures the work, and the ratios use it) and wall time are recorded.
Peak memory is the largest rise of the process's resident set during a call, sampled every 5 ms. No timing
is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python benchmarks/run.py` from a checkout
    sys.path.insert(0, str(ROOT))

TOL = 1e-4


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRSS:
    """Largest rise of the resident set (MB) while the block runs, sampled every 5 ms (Linux)."""

    def __enter__(self):
        self.base = self.peak = _rss_mb()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._poll, daemon=True)
        self._t.start()
        return self

    def _poll(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss_mb())
        self.mb = round(self.peak - self.base, 1)


def measure(fn, repeats: int) -> tuple[list[float], list[float], object, float]:
    """``(wall seconds, CPU seconds, last output, peak MB)`` of ``repeats`` calls (CPU: this process's
    user + system time, all threads)."""
    walls, cpus, out, peak = [], [], None, 0.0
    for _ in range(repeats):
        with PeakRSS() as m:
            t, c = time.perf_counter(), time.process_time()
            out = fn()
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        peak = max(peak, m.mb)
    return walls, cpus, out, peak


def run_workload(w, repeats: int) -> dict:
    import numpy as np

    rows, answers = {}, {}
    for impl in w.impls:
        walls, cpus, out, peak = measure(impl.fn, impl.repeats or repeats)
        a = impl.answer(out)
        answers[impl.name] = None if a is None else np.asarray(a, dtype=float)  # None: computes no answer
        del out
        rows[impl.name] = {"cpu_seconds": round(statistics.median(cpus), 3), "seconds": round(statistics.median(walls), 3),
                           "cpu_runs": [round(t, 3) for t in cpus], "wall_runs": [round(t, 3) for t in walls],
                           "peak_mb": peak}
    check = w.check or w.baseline
    base = answers[check]
    for name, r in rows.items():
        a = answers[name]
        if a is None:
            r["agrees"] = None
        else:
            r["max_abs_diff_vs_" + check] = float(np.abs(a - base).max()) if a.shape == base.shape else None
            r["agrees"] = a.shape == base.shape and bool(np.abs(a - base).max() <= TOL)
        r["x_" + w.baseline] = round(r["cpu_seconds"] / rows[w.baseline]["cpu_seconds"], 3)
    spread = float(np.ptp(base)) if base.size else 0.0
    return {"title": w.title, "note": w.note, "baseline": w.baseline, "checked_against": check,
            "answer_range": spread, "impls": rows,
            "measured_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


def analyze_time(tree: Path, model_dir: Path, out: Path, extra: list[str], threads: int) -> dict:
    """Run ``circuitry analyze`` from the source tree ``tree`` in a subprocess; wall and CPU seconds (the
    child's user + system time) and the report's stage timings."""
    import resource

    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS=str(threads))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    # cwd=tree: `python -m` puts the working directory first on sys.path, ahead of PYTHONPATH
    with tempfile.TemporaryFile("w+") as so, tempfile.TemporaryFile("w+") as se:
        p = subprocess.Popen([sys.executable, "-m", "circuitry.cli", "analyze", "--model", str(model_dir), "--out",
                              str(out), "--quiet", *extra], env=env, stdout=so, stderr=se, cwd=tree)
        peak_kb = 0
        while p.poll() is None:  # the child's own high-water mark of resident memory (VmHWM), read as it runs
            try:
                with open(f"/proc/{p.pid}/status") as fh:
                    peak_kb = max([peak_kb] + [int(l.split()[1]) for l in fh if l.startswith("VmHWM:")])
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        se.seek(0)
        stderr = se.read()
    secs = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode not in (0, 1):
        raise RuntimeError(f"analyze from {tree} failed ({p.returncode}): {stderr[-2000:]}")
    rep = json.loads((out / "report.json").read_text())
    return {"cpu_seconds": round(cpu, 1), "seconds": round(secs, 1), "exit": p.returncode,
            "peak_mb": round(peak_kb / 1024, 1), "stages": rep.get("timings", {}),
            "circuit_heads": rep.get("circuit_heads")}


def _tree(rev: str, dest: Path) -> Path:
    """The source of git revision ``rev`` under ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    arch = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=arch, check=True)
    return dest


BASELINE_REV = "d286d91"  # what had landed when issue 11 measured analyze at 350 s
P4B_LR, P4B_STEPS = 1e-3, 600  # induction heads at 0.53 (prev-token 0.91) by step 600; docs/performance.md


def trained_gpt2(quick: bool, cache: Path) -> Path:
    """A Hugging Face GPT-2 (6 layers x 8 heads, d 256; quick: 2 x 4, d 64) trained with the zoo's recipe
    machinery on the zoo corpus until induction heads form, saved as a model folder ``analyze`` loads.

    Trained once on one thread (bit-reproducible there) and cached under ``cache`` by the recipe's hash."""
    from circuitry.zoo.registry import zoo_corpus
    from circuitry.zoo.train import GPT2Spec, TrainRecipe

    corpus = zoo_corpus()
    shape = dict(n_layers=2, n_heads=4, d_model=64) if quick else dict(n_layers=6, n_heads=8, d_model=256)
    recipe = TrainRecipe(name="gpt2-bench", family="gpt2", description="benchmark P4b: GPT-2 with induction heads",
                         model=GPT2Spec(**shape, d_vocab=corpus.d_vocab, n_ctx=corpus.seq_len), corpus=corpus,
                         lr=P4B_LR, warmup=100, batch_size=64, steps=40 if quick else P4B_STEPS, seed=0,
                         eval_every=20 if quick else 50)
    return _trained(recipe, cache, "P4b", progress=not quick)


P8_LR, P8_STEPS, P8_BATCH = 1e-3, 100, 16  # 380 s of one CPU thread; no induction heads yet (docs/performance.md, P8)


def trained_gpt2_small(quick: bool, cache: Path) -> Path:
    """A GPT-2-small-shaped model (12 layers x 12 heads, d 768; quick: 2 x 4, d 64) with the zoo corpus's
    vocabulary (65), trained by the zoo trainer for P8 (once, cached) on the zoo corpus shortened to 32 tokens
    with more repeated blocks (half the sequences, blocks of 4-12 symbols), to fit one CPU thread's budget."""
    from circuitry.zoo.registry import zoo_corpus
    from circuitry.zoo.train import GPT2Spec, ProbeSpec, TrainRecipe

    corpus = type(zoo_corpus())(**dict(zoo_corpus().model_dump(), seq_len=32, p_repeat=0.5, block_min=4,
                                       block_max=12, span_min=4, span_max=12))
    shape = dict(n_layers=2, n_heads=4, d_model=64) if quick else dict(n_layers=12, n_heads=12, d_model=768)
    recipe = TrainRecipe(name="gpt2-small-bench", family="gpt2",
                         description="benchmark P8: GPT-2-small shape with induction heads",
                         model=GPT2Spec(**shape, d_vocab=corpus.d_vocab, n_ctx=corpus.seq_len), corpus=corpus,
                         probe=ProbeSpec(block_len=10),  # [BOS] + 3 blocks of 10 fit the 32-token context
                         lr=P8_LR, warmup=20, batch_size=P8_BATCH, steps=40 if quick else P8_STEPS, seed=0,
                         eval_every=20 if quick else 25)
    return _trained(recipe, cache, "P8", progress=not quick)


def _trained(recipe, cache: Path, key: str, *, progress: bool) -> Path:
    """Train ``recipe`` once (one thread) into ``cache/<recipe hash>``; the Hugging Face model folder."""
    from circuitry.provenance import sha256_json
    from circuitry.zoo.registry import load_zoo
    from circuitry.zoo.train import train

    folder = cache / sha256_json(recipe.model_dump())[:16]
    hf_dir = folder / "hf"
    if not (hf_dir / "config.json").exists():
        print(f"{key}: training {recipe.model} for {recipe.steps} steps (once; cached in {folder})", flush=True)
        train(recipe, folder, progress=progress)
        module, _ = load_zoo(recipe.name, root=folder)
        module.save_pretrained(hf_dir)
    return hf_dir


def p4(quick: bool, before: str | None, work: Path, threads: int, cache: Path,
       keys: set[str] = frozenset({"P4", "P4b"}), workers: int | None = None) -> list[tuple[str, dict]]:
    """P4: ``analyze`` of a random GPT-2 (the issue's workload; its gap is not resolved, so today's analyze
    stops after activation patching while the baseline ran every stage). P4b: ``analyze`` of a trained GPT-2
    of the same shape but the zoo's vocabulary, on which every stage runs in both versions (same work)."""
    from benchmarks.workloads import gpt2

    shape = (2, 4, 64, 1000) if quick else (6, 8, 256, 50257)
    extra = ["--n-prompts", "16", "--draws", "100"] if quick else []
    models = []
    if "P4" in keys:
        random_dir = work / "p4-model"
        gpt2(*shape).save_pretrained(random_dir)
        models.append(("P4", f"circuitry analyze, random GPT-2 {shape[0]} x {shape[1]}, d {shape[2]}, "
                             f"vocab {shape[3]}", random_dir))
    if "P4b" in keys:
        models.append(("P4b", "circuitry analyze, GPT-2 " + ("2 x 4, d 64" if quick else "6 x 8, d 256")
                       + ", vocab 65, trained on the zoo corpus (induction heads; every stage runs)",
                       trained_gpt2(quick, cache)))
    tree = _tree(before, work / "before") if before else None  # the baseline's source, extracted once
    out = []
    for key, title, model_dir in models:
        res = {"title": title + (" (quick: 16 prompts, 100 draws)" if quick else " (defaults)"), "impls": {}}
        res["impls"]["circuitry"] = analyze_time(ROOT, model_dir, work / f"{key}-after", extra, threads)
        res["impls"]["circuitry"]["imported_from"] = str(ROOT)
        if key == "P4b" and not quick:  # every draw of both circuit-test nulls, as before sequential stopping
            res["impls"]["circuitry --stop-after 0"] = analyze_time(ROOT, model_dir, work / f"{key}-all-draws",
                                                                     extra + ["--stop-after", "0"], threads)
        par = f"circuitry --executor processes --workers {workers}"
        if workers:  # the circuit test's nulls in worker processes (one BLAS thread each on 2 cores)
            res["impls"][par] = analyze_time(ROOT, model_dir, work / f"{key}-processes",
                                             extra + ["--executor", "processes", "--workers", str(workers)], threads)
        if tree is not None:
            name = f"circuitry @ {before} (before)"
            res["impls"][name] = analyze_time(tree, model_dir, work / f"{key}-before", extra, threads)
            res["speedup_vs_before"] = round(res["impls"][name]["cpu_seconds"]
                                             / res["impls"]["circuitry"]["cpu_seconds"], 2)
            # wall clock: what a user waits for (CPU seconds also count the threads' and workers' time)
            res["wall_speedup_vs_before"] = {k: round(res["impls"][name]["seconds"] / r["seconds"], 2)
                                             for k, r in res["impls"].items() if k != name}
        res["measured_at"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        out.append((key, res))
    return out


def p8(quick: bool, work: Path, threads: int, cache: Path) -> dict:
    """P8: ``analyze`` (defaults) of the GPT-2-small-shaped model trained by :func:`trained_gpt2_small`; stage
    timings from the report."""
    model_dir = trained_gpt2_small(quick, cache)
    extra = ["--n-prompts", "16", "--draws", "100"] if quick else []
    res = {"title": "circuitry analyze, GPT-2 " + ("2 x 4, d 64" if quick else "12 x 12, d 768") + ", vocab 65, "
           f"32-token zoo corpus, {P8_STEPS} training steps (defaults)", "impls": {}}
    res["impls"]["circuitry"] = analyze_time(ROOT, model_dir, work / "P8", extra, threads)
    res["measured_at"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return res


def machine() -> dict:
    import nnsight
    import numpy
    import torch
    import transformers

    info = {"python": platform.python_version(), "platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "nnsight": nnsight.__version__, "transformers": transformers.__version__, "numpy": numpy.__version__,
            "load_average_at_start": os.getloadavg()}
    try:
        from importlib.metadata import version

        import transformer_lens  # noqa: F401

        info["transformer_lens"] = version("transformer-lens")
    except ImportError:
        info["transformer_lens"] = None
    from circuitry import __version__

    info["circuitry"] = __version__
    try:
        info["git_commit"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                                            text=True).stdout.strip() or None
    except OSError:
        info["git_commit"] = None
    return info


def print_table(results: dict) -> None:
    print(f"\n{'workload':6s} {'implementation':34s} {'CPU s':>9s} {'wall s':>9s} {'x ref':>7s} {'peak MB':>8s}  agrees")
    for key, w in results["workloads"].items():
        if "skipped" in w:
            print(f"{key:6s} skipped: {w['skipped']}")
            continue
        base = w.get("baseline", "reference")
        for name, r in w["impls"].items():
            ratio = r.get("x_" + base, "")
            agrees = {True: "yes", False: "NO", None: ""}[r.get("agrees")]
            print(f"{key:6s} {name:34s} {r['cpu_seconds']:9.2f} {r['seconds']:9.2f} {ratio!s:>7s} "
                  f"{r.get('peak_mb', '')!s:>8}  {agrees}")
        if w.get("note"):
            print(f"{'':6s} ({w['note']})")
        if "speedup_vs_before" in w:
            print(f"{'':6s} speed-up vs before: x{w['speedup_vs_before']} in CPU seconds; wall clock: "
                  + ", ".join(f"{k} x{v}" for k, v in w.get("wall_speedup_vs_before", {}).items()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="shrunk sizes (smoke test; numbers mean nothing)")
    ap.add_argument("--out", default=None, help="results file (default benchmarks/results.json; --quick: none)")
    ap.add_argument("--repeats", type=int, default=None, help="runs per implementation, median reported "
                    "(default 3; --quick: 1)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads, the same for every implementation "
                    "(default 1: on a shared machine CPU time then measures the work)")
    ap.add_argument("--merge", action="store_true", help="update the workloads run in an existing --out file, "
                    "keeping the others")
    ap.add_argument("--only", nargs="*", default=None, help="workloads to run (default P1-P6; also P7 and P8; P4 runs P4 and "
                    "P4b, P4b only the trained model)")
    ap.add_argument("--before", nargs="?", const=BASELINE_REV, default=None,
                    help=f"git revision to rerun P4/P4b on beside the current code (bare --before: {BASELINE_REV}, "
                         "what had landed when the issue measured 350 s)")
    ap.add_argument("--workers", type=int, default=None,
                    help="also run P4/P4b with --executor processes --workers N (the circuit test's nulls in N "
                         "worker processes)")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "circuitry-bench"),
                    help="where P4b's trained GPT-2 is kept (trained once, ~16 min on one thread)")
    args = ap.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    import torch

    torch.set_num_threads(args.threads)
    from benchmarks import workloads as W

    want = set(args.only or ["P1", "P2", "P3", "P4", "P5", "P6"] + (["P7"] if args.quick else []))
    results = {"quick": args.quick, "machine": machine(), "tolerance": TOL, "workloads": {}}
    t0 = time.perf_counter()
    if "P1" in want:
        w = W.p1(args.quick)
        for impl in w.impls:  # TransformerLens's 144 full passes: one run of it
            impl.repeats = 1 if not args.quick and impl.name != "circuitry" else None
        results["workloads"]["P1"] = run_workload(w, args.repeats)
    if "P2" in want:
        for w in W.p2(args.quick):
            results["workloads"][w.key] = run_workload(w, args.repeats)
    if "P3" in want:
        results["workloads"]["P3"] = run_workload(W.p3(args.quick), args.repeats)
    with tempfile.TemporaryDirectory(prefix="circuitry-bench-") as tmp:
        if "P4" in want or "P4b" in want:
            keys = {"P4", "P4b"} if "P4" in want else {"P4b"}
            results["workloads"].update(p4(args.quick, args.before, Path(tmp), args.threads, Path(args.cache), keys,
                                              args.workers))
        if "P8" in want:  # not in the default set: it trains a GPT-2-small-shaped model once (~7 min CPU)
            results["workloads"]["P8"] = p8(args.quick, Path(tmp), args.threads, Path(args.cache))
    if "P5" in want:
        results["workloads"]["P5"] = run_workload(W.p5(args.quick), args.repeats)
    if "P6" in want:
        results["workloads"]["P6"] = run_workload(W.p6(args.quick), args.repeats)
    if "P7" in want:  # not in the default set (~25 min CPU); --quick runs it
        results["workloads"]["P7"] = run_workload(W.p7(args.quick), args.repeats)
    results["total_seconds"] = round(time.perf_counter() - t0, 1)
    print_table(results)
    out = args.out or (None if args.quick else str(ROOT / "benchmarks" / "results.json"))
    if out and args.merge and Path(out).exists():
        old = json.loads(Path(out).read_text())
        old["workloads"].update(results["workloads"])
        old.setdefault("runs", []).append({"machine": results["machine"], "workloads": sorted(results["workloads"]),
                                           "total_seconds": results["total_seconds"]})
        results = old
    if out:
        from circuitry.io import atomic_write_json

        atomic_write_json(out, results)
        print(f"\nwrote {out}")
    bad = [(k, n) for k, w in results["workloads"].items() for n, r in w.get("impls", {}).items()
           if r.get("agrees") is False]
    if bad:
        print(f"answers disagree (> {TOL}): {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
