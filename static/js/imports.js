// The import job page: polls the job's progress (kept in the database) until the server says the
// answer is final: done, failed, or no worker is taking the job up (then the page says so and stops).
(() => {
  const root = document.getElementById("import-job");
  if (!root) return;
  const bar = document.getElementById("import-progress");
  const status = document.getElementById("import-status");
  async function poll() {
    try {
      const state = await (await fetch(root.dataset.progressUrl, { credentials: "same-origin" })).json();
      // Checking is the first half of the bar; writing (one transaction) shows as the second.
      bar.value = state.phase === "writing" ? 75 : state.total ? Math.round((50 * state.done) / state.total) : 0;
      status.textContent = state.message || `${state.done} / ${state.total}`;
      if (state.final) {
        status.className = state.state === "done" ? "flash flash-success" : "flash flash-error";
        bar.value = state.state === "done" ? 100 : bar.value;
        return;
      }
    } catch (e) { /* try again */ }
    setTimeout(poll, 1000);
  }
  poll();
})();
