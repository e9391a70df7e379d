// The page: loads manifest.json (what serve.py put in the folder) and LiteRT.js, shows the view the address
// names (#read or #draw), and registers the service worker that keeps it working offline.
//
// window.digitsPage is the page's face for tests and benchmarks (tests/web/test_page.py):
//   await digitsPage.ready;                       // models listed, runtime loaded
//   await digitsPage.read.readFile(blob)          // {text: "23", probability, digits, ...}
//   await digitsPage.draw.paint(pixels)           // {digit, probabilities, pixels}

import {startRuntime} from "./runtime.js";
import {ReadView} from "./read.js";
import {DrawView} from "./draw.js";

const VIEWS = ["read", "draw"];
const status = document.getElementById("status");

function route() {
  const name = VIEWS.includes(location.hash.slice(1)) ? location.hash.slice(1) : VIEWS[0];
  for (const view of VIEWS) {
    document.getElementById(`${view}-view`).hidden = view !== name;
    document.getElementById(`nav-${view}`).classList.toggle("current", view === name);
  }
  if (name !== "read") window.digitsPage?.read?.camera.stop();  // the camera is off unless it is shown
}

async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;  // plain HTTP to another host: the page works, not offline
  // A new build's worker takes over open pages (sw.js): reload, so that the page and its files are one build.
  // (On the first visit there is no worker before it, and nothing to reload.)
  if (navigator.serviceWorker.controller) {
    navigator.serviceWorker.addEventListener("controllerchange", () => location.reload());
  }
  try {
    await navigator.serviceWorker.register("sw.js", {updateViaCache: "none"});
  } catch (error) {
    status.textContent = `This page will not work offline (${error.message}).`;
  }
}

async function start() {
  route();
  window.addEventListener("hashchange", route);
  registerServiceWorker();
  const response = await fetch("manifest.json");
  if (!response.ok) throw new Error(`manifest.json is missing (HTTP ${response.status}); build the folder with serve.py`);
  const manifest = await response.json();
  await startRuntime(manifest.runtime);
  const read = new ReadView(manifest);
  const draw = new DrawView(manifest);
  status.textContent = `Models: ${manifest.models.map((model) => model.name).join(", ")}. ` +
                       "Everything runs on this device.";
  return {manifest, read, draw};
}

const ready = start().catch((error) => {
  status.textContent = `The page could not start: ${error.message}`;
  throw error;
});
window.digitsPage = {ready};
ready.then((parts) => Object.assign(window.digitsPage, parts), () => {});
