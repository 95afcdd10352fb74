// The scan page. Every item scan goes through one ordered queue kept in IndexedDB: online it is
// sent at once, offline it waits and is replayed in order when the connection returns. Each scan
// carries its own idempotency key, so a scan sent twice (a lost response, a replay) moves stock once.
// Each also carries who scanned it: on a shared handheld the next person to sign in never sends
// another person's scans (they wait for that person, or a manager discards them).
(() => {
  const root = document.getElementById("scan");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const input = $("scan-code");
  const resultBox = $("scan-result");
  const log = $("scan-log");
  const msg = JSON.parse(root.dataset.messages);
  // Location codes by their upper-case form: a lower-case scan or typed code finds its place.
  const locations = new Map(JSON.parse(root.dataset.locations).map((c) => [c.toUpperCase(), c]));
  let csrf = root.dataset.csrf;
  const me = root.dataset.user;
  const state = { location: null, target: null, quantity: "1" };
  let seq = 0;
  let lastUndoable = null;

  // crypto.randomUUID needs a secure context; getRandomValues works on plain-HTTP Wi-Fi too.
  const newKey = () => (crypto.randomUUID ? crypto.randomUUID()
    : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join(""));
  const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => (values[k] ?? ""));
  // [one, other] from ngettext: English says "1 scan", "2 scans"; Chinese has one form.
  const plural = (forms, n) => forms[n === 1 ? 0 : 1];
  const mode = () => root.querySelector("input[name=mode]:checked")?.value ?? null;
  const refocus = () => setTimeout(() => input.focus(), 0);

  // ---------------------------------------------------------------- sound and colour
  let audio = null;
  function beep(ok) {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const tones = ok ? [[1320, 0, 0.09]] : [[220, 0, 0.18], [180, 0.22, 0.3]];
      tones.forEach(([freq, start, stop]) => {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.type = ok ? "sine" : "square";
        osc.frequency.value = freq;
        gain.gain.value = 0.15;
        osc.connect(gain).connect(audio.destination);
        osc.start(audio.currentTime + start);
        osc.stop(audio.currentTime + stop);
      });
    } catch (e) { /* no audio: the colour still tells */ }
  }
  function show(kind, text) {
    resultBox.className = `scan-result ${kind}`;
    resultBox.textContent = text;
    if (kind !== "info") beep(kind === "ok");
  }
  function addRow(kind, text, scanMode) {
    const row = log.insertRow(0);
    row.className = kind;
    row.insertCell().textContent = ++seq;
    row.insertCell().textContent = scanMode ? msg.modes[scanMode] : "";
    row.insertCell().textContent = text;
    row.insertCell();
    return row;
  }

  // ---------------------------------------------------------------- where we are
  function showWhere() {
    $("scan-location").textContent = state.location || "—";
    $("scan-target").textContent = state.target || "—";
    $("scan-target-wrap").hidden = mode() !== "transfer";
    $("scan-quantity").textContent = state.quantity;
  }
  function setLocation(code) {
    if (mode() === "transfer" && state.location && !state.target && code !== state.location) {
      state.target = code;
      show("ok", fill(msg.target, { code }));
    } else {
      state.location = code;
      state.target = null;
      show("ok", fill(msg.location, { code }));
    }
    showWhere();
  }

  // ---------------------------------------------------------------- the queue (IndexedDB)
  const memory = [];
  let memorySeq = 0;
  const dbReady = new Promise((resolve) => {
    if (!window.indexedDB) { resolve(null); return; }
    const open = indexedDB.open("inventory-scan", 1);
    open.onupgradeneeded = () => open.result.createObjectStore("queue", { keyPath: "seq", autoIncrement: true });
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => resolve(null);
  });
  function tx(store, modeName, work) {
    return dbReady.then((db) => new Promise((resolve, reject) => {
      if (!db) { resolve(work(null)); return; }
      const t = db.transaction(store, modeName);
      let out;
      t.oncomplete = () => resolve(out);
      t.onerror = () => reject(t.error);
      const req = work(t.objectStore(store));
      if (req) req.onsuccess = () => { out = req.result; };
    }));
  }
  const enqueue = (scan) => tx("queue", "readwrite", (s) => (s ? s.add(scan) : memory.push({ ...scan, seq: ++memorySeq })));
  // Every queued scan in order (a handful: a dead spot's worth).
  const all = () => tx("queue", "readonly", (s) => (s ? s.getAll() : null)).then((rows) => rows ?? memory.slice());
  const remove = (key) => tx("queue", "readwrite", (s) => {
    if (s) return s.delete(key);
    memory.splice(memory.findIndex((scan) => scan.seq === key), 1);
    return null;
  });
  const mine = async () => (await all()).filter((scan) => scan.user === me);
  const size = async () => (await mine()).length;
  // Scans someone else queued on this device (or a page from before scans said who made them).
  async function others() {
    const byUser = new Map();
    (await all()).filter((scan) => scan.user !== me).forEach((scan) => {
      const owner = scan.user || "?";
      byUser.set(owner, [...(byUser.get(owner) || []), scan]);
    });
    return byUser;
  }

  async function showPending() {
    const n = await size();
    const el = $("scan-pending");
    el.textContent = n;
    el.classList.toggle("waiting", n > 0);
    await showOthers();
  }

  async function showOthers() {
    const box = $("scan-others");
    const list = $("scan-others-list");
    const waiting = await others();
    list.replaceChildren();
    waiting.forEach((scans, owner) => {
      const item = document.createElement("li");
      item.textContent = fill(plural(msg.others, scans.length), { n: scans.length, user: owner });
      if (root.dataset.discardUrl) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "link";
        button.textContent = msg.discard;
        button.addEventListener("click", () => discard(owner, scans));
        item.append(" ", button);
      }
      list.append(item);
    });
    box.hidden = waiting.size === 0;
  }

  // A manager drops another user's queued scans; the server logs who dropped what.
  async function discard(owner, scans) {
    if (!window.confirm(fill(plural(msg.discard_confirm, scans.length), { n: scans.length, user: owner }))) { refocus(); return; }
    try {
      const response = await post(root.dataset.discardUrl, {
        user: owner === "?" ? "" : owner,
        scans: scans.map((scan) => ({ code: scan.code, mode: scan.mode, location: scan.location, quantity: scan.quantity })),
      });
      if (!response.ok) { show("bad", msg.failed); return; }
      for (const scan of scans) await remove(scan.seq);
      show("info", fill(plural(msg.discarded, scans.length), { n: scans.length, user: owner }));
    } catch (e) {
      show("bad", msg.failed);
    }
    await showPending();
    refocus();
  }

  // ---------------------------------------------------------------- sending
  async function post(url, body) {
    const send = () => fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body),
    });
    let response = await send();
    if (response.status === 400 && !(response.headers.get("Content-Type") || "").includes("json")) {
      // A page kept open (or cached) for long holds an expired CSRF token: get a fresh one.
      const fresh = await fetch(root.dataset.tokenUrl, { credentials: "same-origin" });
      if (fresh.ok) { csrf = (await fresh.json()).csrf_token; response = await send(); }
    }
    return response;
  }

  let flushing = false;
  async function flush() {
    if (flushing) return;
    flushing = true;
    try {
      for (let scan = (await mine())[0]; scan; scan = (await mine())[0]) {
        let response;
        try {
          response = await post(root.dataset.movesUrl, scan);
        } catch (e) {
          break; // offline: the scan stays queued, in order
        }
        const body = (response.headers.get("Content-Type") || "").includes("json") ? await response.json() : null;
        if (!body) { show("bad", msg.failed); break; }
        // A page kept from an earlier sign-in: the scan stays queued for the person who made it.
        if (body.code === "scanned_by_another_user") { show("bad", body.message); break; }
        await remove(scan.seq);
        report(scan, body);
        await showPending();
      }
    } finally {
      flushing = false;
      await showPending();
    }
  }

  function report(scan, body) {
    if (body.status !== "ok") {
      // The message already names the available quantity: no second copy of the number.
      let text = body.message;
      // A refused "*5" scan keeps its 5 for the next scan, unless another quantity was typed since.
      if (scan.quantity !== "1" && state.quantity === "1") {
        state.quantity = scan.quantity;
        showWhere();
        text += ` ${msg.kept}`;
      }
      show("bad", text);
      addRow("bad", `${scan.code}: ${body.message}`, scan.mode);
      return;
    }
    if (body.kind === "location") { setLocation(body.code); return; }
    // What a supplier's GS1 label said besides the item: lot, expiry, serial.
    const label = ["lot", "expiry", "serial"].filter((key) => body[key]).map((key) => fill(msg[key], body));
    const text = [fill(msg[body.mode], body), ...label].join(" · ");
    show("ok", text);
    const row = addRow("ok", text, body.mode);
    if (lastUndoable) lastUndoable.querySelector("[data-undo]")?.remove();
    row.cells[3].append($("scan-undo-template").content.cloneNode(true));
    row.querySelector("[data-undo]").addEventListener("click", () => undo(body.movement_id, row));
    lastUndoable = row;
  }

  async function undo(movementId, row) {
    try {
      const response = await post(root.dataset.undoUrl, { movement_id: movementId, idempotency_key: newKey() });
      const body = await response.json();
      if (body.status === "ok") {
        row.classList.add("undone");
        row.querySelector("[data-undo]")?.remove();
        show("ok", fill(msg.undone, { id: movementId }));
      } else {
        show("bad", body.message);
      }
    } catch (e) {
      show("bad", msg.failed);
    }
    refocus();
  }

  // ---------------------------------------------------------------- a scan
  async function handle(code) {
    if (!code) return;
    const typedQuantity = code.match(/^\*(\d+(?:\.\d{1,3})?)$/);
    if (typedQuantity) {
      state.quantity = typedQuantity[1];
      showWhere();
      show("info", fill(msg.quantity, { quantity: state.quantity }));
      return;
    }
    // A pick list's code opens it for picking (server-rendered, scan by scan).
    if (code.toUpperCase().startsWith(root.dataset.pickPrefix)) {
      window.location.assign(root.dataset.pickUrl.replace(/PICK(:|%3A)0$/, encodeURIComponent(code.toUpperCase()).replace(/%3A/g, ":")));
      return;
    }
    const place = locations.get(code.toUpperCase());
    if (place) { setLocation(place); return; }
    if (!mode()) { show("bad", msg.no_mode); return; }
    const scan = {
      code,
      mode: mode(),
      reference: $("scan-reference").value.trim(),
      location: state.location,
      to_location: state.target,
      quantity: state.quantity,
      idempotency_key: newKey(),
      user: me,
    };
    state.quantity = "1";
    showWhere();
    await enqueue(scan);
    await showPending();
    await flush();
    if (await size()) show("info", fill(msg.queued, { code }));
  }

  input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    const code = input.value.trim();
    input.value = "";
    handle(code).finally(refocus);
  });
  // Enter after typing an order number goes back to scanning.
  $("scan-reference").addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); input.focus(); }
  });
  root.querySelectorAll("input[name=mode]").forEach((radio) => radio.addEventListener("change", () => {
    state.target = null;
    showWhere();
    refocus();
    // Remembered for this user's next visit; offline the page simply keeps it until reload.
    post(root.dataset.modeUrl, { mode: radio.value }).catch(() => {});
  }));
  document.addEventListener("keydown", (event) => {
    const n = event.altKey && ["1", "2", "3"].indexOf(event.key);
    if (n === false || n < 0) return;
    event.preventDefault();
    root.querySelectorAll("input[name=mode]")[n].click();
  });
  $("scan-reset").addEventListener("click", () => {
    state.location = null;
    state.target = null;
    showWhere();
    refocus();
  });
  // A click anywhere that is not a control gives the focus back to the scan field.
  document.addEventListener("click", (event) => {
    if (!event.target.closest("input, button, a, select, textarea, summary, label")) refocus();
  });

  // ---------------------------------------------------------------- the camera
  $("scan-camera-button").addEventListener("click", async () => {
    if (!("BarcodeDetector" in window) || !navigator.mediaDevices) { show("bad", msg.no_camera); refocus(); return; }
    const box = $("scan-camera");
    const video = $("scan-video");
    if (!box.hidden) { video.srcObject?.getTracks().forEach((t) => t.stop()); box.hidden = true; refocus(); return; }
    try {
      const detector = new window.BarcodeDetector({ formats: ["qr_code", "code_128"] });
      video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      await video.play();
      box.hidden = false;
      let last = "";
      const tick = async () => {
        if (box.hidden) return;
        const found = await detector.detect(video).catch(() => []);
        const code = found[0]?.rawValue?.trim();
        if (code && code !== last) { last = code; await handle(code); setTimeout(() => { last = ""; }, 1500); }
        setTimeout(tick, 250);
      };
      tick();
    } catch (e) {
      show("bad", msg.no_camera);
    }
    refocus();
  });

  // ---------------------------------------------------------------- offline
  window.addEventListener("online", flush);
  setInterval(() => { if (navigator.onLine) flush(); }, 5000);
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register(root.dataset.swUrl, { scope: root.dataset.swUrl.replace(/\/sw\.js$/, "") })
      .then(() => navigator.serviceWorker.ready)
      .then((registration) => {
        // A page the worker did not serve (the first visit, a hard reload) is not in its cache yet.
        if (!navigator.serviceWorker.controller) registration.active.postMessage("store-page");
      })
      .catch(() => { /* the page still works online */ });
  }
  showWhere();
  showPending().then(flush);
  input.focus();
})();
