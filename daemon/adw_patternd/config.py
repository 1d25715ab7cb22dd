"""config.yaml, loaded with yaml.safe_load into a typed object.

Unknown keys and wrong types are refused with one line: ``key: problem (file)``.
Relative paths are relative to the config file.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timezone
from pathlib import Path

import yaml

from .core.errors import ConfigError
from .core.pricing import DEFAULT_PRICES, Price, PriceRule, exact_key
from .core.commands import CommandRule
from .core.rules import BUILTIN_RULES, Choice, RequestRule, RoleRule, RuleSet, SignatureRule
from .sources import kinds

ENV_VAR = "ADW_PATTERND_CONFIG"
_ROOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Root:
    """A folder of ADW workflow folders (``kind`` ""), or the folder of one kind of agent
    sessions (sources/kinds.py names the kinds: a session store, an agent's home...)."""

    path: Path
    name: str
    sessions: bool = False
    include_sessions: bool = True  # a store's sessions that no ADW run claims are workflows of their own
    codex: bool = False
    kind: str = kinds.ADW

    @property
    def shape(self) -> str:
        """How its sessions are read (sources/kinds.py: SessionKind.shape); "" for ADW folders."""
        return kinds.kind(self.kind).shape if self.kind else ""


@dataclass(frozen=True)
class LogConfig:
    file: Path | None = None
    level: str = "INFO"
    format: str = "text"  # text or json


@dataclass(frozen=True)
class WatchConfig:
    active_window_s: float = 600.0  # a workflow unchanged this long loses its live watch
    max_active_workflows: int = 256  # live (inotify) watches at most; the rest are swept
    sweep_interval_s: float = 9.0  # each dormant workflow active in the last day is stat-checked this often
    dormant_sweep_interval_s: float = 60.0  # ... and one unchanged for a week or more, this often


@dataclass(frozen=True)
class MetricsConfig:
    textfile: Path | None = None  # Prometheus text format, for node_exporter's textfile collector
    interval_s: float = 15.0  # the daemon rewrites it this often


@dataclass(frozen=True)
class ReportConfig:
    html: Path | None = None  # the daemon keeps this HTML report fresh (written atomically)
    every_s: float = 600.0  # ... rewriting it this often


@dataclass(frozen=True)
class ServeConfig:
    bind: str = "127.0.0.1"  # loopback unless told otherwise; elsewhere a token is required
    port: int = 8765
    token: str | None = None  # or ADW_PATTERND_SERVE_TOKEN; required when bound beyond loopback
    in_daemon: bool = False  # `run` serves the pages too, from its own thread and read connection


@dataclass(frozen=True)
class Config:
    path: Path
    roots: tuple[Root, ...]
    database: str
    claude_projects: tuple[Root, ...] = ()  # session stores
    codex_homes: tuple[Root, ...] = ()  # Codex CLI homes (~/.codex)
    homes: tuple[Root, ...] = ()  # the roots of every other kind (sources/kinds.py), each under its kind's key
    log: LogConfig = LogConfig()
    debounce_ms: int = 200
    reconcile_interval_s: float = 300.0  # workflows changed in the last week are fingerprinted this often
    reconcile_all_interval_s: float = 21600.0  # ... and every workflow, this often
    max_file_bytes: int = 16 * 1024 * 1024
    tool_cost_ratio: float = 0.05
    drop_deleted_workflows: bool = False
    sync_batch_size: int = 256
    stale_after_s: float = 3600.0  # a transcript without a result line unchanged this long: interrupted
    watch: WatchConfig = WatchConfig()
    metrics: MetricsConfig = MetricsConfig()
    report: ReportConfig = ReportConfig()
    serve: ServeConfig = ServeConfig()
    host: str = ""  # the name each workflow row written here records (default: the machine's name)
    prices: tuple[PriceRule, ...] = DEFAULT_PRICES
    rules: RuleSet = BUILTIN_RULES
    recipes: dict = field(default_factory=dict, compare=False)  # signature (or category:sub:*) -> how to automate it
    # (signature, YYYY-MM-DD, note): automations declared here, recorded in the review trail by sync and the daemon
    automated: tuple = ()
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    def root(self, name: str) -> Root:
        """The configured root or session store of this name (KeyError for none: a workflow
        id names its root)."""
        for r in self.all_roots:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def sources(self) -> tuple[Root, ...]:
        """Every root of agent sessions, of any kind (ADW roots apart)."""
        return self.claude_projects + self.codex_homes + self.homes

    @property
    def all_roots(self) -> tuple[Root, ...]:
        """ADW roots first: the sessions their runs claim are then known when the stores are read."""
        return self.roots + self.sources

    def of_shape(self, shape: str) -> tuple[Root, ...]:
        return tuple(r for r in self.sources if r.shape == shape)

    @property
    def joining(self) -> bool:
        """Whether a session store is configured whose sessions may belong to ADW workflows."""
        return bool(self.of_shape(kinds.JOINED))

    def with_sources_of(self, old: "Config") -> "Config":
        """This configuration with ``old``'s folders of sessions (they change at a restart)."""
        from dataclasses import replace

        return replace(self, claude_projects=old.claude_projects, codex_homes=old.codex_homes, homes=old.homes)

    def agent_roots(self, agent: str) -> tuple[tuple[str, ...], bool]:
        """The roots condition of `--agent` (queries.py: (names, True) only those, (names, False)
        all but those): the agent of ADW runs has every root but the other agents'."""
        if agent == kinds.ADW_AGENT:
            return tuple(r.name for r in self.sources if self.agent_of(r.name) != agent), False
        return tuple(r.name for r in self.sources if self.agent_of(r.name) == agent), True

    def agent_of(self, root_name: str) -> str:
        """Which agent wrote a root's workflows, by the root's kind (ADW runs: Claude Code's)."""
        root = next((r for r in self.sources if r.name == root_name), None)
        return kinds.agent_of(root.kind if root is not None else kinds.ADW)

    @property
    def is_postgres(self) -> bool:
        return self.database.startswith(("postgresql://", "postgres://"))

    def derivation_key(self) -> str:
        """What the stored numbers depend on besides the files: when it changes, a sync re-derives."""
        return repr((self.prices, self.rules, self.tool_cost_ratio, self.stale_after_s))


def default_config_path() -> Path:
    return Path(os.environ.get(ENV_VAR) or "config.yaml")


class _Reader:
    """Typed access to one mapping of the YAML document, reporting ``key: problem (file)``."""

    def __init__(self, data: dict, prefix: str, file: Path):
        self.data, self.prefix, self.file = data, prefix, file

    def fail(self, key: str, problem: str):
        raise ConfigError(f"{self.prefix}{key}: {problem} ({self.file})")

    def only(self, allowed: set[str]):
        for key in self.data:
            if key not in allowed:
                hint = f"; expected one of {', '.join(sorted(allowed))}"
                self.fail(str(key), "unknown key" + hint)

    def get(self, key: str, kind, default, *, minimum=None, choices=None):
        if key not in self.data or self.data[key] is None:
            return default
        v = self.data[key]
        if kind is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, kind) or (kind is not bool and isinstance(v, bool)):
            self.fail(key, f"expected {kind.__name__}, got {type(v).__name__} {v!r}")
        if minimum is not None and v < minimum:
            self.fail(key, f"must be at least {minimum}, got {v!r}")
        if choices and v not in choices:
            self.fail(key, f"must be one of {', '.join(choices)}, got {v!r}")
        return v

    def setting(self, cls, key: str, **limits):
        """The value of ``key``, typed and defaulted as the dataclass ``cls`` declares it: the
        defaults are stated once, on the dataclasses above."""
        default = next(f.default for f in fields(cls) if f.name == key)
        return self.get(key, type(default), default, **limits)

    def settings(self, cls, limits: dict[str, dict]) -> dict:
        """Every plain setting of ``cls`` present in ``limits`` (name -> get's keyword arguments)."""
        return {key: self.setting(cls, key, **kw) for key, kw in limits.items()}

    def sub(self, key: str) -> "_Reader":
        v = self.data.get(key) or {}
        if not isinstance(v, dict):
            self.fail(key, f"expected a mapping, got {type(v).__name__}")
        return _Reader(v, f"{self.prefix}{key}.", self.file)

    def items(self, key: str) -> list["_Reader"]:
        v = self.data.get(key) or []
        if not isinstance(v, list):
            self.fail(key, f"expected a list, got {type(v).__name__}")
        out = []
        for i, item in enumerate(v):
            if not isinstance(item, dict):
                self.fail(f"{key}[{i}]", f"expected a mapping, got {type(item).__name__}")
            out.append(_Reader(item, f"{self.prefix}{key}[{i}].", self.file))
        return out

    def words(self, key: str, required: bool = True) -> tuple[str, ...]:
        v = self.data.get(key)
        if v is None and not required:
            return ()
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not v or not all(isinstance(w, str) and w.strip() for w in v):
            self.fail(key, "expected a non-empty list of keywords")
        return tuple(w.strip().lower() for w in v)


