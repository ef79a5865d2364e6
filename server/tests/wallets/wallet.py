#!/usr/bin/env python3
"""A test wallet that plays the user's side of LNURL and signed-message logins.

It shares no code with the Rust server: signatures come from coincurve
(libsecp256k1), LNURLs are read with the PyPI `lnurl` package, invoices with the
`bolt11` package, zbase32 is written out below. So a test that passes proves the
server speaks the protocols as other implementations do, not merely as it reads its
own output.

Run with the test venv (scripts/test-requirements.txt: coincurve, bolt11, lnurl):

    .venv/bin/python server/tests/wallets/wallet.py lnd-sign <secret_key_hex> <message>
    .venv/bin/python server/tests/wallets/wallet.py lnd-recover <message> <signature>
    .venv/bin/python server/tests/wallets/wallet.py lnurl-auth <LNURL> <secret_key_hex>
    .venv/bin/python server/tests/wallets/wallet.py lnurl-withdraw <LNURL> <bolt11>

Each prints one JSON object on stdout and exits 0 once the exchange took place, even
if the service answered an error: `status_code` and `body` say what it answered, and
the tests judge that. It exits non-zero, with the reason on stderr, when the wallet
itself refuses to go on: 1 for bad input or a check a real wallet makes (not an
LNURL, wrong tag, k1 not 32 bytes, invoice amount outside the offer), 2 when the
service refuses or cannot be reached before the last step.

Plain http on loopback: `lnurl` 0.5.8 types every URL (the LNURL's and the
withdrawRequest's `callback`) as ClearnetUrl (https only), OnionUrl (http allowed for
.onion) or DebugUrl (http allowed only for the hosts 127.0.0.1 and 0.0.0.0). So
`http://127.0.0.1:<port>/...` passes the package's own validation unchanged, with no
switch or environment variable, and every other http URL is still refused as a real
wallet would. `http://localhost:...` is refused: the server under test must put
127.0.0.1 in the LNURLs and callbacks it issues.
"""

import argparse
import hashlib
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

import bolt11
import lnurl
from coincurve import PrivateKey, PublicKey
from lnurl.models import LnurlErrorResponse, LnurlResponse, LnurlWithdrawResponse

ZBASE32 = "ybndrfg8ejkmcpqxot1uwisza345h769"
LND_PREFIX = b"Lightning Signed Message:"
TIMEOUT_S = 10


