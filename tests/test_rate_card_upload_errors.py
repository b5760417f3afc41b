"""A rate card refused by `POST /v1/admin/rate-cards` names the uploaded card, never the server's
temporary directory, and lists the known columns in their declared order on every request."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from talktime.rating import shipped_card_dir

from apikit import ADMIN
from ratecards import copy_card

HEADER = "direction,country,per_segment,note"


def upload(**changes: str) -> dict[str, str]:
    """The shipped default card's files as an upload body, with some files replaced."""
    source = shipped_card_dir("default")
    files = {name: (source / name).read_text() for name in ("sms.csv", "voice.csv", "numbers.csv")}
    files["card.toml"] = (source / "card.toml").read_text().replace("2026.11.1", "2099.1")
    return {**files, **changes}


def sms_with_extra_columns() -> str:
    sms = (shipped_card_dir("default") / "sms.csv").read_text()
    assert HEADER in sms
    return sms.replace(HEADER, HEADER + ",colour,size,weight", 1)


def test_an_invalid_upload_names_the_uploaded_card_not_a_temporary_directory(api: Any) -> None:
    for body in [upload(**{"card.toml": "name = ["}), upload(**{"sms.csv": "direction\n"})]:
        response = api.post("/v1/admin/rate-cards", json=body, headers=ADMIN)
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == "invalid_rate_card"
        assert problem["detail"].startswith("the uploaded rate card is invalid: "), problem
        assert tempfile.gettempdir() not in response.text
        assert "/tmp" not in response.text


def test_unknown_columns_are_refused_listing_the_known_ones_in_declared_order(api: Any) -> None:
    body = upload(**{"sms.csv": sms_with_extra_columns()})
    details = set()
    for _ in range(3):
        response = api.post("/v1/admin/rate-cards", json=body, headers=ADMIN)
        assert response.status_code == 422, response.text
        details.add(response.json()["detail"])
        messages = [e["message"] for e in response.json()["errors"]]
        assert messages == [
            f"unknown column {name!r}; known: direction, country, per_segment, note"
            for name in ("colour", "size", "weight")
        ]
    assert len(details) == 1


def test_the_known_columns_message_is_the_same_under_any_hash_seed(tmp_path: Path) -> None:
    """Set order follows string hashes, which change with each process's hash seed."""
    card = copy_card(tmp_path / "c", replace={"sms.csv": (HEADER, HEADER + ",colour")})
    script = (
        "import sys\n"
        "from talktime.rating import InvalidRateCardError, read_card\n"
        "try:\n"
        "    read_card(sys.argv[1])\n"
        "except InvalidRateCardError as exc:\n"
        "    print(exc.extra['errors'][0]['message'])\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script, str(card)],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(6)
    }
    assert outputs == {"unknown column 'colour'; known: direction, country, per_segment, note\n"}
