// Picking on the scan page, for scanners faster than a page load: each scan is posted in the
// background, in order, and the page's picking part is swapped for the answer, so a code scanned
// while the last one is on its way waits its turn instead of being typed into a page that is
// reloading. Without this file the same forms post and reload the page (nothing else differs).
(() => {
  const queue = [];
  let busy = false;
  const box = () => document.getElementById("pick-code");

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || form.id !== "pick-scan-form" || !window.fetch) return;
    event.preventDefault();
    const code = box().value.trim();
    box().value = "";
    if (code) queue.push(code);
    run();
  });

  async function run() {
    if (busy) return;
    busy = true;
    let code = "";
    try {
      while (queue.length) {
        const form = document.getElementById("pick-scan-form");
        if (!form) { queue.length = 0; break; }
        code = queue.shift();
        const body = new FormData(form);
        body.set("code", code);
        // Not form.action: the form has a field named "action", which that property returns.
        const url = form.getAttribute("action") || window.location.href;
        const response = await fetch(url, { method: "POST", body, credentials: "same-origin" });
        const html = await response.text();
        const next = new DOMParser().parseFromString(html, "text/html").getElementById("main");
        if (response.redirected || !next) { window.location.assign(response.url); return; }
        const typed = box() ? box().value : "";
        document.getElementById("main").replaceWith(document.adoptNode(next));
        if (box()) { box().value = typed; box().focus(); }
      }
    } catch (error) {
      // Offline or the server gone: the scan goes as a plain form post, which says so the usual way.
      const form = document.getElementById("pick-scan-form");
      if (form && box()) { box().value = code; form.submit(); }
    } finally {
      busy = false;
    }
  }
})();
