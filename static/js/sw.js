// The scan page's service worker (served at /scan/sw.js, scope /scan): keeps the page and its
// files available in Wi-Fi dead spots. Scans themselves are queued by the page, never here.
const CACHE = "inventory-scan-v1";
const FILES = ["/static/css/app.css", "/static/js/app.js", "/static/js/scan.js"];

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

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname === "/scan") {
    // Network first, so the page (and its CSRF token) is fresh whenever the server answers.
    event.respondWith(
      fetch(request)
        .then((response) => {
          if (response.ok && !response.redirected) {
            const copy = response.clone();
            caches.open(CACHE).then((cache) => cache.put("/scan", copy));
          }
          return response;
        })
        .catch(() => caches.match("/scan")),
    );
    return;
  }
  if (FILES.includes(url.pathname)) {
    event.respondWith(
      fetch(request)
        .then((response) => {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(url.pathname, copy));
          return response;
        })
        .catch(() => caches.match(url.pathname)),
    );
  }
});
