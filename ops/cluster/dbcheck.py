"""Galera health for HAProxy: one HTTP port per database node, 200 when the node is Synced and
ready for queries, 503 otherwise (the clustercheck pattern, without xinetd).

A node that accepts connections is not necessarily usable: while it joins (IST/SST) or donates,
it answers queries with error 1047 ("WSREP has not yet prepared node for application use"), so
HAProxy's plain mysql-check would send writes to it. In `--db single` mode the node is up when it
answers a query.

    python dbcheck.py --user U --password P CHECKPORT:DBPORT [CHECKPORT:DBPORT ...]
"""

from __future__ import annotations

import argparse
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pymysql

SYNCED = "4"


def node_ready(port: int, user: str, password: str) -> bool:
    try:
        connection = pymysql.connect(
            host="127.0.0.1", port=port, user=user, password=password, connect_timeout=1, read_timeout=2
        )
    except pymysql.MySQLError:
        return False
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@global.wsrep_on")
            if not cursor.fetchone()[0]:  # a server without Galera (--db single)
                return True
            cursor.execute("SHOW STATUS WHERE Variable_name IN ('wsrep_local_state', 'wsrep_ready')")
            status = dict(cursor.fetchall())
    except pymysql.MySQLError:
        return False
    finally:
        connection.close()
    return status.get("wsrep_local_state") == SYNCED and status.get("wsrep_ready") == "ON"


def serve(check_port: int, db_port: int, user: str, password: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ready = node_ready(db_port, user, password)
            body = b"synced\n" if ready else b"not ready\n"
            self.send_response(200 if ready else 503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", check_port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("pairs", nargs="+", metavar="CHECKPORT:DBPORT")
    args = parser.parse_args()
    for pair in args.pairs:
        check_port, db_port = (int(part) for part in pair.split(":"))
        serve(check_port, db_port, args.user, args.password)
    threading.Event().wait()


if __name__ == "__main__":
    main()
