"""Detection: which operation patterns a workflow shows.

The rules are data (see ../shared/docs/detection-rules.md); config.yaml can extend or
replace them. Words are matched as words, never as substrings: "build" does not contain
the word "ui", and "latest" is not "test".
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, replace
from collections.abc import Iterable
from functools import lru_cache

from .commands import BUILTIN_COMMAND_RULES, WORD_SPLIT, CommandRule
from .model import Contribution, Detection, Occurrence, Workflow


class Words(tuple):
    """The words of a text in order, with their set beside them (``unique``) so that a
    1 MB request is matched against every keyword in linear time."""

    unique: frozenset = frozenset()


def words_of(text: str | None) -> Words:
    """Lower-case words, split on every character that is not a letter or a digit."""
    words = Words(w for w in WORD_SPLIT.split(text.lower()) if w) if text else Words()
    words.unique = frozenset(words)
    return words


@lru_cache(maxsize=4096)
def _compile(keywords: tuple[str, ...]) -> tuple[frozenset[str], tuple[tuple[str, ...], ...]]:
    """One-word keywords as one set of accepted words (with +s and +es); the rest as word runs."""
    singles: set[str] = set()
    runs = []
    for keyword in keywords:
        parts = tuple(keyword.lower().split())
        if len(parts) == 1:
            singles |= {parts[0], parts[0] + "s", parts[0] + "es"}
        else:
            runs.append(parts)
    return frozenset(singles), tuple(runs)


def _in_row(words: Words, parts: tuple[str, ...]) -> bool:
    if not words.unique.issuperset(parts):
        return False
    n = len(parts)
    return any(words[i : i + n] == parts for i in range(len(words) - n + 1))


def has_any(words: Words, keywords: tuple[str, ...]) -> bool:
    """One-word keywords also match their plural (+s, +es); several words match in a row."""
    singles, runs = _compile(keywords)
    return not singles.isdisjoint(words.unique) or any(_in_row(words, parts) for parts in runs)


def has_keyword(words: Words, keyword: str) -> bool:
    return has_any(words, (keyword,))


@dataclass(frozen=True)
class Choice:
    """A value picked when any of its keywords match."""

    value: str
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class RequestRule:
    """Layer 1: a category matched in the request, with its subcategory and target."""

    category: str
    keywords: tuple[str, ...]
    subcategories: tuple[Choice, ...]
    default_subcategory: str
    target: str  # a fixed target, or "*" for the test/build target rules


@dataclass(frozen=True)
class SignatureRule:
    """Layers 2 and 3: words that map to a signature (None: matched, but no pattern)."""

    keywords: tuple[str, ...]
    signature: str | None


@dataclass(frozen=True)
class RoleRule:
    """Layer 0: an agent folder name (a glob: `*_committer`) that is one operation."""

    agent: str
    signature: str


BUILTIN_ROLE_RULES = (
    RoleRule("branch_generator", "git:branch:create"),
    RoleRule("*_committer", "git:commit:all"),
    RoleRule("pr_creator", "git:pr:create"),
    RoleRule("issue_classifier", "classify:issue:all"),
)


@dataclass(frozen=True)
class RuleSet:
    request: tuple[RequestRule, ...]
    error: tuple[SignatureRule, ...]
    template: tuple[SignatureRule, ...]
    roles: tuple[RoleRule, ...] = BUILTIN_ROLE_RULES
    commands: tuple[CommandRule, ...] = BUILTIN_COMMAND_RULES


def _c(value: str, *keywords: str) -> Choice:
    return Choice(value, keywords or (value,))


BUILTIN_RULES = RuleSet(
    request=(
        RequestRule("test", ("test", "pytest", "vitest", "jest", "run tests"),
                    (_c("pytest", "pytest", "py test"), _c("vitest"), _c("jest"), _c("mocha")), "generic", "*"),
        RequestRule("build", ("build", "compile", "typecheck", "tsc", "bundle"),
                    (_c("typecheck", "typecheck", "tsc", "type check"), _c("compile"),
                     _c("bundle", "bundle", "webpack", "vite")), "build", "*"),
        RequestRule("format", ("format", "prettier", "black", "lint"),
                    (_c("prettier"), _c("black"), _c("eslint"), _c("ruff")), "generic", "all"),
        RequestRule("git", ("git diff", "git status", "git log"),
                    (_c("diff"), _c("status"), _c("log")), "generic", "summary"),
        RequestRule("deps", ("update dependencies", "npm update", "npm", "pip install", "pip",
                             "install python", "update npm"),
                    (_c("npm"), _c("pip", "pip", "python"), _c("bun"), _c("yarn")), "generic", "update"),
        RequestRule("docs", ("generate docs", "update readme", "documentation", "readme"),
                    (), "generate", "all"),
    ),
    error=(
        SignatureRule(("test failed", "tests failed", "pytest"), "test:pytest:backend"),
        SignatureRule(("vitest",), "test:vitest:frontend"),
        SignatureRule(("type error", "typecheck", "tsc"), "build:typecheck:backend"),
        SignatureRule(("compilation", "compile error"), "build:compile:backend"),
        SignatureRule(("eslint", "lint"), "format:eslint:all"),
    ),
    template=(
        SignatureRule(("sdlc", "zte"), None),
        SignatureRule(("test",), "test:generic:all"),
        SignatureRule(("build",), "build:generic:all"),
        SignatureRule(("plan", "patch", "lightweight", "cleanup"), None),
        SignatureRule(("ship",), "deploy:ship:all"),
        SignatureRule(("review",), "review:code:all"),
    ),
)


def _target(words: Words, template_words: Words) -> str:
    if has_keyword(words, "both"):
        return "both"
    if has_keyword(words, "all") and has_any(words, ("tests", "code", "files")):
        return "all"
    if has_any(words, ("backend", "server", "api")):
        return "backend"
    if has_any(words, ("frontend", "client", "ui")):
        return "frontend"
    if has_any(template_words, ("server", "backend")):
        return "backend"
    if has_any(template_words, ("client", "frontend")):
        return "frontend"
    return "all"


def request_signature(request: str | None, template: str | None, rules: RuleSet = BUILTIN_RULES) -> str | None:
    words = words_of(request)
    if not words:
        return None
    for rule in rules.request:
        if not has_any(words, rule.keywords):
            continue
        sub = next((c.value for c in rule.subcategories if has_any(words, c.keywords)), rule.default_subcategory)
        target = _target(words, words_of(template)) if rule.target == "*" else rule.target
        return f"{rule.category}:{sub}:{target}"
    return None


def error_signatures(error_message: str | None, rules: RuleSet = BUILTIN_RULES) -> list[str]:
    words = words_of(error_message)
    return [r.signature for r in rules.error if r.signature and has_any(words, r.keywords)]


def template_signature(template: str | None, rules: RuleSet = BUILTIN_RULES) -> str | None:
    words = words_of(template)
    for rule in rules.template:
        if has_any(words, rule.keywords):
            return rule.signature
    return None


_AGENT_SUFFIX = re.compile(r"(?:_iter\d+_\d+|_\d+_\d+|_\d+)$")


def agent_role(agent: str, rules: RuleSet = BUILTIN_RULES) -> str | None:
    """Layer 0: the signature of an agent folder that only runs one operation, or None."""
    name = _AGENT_SUFFIX.sub("", agent.lower())
    return next((r.signature for r in rules.roles if fnmatch.fnmatchcase(name, r.agent)), None)


def detect_signatures(wf: Workflow, rules: RuleSet = BUILTIN_RULES) -> tuple[str, ...]:
    """Layer 1 (request), then 2 (error message), then 3 (template), without repeats."""
    found = [request_signature(wf.request, wf.workflow_template, rules)]
    found += error_signatures(wf.error_message, rules)
    found.append(template_signature(wf.workflow_template, rules))
    return tuple(dict.fromkeys(s for s in found if s))


def _add(parts: dict[str, list], sig: str, layer: str, c: Contribution, evidence: dict) -> None:
    have = parts.get(sig)
    if have is None:
        parts[sig] = [layer, c, dict(evidence)]
        return
    a = have[1]
    have[0] = have[0] if layer in have[0] else f"{have[0]}+{layer}"
    have[1] = a + c
    for key, n in evidence.items():
        have[2][key] = have[2].get(key, 0) + n


def occurrences(wf: Workflow, rules: RuleSet = BUILTIN_RULES) -> tuple[Occurrence, ...]:
    """Every pattern of the workflow with what it cost there (detection-rules.md, "What an
    occurrence costs"): layers 1-3 cost the whole workflow; layer 0 an agent's runs; layer 4
    its Bash calls' shares. A signature given by a whole-workflow layer keeps the whole
    workflow's amount; one given by agents and commands sums their (disjoint) parts.
    Where the request is not nl_input, layers 1-3 count only what layers 0 and 4 saw done."""
    return _detected(wf, rules)[0]


def _detected(wf: Workflow, rules: RuleSet) -> tuple[tuple[Occurrence, ...], tuple[str, ...]]:
    """(occurrences, mentions). On real trees a request says what the work is about (an
    issue title, a prompt); only agents and their commands say what was done. So unless
    the request is the reference's nl_input, a layer 1-3 signature is an occurrence only
    when an agent or a command did it, and costs those parts; else it is a mention."""
    named = detect_signatures(wf, rules)
    # A reference-style record (no root: compat's functions) has no agents to confirm anything.
    trusted = wf.request_source == "nl_input" or not wf.root_name
    whole = Contribution.of(wf)
    found = {sig: Occurrence(sig, "workflow", whole) for sig in named} if trusted else {}
    parts: dict[str, list] = {}
    roles = [agent_role(agent.name, rules) for agent in wf.agents]
    for agent, role in zip(wf.agents, roles):
        if role and (agent.runs or agent.unfinished):  # its commands are the role's, not read again by layer 4
            runs = agent.runs + agent.unfinished
            _add(parts, role, "agent", Contribution(
                agent.tokens, agent.cost_nanos, int(agent.duration_ms / 1000 + 0.5), agent.errors, agent.retries,
                runs, agent.estimated_nanos), {("agent", agent.name): runs})
    for agent, role in zip(wf.agents, roles):
        if role is None:
            for cmd in agent.commands:
                evidence = {("agent", agent.name): cmd.calls}
                evidence.update({("command", line): n for line, n in cmd.lines})
                _add(parts, cmd.signature, "command",
                     Contribution(cmd.tokens, cmd.cost_nanos, 0, 0, 0, cmd.calls, cmd.cost_nanos), evidence)
    for sig, (layer, c, evidence) in parts.items():
        seen = tuple(sorted((k, item, n) for (k, item), n in evidence.items()))
        # A whole-workflow link keeps the workflow's amount, and still shows the agents and
        # command lines of its signature that ran in it.
        found[sig] = Occurrence(sig, layer, c, seen) if sig not in found else replace(found[sig], evidence=seen)
    return tuple(found.values()), tuple(sig for sig in named if sig not in found)


def attributed_nanos(wf: Workflow, found: Iterable[Occurrence]) -> int:
    """The part of a workflow's spend that its patterns account for, each dollar once: all of
    it if a whole-workflow pattern matched, else its agents' and commands' (disjoint) parts."""
    found = list(found)
    if any(o.layer == "workflow" for o in found):
        return wf.cost_nanos
    return min(wf.cost_nanos, sum(o.contribution.cost_nanos for o in found))


CHARACTERISTIC_KEYWORDS = (
    "test", "pytest", "vitest", "jest", "build", "typecheck", "compile", "format", "lint", "update",
    "install", "deploy", "run", "backend", "frontend", "server", "client", "api", "ui",
)
_CHARACTERISTIC_FORMS = tuple((k, _compile((k,))[0]) for k in CHARACTERISTIC_KEYWORDS)
_FILES = re.compile(r"(?<![\w/.-])(?:(?:app|tests|src)/[\w./-]*[\w]|[\w-]+\.(?:py|ts|js))(?![\w])")


def characteristics(wf: Workflow) -> dict:
    text = wf.nl_input or ""
    words = words_of(text)
    duration = wf.duration_seconds
    n_words = len(text.split())
    errors = wf.error_count
    if n_words < 50 and errors < 3:
        complexity = "simple"
    elif n_words > 200 or errors > 5:
        complexity = "complex"
    else:
        complexity = "medium"
    present = words.unique
    return {
        "input_length": len(text),
        "keywords": [k for k, forms in _CHARACTERISTIC_FORMS if not forms.isdisjoint(present)],
        "files_mentioned": list(dict.fromkeys(_FILES.findall(text)))[:50],
        "duration_range": "short" if duration < 180 else "medium" if duration < 600 else "long",
        "complexity": complexity,
        "error_count": errors,
    }


def detect(wf: Workflow, rules: RuleSet = BUILTIN_RULES) -> Detection:
    found, mentions = _detected(wf, rules)
    return Detection(found, characteristics(wf), mentions)