class Refused(Exception):
    """The wallet will not go on; `code` is the exit status."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


def zbase32_encode(data: bytes) -> str:
    bits = "".join(f"{b:08b}" for b in data)
    bits += "0" * (-len(bits) % 5)
    return "".join(ZBASE32[int(bits[i : i + 5], 2)] for i in range(0, len(bits), 5))


def zbase32_decode(text: str) -> bytes:
    if any(c not in ZBASE32 for c in text):
        raise Refused("signature is not zbase32: a character is outside the alphabet")
    bits = "".join(f"{ZBASE32.index(c):05b}" for c in text)
    whole = len(bits) // 8 * 8
    rest = bits[whole:]
    if len(rest) >= 5 or "1" in rest:
        raise Refused("signature is not zbase32: wrong length or non-zero padding")
    return bytes(int(bits[i : i + 8], 2) for i in range(0, whole, 8))


def lnd_digest(message: str) -> bytes:
    inner = hashlib.sha256(LND_PREFIX + message.encode()).digest()
    return hashlib.sha256(inner).digest()


def secret_key(text: str) -> PrivateKey:
    try:
        raw = bytes.fromhex(text)
        if len(raw) != 32:
            raise ValueError
        return PrivateKey(raw)
    except ValueError:
        raise Refused("secret key must be 32 bytes of hex (and below the curve order)")


def lnd_sign(args):
    key = secret_key(args.secret_key)
    # coincurve returns r || s || recovery id; LND writes 31 + id, then r || s.
    rsv = key.sign_recoverable(lnd_digest(args.message), hasher=None)
    signature = bytes([31 + rsv[64]]) + rsv[:64]
    return {"signature": zbase32_encode(signature), "pubkey": key.public_key.format().hex()}


def lnd_recover(args):
    raw = zbase32_decode(args.signature)
    if len(raw) != 65 or not 31 <= raw[0] <= 34:
        raise Refused("signature must be 65 bytes with a header of 31 to 34")
    rsv = raw[1:] + bytes([raw[0] - 31])
    key = PublicKey.from_signature_and_message(rsv, lnd_digest(args.message), hasher=None)
    return {"pubkey": key.format().hex()}


def read_lnurl(text: str):
    text = text.strip()
    # Wallets take `lightning:` in any case; the package strips only the lowercase one.
    if text[:10].lower() == "lightning:":
        text = text[10:]
    try:
        # What lnurl.decode() does, minus its wrapping that drops the reason.
        return lnurl.Lnurl(text)
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise Refused(f"not an LNURL the lnurl package accepts: {reason}")


def with_query(url: str, **params) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def http_get(url: str):
    """GET `url`; returns (status, parsed JSON or text), errors included."""
    request = urllib.request.Request(url, headers={"User-Agent": "ampere-test-wallet"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise Refused(f"cannot reach {url}: {exc}", code=2)
    text = raw.decode("utf-8", errors="replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def lnurl_auth(args):
    decoded = read_lnurl(args.lnurl)
    if not decoded.is_login:
        raise Refused("the LNURL is not a login (tag=login is missing)")
    k1_hex = decoded.url.query_params.get("k1", "")
    try:
        k1 = bytes.fromhex(k1_hex)
    except ValueError:
        k1 = b""
    if len(k1) != 32:
        raise Refused("the LNURL's k1 is not 32 bytes of hex")
    key = secret_key(args.secret_key)
    # LUD-04: the 32 k1 bytes are the digest, signed as they are; DER, low S.
    sig = key.sign(k1, hasher=None).hex()
    pubkey = key.public_key.format().hex()
    status, body = http_get(with_query(str(decoded.url), sig=sig, key=pubkey))
    return {"status_code": status, "body": body, "key": pubkey}


def lnurl_withdraw(args):
    decoded = read_lnurl(args.lnurl)
    status, data = http_get(str(decoded.url))
    if status != 200 or not isinstance(data, dict):
        raise Refused(f"the service refused the withdraw link: HTTP {status}: {data}", code=2)
    try:
        offer = LnurlResponse.from_dict(dict(data))
    except Exception as exc:
        raise Refused(f"not a valid withdrawRequest: {exc}", code=2)
    if isinstance(offer, LnurlErrorResponse):
        raise Refused(f"the service refused the withdraw link: {offer.reason}", code=2)
    if not isinstance(offer, LnurlWithdrawResponse):
        raise Refused(f"not a withdrawRequest: {data}", code=2)

    try:
        invoice = bolt11.decode(args.bolt11)
    except Exception as exc:
        raise Refused(f"not a BOLT11 invoice: {exc}")
    if not args.skip_amount_check:
        amount = invoice.amount_msat
        if amount is None:
            raise Refused("the invoice has no amount")
        if not offer.min_withdrawable <= amount <= offer.max_withdrawable:
            raise Refused(
                f"the invoice's {amount} msat lie outside "
                f"{offer.min_withdrawable}..{offer.max_withdrawable} msat"
            )
    status, body = http_get(with_query(str(offer.callback), k1=offer.k1, pr=args.bolt11))
    return {"request": data, "status_code": status, "body": body}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("lnd-sign", help="sign a message as `lncli signmessage` does")
    p.add_argument("secret_key")
    p.add_argument("message")
    p.set_defaults(run=lnd_sign)

    p = commands.add_parser("lnd-recover", help="recover the key of an LND signature")
    p.add_argument("message")
    p.add_argument("signature")
    p.set_defaults(run=lnd_recover)

    p = commands.add_parser("lnurl-auth", help="log in with an LNURL-auth link (LUD-04)")
    p.add_argument("lnurl")
    p.add_argument("secret_key")
    p.set_defaults(run=lnurl_auth)

    p = commands.add_parser("lnurl-withdraw", help="claim an LNURL-withdraw link (LUD-03)")
    p.add_argument("lnurl")
    p.add_argument("bolt11")
    p.add_argument(
        "--skip-amount-check",
        action="store_true",
        help="send the invoice even if its amount is outside the offer (a misbehaving wallet)",
    )
    p.set_defaults(run=lnurl_withdraw)

    args = parser.parse_args(argv)
    try:
        result = args.run(args)
    except Refused as exc:
        print(f"wallet: {exc}", file=sys.stderr)
        return exc.code
    except Exception as exc:  # coincurve and the parsers raise their own types
        print(f"wallet: {exc!r}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