def _resolve(base: Path, value: str) -> Path:
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else (base / p)


def _rules(r: _Reader) -> RuleSet:
    r.only({"mode", "request_rules", "error_rules", "template_rules", "role_rules", "command_rules"})
    mode = r.get("mode", str, "extend", choices=("extend", "replace"))
    request = []
    for item in r.items("request_rules"):
        item.only({"category", "keywords", "subcategories", "default_subcategory", "target"})
        subs = []
        for s in item.items("subcategories"):
            s.only({"value", "keywords"})
            value = s.get("value", str, None) or s.fail("value", "required")
            subs.append(Choice(value, s.words("keywords", required=False) or (value,)))
        category = item.get("category", str, None) or item.fail("category", "required")
        request.append(RequestRule(category, item.words("keywords"), tuple(subs),
                                   item.get("default_subcategory", str, "generic"), item.get("target", str, "*")))
    error = []
    for item in r.items("error_rules"):
        item.only({"keywords", "signature"})
        error.append(SignatureRule(item.words("keywords"), item.get("signature", str, None) or item.fail("signature", "required")))
    template = []
    for item in r.items("template_rules"):
        item.only({"keywords", "signature"})
        template.append(SignatureRule(item.words("keywords"), item.get("signature", str, None)))
    roles = []
    for item in r.items("role_rules"):
        item.only({"agent", "signature"})
        roles.append(RoleRule(item.get("agent", str, None) or item.fail("agent", "required: an agent folder name or glob"),
                              item.get("signature", str, None) or item.fail("signature", "required")))
    commands = []
    for item in r.items("command_rules"):
        item.only({"starts", "signature"})
        starts = item.words("starts")
        commands.append(CommandRule(tuple(tuple(s.split()) for s in starts),
                                    item.get("signature", str, None) or item.fail("signature", "required")))
    for sig in ([e.signature for e in error] + [t.signature for t in template if t.signature]
                + [x.signature for x in roles] + [c.signature for c in commands]):
        if sig.count(":") != 2:
            r.fail("rules", f"signature {sig!r} must be category:subcategory:target")
    if mode == "replace":
        return RuleSet(tuple(request), tuple(error), tuple(template), tuple(roles), tuple(commands))
    # Extensions go first so that they can override a built-in row.
    return RuleSet(tuple(request) + BUILTIN_RULES.request, tuple(error) + BUILTIN_RULES.error,
                   tuple(template) + BUILTIN_RULES.template, tuple(roles) + BUILTIN_RULES.roles,
                   tuple(commands) + BUILTIN_RULES.commands)


