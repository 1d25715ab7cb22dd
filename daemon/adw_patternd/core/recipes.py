"""How to automate each built-in pattern: a short recipe per signature, as data beside the
detection rules. A recipe says what a deterministic replacement does, run from the ADW's own
code instead of asking an agent. `recipes:` in config.yaml overrides or adds recipes; the
most specific key wins (an exact signature, then `category:subcategory:*`, then
`category:*:*`)."""

from __future__ import annotations

BUILTIN_RECIPES: dict[str, str] = {
    "git:commit:all": 'Run `git add -A && git commit -m "<type>: <issue title>"` from the ADW\'s code after the '
                      "agent that changed the files, instead of a *_committer agent; only the message needs the "
                      "issue, which the ADW already has.",
    "git:branch:create": "Run `git checkout -b <type>-issue-<number>-adw-<adw_id>-<slug>` from the ADW's code; the slug "
                         "is the issue title lower-cased with non-letters as `-`.",
    "git:pr:create": 'Run `git push -u origin <branch> && gh pr create --title "<type>: <issue title>" --body '
                     '"Closes #<number>"` from the ADW\'s code instead of a pr_creator agent.',
    "git:push:all": "Run `git push -u origin <branch>` from the ADW's code after the commit.",
    "git:diff:summary": "Run `git diff --stat` (and `git diff` when the agent needs the lines) before the agent and put "
                        "the output in its prompt, instead of letting it call git.",
    "git:status:summary": "Run `git status --porcelain` before the agent and put the output in its prompt.",
    "git:log:summary": "Run `git log --oneline -20` before the agent and put the output in its prompt.",
    "git:generic:summary": "Run the git command from the ADW's code and hand the agent its output.",
    "classify:issue:all": "Map the issue's labels to the class (bug -> /bug, enhancement -> /feature, chore -> /chore) "
                          "with a lookup table; call the LLM only for an unlabelled issue.",
    "build:typecheck:*": "Run `npx tsc --noEmit` (or `uv run mypy .`) before the agent; hand it the errors only when "
                         "there are some, and skip the agent when there are none.",
    "build:bundle:*": "Run `npm run build` in the ADW's code; give an agent the build log only when it fails.",
    "build:compile:*": "Run the compiler from the ADW's code; give an agent the errors only when it fails.",
    "build:build:*": "Run the project's build command from the ADW's code; involve an agent only when it fails.",
    "build:generic:all": "Run the project's build command from the ADW's code; involve an agent only when it fails.",
    "test:pytest:*": "Run `uv run pytest -q` from the ADW's code; give an agent only the failures (`-rf` output), and "
                     "only when there are some.",
    "test:vitest:*": "Run `npx vitest run` from the ADW's code; give an agent only the failing tests' output.",
    "test:jest:*": "Run `npx jest --ci` from the ADW's code; give an agent only the failing tests' output.",
    "test:mocha:*": "Run `npx mocha` from the ADW's code; give an agent only the failing tests' output.",
    "test:e2e:*": "Run the end-to-end suite (`npx playwright test`) from the ADW's code; an agent only for failures.",
    "test:generic:*": "Run the project's test command from the ADW's code; give an agent only the failures.",
    "format:prettier:all": "Run `npx prettier --write .` from the ADW's code after the agent's edits.",
    "format:eslint:all": "Run `npx eslint --fix .` from the ADW's code; an agent only for what --fix cannot fix.",
    "format:ruff:all": "Run `uv run ruff check --fix . && uv run ruff format .` from the ADW's code.",
    "format:black:all": "Run `uv run black .` from the ADW's code after the agent's edits.",
    "format:generic:all": "Run the project's formatter from the ADW's code after the agent's edits.",
    "deps:npm:update": "Run `npm update` (or Dependabot/Renovate) on a schedule, not through an agent.",
    "deps:npm:install": "Run `npm ci` from the ADW's code before the agents start.",
    "deps:pip:install": "Run `uv sync` from the ADW's code before the agents start.",
    "deps:pip:update": "Run `uv lock --upgrade && uv sync` (or Dependabot/Renovate) on a schedule.",
    "deps:yarn:update": "Run `yarn upgrade` (or Dependabot/Renovate) on a schedule.",
    "deps:bun:update": "Run `bun update` (or Renovate) on a schedule.",
    "deps:generic:update": "Let Dependabot or Renovate open the update pull requests.",
    "docs:generate:all": "Generate the reference docs with the project's doc tool (`pdoc`, `typedoc`) in CI; keep the "
                         "agent for prose only.",
    "deploy:ship:all": "Merge and deploy from CI on a green pipeline (`gh pr merge --auto --squash`), not through an "
                       "agent.",
    "review:code:all": "Run the linters and tests in CI first; ask an agent to review only the diff that passed them.",
    # The command rows for other languages (detection-rules.md).
    "git:pull:all": "Run `git pull --ff-only` (or `git fetch`) from the ADW's code before the agent starts.",
    "git:merge:all": "Run the merge or rebase from the ADW's code; hand an agent only the conflicts, when there are "
                     "some.",
    "ci:status:all": "Wait for CI with `gh pr checks --watch` (or `gh run watch --exit-status`) from the ADW's code, "
                     "not an agent polling it; give an agent only the failing job's log.",
    "test:cargo:*": "Run `cargo test` (or `cargo nextest run`) from the ADW's code; give an agent only the failures.",
    "test:go:*": "Run `go test ./...` from the ADW's code; give an agent only the failing packages' output.",
    "test:jvm:*": "Run `./mvnw test` or `./gradlew test` from the ADW's code; give an agent only the failing tests.",
    "test:dotnet:*": "Run `dotnet test` from the ADW's code; give an agent only the failing tests' output.",
    "test:ruby:*": "Run `bundle exec rspec` (or `bin/rails test`) from the ADW's code; an agent only for failures.",
    "test:php:*": "Run `vendor/bin/phpunit` (or `php artisan test`) from the ADW's code; an agent only for failures.",
    "test:make:*": "Run `make test` from the ADW's code; give an agent only the failures.",
    "build:cargo:*": "Run `cargo check` (or `cargo build`) from the ADW's code; hand an agent the errors only when there "
                     "are some.",
    "build:go:*": "Run `go build ./... && go vet ./...` from the ADW's code; an agent only when it fails.",
    "build:jvm:*": "Run `./mvnw package` or `./gradlew build` from the ADW's code; an agent only when it fails.",
    "build:dotnet:*": "Run `dotnet build` from the ADW's code; an agent only when it fails.",
    "build:docker:*": "Build the image in CI or from the ADW's code (`docker build`); an agent only when it fails.",
    "build:make:*": "Run `make` from the ADW's code; give an agent the errors only when it fails.",
    "format:clippy:all": "Run `cargo clippy --fix --allow-dirty` from the ADW's code; an agent only for what remains.",
    "format:rustfmt:all": "Run `cargo fmt` from the ADW's code after the agent's edits.",
    "format:go:all": "Run `gofmt -w .` (and `golangci-lint run --fix`) from the ADW's code after the agent's edits.",
    "deps:cargo:install": "Run `cargo fetch` from the ADW's code before the agents start; add crates in the plan, not "
                          "through an agent's command.",
    "deps:go:install": "Run `go mod download` (and `go mod tidy`) from the ADW's code before the agents start.",
    "deps:bundler:install": "Run `bundle install` from the ADW's code before the agents start.",
    "deps:composer:install": "Run `composer install --no-interaction` from the ADW's code before the agents start.",
    "deps:dotnet:install": "Run `dotnet restore` from the ADW's code before the agents start.",
}


def recipe_for(signature: str, extra: dict[str, str] | None = None) -> str | None:
    """The recipe of a signature: from config.yaml's ``recipes`` first, then the built-in ones."""
    category, _, rest = signature.partition(":")
    sub = rest.partition(":")[0]
    keys = (signature, f"{category}:{sub}:*", f"{category}:*:*")
    for table in (extra or {}, BUILTIN_RECIPES):
        for key in keys:
            if key in table:
                return table[key]
    return None
