"""README walkthrough (Rate card format): "Loading validates everything before a card is used
and reports every problem at once with file, line and column"."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from talktime.rating import InvalidRateCardError, read_card
from talktime.rating.loader import shipped_card_dir


def _card(tmp_path: Path) -> Path:
    path = tmp_path / "card"
    shutil.copytree(shipped_card_dir("default"), path)
    return path


def _problems(path: Path) -> list[tuple[str, int, int, str]]:
    with pytest.raises(InvalidRateCardError) as caught:
        read_card(path)
    errors = caught.value.to_dict()["errors"]
    return [(e["file"], e["line"], e["column"], e["message"]) for e in errors]


@pytest.mark.parametrize(
    "header_problem",
    ['colour = "red"\n', 'name = "unterminated\n'],
    ids=["unknown-key", "not-toml"],
)
def test_a_card_toml_problem_does_not_hide_the_problems_of_the_csv_files(
    tmp_path: Path, header_problem: str
) -> None:
    path = _card(tmp_path)
    toml = path / "card.toml"
    toml.write_text(header_problem + toml.read_text())
    with (path / "voice.csv").open("a") as f:
        f.write("outbound,US,GB,local,,1.5e3,x\n")

    files = {problem[0] for problem in _problems(path)}

    assert files == {"card.toml", "voice.csv"}


def test_a_prefix_override_that_is_not_a_prefix_is_reported_at_its_line(tmp_path: Path) -> None:
    path = _card(tmp_path)
    toml = path / "card.toml"
    toml.write_text(toml.read_text() + 'colour = "mobile"\n')  # under [overrides.prefix_types]
    last = len(toml.read_text().splitlines())

    (problem,) = _problems(path)

    assert problem[:3] == ("card.toml", last, 1)
    assert "'colour' is not a +digits prefix" in problem[3]


def test_rates_validate_prints_a_whole_file_problem_without_a_line_and_column(
    tmp_path: Path, cli: Any
) -> None:
    from talktime.cli import app

    path = _card(tmp_path)
    (path / "sms.csv").unlink()
    result = cli.invoke(app, ["rates", "validate", str(path)])
    assert result.exit_code == 1
    assert f"{path / 'sms.csv'}: missing" in result.stderr
    assert ":0:0" not in result.stderr
