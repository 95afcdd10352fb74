"""The production topology as plain processes on 127.0.0.1: a 3-node MariaDB Galera cluster (or one
MariaDB), HAProxy routing to it, Redis, N gunicorn app instances, the notification worker, the job
worker and nginx as the ingress. `up`, `down`, `kill NAME`, `start NAME` and `status` (the scripts
next to this file) call the functions of the same name.

Everything lives under $INVENTORY_CLUSTER_DIR (default /tmp/inventory-cluster): state.json (ports,
options, the pid of every member), one directory per member with its config, data and log. Every
member is started in its own session, so its pid is also its process group: `kill` and `down` signal
that group and nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
STATE_DIR = Path(os.environ.get("INVENTORY_CLUSTER_DIR", "/tmp/inventory-cluster"))  # noqa: S108 - a dev tool
VENV_BIN = Path(sys.executable).parent
GALERA_PROVIDER = next(
    (path for path in ("/usr/lib/galera/libgalera_smm.so", "/usr/lib/libgalera_smm.so") if Path(path).exists()),
    "/usr/lib/galera/libgalera_smm.so",
)
DB_NODES = ("db1", "db2", "db3")
DB_USER = "inventory"
DB_PASSWORD = "inventory"  # noqa: S105 - a throwaway cluster bound to 127.0.0.1
DATABASE = "inventory"
# A joiner's rsync SST takes 5-8 s here, a restarted node's IST 4-6 s: the deadline is far above.
NODE_DEADLINE = 90.0
SERVICE_DEADLINE = 30.0


class ClusterError(RuntimeError):
    """Something the cluster needs did not come up; the message names the log to read."""


# ---------------------------------------------------------------------------------------------
# state


def _state_file() -> Path:
    return STATE_DIR / "state.json"


def load_state() -> dict[str, Any] | None:
    try:
        return json.loads(_state_file().read_text())  # type: ignore[no-any-return]
    except FileNotFoundError:
        return None


def save_state(state: dict[str, Any]) -> None:
    tmp = _state_file().with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(_state_file())


def free_port(taken: Collection[int] = ()) -> int:
    """A port free now and outside `taken`, below the kernel's ephemeral range: the members bind
    their ports seconds or minutes later (a joiner's SST port, a restarted node's), and a port of
    that range can meanwhile become the local end of any outgoing connection. Picked from it, a
    joiner's SST port was once taken so while the test suite ran beside the cluster, and the node
    never joined."""
    low = max(_ephemeral_start(), _LOWEST + 1000)
    first = secrets.randbelow(low - _LOWEST)
    for offset in range(low - _LOWEST):
        candidate = _LOWEST + (first + offset) % (low - _LOWEST)
        if candidate in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return candidate
    raise RuntimeError(f"no free port between {_LOWEST} and {low}")


_LOWEST = 20000  # above the well-known and most registered services' ports


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def new_state(db_mode: str) -> dict[str, Any]:
    nodes = DB_NODES if db_mode == "galera" else DB_NODES[:1]
    used: set[int] = {3306, 6379}

    def port() -> int:
        candidate = free_port(used)
        used.add(candidate)
        return candidate

    return {
        "db": db_mode,
        "writers": "one",
        "apps": 0,
        "secret_key": secrets.token_hex(32),
        "ports": {
            **{node: {"sql": port(), "gcomm": port(), "ist": port(), "sst": port(), "check": port()} for node in nodes},
            "router": port(),
            "redis": port(),
            "nginx": port(),
        },
        "pids": {},
    }


def app_names(state: dict[str, Any]) -> list[str]:
    return [f"app{index}" for index in range(1, state["apps"] + 1)]


def db_nodes(state: dict[str, Any]) -> list[str]:
    return [node for node in DB_NODES if node in state["ports"]]


def member_dir(name: str) -> Path:
    return STATE_DIR / name


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (a member we started in this very process and killed) is not alive.
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return status != "Z"


def launch(state: dict[str, Any], name: str, argv: list[str], *, env: dict[str, str] | None = None) -> None:
    """Start one member in its own session, output to its log; remember its pid."""
    directory = member_dir(name)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "output.log", "ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own argv
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    state["pids"][name] = process.pid
    save_state(state)


def wait_for(what: str, condition: Callable[[], bool], deadline: float, log: Path, pid: int | None = None) -> None:
    """Poll `condition` until true; fail at the deadline, or at once when the member's process died,
    with the end of its log in the message."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return
        if pid is not None and not alive(pid):
            raise ClusterError(f"{what} exited; end of {log}:\n{_tail(log)}")
        time.sleep(0.2)
    raise ClusterError(f"{what} not ready after {deadline:.0f} s; end of {log}:\n{_tail(log)}")


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def signal_member(state: dict[str, Any], name: str, sig: int) -> None:
    pid = state["pids"].get(name)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)


