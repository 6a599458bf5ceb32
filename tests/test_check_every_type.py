"""`watchkeeper check FILE` runs every check type once against real local targets."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path

from tests.checks.test_dns_check import serve_udp
from tests.support.certs import make_ca, make_cert, server_context, tls_server
from tests.support.required import require_local_services
from tests.support.servers import FlippingTarget

ROOT = Path(__file__).resolve().parent.parent


async def test_check_runs_every_type_once_and_prints_the_table(
    tmp_path: Path, target: FlippingTarget
) -> None:
    require_local_services()
    ca = make_ca()
    leaf = make_cert("127.0.0.1", sans=["127.0.0.1"], issuer=ca, expires_in=timedelta(days=90))
    ca_file = ca.write_cert(tmp_path / "ca.pem")
    dns_transport, _ = await serve_udp()
    dns_port = dns_transport.get_extra_info("sockname")[1]
    async with tls_server(server_context(tmp_path, leaf)) as tls_port:
        config = tmp_path / "all.yaml"
        config.write_text(
            f"""
checks:
  - {{name: web, type: http, url: "{target.url}/health", expect: {{body_contains: ok}}}}
  - {{name: port, type: tcp, host: 127.0.0.1, port: {target.port}}}
  - {{name: plugin, type: command, command: [sh, -c, "echo 'OK | t=1ms'"]}}
  - {{name: host, type: system, load: {{warn: 1000, crit: 1000}}, memory: {{warn: 100, crit: 100}},
      disk: [{{path: /, warn: 100, crit: 100}}]}}
  - {{name: cert, type: tls, host: 127.0.0.1, port: {tls_port}, ca_file: "{ca_file}"}}
  - {{name: resolver, type: dns, query: www.test.example, nameserver: "127.0.0.1:{dns_port}",
      expect: ["10.0.0.1"]}}
  - {{name: loopback, type: icmp, host: 127.0.0.1, count: 2, packet_interval: 10ms}}
  - {{name: pg, type: postgres, dsn: "postgresql://postgres@127.0.0.1:5432/test"}}
  - {{name: maria, type: mysql, dsn: "mysql://root@127.0.0.1:3306/test"}}
  - {{name: cache, type: redis, url: "redis://127.0.0.1:6379/0"}}
  - {{name: func, type: python, target: "tests.checks.pytargets:returns_true"}}
  - {{name: nightly, type: heartbeat, schedule: "0 3 * * *", tz: Europe/Berlin}}
""",
            encoding="utf-8",
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "watchkeeper",
            "check",
            str(config),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "250"},
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    dns_transport.close()
    table = out.decode()
    assert proc.returncode == 0, table + err.decode()
    rows = {line.split("│")[1].strip(): line for line in table.splitlines() if "│" in line}
    for name in (
        "web",
        "port",
        "plugin",
        "host",
        "cert",
        "resolver",
        "loopback",
        "pg",
        "maria",
        "cache",
        "func",
    ):
        assert "│ up " in rows[name], rows.get(name, table)
    assert "push" in rows["nightly"]
    assert "12 checks from" in table
