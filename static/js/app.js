// Small progressive enhancements; every page works without this file.
document.addEventListener("DOMContentLoaded", () => {
  // A submitted form disables its buttons: a double click sends one request (the idempotency key
  // covers what still gets through, such as back-and-resubmit).
  document.querySelectorAll("form[data-once]").forEach((form) => {
    form.addEventListener("submit", () => {
      setTimeout(() => form.querySelectorAll("button[type=submit]").forEach((b) => { b.disabled = true; }), 0);
    });
  });
  // Stock forms: the cursor starts in the field to fill (a field in error, else the first empty
  // one), so after a receipt with item, place and reference kept it waits in Quantity.
  const focusForm = document.querySelector("form[data-focus-first]");
  if (focusForm) {
    const fields = Array.from(focusForm.querySelectorAll("input:not([type=hidden]):not([readonly]), select, textarea"));
    const target = focusForm.querySelector("[aria-invalid=true]") || fields.find((el) => !el.value);
    if (target) target.focus();
  }
  // The pick list: "add a line" clones the last empty line with fresh field names.
  const addLine = document.querySelector("[data-add-line]");
  if (addLine) {
    addLine.addEventListener("click", () => {
      const lines = document.querySelectorAll(".pick-line");
      const last = lines[lines.length - 1];
      const copy = last.cloneNode(true);
      const n = lines.length;
      copy.querySelectorAll("input, label").forEach((el) => {
        ["name", "id", "for", "aria-describedby"].forEach((attr) => {
          const v = el.getAttribute(attr);
          if (v) el.setAttribute(attr, v.replace(/lines-\d+-/, `lines-${n}-`));
        });
        if (el.tagName === "INPUT") { el.value = ""; el.removeAttribute("aria-invalid"); }
      });
      copy.querySelectorAll(".field-error, .hint").forEach((el) => el.remove());
      copy.querySelectorAll(".has-error").forEach((el) => el.classList.remove("has-error"));
      copy.classList.remove("has-problem");
      copy.querySelector(".line-no").textContent = String(n + 1);
      last.after(copy);
      copy.dispatchEvent(new CustomEvent("line-added", { bubbles: true }));
    });
  }
  // The item form: the new-category name shows only when "New category…" is chosen (without
  // this file it is always shown, with a hint).
  const category = document.querySelector("select[name=category]");
  const newCategory = document.querySelector(".field.new-category");
  if (category && newCategory) {
    const sync = () => {
      newCategory.hidden = category.value !== "new" && !newCategory.classList.contains("has-error");
    };
    category.addEventListener("change", () => {
      newCategory.classList.remove("has-error");
      sync();
      if (category.value === "new") newCategory.querySelector("input").focus();
    });
    sync();
  }
  // Phones: the menu button opens the menu panel in place (without this file it is a link to
  // #site-menu, which CSS opens with :target).
  const menuButton = document.querySelector("[data-menu-button]");
  const siteMenu = document.getElementById("site-menu");
  const setMenu = (open) => {
    siteMenu.classList.toggle("open", open);
    menuButton.setAttribute("aria-expanded", String(open));
  };
  if (menuButton && siteMenu) {
    menuButton.setAttribute("role", "button");
    menuButton.addEventListener("click", (e) => {
      e.preventDefault();
      setMenu(!siteMenu.classList.contains("open"));
    });
    siteMenu.querySelector(".menu-close").addEventListener("click", (e) => { e.preventDefault(); setMenu(false); menuButton.focus(); });
  }
  // Dropdown menus: one open at a time, closed by a click elsewhere or by focus leaving them.
  const menus = Array.from(document.querySelectorAll("details.menu"));
  menus.forEach((menu) => menu.addEventListener("toggle", () => {
    if (menu.open) menus.forEach((other) => { if (other !== menu) other.open = false; });
  }));
  const closeOutside = (e) => menus.forEach((menu) => { if (menu.open && !menu.contains(e.target)) menu.open = false; });
  document.addEventListener("click", closeOutside);
  document.addEventListener("focusin", closeOutside);
  // Escape closes an open menu (keyboard users).
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    menus.forEach((menu) => { menu.open = false; });
    if (siteMenu && siteMenu.classList.contains("open")) { setMenu(false); menuButton.focus(); }
  });
  // A table wider than the screen scrolls in its box: the box then takes the keyboard focus (arrow
  // keys scroll it) and is named after its table; a box that does not scroll stays out of the tab order.
  const wraps = Array.from(document.querySelectorAll(".table-wrap"));
  const markScrollable = () => wraps.forEach((wrap) => {
    const scrolls = wrap.scrollWidth > wrap.clientWidth + 1;
    if (scrolls === wrap.hasAttribute("tabindex")) return;
    if (scrolls) {
      const table = wrap.querySelector("table");
      // Named after its table, else after the last heading before it.
      const heading = Array.from(document.querySelectorAll("main h1, main h2"))
        .filter((h) => h.compareDocumentPosition(wrap) & Node.DOCUMENT_POSITION_FOLLOWING).pop();
      wrap.setAttribute("tabindex", "0");
      wrap.setAttribute("role", "region");
      wrap.setAttribute("aria-label", table?.getAttribute("aria-label") || heading?.textContent.trim() || document.title);
    } else {
      ["tabindex", "role", "aria-label"].forEach((attr) => wrap.removeAttribute(attr));
    }
  });
  markScrollable();
  window.addEventListener("resize", markScrollable);
});
