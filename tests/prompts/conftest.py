"""A tiny Hugging Face GPT-2 directory with its own word-level tokenizer, built offline from a config."""

from __future__ import annotations

import pytest

WORDS = ["<bos>", "When", "Mary", "and", "John", "went", "out", ",", "gave", "it", "to", "Anna", "Bob", "the",
         "a", "store", "ball", "then"]


def make_tiny_gpt2(path, *, seed: int = 0, n_positions: int = 32):
    """Save a random 2-layer GPT-2 and a word-level tokenizer (``WORDS``) to ``path``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tk = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(WORDS)}, unk_token="<bos>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<bos>")
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=4, n_embd=32, vocab_size=len(WORDS),
                                       n_positions=n_positions, bos_token_id=0, eos_token_id=0))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory):
    return make_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))
