// The scan page's service worker (served at /scan/sw.js, scope /scan): keeps the page and its
// files available in Wi-Fi dead spots. Scans themselves are queued by the page, never here.
//
// The page is kept from the first visit on: that visit is not served through the worker (it
// registers it), so the page asks the worker to fetch and keep a copy ("store-page"). Every later
// online visit is served network-first and replaces the copy.
const CACHE = "inventory-scan-v2";
const PAGE = "/scan";
const FILES = ["/static/css/app.css", "/static/js/app.js", "/static/js/scan.js"];

// Only the page itself is kept: not a sign-in page reached by a redirect, not an error.
function keepPage(response) {
  if (!response.ok || response.redirected) return Promise.resolve();
  return caches.open(CACHE).then((cache) => cache.put(PAGE, response));
}

function fetchAndKeepPage() {
  return fetch(PAGE, { credentials: "same-origin", cache: "no-store" }).then(keepPage).catch(() => {});
}

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("message", (event) => {
  if (event.data === "store-page") event.waitUntil(fetchAndKeepPage());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname === PAGE) {
    // Network first, so the page (and its CSRF token) is fresh whenever the server answers.
    event.respondWith(
      fetch(request)
        .then((response) => {
          event.waitUntil(keepPage(response.clone()));
          return response;
        })
        .catch(() => caches.match(PAGE).then((kept) => kept || Response.error())),
    );
    return;
  }
  if (FILES.includes(url.pathname)) {
    event.respondWith(
      fetch(request)
        .then((response) => {
          if (response.ok) {
            const copy = response.clone();
            event.waitUntil(caches.open(CACHE).then((cache) => cache.put(url.pathname, copy)));
          }
          return response;
        })
        .catch(() => caches.match(url.pathname)),
    );
  }
});
