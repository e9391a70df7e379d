// The draw view (index.html#draw): a digit drawn with mouse, finger or pen, read by a classifier as you draw,
// with every layer's feature maps (visualize.py's story, live). A unit clicked shows what it detects across
// the training images: its top patches, each its true receptive field, surveyed by serve.py.

import {canvasToMnist} from "./pixels.js";
import {loadModel, run} from "./runtime.js";
import {toCanvas} from "./read.js";

const CANVAS_SCALE = 10;  // the drawing is this many times the model's input side
const PEN_SHARE = 1 / 12;  // the pen's width as a share of the canvas side: MNIST's strokes, once framed
const MARKED_UNITS = 3;  // the most active units of each layer are outlined
const MAP_SIDE = 44;  // CSS pixels: each unit's map is shown this large
const PATCH_SIDE = 54;  // pixels: a unit's top patches are enlarged (whole times) to about this side
const PATCH_GAP = 4;  // pixels between two patches

export class DrawView {
  constructor(manifest) {
    this.manifest = manifest;
    this.entry = manifest.models.find((entry) => entry.kind === "classifier" && entry.input.channels === 1) ?? null;
    this.canvas = document.getElementById("canvas");
    this.message = document.getElementById("draw-message");
    this.digit = document.getElementById("digit");
    this.latencies = [];  // milliseconds from a stroke's event to the page updated, for bench/web_page.py
    if (this.entry === null) {
      this.message.textContent = "serve a handwriting classifier (a 28x28 greyscale run) to draw a digit";
      return;
    }
    const side = this.entry.input.height * CANVAS_SCALE;
    this.canvas.width = this.canvas.height = side;
    this.context = this.canvas.getContext("2d", {willReadFrequently: true});
    this.model = loadModel(this.entry.layers_model);
    this.model.catch((error) => { this.message.textContent = `the model did not load: ${error.message}`; });
    this.surveys = new Map();  // layer name -> its survey picture, loaded on first click
    this.pending = null;  // the first stroke event not yet shown (its time stamp)
    this.busy = false;
    this.running = Promise.resolve();  // the update loop, while busy
    this.buildLayers();
    this.clear();
    this.listen();
  }

  clear() {
    this.context.fillStyle = "black";
    this.context.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.changed(performance.now());
  }

  listen() {
    let last = null;
    const point = (event) => {
      const bounds = this.canvas.getBoundingClientRect();
      return [(event.clientX - bounds.left) * this.canvas.width / bounds.width,
              (event.clientY - bounds.top) * this.canvas.height / bounds.height];
    };
    const stroke = (from, to) => {
      Object.assign(this.context, {strokeStyle: "white", lineWidth: this.canvas.width * PEN_SHARE,
                                   lineCap: "round", lineJoin: "round"});
      this.context.beginPath();
      this.context.moveTo(...from);
      this.context.lineTo(...to);
      this.context.stroke();
    };
    this.canvas.addEventListener("pointerdown", (event) => {
      // One pen at a time: a second finger, or the right or middle mouse button, does not draw.
      if (!event.isPrimary || event.button !== 0) return;
      this.canvas.setPointerCapture(event.pointerId);
      last = point(event);
      stroke(last, last);
      this.changed(event.timeStamp);
    });
    this.canvas.addEventListener("pointermove", (event) => {
      if (last === null || !event.isPrimary) return;
      for (const sample of event.getCoalescedEvents?.() ?? [event]) {
        const next = point(sample);
        stroke(last, next);
        last = next;
      }
      this.changed(event.timeStamp);
    });
    for (const end of ["pointerup", "pointercancel"]) {
      this.canvas.addEventListener(end, (event) => { if (event.isPrimary) last = null; });
    }
    document.getElementById("clear").addEventListener("click", () => this.clear());
  }

  /** The drawing changed at `time` (ms, performance.now's clock): update once the current update is done. */
  changed(time) {
    this.pending ??= time;
    if (!this.busy) this.running = this.update();
  }

