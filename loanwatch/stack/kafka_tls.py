"""The local broker's SASL_SSL listener: a self-signed CA, the broker's keystore, a SCRAM user.

Made once per checkout in ``run/kafka/tls`` with the JDK's ``keytool`` (Java is already needed
for the broker): ``ca.p12`` (the CA, never leaves the directory), ``ca.pem`` (what clients
trust), ``broker.p12`` (the broker's key and its certificate for ``127.0.0.1``/``localhost``
signed by the CA), ``secrets.json`` (the keystore and SCRAM passwords, random) and
``client.env`` (the ``LOANWATCH_KAFKA_*`` settings of a client of that listener). The SCRAM
user is (re)declared through the plaintext listener with Kafka's ``ConfigCommand`` after each
start (an idempotent alter: in KRaft mode credentials live in the cluster metadata).
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from loanwatch.stack.errors import StackError

log = logging.getLogger("loanwatch.stack.kafka")

SASL_PORT = 9095
SASL_BOOTSTRAP = f"127.0.0.1:{SASL_PORT}"
SCRAM_USER = "loanwatch"
VALID_DAYS = "3650"


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    directory: Path
    keystore_password: str
    scram_user: str
    scram_password: str

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    def client_env(self) -> dict[str, str]:
        """The settings of a client of the SASL_SSL listener (``KafkaSecurity``'s env)."""
        return {
            "LOANWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "LOANWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "LOANWATCH_KAFKA_SASL_USERNAME": self.scram_user,
            "LOANWATCH_KAFKA_SASL_PASSWORD": self.scram_password,
            "LOANWATCH_KAFKA_SSL_CA_FILE": str(self.ca_file),
        }


def _keytool(*args: str) -> None:
    tool = shutil.which("keytool")
    if tool is None:
        raise StackError("keytool (the JDK's) is not on PATH: it makes the broker's TLS keys")
    proc = subprocess.run([tool, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StackError(f"keytool {args[0]} failed:\n{proc.stdout}{proc.stderr}")


def tls_dir(kafka_dir: Path) -> Path:
    return kafka_dir / "tls"


def load(kafka_dir: Path) -> TlsMaterial | None:
    """The material made before, or None."""
    directory = tls_dir(kafka_dir)
    try:
        data = json.loads((directory / "secrets.json").read_text())
    except (OSError, ValueError):
        return None
    if not (directory / "broker.p12").exists() or not (directory / "ca.pem").exists():
        return None
    return TlsMaterial(
        directory, data["keystore_password"], data["scram_user"], data["scram_password"]
    )


def ensure(kafka_dir: Path) -> TlsMaterial:
    """The CA, the broker keystore and the secrets, made once (idempotent)."""
    found = load(kafka_dir)
    if found is not None:
        return found
    directory = tls_dir(kafka_dir)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, mode=0o700)
    password = secrets.token_urlsafe(18)
    ca, broker = str(directory / "ca.p12"), str(directory / "broker.p12")
    common = ("-storetype", "PKCS12", "-storepass", password, "-keypass", password)
    _keytool("-genkeypair", "-alias", "ca", "-keyalg", "RSA", "-keysize", "2048",
             "-dname", "CN=loanwatch local CA", "-ext", "bc:c", "-validity", VALID_DAYS,
             "-keystore", ca, *common)  # fmt: skip
    _keytool("-exportcert", "-alias", "ca", "-keystore", ca, "-storepass", password,
             "-rfc", "-file", str(directory / "ca.pem"))  # fmt: skip
    _keytool("-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048",
             "-dname", "CN=127.0.0.1", "-validity", VALID_DAYS, "-keystore", broker,
             *common)  # fmt: skip
    _keytool("-certreq", "-alias", "broker", "-keystore", broker, "-storepass", password,
             "-file", str(directory / "broker.csr"))  # fmt: skip
    _keytool("-gencert", "-alias", "ca", "-keystore", ca, "-storepass", password,
             "-infile", str(directory / "broker.csr"), "-outfile", str(directory / "broker.crt"),
             "-rfc", "-validity", VALID_DAYS, "-ext", "SAN=IP:127.0.0.1,DNS:localhost",
             "-ext", "KU=digitalSignature,keyEncipherment", "-ext", "EKU=serverAuth")  # fmt: skip
    _keytool("-importcert", "-alias", "ca", "-file", str(directory / "ca.pem"),
             "-keystore", broker, "-storepass", password, "-noprompt")  # fmt: skip
    _keytool("-importcert", "-alias", "broker", "-file", str(directory / "broker.crt"),
             "-keystore", broker, "-storepass", password, "-noprompt")  # fmt: skip
    material = TlsMaterial(directory, password, SCRAM_USER, secrets.token_urlsafe(18))
    secrets_file = directory / "secrets.json"
    secrets_file.write_text(
        json.dumps(
            {
                "keystore_password": material.keystore_password,
                "scram_user": material.scram_user,
                "scram_password": material.scram_password,
            }
        )
    )
    secrets_file.chmod(0o600)
    env = directory / "client.env"
    env.write_text("".join(f"{k}={v}\n" for k, v in material.client_env().items()))
    env.chmod(0o600)
    log.info("made the broker's TLS material", extra={"dir": str(directory)})
    return material


def render(template: str, material: TlsMaterial) -> str:
    """The SASL_SSL properties with the material's directory and keystore password."""
    return template.replace("@TLS_DIR@", str(material.directory)).replace(
        "@KEYSTORE_PASSWORD@", material.keystore_password
    )


def scram_command(material: TlsMaterial, bootstrap: str) -> tuple[str, ...]:
    """``ConfigCommand`` arguments declaring the SCRAM user (the password in its own arg)."""
    return (
        "kafka.admin.ConfigCommand",
        "--bootstrap-server",
        bootstrap,
        "--alter",
        "--add-config",
        f"SCRAM-SHA-512=[iterations=8192,password={material.scram_password}]",
        "--entity-type",
        "users",
        "--entity-name",
        material.scram_user,
    )
