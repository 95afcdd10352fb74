// ZPL to PNG for tests/contract/test_zpl_render.py: zpl-renderer-js (IngridHQ's zebrash, a Go ZPL
// renderer compiled to WebAssembly), installed by .ci/deps into .ci-tools/zpl-render (NODE_PATH).
//
// One JSON request a line on stdin: {"zpl": "^XA…^XZ…", "widthMm": 60, "heightMm": 40, "dpmm": 8};
// one JSON answer a line on stdout: {"pngs": [base64 PNG of each ^XA…^XZ format]} or {"error": "…"}.
// The process stays up between requests: loading the WebAssembly costs about a second, a label
// about 0.1 s. It ends when stdin closes.
"use strict";

// Node 18 (Debian 12's) has no global Web Crypto, which Go's WebAssembly runtime needs.
globalThis.crypto ??= require("node:crypto").webcrypto;
// Go's runtime prints to console.log: keep stdout for the answers.
console.log = console.error;

const readline = require("node:readline");
const { ready } = require("zpl-renderer-js");

async function answer(line) {
  try {
    const { zpl, widthMm, heightMm, dpmm } = JSON.parse(line);
    const { api } = await ready;
    return { pngs: await api.zplToBase64MultipleAsync(zpl, widthMm, heightMm, dpmm ?? 8) };
  } catch (error) {
    return { error: String(error && error.message ? error.message : error) };
  }
}

(async () => {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim()) process.stdout.write(JSON.stringify(await answer(line)) + "\n");
  }
})();
