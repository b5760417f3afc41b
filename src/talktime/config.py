"""Settings: one object read from `TALKTIME_*` environment variables and `talktime.toml`.

Environment variables win over the file; the file (path in `TALKTIME_CONFIG`, default
`./talktime.toml`) wins over the defaults. `talktime config` prints the result.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from talktime.errors import TalktimeError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

DEFAULT_DATABASE_URL = "sqlite:///./talktime.db"
MAX_SQLITE_BUSY_TIMEOUT_MS = 2**31 - 1
"""SQLite's busy timeout is a 32-bit int: `PRAGMA busy_timeout` quietly sets 0 (no wait at all)
for anything larger."""
MAX_CALL_HOLD_SECONDS = 7 * 24 * 3600
"""A call leg lasts at most a week (`talktime.rating.card.MAX_LEG_SECONDS`): a longer hold window
covers time no call can use, and reserving it walks every increment of it."""
MAX_SMS_TEXT_CHARS = 100_000
"""The API's text fields read up to this many characters, a bound past the default body limit
(64 KiB), so that any text longer than `sms_max_text_chars` reaches the service and is refused
as `text_too_long` with that limit; the setting cannot be larger."""
SECRET_SETTINGS = frozenset({"admin_key", "stripe_api_key", "database_url"})
"""Settings whose value is never repeated in an error message (a URL may hold a password)."""


class SettingsError(TalktimeError):
    """The settings (environment or TOML file) cannot be used; the sentence says which one."""

    code = "invalid_settings"
    status = 500
    title = "Invalid settings"


def config_path() -> Path | None:
    """Where the TOML settings file is read from: `TALKTIME_CONFIG`, or ``./talktime.toml``
    (read only if it is there); None when `TALKTIME_CONFIG` is empty (no file at all)."""
    named = os.environ.get("TALKTIME_CONFIG")
    if named is None:
        return Path("talktime.toml")
    return Path(named) if named else None


def _check_named_file(path: Path | None) -> None:
    """A file `TALKTIME_CONFIG` names must be there: a mistyped path silently left every
    setting at its default (a local SQLite file instead of the PostgreSQL it named)."""
    if path is None or "TALKTIME_CONFIG" not in os.environ:
        return
    if not path.exists():
        raise SettingsError(
            f"TALKTIME_CONFIG names the settings file {str(path)!r}, which does not exist; "
            "give the path of an existing file, or set TALKTIME_CONFIG empty to read no file"
        )
    if path.is_dir():  # read as no file at all: every setting silently at its default
        raise SettingsError(
            f"TALKTIME_CONFIG names {str(path)!r}, which is a directory; give the path of the "
            "settings file (such as talktime.toml in it)"
        )


class Settings(BaseSettings):
    """Everything an operator can set. Field `x` is `TALKTIME_X` or `x = ...` in the TOML file."""

    model_config = SettingsConfigDict(env_prefix="TALKTIME_", extra="forbid", frozen=True)

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host:port/db",
    )
    sqlite_synchronous: Literal["FULL", "NORMAL", "EXTRA"] = Field(
        "FULL", description="SQLite synchronous pragma; FULL makes an acknowledged write durable"
    )
    sqlite_busy_timeout_ms: int = Field(
        5000,
        ge=0,
        le=MAX_SQLITE_BUSY_TIMEOUT_MS,
        description="how long SQLite waits on a lock (SQLite reads a larger value as 0)",
    )
    group_commit: bool = Field(
        True,
        description="one writer thread per process commits the send-SMS charges of concurrent "
        "requests together (one transaction, one fsync); false commits each request on its own",
    )
    group_commit_window_ms: float = Field(
        0.0,
        ge=0,
        le=100,
        description="how long the group-commit writer waits for more charges after the first; "
        "0 (default) takes whatever is already queued (charges arriving during a commit form "
        "the next batch)",
    )
    pg_pool_size: int = Field(
        10, ge=1, le=1000, description="PostgreSQL connections kept per process"
    )
    pg_max_overflow: int = Field(
        10, ge=0, le=1000, description="extra PostgreSQL connections under load"
    )
    pg_pool_timeout_seconds: float = Field(
        30,
        gt=0,
        le=600,
        description="how long a request waits for a free PostgreSQL connection before it is "
        "answered 503 service_busy",
    )
    pg_connect_timeout_seconds: int = Field(
        10,
        ge=1,
        le=3600,
        description="how long opening a PostgreSQL connection may take (libpq connect_timeout)",
    )
    pg_lock_timeout_ms: int = Field(
        5000,
        ge=0,
        le=2147483647,
        description="how long a PostgreSQL statement waits for a lock held by another session "
        "(an account another transaction holds) before it fails and the request is answered "
        "503; 0 waits for ever (lock_timeout)",
    )
    host: str = Field("127.0.0.1", description="address `talktime serve` listens on")
    port: int = Field(8000, ge=0, le=65535, description="port `talktime serve` listens on")
    workers: int = Field(1, ge=1, description="HTTP worker processes for `talktime serve`")
    log_format: Literal["console", "json"] = Field(
        "console", description="console: readable lines; json: one JSON object per line"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    admin_key: SecretStr | None = Field(None, description="API key with admin rights")
    webhooks_allow_private: bool = Field(
        False,
        description="let webhook URLs point at loopback and private addresses (development, tests)",
    )
    webhooks_timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="how long one webhook delivery attempt may take"
    )
    webhooks_retention_days: int = Field(
        30,
        ge=1,
        le=3650,
        description="days after its creation a finished webhook delivery (delivered, failed, "
        "skipped) and its attempt log are kept, and an event with no delivery left",
    )
    max_body_bytes: int = Field(
        65536, ge=1024, description="largest request body the API accepts, in bytes"
    )
    sms_max_text_chars: int = Field(
        1600,
        ge=1,
        description=f"longest SMS text the API accepts, in characters (at most "
        f"{MAX_SMS_TEXT_CHARS})",
    )
    rate_cards_dir: str = Field(
        "./rate_cards",
        description="where `talktime rates import` stores rate card versions (<name>/<version>/)",
    )
    rate_card: str = Field("default", description="rate card used when a request names none")
    call_hold_seconds: int = Field(
        300,
        ge=1,
        le=MAX_CALL_HOLD_SECONDS,
        description="call time reserved per authorize or extend (whole increments), at most a "
        "call leg's longest (604800 s, a week)",
    )
    payment_provider: Literal["manual", "test", "stripe"] = Field(
        "manual",
        description="who takes card payments: manual (operator top-ups only), test, or stripe",
    )
    stripe_api_key: SecretStr | None = Field(None, description="Stripe secret key (sk_...)")
    stripe_api_base: str | None = Field(
        None, description="Stripe API base URL; leave unset for https://api.stripe.com"
    )
    recharge_max_declines: int = Field(
        3, ge=1, description="consecutive declines after which auto-recharge is turned off"
    )
    recharge_backoff_seconds: int = Field(
        60, ge=0, description="wait before retrying a declined recharge; doubles per decline"
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_number(cls, value: object, info: ValidationInfo) -> object:
        """Refuse a TOML boolean for a number: pydantic read `port = true` as port 1."""
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and field.annotation in (int, float):
            raise ValueError("must be a number, not a boolean")
        return value

    @field_validator("sms_max_text_chars")
    @classmethod
    def _text_limit(cls, value: int) -> int:
        if value > MAX_SMS_TEXT_CHARS:
            raise ValueError(
                f"must be at most {MAX_SMS_TEXT_CHARS} characters, the longest text the API "
                "reads (a longer one is refused before this limit applies)"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
            backend = url.get_backend_name()
        except (ArgumentError, ValueError):
            raise ValueError(
                "not a database URL; use sqlite:///path/talktime.db or "
                "postgresql+psycopg://user:password@host:5432/dbname"
            ) from None
        if url.host and "@" in url.host:  # the rest of the password would be read as the host
            raise ValueError(
                "the user name or password holds an '@': write each '@' in them as %40 "
                "(percent-encode them)"
            )
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(
                f"unsupported database {backend!r}; use a sqlite:// or postgresql:// URL"
            )
        if backend == "sqlite":
            _check_sqlite_options(url)
        return value

    @field_validator("stripe_api_base")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit

        if value is None:
            return value
        try:
            parts = urlsplit(value)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
            _ = parts.port  # a port that is not a number raises ValueError
        except ValueError:
            ok = False
        if not ok:
            raise ValueError("not an http(s) URL such as https://api.stripe.com")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = config_path()
        if path is None:
            return (init_settings, env_settings)
        toml = TomlConfigSettingsSource(settings_cls, toml_file=path)
        return (init_settings, env_settings, toml)

    def public_dict(self) -> dict[str, object]:
        """The settings as plain data with secrets masked and URL passwords hidden."""
        out: dict[str, object] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else ""
            out[name] = value
        out["database_url"] = hide_password(self.database_url)
        if self.stripe_api_base is not None:
            out["stripe_api_base"] = hide_userinfo(self.stripe_api_base)
        return out


def _check_sqlite_options(url: URL) -> None:
    """Raise ValueError for a SQLite URL option the driver cannot use: a value it cannot read
    (`?timeout=abc` was a traceback when the engine was made) or an option it would ignore
    (`?bogusopt=1` was a warning on stderr); `pool` is talktime's own."""
    import warnings

    from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", SAWarning)
        try:
            SQLiteDialect_pysqlite().create_connect_args(url.difference_update_query(["pool"]))
        except SAWarning:
            unknown = sorted(set(url.query) - {"pool"} - _SQLITE_OPTIONS)
            raise ValueError(
                f"SQLite's driver does not take the connection option(s) {', '.join(unknown)} "
                f"(it takes {', '.join(sorted(_SQLITE_OPTIONS))}, and others only with uri=true)"
            ) from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"a SQLite connection option cannot be read: {exc}") from None


