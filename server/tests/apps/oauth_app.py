#!/usr/bin/env python3
"""A third-party application that uses Ampere as its OAuth 2.0 provider.

It shares no code with the Rust server: the requests, the PKCE challenge, the
state check and the token handling are Authlib's (PyPI `authlib`, its
`requests` client). So a test that passes shows a client written for the
Lime flows works against Ampere, not merely that the server reads its own
output.

Run with the test venv (scripts/test-requirements.txt):

    oauth_app.py password <base> <client_id> <secret> <username> <password> [--scope S] [--otp CODE] [--auth basic|post]
    oauth_app.py authorize-url <base> <client_id> <redirect_uri> [--scope S]
    oauth_app.py exchange <base> <client_id> <secret> <redirect_uri> <callback_url> <state> <verifier> [--auth basic|post]
    oauth_app.py userinfo <base> <access_token>

Each prints one JSON object: `token` (what the token endpoint answered) or
`error` and `description` (Authlib's reading of an RFC 6749 refusal, or of a
callback whose state is not the one it sent); `url`, `state` and `verifier`
for an authorization request; `status` and `body` for `/userinfo`.
"""

import argparse
import json
import sys

from authlib.common.errors import AuthlibBaseError
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

TIMEOUT_S = 10


def method(auth):
    return "client_secret_basic" if auth == "basic" else "client_secret_post"


def answer(fetch):
    try:
        print(json.dumps({"token": dict(fetch())}))
    except AuthlibBaseError as err:
        print(json.dumps({"error": err.error, "description": err.description}))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("password")
    for name in ("base", "client_id", "secret", "username", "password"):
        p.add_argument(name)
    p.add_argument("--scope")
    p.add_argument("--otp")
    p.add_argument("--auth", default="post")
    a = sub.add_parser("authorize-url")
    for name in ("base", "client_id", "redirect_uri"):
        a.add_argument(name)
    a.add_argument("--scope")
    e = sub.add_parser("exchange")
    for name in ("base", "client_id", "secret", "redirect_uri", "callback_url", "state", "verifier"):
        e.add_argument(name)
    e.add_argument("--auth", default="basic")
    u = sub.add_parser("userinfo")
    u.add_argument("base")
    u.add_argument("access_token")
    args = parser.parse_args()

    if args.command == "password":
        session = OAuth2Session(
            args.client_id,
            args.secret,
            scope=args.scope,
            token_endpoint_auth_method=method(args.auth),
        )
        extra = {"otp_code": args.otp} if args.otp else {}
        answer(
            lambda: session.fetch_token(
                f"{args.base}/connect/token",
                grant_type="password",
                username=args.username,
                password=args.password,
                timeout=TIMEOUT_S,
                **extra,
            )
        )
    elif args.command == "authorize-url":
        session = OAuth2Session(
            args.client_id,
            redirect_uri=args.redirect_uri,
            scope=args.scope,
            code_challenge_method="S256",
        )
        verifier = generate_token(48)
        url, state = session.create_authorization_url(
            f"{args.base}/connect/authorize", code_verifier=verifier
        )
        print(json.dumps({"url": url, "state": state, "verifier": verifier}))
    elif args.command == "exchange":
        session = OAuth2Session(
            args.client_id,
            args.secret,
            redirect_uri=args.redirect_uri,
            state=args.state,
            code_challenge_method="S256",
            token_endpoint_auth_method=method(args.auth),
        )
        answer(
            lambda: session.fetch_token(
                f"{args.base}/connect/token",
                authorization_response=args.callback_url,
                code_verifier=args.verifier,
                timeout=TIMEOUT_S,
            )
        )
    elif args.command == "userinfo":
        session = OAuth2Session(token={"access_token": args.access_token, "token_type": "Bearer"})
        reply = session.get(f"{args.base}/userinfo", timeout=TIMEOUT_S)
        try:
            body = reply.json()
        except ValueError:
            body = reply.text
        print(json.dumps({"status": reply.status_code, "body": body}))


if __name__ == "__main__":
    sys.exit(main())