# ---------------------------------------------------------------------------------------------
# database nodes


def _mysql_account() -> tuple[int, int] | None:
    """Nodes run as `mysql` when we are root: rsync SST's daemon drops to nobody otherwise."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("mysql")
    return entry.pw_uid, entry.pw_gid


def node_config(state: dict[str, Any], node: str) -> Path:
    ports = state["ports"][node]
    directory = member_dir(node)
    galera = state["db"] == "galera"
    peers = ",".join(f"127.0.0.1:{state['ports'][peer]['gcomm']}" for peer in db_nodes(state))
    lines = [
        "[mysqld]",
        f"datadir={directory / 'data'}",
        f"socket={directory / 'mysqld.sock'}",
        f"pid-file={directory / 'mysqld.pid'}",
        f"log-error={directory / 'error.log'}",
        f"port={ports['sql']}",
        "bind-address=127.0.0.1",
        "skip-name-resolve",
        "character-set-server=utf8mb4",
        "collation-server=utf8mb4_unicode_ci",
        "max_connections=500",
        "innodb_buffer_pool_size=128M",
        "innodb_log_file_size=64M",
        # Durability comes from the cluster (a commit is on every node's gcache); one machine's
        # fsyncs on three nodes would measure the disk, not the topology.
        "innodb_flush_log_at_trx_commit=2",
        "binlog_format=ROW",
        "innodb_autoinc_lock_mode=2",
    ]
    if _mysql_account():
        lines.append("user=mysql")
    if galera:
        lines += [
            "wsrep_on=ON",
            f"wsrep_provider={GALERA_PROVIDER}",
            "wsrep_cluster_name=inventory-local",
            f"wsrep_cluster_address=gcomm://{peers}",
            f"wsrep_node_name={node}",
            f"wsrep_node_address=127.0.0.1:{ports['gcomm']}",
            # Per-node IST and SST ports: the defaults (4568, 4444) collide on one machine.
            f'wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:{ports["gcomm"]};'
            f'ist.recv_addr=127.0.0.1:{ports["ist"]};gcache.size=128M"',
            "wsrep_sst_method=rsync",
            f"wsrep_sst_receive_address=127.0.0.1:{ports['sst']}",
            # Reads on another node right after a write are stale without it (measured; no cost seen).
            "wsrep_sync_wait=1",
            "wsrep_slave_threads=2",
        ]
    path = directory / "my.cnf"
    path.write_text("\n".join(lines) + "\n")
    return path


def _prepare_node_dir(node: str) -> None:
    directory = member_dir(node)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    account = _mysql_account()
    if account:
        for path in (directory, directory / "data"):
            os.chown(path, *account)


def sql(state: dict[str, Any], node: str, statement: str) -> str:
    """Run SQL on one node as its root through the Unix socket; '' when the node does not answer."""
    result = subprocess.run(  # noqa: S603
        ["mariadb", f"--socket={member_dir(node) / 'mysqld.sock'}", "-uroot", "-N", "-B", "-e", statement],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def node_synced(state: dict[str, Any], node: str) -> bool:
    if state["db"] != "galera":
        return sql(state, node, "SELECT 1") == "1"
    status = dict(
        line.split("\t", 1)
        for line in sql(
            state, node, "SHOW STATUS WHERE Variable_name IN ('wsrep_local_state', 'wsrep_ready')"
        ).splitlines()
    )
    return status.get("wsrep_local_state") == "4" and status.get("wsrep_ready") == "ON"


def _recovered_position(config: Path, node: str) -> str | None:
    """After a SIGKILL grastate.dat says seqno -1; --wsrep-recover reads the real position from
    InnoDB, and starting with it lets the node catch up by IST (seconds) instead of a full SST.

    Once it has logged the position its work is done; after a kill under load it was seen to
    stay up for minutes instead of exiting, so it is stopped as soon as the line is there.
    """
    log = member_dir(node) / "recover.log"
    log.unlink(missing_ok=True)
    process = subprocess.Popen(  # noqa: S603
        ["mariadbd", f"--defaults-file={config}", "--wsrep-recover", f"--log-error={log}"],  # noqa: S607
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    found: list[str] = []

    def recovered() -> bool:
        text = log.read_text(errors="replace") if log.exists() else ""
        found[:] = re.findall(r"Recovered position:\s*(\S+:-?\d+)", text)
        return bool(found) or process.poll() is not None

    try:
        wait_for(f"{node} --wsrep-recover", recovered, NODE_DEADLINE, log)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    return found[-1] if found else None


def start_node(state: dict[str, Any], node: str, *, bootstrap: bool = False, wait: bool = True) -> None:
    _prepare_node_dir(node)
    config = node_config(state, node)
    data = member_dir(node) / "data"
    fresh = not (data / "mysql").exists()
    argv = ["mariadbd", f"--defaults-file={config}"]
    if fresh and (bootstrap or state["db"] != "galera"):
        subprocess.run(  # noqa: S603
            [  # noqa: S607
                "mariadb-install-db",
                f"--defaults-file={config}",
                "--skip-test-db",
                "--auth-root-authentication-method=" + ("socket" if _mysql_account() else "normal"),
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
    if state["db"] == "galera":
        if bootstrap:
            argv.append("--wsrep-new-cluster")
        elif not fresh and (position := _recovered_position(config, node)):
            argv.append(f"--wsrep-start-position={position}")
    launch(state, node, argv)
    if wait:
        wait_node(state, node)


def wait_node(state: dict[str, Any], node: str) -> None:
    log = member_dir(node) / "error.log"
    wait_for(node, lambda: node_synced(state, node), NODE_DEADLINE, log, state["pids"][node])


def create_database(state: dict[str, Any]) -> None:
    node = db_nodes(state)[0]
    statements = (
        f"CREATE DATABASE IF NOT EXISTS `{DATABASE}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
        f"CREATE USER IF NOT EXISTS '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASSWORD}';"
        # The tests create and drop their own databases through the router.
        f"GRANT ALL PRIVILEGES ON *.* TO '{DB_USER}'@'127.0.0.1' WITH GRANT OPTION;"
    )
    result = subprocess.run(  # noqa: S603
        ["mariadb", f"--socket={member_dir(node) / 'mysqld.sock'}", "-uroot", "-e", statements],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise ClusterError(f"cannot create the database and its user: {result.stderr.strip()}")


def database_url(port: int, database: str = DATABASE) -> str:
    return f"mysql+pymysql://{DB_USER}:{DB_PASSWORD}@127.0.0.1:{port}/{database}?charset=utf8mb4"


# ---------------------------------------------------------------------------------------------
# router, redis, apps, workers, ingress


def start_dbcheck(state: dict[str, Any]) -> None:
    pairs = [f"{state['ports'][node]['check']}:{state['ports'][node]['sql']}" for node in db_nodes(state)]
    launch(
        state,
        "dbcheck",
        [sys.executable, str(HERE / "dbcheck.py"), "--user", DB_USER, "--password", DB_PASSWORD, *pairs],
    )
    for node in db_nodes(state):
        check = state["ports"][node]["check"]
        wait_for("dbcheck", lambda check=check: _http_status(f"http://127.0.0.1:{check}/") > 0, 10, _log("dbcheck"))


def router_config(state: dict[str, Any]) -> str:
    writers_all = state["writers"] == "all"
    lines = [
        "global",
        "    maxconn 4000",
        "defaults",
        "    mode tcp",
        "    timeout connect 2s",
        "    timeout client 1h",
        "    timeout server 1h",
        "    timeout check 2s",
        "listen galera",
        f"    bind 127.0.0.1:{state['ports']['router']}",
        "    option httpchk GET /",
        # A node marked down (killed, or joining and answering 1047) loses its connections at
        # once, so pooled connections fail fast and are retried rather than hang.
        "    default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions",
    ]
    if writers_all:
        lines.append("    balance leastconn")
    else:
        # One writer: every new connection goes to the node the first one went to, and stays
        # there when a failed node comes back (no failback, so never two writers at once).
        lines += ["    stick-table type integer size 1", "    stick on int(1)"]
    for index, node in enumerate(db_nodes(state)):
        ports = state["ports"][node]
        backup = "" if writers_all or index == 0 else " backup"
        lines.append(f"    server {node} 127.0.0.1:{ports['sql']} check port {ports['check']}{backup}")
    return "\n".join(lines) + "\n"


def start_router(state: dict[str, Any]) -> None:
    path = member_dir("router") / "haproxy.cfg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(router_config(state))
    launch(state, "router", ["haproxy", "-db", "-f", str(path)])
    url = database_url(state["ports"]["router"])
    wait_for("router", lambda: _db_answers(url), SERVICE_DEADLINE, _log("router"))


def _db_answers(url: str) -> bool:
    import pymysql
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    try:
        connection = pymysql.connect(
            host=parsed.host,
            port=parsed.port,
            user=parsed.username,
            password=parsed.password,
            database=parsed.database,
            connect_timeout=1,
        )
    except pymysql.MySQLError:
        return False
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except pymysql.MySQLError:
        return False
    finally:
        connection.close()


def start_redis(state: dict[str, Any]) -> None:
    port = state["ports"]["redis"]
    member_dir("redis").mkdir(parents=True, exist_ok=True)
    launch(
        state,
        "redis",
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    )
    wait_for("redis", lambda: _tcp_open(port), SERVICE_DEADLINE, _log("redis"))


def app_env(state: dict[str, Any]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GUNICORN_", "PROMETHEUS_"))}
    env.update(
        DATABASE_URL=database_url(state["ports"]["router"]),
        REDIS_URL=f"redis://127.0.0.1:{state['ports']['redis']}/0",
        SECRET_KEY=state["secret_key"],
        INVENTORY_ENV="production",
        # Plain HTTP on loopback: a Secure cookie would never come back.
        INVENTORY_SECURE_COOKIES="false",
        # nginx is the one proxy in front of the apps.
        INVENTORY_TRUSTED_PROXY_HOPS="1",
        INVENTORY_BASE_URL=f"http://127.0.0.1:{state['ports']['nginx']}",
        FLASK_APP="wsgi",
    )
    return env


def start_app(state: dict[str, Any], name: str, *, wait: bool = True) -> None:
    taken = {p for ports in state["ports"].values() for p in (ports.values() if isinstance(ports, dict) else [ports])}
    port = state["ports"].setdefault(name, free_port(taken))
    metrics = member_dir(name) / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    env = app_env(state)
    env.update(
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS=os.environ.get("INVENTORY_CLUSTER_APP_WORKERS", "2"),
        PROMETHEUS_MULTIPROC_DIR=str(metrics),
    )
    argv = [str(VENV_BIN / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"), "wsgi:app"]
    launch(state, name, read_only_code(argv), env=env)
    if wait:
        wait_app(state, name)


def wait_app(state: dict[str, Any], name: str) -> None:
    url = f"http://127.0.0.1:{state['ports'][name]}/readyz"
    wait_for(name, lambda: _http_status(url) == 200, SERVICE_DEADLINE, _log(name), state["pids"][name])


def read_only_code(argv: list[str]) -> list[str]:
    """`argv` run with the repository (code, virtualenv, instance/) read-only, as the shipped pods
    see it (readOnlyRootFilesystem): in a mount namespace of its own, the repository is bind-mounted
    onto itself read-only, so any write the app makes there fails as it would in Kubernetes. Its
    writable places are the member's own directory and /tmp, like the pod's emptyDir volumes."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        raise ClusterError("the app members need root and unshare(1) for their read-only view of the code")
    remount = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", remount, str(ROOT), *argv]