_SQLITE_OPTIONS = frozenset(
    {"timeout", "isolation_level", "detect_types", "check_same_thread", "cached_statements", "uri"}
)
"""The URL options SQLAlchemy's pysqlite dialect passes to the driver."""


SECRET_URL_OPTIONS = ("password", "passwd", "sslpassword")
"""Query parameters of a database URL that hold a secret (libpq's `sslpassword` unlocks the
client key)."""


def hide_password(url: str) -> str:
    """The database URL with any password replaced by ***, the one after the user name and a
    `password=` or `sslpassword=` query parameter (libpq takes them all) alike; `***` if it
    cannot be parsed."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return "***"
    hidden = "talktime-hidden-password"  # rendered URL-encoded otherwise: %2A%2A%2A
    if parsed.host and "@" in parsed.host:  # a raw '@' in the password: the rest is no host
        parsed = parsed.set(password=hidden, host=parsed.host.rsplit("@", 1)[1])
    secret = {k: hidden for k in parsed.query if k.lower() in SECRET_URL_OPTIONS}
    rendered = parsed.update_query_dict(secret).render_as_string(hide_password=True)
    return rendered.replace(hidden, "***")


def hide_userinfo(url: str) -> str:
    """An http(s) URL with its whole user information (user name and password) replaced by
    ***: Stripe takes its secret key as the user name of basic auth, with or without a
    password (a user name beside a password was shown before 1 Dec)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def _misspelt_environment() -> None:
    """Refuse a `TALKTIME_*` variable that is no setting but close to one (`TALKTIME_DATABASE_ULR`):
    the environment's unknown names are ignored (other tools' variables may share the prefix),
    so a typo left the setting at its default without a word (a fresh `./talktime.db` instead
    of the PostgreSQL it named). A name close to none stays ignored."""
    known = [f"TALKTIME_{name.upper()}" for name in Settings.model_fields] + ["TALKTIME_CONFIG"]
    for name in sorted(os.environ):
        upper = name.upper()
        if not upper.startswith("TALKTIME_") or upper in known:
            continue
        close = difflib.get_close_matches(upper, known, n=1, cutoff=0.85)
        if close:
            raise SettingsError(
                f"unknown setting {name} in the environment (did you mean {close[0]}?); fix or "
                "remove it"
            )


