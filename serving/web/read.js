// The read view (index.html#read): a photo, from a file, the phone's camera or the live camera, read by a
// number reader (or one digit by a classifier), prepared and read as predict.py does (serving/answers.py).

import {crop, placement, prepareNumber, roundHalfEven, scanToMnist, toStreet} from "./pixels.js";
import {PhotoError, readPhoto} from "./photo.js";
import {loadModel, run} from "./runtime.js";

const SEEN_SCALE = 4;  // the picture the model saw is drawn this many times larger, so the marks stay sharp
const PHOTO_SIDE = 800;  // pixels: the photo is shown at most this wide or tall

/** serving/answers.py zoomed_region: the photo's columns [left, right] around the digits read, or null. */
export function zoomedRegion(reading, region, height, entry, zoom) {
  const columns = [...reading.columns].filter((column) => column >= 0);
  if (columns.length === 0) return null;
  const width = region[1] - region[0];
  const [scaledWidth, , , left] = placement(height, width, entry.input.height, entry.input.width);
  const toPhoto = width / scaledWidth;
  const start = (Math.min(...columns) * entry.column_width - left) * toPhoto;
  const stop = ((Math.max(...columns) + 1) * entry.column_width - left) * toPhoto;
  if (stop - start >= zoom.span * width) return null;
  const digit = columns.length > 1 ? (stop - start) / columns.length : zoom.lone_digit_width * height;
  const closer = [region[0] + Math.max(0, roundHalfEven(start - zoom.margin * digit)),
                  region[0] + Math.min(width, roundHalfEven(stop + zoom.margin * digit))];
  return closer[1] - closer[0] >= zoom.min_width ? closer : null;
}

/**
 * x as Python's f"{x:.{digits}f}" writes it: correctly rounded from the exact value of the double, and an
 * exact tie to the even digit (JavaScript's toFixed takes the larger one), so the page prints what predict.py
 * prints. toFixed(100) is the double's exact decimal expansion for the probabilities shown here.
 */
export function pythonFixed(x, digits) {
  const exact = Math.abs(x).toFixed(100);
  const point = exact.indexOf(".");
  const rest = exact.slice(point + 1 + digits);
  const kept = exact.slice(0, point + 1 + digits);
  if (/^50*$/.test(rest) && Number(kept.at(-1)) % 2 === 0) return (x < 0 ? "-" : "") + kept.replace(/\.$/, "");
  return x.toFixed(digits);
}

/** Python's round(x, 4), as predict.py's JSON gives a probability. */
const round4 = (x) => Number(pythonFixed(x, 4));

export class ReadView {
  constructor(manifest) {
    this.manifest = manifest;
    this.entries = manifest.models;
    this.models = new Map();  // name -> compiled model, loaded on first use
    this.ticket = 0;  // the latest reading asked for: an older one that ends later is not shown
    this.picker = document.getElementById("read-model");
    for (const entry of this.entries) {
      const option = new Option(`${entry.name} (${entry.kind === "reader" ? "whole numbers" : "one digit"})`,
                                entry.name);
      this.picker.add(option);
    }
    this.picker.value = (this.entries.find((entry) => entry.kind === "reader") ?? this.entries[0]).name;
    this.number = document.getElementById("number");
    this.probability = document.getElementById("probability");
    this.message = document.getElementById("read-message");
    for (const input of ["photo", "photo-choose"]) {  // the camera, or the phone's pictures
      document.getElementById(input).addEventListener("change", (event) => {
        const [file] = event.target.files;
        if (file) this.show(this.readFile(file, file.name));
        event.target.value = "";  // choosing the same file again reads it again
      });
    }
    this.camera = new Camera(this);
  }

  get entry() {
    return this.entries.find((entry) => entry.name === this.picker.value);
  }

  async model(entry) {
    if (!this.models.has(entry.name)) {
      const loading = loadModel(entry.model);
      loading.catch(() => this.models.delete(entry.name));  // tried again next time
      this.models.set(entry.name, loading);
    }
    return this.models.get(entry.name);
  }

  /** Show a reading's promise: its answer, or the message of what went wrong (unless a newer one was asked). */
  async show(promise) {
    const ticket = ++this.ticket;
    this.number.textContent = "";
    this.probability.textContent = "";
    this.message.textContent = "Reading…";
    document.getElementById("read-figures").hidden = true;
    try {
      const answer = await promise;
      if (ticket !== this.ticket) return answer;
      this.number.textContent = answer.text;
      this.probability.textContent = answer.text ? pythonFixed(answer.probability, 2) : "";
      this.message.textContent = answer.text ? "" : answer.empty;
      return answer;
    } catch (error) {
      const message = error instanceof PhotoError ? error.message : `could not read it: ${error.message}`;
      if (ticket === this.ticket) this.message.textContent = message;
      return {error: message};
    }
  }

