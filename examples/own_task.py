"""Bring your own task: a token-id task file on the shipped model, and a text task on a Hugging Face
model directory (docs/tutorials/bring-your-own-task.md, docs/tasks.md)."""

import json
import sys
from pathlib import Path

import torch

from circuitry.analysis import AnalysisConfig, run_analysis
from circuitry.cli import main
from circuitry.models import load_model

out = Path(sys.argv[1] if len(sys.argv) > 1 else "example-output")
out.mkdir(parents=True, exist_ok=True)

# 1. A token-id task: "X Y ... X -> Y" (examples/bigram_recall.jsonl, 32 pairs). The clean prompt shows the
#    bigram X Y once, then X again at the end; the corrupted prompt shows X Z instead, so the model should
#    predict Y on the clean prompt and Z on the corrupted one. Token 0 is the zoo models' BOS.
task_file = Path(__file__).resolve().parent / "bigram_recall.jsonl"

model = load_model("zoo:attn-only-2l")
cfg = AnalysisConfig(model="zoo:attn-only-2l", task=str(task_file), seed=0, n_draws=300, n_resamples=999,
                     n_baseline=200, n_score_samples=3)
report = run_analysis(model, cfg, out / "bigram", quiet=True)
print(f"task file: {report.task.n_discovery} discovery / {report.task.n_test} test pairs; "
      f"gap {report.gap.mean:.2f} [{report.gap.ci_low:.2f}, {report.gap.ci_high:.2f}]")
for f in report.findings:
    print(("holds: " if f.holds else "does not hold: ") + f.claim)

# 2. A text task on a Hugging Face directory. A tiny GPT-2 with its own word-level tokenizer is built here
#    offline (random weights: expect "no gap to explain"); point --model at your own directory instead.
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

words = ["<bos>", "When", "Mary", "and", "John", "went", "out", ",", "gave", "it", "to", "Anna", "Bob"]
tk = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="<bos>"))
tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
hf_dir = out / "tiny-gpt2"
torch.manual_seed(0)
GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=4, n_embd=32, vocab_size=len(words), n_positions=32,
                           bos_token_id=0, eos_token_id=0)).save_pretrained(hf_dir)
PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<bos>").save_pretrained(hf_dir)
text_lines = [{"clean": f"When {a} and {b} went out , {b} gave it to",
               "corrupted": f"When {a} and {b} went out , {c} gave it to", "answer": a, "foil": b}
              for a, b, c in [("Mary", "John", "Anna"), ("John", "Mary", "Bob"), ("Anna", "Bob", "Mary"),
                              ("Bob", "Anna", "John"), ("Mary", "Bob", "John"), ("John", "Anna", "Mary")]]
text_file = out / "ioi_text.jsonl"
text_file.write_text("\n".join(json.dumps(x) for x in text_lines) + "\n")
code = main(["patch", "--model", str(hf_dir), "--task", str(text_file), "--out", str(out / "text-patch"), "--quiet"])
print(f"circuitry patch on the text task exited {code} (1 = the model shows no gap on the task)")