def _prices(r: _Reader) -> tuple[PriceRule, ...]:
    custom = []
    for prefix in r.data:
        p = r.sub(str(prefix))
        p.only({"input", "output", "cache_write", "cache_read", "cache_write_1h"})
        vals = [p.get(k, float, None, minimum=0.0) for k in ("input", "output", "cache_write", "cache_read")]
        if None in vals:
            p.fail("input", "all of input, output, cache_write and cache_read are required (USD per million tokens)")
        # cache_write is the 5-minute write; the 1-hour one is 2x input unless given.
        key = str(prefix).lower()
        custom.append(PriceRule(key, Price(*vals, p.get("cache_write_1h", float, None, minimum=0.0)),
                                exact=exact_key(key)))
    overridden = {c.prefix for c in custom}
    return tuple(custom) + tuple(d for d in DEFAULT_PRICES if d.prefix not in overridden)


def _roots(r: _Reader, base: Path) -> tuple[Root, ...]:
    roots: list[Root] = []
    for item in r.items("roots"):
        item.only({"path", "name"})
        path = item.get("path", str, None) or item.fail("path", "required: the folder holding <adw_id>/ workflow folders")
        resolved = _resolve(base, path)
        name = item.get("name", str, None) or resolved.name
        if not _ROOT_NAME.match(name):
            item.fail("name", f"{name!r} must be letters, digits, '_', '.' or '-' (it prefixes workflow ids)")
        if name in {root.name for root in roots}:
            item.fail("name", f"{name!r} is used by two roots; each root needs its own name")
        roots.append(Root(resolved, name))
    if not roots and not any(r.data.get(k.config_key) for k in kinds.KINDS):
        others = ", ".join(k.config_key for k in kinds.KINDS if k.shape == kinds.GENERIC)
        r.fail("roots", "at least one root (a list of {path, name}), session store (claude_projects) or Codex home "
                        f"(codex_homes) is required, or a folder of another agent's sessions ({others})")
    return tuple(roots)


