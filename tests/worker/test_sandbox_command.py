"""`billsync sandbox` and `billsync demo` as a user runs them: real processes, real ports."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from connectors.kukkingu import KukkinguClient

BILLSYNC = str(Path(sys.executable).parent / "billsync")
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"billsync exited early: {process.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.05)


def test_sandbox_writes_info_serves_the_api_and_stops_on_sigterm(tmp_path: Path) -> None:
    info_path = tmp_path / "info" / "sandbox.json"
    process = subprocess.Popen(
        [
            BILLSYNC,
            "sandbox",
            "--kukkingu-port",
            "0",
            "--jira-port",
            "0",
            "--github-port",
            "0",
            "--cliniko-port",
            "0",
            "--info",
            str(info_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(info_path, process)
        info = json.loads(info_path.read_text())["kukkingu"]
        assert info["tenantId"] == "tnt_billsyncdemotenant000001"
        assert info["contracts"]["Acme retainer"] == "ctr_demoacmeretainer00000001"
        jira = json.loads(info_path.read_text())["jira"]
        assert (jira["email"], jira["apiToken"]) == ("demo@billsync.test", "jira-sandbox-token")
        with KukkinguClient(info["baseUrl"], info["tenantId"], SecretStr(info["token"])) as kk:
            assert {c.name for c in kk.list_contracts()} == {"Acme retainer", "Globex support"}
        cliniko = json.loads(info_path.read_text())["cliniko"]
        assert cliniko["baseUrl"].endswith("/v1")
        assert cliniko["apiKey"] == "cliniko-sandbox-key-au1"
        prices = httpx.get(
            f"{cliniko['baseUrl']}/billable_items",
            auth=(cliniko["apiKey"], ""),
            headers={"User-Agent": cliniko["userAgent"]},
            timeout=10,
        )
        assert prices.status_code == 200, prices.text
        assert "CONSULT-60" in {item["item_code"] for item in prices.json()["billable_items"]}
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Kukkingu sandbox  http://127.0.0.1:" in out


def test_sandbox_on_a_taken_port_says_so(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                BILLSYNC,
                "sandbox",
                "--kukkingu-port",
                str(port),
                "--jira-port",
                "0",
                "--github-port",
                "0",
                "--cliniko-port",
                "0",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert f"the kukkingu sandbox cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--kukkingu-port" in result.stderr


def run_demo(tmp_path: Path, kukkingu_port: int = 0) -> subprocess.CompletedProcess[str]:
    """`billsync demo --no-wait` in ``tmp_path`` with examples/sandbox.toml on free ports
    (Kukkingu's ``kukkingu_port`` if given), from a shell without the venv on its PATH."""
    config = (ROOT / "examples" / "sandbox.toml").read_text()
    config = config.replace("127.0.0.1:8730", f"127.0.0.1:{kukkingu_port or free_port()}")
    config = config.replace("127.0.0.1:8731", f"127.0.0.1:{free_port()}")
    config = config.replace("127.0.0.1:8732", f"127.0.0.1:{free_port()}")
    config = config.replace("127.0.0.1:8733", f"127.0.0.1:{free_port()}")
    config = config.replace('env_file = "sandbox.env"', f'env_file = "{ROOT}/examples/sandbox.env"')
    (tmp_path / "billsync.toml").write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    env["PATH"] = "/usr/bin:/bin"  # a new shell: the venv is not activated
    return subprocess.run(
        [BILLSYNC, "-c", "billsync.toml", "demo", "--no-wait"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_demo_sets_up_and_reaches_the_sandbox(tmp_path: Path) -> None:
    for attempt in (1, 2):  # every run works: the sandboxes and the ledger start afresh
        result = run_demo(tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "State store       sqlite:///billsync-demo.db (migrated)" in result.stdout
        assert "jira-demo: 250 entries read;" in result.stdout
        assert "github-demo: " in result.stdout
        assert "ctr_demoacmeretainer00000001-2026-11-1" in result.stdout
        # the Globex repository's rule takes its rate from the Cliniko sandbox's CONSULT-60
        priced = re.search(
            r"^Priced by the Cliniko price list: (\d+) line\(s\), e\.g\. globex/platform#\S+ "
            r"at CONSULT-60 \(150\.00 an hour\)$",
            result.stdout,
            re.MULTILINE,
        )
        assert priced is not None, result.stdout
        assert int(priced.group(1)) > 0
        assert (tmp_path / "billsync-demo.db").exists()
        # the next command as it runs from here, in a shell whose PATH lacks the venv
        assert f"Next: `{BILLSYNC} -c billsync.toml sync --dry-run`" in result.stdout
        kept = "(the earlier demo's is kept as billsync-demo.db.previous)"
        assert (kept in result.stdout) == (attempt == 2)


def test_a_demo_whose_port_is_taken_says_where_to_change_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_demo(tmp_path, kukkingu_port=port)
    assert result.returncode == 1
    assert f"the kukkingu sandbox cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "another port in kukkingu.base_url (billsync.toml)" in result.stderr
    assert "--kukkingu-port" not in result.stderr


@pytest.mark.parametrize("example", ["sandbox.toml"])
def test_example_config_checks_out_of_the_box(example: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    result = subprocess.run(
        [BILLSYNC, "-c", f"examples/{example}", "config", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ok: examples/{example}:")
