"""Token chains against the reference IdP's /chain endpoints: one network login serves several
domains, the state round-trips without a request while valid, and the export holds no credential."""

from __future__ import annotations

import asyncio
import json

import pytest

import tessera

from conftest import ALICE, CLIENT_ID, CLIENT_SECRET, SECRETS, Idp


def chain(idp: Idp) -> tessera.ChainConfig:
    return tessera.ChainConfig(
        tessera.Stage.http_post(idp.url("/chain/discovery")),
        tessera.Stage.http_post(idp.url("/chain/domains/{domain_id}/access")),
        refresh_threshold=30,
    )


def network(idp: Idp) -> tessera.Client:
    return tessera.Client(
        idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, grant=tessera.Password(*ALICE), scope="openid"
    )


def counts(idp: Idp) -> tuple:
    stats = idp.stats()
    return (
        stats["password_grants"],
        stats["refresh_grants"],
        stats["chain_discovery_requests"],
        stats["chain_domain_access_requests"],
    )


def test_one_login_serves_three_domains_and_the_state_round_trips(idp: Idp) -> None:
    async def main() -> None:
        client = tessera.DomainClient(network(idp), chain(idp))
        accesses = [await client.get_domain_access(id) for id in ("alpha", "beta", "gamma")]
        for id, access in zip(("alpha", "beta", "gamma"), accesses):
            assert access.id == id and access.name.endswith("Domain")
            assert access.domain_server.url == idp.url(f"/chain/domains/{id}")
            assert access.domain_server.extra["region"]
            assert access.expires_at is not None
            assert access.authorization_header == "Bearer " + access.access_token
            assert access.access_token not in repr(access)
        assert counts(idp) == (1, 0, 1, 3)
        assert len({a.access_token for a in accesses}) == 3

        again = await client.get_domain_access("beta")
        assert again.access_token == accesses[1].access_token
        cached = client.cached_domain_access("gamma")
        assert cached is not None and cached.access_token == accesses[2].access_token
        assert client.cached_domain_access("delta") is None
        assert client.cached_domain_ids() == ["alpha", "beta", "gamma"]
        network_tokens = await client.authenticate()
        discovery = await client.authenticate_discovery()
        assert network_tokens.access_token != discovery.access_token
        assert counts(idp) == (1, 0, 1, 3), "all cached"

        state = client.save_state()
        for secret in SECRETS:
            assert secret not in state
        assert "password" not in json.loads(state).keys()

        restored = tessera.DomainClient.from_state(state, chain(idp))
        for access in accesses:
            served = await restored.get_domain_access(access.id)
            assert served.access_token == access.access_token
        assert counts(idp) == (1, 0, 1, 3), "no request while the imported tokens are valid"

        # Credentials come back for what expires; a new domain needs no new login.
        await restored.set_credentials(network(idp))
        delta = await restored.get_domain_access("delta")
        assert delta.id == "delta"
        assert counts(idp) == (1, 0, 1, 4)

    asyncio.run(main())


def test_a_foreign_state_and_bad_arguments_are_typed_errors(idp: Idp) -> None:
    with pytest.raises(tessera.ConfigurationError):
        tessera.DomainClient.from_state('{"version": 999}', chain(idp))
    with pytest.raises(tessera.ConfigurationError):
        tessera.DomainClient.from_state("not json", chain(idp))
    with pytest.raises(TypeError, match="DomainClient needs"):
        tessera.DomainClient("client", chain(idp))  # type: ignore[arg-type]

    async def main() -> None:
        restored = tessera.DomainClient.from_state(tessera.DomainClient(network(idp), chain(idp)).save_state(), chain(idp))
        with pytest.raises(tessera.TesseraError):
            await restored.get_domain_access("alpha")  # no credentials, nothing cached
        client = tessera.DomainClient(network(idp), chain(idp))
        with pytest.raises(tessera.TesseraError):
            await client.get_domain_access("../etc")

    asyncio.run(main())