  /** A File or Blob read with the chosen model: {text, probability, ...} (text empty when nothing was read). */
  async readFile(blob, name = "the photo") {
    let photo;
    try {
      photo = await readPhoto(blob, this.manifest.photo);
    } catch (error) {
      if (error instanceof PhotoError) throw new PhotoError(`${name}: ${error.message}`);
      throw error;
    }
    return this.readImage(photo.image, photo.bitmap);
  }

  /** RGBA pixels {data, width, height, channels: 4} read with the chosen model, and drawn. */
  async readImage(image, bitmap) {
    const entry = this.entry;
    const model = await this.model(entry);
    const ticket = this.ticket;
    const answer = entry.kind === "reader" ? await this.readNumber(entry, model, image)
      : await this.readDigit(entry, model, image);
    if (ticket === this.ticket) {  // still the latest reading: draw it
      this.drawPhoto(bitmap ?? image, answer.region ?? [0, image.width]);
      this.drawSeen(entry, answer);
      document.getElementById("read-figures").hidden = false;
    }
    return answer;
  }

  /** serving/answers.py read_number: read, and read again zoomed in while the digits span little of the photo. */
  async readNumber(entry, model, image) {
    const shape = [entry.input.height, entry.input.width, entry.input.channels];
    const zoom = this.manifest.photo.zoom;
    let region = [0, image.width];
    let pixels, reading;
    for (let zooms = 0; zooms <= zoom.rounds; zooms++) {
      pixels = prepareNumber(crop(image, region[0], 0, region[1], image.height), shape);
      reading = await run(model, pixels.data, shape);
      const closer = zooms < zoom.rounds ? zoomedRegion(reading, region, image.height, entry, zoom) : null;
      if (closer === null) break;
      region = closer;
    }
    const count = reading.digits.findIndex((digit) => digit < 0);
    const digits = [...reading.digits.slice(0, count < 0 ? undefined : count)];
    return {text: digits.join(""), probability: round4(reading.probability[0]), pixels, region,
            digits: digits.map((digit, i) => [digit, round4(reading.digit_probabilities[i])]),
            columns: [...reading.columns.slice(0, digits.length)], empty: "no number found in this photo"};
  }

  /** serving/answers.py classify, with the page's rule for a handwritten digit (pixels.js scanToMnist). */
  async readDigit(entry, model, image) {
    const {height, width, channels} = entry.input;
    const photo = this.manifest.photo;
    const pixels = channels === 3 ? toStreet(image, [height, width], photo.max_pixels)
      : scanToMnist(image, [height, width], photo.ink_floor, photo.digit_share);
    if (channels === 1 && pixels.data.every((value) => value === 0)) {  // the scan rule found no ink
      return {text: "", probability: 0, pixels, empty: "no digit found: the picture is blank or has almost no contrast"};
    }
    const {probabilities} = await run(model, pixels.data, [height, width, channels]);
    const order = [...probabilities.keys()].sort((a, b) => probabilities[b] - probabilities[a] || a - b);
    return {text: entry.classes[order[0]], probability: round4(probabilities[order[0]]), pixels,
            top: order.slice(0, photo.top).map((digit) => [digit, round4(probabilities[digit])]), empty: ""};
  }

  drawPhoto(source, region) {
    const canvas = document.getElementById("photo-view");
    const scale = Math.min(1, PHOTO_SIDE / Math.max(source.width, source.height));
    canvas.width = Math.max(1, Math.round(source.width * scale));
    canvas.height = Math.max(1, Math.round(source.height * scale));
    const context = canvas.getContext("2d");
    if (source instanceof ImageBitmap) {
      context.drawImage(source, 0, 0, canvas.width, canvas.height);
    } else {
      context.drawImage(toCanvas(source), 0, 0, canvas.width, canvas.height);
    }
    if (region[0] > 0 || region[1] < source.width) {  // the zoomed region the number was read in
      context.strokeStyle = "#ffd600";
      context.lineWidth = 3;
      context.strokeRect(region[0] * scale, 1.5, (region[1] - region[0]) * scale, canvas.height - 3);
    }
  }

