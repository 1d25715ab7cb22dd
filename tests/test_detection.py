"""Detection rules, exactly as ../shared/docs/detection-rules.md gives them."""

import pytest

from adw_patternd.config import parse_config
from adw_patternd.core.model import Workflow
from adw_patternd.core.rules import (BUILTIN_RULES, characteristics, detect_signatures, error_signatures, has_keyword,
                                request_signature, template_signature, words_of)


@pytest.mark.parametrize("request_text, signature", [
    ("Run backend tests with pytest", "test:pytest:backend"),
    ("Run pytest on the api", "test:pytest:backend"),
    ("Typecheck the frontend with tsc", "build:typecheck:frontend"),
    ("Build the project", "build:build:all"),  # the reference says frontend: "build" contains "ui"
    ("Update to the latest npm packages", "deps:npm:update"),  # the reference says test: "latest"
    ("Typecheck the circuit module", "build:typecheck:all"),
    ("Run tests for the rapid prototype", "test:generic:all"),  # "rapid" is not "api"
    ("Show git status", "git:status:summary"),
    ("Format all code.", "format:generic:all"),
    ("Run the vitest suite on the client", "test:vitest:frontend"),
    ("run jest tests for both apps", "test:jest:both"),
    ("Run all tests", "test:generic:all"),
    ("Run py.test against the server", "test:pytest:backend"),
    ("Compile the ui bundle", "build:compile:frontend"),
    ("Bundle the app with webpack", "build:bundle:all"),
    ("Build and type check the backend", "build:typecheck:backend"),  # "type check", two words in a row
    ("type check the backend", None),  # "type check" names a subcategory, not a category
    ("Lint with eslint", "format:eslint:all"),
    ("Format with black", "format:black:all"),
    ("git log for last week", "git:log:summary"),
    ("pip install requests", "deps:pip:update"),
    ("Update dependencies with yarn", "deps:yarn:update"),
    ("Update readme", "docs:generate:all"),
    ("Write documentation", "docs:generate:all"),
    ("Testament of the contest", None),  # neither is the word "test"
    ("Add a dark mode toggle", None),
    ("", None),
    (None, None),
])
def test_request_layer(request_text, signature):
    assert request_signature(request_text, None) == signature


def test_target_falls_back_to_template_words():
    assert request_signature("Run the tests", "adw_test_server_iso") == "test:generic:backend"
    assert request_signature("Run the tests", "adw_client_tests") == "test:generic:frontend"
    # the request's own words come first
    assert request_signature("Run the api tests", "adw_client_tests") == "test:generic:backend"


def test_word_matching():
    w = words_of("Latest tests, contest; py.test adw_test_iso")
    assert has_keyword(w, "test")  # tests, test
    assert not has_keyword(words_of("latest contest testament"), "test")
    assert has_keyword(words_of("the fixes"), "fix")  # +es
    assert has_keyword(words_of("run  tests now"), "run tests")
    assert not has_keyword(words_of("tests run"), "run tests")  # in a row, in order


@pytest.mark.parametrize("message, expected", [
    ("2 tests failed", ["test:pytest:backend"]),
    ("pytest exited with 1; eslint found problems", ["test:pytest:backend", "format:eslint:all"]),
    ("vitest: 3 failing", ["test:vitest:frontend"]),
    ("Type error in app.ts; tsc exit 2", ["build:typecheck:backend"]),
    ("compile error: missing semicolon", ["build:compile:backend"]),
    ("Compilation failed", ["build:compile:backend"]),
    ("contest failed; latest blintz", []),
    (None, []),
])
def test_error_layer_adds_every_matching_row(message, expected):
    assert error_signatures(message) == expected


@pytest.mark.parametrize("template, expected", [
    ("adw_sdlc_iso", None), ("adw_sdlc_zte_iso", None), ("adw_zte_iso", None),
    ("adw_test_iso", "test:generic:all"), ("adw_build_iso", "build:generic:all"),
    ("adw_plan_build_iso", "build:generic:all"),  # build's row comes before plan's
    ("adw_plan_iso", None), ("adw_patch_iso", None), ("adw_ship_iso", "deploy:ship:all"),
    ("adw_review_iso", "review:code:all"), ("adw_document_iso", None), (None, None),
    ("adw_sdlc_test_iso", None),  # full lifecycle first: not an operation
])
def test_template_layer(template, expected):
    assert template_signature(template) == expected


def test_layers_combine_in_order_without_repeats():
    wf = Workflow("w", "", "w", nl_input="Run backend tests with pytest", request="Run backend tests with pytest",
                  workflow_template="adw_test_iso", error_message="3 tests failed in pytest")
    assert detect_signatures(wf) == ("test:pytest:backend", "test:generic:all")


def test_full_lifecycle_template_alone_is_no_pattern():
    wf = Workflow("w", "", "w", nl_input="Add a dark mode toggle", request="Add a dark mode toggle",
                  workflow_template="adw_sdlc_iso")
    assert detect_signatures(wf) == ()


def test_characteristics():
    wf = Workflow("w", "", "w", nl_input="Run backend tests in tests/api/test_x.py and src/app.ts with pytest",
                  duration_seconds=200, error_count=1)
    c = characteristics(wf)
    assert c["keywords"] == ["test", "pytest", "run", "backend", "api"]  # "api" from tests/api/
    assert c["files_mentioned"] == ["tests/api/test_x.py", "src/app.ts"]
    assert c["duration_range"] == "medium"
    assert c["complexity"] == "simple"
    assert c["input_length"] == len(wf.nl_input)
    assert characteristics(Workflow("w", "", "w", duration_seconds=179))["duration_range"] == "short"
    assert characteristics(Workflow("w", "", "w", duration_seconds=600, error_count=6))["duration_range"] == "long"
    assert characteristics(Workflow("w", "", "w", error_count=6))["complexity"] == "complex"
    assert characteristics(Workflow("w", "", "w", error_count=4))["complexity"] == "medium"


def test_config_extends_and_replaces_rules(tmp_path):
    data = {"roots": [{"path": str(tmp_path), "name": "r"}], "database": "x.db",
            "detection": {"request_rules": [{"category": "lint", "keywords": ["ruff check"],
                                              "subcategories": [{"value": "ruff", "keywords": ["ruff"]}],
                                              "target": "all"}],
                          "error_rules": [{"keywords": ["mypy"], "signature": "build:typecheck:backend"}]}}
    cfg = parse_config(data, tmp_path / "config.yaml")
    assert request_signature("ruff check the code", None, cfg.rules) == "lint:ruff:all"
    assert request_signature("Run backend tests", None, cfg.rules) == "test:generic:backend"  # built-ins kept
    assert error_signatures("mypy found 2 errors", cfg.rules) == ["build:typecheck:backend"]
    data["detection"]["mode"] = "replace"
    cfg = parse_config(data, tmp_path / "config.yaml")
    assert request_signature("Run backend tests", None, cfg.rules) is None
    assert cfg.rules is not BUILTIN_RULES
