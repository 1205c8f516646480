#!/usr/bin/python3
"""An SMTP server on loopback for the mail tests: aiosmtpd's SMTP class (a maintained,
RFC 5321 server implementation) on an asyncio server socket, with a handler that records
every message it accepts as one JSON line in --out:

  {"mail_from": ..., "rcpt_tos": [...], "data": "<the message as received>",
   "tls": true|false, "login": "<user authenticated, or null>"}

Modes:
  --security none|starttls|tls   plain (STARTTLS offered when --cert is given: the client
                                 must not take it), STARTTLS required, or implicit TLS
  --cert/--key                   the server's certificate and key (PEM)
  --auth USER:PASSWORD           require AUTH (PLAIN, LOGIN) with this login
  --auth-over-plain              advertise AUTH without TLS too (aiosmtpd refuses by default)
  --refuse rcpt|data             answer RCPT TO or DATA with 550 / 554
  --delay SECONDS                delay the replies to EHLO, MAIL, RCPT and DATA

It prints "PORT <n>" on stdout once it listens on 127.0.0.1 (port 0: the system picks), and
runs until killed. Needs python3-aiosmtpd (Debian) or `pip install aiosmtpd`.
"""

import argparse
import asyncio
import json
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--security", choices=["none", "starttls", "tls"], default="none")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--auth")
    p.add_argument("--auth-over-plain", action="store_true")
    p.add_argument("--refuse", choices=["rcpt", "data"])
    p.add_argument("--delay", type=float, default=0.0)
    return p.parse_args()


class Recorder:
    """aiosmtpd handler: records each accepted message, refuses or delays when asked."""

    def __init__(self, out, refuse, delay):
        self.out = out
        self.refuse = refuse
        self.delay = delay

    async def _slow(self):
        if self.delay:
            await asyncio.sleep(self.delay)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        await self._slow()
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        await self._slow()
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await self._slow()
        if self.refuse == "rcpt":
            return "550 5.7.1 relaying denied (test server refusing)"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        await self._slow()
        if self.refuse == "data":
            return "554 5.7.1 message rejected (test server refusing)"
        tls = session.ssl is not None or (
            server.transport is not None
            and server.transport.get_extra_info("sslcontext") is not None
        )
        login = session.auth_data.login.decode() if session.authenticated else None
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "data": envelope.content.decode("utf-8", "replace"),
            "tls": tls,
            "login": login,
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
        return "250 OK recorded"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return check


async def main():
    # aiosmtpd 1.4 warns about its own use of a deprecated attribute on every AUTH.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    a = parse_args()
    context = None
    if a.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(a.cert, a.key)
    handler = Recorder(a.out, a.refuse, a.delay)
    kwargs = {}
    if a.auth:
        user, _, password = a.auth.partition(":")
        kwargs = dict(
            authenticator=authenticator(user, password),
            auth_required=True,
            # With implicit TLS the socket is TLS before aiosmtpd sees it, and aiosmtpd counts
            # only STARTTLS as TLS: it would never offer AUTH.
            auth_require_tls=not a.auth_over_plain and a.security != "tls",
        )

    def factory():
        return SMTP(
            handler,
            hostname="smtp.test",
            tls_context=context if a.security in ("none", "starttls") else None,
            require_starttls=a.security == "starttls",
            timeout=60,
            **kwargs,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        factory,
        host="127.0.0.1",
        port=0,
        ssl=context if a.security == "tls" else None,
    )
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
