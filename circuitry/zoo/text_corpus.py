"""The zoo's natural-text corpus: the King James Bible from Debian, and its byte-level BPE tokenizer.

The text is the King James Version (1611; public domain) as Debian packages it: ``bible-kjv-text``
4.38 holds the compressed text (``/usr/lib/bible.data``) and ``bible-kjv`` 4.38 the ``bible`` program
that prints it (``apt-get install bible-kjv`` installs both). :func:`kjv_verses` runs
``bible -f gen1:1-rev22:21`` (one verse per line, ``Ge1:1 In the beginning ...``); :func:`kjv_chapters`
drops the references and joins the verses of each chapter with spaces, one chapter per line. That text
(4.3 MB, 31,102 verses, 1,189 chapters) has the sha256 :data:`KJV_TEXT_SHA256`; every retrain checks it.

Two books are held out for evaluation and never trained on: Joshua and Acts (:data:`HELDOUT_BOOKS`, 5 %
of the text). The held-out prose ships with the zoo (``checkpoints/kjv-bpe-4096/heldout.txt``) so the
in-context-learning score on it (:mod:`circuitry.zoo.text_eval`) needs no package.

The tokenizer is a byte-level BPE (GPT-2's scheme; Radford et al. 2019) of :data:`VOCAB_SIZE` tokens
trained on the training books with the ``tokenizers`` library; ``<|endoftext|>`` is id 0, the zoo's BOS.
It ships as standard Hugging Face tokenizer files (``tokenizer.json``, ``tokenizer_config.json``), so
``AutoTokenizer.from_pretrained`` reads it and text tasks tokenize as with any Hugging Face model.

Training sequences (:func:`iter_text_batches`) are ``[BOS]`` followed by ``seq_len - 1`` consecutive
tokens of the training stream from an offset drawn by numpy's ``SeedSequence([seed, 0, step])``: the
batches of every step are fixed by the seed, independently of torch.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from circuitry.errors import InputError
from circuitry.provenance import Frozen

#: The Debian packages (bookworm) the corpus comes from, and the command that installs them.
KJV_PACKAGES = {"bible-kjv-text": "4.38", "bible-kjv": "4.38"}
KJV_INSTALL = "sudo apt-get install bible-kjv   (Debian/Ubuntu; it pulls in bible-kjv-text)"
#: sha256 of :func:`kjv_text` (UTF-8 bytes): the exact text the tokenizer and models were trained on.
KJV_TEXT_SHA256 = "178bbe51363c3676185086d7a01c8c8d20d4862aeef5ca90623ee20888101941"
#: Books held out of training (the ``bible`` program's abbreviations): Joshua and Acts.
HELDOUT_BOOKS = ("Josh", "Acts")
VOCAB_SIZE = 4096
BOS_TOKEN = "<|endoftext|>"
#: Folder (under the zoo's checkpoints) of the shipped tokenizer files and held-out prose.
TOKENIZER_NAME = "kjv-bpe-4096"

_VERSE = re.compile(r"^(?P<book>[1-3]?[A-Za-z]+)(?P<chapter>\d+):(?P<verse>\d+) (?P<text>.*)$")


def kjv_verses(*, bible: str | None = None) -> list[str]:
    """The raw verse lines ``Ge1:1 In the beginning ...`` printed by Debian's ``bible`` program.

    Raises
    ------
    InputError
        If the ``bible`` program or its text is not installed; the message names the install command.
    """
    exe = bible or shutil.which("bible")
    if exe is None:
        raise InputError(
            "the natural-text corpus needs the King James Bible from Debian's packages bible-kjv (the `bible` "
            f"program) and bible-kjv-text (the text), version {KJV_PACKAGES['bible-kjv']}, and `bible` is not on "
            f"PATH. Fix: {KJV_INSTALL}. Only retraining needs it: the shipped text models and tokenizer do not")
    try:
        out = subprocess.run([exe, "-f", "gen1:1-rev22:21"], capture_output=True, check=True, timeout=120,
                             stdin=subprocess.DEVNULL).stdout.decode("utf-8")
    except (OSError, subprocess.SubprocessError) as exc:
        raise InputError(f"`{exe} -f gen1:1-rev22:21` failed ({exc}); is bible-kjv-text installed? "
                         f"Fix: {KJV_INSTALL}") from None
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if len(lines) != 31102:
        raise InputError(f"`{exe}` printed {len(lines)} verses, not the KJV's 31102 (is bible-kjv-text "
                         f"{KJV_PACKAGES['bible-kjv-text']} installed?). Fix: {KJV_INSTALL}")
    return lines


def kjv_chapters(verses: list[str]) -> list[tuple[str, str]]:
    """``(book, chapter text)`` per chapter, in canonical order: the references dropped, verses joined by spaces."""
    chapters: list[tuple[str, str, list[str]]] = []
    for line in verses:
        m = _VERSE.match(line)
        if m is None:
            raise InputError(f"unexpected verse line {line[:60]!r} from the bible program. Fix: {KJV_INSTALL}")
        key = (m["book"], m["chapter"])
        if not chapters or chapters[-1][:2] != key:
            chapters.append((*key, []))
        chapters[-1][2].append(m["text"].strip())
    return [(book, " ".join(text)) for book, _, text in chapters]


def kjv_text(chapters: list[tuple[str, str]]) -> str:
    """The corpus text: one chapter per line (its sha256 is :data:`KJV_TEXT_SHA256`)."""
    return "".join(text + "\n" for _, text in chapters)


def split_text(chapters: list[tuple[str, str]]) -> tuple[str, str]:
    """``(train, heldout)`` text: the held-out books (:data:`HELDOUT_BOOKS`) and the rest, one chapter per line."""
    train = [(b, t) for b, t in chapters if b not in HELDOUT_BOOKS]
    held = [(b, t) for b, t in chapters if b in HELDOUT_BOOKS]
    return kjv_text(train), kjv_text(held)


def load_kjv(*, check: bool = True) -> tuple[str, str]:
    """``(train, heldout)`` text from the installed Debian packages, checked against :data:`KJV_TEXT_SHA256`.

    Raises
    ------
    InputError
        The packages are missing (the message names ``apt-get install bible-kjv``), or the text differs from
        the one the zoo was trained on (another package version).
    """
    import hashlib

    chapters = kjv_chapters(kjv_verses())
    digest = hashlib.sha256(kjv_text(chapters).encode("utf-8")).hexdigest()
    if check and digest != KJV_TEXT_SHA256:
        raise InputError(f"the installed KJV text has sha256 {digest}, not {KJV_TEXT_SHA256} (the text the zoo was "
                         f"trained on, from bible-kjv-text {KJV_PACKAGES['bible-kjv-text']}). Fix: install that "
                         "version, or retrain the tokenizer and models from this text and record its hash")
    return split_text(chapters)


def train_tokenizer(text: str, *, vocab_size: int = VOCAB_SIZE):
    """A byte-level BPE ``tokenizers.Tokenizer`` trained on ``text`` (one document per line), ``<|endoftext|>`` = 0.

    GPT-2's pre-tokenizer (Radford et al. 2019): text is split into words with a leading space, mapped to
    bytes, and merges are learned over bytes, so every string encodes and decodes losslessly.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[BOS_TOKEN], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(text.splitlines(), trainer)
    return tok


