"""Model access: the one adapter (over nnsight), the family table, per-head weights, loading."""

from circuitry.models.adapter import ModelAdapter
from circuitry.models.edits import Edit, LogitSlice, RunResult
from circuitry.models.families import FAMILIES, SITES, FamilySpec
from circuitry.models.info import ArchInfo
from circuitry.models.load import load_model
from circuitry.models.weights import HeadWeights

__all__ = ["Edit", "LogitSlice", "ModelAdapter", "RunResult", "FAMILIES", "SITES", "FamilySpec", "ArchInfo", "load_model",
           "HeadWeights"]
