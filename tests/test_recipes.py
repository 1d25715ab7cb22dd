"""How to automate a pattern (issue 19, item 4): a recipe per built-in signature, as data
beside the rules; config.yaml overrides or adds; `show` and the report print it."""

from __future__ import annotations

import json

import pytest

from adw_patternd.cli import main
from adw_patternd.core.recipes import BUILTIN_RECIPES, recipe_for
from adw_patternd.core.rules import BUILTIN_RULES
from helpers import write_config
from test_sync import make_workflow


def test_every_built_in_signature_has_a_recipe():
    signatures = {r.signature for r in BUILTIN_RULES.roles} | {c.signature for c in BUILTIN_RULES.commands}
    signatures |= {e.signature for e in BUILTIN_RULES.error} | {t.signature for t in BUILTIN_RULES.template
                                                                 if t.signature}
    for rule in BUILTIN_RULES.request:
        signatures |= {f"{rule.category}:{s.value}:{rule.target}" for s in rule.subcategories}
    for sig in sorted(signatures):
        concrete = sig.replace("<t>", "frontend").replace("*", "all")
        assert recipe_for(concrete), f"{sig} has no recipe"
    assert "git add -A && git commit" in recipe_for("git:commit:all")
    assert "npx tsc --noEmit" in recipe_for("build:typecheck:frontend")
    assert "label" in recipe_for("classify:issue:all")
    assert all(len(text) < 300 for text in BUILTIN_RECIPES.values())  # short


def test_show_prints_the_recipe_and_config_overrides_it(tmp_path, root, capsys):
    make_workflow(root, "r0000001")  # test:pytest:backend
    recipes = {"test:pytest:*": "Run `make test` from the ADW's code."}
    cfg = write_config(tmp_path, {"main": root}, str(tmp_path / "p.db"), recipes=recipes)
    assert main(["sync", "--config", str(cfg)]) == 0
    capsys.readouterr()
    assert main(["show", "test:pytest:backend", "--json", "--config", str(cfg)]) == 0
    assert json.loads(capsys.readouterr().out)["recipe"] == "Run `make test` from the ADW's code."
    plain = write_config(tmp_path, {"main": root}, str(tmp_path / "p.db"))
    assert main(["show", "test:pytest:backend", "--config", str(plain)]) == 0
    assert f"how to automate it: {recipe_for('test:pytest:backend')}" in capsys.readouterr().out
    assert main(["report", "--html", str(tmp_path / "r.html"), "--config", str(plain)]) == 0
    assert "How to automate it:" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("recipes, problem", [
    ({"pytest": "x"}, "recipes.pytest: a recipe's key is a signature"),
    ({"test:pytest:*": ""}, "recipes.test:pytest:*: expected the recipe as text"),
])
def test_a_bad_recipe_is_one_line(tmp_path, root, capsys, recipes, problem):
    cfg = write_config(tmp_path, {"main": root}, str(tmp_path / "p.db"), recipes=recipes)
    assert main(["check-config", "--config", str(cfg)]) == 2
    assert problem in capsys.readouterr().err
