"""The one settings object. Nothing else in salescast reads the environment."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from salescast.errors import ConfigurationError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

NegativeSalesPolicy = Literal["keep", "clip", "reject"]
ServerName = Literal["uvicorn", "granian"]

# The default pipeline: the model families `salescast train`, `backtest`, `pipeline run`, the worker and
# the demo train when none are named. LightGBM alone: on 10,000 daily series it trains and backtests in
# minutes, where the per-series families (ets, prophet) take far longer, and on the benchmarks they did
# not improve its ensemble enough to pay for that (README, Benchmarks).
DEFAULT_MODELS = "auto"  # the default pipeline of the data's frequency: models.catalog.default_families

# A model alias is a lower-case word that starts with a letter. A name made only of digits would be read
# as a version number by every lookup (`salescast models show demand 7`): it could be set, never found.
ALIAS_PATTERN = r"^[a-z][a-z0-9_-]{0,99}$"
# The aliases people move by hand. The registry always accepts `production` and `challenger` besides
# (deployments move those), whatever is configured.
DEFAULT_MODEL_ALIASES = "production,candidate,staging"


def _origins(value: str, valid: Callable[[str], bool], rule: str) -> str:
    """A comma-separated origin list, trimmed, without trailing slashes or repeats; refused, naming the bad
    ones, when an origin is not `valid`."""
    origins = [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
    if bad := [o for o in origins if not valid(o)]:
        raise ValueError(f"{rule}; got {', '.join(repr(o) for o in bad)}")
    return ",".join(dict.fromkeys(origins))


class Settings(BaseSettings):
    """salescast configuration, read from `SALESCAST_*` variables and an optional `.env`.

    The defaults are the embedded ones: a SQLite file and a local artifact folder under `home`,
    no Redis. Each backend is chosen by the scheme of its URL.
    """

    model_config = SettingsConfigDict(env_prefix="SALESCAST_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path(".salescast"), description="Folder for the embedded defaults.")
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL: sqlite:///path.db (default under home) or postgresql+psycopg://…",
    )
    database_read_url: str = Field(
        default="",
        description="SQLAlchemy URL of a read-only replica the API's read routes query; empty = database_url. "
        "Writes (keys, prediction log, alias moves, stored forecasts) always go to database_url.",
    )
    artifact_uri: str = Field(default="", description="file://folder (default under home) or s3://bucket/prefix")
    redis_url: str | None = Field(
        default=None, description="redis://host:port/db or rediss://… (TLS); unset = in-process cache"
    )
    redis_password: SecretStr | None = Field(
        default=None,
        description="Redis AUTH password (the ElastiCache auth token) for every redis:// or rediss:// URL, kept "
        "out of the URL so that it can come from Secrets Manager; unset = the URL's own, if any.",
    )
    compute_url: str = Field(
        default="",
        description="Where training runs: empty or local:// = this process; dask://host:port = a Dask scheduler; "
        "dask://local = a Dask cluster started on this machine.",
    )

    # Secrets Manager: a `*_secret` setting names a secret (name or ARN; `#key` picks one key of a JSON
    # secret) whose value becomes the setting it is named after, read once when the settings load.
    database_url_secret: str | None = Field(default=None, description="Secret holding database_url.")
    database_read_url_secret: str | None = Field(default=None, description="Secret holding database_read_url.")
    redis_url_secret: str | None = Field(default=None, description="Secret holding redis_url.")
    redis_password_secret: str | None = Field(
        default=None, description="Secret holding redis_password (the ElastiCache auth token)."
    )
    alert_url_secret: str | None = Field(default=None, description="Secret holding alert_url (e.g. a webhook URL).")
    pagerduty_routing_key_secret: str | None = Field(default=None, description="Secret holding pagerduty_routing_key.")
    secrets_endpoint_url: str | None = Field(
        default=None, description="Secrets Manager endpoint URL; unset = AWS (or AWS_ENDPOINT_URL)."
    )
    secrets_region: str | None = Field(
        default=None, description="Region of the Secrets Manager client; unset = the secret ARN's, else s3_region."
    )

    # Ingestion
    ingest_chunk_rows: int = Field(default=200_000, gt=0, description="Rows read and validated at a time.")
    ingest_max_bad_share: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="Refuse a whole file when more than this share of rows is bad.",
    )
    ingest_max_stored_rejects: int = Field(
        default=10_000, ge=0, description="Rejected rows stored per run; the counts always cover all of them."
    )
    negative_sales: NegativeSalesPolicy = Field(
        default="reject", description="Rows with negative units (returns): keep, clip to 0, or reject."
    )
    holiday_country: str = Field(default="US", description="ISO country code for holiday calendars.")

    # Artifact store (s3:// URIs); the endpoint is for S3-compatible servers such as MinIO or moto
    s3_endpoint_url: str | None = Field(default=None, description="S3 endpoint URL; unset = AWS.")
    s3_region: str = Field(default="us-east-1", description="Region of the S3 client.")
    kms_key_id: str | None = Field(
        default=None, description="KMS key for artifacts on S3 (SSE-KMS); unset = SSE-S3 (AES256)."
    )

    # Alerts
    alert_url: str = Field(
        default="log://",
        description="log://, http(s)://webhook, slack+https://… (or https://hooks.slack.com/…), pagerduty://[KEY] "
        "or sns://arn:aws:sns:…",
    )
    alert_retries: int = Field(default=3, ge=0, description="Webhook retries after the first attempt.")
    alert_backoff_seconds: float = Field(default=1.0, ge=0.0, description="First webhook retry delay; doubles.")
    alert_timeout_seconds: float = Field(default=5.0, gt=0.0, description="Timeout of one webhook request.")
    sns_endpoint_url: str | None = Field(default=None, description="SNS endpoint URL; unset = AWS.")
    pagerduty_routing_key: SecretStr | None = Field(
        default=None, description="PagerDuty Events API v2 routing key for alert_url pagerduty:// (out of the URL)."
    )
    pagerduty_events_url: str = Field(
        default="https://events.pagerduty.com/v2/enqueue",
        description="PagerDuty events endpoint (https://events.eu.pagerduty.com/v2/enqueue for EU accounts).",
    )

    # Monitoring (salescast monitor, the worker's monitor job, /metrics): live accuracy and drift
    monitor_cron: str = Field(
        default="30 * * * *", description="When the worker checks drift, freshness and volume (cron, UTC)."
    )
    live_accuracy_min_actuals: int = Field(
        default=200,
        ge=1,
        description="Actuals (series-days) a version's live accuracy needs before a rollout is judged by it.",
    )
    rollout_max_live_wape_ratio: float = Field(
        default=1.25,
        gt=1.0,
        description="Roll a candidate back when its live WAPE exceeds the baseline's by more than this factor "
        "(once both have live_accuracy_min_actuals actuals).",
    )
    drift_psi_threshold: float = Field(
        default=0.25, gt=0.0, description="Population stability index above which a feature of a category drifted."
    )
    drift_window_days: int = Field(
        default=28, gt=0, description="Days of the newest sales that drift checks compare with the training window."
    )
    drift_reference_days: int = Field(
        default=91, gt=0, description="Last days of a version's training window saved as its drift reference."
    )
    drift_min_rows: int = Field(
        default=100, gt=0, description="Rows (series-days) a category needs, recent and reference, to be checked."
    )
    freshness_max_days: float = Field(
        default=2.0, gt=0.0, description="Alert when a store's newest sales date is more than this many days old."
    )
    volume_drop_share: float = Field(
        default=0.5,
        gt=0.0,
        lt=1.0,
        description="Alert when the latest ingestion accepted less than (1 - this) x the median of the runs before.",
    )
    volume_runs: int = Field(
        default=7, ge=1, description="Earlier succeeded ingestion runs whose median the latest one is compared with."
    )
    metrics_database_seconds: float = Field(
        default=30.0, ge=0.0, description="How long /metrics reuses what it read from the database (0 = every scrape)."
    )

    # Model registry
    model_aliases: str = Field(
        default=DEFAULT_MODEL_ALIASES,
        description="Comma-separated alias names that may point at a model version (lower-case words starting "
        "with a letter); production and challenger are always accepted. Any other name is refused.",
    )

    # Worker (`salescast worker` and the Airflow DAGs). Cron expressions are read as cron and Airflow read
    # them (day of week 0 or 7 = Sunday), in UTC.
    drop_uri: str = Field(default="", description="Folder or s3://bucket/prefix where daily sales files arrive.")
    drop_preset: str | None = Field(default=None, description="Layout preset of the dropped files; unset = salescast.")
    ingest_cron: str = Field(default="0 2 * * *", description="When the worker ingests the drop (cron, UTC).")
    retrain_cron: str = Field(default="0 3 * * 1", description="When the worker retrains (cron, UTC; 1 = Monday).")
    model_name: str = Field(default="demand", description="Registered model name the worker trains.")
    pipeline_models: str = Field(
        default=DEFAULT_MODELS,
        description="Comma-separated model families the worker trains, and the CLI's when --models is not given; "
        "auto = the default pipeline of the data's frequency.",
    )
    pipeline_horizon: int = Field(default=28, gt=0, description="Forecast horizon and hold-out length, in periods.")
    pipeline_windows: int = Field(
        default=3, gt=0, description="Backtest windows of a worker retrain (all but the last calibrate)."
    )
    point_forecast: Literal["median", "mean"] = Field(
        default="median",
        description="What p50 aims at: the median (L1 LightGBM; best MASE and WAPE) or the mean (Tweedie "
        "LightGBM; unbiased totals). Period totals add daily means either way.",
    )

    # Serving (`salescast serve`). Cache and rate limiter are chosen by URL: memory:// (in-process) or
    # redis://host:port/db; empty = redis_url when that is set, else memory://.
    cache_url: str = Field(default="", description="memory:// or redis://…; empty = redis_url or memory://")
    cache_ttl_seconds: int = Field(default=3600, gt=0, description="Lifetime of a cached response.")
    cache_max_entries: int = Field(default=10_000, gt=0, description="Entries of the in-process cache (LRU).")
    cache_near_seconds: float = Field(
        default=60.0, ge=0, description="With Redis: how long a replica keeps its own copy of a hot entry (0 = off)."
    )
    rate_limit_url: str = Field(default="", description="memory:// or redis://…; empty = redis_url or memory://")
    rate_limit_per_second: float = Field(default=50.0, gt=0, description="Sustained requests per key per second.")
    rate_limit_burst: int = Field(default=100, gt=0, description="Requests a key may make at once (bucket size).")
    rate_limit_lease: int = Field(
        default=10,
        ge=0,
        description="With Redis: tokens a replica takes at once and spends locally (at most a quarter of the burst; "
        "0 = one round trip per request).",
    )
    open_read: bool = Field(
        default=False, description="Serve read routes without an API key (demo only; never in production)."
    )
    auth_cache_seconds: float = Field(
        default=5.0, ge=0, description="How long a replica trusts a looked-up key; revocation takes this long."
    )
    auth_outage_grace_seconds: float = Field(
        default=300.0,
        ge=0,
        description="While the database is unreachable, keep trusting a key verified within this many seconds "
        "(0 = refuse every key once its cache entry expires). A revocation applies once the database is back.",
    )
    max_request_body_bytes: int = Field(
        default=65_536, gt=0, description="Largest request body accepted (413 beyond it, before the key is checked)."
    )
    max_json_depth: int = Field(
        default=32, gt=0, description="Deepest nesting of arrays and objects in a JSON body (422 beyond it)."
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated client addresses whose X-Forwarded-Proto is believed (`*` = any): "
        "a request they forward as https gets Strict-Transport-Security. Empty = trust none.",
    )
    cors_origins: str = Field(
        default="",
        description="Comma-separated origins (scheme://host[:port]) a browser may call the API from; `*` = any "
        "origin (only without credentials). With dashboard_origins, the CORS allow-list; both empty = no CORS "
        "headers: browsers allow same-origin calls only.",
    )
    cors_allow_credentials: bool = Field(
        default=False,
        description="Let browsers send credentials (cookies, Authorization) cross-origin; needs named origins.",
    )
    dashboard_origins: str = Field(
        default="",
        description="Comma-separated origins (https://dashboard.example.com) of a static dashboard bundle "
        "(`salescast web build`) allowed to call the API from the browser (CORS). Empty = the served one only.",
    )
    hsts_max_age_seconds: int = Field(
        default=31_536_000, ge=0, description="max-age of Strict-Transport-Security on https responses."
    )
    what_if_price_factor: float = Field(
        default=100.0,
        gt=1.0,
        description="A what-if price must lie between 1/factor of the lowest and factor x the highest unit price "
        "the product's sales history knows (the whole catalogue's when the product has none).",
    )
    opentelemetry: bool = Field(
        default=False,
        description="FastAPI's native OpenTelemetry traces, metrics and logs (they need an OpenTelemetry SDK "
        "configured). Off, a request skips the check for one, about 5 % of a cached answer's time.",
    )
    serve_host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    serve_port: int = Field(default=8000, gt=0, lt=65536, description="Port the API listens on.")
    serve_workers: int = Field(default=1, gt=0, description="Server worker processes.")
    serve_server: ServerName = Field(
        default="uvicorn", description="HTTP server: uvicorn (httptools + uvloop) or granian (Rust; faster)."
    )
    stored_forecast_days: int = Field(
        default=91, gt=0, description="Days of forecasts stored per promoted version (a quarter, for serving)."
    )
    # Small batches keep the writer's bursts of CPU short: at 100 the slowest 1 % of cached answers were
    # about 25 % faster than at 500 (bench/serve.py, 2 cores shared with the load generator).
    prediction_log_batch: int = Field(default=100, gt=0, description="Prediction-log rows written per batch.")
    prediction_log_max_batch: int = Field(
        default=5_000,
        gt=0,
        description="Most rows in one write, taken when more than a batch waits (a busy server's log catches up).",
    )
    prediction_log_flush_seconds: float = Field(default=1.0, gt=0, description="Longest wait before a write.")
    prediction_log_process: bool = Field(
        default=True,
        description="Insert prediction-log rows from a child process of each server process, at a lower CPU "
        "priority, rather than from a thread of it (where inserting slows requests down).",
    )
    prediction_log_max_pending: int = Field(
        default=100_000, gt=0, description="Rows held while the database is down; older ones are dropped beyond."
    )
    prediction_log_max_retry_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Longest wait between write attempts while the database is down (the wait doubles from "
        "0.5 s up to this); rows written after an outage wait at most this long once it ends.",
    )
    deployment_check_seconds: float = Field(
        default=5.0, gt=0, description="How often a server checks its model aliases and rollout steps."
    )
    metrics_multiproc_dir: str | None = Field(
        default=None, description="Folder for Prometheus metrics shared by several server workers."
    )
    log_format: Literal["json", "text"] = Field(default="json", description="Log lines as JSON or plain text.")
    log_level: str = Field(default="INFO", description="Lowest level logged (DEBUG, INFO, WARNING, ...).")
    access_log: bool = Field(default=True, description="One log line per served request.")
    log_emf: bool = Field(
        default=False,
        description="Also write each request's count and latency to stdout in CloudWatch embedded metric "
        "format, so CloudWatch Logs makes metrics of them without an agent (Lambda, ECS with awslogs).",
    )
    emf_namespace: str = Field(default="salescast", min_length=1, description="CloudWatch namespace of EMF metrics.")

    @field_validator("holiday_country")
    @classmethod
    def _upper_country(cls, value: str) -> str:
        return value.upper()

    @field_validator("model_aliases")
    @classmethod
    def _alias_names(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        bad = [name for name in names if not re.fullmatch(ALIAS_PATTERN, name)]
        if bad:
            raise ValueError(
                f"alias names are lower-case words that start with a letter (a-z, 0-9, _ or -; at most 100 "
                f"characters), got {', '.join(repr(name) for name in bad)}"
            )
        return ",".join(dict.fromkeys(names))

    @field_validator("cors_origins")
    @classmethod
    def _origin_list(cls, value: str) -> str:
        return _origins(
            value,
            lambda o: o == "*" or re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?", o) is not None,
            "origins are scheme://host[:port] without a path, or *",
        )

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self) -> Settings:
        # Browsers refuse `Access-Control-Allow-Origin: *` on a credentialed request, and echoing any
        # origin instead would let every site call the API with the user's credentials.
        if self.cors_allow_credentials and "*" in self.cors_origin_list:
            raise ValueError(
                "SALESCAST_CORS_ORIGINS='*' cannot be combined with SALESCAST_CORS_ALLOW_CREDENTIALS=true: "
                "name the origins that may send credentials"
            )
        return self

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        """The CORS allow-list: `cors_origins` and the dashboard's `dashboard_origins`."""
        origins = f"{self.cors_origins},{self.dashboard_origins}".split(",")
        return tuple(dict.fromkeys(origin for origin in origins if origin))

    @model_validator(mode="after")
    def _read_secrets(self) -> Settings:
        """Fill each setting whose `*_secret` names a secret from Secrets Manager; refuse both at once."""
        for secret_setting, target in SECRET_SETTINGS.items():
            secret_id = getattr(self, secret_setting)
            if not secret_id:
                continue
            variable, target_variable = _variable(secret_setting), _variable(target)
            if target in self.model_fields_set:
                raise ConfigurationError(f"set {target_variable} or {variable}, not both")
            value = read_secret(secret_id, variable, self)
            setattr(self, target, SecretStr(value) if target in SECRET_STR_SETTINGS else value)
        return self

    @field_validator("dashboard_origins")
    @classmethod
    def _dashboard_origin_list(cls, value: str) -> str:
        return _origins(
            value,
            lambda o: re.fullmatch(r"https?://[^/?#\s]+", o) is not None,
            "dashboard origins are scheme://host[:port]",
        )

    @property
    def alias_names(self) -> tuple[str, ...]:
        """The configured alias names, in the order given (see `model_aliases`)."""
        return tuple(name for name in self.model_aliases.split(",") if name)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'salescast.db'}"

    @property
    def resolved_cache_url(self) -> str:
        return self.cache_url or self.redis_url or "memory://"

    @property
    def resolved_rate_limit_url(self) -> str:
        return self.rate_limit_url or self.redis_url or "memory://"

    @property
    def resolved_artifact_uri(self) -> str:
        return self.artifact_uri or f"file://{(self.home / 'artifacts').resolve()}"


