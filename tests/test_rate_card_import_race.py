"""Concurrent imports of one rate card, by threads, processes and parallel admin requests: of
one version with different content exactly one is stored, whole (all four files of one upload),
and the others are refused; of two versions in different currencies one is refused; nothing
partial is ever stored, and a crashed import's leftovers do not stand in the way.

Before, every import of a version shared one staging directory (`.{version}.importing`) that
each removed first, and nothing was locked: parallel imports failed with 500
(FileNotFoundError), stored one upload's card.toml with another's CSVs, left a version directory
without card.toml, or stored a USD and an EUR version of one card."""

from __future__ import annotations

import multiprocessing
import os
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from talktime.rating import (
    RateCardCurrencyError,
    RateCardVersionExistsError,
    import_card,
    list_cards,
    load_card,
    read_card,
)
from talktime.rating.loader import FILES, activate_card, deactivate_card, pinned_version

from apikit import ADMIN
from ratecards import FIRST_SHIPPED, SHIPPED, copy_card

N = 6
ROUNDS = 3


def upload(target: Path, i: int, *, name: str = "default", version: str = "2099.1") -> Path:
    """Card `name` `version` whose four files all differ from every other `i`'s."""
    return copy_card(
        target,
        header={"name": f'"{name}"', "version": f'"{version}"', "description": f'"upload {i}"'},
        replace={
            "sms.csv": ("outbound,GB,0.04,", f"outbound,GB,0.0{i + 1}1,"),
            "numbers.csv": ("US,local,1.00,", f"US,local,{i + 1}.00,"),
        },
        append={"voice.csv": f"# upload {i}\n"},
    )


def files(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in FILES}


def _import(source: str, store: str) -> tuple[str, str]:
    """Import `source`; ("new" | "same", version) or ("refused", the refusal's code)."""
    try:
        card, new = import_card(source, store)
    except (RateCardVersionExistsError, RateCardCurrencyError) as exc:
        return "refused", exc.code
    return ("new" if new else "same"), card.version


def _in_threads(sources: list[Path], store: Path) -> list[tuple[str, str]]:
    barrier = threading.Barrier(len(sources))

    def run(source: Path) -> tuple[str, str]:
        barrier.wait()
        return _import(str(source), str(store))

    with ThreadPoolExecutor(max_workers=len(sources)) as pool:
        return list(pool.map(run, sources))