def _automated(r: _Reader) -> tuple[tuple[str, str, str | None], ...]:
    out = []
    for item in r.items("automated"):
        if True in item.data:  # YAML 1.1 reads a bare `on:` key as true
            item.fail("on", "write the day as `date:` (YAML reads a bare `on` key as true)")
        item.only({"signature", "date", "note"})
        sig = item.get("signature", str, None) or item.fail("signature", "required: the pattern a tool now does")
        if sig.count(":") != 2:
            item.fail("signature", f"{sig!r} must be category:subcategory:target")
        on = item.data.get("date")
        try:
            day = on if isinstance(on, date) else date.fromisoformat(str(on).strip())
        except ValueError:
            item.fail("date", f"{on!r} is not a date: the UTC day the tool took over, as YYYY-MM-DD")
        if day > datetime.now(timezone.utc).date():
            item.fail("date", f"{day} is in the future: declare an automation from the day it takes effect")
        out.append((sig, day.isoformat(), item.get("note", str, None)))
    return tuple(out)


def _recipes(r: _Reader) -> dict[str, str]:
    out = {}
    for key, text in r.data.items():
        if not isinstance(key, str) or key.count(":") != 2:
            r.fail(str(key), "a recipe's key is a signature (category:subcategory:target, or with * for any target)")
        if not isinstance(text, str) or not text.strip():
            r.fail(key, "expected the recipe as text: what a deterministic replacement does")
        out[key] = " ".join(text.split())
    return out


def _sources(r: _Reader, base: Path, roots: tuple[Root, ...]) -> dict[str, tuple[Root, ...]]:
    """Each kind's roots (sources/kinds.py), by kind name, named apart from every root before."""
    found: dict[str, tuple[Root, ...]] = {}
    taken = roots
    for k in kinds.KINDS:
        found[k.name] = _session_folders(r, base, taken, k)
        taken += found[k.name]
    return found


def _session_folders(r: _Reader, base: Path, taken_by: tuple[Root, ...], k: kinds.SessionKind) -> tuple[Root, ...]:
    """The folders of one kind of session source (its config key: a list of {path, name},
    with include_sessions where the kind has it), each named apart from every root and
    source before it."""
    found: list[Root] = []
    taken = {root.name for root in taken_by}
    # The two first kinds keep the flags their code and tests have always read.
    flags = {"sessions": k.shape == kinds.JOINED, "codex": k.shape == kinds.ROLLOUTS}
    for item in r.items(k.config_key):
        item.only(set(k.keys))
        path = item.get("path", str, None) or item.fail("path", f"required: {k.describe}")
        name = item.get("name", str, None) or k.default_name
        if not _ROOT_NAME.match(name):
            item.fail("name", f"{name!r} must be letters, digits, '_', '.' or '-' (it prefixes workflow ids)")
        if name in taken:
            item.fail("name", f"{name!r} is already the name of a root or another folder of sessions; give each "
                              "its own name")
        taken.add(name)
        found.append(Root(_resolve(base, path), name, include_sessions=item.get("include_sessions", bool, True),
                          kind=k.name, **flags))
    return tuple(found)


