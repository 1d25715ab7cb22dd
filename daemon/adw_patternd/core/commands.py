"""Layer 4: which operations a Bash tool call runs. Pure functions over text.

A call's ``input.command`` is split into simple commands with the standard library's
shlex (quote-aware, with ``&&``, ``||``, ``;``, ``|`` and newlines as separators), after
heredoc bodies are cut out: a heredoc or a quoted multi-line commit message is text, not
commands. Leading ``VAR=value``, ``sudo``, ``time``, ``timeout N`` and ``env`` are
skipped; ``cd DIR`` sets the folder for the rest of the call.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass


WORD_SPLIT = re.compile(r"[^a-z0-9]+")  # words of a text, for rules and command targets alike
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_SEPARATOR_CHARS = frozenset(";|&\n()")
_PUNCTUATION = "();<>|&\n"
_PREFIX_WORDS = frozenset(("sudo", "time", "env", "nohup", "exec", "command"))
MAX_COMMAND_CHARS = 20_000  # a longer "command" is a pasted file; only its start is read


@dataclass(frozen=True)
class CommandRule:
    """A signature for simple commands that start with one of ``starts`` (word lists).
    ``<t>`` in the signature is replaced by the target of the folder and path arguments."""

    starts: tuple[tuple[str, ...], ...]
    signature: str


def _rule(signature: str, *starts: str) -> CommandRule:
    return CommandRule(tuple(tuple(s.split()) for s in starts), signature)


BUILTIN_COMMAND_RULES: tuple[CommandRule, ...] = (
    _rule("test:pytest:<t>", "pytest", "python -m pytest", "python3 -m pytest", "uv run pytest",
          "uv run python -m pytest", "poetry run pytest"),
    _rule("test:vitest:<t>", "vitest", "npx vitest", "bunx vitest"),
    _rule("test:jest:<t>", "jest", "npx jest"),
    _rule("test:e2e:<t>", "npx playwright test", "playwright test"),
    _rule("test:generic:<t>", "npm test", "npm run test", "bun test", "bun run test", "yarn test", "pnpm test"),
    _rule("build:typecheck:<t>", "tsc", "npx tsc", "bunx tsc", "npx -p typescript tsc", "npm run typecheck",
          "npm run type-check", "mypy", "uv run mypy", "pyright"),
    _rule("build:bundle:<t>", "npm run build", "bun run build", "yarn build", "pnpm build", "vite build",
          "npx vite build"),
    _rule("deps:npm:install", "npm install", "npm ci", "npm i", "bun install", "yarn install", "pnpm install"),
    _rule("deps:pip:install", "pip install", "uv pip install", "uv sync", "uv add", "poetry install"),
    _rule("format:eslint:all", "eslint", "npx eslint", "npm run lint"),
    _rule("format:ruff:all", "ruff", "uv run ruff"),
    _rule("format:prettier:all", "prettier", "npx prettier"),
    _rule("format:black:all", "black", "uv run black"),
    _rule("git:diff:summary", "git diff"),
    _rule("git:status:summary", "git status"),
    _rule("git:log:summary", "git log"),
    _rule("git:commit:all", "git add", "git commit"),
    _rule("git:branch:create", "git checkout -b", "git switch -c"),
    _rule("git:push:all", "git push"),
    _rule("git:pr:create", "gh pr create"),
    # Added when agents in other languages came in (detection-rules.md): Rust, Go, JVM, .NET,
    # Ruby, PHP, make, Docker, CI polling. `make test` is read before a bare `make`. A program
    # is compared by its base name (_head), so `mvnw` stands for ./mvnw and `rails` for bin/rails.
    _rule("git:pull:all", "git pull", "git fetch"),
    _rule("git:merge:all", "git merge", "git rebase"),
    _rule("ci:status:all", "gh pr checks", "gh run view", "gh run watch", "gh run list"),
    _rule("test:cargo:<t>", "cargo test", "cargo nextest run"),
    _rule("test:go:<t>", "go test"),
    _rule("test:jvm:<t>", "mvn test", "mvnw test", "gradle test", "gradlew test"),
    _rule("test:dotnet:<t>", "dotnet test"),
    _rule("test:ruby:<t>", "rspec", "bundle exec rspec", "rails test"),
    _rule("test:php:<t>", "phpunit", "php artisan test"),
    _rule("test:make:<t>", "make test", "make check"),
    _rule("build:cargo:<t>", "cargo build", "cargo check"),
    _rule("build:go:<t>", "go build", "go vet"),
    _rule("build:jvm:<t>", "mvn package", "mvn compile", "mvn install", "mvnw package", "gradle build",
          "gradlew build"),
    _rule("build:dotnet:<t>", "dotnet build"),
    _rule("build:docker:<t>", "docker build", "docker compose build", "docker-compose build"),
    _rule("build:make:<t>", "make"),
    _rule("format:clippy:all", "cargo clippy"),
    _rule("format:rustfmt:all", "cargo fmt", "rustfmt"),
    _rule("format:go:all", "gofmt", "go fmt", "golangci-lint"),
    _rule("deps:cargo:install", "cargo add", "cargo fetch"),
    _rule("deps:go:install", "go get", "go mod tidy", "go mod download"),
    _rule("deps:bundler:install", "bundle install"),
    _rule("deps:composer:install", "composer install"),
    _rule("deps:dotnet:install", "dotnet restore"),
)


def _strip_heredocs(text: str) -> str:
    """Drop the body lines of every heredoc (up to its terminator line)."""
    if "<<" not in text:
        return text
    out = []
    lines = iter(text.split("\n"))
    for line in lines:
        out.append(_HEREDOC.sub(" ", line))
        for m in _HEREDOC.finditer(line):
            word = m.group(2)
            for body in lines:
                if body.strip() == word:
                    break
    return "\n".join(out)


def _tokens(text: str) -> list[str]:
    for suffix in ("", '"', "'"):
        lexer = shlex.shlex(text + suffix, posix=True, punctuation_chars=_PUNCTUATION)
        lexer.whitespace = " \t\r"
        lexer.whitespace_split = True
        lexer.commenters = ""
        try:
            return list(lexer)
        except ValueError:  # an unterminated quote: close it and read what is there
            continue
    return text.split()


def split_commands(command: str) -> list[tuple[str | None, tuple[str, ...]]]:
    """The simple commands of a Bash call, each as (folder set by cd or None, words).
    Redirections are dropped; `cd` commands themselves are not returned."""
    text = _strip_heredocs(command[:MAX_COMMAND_CHARS].replace("\\\n", " "))
    simple: list[list[str]] = [[]]
    skip_next = False
    for tok in _tokens(text):
        if skip_next:
            skip_next = False
            continue
        if tok and set(tok) <= _SEPARATOR_CHARS:
            simple.append([])
        elif tok[:1] in "<>":
            skip_next = True  # the redirection's target follows
        else:
            simple[-1].append(tok)
    result = []
    folder = None
    for words in simple:
        words = _skip_prefixes(words)
        if not words:
            continue
        if words[0] == "cd":
            folder = words[1] if len(words) > 1 else None
            continue
        result.append((folder, tuple(words)))
    return result


def _skip_prefixes(words: list[str]) -> list[str]:
    i = 0
    while i < len(words):
        w = words[i]
        if _ASSIGNMENT.match(w) or w in _PREFIX_WORDS or (w.startswith("-") and i > 0 and words[i - 1] == "env"):
            i += 1
        elif w == "timeout":
            i += 1
            while i < len(words) and (words[i].startswith("-") or words[i][:1].isdigit()):
                i += 1
        else:
            break
    return words[i:]


def _head(words: tuple[str, ...]) -> tuple[str, ...]:
    """The words compared with a rule: the program by its base name (./node_modules/.bin/tsc
    is tsc, .venv/bin/pytest is pytest), lower-cased."""
    first = words[0].replace("\\", "/").rsplit("/", 1)[-1].lower()
    if first.endswith(".exe"):
        first = first[:-4]
    return (first, *(w.lower() for w in words[1:6]))


def command_target(folder: str | None, words: tuple[str, ...]) -> str:
    """backend, frontend or all, from the cd folder and the path-like arguments."""
    parts = [folder or ""] + [w for w in words[1:] if "/" in w or "\\" in w]
    found = set(WORD_SPLIT.split(" ".join(parts).lower()))
    if found & {"backend", "server", "api"}:
        return "backend"
    if found & {"frontend", "client", "ui", "web"}:
        return "frontend"
    return "all"


def command_signature(folder: str | None, words: tuple[str, ...],
                      rules: tuple[CommandRule, ...] = BUILTIN_COMMAND_RULES) -> str | None:
    head = _head(words)
    for rule in rules:
        for start in rule.starts:
            if head[: len(start)] == start:
                if "<t>" in rule.signature:
                    return rule.signature.replace("<t>", command_target(folder, words))
                return rule.signature
    return None


# A simple command that matches no row is no pattern, but it was paid for: its share is kept
# under its head (detection-rules.md, layer 4), the first word, with the subcommand for these
# programs (`cargo bench`), and for npm and uv also the script `run` runs (`npm run e2e`).
SUBCOMMAND_PROGRAMS = frozenset(("git", "gh", "npm", "npx", "uv", "cargo", "go", "docker", "make"))
RUN_SCRIPT_PROGRAMS = frozenset(("npm", "uv"))
# How agents read code and look around: listed apart from the rest, as no tool would replace
# it. Shell plumbing that only reads or prints (wc, sort, echo) is here too: it is what a
# pipe after a read shows, not an operation of its own.
READ_ONLY_HEADS = frozenset((
    "cat", "ls", "sed -n", "rg", "grep", "egrep", "fgrep", "ag", "head", "tail", "find", "fd", "tree", "wc",
    "pwd", "echo", "printf", "file", "stat", "du", "df", "which", "type", "realpath", "readlink", "basename",
    "dirname", "sort", "uniq", "cut", "tr", "awk", "jq", "diff", "less", "more", "nl", "column", "xxd", "od",
    "git show", "git grep", "git ls-files", "git blame",
))
# Shell words that open or close a compound command: the command after `if`, `then` or `do`
# is looked at without them; `for i in ...`, `case`, `done` and the like are no command, nor
# are the builtins that only set the shell's state or its exit status (`|| true`, `set -e`).
_KEYWORDS = frozenset(("if", "then", "else", "elif", "do", "while", "until", "!", "{"))
_NOT_COMMANDS = frozenset(("for", "select", "case", "esac", "done", "fi", "}", "function", "in", "[[", "]]",
                           "true", "false", ":", "exit", "return", "set", "export", "unset", "local", "shift",
                           "wait"))
HEAD_CHARS = 60


def is_read_only(head: str) -> bool:
    """Whether an unmatched command's head is read-only exploration (READ_ONLY_HEADS)."""
    return head in READ_ONLY_HEADS