  async update() {
    this.busy = true;
    while (this.pending !== null) {
      const since = this.pending;
      this.pending = null;
      try {
        await this.show();
        this.latencies.push(performance.now() - since);
      } catch (error) {
        this.message.textContent = `could not read the drawing: ${error.message}`;
      }
    }
    this.busy = false;
  }

  /** Read the canvas and show the answer and the maps: {digit, probabilities, pixels} (digit "" when blank). */
  async show() {
    const {height, width} = this.entry.input;
    const {data} = this.context.getImageData(0, 0, this.canvas.width, this.canvas.height);
    const pixels = canvasToMnist(data, this.canvas.width, this.canvas.height, [height, width],
                                 this.manifest.photo.digit_share);
    this.drawInput(pixels);
    if (pixels.data.every((value) => value === 0)) {
      this.digit.textContent = "";
      this.message.textContent = "Draw a digit in the black box.";
      this.showProbabilities(null);
      this.showMaps(null);
      this.last = {digit: "", probabilities: null, pixels};
      return this.last;
    }
    const outputs = await run(await this.model, pixels.data, [height, width, 1]);
    this.message.textContent = "";
    this.digit.textContent = this.entry.classes[outputs.digit[0]];
    this.showProbabilities(outputs.probabilities);
    this.showMaps(outputs);
    this.last = {digit: this.digit.textContent, probabilities: [...outputs.probabilities], pixels};
    return this.last;
  }

  /** Paint a digit's pixels (the model's input size, white on black) into the canvas, each pixel a square. */
  async paint(values) {
    const {height, width} = this.entry.input;
    const image = new ImageData(width * CANVAS_SCALE, height * CANVAS_SCALE);
    for (let y = 0; y < image.height; y++) {
      for (let x = 0; x < image.width; x++) {
        const value = values[Math.floor(y / CANVAS_SCALE) * width + Math.floor(x / CANVAS_SCALE)];
        image.data.set([value, value, value, 255], 4 * (y * image.width + x));
      }
    }
    this.context.putImageData(image, 0, 0);
    this.changed(performance.now());
    await this.running;
    return this.last;
  }

  drawInput(pixels) {
    const canvas = document.getElementById("input-view");
    canvas.width = pixels.width;
    canvas.height = pixels.height;
    canvas.getContext("2d").drawImage(toCanvas(pixels), 0, 0);
  }

  showProbabilities(probabilities) {
    const box = document.getElementById("probabilities");
    box.replaceChildren();
    if (probabilities === null) return;
    const best = probabilities.indexOf(Math.max(...probabilities));
    probabilities.forEach((probability, digit) => {
      const label = Object.assign(document.createElement("span"), {textContent: this.entry.classes[digit]});
      const bar = Object.assign(document.createElement("span"), {className: "bar"});
      bar.append(Object.assign(document.createElement("span"), {style: `width: ${(100 * probability).toFixed(1)}%`}));
      const value = Object.assign(document.createElement("span"), {textContent: probability.toFixed(2)});
      for (const cell of [label, value]) if (digit === best) cell.className = "best";
      box.append(label, bar, value);
    });
  }

