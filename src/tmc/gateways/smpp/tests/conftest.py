"""A real SMSC (tests/peers/smsc, node-smpp) and a bind to it, for each test."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tmc.gateways.smpp.bind import BindConfig, SmppBind
from tmc.gateways.smpp.peer import LocalSmsc, PeerUnavailable
from tmc.testing import wait_until

_names = itertools.count(1)


@pytest.fixture(scope="session")
def _smsc_process() -> Iterator[LocalSmsc]:
    try:
        peer = LocalSmsc()
    except PeerUnavailable as exc:
        if os.environ.get("TMC_REQUIRE_SMSC") == "1":
            raise
        pytest.skip(f"no local SMSC: {exc}")
    yield peer
    peer.stop()


@pytest.fixture
def smsc(_smsc_process: LocalSmsc) -> LocalSmsc:
    """The local SMSC, its records and behaviour reset."""
    _smsc_process.drop()
    _smsc_process.reset()
    return _smsc_process


BindFactory = Callable[..., SmppBind]


@pytest.fixture
def smpp_bind(
    smsc: LocalSmsc, transactional_db: None, settings: Any
) -> Iterator[BindFactory]:
    """Start a bind to the local SMSC in a thread; it unbinds after the test."""
    settings.TMC_GATEWAY = "smpp"
    running: list[tuple[SmppBind, threading.Event, threading.Thread]] = []

    def start(**overrides: Any) -> SmppBind:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": smsc.port,
            "system_id": "tmc",
            "password": "secret",
            "system_type": "TMC",
            "name": f"test-bind-{next(_names)}",
            "poll_seconds": 0.02,
            "reconnect_min": 0.1,
            "drain_seconds": 2.0,
        }
        values.update(overrides)
        bind = SmppBind(BindConfig(**values))
        stop = threading.Event()
        thread = threading.Thread(target=bind.run, args=(stop,), daemon=True)
        thread.start()
        running.append((bind, stop, thread))
        wait_until(bind.bound.is_set, timeout=10)
        return bind

    yield start
    for _bind, stop, thread in running:
        stop.set()
        thread.join(timeout=15)
        assert not thread.is_alive(), "the bind did not stop"