# `*_secret` setting -> the setting its secret's value fills.
SECRET_SETTINGS = {
    "database_url_secret": "database_url",  # nosec B105: setting names
    "database_read_url_secret": "database_read_url",  # nosec B105: setting names
    "redis_url_secret": "redis_url",  # nosec B105: setting names
    "redis_password_secret": "redis_password",  # nosec B105: setting names
    "alert_url_secret": "alert_url",  # nosec B105: setting names
    "pagerduty_routing_key_secret": "pagerduty_routing_key",  # nosec B105: setting names
}
SECRET_STR_SETTINGS = frozenset({"redis_password", "pagerduty_routing_key"})
SECRETS_CONNECT_TIMEOUT_SECONDS = 3.0
SECRETS_READ_TIMEOUT_SECONDS = 5.0


def _variable(setting: str) -> str:
    return f"{Settings.model_config.get('env_prefix', '')}{setting}".upper()


def secrets_client(settings: Settings, secret_id: str) -> SecretsManagerClient:
    """A Secrets Manager client that gives up within seconds: settings load at start-up, where a hang
    would look like a stuck process. boto3 is imported here, by the processes that name a secret only."""
    import boto3
    from botocore.config import Config

    arn_region = secret_id.split(":")[3] if secret_id.startswith("arn:") and secret_id.count(":") >= 6 else None
    return boto3.client(
        "secretsmanager",
        endpoint_url=settings.secrets_endpoint_url,
        region_name=settings.secrets_region or arn_region or settings.s3_region,
        config=Config(
            connect_timeout=SECRETS_CONNECT_TIMEOUT_SECONDS,
            read_timeout=SECRETS_READ_TIMEOUT_SECONDS,
            retries={"total_max_attempts": 2, "mode": "standard"},
        ),
    )


