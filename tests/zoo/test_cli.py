"""``circuitry zoo`` subcommands, and the import-time budget of ``circuitry --help``."""

import subprocess
import sys
import time

from circuitry.cli import main


def test_help_is_fast_and_imports_no_torch():
    code = "import sys, circuitry.cli as c; c.build_parser(); print('torch' in sys.modules)"
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert time.perf_counter() - t0 < 2.0


def test_zoo_list(capsys):
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "attn-only-2l" in out and "llama-2l-gqa" in out and "2L x 8H" in out


def test_zoo_info(capsys):
    assert main(["zoo", "info", "attn-only-2l"]) == 0
    assert '"weights_sha256"' in capsys.readouterr().out


def test_zoo_info_unknown_name_is_a_clean_error(capsys):
    assert main(["zoo", "info", "nope"]) == 2
    assert "available are" in capsys.readouterr().err


def test_zoo_train_short_prefix(tmp_path, capsys):
    assert main(["zoo", "train", "attn-only-1l", "--out", str(tmp_path), "--steps", "3", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "trained attn-only-1l for 3 steps" in out
    assert (tmp_path / "attn-only-1l.safetensors").exists() and (tmp_path / "attn-only-1l.json").exists()


def test_zoo_train_rejects_bad_steps(capsys):
    assert main(["zoo", "train", "attn-only-1l", "--out", "unused", "--steps", "0"]) == 2
    assert "--steps=0" in capsys.readouterr().err
