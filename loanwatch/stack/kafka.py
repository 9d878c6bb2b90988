"""The local Kafka 3.9 broker: jars from Maven Central, KRaft storage, command line, probe.

Jars are resolved once with Maven from ``config/kafka/pom.xml`` into a cache outside git and
reused; the broker's effective config is rendered into ``run/kafka/`` from the template in
``config/kafka/``. This module never starts or stops a process itself (see ``services``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

from loanwatch.stack import kafka_tls
from loanwatch.stack.errors import InstallError, StackError
from loanwatch.stack.paths import StackPaths
from loanwatch.stack.services import ServiceSpec, port_open

log = logging.getLogger("loanwatch.stack.kafka")

BOOTSTRAP = "127.0.0.1:9092"
PORT = 9092
CONTROLLER_PORT = 9094
JVM_OPTS: tuple[str, ...] = (
    "-Xms256m",
    "-Xmx1536m",  # 512m ran out of heap with ~15k partitions of accumulated test topics
    "-XX:+UseG1GC",
    "-Djava.awt.headless=true",
)
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def kafka_version(paths: StackPaths) -> str:
    """The ``kafka.version`` property of config/kafka/pom.xml (the only place it is set)."""
    node = ET.parse(paths.kafka_pom).getroot().find("m:properties/m:kafka.version", _POM_NS)
    if node is None or not (node.text or "").strip():
        raise StackError(f"{paths.kafka_pom} has no <kafka.version> property")
    return (node.text or "").strip()


def libs_dir(paths: StackPaths) -> Path:
    return paths.cache / f"kafka-{kafka_version(paths)}" / "libs"


def _pom_digest(paths: StackPaths) -> str:
    return hashlib.sha256(paths.kafka_pom.read_bytes()).hexdigest()


def ensure_jars(paths: StackPaths) -> Path:
    """Resolve the broker's runtime jars once (Maven), reuse them afterwards; return the dir."""
    libs = libs_dir(paths)
    stamp = libs / ".resolved"
    digest = _pom_digest(paths)
    if stamp.exists() and stamp.read_text().strip() == digest:
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise InstallError("Maven (mvn) is not installed: apt-get install -y maven")
    staging = libs.with_name(f"libs.tmp-{uuid.uuid4().hex[:8]}")
    cmd = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(paths.kafka_pom),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    log.info("resolving kafka jars with maven", extra={"dir": str(libs)})
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1200)
    if proc.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        shutil.rmtree(staging, ignore_errors=True)
        out = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise InstallError(f"maven could not resolve the Kafka jars ({proc.returncode}):\n{out}")
    (staging / ".resolved").write_text(digest + "\n")
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    shutil.rmtree(paths.kafka_pom.parent / "target", ignore_errors=True)
    return libs


def render_server_properties(template: str, data_dir: Path, extra: str = "") -> str:
    """The template with ``log.dirs`` set to an absolute data dir; other lines unchanged.

    ``extra`` (the SASL_SSL listener's properties) comes last: a key it repeats (``listeners``)
    replaces the template's, as in any Java properties file.
    """
    lines = []
    for line in template.splitlines():
        if line.strip().startswith("log.dirs="):
            line = f"log.dirs={data_dir}"
        lines.append(line)
    return "\n".join(lines) + "\n" + (f"\n{extra.rstrip()}\n" if extra else "")


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, no leading '-'."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _java_argv(paths: StackPaths, libs: Path, main: str, *args: str) -> tuple[str, ...]:
    kdir = paths.service_dir("kafka")
    return (
        shutil.which("java") or "java",
        *JVM_OPTS,
        f"-Dlog4j.configuration=file:{paths.config / 'kafka' / 'log4j.properties'}",
        f"-Dkafka.logs.dir={kdir / 'logs'}",
        "-cp",
        f"{libs}/*",
        main,
        *args,
    )


def prepare(paths: StackPaths) -> Path:
    """Jars, effective config and formatted storage (once); return the effective config."""
    libs = ensure_jars(paths)
    kdir = paths.service_dir("kafka")
    data = kdir / "data"
    (kdir / "logs").mkdir(parents=True, exist_ok=True)
    conf = kdir / "server.properties"
    template = (paths.config / "kafka" / "server.properties").read_text()
    material = kafka_tls.ensure(kdir)
    sasl = kafka_tls.render((paths.config / "kafka" / "sasl_ssl.properties").read_text(), material)
    conf.write_text(render_server_properties(template, data, sasl))
    id_file = kdir / "cluster.id"
    if not id_file.exists():
        id_file.write_text(new_cluster_id() + "\n")
    if not (data / "meta.properties").exists():
        cluster_id = id_file.read_text().strip()
        argv = _java_argv(
            paths, libs, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(conf)
        )
        proc = subprocess.run(
            [*argv, "--ignore-formatted"], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise StackError(f"kafka storage format failed:\n{proc.stdout}{proc.stderr}")
        log.info("formatted kafka storage", extra={"dir": str(data), "cluster_id": cluster_id})
    return conf


def spec(paths: StackPaths) -> ServiceSpec:
    """How to run the broker (call ``prepare`` first)."""
    kdir = paths.service_dir("kafka")
    conf = kdir / "server.properties"
    return ServiceSpec(
        name="kafka",
        port=PORT,
        argv=_java_argv(paths, libs_dir(paths), "kafka.Kafka", str(conf)),
        cwd=paths.root,
        log_file=paths.log_file("kafka"),
        pid_file=paths.pid_file("kafka"),
        probe=probe,
        marker=str(conf),
        ready_timeout=120.0,
    )


async def _describe_cluster(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        info = await admin.describe_cluster()
        return bool(info.get("brokers"))
    finally:
        await admin.close()


def probe(bootstrap: str = BOOTSTRAP) -> bool:
    """Ready = an admin metadata request (describe_cluster) lists a broker."""
    host, _, port = bootstrap.rpartition(":")
    if not port_open(int(port), host):
        return False  # avoid aiokafka's connection-refused error logs while it boots
    return asyncio.run(asyncio.wait_for(_describe_cluster(bootstrap), timeout=5.0))


def ensure_scram_user(paths: StackPaths) -> kafka_tls.TlsMaterial | None:
    """Declare the SASL_SSL listener's SCRAM user (idempotent); None if the broker has none.

    A broker started before the listener existed keeps running without it: ``stack down``
    then ``stack up`` gives it one.
    """
    material = kafka_tls.load(paths.service_dir("kafka"))
    if material is None or not port_open(kafka_tls.SASL_PORT):
        log.warning(
            "the running broker has no SASL_SSL listener on %d: `loanwatch stack down` then "
            "`up` starts it with one",
            kafka_tls.SASL_PORT,
        )
        return None
    argv = _java_argv(paths, libs_dir(paths), *kafka_tls.scram_command(material, BOOTSTRAP))
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise StackError(f"declaring the SCRAM user failed:\n{proc.stdout}{proc.stderr}")
    return material
