"""The least a request can cost on this stack: Flask under the same gunicorn workers, answering the
stock-out benchmark's URLs with a fixed JSON body (no database, auth, metrics or logs).

api_stock_out.py measures it next to the app (issue 19), as the ceiling no stock-out can pass on
the machine: the app's full request, and MariaDB, share its CPUs.
"""

from __future__ import annotations

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/healthz")
def healthz() -> tuple[str, int]:
    return "ok", 200


@app.get("/api/v1/warehouses")
def warehouses() -> object:
    return jsonify({"data": [{"code": "WH1", "name": "Main", "active": True}], "next": None})


@app.post("/api/v1/stock/issue")
def issue() -> tuple[object, int]:
    body = request.get_json(force=True)
    return jsonify({"sku": body.get("sku"), "location": body.get("location"), "quantity": body.get("quantity")}), 201