def start_notifier(state: dict[str, Any]) -> None:
    argv = [str(VENV_BIN / "flask"), "notify", "run", "--interval", "5"]
    launch(state, "notifier", read_only_code(argv), env=app_env(state))


def start_jobs(state: dict[str, Any]) -> None:
    """The import job worker: commits of large imports, whichever app took the upload."""
    argv = [str(VENV_BIN / "flask"), "jobs", "run", "--interval", "0.5"]
    launch(state, "jobs", read_only_code(argv), env=app_env(state))


def migrate(state: dict[str, Any]) -> None:
    result = subprocess.run(  # noqa: S603
        [str(VENV_BIN / "flask"), "db", "upgrade"],
        cwd=ROOT,
        env=app_env(state),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise ClusterError(f"flask db upgrade failed:\n{result.stdout}{result.stderr}")


def ingress_config(state: dict[str, Any]) -> str:
    directory = member_dir("ingress")
    upstreams = "\n".join(
        # Passive health checks: one failed attempt takes an app out for 5 s.
        f"        server 127.0.0.1:{state['ports'][name]} max_fails=1 fail_timeout=5s;"
        for name in app_names(state)
    )
    user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes 1;
daemon off;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} warn;
events {{ worker_connections 2048; }}
http {{
    access_log off;
    client_body_temp_path {directory / "tmp/body"};
    proxy_temp_path {directory / "tmp/proxy"};
    fastcgi_temp_path {directory / "tmp/fastcgi"};
    uwsgi_temp_path {directory / "tmp/uwsgi"};
    scgi_temp_path {directory / "tmp/scgi"};
    # Imports are at most 20 MB; the multipart envelope needs a little more.
    client_max_body_size 21m;
    upstream inventory {{
{upstreams}
    }}
    server {{
        listen 127.0.0.1:{state["ports"]["nginx"]};
        location / {{
            proxy_pass http://inventory;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            # A request that never reached an app (refused, reset before sending) goes to the
            # next one; nginx never re-sends a POST an app has already received.
            proxy_next_upstream error timeout http_502 http_503;
            proxy_connect_timeout 2s;
            proxy_read_timeout 130s;
        }}
    }}
}}
"""


def start_ingress(state: dict[str, Any]) -> None:
    directory = member_dir("ingress")
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (directory / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(directory / "tmp" / sub, nobody.pw_uid, nobody.pw_gid)
    path = directory / "nginx.conf"
    path.write_text(ingress_config(state))
    launch(state, "ingress", ["nginx", "-e", str(directory / "error.log"), "-c", str(path)])
    url = f"http://127.0.0.1:{state['ports']['nginx']}/healthz"
    wait_for("ingress", lambda: _http_status(url) == 200, SERVICE_DEADLINE, _log("ingress"))


def _log(name: str) -> Path:
    return member_dir(name) / "output.log"


def _tcp_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError):
        return 0


# ---------------------------------------------------------------------------------------------
# commands


def _starter(state: dict[str, Any], name: str) -> Callable[[], None]:
    if name in DB_NODES:
        return lambda: start_node(state, name)
    if re.fullmatch(r"app\d+", name):
        return lambda: start_app(state, name)
    starters: dict[str, Callable[[], None]] = {
        "dbcheck": lambda: start_dbcheck(state),
        "router": lambda: start_router(state),
        "redis": lambda: start_redis(state),
        "notifier": lambda: start_notifier(state),
        "jobs": lambda: start_jobs(state),
        "ingress": lambda: start_ingress(state),
    }
    return starters[name]


def members(state: dict[str, Any]) -> list[str]:
    return [*db_nodes(state), "dbcheck", "router", "redis", *app_names(state), "notifier", "jobs", "ingress"]


def up(apps: int, db_mode: str, writers: str) -> dict[str, Any]:
    state = load_state()
    if state is not None and (
        state["db"] != db_mode or not any(alive(state["pids"].get(node)) for node in db_nodes(state))
    ):
        down()
        state = None
    fresh = state is None
    if state is None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        # The nodes run as mysql and must reach their directories.
        STATE_DIR.chmod(0o755)
        state = new_state(db_mode)
        save_state(state)
        start_node(state, db_nodes(state)[0], bootstrap=True)
        create_database(state)
    if state["writers"] != writers:
        stop_member(state, "router")
    for name in app_names(state)[apps:]:
        stop_member(state, name)
    if state["apps"] != apps:
        stop_member(state, "ingress")
    state["writers"], state["apps"] = writers, apps
    save_state(state)
    for name in ("dbcheck", "router", "redis"):
        if not alive(state["pids"].get(name)):
            _starter(state, name)()
    if fresh:
        # Before the joiners: an rsync SST holds a read lock on its donor, which would stall DDL.
        migrate(state)
    # Joiners take their SST one after the other (a donor serves one at a time) while the apps
    # start: the apps only read until traffic arrives.
    missing_nodes = [node for node in db_nodes(state) if not alive(state["pids"].get(node))]
    missing_apps = [name for name in app_names(state) if not alive(state["pids"].get(name))]
    for name in missing_apps:
        start_app(state, name, wait=False)
    if not alive(state["pids"].get("notifier")):
        start_notifier(state)
    if not alive(state["pids"].get("jobs")):
        start_jobs(state)
    for node in missing_nodes:
        start_node(state, node)
    for name in missing_apps:
        wait_app(state, name)
    if not alive(state["pids"].get("ingress")):
        start_ingress(state)
    return state


def endpoints(state: dict[str, Any]) -> list[tuple[str, str]]:
    lines = [(f"DATABASE_URL_{node.upper()}", database_url(state["ports"][node]["sql"])) for node in db_nodes(state)]
    return [
        *lines,
        ("CLUSTER_DIR", str(STATE_DIR)),
        ("INVENTORY_URL", f"http://127.0.0.1:{state['ports']['nginx']}"),
        ("DATABASE_URL", database_url(state["ports"]["router"])),
        ("REDIS_URL", f"redis://127.0.0.1:{state['ports']['redis']}/0"),
    ]


def stop_member(state: dict[str, Any], name: str, *, timeout: float = 15.0) -> None:
    signal_member(state, name, signal.SIGTERM)
    pid = state["pids"].get(name)
    end = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < end:
        time.sleep(0.1)
    signal_member(state, name, signal.SIGKILL)
    state["pids"].pop(name, None)
    save_state(state)


def down() -> None:
    state = load_state()
    if state is not None:
        for name in reversed(members(state)):
            signal_member(state, name, signal.SIGTERM)
        end = time.monotonic() + 15
        while any(alive(pid) for pid in state["pids"].values()) and time.monotonic() < end:
            time.sleep(0.1)
        for name in members(state):
            signal_member(state, name, signal.SIGKILL)
    shutil.rmtree(STATE_DIR, ignore_errors=True)


def kill(name: str) -> None:
    state = _require_state()
    if name not in members(state):
        raise ClusterError(f"no member {name!r}; members: {', '.join(members(state))}")
    signal_member(state, name, signal.SIGKILL)
    pid = state["pids"].get(name)
    end = time.monotonic() + 10
    while alive(pid) and time.monotonic() < end:
        time.sleep(0.05)


def start(name: str) -> None:
    state = _require_state()
    if name not in members(state):
        raise ClusterError(f"no member {name!r}; members: {', '.join(members(state))}")
    if not alive(state["pids"].get(name)):
        _starter(state, name)()


def status() -> list[str]:
    state = _require_state()
    lines = [f"db={state['db']} writers={state['writers']} apps={state['apps']}"]
    for name in members(state):
        pid = state["pids"].get(name)
        up_ = alive(pid)
        detail = ""
        if up_ and name in DB_NODES:
            detail = " synced" if node_synced(state, name) else " not synced"
        lines.append(f"{name:9} {'up' if up_ else 'down':5} pid={pid or '-'}{detail}")
    return lines


def _require_state() -> dict[str, Any]:
    state = load_state()
    if state is None:
        raise ClusterError(f"no cluster under {STATE_DIR}; run ops/cluster/up first")
    return state


def main() -> None:
    parser = argparse.ArgumentParser(prog="ops/cluster", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="start (or complete) the cluster; prints KEY=VALUE lines last")
    up_parser.add_argument("--apps", type=int, default=2, help="gunicorn app instances behind nginx")
    up_parser.add_argument("--db", choices=("galera", "single"), default="galera")
    up_parser.add_argument("--writers", choices=("one", "all"), default="one", help="router: one writer or all")
    commands.add_parser("down", help="stop every member by pid and remove the cluster's data")
    commands.add_parser("status", help="print each member")
    for command in ("kill", "start"):
        sub = commands.add_parser(command, help=f"{command} one member (db1.., app1.., notifier, jobs, redis ...)")
        sub.add_argument("name")
    args = parser.parse_args()
    try:
        if args.command == "up":
            if args.apps < 1:
                parser.error("--apps must be at least 1")
            state = up(args.apps, args.db, args.writers)
            for key, value in endpoints(state):
                print(f"{key}={value}")
        elif args.command == "down":
            down()
        elif args.command == "status":
            print("\n".join(status()))
        elif args.command == "kill":
            kill(args.name)
        else:
            start(args.name)
    except (ClusterError, subprocess.CalledProcessError) as error:
        print(f"ops/cluster {args.command}: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
