// The count page: a wedge scanner ends the code with Enter; that moves to the quantity field
// instead of submitting, so "scan, type the quantity, Enter" enters one line.
document.addEventListener("DOMContentLoaded", () => {
  const code = document.getElementById("count-code");
  const quantity = document.getElementById("count-quantity");
  if (!code || !quantity) return;
  code.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    quantity.focus();
    quantity.select();
  });
});
