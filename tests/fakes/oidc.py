"""A local stand-in for Google's OIDC token signing: an RSA key, its certificates, signed ID tokens.

`OidcSigner` serves its certificate on 127.0.0.1 in the format of Google's
https://www.googleapis.com/oauth2/v1/certs (`{"<key id>": "<PEM certificate>"}`, with a
Cache-Control max-age), and `token()` signs ID tokens as a push subscription would send them,
with google-auth's own JWT encoder. `forged_token()` signs the same claims with another key
under the served key id, for tests of a signature that does not verify.
"""

from __future__ import annotations

import datetime
import itertools
import time
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from tests.fakes.http import FakeHTTPServer, Incoming, JsonResponse

GOOGLE_ISSUER = "https://accounts.google.com"
CERTS_PATH = "/oauth2/v1/certs"
_key_ids = itertools.count(1)


def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _certificate(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kfp-bot test OIDC signer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class OidcSigner(FakeHTTPServer):
    """Signs ID tokens and serves their certificate at `certs_url` (records every fetch)."""

    def __init__(self, *, max_age: int = 300) -> None:
        super().__init__()
        self.key_id = f"test-key-{next(_key_ids)}"
        self._key = _private_key()
        self._signer = crypt.RSASigner.from_string(_pem(self._key), key_id=self.key_id)
        self._certificate = _certificate(self._key)
        self.max_age = max_age
        self.add_route("GET", CERTS_PATH, self._certs)

    @property
    def certs_url(self) -> str:
        """Where the certificates are, like Google's https://www.googleapis.com/oauth2/v1/certs."""
        return self.url + CERTS_PATH

    @property
    def cert_fetches(self) -> int:
        """How many times the certificates were downloaded."""
        return len(self.requests_to("GET", CERTS_PATH))

    def token(self, audience: str, email: str, *, issuer: str = GOOGLE_ISSUER, email_verified: bool = True,
              lifetime: int = 3600, issued_at: int | None = None, **claims: Any) -> str:
        """An ID token as Pub/Sub push sends it (`aud`, `azp`, `email`, `email_verified`, `iss`, `sub`)."""
        return self._sign(self._signer, audience, email, issuer=issuer, email_verified=email_verified,
                          lifetime=lifetime, issued_at=issued_at, **claims)

    def forged_token(self, audience: str, email: str, **options: Any) -> str:
        """The same claims signed by a key that is not the served one (under the served key id)."""
        impostor = crypt.RSASigner.from_string(_pem(_private_key()), key_id=self.key_id)
        return self._sign(impostor, audience, email, **options)

    @staticmethod
    def _sign(signer: crypt.RSASigner, audience: str, email: str, *, issuer: str = GOOGLE_ISSUER,
              email_verified: bool = True, lifetime: int = 3600, issued_at: int | None = None,
              **claims: Any) -> str:
        now = int(time.time()) if issued_at is None else issued_at
        payload = {"aud": audience, "azp": "1234567890", "email": email, "email_verified": email_verified,
                   "iss": issuer, "sub": "1234567890", "iat": now, "exp": now + lifetime, **claims}
        return jwt.encode(signer, payload).decode()

    def _certs(self, incoming: Incoming) -> JsonResponse:
        return JsonResponse(200, {self.key_id: self._certificate},
                            headers={"Cache-Control": f"public, max-age={self.max_age}, must-revalidate"})