  /** The model's input, enlarged, with each digit read marked under the column where it was read. */
  drawSeen(entry, answer) {
    const canvas = document.getElementById("seen");
    const {pixels} = answer;
    canvas.width = pixels.width * SEEN_SCALE;
    canvas.height = pixels.height * SEEN_SCALE + (answer.columns ? 18 : 0);
    const context = canvas.getContext("2d");
    context.imageSmoothingEnabled = false;
    context.fillStyle = "black";
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.drawImage(toCanvas(pixels), 0, 0, pixels.width * SEEN_SCALE, pixels.height * SEEN_SCALE);
    if (!answer.columns) return;
    context.font = "bold 14px system-ui, sans-serif";
    context.textAlign = "center";
    answer.columns.forEach((column, i) => {
      const x = (column + 0.5) * entry.column_width * SEEN_SCALE;
      context.strokeStyle = context.fillStyle = "#ffd600";
      context.beginPath();
      context.moveTo(x, 0);
      context.lineTo(x, pixels.height * SEEN_SCALE);
      context.stroke();
      context.fillText(String(answer.digits[i][0]), x, canvas.height - 3);
    });
  }
}

/** A {data, width, height, channels} image on a canvas of its own size, to draw it enlarged. */
export function toCanvas(image) {
  const canvas = new OffscreenCanvas(image.width, image.height);
  const rgba = new ImageData(image.width, image.height);
  for (let i = 0; i < image.width * image.height; i++) {
    for (let c = 0; c < 3; c++) rgba.data[4 * i + c] = image.data[image.channels * i + (image.channels === 1 ? 0 : c)];
    rgba.data[4 * i + 3] = image.channels === 4 ? image.data[4 * i + 3] : 255;
  }
  canvas.getContext("2d").putImageData(rgba, 0, 0);
  return canvas;
}

/** The live camera (on localhost or HTTPS): a guide box shaped like the model's input; what is in it is read. */
class Camera {
  constructor(view) {
    this.view = view;
    this.panel = document.getElementById("camera");
    this.video = document.getElementById("video");
    this.guide = document.getElementById("guide");
    this.stream = null;
    document.getElementById("camera-start").addEventListener("click", () => this.start());
    document.getElementById("camera-stop").addEventListener("click", () => this.stop());
    document.getElementById("camera-read").addEventListener("click", () => this.view.show(this.read()));
    this.video.addEventListener("loadedmetadata", () => this.placeGuide());
    window.addEventListener("resize", () => this.placeGuide());
  }

  async start() {
    if (this.stream) return;  // already on
    if (!navigator.mediaDevices?.getUserMedia) {
      this.view.message.textContent = "the live camera needs HTTPS (or localhost); use Take or choose a photo";
      return;
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}, audio: false});
    } catch (error) {
      this.view.message.textContent = `no camera: ${error.message || error.name}; use Take or choose a photo`;
      return;
    }
    this.video.srcObject = this.stream;
    this.panel.hidden = false;
    try {
      await this.video.play();
    } catch (error) {
      this.stop();
      this.view.message.textContent = `the camera did not start: ${error.message}`;
    }
  }

  stop() {
    this.stream?.getTracks().forEach((track) => track.stop());
    this.stream = null;
    this.video.srcObject = null;
    this.panel.hidden = true;
  }

  /** The guide box in video pixels: the model's input proportions, 80 % of the frame's width at most. */
  box() {
    const {width, height} = this.view.entry.input;
    const videoWidth = this.video.videoWidth, videoHeight = this.video.videoHeight;
    const boxWidth = Math.min(0.8 * videoWidth, 0.8 * videoHeight * width / height);
    const boxHeight = boxWidth * height / width;
    return {left: (videoWidth - boxWidth) / 2, top: (videoHeight - boxHeight) / 2, width: boxWidth, height: boxHeight};
  }

  placeGuide() {
    if (!this.video.videoWidth) return;
    const box = this.box();
    const scale = this.video.clientWidth / this.video.videoWidth;
    Object.assign(this.guide.style, {left: `${box.left * scale}px`, top: `${box.top * scale}px`,
                                     width: `${box.width * scale}px`, height: `${box.height * scale}px`});
  }

  async read() {
    if (!this.video.videoWidth) throw new PhotoError("the camera has no picture yet");
    const box = this.box();
    const canvas = new OffscreenCanvas(Math.round(box.width), Math.round(box.height));
    const context = canvas.getContext("2d", {willReadFrequently: true});
    context.drawImage(this.video, box.left, box.top, box.width, box.height, 0, 0, canvas.width, canvas.height);
    const {data} = context.getImageData(0, 0, canvas.width, canvas.height);
    return this.view.readImage({data, width: canvas.width, height: canvas.height, channels: 4});
  }
}