def read_secret(reference: str, variable: str, settings: Settings) -> str:
    """The text of the secret `reference` names (`name-or-arn` or `name-or-arn#json-key`), read for the
    setting `variable`; a ConfigurationError of one line when it is missing, unreadable or unreachable.

    Args:
        reference: the secret's name or ARN, optionally followed by `#key` to take one key of a JSON secret
            (RDS's managed secrets hold {"username": …, "password": …}).
        variable: the environment variable that named it, for the error message.
        settings: the endpoint and region of the client.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    secret_id, _, key = reference.partition("#")
    try:
        answer = secrets_client(settings, secret_id).get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Error"), error.get("Message", "")
        if code == "ResourceNotFoundException":
            raise ConfigurationError(
                f"{variable} names secret {secret_id!r}, which Secrets Manager does not have"
            ) from None
        raise ConfigurationError(f"cannot read secret {secret_id!r} ({variable}): {code}: {message}") from None
    except BotoCoreError as exc:
        raise ConfigurationError(f"cannot reach Secrets Manager for {variable} ({secret_id!r}): {exc}") from None
    text = answer.get("SecretString")
    if text is None:
        raise ConfigurationError(f"secret {secret_id!r} ({variable}) holds binary data; store the value as text")
    if not key:
        return text
    try:
        value = json.loads(text)[key]
    except (ValueError, TypeError, KeyError):
        raise ConfigurationError(f"secret {secret_id!r} ({variable}) is not a JSON object with key {key!r}") from None
    return str(value)


def settings_error(error: ValidationError) -> ConfigurationError:
    """One line for a user: each bad setting by its variable's name, with the value and what is allowed."""
    prefix = Settings.model_config.get("env_prefix", "")
    problems = []
    for item in error.errors():
        message = item["msg"][:1].lower() + item["msg"][1:]
        if item["loc"]:
            name = f"{prefix}{item['loc'][0]}".upper()
            problems.append(f"{name}={item['input']!r} is not valid: {message}")
        else:  # a rule across settings
            problems.append(f"settings are not valid: {message}")
    return ConfigurationError("; ".join(sorted(problems)))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings from the environment (and `.env`); raises ConfigurationError when one is not valid."""
    try:
        return Settings()
    except ValidationError as exc:
        raise settings_error(exc) from None
