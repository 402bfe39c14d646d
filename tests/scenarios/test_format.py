"""Malformed scenario files fail with a message naming the file and the key (or the TOML line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_circuitbreaker.scenario_format import ScenarioError, load_scenario

from .conftest import PACKS


def write(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "key", "allowed"),
    [
        ('name = "x"\nenvironmnets = 3\n', "environmnets", "allowed here: "),
        ('name = "x"\nenvironments = 0\n', "environments", "must be an int from 1 to 500"),
        ('name = "x"\n[traffic]\nmode = "threads"\n', "traffic.mode", "must be one of sync, async"),
        ('name = "x"\n[[schedule]]\nfault = "meteor"\nat = 1\n', "schedule[0].fault", "must be one of"),
        (
            'name = "x"\n[[schedule]]\nfault = "downstream_error_rate"\nat = 1\n',
            "schedule[0].rate",
            "is required",
        ),
        (
            'name = "x"\n[[schedule]]\nfault = "downstream_outage"\nat = 1\nrate = 0.5\n',
            "schedule[0].rate",
            "unknown key",
        ),
        ('name = "x"\nchecks = ["one_probe", "vibes"]\n', "checks", "allowed: legal_paths"),
        ('name = "x"\n[expect]\ncloses_by = 999\n', "expect.closes_by", "must be a number in [0.0, 120.0]"),
        ('name = "x"\n[expect]\nopens_after = -1\n', "expect.opens_after", "must be a number"),
        ('name = "x"\njitter = "lots"\n', "jitter", "must be a number"),
        ("[config]\nfailure_threshold = 3\n", "name", "is required"),
        ('name = "x"\n[config]\nfailure_threshold = 0\n', "config", "failure_threshold"),
    ],
)
def test_bad_key_names_file_key_and_what_is_allowed(
    tmp_path: Path, text: str, key: str, allowed: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}: ")
    assert allowed in message
    assert caught.value.key == key


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "x"\nenvironments = 3\nduration = = 4\n')
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(caught.value).startswith(f"{path}: (TOML syntax): ")
    assert "line 3" in str(caught.value)


def test_every_pack_loads_and_documents_itself() -> None:
    assert len(PACKS) >= 12
    for path in PACKS:
        scenario = load_scenario(path)
        assert len(scenario.description.split()) >= 20, (
            f"{path.name}: describe what it shows in a few sentences"
        )
        assert scenario.expect.to_dict(), f"{path.name}: expects nothing"


def test_jitter_and_opens_after_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "x"\njitter = 2.5\n[expect]\nopens_after = 10\n')
    scenario = load_scenario(path)
    assert scenario.jitter == 2.5
    assert scenario.expect.opens_after == 10.0
    assert scenario.to_dict()["jitter"] == 2.5