def test_token_exchange_stages_build() -> None:
    stage = tessera.Stage.token_exchange(
        "http://127.0.0.1:1/token", tessera.ClientAuth.basic("c", "s"), audience="urn:x:{domain_id}", scope=["a", "b"]
    )
    assert stage.endpoint == "http://127.0.0.1:1/token"
    assert tessera.ChainConfig(stage, stage).refresh_threshold == 30.0


def test_the_sync_front_end_shares_the_chain(idp: Idp) -> None:
    network_client = tessera.SyncClient(
        idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, grant=tessera.Password(*ALICE), scope="openid"
    )
    client = tessera.SyncDomainClient(network_client, chain(idp))
    alpha = client.get_domain_access("alpha")
    assert alpha.id == "alpha" and client.get_domain_access("alpha").access_token == alpha.access_token
    assert client.authenticate().access_token != client.authenticate_discovery().access_token
    assert counts(idp) == (1, 0, 1, 1)

    async def from_async() -> str:
        return (await client.aio.get_domain_access("alpha")).access_token

    assert asyncio.run(from_async()) == alpha.access_token, "the async view shares the cache"
    client.invalidate("alpha")
    assert client.cached_domain_access("alpha") is None
    assert client.get_domain_access("alpha").access_token != alpha.access_token
    assert counts(idp) == (1, 0, 1, 2)

    restored = tessera.SyncDomainClient.from_state(client.save_state(), chain(idp))
    assert restored.cached_domain_ids() == ["alpha"]
    restored.set_credentials(
        tessera.ProviderConfig(
            tessera.ClientAuth.basic(CLIENT_ID, CLIENT_SECRET), tessera.Endpoints.discover(idp.issuer),
            tessera.Password(*ALICE), scope="openid",
        )
    )
    assert restored.get_domain_access("beta").id == "beta"
    assert counts(idp) == (1, 0, 1, 3), "the imported network and discovery tokens served beta"


def test_domain_client_is_an_async_context_manager_that_closes_what_it_owns(idp: Idp) -> None:
    async def main() -> None:
        net = network(idp)
        async with tessera.DomainClient(net, chain(idp)) as client:
            assert isinstance(client, tessera.DomainClient)
            access = await client.get_domain_access("alpha")
            assert client.cached_domain_access("alpha") is not None
            state = client.save_state()
            view = client.sync
        # Closed on exit: nothing it derived is held or served, every call that could send raises,
        # and its sync view is closed with it.
        assert client.cached_domain_access("alpha") is None and client.cached_domain_ids() == []
        assert view.cached_domain_ids() == [] and "closed" in repr(client)
        for call in (lambda: client.get_domain_access("alpha"), client.authenticate, client.save_state,
                     view.authenticate_discovery, lambda: view.get_domain_access("alpha")):
            with pytest.raises(RuntimeError, match="closed"):
                call()
        client.close()  # idempotent
        # The network Client passed in is the caller's: still open, its tokens still served.
        assert await net.authorization_header() and counts(idp) == (1, 0, 1, 1)
        # What was saved before closing restores without a request.
        restored = tessera.DomainClient.from_state(state, chain(idp))
        assert (await restored.get_domain_access("alpha")).access_token == access.access_token
        assert counts(idp) == (1, 0, 1, 1)

        # An exception in the block still closes it, and propagates.
        with pytest.raises(KeyError):
            async with tessera.DomainClient(net, chain(idp)) as failing:
                await failing.get_domain_access("beta")
                raise KeyError("boom")
        assert failing.cached_domain_ids() == []

    asyncio.run(main())


def test_sync_domain_client_is_a_context_manager(idp: Idp) -> None:
    net = tessera.SyncClient(
        idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, grant=tessera.Password(*ALICE), scope="openid"
    )
    with tessera.SyncDomainClient(net, chain(idp)) as client:
        assert isinstance(client, tessera.SyncDomainClient)
        assert client.get_domain_access("alpha").id == "alpha"
        aio = client.aio
    assert client.cached_domain_ids() == [] and aio.cached_domain_access("alpha") is None
    with pytest.raises(RuntimeError, match="closed"):
        client.get_domain_access("alpha")
    with pytest.raises(RuntimeError, match="closed"):
        client.set_credentials(net)
    assert net.authorization_header().startswith("Bearer ")
