"""A time-stamping authority on loopback, for tests and the benchmark: no test needs the internet.

:func:`running_tsa` starts an HTTP server on 127.0.0.1 (a free port) that answers RFC 3161
requests with pyHanko's ``DummyTimeStamper``, signing with a TSA certificate of its own test
root. ``TSA.url`` goes into the ``tsa_url`` setting, ``TSA.root_pem`` is the file a verifier
pins (``trusted_tsa_certs``). ``TSA.requests`` counts the stamps given.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.sign.timestamps import DummyTimeStamper


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Loopback TSA for tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def make_tsa_certs(name: str = "Test TSA") -> tuple[bytes, bytes, bytes]:
    """A TSA root (PEM), a TSA certificate it issued (PEM) and that certificate's key (DER)."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} Root"))
        .issuer_name(_name(f"{name} Root"))
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(root_key, hashes.SHA256())
    )
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tsa = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(root.subject)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    key_der = tsa_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pem = serialization.Encoding.PEM
    return root.public_bytes(pem), tsa.public_bytes(pem), key_der


@dataclass
class TSA:
    """A running loopback TSA."""

    url: str
    root_pem: Path
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def running_tsa(folder: Path, name: str = "Test TSA") -> Iterator[TSA]:
    """Run a loopback TSA until the block ends; its root certificate is written to ``folder``."""
    root_pem, tsa_pem, key_der = make_tsa_certs(name)
    folder.mkdir(parents=True, exist_ok=True)
    root_path = folder / "tsa-root.pem"
    root_path.write_bytes(root_pem)
    from asn1crypto import pem

    root_cert = asn1_x509.Certificate.load(pem.unarmor(root_pem)[2])
    stamper = DummyTimeStamper(
        tsa_cert=asn1_x509.Certificate.load(pem.unarmor(tsa_pem)[2]),
        tsa_key=asn1_keys.PrivateKeyInfo.load(key_der),
        certs_to_embed=[root_cert],
    )
    state = TSA(url="", root_pem=root_path)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            answer = stamper.request_tsa_response(tsp.TimeStampReq.load(body)).dump()
            with state.lock:
                state.requests += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/tsa"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
