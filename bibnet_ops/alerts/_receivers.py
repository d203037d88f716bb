"""Receivers: deliver one notification by webhook (JSON POST), e-mail over SMTP, or a local command.

A receiver's `send()` either returns or raises `DeliveryError` with a reason a technician understands;
retrying with backoff is the dispatcher's job. Secrets (webhook URL, headers, SMTP password) are resolved
at send time, so a rotated secret file takes effect without a restart and never sits in the config dump.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import httpx

from bibnet_ops.alerts._model import Notification
from bibnet_ops.inventory import ReceiverConfig
from bibnet_ops.model import SecretError

__all__ = ["CommandReceiver", "DeliveryError", "EmailReceiver", "Receiver", "WebhookReceiver", "make_receiver"]

_USER_AGENT = "bibnet-ops-alerts/1"


class DeliveryError(Exception):
    """A notification could not be delivered; the message says why (retried by the dispatcher)."""


class Receiver:
    """Base class: `name`, the config it came from, and `send()`."""

    def __init__(self, config: ReceiverConfig) -> None:
        self.config = config
        self.name = config.name

    async def send(self, note: Notification) -> str:
        """Deliver one notification; return a short detail for the delivery log.

        Raises:
            DeliveryError: the receiver refused it, timed out, or could not be reached.
        """
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release connections (nothing by default)."""

    def _secret(self, key: str) -> str | None:
        ref = self.config.secrets.get(key)
        if ref is None:
            return None
        try:
            return ref.resolve()
        except SecretError as exc:
            raise DeliveryError(f"secret {ref.ref}: {exc}") from None


class WebhookReceiver(Receiver):
    """POST the notification as JSON (`format = "json"`), or only `{"text": ...}` (`format = "text"`)."""

    def __init__(self, config: ReceiverConfig) -> None:
        super().__init__(config)
        ca = config.options.get("ca_file")
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca) if ca else True
        self._client = httpx.AsyncClient(
            timeout=config.timeout,
            verify=verify,
            follow_redirects=False,
            headers={"User-Agent": _USER_AGENT},
            trust_env=False,
        )

    async def send(self, note: Notification) -> str:
        url = self._secret("url") or self.config.options.get("url", "")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        for hname, hval in (self.config.options.get("headers") or {}).items():
            secret = self._secret(f"header:{hname}")
            headers[hname] = secret if secret is not None else str(hval)
        body: dict[str, Any] = (
            note.payload() if self.config.options.get("format", "json") == "json" else {"text": note.text}
        )
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            resp = await self._client.post(url, content=data, headers=headers)
        except httpx.TimeoutException:
            raise DeliveryError(f"webhook timed out after {self.config.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook unreachable: {type(exc).__name__}: {exc}") from None
        if resp.status_code >= 300:
            raise DeliveryError(f"webhook answered HTTP {resp.status_code}: {resp.text[:120].strip()}")
        return f"HTTP {resp.status_code}"

    async def aclose(self) -> None:
        await self._client.aclose()


class EmailReceiver(Receiver):
    """Send a plain-text e-mail (UTF-8) over SMTP with STARTTLS (default), implicit TLS, or none."""

    def build_message(self, note: Notification) -> EmailMessage:
        """The message as it is sent (subject, body with the text and the JSON payload)."""
        opts = self.config.options
        msg = EmailMessage()
        msg["Subject"] = note.subject
        msg["From"] = opts["from"]
        msg["To"] = ", ".join(opts["to"])
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="bibnet-ops")
        msg["X-Bibnet-Alert"] = f"{note.alert_id} {note.kind}"
        body = note.text + "\n\n-- \n" + json.dumps(note.payload(), ensure_ascii=False, indent=2) + "\n"
        msg.set_content(body, charset="utf-8")
        return msg

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config.options.get("ca_file"))

    def _send_sync(self, msg: EmailMessage, password: str | None) -> str:
        opts = self.config.options
        security = opts.get("security", "starttls")
        host = opts["host"]
        port = int(opts.get("port", {"starttls": 587, "tls": 465, "none": 25}[security]))
        smtp: smtplib.SMTP
        if security == "tls":
            smtp = smtplib.SMTP_SSL(host, port, timeout=self.config.timeout, context=self._context())
        else:
            smtp = smtplib.SMTP(host, port, timeout=self.config.timeout)
        try:
            smtp.ehlo()
            if security == "starttls":
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if opts.get("username"):
                smtp.login(opts["username"], password or "")
            refused = smtp.send_message(msg)
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
        if refused:
            raise DeliveryError(f"refused recipients: {', '.join(sorted(refused))}")
        return f"accepted by {host}:{port}"

    async def send(self, note: Notification) -> str:
        password = self._secret("password")
        msg = self.build_message(note)
        try:
            # smtplib is blocking: run it in a worker thread so that polling never waits for a mail server.
            return await asyncio.wait_for(asyncio.to_thread(self._send_sync, msg, password), self.config.timeout * 3)
        except DeliveryError:
            raise
        except TimeoutError:
            raise DeliveryError(f"SMTP timed out after {self.config.timeout:g}s") from None
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"SMTP login refused: {exc.smtp_code}") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"SMTP server lacks a feature: {exc}") from None
        except smtplib.SMTPResponseException as exc:
            detail = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            raise DeliveryError(f"SMTP error {exc.smtp_code}: {detail}") from None
        except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
            raise DeliveryError(f"SMTP failed: {type(exc).__name__}: {exc}") from None


class CommandReceiver(Receiver):
    """Run a program (no shell) with the alert in `BIBNET_ALERT_*` variables and its JSON on stdin."""

    async def send(self, note: Notification) -> str:
        argv = list(self.config.options["command"])
        env = {**os.environ, **note.env()}
        data = json.dumps(note.payload(), ensure_ascii=False).encode("utf-8")
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise DeliveryError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(data), self.config.timeout)
        except TimeoutError:
            # The program runs in its own session: end its whole group so no grandchild outlives it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise DeliveryError(f"{argv[0]} killed after {self.config.timeout:g}s timeout") from None
        if proc.returncode != 0:
            tail = (err or out).decode(errors="replace").strip().splitlines()
            raise DeliveryError(f"{argv[0]} exited with {proc.returncode}" + (f": {tail[-1][:160]}" if tail else ""))
        return f"{argv[0]} exited 0"


def make_receiver(config: ReceiverConfig) -> Receiver:
    """The receiver for a config entry."""
    kinds: dict[str, type[Receiver]] = {"webhook": WebhookReceiver, "email": EmailReceiver, "command": CommandReceiver}
    return kinds[config.kind](config)