def save_tokenizer(tok, folder: str | Path) -> Path:
    """Write ``tok`` as Hugging Face tokenizer files (``tokenizer.json``, ``tokenizer_config.json``) in ``folder``."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS_TOKEN, eos_token=BOS_TOKEN,
                                   unk_token=None, model_max_length=1_000_000)
    fast.save_pretrained(str(folder))
    return Path(folder)


def tokenizer_dir(root: str | Path | None = None) -> Path:
    """The folder of the shipped tokenizer files (under ``root``, default the zoo's checkpoints)."""
    from circuitry.zoo.registry import CHECKPOINT_DIR

    return Path(root if root is not None else CHECKPOINT_DIR) / TOKENIZER_NAME


@lru_cache(maxsize=4)
def load_tokenizer(folder: str | Path | None = None):
    """The shipped tokenizer as a ``transformers`` fast tokenizer (offline; read from ``folder``)."""
    from transformers import AutoTokenizer

    path = Path(folder) if folder is not None else tokenizer_dir()
    if not (path / "tokenizer.json").is_file():
        raise InputError(f"no tokenizer.json in {path}. Fix: reinstall circuitry, or build it with "
                         "`python -m circuitry.zoo.text_train tokenizer --out DIR`")
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def zoo_tokenizer(manifest):
    """The tokenizer a zoo model reads: the shipped BPE for a text model (``manifest.kind == "text"``), else ``None``
    (the synthetic-corpus models take token ids only)."""
    if getattr(manifest, "kind", None) != "text":
        return None
    return load_tokenizer(tokenizer_dir())


def encode_stream(tokenizer, text: str) -> np.ndarray:
    """Token ids of ``text`` (one chapter per line, the newline kept), concatenated: int64 ``[n_tokens]``."""
    lines = [ln + "\n" for ln in text.splitlines()]
    encs = tokenizer.backend_tokenizer.encode_batch(lines, add_special_tokens=False)
    return np.fromiter((i for e in encs for i in e.ids), dtype=np.int64)


class TextCorpusSpec(Frozen):
    """The natural-text corpus of a zoo recipe: the KJV training books, tokenized, cut into ``seq_len`` windows.

    ``d_vocab`` and ``seq_len`` are read by :class:`~circuitry.zoo.train.TrainRecipe`'s checks as for the
    synthetic corpus. ``text_sha256`` and ``tokenizer_sha256`` pin the text and the ``tokenizer.json`` bytes.
    """

    kind: Literal["kjv"] = "kjv"
    packages: dict[str, str] = dict(KJV_PACKAGES)
    licence: str = "public domain (King James Version, 1611); Debian packaging GPL-2+"
    heldout_books: tuple[str, ...] = HELDOUT_BOOKS
    text_sha256: str = KJV_TEXT_SHA256
    tokenizer: str = TOKENIZER_NAME
    tokenizer_sha256: str = ""
    vocab_size: int = VOCAB_SIZE
    seq_len: int = 512

    @property
    def d_vocab(self) -> int:
        """Vocabulary size of the tokenizer (id 0 is BOS)."""
        return self.vocab_size

    def describe(self) -> str:
        """One line for ``circuitry zoo list``: text, packages, licence, held-out books, tokenizer."""
        pkgs = ", ".join(f"{k} {v}" for k, v in self.packages.items())
        return (f"King James Bible (Debian {pkgs}; {self.licence}); held out: {', '.join(self.heldout_books)}; "
                f"tokenizer {self.tokenizer} (byte-level BPE), {self.seq_len}-token context")

    @property
    def n_symbols(self) -> int:
        """Token ids other than BOS (the repeated-random-token probes draw from ``1..n_symbols``)."""
        return self.vocab_size - 1


def text_batch(stream: np.ndarray, *, seq_len: int, seed: int, step: int, batch_size: int) -> np.ndarray:
    """Batch of training step ``step``: ``[BOS] + stream[o:o + seq_len - 1]`` at offsets from ``(seed, step)``."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0, step])))
    offsets = rng.integers(0, len(stream) - seq_len + 1, size=batch_size)
    rows = np.stack([stream[o:o + seq_len - 1] for o in offsets])
    return np.concatenate([np.zeros((batch_size, 1), dtype=np.int64), rows], axis=1)


def iter_text_batches(stream: np.ndarray, *, seq_len: int, seed: int, batch_size: int, start: int = 0,
                      short_steps: int = 0, short_seq_len: int = 64) -> Iterator[np.ndarray]:
    """The batches of steps ``start + 1, start + 2, ...`` (see :func:`text_batch`).

    Staged training (Press et al. 2021, "Shortformer", sec. 3): the first ``short_steps`` steps read
    ``short_seq_len``-token sequences, as many tokens per step (``batch_size * seq_len // short_seq_len`` rows).
    """
    step = start
    while True:
        step += 1
        if step <= short_steps:
            yield text_batch(stream, seq_len=short_seq_len, seed=seed, step=step,
                             batch_size=batch_size * seq_len // short_seq_len)
        else:
            yield text_batch(stream, seq_len=seq_len, seed=seed, step=step, batch_size=batch_size)


def heldout_windows(stream: np.ndarray, *, seq_len: int, stride: int, n_max: int | None = None) -> np.ndarray:
    """Evaluation sequences ``[BOS] + stream[k * stride : k * stride + seq_len - 1]``, int64 ``[n, seq_len]``."""
    starts = list(range(0, len(stream) - seq_len + 2, stride))[:n_max]
    rows = np.stack([stream[s:s + seq_len - 1] for s in starts])
    return np.concatenate([np.zeros((len(starts), 1), dtype=np.int64), rows], axis=1)
