"""`talktime quote ... --card ''` is refused like any unknown card name (it priced with the
default card, so a script whose card variable was empty got a quote from the wrong card)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from talktime.cli import app
from talktime.config import get_settings

US, US2 = "+14155550100", "+14155550111"


@pytest.mark.parametrize(
    "args",
    [
        ["quote", "number", "+61412345678"],
        ["quote", "sms", "hi", "--from", US, "--to", US2],
        ["quote", "call", "--from", US, "--to", US2, "--duration", "60"],
    ],
)
def test_an_empty_card_name_is_refused_not_read_as_the_default(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALKTIME_CONFIG", "")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        refused = runner.invoke(app, [*args, "--card", ""])
        default = runner.invoke(app, args)
    finally:
        get_settings.cache_clear()
    assert refused.exit_code == 1
    assert "error[rate_card_not_found]" in refused.output
    assert default.exit_code == 0, default.output