def _process(index: int, source: str, store: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        results.put((index, _import(source, store)))
    except BaseException as exc:  # reported to the test, not lost with the process
        results.put((index, ("crashed", repr(exc))))


def _in_processes(sources: list[Path], store: Path) -> list[tuple[str, str]]:
    """Import each source in a process of its own (spawned: a fresh interpreter, as a server
    worker is), all released at once."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(sources))
    results = context.Queue()
    processes = [
        context.Process(target=_process, args=(i, str(s), str(store), barrier, results))
        for i, s in enumerate(sources)
    ]
    for process in processes:
        process.start()
    got = dict(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return [got[i] for i in range(len(sources))]


Racer = Callable[[list[Path], Path], list[tuple[str, str]]]
RACERS = [pytest.param(_in_threads, id="threads"), pytest.param(_in_processes, id="processes")]


def only_versions(store: Path, name: str) -> set[str]:
    """Every entry of card `name`'s directory (a leftover shows among them)."""
    return {p.name for p in (store / name).iterdir()}


@pytest.mark.parametrize("race", RACERS)
def test_parallel_imports_of_one_version_store_exactly_one_upload_whole(
    race: Racer, tmp_path: Path
) -> None:
    store = tmp_path / "cards"
    for round_ in range(ROUNDS):
        version = f"2099.{round_}"
        sources = [upload(tmp_path / f"{round_}-{i}", i, version=version) for i in range(N)]
        results = race(sources, store)
        winners = [s for s, (state, _) in zip(sources, results, strict=True) if state == "new"]
        assert len(winners) == 1, results
        assert sorted(results).count(("refused", "rate_card_version_exists")) == N - 1, results
        # the stored version is one upload exactly: its card.toml with its own CSVs
        assert files(store / "default" / version) == files(winners[0])
        stored = load_card("default", version, directory=store)
        assert stored.digest == read_card(winners[0]).digest
    assert only_versions(store, "default") == {f"2099.{r}" for r in range(ROUNDS)}


@pytest.mark.parametrize("race", RACERS)
def test_parallel_first_versions_of_a_card_in_two_currencies_refuse_one(
    race: Racer, tmp_path: Path
) -> None:
    store = tmp_path / "cards"
    for round_ in range(ROUNDS):
        name = f"race{round_}"
        usd = upload(tmp_path / f"{round_}-usd", 0, name=name, version="a")
        eur = copy_card(
            tmp_path / f"{round_}-eur",
            header={"name": f'"{name}"', "version": '"b"', "currency": '"EUR"'},
        )
        results = race([usd, eur] * (N // 2), store)
        assert sorted({state for state, _ in results}) == ["new", "refused", "same"], results
        assert {code for state, code in results if state == "refused"} == {
            "rate_card_currency_mismatch"
        }
        versions = [c for c in list_cards(store) if c.name == name]
        assert len(versions) == 1
        assert only_versions(store, name) == {versions[0].version}


def test_parallel_admin_uploads_of_one_version_answer_one_201_and_store_it_whole(
    api: Any, tmp_path: Path
) -> None:
    sources = [upload(tmp_path / str(i), i) for i in range(N)]
    bodies = [{name: (s / name).read_text() for name in FILES} for s in sources]
    barrier = threading.Barrier(N)

    def post(body: dict[str, str]) -> Any:
        barrier.wait()
        return api.post("/v1/admin/rate-cards", json=body, headers=ADMIN)

    with ThreadPoolExecutor(max_workers=N) as pool:
        answers = list(pool.map(post, bodies))
    statuses = [a.status_code for a in answers]
    assert sorted(statuses) == [201] + [409] * (N - 1), [a.text for a in answers]
    assert all(
        a.json()["code"] == "rate_card_version_exists" for a in answers if a.status_code != 201
    )
    winner = sources[statuses.index(201)]
    store = tmp_path / "cards"
    assert files(store / "default" / "2099.1") == files(winner)
    listed = api.get("/v1/admin/rate-cards", headers=ADMIN).json()["cards"]
    assert [c["version"] for c in listed if c["name"] == "default"] == [
        FIRST_SHIPPED,
        SHIPPED,
        "2099.1",
    ]


def test_a_crashed_imports_leftovers_are_ignored_and_removed_by_the_next_import(
    tmp_path: Path,
) -> None:
    store = tmp_path / "cards"
    base = store / "default"
    # a staging directory of an import that died mid-copy, and a version directory without
    # card.toml as the unlocked imports used to leave
    (base / ".2099.1.0123abcd.importing").mkdir(parents=True)
    (base / ".2099.1.0123abcd.importing" / "sms.csv").write_text("direction\n")
    (base / "2099.1").mkdir()
    (base / "2099.1" / "sms.csv").write_text("direction\n")
    assert [c.version for c in list_cards(store) if c.name == "default"] == [FIRST_SHIPPED, SHIPPED]
    source = upload(tmp_path / "up", 0)
    card, new = import_card(source, store)
    assert (card.version, new) == ("2099.1", True)
    assert files(base / "2099.1") == files(source)
    assert only_versions(store, "default") == {"2099.1"}


def test_the_card_lock_file_is_made_with_the_umasks_permissions_and_opened_read_only(
    tmp_path: Path,
) -> None:
    # it was created 0o644 and opened read-write, so an operator's CLI user in the server's
    # group could no longer import into a group-writable directory (PermissionError)
    cards = tmp_path / "cards"
    cards.mkdir()
    old = os.umask(0o002)
    try:
        import_card(copy_card(tmp_path / "src", header={"name": '"mine"'}), cards)
    finally:
        os.umask(old)
    lock = cards / ".mine.lock"
    assert stat.S_IMODE(lock.stat().st_mode) == 0o664
    lock.chmod(0o444)  # read-only to everyone: an import still locks it
    _stored, new = import_card(copy_card(tmp_path / "src2", header={"name": '"mine"'}), cards)
    assert new is False


def test_reimporting_a_stored_card_into_a_read_only_directory_changes_nothing(
    tmp_path: Path,
) -> None:
    cards = tmp_path / "cards"
    cards.mkdir()
    import_card(copy_card(tmp_path / "src", header={"name": '"mine"'}), cards)
    (cards / ".mine.lock").unlink()
    for path in (cards, cards / "mine"):
        path.chmod(0o555)
    try:
        _stored, new = import_card(copy_card(tmp_path / "src2", header={"name": '"mine"'}), cards)
    finally:
        for path in (cards, cards / "mine"):
            path.chmod(0o755)
    assert new is False
    assert not (cards / ".mine.lock").exists()  # decided before any lock or staging


def _activate(name: str, version: str, store: str) -> bool:
    return activate_card(name, version, store)[1]


def test_parallel_activations_of_one_version_say_changed_once_and_leave_one_whole_pin(
    tmp_path: Path,
) -> None:
    """Activation takes the card's lock as imports do: of N simultaneous activations of one
    version exactly one changed the pin (before, each read the old pin first and all said so);
    the pin names one version and no staging file is left beside it."""
    store = tmp_path / "cards"
    for i, version in enumerate(("2099.1", "2099.2")):
        import_card(upload(tmp_path / f"up-{i}", i, version=version), store)
    for version in ("2099.1", "2099.2", "2099.1"):
        barrier = threading.Barrier(N)

        def run(version: str = version, barrier: threading.Barrier = barrier) -> bool:
            barrier.wait()
            return _activate("default", version, str(store))

        with ThreadPoolExecutor(max_workers=N) as pool:
            changed = list(pool.map(lambda _: run(), range(N)))
        assert changed.count(True) == 1, changed
        assert pinned_version("default", store) == version
        assert {p.name for p in (store / "default").iterdir()} == {"ACTIVE", "2099.1", "2099.2"}
    with ThreadPoolExecutor(max_workers=N) as pool:
        removed = list(pool.map(lambda _: deactivate_card("default", str(store)), range(N)))
    assert removed.count(True) == 1, removed
    assert pinned_version("default", store) is None
