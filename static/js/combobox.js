// The stock forms' item picker: the SKU box becomes an ARIA combobox that searches SKU, name,
// barcode and pinyin (GET /items/lookup), tells the chosen item's name, unit and stock per location,
// and fills the location box with where the item is, when that box is empty. The SKU box stays the
// submitted field, so without this file the forms work as before.
(() => {
  const form = document.querySelector("form[data-item-lookup]");
  if (!form) return;
  const url = form.dataset.itemLookup;
  const msg = JSON.parse(form.dataset.lookupMessages);
  const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => (values[k] ?? ""));
  // One request per pause in typing: a clerk typing "luosi" sends one search, not five (150 ms is
  // below the ~200 ms at which a list that follows the keys starts to feel late).
  const PAUSE_MS = 150;

  function stockText(item) {
    if (!item.stock.length) return msg.nowhere;
    return item.stock.map((s) => `${s.location} ${s.quantity === null ? msg.hidden : `${s.quantity} ${item.unit}`}`).join(" · ");
  }

  function enhance(input) {
    const field = input.closest(".field");
    field.querySelectorAll(".lookup-list, .lookup-echo").forEach((el) => el.remove());
    const list = document.createElement("ul");
    list.id = `${input.id}-options`;
    list.className = "lookup-list";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", msg.label);
    list.hidden = true;
    const echo = document.createElement("p");
    echo.id = `${input.id}-echo`;
    echo.className = "lookup-echo";
    echo.setAttribute("aria-live", "polite");
    input.after(list, echo);
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", list.id);
    input.removeAttribute("aria-activedescendant");
    const described = (input.getAttribute("aria-describedby") || "").split(" ").filter((id) => id && !id.endsWith("-echo"));
    input.setAttribute("aria-describedby", [...described, echo.id].join(" "));
    input.setAttribute("autocomplete", "off");
    input.dataset.lookupFor = input.id;

    // `waiting`: a search is due or on its way; `enterWaiting`: Enter came before its answer (a
    // wedge scanner ends the code with Enter at once), so the answer's best match is chosen.
    // `label`: what a scanned supplier GS1 label said (lot, expiry, serial, quantity), or null.
    const state = {
      items: [], active: -1, timer: 0, asked: "", controller: null, waiting: false, enterWaiting: false, label: null,
    };
    const options = () => Array.from(list.children);
    const scope = input.closest(".pick-line") || form;

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      state.active = -1;
    }
    function activate(index) {
      const all = options();
      if (!all.length) return;
      state.active = (index + all.length) % all.length;
      all.forEach((li, i) => li.setAttribute("aria-selected", String(i === state.active)));
      input.setAttribute("aria-activedescendant", all[state.active].id);
      all[state.active].scrollIntoView({ block: "nearest" });
    }
    function render(items) {
      const chooseBest = state.enterWaiting;
      state.enterWaiting = false;
      state.items = items;
      list.replaceChildren();
      if (!items.length) {
        close();
        echo.textContent = input.value.trim() ? msg.none : "";
        return;
      }
      if (chooseBest) {
        const typed = input.value.trim().toUpperCase();
        const exact = items.findIndex((item) => item.sku.toUpperCase() === typed || item.barcode === input.value.trim());
        choose(exact >= 0 ? exact : 0);
        return;
      }
      items.forEach((item, i) => {
        const li = document.createElement("li");
        li.id = `${input.id}-option-${i}`;
        li.setAttribute("role", "option");
        const name = document.createElement("span");
        name.className = "lookup-name";
        name.textContent = item.name;
        const meta = document.createElement("span");
        meta.className = "lookup-meta";
        meta.textContent = `${item.sku} · ${item.unit}`;
        li.append(name, meta);
        // mousedown, not click: the input keeps focus, so the list is not closed by its blur first.
        li.addEventListener("mousedown", (e) => { e.preventDefault(); choose(i); });
        list.append(li);
      });
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      echo.textContent = fill(msg.count, { n: items.length });
      activate(0);
    }
    function choose(index) {
      const item = state.items[index];
      if (!item) return;
      input.value = item.sku;
      close();
      echo.textContent = `${item.name} · ${item.unit} — ${stockText(item)}`;
      const label = state.label || {};
      const told = ["lot", "expiry", "serial"].filter((key) => label[key]).map((key) => fill(msg[key], label));
      if (told.length) echo.textContent += ` ${told.join(" · ")}`;
      const quantity = scope.querySelector("input[name$='quantity']");
      if (quantity && !quantity.value && label.label_quantity) quantity.value = label.label_quantity;
      const place = scope.querySelector("input[name$='location']");
      const suggested = item.stock.find((s) => s.quantity !== null);
      if (place && !place.value && suggested) {
        place.value = suggested.location;
        echo.textContent += ` ${fill(msg.suggested, { location: suggested.location })}`;
      }
      // On to the next box still to fill (the quantity when the place was suggested).
      const boxes = Array.from(scope.querySelectorAll("input:not([type=hidden]), select, textarea"));
      const next = boxes.slice(boxes.indexOf(input) + 1).find((el) => !el.value);
      if (next) next.focus();
    }
    async function search() {
      const q = input.value.trim();
      if (q === state.asked) { state.waiting = false; if (state.enterWaiting) render(state.items); return; }
      state.asked = q;
      if (state.controller) state.controller.abort();
      if (!q) { state.waiting = false; render([]); return; }
      state.controller = new AbortController();
      try {
        const response = await fetch(`${url}?q=${encodeURIComponent(q)}`, {
          signal: state.controller.signal, headers: { Accept: "application/json" }, credentials: "same-origin",
        });
        const body = (response.headers.get("Content-Type") || "").includes("json") ? await response.json() : {};
        if (input.value.trim() !== q) return;
        state.waiting = false;
        // A scanned GS1 label naming no item (or a broken one) says why.
        if (!response.ok) { render([]); if (body.detail) echo.textContent = body.detail; return; }
        state.label = body.label && body.label.gtin ? body.label : null;
        if (document.activeElement === input) render(body.items);
      } catch (e) {
        if (e.name !== "AbortError") { state.waiting = false; state.enterWaiting = false; echo.textContent = ""; }
      }
    }

    input.addEventListener("input", () => {
      clearTimeout(state.timer);
      state.waiting = true;
      state.enterWaiting = false;
      state.timer = setTimeout(search, PAUSE_MS);
    });
    input.addEventListener("keydown", (e) => {
      const open = !list.hidden;
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        if (!open && state.items.length) { list.hidden = false; input.setAttribute("aria-expanded", "true"); activate(0); return; }
        activate(state.active + (e.key === "ArrowDown" ? 1 : -1));
      } else if (e.key === "Enter" && open && state.active >= 0) {
        e.preventDefault();
        choose(state.active);
      } else if (e.key === "Enter" && state.waiting && input.value.trim()) {
        e.preventDefault();
        state.enterWaiting = true;
        clearTimeout(state.timer);
        search();
      } else if (e.key === "Escape" && open) {
        e.preventDefault();
        close();
      }
    });
    input.addEventListener("blur", close);
  }

  form.querySelectorAll(".item-lookup input").forEach(enhance);
  // A pick line added later is a copy of an enhanced one (static/js/app.js): it gets its own list.
  form.addEventListener("line-added", (e) => e.target.querySelectorAll(".item-lookup input").forEach(enhance));
})();
