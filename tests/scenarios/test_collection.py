"""Scenario files collected as test items, as users run them (pytester)."""

from __future__ import annotations

import shutil

import pytest

from .conftest import ROOT

SMALL = """\
name = "small outage"
description = "A short outage against two environments."
environments = 2
duration = 40
tick = 1.0

[config]
failure_threshold = 2
recovery_timeout = 10
success_threshold = 1

[[schedule]]
fault = "downstream_outage"
at = 5
duration = 10

[expect]
opens = true
closes_by = 35
"""


def test_items_per_adapter_and_summary(project: pytest.Pytester) -> None:
    (project.path / "scenarios" / "small.toml").write_text(SMALL)
    result = project.runpytest_inprocess(
        "scenarios", "--circuitbreaker-adapters=breaker,powertools", "--circuitbreaker-seed=5", "-v"
    )
    result.stdout.fnmatch_lines(
        [
            "*scenarios/small.toml::breaker PASSED*",
            "*scenarios/small.toml::powertools *",
            "*= circuit breaker scenarios =*",
            "scenario*adapter*verdict*",
            "small*breaker*pass*",
            "small*powertools*",
            "seed=5 *",
        ]
    )
    assert result.ret == 0


def test_default_adapter_is_ours_and_examples_option(project: pytest.Pytester) -> None:
    (project.path / "scenarios" / "small.toml").write_text(SMALL)
    result = project.runpytest_inprocess("scenarios", "--collect-only", "-q", "--circuitbreaker-examples=0")
    result.stdout.fnmatch_lines(["scenarios/small.toml::breaker"])
    assert "powertools" not in result.stdout.str()


def test_malformed_file_is_a_collection_error_naming_file_and_key(project: pytest.Pytester) -> None:
    (project.path / "scenarios" / "broken.toml").write_text(
        SMALL.replace("recovery_timeout", "recovery_timout")
    )
    result = project.runpytest_inprocess("scenarios")
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting scenarios/broken.toml*",
            "*scenarios/broken.toml: config.recovery_timout: unknown key; allowed here: failure_threshold*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_toml_syntax_error_names_the_line(project: pytest.Pytester) -> None:
    (project.path / "scenarios" / "broken.toml").write_text('name = "x"\nduration = \n')
    result = project.runpytest_inprocess("scenarios")
    result.stdout.fnmatch_lines(["*scenarios/broken.toml: (TOML syntax): *line 2*"])


def test_failing_scenario_fails_for_ours_and_xfails_for_others(project: pytest.Pytester) -> None:
    impossible = SMALL.replace("closes_by = 35", "closes_by = 6")
    (project.path / "scenarios" / "impossible.toml").write_text(impossible)
    result = project.runpytest_inprocess(
        "scenarios", "--circuitbreaker-adapters=breaker,powertools", "--circuitbreaker-examples=0", "-rxf"
    )
    result.stdout.fnmatch_lines(
        [
            "*expectation failed: closes_by = 6: the circuit closed at*",
            "*replay: --circuitbreaker-seed*",
            "XFAIL scenarios/impossible.toml::powertools - powertools (compared, not required): *closes_by = 6*",
        ]
    )
    result.assert_outcomes(failed=1, xfailed=1)
    strict = project.runpytest_inprocess(
        "scenarios",
        "--circuitbreaker-adapters=powertools",
        "--circuitbreaker-adapters-strict",
        "--circuitbreaker-examples=0",
    )
    strict.assert_outcomes(failed=1)


def test_unsupported_adapter_feature_is_skipped_with_the_reason(project: pytest.Pytester) -> None:
    (project.path / "scenarios" / "small.toml").write_text(
        SMALL.replace("[config]", '[traffic]\nmode = "async"\n\n[config]')
    )
    result = project.runpytest_inprocess("scenarios", "--circuitbreaker-adapters=pybreaker", "-rs")
    result.stdout.fnmatch_lines(["SKIPPED*pybreaker cannot run this scenario: *async*"])


def test_unknown_adapter_is_a_usage_error(project: pytest.Pytester) -> None:
    (project.path / "scenarios" / "small.toml").write_text(SMALL)
    result = project.runpytest_inprocess("scenarios", "--circuitbreaker-adapters=breaker,hystrix")
    result.stderr.fnmatch_lines(
        ["*--circuitbreaker-adapters: unknown adapter(s) hystrix; allowed: breaker, powertools, pybreaker*"]
    )


def test_scenario_directory_is_configurable_and_other_toml_is_ignored(project: pytest.Pytester) -> None:
    (project.path / "packs").mkdir()
    (project.path / "packs" / "small.toml").write_text(SMALL)
    (project.path / "scenarios" / "small.toml").write_text(SMALL)
    (project.path / "other.toml").write_text("not = scenario\n")
    project.makefile(
        ".ini",
        pytest=(project.path / "pytest.ini").read_text().rstrip() + "\ncircuitbreaker_scenarios = packs\n",
    )
    result = project.runpytest_inprocess("--collect-only", "-q", ".")
    out = result.stdout.str()
    assert "packs/small.toml::breaker" in out
    assert "scenarios/small.toml" not in out
    assert "other.toml" not in out


def test_shipped_packs_collect(project: pytest.Pytester) -> None:
    shutil.rmtree(project.path / "scenarios")
    shutil.copytree(ROOT / "scenarios", project.path / "scenarios")
    result = project.runpytest_inprocess(
        "scenarios", "--collect-only", "-q", "--circuitbreaker-adapters=breaker,powertools"
    )
    assert result.ret == 0
    assert result.stdout.str().count("::breaker") >= 12
    assert result.stdout.str().count("::powertools") >= 12