def command_head(words: tuple[str, ...]) -> str | None:
    """The head an unmatched simple command is kept under; None for shell syntax that runs
    nothing itself (`for i in 1 2`, `done`)."""
    i = 0
    while i < len(words) and words[i] in _KEYWORDS:
        i += 1
    if i == len(words) or words[i] in _NOT_COMMANDS:
        return None
    low = _head(words[i:])
    head = [low[0]]
    if low[0] in SUBCOMMAND_PROGRAMS and len(low) > 1 and not low[1].startswith("-"):
        head.append(low[1])
        if low[0] in RUN_SCRIPT_PROGRAMS and low[1] == "run" and len(low) > 2 and not low[2].startswith("-"):
            head.append(low[2])
    elif low[0] == "sed" and "-n" in low and not any(w.startswith(("-i", "--in-place")) for w in low):
        head.append("-n")  # sed -i edits; sed -n prints
    text = printable(" ".join(head))
    return text if len(text) <= HEAD_CHARS else text[: HEAD_CHARS - 1] + "…"


def call_signatures(command: str, rules: tuple[CommandRule, ...] = BUILTIN_COMMAND_RULES) -> tuple[str, ...]:
    """The distinct signatures of one Bash call's simple commands, in order."""
    return call_commands(command, rules)[0]


