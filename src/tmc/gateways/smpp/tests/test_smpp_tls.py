"""SMPP over TLS against the local SMSC, with a certificate from a private CA."""

from __future__ import annotations

import datetime
import ipaddress
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tmc.gateways.smpp.bind import BindConfig, SmppBind
from tmc.gateways.smpp.models import SmppBindStatus
from tmc.gateways.smpp.peer import LocalSmsc, PeerUnavailable
from tmc.gateways.smpp.tests.conftest import BindFactory
from tmc.messaging.models import Message
from tmc.messaging.services import message_send
from tmc.testing import make_tenant, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_pki(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signs for 127.0.0.1: (ca, key, cert) files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("TMC test CA"))
        .issuer_name(_name("TMC test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("smsc.test"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files = (folder / "ca.pem", folder / "smsc.key", folder / "smsc.pem")
    files[0].write_bytes(ca_cert.public_bytes(pem))
    files[1].write_bytes(
        key.private_bytes(
            pem,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files[2].write_bytes(cert.public_bytes(pem))
    return files


@pytest.fixture(scope="module")
def tls_smsc(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LocalSmsc, Path]]:
    """The local SMSC speaking SMPP over TLS, and its CA's file."""
    ca, key, cert = _write_pki(tmp_path_factory.mktemp("pki"))
    try:
        peer = LocalSmsc(tls_key=key, tls_cert=cert)
    except PeerUnavailable as exc:
        if os.environ.get("TMC_REQUIRE_SMSC") == "1":
            raise
        pytest.skip(f"no local SMSC: {exc}")
    yield peer, ca
    peer.stop()


def test_a_message_goes_over_tls_verified_with_the_configured_ca(
    tls_smsc: tuple[LocalSmsc, Path], smpp_bind: BindFactory, settings: Any
) -> None:
    peer, ca = tls_smsc
    settings.TMC_SMPP_TLS = True
    settings.TMC_SMPP_TLS_CA_FILE = str(ca)
    config = BindConfig.from_settings(host="127.0.0.1", port=peer.port)
    assert (config.tls, config.tls_ca_file) == (True, str(ca))
    tenant = make_tenant("Acme")
    smpp_bind(port=peer.port, tls=True, tls_ca_file=config.tls_ca_file)

    message = message_send(user=tenant.user, recipient="07400 123456", body="Secret")

    wait_until(
        lambda: Message.objects.get(pk=message.pk).status == Message.Status.DELIVERED,
        timeout=10,
    )
    [submit] = peer.state()["submits"]
    assert submit["destination"] == "447400123456"


def test_a_certificate_no_trusted_authority_signed_is_refused(
    tls_smsc: tuple[LocalSmsc, Path], smpp_bind: BindFactory
) -> None:
    """Without the CA file the system's store does not vouch for the SMSC."""
    peer, _ca = tls_smsc
    peer.drop()
    peer.reset()
    bind = SmppBind(
        BindConfig(
            host="127.0.0.1",
            port=peer.port,
            system_id="tmc",
            password="secret",
            tls=True,
            name="tls-untrusted",
            reconnect_min=0.1,
        )
    )
    stop = threading.Event()
    thread = threading.Thread(target=bind.run, args=(stop,), daemon=True)
    thread.start()
    try:
        rows = SmppBindStatus.objects.filter(name="tls-untrusted")
        wait_until(lambda: rows.exclude(last_error="").exists(), timeout=10)
    finally:
        stop.set()
        thread.join(timeout=10)

    assert not bind.bound.is_set()
    assert bind.stats.binds == 0
    assert "CERTIFICATE_VERIFY_FAILED" in rows.get().last_error
    assert peer.state()["binds"] == []
