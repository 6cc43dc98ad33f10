"""Stores: MemoryStore, FileStore, and Python objects with sync or async load/save/clear, from
the async and the sync front ends; a store that raises propagates its exception."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
from pathlib import Path
from typing import Dict, List, Optional

import pytest

import tessera
from conftest import Idp


class SyncDictStore:
    """A sync store: its methods must run off the event loop thread."""

    def __init__(self) -> None:
        self.data: Dict[str, str] = {}
        self.calls: List[str] = []
        self.threads: List[int] = []

    def load(self, key: str) -> Optional[tessera.TokenSet]:
        self._note("load")
        text = self.data.get(key)
        return None if text is None else tessera.TokenSet.from_json(text)

    def save(self, key: str, tokens: tessera.TokenSet) -> None:
        self._note("save")
        self.data[key] = tokens.to_json()

    def clear(self, key: str) -> None:
        self._note("clear")
        self.data.pop(key, None)

    def _note(self, name: str) -> None:
        self.calls.append(name)
        self.threads.append(threading.get_ident())


class AsyncDictStore:
    """An async store: awaited on the caller's event loop."""

    def __init__(self) -> None:
        self.data: Dict[str, dict] = {}
        self.calls: List[str] = []
        self.loops: List[Optional[asyncio.AbstractEventLoop]] = []

    async def load(self, key: str) -> Optional[dict]:
        await self._note("load")
        return self.data.get(key)  # a dict of to_json() is accepted too

    async def save(self, key: str, tokens: tessera.TokenSet) -> None:
        await self._note("save")
        self.data[key] = json.loads(tokens.to_json())

    async def clear(self, key: str) -> None:
        await self._note("clear")
        self.data.pop(key, None)

    async def _note(self, name: str) -> None:
        await asyncio.sleep(0)
        self.calls.append(name)
        self.loops.append(asyncio.get_running_loop())


class StoreDown(Exception):
    pass


class BrokenStore:
    def load(self, key: str) -> None:
        raise StoreDown("the database is down")

    def save(self, key: str, tokens: tessera.TokenSet) -> None:
        raise StoreDown("read-only")


class AsyncSaveFails:
    def __init__(self) -> None:
        self.loaded = 0

    async def load(self, key: str) -> None:
        self.loaded += 1
        return None

    async def save(self, key: str, tokens: tessera.TokenSet) -> None:
        raise StoreDown("async save failed")


async def test_sync_python_store_runs_off_the_event_loop(idp: Idp) -> None:
    store = SyncDictStore()
    c = tessera.Client(idp.issuer, store=store, key="alice", **idp.client_kwargs())
    header = await c.authorization_header()
    assert "save" in store.calls and "alice" in store.data
    assert threading.get_ident() not in store.threads, "sync store methods never run on the loop thread"
    assert "SyncDictStore" in repr(c)

    # A second client (another process, in effect) adopts the stored tokens without a request.
    other = tessera.Client(idp.issuer, store=store, key="alice", **idp.client_kwargs())
    assert await other.authorization_header() == header
    assert idp.stats()["token_requests"] == 1

    await other.clear()
    assert "alice" not in store.data and store.calls[-1] == "clear"


async def test_async_python_store_is_awaited_on_the_callers_loop(idp: Idp) -> None:
    store = AsyncDictStore()
    c = tessera.Client(idp.issuer, store=store, **idp.client_kwargs())
    await c.authorization_header()
    assert store.calls[:1] == ["load"] and "save" in store.calls
    assert set(store.loops) == {asyncio.get_running_loop()}
    assert tessera.TokenSet.from_json(json.dumps(store.data["default"])).access_token == await c.access_token()
    result = await c.logout()
    assert result.revoked and store.data == {}


def test_async_python_store_from_the_sync_client(idp: Idp) -> None:
    store = AsyncDictStore()
    c = tessera.SyncClient(idp.issuer, store=store, **idp.client_kwargs())
    header = c.authorization_header()
    assert "save" in store.calls and store.data
    assert tessera.SyncClient(idp.issuer, store=store, **idp.client_kwargs()).authorization_header() == header
    assert idp.stats()["token_requests"] == 1


def test_sync_python_store_from_the_sync_client(idp: Idp) -> None:
    store = SyncDictStore()
    with tessera.SyncClient(idp.issuer, store=store, **idp.client_kwargs()) as c:
        c.login()
        c.force_refresh()
    assert store.calls.count("save") == 2
    stored = tessera.TokenSet.from_json(store.data["default"])
    assert stored.access_token == c.access_token()