def load_settings() -> Settings:
    """Read the settings, or raise `SettingsError` naming the setting, where it was given (the
    environment variable or the TOML file) and what is wrong, instead of a validation dump."""
    path = config_path()
    _check_named_file(path)
    _misspelt_environment()
    try:
        return Settings()
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"the settings file {str(path)!r} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise SettingsError(
            f"the settings file {str(path)!r} is not UTF-8 text (byte {exc.start}): save it "
            "as UTF-8"
        ) from None
    except OSError as exc:
        raise SettingsError(
            f"the settings file {str(path)!r} cannot be read: {exc.strerror or exc}"
        ) from None
    except ValidationError as exc:
        raise SettingsError(_describe(exc, path)) from None


def _describe(exc: ValidationError, path: Path | None) -> str:
    """One sentence per problem of a settings ValidationError."""
    environ = {name.upper() for name in os.environ}
    known = list(Settings.model_fields)
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error.get("loc", ())) or "settings"
        env = f"TALKTIME_{name.upper()}"
        where = env if env in environ else f"{name} in {str(path)!r}"
        if error.get("type") == "extra_forbidden":
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"unknown setting {name!r} in {str(path)!r}{hint}")
            continue
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        shown = _shown(name, error.get("input"))
        problems.append(f"setting {where}{shown}: {message}")
    return "; ".join(problems) + "; fix or remove it"


def _shown(name: str, value: object) -> str:
    """` = <value>` for a refused setting's message; nothing for a secret, and a URL with the
    credentials in it hidden."""
    if name in SECRET_SETTINGS or isinstance(value, dict):
        return ""
    if name == "stripe_api_base" and isinstance(value, str):
        try:
            value = hide_userinfo(value)
        except ValueError:  # not even split into parts: it may still hold a key
            return ""
    return f" = {value!r}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once (`SettingsError` when they cannot be used)."""
    return load_settings()
