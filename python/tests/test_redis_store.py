"""RedisStore and open_store against a real redis-server (started on a free loopback port with
`--save ''` by conftest): round trips, one login shared by many clients each with its own store
instance (as separate machines would have), configuration errors, an unreachable Redis."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

import tessera
from conftest import CLIENT_SECRET, Idp, Redis


def test_round_trip_under_the_prefix(redis: Redis) -> None:
    store = tessera.RedisStore(redis.url, prefix="billing:")
    assert store.prefix == "billing:" and store.tokens_key("a/b") == "billing:tokens:a/b"
    assert store.lock_key("a/b") == "billing:lock:a/b"
    assert store.load("a/b") is None
    refresh_expires_at = tessera.current_time_ms() / 1000 + 600
    tokens = tessera.TokenSet("access-1", expires_in=300, refresh_token="refresh-1", refresh_expires_at=refresh_expires_at)
    store.save("a/b", tokens)
    assert store.load("a/b") == tokens
    assert redis.command("EXISTS", "billing:tokens:a/b").strip() == ":1"
    ttl = int(redis.command("PTTL", "billing:tokens:a/b").strip().lstrip(":"))
    assert 500_000 < ttl <= 600_000, f"the set lives as long as its refresh token (pttl {ttl})"
    store.clear("a/b")
    assert store.load("a/b") is None
    assert redis.command("EXISTS", "billing:tokens:a/b").strip() == ":0"


def test_clients_on_many_store_instances_share_one_login(idp: Idp, redis: Redis) -> None:
    first = tessera.SyncClient(idp.issuer, key="fleet", store=tessera.RedisStore(redis.url), **idp.client_kwargs())
    header = first.authorization_header()
    second = tessera.SyncClient(idp.issuer, key="fleet", store=tessera.RedisStore(redis.url), **idp.client_kwargs())
    assert second.authorization_header() == header, "the second worker adopts the stored token"
    stats = idp.stats()
    assert (stats["token_requests"], stats["password_grants"]) == (1, 1), stats


async def test_sixteen_workers_at_once_cause_one_login(idp: Idp, redis: Redis) -> None:
    workers = [
        tessera.Client(idp.issuer, key="fleet", store=tessera.RedisStore(redis.url), **idp.client_kwargs())
        for _ in range(16)
    ]
    headers = await asyncio.wait_for(asyncio.gather(*(w.authorization_header() for w in workers)), 30)
    assert len(set(headers)) == 1, "every worker got the one token the lock holder obtained"
    assert idp.stats()["password_grants"] == 1
    # A forced refresh by one worker rotates the token for all (they re-read the store on their next miss).
    new = await workers[0].force_refresh()
    assert new != headers[0]
    assert idp.stats()["refresh_grants"] == 1


def test_open_store_from_configuration(redis: Redis, monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("TESSERA_TEST_REDIS_URL", redis.url)
    store = tessera.open_store({"kind": "redis", "url": "env:TESSERA_TEST_REDIS_URL", "prefix": "cfg:", "lease_ms": 5000})
    assert isinstance(store, tessera.RedisStore) and store.prefix == "cfg:"
    store.save("k", tessera.TokenSet("t", expires_in=60))
    assert redis.command("EXISTS", "cfg:tokens:k").strip() == ":1"
    assert isinstance(tessera.open_store({"kind": "memory"}), tessera.MemoryStore)
    file_store = tessera.open_store({"kind": "file"}, default_dir=str(tmp_path))
    assert isinstance(file_store, tessera.FileStore) and str(file_store.path) == str(tmp_path)


def test_configuration_errors_are_typed_and_hide_the_password() -> None:
    with pytest.raises(tessera.ConfigurationError, match="etcd"):
        tessera.open_store({"kind": "etcd"})
    with pytest.raises(tessera.ConfigurationError, match="TESSERA_TEST_UNSET_REDIS_URL"):
        tessera.open_store({"kind": "redis", "url": "env:TESSERA_TEST_UNSET_REDIS_URL"})
    with pytest.raises(tessera.ConfigurationError, match="lease"):
        tessera.open_store({"kind": "redis", "url": "redis://127.0.0.1:1", "lease_ms": 5})
    with pytest.raises(tessera.ConfigurationError) as bad_url:
        tessera.RedisStore("http://user:hunter2@127.0.0.1:1")
    assert "hunter2" not in str(bad_url.value)
    with pytest.raises(tessera.ConfigurationError, match="lease"):
        tessera.RedisStore("redis://127.0.0.1:1", lease=0.01)
    with pytest.raises(tessera.ConfigurationError, match="ca_certificate"):
        tessera.RedisStore("rediss://127.0.0.1:1", ca_certificate="/nonexistent/ca.pem")
    store = tessera.RedisStore("redis://user:hunter2@127.0.0.1:1/0")
    assert "hunter2" not in repr(store) and "***" in repr(store)


def test_a_ca_file_is_read_as_every_ca_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A FIFO is refused before it is opened for reading (the read used to wait for a writer).
    fifo = tmp_path / "fifo.pem"
    os.mkfifo(fifo)
    with pytest.raises(tessera.ConfigurationError, match="ca_certificate: is not a regular file"):
        tessera.RedisStore("rediss://127.0.0.1:1", ca_certificate=str(fifo))
    # `~` is the home directory in open_store's ca_file too, and a bundle others can write is refused.
    monkeypatch.setenv("HOME", str(tmp_path))
    loose = tmp_path / "ca.pem"
    loose.write_text("-----BEGIN CERTIFICATE-----\n")
    loose.chmod(0o666)
    with pytest.raises(tessera.ConfigurationError, match="store ca_file: is writable by group or others") as raised:
        tessera.open_store({"kind": "redis", "url": "rediss://127.0.0.1:1", "ca_file": "~/ca.pem"})
    assert str(tmp_path) not in str(raised.value)


def test_unreachable_redis_is_a_store_error(idp: Idp) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    store = tessera.RedisStore(f"redis://:{CLIENT_SECRET}@127.0.0.1:{closed_port}", command_timeout=1)
    with pytest.raises(tessera.StoreError) as failure:
        store.load("k")
    assert failure.value.store_kind == "unavailable" and CLIENT_SECRET not in str(failure.value)
    client = tessera.SyncClient(idp.issuer, store=store, **idp.client_kwargs())
    with pytest.raises(tessera.StoreError):
        client.authorization_header()