def parse_config(data, file: Path) -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"(top level): expected a mapping of keys, got {type(data).__name__} ({file})")
    r = _Reader(data, "", file)
    r.only({f.name for f in fields(Config)} - {"path", "raw", "rules", "homes"} | {"detection"}
           | {k.config_key for k in kinds.KINDS})
    base = file.parent
    roots = _roots(r, base)
    database = r.get("database", str, None) or r.fail("database", "required: a SQLite file path or a postgresql:// URL")
    if not database.startswith(("postgresql://", "postgres://")):
        database = str(_resolve(base, database))
    watch = r.sub("watch")
    watch.only({f.name for f in fields(WatchConfig)})
    watching = watch.settings(WatchConfig, {"active_window_s": {"minimum": 0.0}, "max_active_workflows": {"minimum": 0},
                                            "sweep_interval_s": {"minimum": 0.5},
                                            "dormant_sweep_interval_s": {"minimum": 0.5}})
    sweep, dormant = watching["sweep_interval_s"], watching["dormant_sweep_interval_s"]
    if dormant < sweep:
        watch.fail("dormant_sweep_interval_s", f"{dormant} is less than sweep_interval_s ({sweep}): the ceiling of the "
                                               "backoff cannot be below where it starts")
    metrics = r.sub("metrics")
    metrics.only({f.name for f in fields(MetricsConfig)})
    textfile = metrics.get("textfile", str, None)
    if textfile and not textfile.endswith(".prom"):
        metrics.fail("textfile", f"{textfile!r} must end in .prom (node_exporter's textfile collector reads only those)")
    report = r.sub("report")
    report.only({f.name for f in fields(ReportConfig)})
    html = report.get("html", str, None)
    if html and not html.endswith((".html", ".htm")):
        report.fail("html", f"{html!r} must end in .html (it is one self-contained page)")
    return Config(
        path=file,
        host=_host(r),
        serve=_serve(r.sub("serve")),
        roots=roots,
        database=database,
        claude_projects=(found := _sources(r, base, roots))["claude"],
        codex_homes=found["codex"],
        homes=tuple(root for k in kinds.KINDS if k.shape == kinds.GENERIC for root in found[k.name]),
        log=_log(r.sub("log"), base),
        **r.settings(Config, {"debounce_ms": {"minimum": 0}, "reconcile_interval_s": {"minimum": 0.0},
                              "reconcile_all_interval_s": {"minimum": 0.0}, "max_file_bytes": {"minimum": 1024},
                              "tool_cost_ratio": {"minimum": 0.0}, "drop_deleted_workflows": {},
                              "sync_batch_size": {"minimum": 1}, "stale_after_s": {"minimum": 1.0}}),
        watch=WatchConfig(**watching),
        metrics=MetricsConfig(_resolve(base, textfile) if textfile else None,
                              metrics.setting(MetricsConfig, "interval_s", minimum=1.0)),
        report=ReportConfig(_resolve(base, html) if html else None,
                            report.setting(ReportConfig, "every_s", minimum=1.0)),
        prices=_prices(r.sub("prices")),
        rules=_rules(r.sub("detection")),
        recipes=_recipes(r.sub("recipes")),
        automated=_automated(r),
        raw=data,
    )


def _log(log: _Reader, base: Path) -> LogConfig:
    log.only({"file", "level", "format"})
    level = log.setting(LogConfig, "level").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        log.fail("level", f"must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    log_file = log.get("file", str, None)
    return LogConfig(_resolve(base, log_file) if log_file else None, level,
                     log.setting(LogConfig, "format", choices=("text", "json")))


def _host(r: _Reader) -> str:
    """config.yaml's host:, else this machine's name: what a team's shared database says
    wrote each workflow."""
    host = r.get("host", str, None)
    if host is not None and not host.strip():
        r.fail("host", "must name this machine (or be left out: the machine's name is the default)")
    return (host or socket.gethostname()).strip()


def _serve(r: _Reader) -> ServeConfig:
    r.only({f.name for f in fields(ServeConfig)})
    bind = r.setting(ServeConfig, "bind")
    if not bind.strip():
        r.fail("bind", "must be an address to listen on, such as 127.0.0.1 (the default) or 0.0.0.0")
    token = r.get("token", str, None)
    if token is not None and len(token.strip()) < 16:
        r.fail("token", "must be at least 16 characters (a long random string: openssl rand -hex 24)")
    port = r.setting(ServeConfig, "port", minimum=0)
    if port > 65535:
        r.fail("port", f"must be a TCP port (0 to 65535), got {port}")
    return ServeConfig(bind.strip(), port, token and token.strip(),
                       r.setting(ServeConfig, "in_daemon"))


def load_config(path: Path | str | None = None) -> Config:
    file = Path(path) if path else default_config_path()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {file} (pass --config PATH or set {ENV_VAR})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {file}: {e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"(yaml): not valid YAML{where}: {getattr(e, 'problem', e)} ({file})") from None
    return parse_config(data, file.resolve())
