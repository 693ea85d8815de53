"""A stand-in for Google's OAuth2 endpoints on 127.0.0.1: real HTTP, real JSON.

POST /token answers the refresh_token and authorization_code grants as
Google does; GET /tokeninfo?access_token=... is what Dovecot's oauth2
passdb asks to validate a token.
"""
from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class TokenServer:
    def __init__(self, user: str = "support@imolocale.test", refresh_token: str = "1//refresh-ok",
                 code: str = "4/code-ok", expires_in: int = 3599):
        self.user = user
        self.refresh_token = refresh_token
        self.code = code
        self.expires_in = expires_in
        self.requests: list[dict] = []  # every form POSTed to /token
        self.issued: list[str] = []  # access tokens handed out, all still valid for /tokeninfo
        self.checked: list[str] = []  # tokens asked about at /tokeninfo (Dovecot's oauth2 passdb)
        self.fail: tuple[int, dict] | None = None  # (status, JSON) to answer every /token with
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def token_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    @property
    def tokeninfo_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/tokeninfo?access_token="

    def revoke(self) -> None:
        """What Google answers for an expired or revoked refresh token."""
        self.fail = (400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."})

    def __enter__(self) -> TokenServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, form: dict) -> tuple[int, dict]:
        with self._lock:
            self.requests.append(form)
            if self.fail:
                return self.fail
            grant = form.get("grant_type")
            if grant == "refresh_token" and form.get("refresh_token") == self.refresh_token:
                return 200, self._issue()
            if grant == "authorization_code" and form.get("code") == self.code and form.get("code_verifier"):
                return 200, {**self._issue(), "refresh_token": self.refresh_token}
            return 400, {"error": "invalid_grant", "error_description": "Bad Request"}

    def _issue(self) -> dict:
        token = f"ya29.test-{len(self.issued) + 1}"
        self.issued.append(token)
        return {"access_token": token, "expires_in": self.expires_in, "scope": "https://mail.google.com/",
                "token_type": "Bearer"}

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(length).decode()).items()}
                self._json(*stub._answer(form))

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                token = urllib.parse.parse_qs(url.query).get("access_token", [""])[0]
                stub.checked.append(token)
                if url.path == "/tokeninfo" and token in stub.issued:
                    self._json(200, {"email": stub.user, "email_verified": "true", "expires_in": 3000})
                else:
                    self._json(400, {"error": "invalid_token"})

            def _json(self, status: int, doc: dict) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet
                pass

        return Handler
