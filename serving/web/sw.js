// The service worker: after one visit every file of the page is in the cache, so the page opens
// and reads photos with no network (on the bus). precache.js, written by serve.py, lists the
// files and a version that changes with their bytes; a new version replaces the old cache.
importScripts("precache.js");

const CACHE = `digits-${self.PRECACHE.version}`;

self.addEventListener("install", (event) => {
  // From the server, not the browser's HTTP cache, which may still hold the previous build's files.
  const requests = self.PRECACHE.files.map((file) => new Request(file, {cache: "reload"}));
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(requests))
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((name) => name.startsWith("digits-") && name !== CACHE)
      .map((name) => caches.delete(name))))
    .then(() => self.clients.claim()));
});

// Cache first: the page's files change only with a new version, which comes with a new cache.
self.addEventListener("fetch", (event) => {
  if (event.request.method !== "GET") return;
  event.respondWith(caches.open(CACHE)
    .then((cache) => cache.match(event.request, {ignoreSearch: true}))
    .then((hit) => hit || fetch(event.request)));
});
