"""Layer 4's command rows for other languages (detection-rules.md, the rows after gh pr create)."""

import pytest

from adw_patternd.core.commands import call_signatures

ROWS = [
    ("git pull --rebase origin main", "git:pull:all"),
    ("git fetch origin", "git:pull:all"),
    ("git merge feature/x", "git:merge:all"),
    ("git rebase -i HEAD~3", "git:merge:all"),
    ("gh pr checks 12 --watch", "ci:status:all"),
    ("gh run watch 991", "ci:status:all"),
    ("cargo test --workspace", "test:cargo:all"),
    ("cargo nextest run", "test:cargo:all"),
    ("cd server && go test ./...", "test:go:backend"),
    ("./mvnw test -q", "test:jvm:all"),
    ("./gradlew test", "test:jvm:all"),
    ("dotnet test src/api/Api.Tests", "test:dotnet:backend"),
    ("bundle exec rspec spec/models", "test:ruby:all"),
    ("bin/rails test", "test:ruby:all"),
    ("./vendor/bin/phpunit", "test:php:all"),
    ("php artisan test", "test:php:all"),
    ("make test", "test:make:all"),
    ("make check", "test:make:all"),
    ("cargo check --all-targets", "build:cargo:all"),
    ("go vet ./...", "build:go:all"),
    ("mvn package -DskipTests", "build:jvm:all"),
    ("./gradlew build", "build:jvm:all"),
    ("dotnet build", "build:dotnet:all"),
    ("docker compose build web/frontend", "build:docker:frontend"),
    ("make -j4", "build:make:all"),
    ("cargo clippy -- -D warnings", "format:clippy:all"),
    ("cargo fmt --check", "format:rustfmt:all"),
    ("golangci-lint run", "format:go:all"),
    ("cargo add serde", "deps:cargo:install"),
    ("go mod tidy", "deps:go:install"),
    ("bundle install", "deps:bundler:install"),
    ("composer install --no-interaction", "deps:composer:install"),
    ("dotnet restore", "deps:dotnet:install"),
]


@pytest.mark.parametrize("command,signature", ROWS)
def test_each_row_gives_its_signature(command, signature):
    assert call_signatures(command) == (signature,)


def test_the_older_rows_still_win_where_they_come_first():
    # `npm test` is test:generic, `make` after `make test`, and a bare word stays unmatched.
    assert call_signatures("npm test && make && cargo bench") == ("test:generic:all", "build:make:all")
    assert call_signatures("makefile-lint") == ()
