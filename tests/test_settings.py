"""One table of options (runner/settings.py) makes the Click parameters, `.config`'s schema and
docs/options.md; these check that nothing drifted from it."""

from __future__ import annotations

import dataclasses
import json

from runner.cli import capacity_cmd, cli
from runner.settings import REFERENCE_FILE, SCHEMA_FILE, SETTINGS, config_schema, reference, to_options
from runner.spec import Options


def test_every_options_field_is_set_by_exactly_one_option() -> None:
    set_by = [name for setting in SETTINGS for name in setting.fields]
    assert sorted(set_by) == sorted(f.name for f in dataclasses.fields(Options))
    assert len(set_by) == len(set(set_by))


def test_the_cli_defaults_are_the_options_defaults() -> None:
    """An option not given is the Options default: the table and the record cannot disagree."""
    context = cli.make_context("runner", [])
    assert to_options(dict(context.params)) == Options()


def test_the_schema_and_the_reference_are_what_the_table_makes() -> None:
    """`python -m runner.settings` writes both; a setting changed without it fails here."""
    assert json.loads(SCHEMA_FILE.read_text())["properties"]["config"] == config_schema()
    assert REFERENCE_FILE.read_text() == reference()
    for setting in SETTINGS:
        assert f"`{setting.flag}`" in REFERENCE_FILE.read_text()


def test_capacity_takes_the_options_that_do_not_set_the_load() -> None:
    names = {param.name for param in capacity_cmd.params}
    for setting in SETTINGS:
        assert (setting.name in names) is setting.capacity, setting.name
    assert {"slos", "start_rate", "step"} <= names


def test_an_option_given_is_parsed_into_its_fields() -> None:
    context = cli.make_context("runner", ["--warmup", "5s", "--max-errors", "5%", "--think", "exp:100ms", "--stages", "30s:10",
                                          "--statement-cache", "off", "--pg-setting", "a=b"])
    options = to_options(dict(context.params))
    assert (options.warmup_ops, options.warmup_s, options.max_errors, options.max_error_ratio) == (0, 5.0, None, 0.05)
    assert (options.think_s, options.think_dist, options.stage_kind) == (0.1, "exp", "concurrency")
    assert options.stages == (("hold", 30.0, 10.0),) and options.statement_cache is False and options.pg_settings == (("a", "b"),)
