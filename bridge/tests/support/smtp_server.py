#!/usr/bin/env python3
"""A real SMTP server for Hearth's alert tests (aiosmtpd, `pip install aiosmtpd`).

It requires STARTTLS (with the certificate and key given) and AUTH PLAIN or
LOGIN with one user before it accepts mail, and writes every message it
accepts to <maildir>/<n>.eml (the raw message) and <n>.json (the envelope,
the login, whether TLS was on, and From/To/Subject/body as Python's e-mail
parser decodes them). A file is written to a temporary name and renamed,
so a reader never sees half a message.

Prints `READY` once it listens; exits when its stdin closes (the test
ended) or on SIGTERM.

    smtp_server.py --port 2525 --cert cert.pem --key key.pem \
        --user hearth --password secret --maildir /tmp/mail
"""

import argparse
import email
import email.policy
import json
import os
import ssl
import sys
import threading
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Maildir:
    def __init__(self, path):
        self.path = path
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        base = os.path.join(self.path, f"{n:04d}")
        raw = envelope.original_content or envelope.content
        # Decoded by Python's own MIME parser, so the test checks what a
        # mail client would show (folded or encoded headers, QP bodies).
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        part = msg.get_body(preferencelist=("plain",)) or msg
        auth = session.auth_data
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": auth.login.decode() if isinstance(auth, LoginPassword) else None,
            "tls": session.ssl is not None,
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "subject": str(msg["Subject"]),
            "body": part.get_content(),
        }
        for ext, data in ((".eml", raw), (".json", json.dumps(meta).encode())):
            with open(base + ext + ".tmp", "wb") as f:
                f.write(data)
            os.rename(base + ext + ".tmp", base + ext)
        return "250 Message accepted for delivery"


def main():
    # aiosmtpd 1.4 fills its deprecated `login_data` itself and warns about it.
    warnings.filterwarnings("ignore", message="Session.login_data")
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--maildir", required=True)
    a = p.parse_args()

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(a.cert, a.key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == a.user.encode()
            and auth_data.password == a.password.encode()
        )
        # handled=False: aiosmtpd answers 235/535; auth_data lands in the session.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    controller = Controller(
        Maildir(a.maildir),
        hostname="127.0.0.1",
        port=a.port,
        tls_context=tls,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=authenticator,
    )
    controller.start()
    print("READY", flush=True)
    try:
        sys.stdin.read()  # until the test closes our stdin or kills us
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