  /** One row of small maps per layer, from the manifest; a click on a unit shows its survey. */
  buildLayers() {
    const box = document.getElementById("layers");
    this.maps = this.entry.layers.map((layer) => {
      const section = Object.assign(document.createElement("div"), {className: "layer"});
      const title = document.createElement("h3");
      title.textContent = `${layer.name}: ${layer.units} units, each sees ${layer.field.height}x${layer.field.width} ` +
                          `pixels (${layer.detects})`;
      const note = document.createElement("p");
      note.textContent = `Each square is one unit's map (${layer.height}x${layer.width}), bright where it responds ` +
                         `to your drawing; the ${MARKED_UNITS} most active are outlined. Click one to see what it ` +
                         `detects in the training images.`;
      const maps = Object.assign(document.createElement("div"), {className: "maps"});
      maps.style.setProperty("--side", `${MAP_SIDE}px`);
      const canvases = [];
      for (let unit = 0; unit < layer.units; unit++) {
        const canvas = Object.assign(document.createElement("canvas"), {width: layer.width, height: layer.height,
                                                                          title: `${layer.name} unit ${unit}`});
        canvas.dataset.layer = layer.name;
        canvas.dataset.unit = unit;
        canvas.addEventListener("click", () => this.showUnit(layer, unit));
        canvases.push(canvas);
        maps.append(canvas);
      }
      section.append(title, note, maps);
      box.append(section);
      return canvases;
    });
  }

  /** Each unit's map, scaled by the layer's strongest response, the most active units outlined. */
  showMaps(outputs) {
    this.entry.layers.forEach((layer, index) => {
      const canvases = this.maps[index];
      const values = outputs?.[layer.output];
      const cells = layer.height * layer.width;
      const peaks = new Float32Array(layer.units);
      let strongest = 1e-6;
      if (values) for (const value of values) strongest = Math.max(strongest, value);
      canvases.forEach((canvas, unit) => {
        const image = new ImageData(layer.width, layer.height);
        for (let cell = 0; cell < cells; cell++) {
          const value = values ? values[cell * layer.units + unit] : 0;  // NHWC: the unit is the last axis
          peaks[unit] = Math.max(peaks[unit], value);
          const grey = Math.round(255 * Math.max(0, value) / strongest);
          image.data.set([grey, grey, grey, 255], 4 * cell);
        }
        canvas.getContext("2d").putImageData(image, 0, 0);
      });
      const marked = new Set([...peaks.keys()].sort((a, b) => peaks[b] - peaks[a]).slice(0, values ? MARKED_UNITS : 0));
      canvases.forEach((canvas, unit) => canvas.classList.toggle("active", marked.has(unit)));
    });
  }

  /** What a unit detects: its top patches over the training images, from the layer's survey picture. */
  async showUnit(layer, unit) {
    document.querySelectorAll(".maps canvas.chosen").forEach((canvas) => canvas.classList.remove("chosen"));
    this.maps[this.entry.layers.indexOf(layer)][unit].classList.add("chosen");
    const survey = layer.survey;
    if (!this.surveys.has(layer.name)) {
      const picture = new Image();
      picture.src = survey.picture;
      this.surveys.set(layer.name, picture.decode().then(() => picture));
    }
    let picture;
    try {
      picture = await this.surveys.get(layer.name);
    } catch {
      this.surveys.delete(layer.name);  // tried again on the next click
      this.message.textContent = `the survey of ${layer.name} did not load`;
      return;
    }
    const canvas = document.getElementById("unit-patches");
    const {width, height} = layer.field;
    const scale = Math.max(1, Math.round(PATCH_SIDE / Math.max(width, height)));
    canvas.width = survey.top * (width * scale + PATCH_GAP) - PATCH_GAP;
    canvas.height = height * scale;
    const context = canvas.getContext("2d");
    context.imageSmoothingEnabled = false;
    for (let patch = 0; patch < survey.top; patch++) {
      context.drawImage(picture, patch * width, unit * height, width, height,
                        patch * (width * scale + PATCH_GAP), 0, width * scale, height * scale);
    }
    const values = survey.values[unit].filter((value) => value >= 0).map((value) => value.toFixed(2));
    document.getElementById("unit-title").textContent = `${layer.name}, unit ${unit}`;
    document.getElementById("unit-text").textContent =
      `The ${values.length} patches of the ${survey.images.toLocaleString("en")} training images it surveyed where ` +
      `this unit responds most (${values.join(", ")}); each is exactly the ${layer.field.height}x` +
      `${layer.field.width}-pixel area it sees.`;
    document.getElementById("unit").hidden = false;
  }
}
