import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Make a self-signed certificate and key for local HTTPS/WSS "
        "(TLS_CERT_FILE / TLS_KEY_FILE of scripts/start.sh). Not for production."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", default="var/tls", help="Folder for cert.pem and key.pem.")
        parser.add_argument(
            "--host",
            action="append",
            default=None,
            help="Host name or IP the certificate is for (repeatable; default localhost, "
            "127.0.0.1, ::1).",
        )
        parser.add_argument("--days", type=int, default=30, help="Validity in days (1-825).")

    def handle(self, *args, out: str, host: list[str] | None, days: int, **options):
        if not 1 <= days <= 825:
            raise CommandError("--days must be from 1 to 825.")
        hosts = host or ["localhost", "127.0.0.1", "::1"]
        names: list[x509.GeneralName] = []
        for name in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                names.append(x509.DNSName(name))
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = folder / "cert.pem", folder / "key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.touch(mode=0o600)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.stdout.write(f"TLS_CERT_FILE={cert_path}\nTLS_KEY_FILE={key_path}")
