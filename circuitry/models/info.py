"""Architecture facts of a loaded model, read once from its config."""

from __future__ import annotations

from typing import Literal

from circuitry.errors import UnsupportedError
from circuitry.models.families import FAMILIES, HF_MODEL_TYPES, FamilySpec
from circuitry.provenance import Frozen


class ArchInfo(Frozen):
    """What analyses need to know about a model's shape.

    ``n_kv_heads < n_heads`` means grouped-query attention: query head ``h`` reads key/value head
    ``h // (n_heads // n_kv_heads)``.
    """

    family: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_model: int
    d_head: int
    d_vocab: int
    n_ctx: int
    d_mlp: int
    normalization: Literal["layernorm", "rmsnorm", "none"]
    positional: Literal["shortformer", "absolute", "rotary"]
    parallel_residual: bool = False
    bos_token_id: int | None = None
    #: ``c`` of a final logit soft-capping ``c * tanh(logits / c)`` (Gemma-2), applied by the adapter
    logit_softcap: float | None = None
    #: width of the logits when it differs from the input vocabulary (tracr models: their output values);
    #: ``None``: ``d_vocab``
    d_vocab_out: int | None = None
    #: attention sees only earlier positions (every Hugging Face causal LM; tracr models are bidirectional)
    causal: bool = True

    @property
    def n_outputs(self) -> int:
        """Width of the logits: ``d_vocab_out``, or ``d_vocab`` when it is ``None``."""
        return self.d_vocab if self.d_vocab_out is None else self.d_vocab_out

    @property
    def has_mlp(self) -> bool:
        return self.d_mlp > 0

    @property
    def group_size(self) -> int:
        return self.n_heads // self.n_kv_heads

    def kv_head(self, head: int) -> int:
        """The key/value head that query head ``head`` reads."""
        return head // self.group_size


def detect_family(module) -> FamilySpec:
    """Pick the family row for a torch module (a zoo model or a Hugging Face causal LM)."""
    from circuitry.zoo.arch import ZooTransformer

    if isinstance(module, ZooTransformer):
        return FAMILIES["zoo"]
    model_type = getattr(getattr(module, "config", None), "model_type", None)
    if model_type in HF_MODEL_TYPES:
        return FAMILIES[HF_MODEL_TYPES[model_type]]
    raise UnsupportedError(
        f"model of class {type(module).__name__} (model_type={model_type!r}) is not a supported family; "
        f"supported: zoo models and Hugging Face model types {sorted(HF_MODEL_TYPES)}. "
        "Fix: add a FamilySpec row (docs/adapter.md)"
    )


def arch_info(module, spec: FamilySpec) -> ArchInfo:
    """Read :class:`ArchInfo` from a module's config."""
    if spec.name == "zoo":
        c = module.cfg
        return ArchInfo(
            family="zoo", n_layers=c.n_layers, n_heads=c.n_heads, n_kv_heads=c.n_heads, d_model=c.d_model,
            d_head=c.d_head, d_vocab=c.d_vocab, n_ctx=c.n_ctx, d_mlp=c.d_mlp,
            normalization="layernorm" if c.normalization == "layernorm" else "none",
            positional=c.positional, bos_token_id=getattr(module, "bos_token_id", 0),
            d_vocab_out=getattr(c, "d_vocab_out", None), causal=getattr(c, "causal", True),
        )
    c = module.config
    n_heads = c.num_attention_heads if hasattr(c, "num_attention_heads") else c.n_head
    d_model = c.hidden_size if hasattr(c, "hidden_size") else c.n_embd
    n_kv = getattr(c, "num_key_value_heads", None) or n_heads
    d_head = getattr(c, "head_dim", None) or d_model // n_heads
    d_mlp = getattr(c, "intermediate_size", None) or getattr(c, "n_inner", None) or 4 * d_model
    n_ctx = getattr(c, "max_position_embeddings", None) or getattr(c, "n_positions", 2048)
    return ArchInfo(
        family=spec.name, n_layers=c.num_hidden_layers if hasattr(c, "num_hidden_layers") else c.n_layer,
        n_heads=n_heads, n_kv_heads=n_kv, d_model=d_model, d_head=d_head, d_vocab=c.vocab_size, n_ctx=n_ctx,
        d_mlp=d_mlp, normalization=spec.normalization, positional=spec.positional,
        parallel_residual=bool(getattr(c, "use_parallel_residual", False)),
        bos_token_id=getattr(c, "bos_token_id", None),
        logit_softcap=getattr(c, "final_logit_softcapping", None) or None,
    )
