"""A private Postfix instance for the tests: the real MTA from Debian, on loopback only.

Postfix is a machine-wide service, so the tests never touch /etc/postfix: `Postfix` writes
its own `main.cf`/`master.cf` into a temporary directory (`postfix -c DIR start`), with its
own queue, data and mail directories there, an SMTP listener on a free 127.0.0.1 port with
STARTTLS (a CA made here signs its certificate), and:

- mailboxes: `ok-<anything>@example.no` is delivered locally (virtual(8)); any other user of
  example.no is accepted at RCPT and then bounced with a real RFC 3464 DSN (5.1.1 unknown
  user), as a remote MX would answer; the same for the IDN domain `exämple.no` (as Postfix
  sees it: `xn--exmple-cua.no`), and `<anything>` may be UTF-8 (`smtputf8_enable`, RFC 6531);
- return paths: the bounce domain is routed to `smtp:[127.0.0.1]:<bounce port>`, Kanal's
  DSN listener, so DSNs (failure and success) flow back to Kanal;
- fast retries (`queue_run_delay = 1s`, backoff 1-2 s) so a listener that was down gets
  its DSNs within seconds of coming back.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DOMAIN = "example.no"
IDN_DOMAIN = "exämple.no"  # an internationalised domain name; on the wire:
IDN_DOMAIN_ASCII = "xn--exmple-cua.no"  # its IDNA A-label form
BOUNCE_DOMAIN = "bounces.fjordbank.test"
NOBODY = 65534


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _certificates(directory: Path) -> Path:
    """A CA and a server certificate for 127.0.0.1 signed by it; -> the CA file."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Kanal test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx.kanal.test")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.DNSName("mx.kanal.test")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (directory / "server.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(directory / "server.pem", 0o600)
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return ca_file


MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


class Postfix:
    def __init__(self, bounce_port: int):
        if shutil.which("postfix") is None:
            raise RuntimeError("Postfix is not installed: run .ci/run (apt-get install postfix)")
        # Postfix's own users (postfix, nobody) must reach these directories, which pytest's
        # private (0700) tmp dirs do not allow: a directory of its own, removed by `remove`.
        self.root = Path(tempfile.mkdtemp(prefix="kanal-postfix-"))
        self.port = free_port()
        self.bounce_port = bounce_port
        self.conf = self.root / "conf"
        self.mail = self.root / "mail"

    def _write_config(self) -> None:
        root, conf = self.root, self.conf
        for d in (conf, root / "queue", root / "data", self.mail):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)
        shutil.chown(root / "data", "postfix")
        shutil.chown(self.mail, NOBODY, NOBODY)
        self.ca_file = _certificates(conf)
        # virtual(8) refuses regexp substitutions: every ok-* user shares one Maildir, and
        # `mailbox(user)` picks a user's messages by their Delivered-To header.
        # `[^@]`: a local part may be UTF-8 (SMTPUTF8); POSIX regexp matches its bytes.
        (conf / "vmailbox").write_text(
            f"/^ok-[^@]+@({DOMAIN}|{IDN_DOMAIN_ASCII})$/ ok/\n", encoding="utf-8")
        (conf / "transport").write_text(f"{BOUNCE_DOMAIN} smtp:[127.0.0.1]:{self.bounce_port}\n")
        (conf / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.kanal.test
mydomain = kanal.test
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
virtual_mailbox_domains = {DOMAIN}, {IDN_DOMAIN_ASCII}
smtputf8_enable = yes
virtual_mailbox_base = {self.mail}
virtual_mailbox_maps = regexp:{conf}/vmailbox
virtual_uid_maps = static:{NOBODY}
virtual_gid_maps = static:{NOBODY}
smtpd_reject_unlisted_recipient = no
transport_maps = texthash:{conf}/transport
smtpd_tls_security_level = may
smtpd_tls_chain_files = {conf}/server.pem
smtp_tls_security_level = none
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtp_connect_timeout = 5s
biff = no
""")
        (conf / "master.cf").write_text(MASTER_CF.format(port=self.port))

    def start(self) -> None:
        if not (self.conf / "main.cf").exists():
            self._write_config()
        subprocess.run(["postfix", "-c", str(self.conf), "start"], check=True,
                       capture_output=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the listener is the readiness signal
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"postfix did not listen on {self.port}: {self.log()[-2000:]}")

    def stop(self) -> None:
        """Stop (an outage): the queue stays on disk and is sent after `start`."""
        subprocess.run(["postfix", "-c", str(self.conf), "stop"], capture_output=True)
        pid_file = self.root / "queue" / "pid" / "master.pid"
        deadline = time.monotonic() + 20
        while pid_file.exists() and time.monotonic() < deadline:
            try:
                os.kill(int(pid_file.read_text().split()[0]), 0)
            except (OSError, ValueError):
                break
            time.sleep(0.1)

    def remove(self) -> None:
        """Stop and delete everything of this instance."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def flush(self) -> None:
        subprocess.run(["postqueue", "-c", str(self.conf), "-f"], capture_output=True)

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def mailbox(self, user: str, domain: str = DOMAIN) -> list[bytes]:
        """Every message delivered to `user@domain` (domain as Postfix writes it: A-labels;
        `user` may be UTF-8), oldest first."""
        box = self.mail / "ok"
        files = sorted((p for sub in ("new", "cur") if (box / sub).is_dir()
                        for p in (box / sub).iterdir()), key=lambda p: p.name)
        wanted = f"\nDelivered-To: {user}@{domain}\n".encode()
        return [raw for raw in (p.read_bytes() for p in files)
                if wanted in raw.partition(b"\nReceived:")[0] + b"\n"]

    def messages(self, user: str) -> list[EmailMessage]:
        return [message_from_bytes(raw, policy=policy.default)  # type: ignore[misc]
                for raw in self.mailbox(user)]