def call_heads(command: str, rules: tuple[CommandRule, ...] = BUILTIN_COMMAND_RULES) -> tuple[str, ...]:
    """The distinct heads of one Bash call's simple commands that match no row, in order."""
    return call_commands(command, rules)[1]


def _read_call(command: str, rules: tuple[CommandRule, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    signatures: dict[str, None] = {}
    heads: dict[str, None] = {}
    for folder, words in split_commands(command):
        sig = command_signature(folder, words, rules)
        if sig:
            signatures[sig] = None
            continue
        head = command_head(words)
        if head is not None:
            i = next((i for i, w in enumerate(words) if w not in _KEYWORDS), 0)
            if i and command_signature(folder, words[i:], rules):
                continue  # `then npm run build`: a known operation behind a keyword, not a new one
            heads[head] = None
    return tuple(signatures), tuple(heads)


def call_commands(command: str, rules: tuple[CommandRule, ...] = BUILTIN_COMMAND_RULES,
                  ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(signatures, unmatched heads) of one Bash call: each distinct, in order."""
    # Agents run the same commands over and over (git status, npx tsc --noEmit): remember
    # the answers per rule set. Keyed by the rule tuple's identity, as hashing it costs more
    # than a lookup should; the entry keeps the tuple alive, so the identity stays its own.
    rules_and_memo = _MEMO.get(id(rules))
    if rules_and_memo is None or rules_and_memo[0] is not rules:
        if len(_MEMO) >= 8:
            _MEMO.clear()
        rules_and_memo = _MEMO[id(rules)] = (rules, {})
    memo = rules_and_memo[1]
    found = memo.get(command)
    if found is None:
        if len(memo) >= 20_000:
            memo.clear()
        found = memo[command] = _read_call(command, rules)
    return found


_MEMO: dict[int, tuple[tuple, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]]] = {}


LINE_CHARS = 160


def printable(text: str) -> str:
    """Control characters (a terminal escape in an agent's command) shown as U+FFFD."""
    return text if text.isprintable() else "".join(c if c.isprintable() else "\ufffd" for c in text)


def command_line(command: str) -> str:
    """A Bash call's command as evidence for a person: its first line (a heredoc's body or a
    script says less than the line that ran it), spaces collapsed, cut at LINE_CHARS."""
    text = command.strip()
    first = printable(" ".join(text.split("\n", 1)[0].split()))
    if len(first) > LINE_CHARS:
        return first[: LINE_CHARS - 1] + "…"
    return first + (" …" if "\n" in text else "")
