"""Execute the notebooks of docs/notebooks/ the way a reader's Jupyter would, with this interpreter.

Each notebook runs with nbclient in a fresh folder laid out like the repository (``docs/notebooks/`` as the
working directory, ``examples`` linked beside ``docs``), so its relative paths work as they do from a
checkout, and writes its files there. The kernel is ``sys.executable -m ipykernel_launcher`` from a kernel
spec written for the run (nothing installed with ``ipykernel install``, no kernel of another environment
picked up), with one torch thread per kernel: two notebooks run at once on two cores.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "docs" / "notebooks"
KERNEL = "circuitry-tests"


@dataclass
class Executed:
    name: str
    nb: object
    folder: Path
    seconds: float

    def stream(self, cell: int | None = None) -> str:
        """Everything the code cells (or code cell number ``cell``, counted from 0) printed to stdout."""
        cells = [c for c in self.nb.cells if c.cell_type == "code"]
        pick = cells if cell is None else [cells[cell]]
        return "".join(o.get("text", "") for c in pick for o in c.get("outputs", [])
                       if o.get("output_type") == "stream" and o.get("name") == "stdout")

    def html(self) -> list[str]:
        """The HTML every code cell displayed (rich results), in order."""
        return [o["data"]["text/html"] for c in self.nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                if o.get("output_type") in ("execute_result", "display_data") and "text/html" in o.get("data", {})]

    def images(self) -> int:
        return sum("image/png" in o.get("data", {}) for c in self.nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))


def kernel_spec(root: Path) -> Path:
    """A kernel spec running this interpreter's ipykernel, in ``root/kernels``; returns that folder."""
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "circuitry tests", "language": "python",
        "env": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}}))
    return root / "kernels"


def execute(name: str, root: Path, kernels: Path, timeout: int = 600) -> Executed:
    """Run ``docs/notebooks/{name}.ipynb`` in ``root/name/docs/notebooks`` (outputs stay in memory)."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    base = root / name
    cwd = base / "docs" / "notebooks"
    cwd.mkdir(parents=True)
    (base / "examples").symlink_to(REPO / "examples")
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint('kernel:', sys.executable)"))  # checked by the tests
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    t = time.perf_counter()
    try:
        NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(cwd)}}).execute()
    finally:  # nbclient leaves a kernel it did not start running
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    return Executed(name, nb, cwd, time.perf_counter() - t)


def execute_all(names: list[str], workers: int = 2, root: Path | None = None) -> dict[str, Executed]:
    """Run every notebook, ``workers`` at a time (each in its own kernel process), in folders under ``root``
    (default: a new temporary folder, left for the caller to read)."""
    root = Path(root or tempfile.mkdtemp(prefix="circuitry-notebooks-"))
    kernels = kernel_spec(root)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = list(pool.map(lambda n: execute(n, root, kernels), names))
    return {e.name: e for e in done}


def names() -> list[str]:
    return sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))


if __name__ == "__main__":  # python -m tests.docs.notebooks: run them all and print the times
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    t = time.perf_counter()
    for n, e in execute_all(names()).items():
        print(f"{n}: {e.seconds:.1f} s, {e.images()} images, {len(e.html())} HTML outputs")
        print(e.stream())
    print(f"all: {time.perf_counter() - t:.1f} s")
