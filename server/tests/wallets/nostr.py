"""A Nostr client for the tests, made with pynostr (an implementation
independent of Ampere's): prints a signed NIP-98 HTTP-auth event.

    nostr.py SECRET_HEX URL METHOD [AGE_SECONDS] [KIND]

prints {"event": {...}, "pubkey": "..."}; AGE_SECONDS dates the event in the
past (negative: in the future).
"""
import json
import os
import sys
import time

from pynostr.event import Event
from pynostr.key import PrivateKey


def main():
    secret, url, method = sys.argv[1], sys.argv[2], sys.argv[3]
    age = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    kind = int(sys.argv[5]) if len(sys.argv) > 5 else 27235
    key = PrivateKey(bytes.fromhex(secret))
    event = Event(
        content="",
        pubkey=key.public_key.hex(),
        created_at=int(time.time()) - age,
        kind=kind,
        # Two events for one request within a second would be the same event
        # (ids are hashes): a nonce tells a client's separate attempts apart.
        tags=[["u", url], ["method", method], ["nonce", os.urandom(8).hex()]],
    )
    event.sign(key.hex())
    assert event.verify()
    print(json.dumps({"event": event.to_dict(), "pubkey": key.public_key.hex()}))


if __name__ == "__main__":
    main()