async def test_a_store_that_raises_propagates_its_exception(idp: Idp) -> None:
    c = tessera.Client(idp.issuer, store=BrokenStore(), **idp.client_kwargs())
    with pytest.raises(StoreDown, match="the database is down"):
        await c.authorization_header()
    with pytest.raises(StoreDown):
        tessera.SyncClient(idp.issuer, store=BrokenStore(), **idp.client_kwargs()).authorization_header()

    failing = AsyncSaveFails()
    with pytest.raises(StoreDown, match="async save failed"):
        await tessera.Client(idp.issuer, store=failing, **idp.client_kwargs()).login()


async def test_a_store_returning_garbage_is_a_store_error(idp: Idp) -> None:
    class Garbage:
        def load(self, key: str) -> int:
            return 42

        def save(self, key: str, tokens: tessera.TokenSet) -> None:
            pass

    with pytest.raises(tessera.StoreError) as raised:
        await tessera.Client(idp.issuer, store=Garbage(), **idp.client_kwargs()).authorization_header()
    assert raised.value.store_kind == "corrupt" and raised.value.location == "Garbage()"


async def test_store_without_clear_is_accepted(idp: Idp) -> None:
    class NoClear:
        def __init__(self) -> None:
            self.saved: Dict[str, tessera.TokenSet] = {}

        def load(self, key: str) -> Optional[tessera.TokenSet]:
            return self.saved.get(key)

        def save(self, key: str, tokens: tessera.TokenSet) -> None:
            self.saved[key] = tokens

    store = NoClear()
    c = tessera.Client(idp.issuer, store=store, **idp.client_kwargs())
    await c.authorization_header()
    await c.clear()
    assert c.cached_header() is None


async def test_file_store_persists_with_private_permissions(idp: Idp, tmp_path: Path) -> None:
    directory = tmp_path / "tokens"
    store = tessera.FileStore(directory)
    assert store.path == directory
    c = tessera.Client(idp.issuer, store=store, key="dev/alice", **idp.client_kwargs())
    header = await c.authorization_header()
    token_file = directory / "tokens.json"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700

    # Another client on the same directory (a new process) reuses the tokens.
    again = tessera.SyncClient(idp.issuer, store=tessera.FileStore(str(directory)), key="dev/alice", **idp.client_kwargs())
    assert again.authorization_header() == header
    assert idp.stats()["token_requests"] == 1
    loaded = store.load("dev/alice")
    assert loaded is not None and "Bearer " + loaded.access_token == header
    again.logout()
    assert store.load("dev/alice") is None


def test_file_store_expands_a_leading_tilde(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # tessera's own pages write FileStore("~/.cache/my-app"): that is the home directory, as in a shell,
    # never a directory named "~" under the current one.
    home, elsewhere = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    elsewhere.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(elsewhere)
    tokens = tessera.TokenSet("at-1", expires_in=60)
    for given in ("~/.cache/my-app", Path("~/.cache/my-app")):
        store = tessera.FileStore(given)
        assert Path(store.path) == home / ".cache" / "my-app"
        store.save("k", tokens)
        assert (home / ".cache" / "my-app" / "tokens.json").is_file()
        loaded = store.load("k")
        assert loaded is not None and loaded.access_token == "at-1"
    assert not (elsewhere / "~").exists(), "no literal ./~ directory"
    assert Path(tessera.FileStore("~").path) == home
    # Only a leading ~: a ~ further in is a plain name.
    assert Path(tessera.FileStore("data/~/x").path) == Path("data/~/x")
    # The same for a store described like the configuration's `store = { kind = "file", dir = ... }`.
    described = tessera.open_store({"kind": "file", "dir": "~/described"})
    described.save("k", tokens)
    assert (home / "described" / "tokens.json").is_file() and not (elsewhere / "~").exists()
    defaulted = tessera.open_store({"kind": "file"}, default_dir="~/default")
    defaulted.save("k", tokens)
    assert (home / "default" / "tokens.json").is_file()


def test_file_store_refuses_a_readable_file(tmp_path: Path) -> None:
    directory = tmp_path / "lax"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    (directory / "tokens.json").write_text('{"version": 1, "tokens": {}}')
    with pytest.raises(tessera.StoreError) as raised:
        tessera.FileStore(directory).load("any")
    assert raised.value.store_kind == "insecure_permissions"


def test_memory_store_can_be_shared(idp: Idp) -> None:
    store = tessera.MemoryStore()
    first = tessera.SyncClient(idp.issuer, store=store, **idp.client_kwargs())
    second = tessera.SyncClient(idp.issuer, store=store, **idp.client_kwargs())
    assert first.authorization_header() == second.authorization_header()
    assert idp.stats()["token_requests"] == 1
    assert store.load("default") is not None and store.load("other") is None
