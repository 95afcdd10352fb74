// The label sheet's "Print" button (a file, not an inline handler: the CSP runs no inline script).
document.querySelectorAll("[data-print]").forEach((button) => {
  button.addEventListener("click", () => window.print());
});
