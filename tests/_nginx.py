"""A real catalogue front end for the tests: Debian's nginx, with its own temp prefix, on a loopback port.

It serves over TLS (a trustme certificate expiring when the test says) what a themed library catalogue
answers: a static OPAC home page at Koha's path, the `/api/v1/public/libraries` JSON, a redirect from `/`
to the OPAC, and, when given an upstream, `/cgi-bin/koha/oai.pl` proxied to an OAI-PMH provider (as
Koha's Apache front end does). No file of the system's nginx configuration is read or written.

The test is skipped, with the reason, when `/usr/sbin/nginx` is absent (the Makefile installs
`nginx-light` on a fresh machine).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

__all__ = ["THEMED_OPAC", "Nginx", "nginx_binary", "serve_nginx"]

# A themed OPAC home page: a library's own look, its own words, and no mention of the software behind it.
THEMED_OPAC = """<!DOCTYPE html>
<html lang="fr" dir="ltr">
<head>
<meta charset="utf-8">
<title>Catalogue en ligne — Bibliothèque principale de lecture publique de Tlemcen</title>
<link rel="stylesheet" href="/opac-tmpl/bootstrap/css/tlemcen.css">
</head>
<body id="opac-main">
<header><h1>Bibliothèque de Tlemcen — المكتبة الرئيسية للمطالعة العمومية</h1></header>
<div id="opac-main-search">
<form name="searchform" method="get" action="/cgi-bin/koha/opac-search.pl" id="searchform">
<label for="translControl1">Rechercher dans le catalogue</label>
<input type="text" id="translControl1" name="q" placeholder="Titre, auteur, sujet...">
<button type="submit">Rechercher</button>
</form>
</div>
<footer>Horaires : samedi–mercredi, 8 h 30 – 17 h</footer>
</body>
</html>
"""

LIBRARIES_JSON = """[{"library_id": "BPLP13", "name": "Bibliothèque principale de lecture publique de Tlemcen",
"address1": "Boulevard de l'Indépendance", "city": "Tlemcen", "country": "Algérie", "public": true,
"pickup_location": true}]
"""


def nginx_binary() -> str:
    """Path of the nginx executable, or skip the test saying what is missing."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if found is None:
        pytest.skip("nginx is not installed (Debian package nginx-light; the Makefile installs it)")
    return found


@dataclass
class Nginx:
    """A running nginx: its base URL, the CA file that verifies it, and its certificate's expiry."""

    url: str
    ca_file: Path
    not_after: dt.datetime
    process: subprocess.Popen[bytes]
    prefix: Path


_TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _config(prefix: Path, port: int, upstream: str | None) -> str:
    temp = "\n".join(
        f"    {name}_temp_path {prefix / 'temp' / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    oai = ""
    if upstream:
        oai = f"""
        location = /cgi-bin/koha/oai.pl {{
            proxy_pass {upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}"""
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers would otherwise become nobody and lose the files
    return f"""{user}worker_processes 1;
daemon off;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 128; }}
http {{
    access_log off;
{temp}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {prefix / "cert.pem"};
        ssl_certificate_key {prefix / "key.pem"};
        root {prefix / "html"};
        location = / {{ return 302 /cgi-bin/koha/opac-main.pl; }}
        location = /cgi-bin/koha/opac-main.pl {{ default_type "text/html; charset=utf-8"; }}
        location = /api/v1/public/libraries {{ default_type "application/json; charset=utf-8"; }}{oai}
    }}
}}
"""


@contextlib.contextmanager
def serve_nginx(
    prefix: Path, *, cert_days: float = 365, opac: str = THEMED_OPAC, oai_upstream: str | None = None
) -> Iterator[Nginx]:
    """Run nginx under `prefix` until the block ends.

    Args:
        prefix: An empty temp directory for configuration, certificates, pages, logs and temp files.
        cert_days: Days until the server certificate expires.
        opac: The OPAC home page's HTML.
        oai_upstream: Base URL (`http://127.0.0.1:PORT`) of an OAI-PMH provider to proxy to.
    """
    binary = nginx_binary()
    ca = trustme.CA()
    not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=cert_days)
    cert = ca.issue_cert("127.0.0.1", not_after=not_after)
    cert.cert_chain_pems[0].write_to_path(str(prefix / "cert.pem"))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(prefix / "cert.pem"), append=True)
    cert.private_key_pem.write_to_path(str(prefix / "key.pem"))
    ca.cert_pem.write_to_path(str(prefix / "ca.pem"))
    for name in _TEMP_DIRS:
        (prefix / "temp" / name).mkdir(parents=True, exist_ok=True)
    pages = prefix / "html" / "cgi-bin" / "koha"
    pages.mkdir(parents=True, exist_ok=True)
    (pages / "opac-main.pl").write_text(opac, encoding="utf-8")
    api = prefix / "html" / "api" / "v1" / "public"
    api.mkdir(parents=True, exist_ok=True)
    (api / "libraries").write_text(LIBRARIES_JSON, encoding="utf-8")
    process = None
    for _attempt in range(3):  # another process may take the free port before nginx binds it
        port = _free_port()
        (prefix / "nginx.conf").write_text(_config(prefix, port, oai_upstream), encoding="utf-8")
        command = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if _wait_listening(process, port):
            break
        _stop(process)
        process = None
    if process is None:
        log = (prefix / "error.log").read_text(errors="replace") if (prefix / "error.log").exists() else ""
        raise RuntimeError(f"nginx did not start: {log[-500:]}")
    try:
        yield Nginx(f"https://127.0.0.1:{port}", prefix / "ca.pem", not_after, process, prefix)
    finally:
        _stop(process)


def _wait_listening(process: subprocess.Popen[bytes], port: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
        time.sleep(0.05)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # fast shutdown of the master and its worker
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    if process.stderr is not None:
        process.stderr.close()
