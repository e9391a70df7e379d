// Pixels for the models in the browser, bit for bit as the project's Python prepares them.
//
//     import { prepareNumber, toStreet, scanToMnist } from "./pixels.js";
//     const rgba = context.getImageData(0, 0, w, h);               // a canvas with the photo drawn on it
//     const image = { data: rgba.data, width: w, height: h, channels: 4 };
//     const pixels = prepareNumber(image, [32, 96, 3]);            // {data: Uint8Array, width 96, height 32, channels 3}
//
// Images are plain objects {data, width, height, channels}: data a Uint8Array or Uint8ClampedArray of
// height * width * channels bytes, row-major, channels interleaved; channels 1 (grey), 3 (RGB) or 4 (RGBA, as
// canvas getImageData gives). Every function is pure: typed arrays in, new typed arrays out, no DOM.
//
// Each function names the Python it mirrors; tests/web/test_pixels.py compares them in Chromium:
//   toRgb, toGrey        data/photos.py _flattened: transparency shown over white paper (Pillow's
//                        alpha_composite), then Pillow's convert ("L": ITU-R 601-2 luma in 16-bit fixed point)
//   resize               Pillow 13's Image.resize(size, Image.Resampling.LANCZOS) for modes L and RGB: a port of
//                        libImaging/Resample.c (coefficients in 22-bit fixed point, two passes in Pillow's order)
//   crop                 Pillow's Image.crop: coordinates rounded half to even, outside the image zero
//   placement,           data/framing.py placement and fit_to_input
//   fitToInput
//   prepareNumber        data/photos.py prepare_number (it converts as Pillow's convert does: alpha is dropped,
//                        not composited, as there)
//   frameLikeMnist       data/photos.py frame_like_mnist
//   toStreet             data/photos.py to_street
//   scanToMnist          the page's rule for a photo read by a one-channel digit classifier (below)
//   canvasToMnist        a drawing in white on black, framed by frameLikeMnist
//
// The page's one-channel rule (scanToMnist) is declared, not predict.py's. predict.py's to_handwriting finds a
// card on a table, the paper's local level (large median filters) and the strokes (closings, connected pieces);
// the page instead applies data/conventions.py dark_ink_to_mnist to the whole picture, with prepare_number's
// polarity: the paper is the median grey level; if it is light (above 127) the picture is inverted; the ink is
// each pixel's excess over the paper, stretched so the strongest is 1; ink below inkFloor of the strongest is set
// to 0 (as digit_strokes does with data.photos.INK_FLOOR); then frameLikeMnist. It suits a digit written on a
// clean, evenly lit card filling the picture, not a photo of a card lying on a table.
//
// The numbers that belong to the Python side (data.photos DIGIT_SHARE, INK_FLOOR, MAX_PIXELS) are parameters,
// read by the page from its manifest; this module holds only the constants of the algorithms it ports.
//
// What is exact and what is not:
// - Opaque pixels: every function gives the bytes the Python gives (tests/web/test_pixels.py).
// - Translucent pixels: canvas getImageData returns colours un-premultiplied from the browser's premultiplied
//   store, so a pixel with alpha a < 255 can differ by up to about 255 / a levels from the file's colour, and a
//   fully transparent one reads as black; toRgb and toGrey composite what they are given exactly as Pillow
//   does, so they are exact on the same RGBA bytes, not on the same PNG file.
// - The Lanczos weights use Math.sin, which may differ from the C library's sin in the last bit; a weight is
//   rounded to 22 bits, so a difference would need a weight within 1e-16 of a rounding boundary (never seen
//   in the tests).
// - Where Python raises (frame_like_mnist when the framed digit shrinks to all zeros: the centre of mass is
//   NaN), frameLikeMnist returns a black field, as for no ink at all.

const LANCZOS_SUPPORT = 3; // Pillow's LANCZOS filter: a sinc windowed by a sinc three lobes wide
const PRECISION_BITS = 22; // Pillow's 8-bit resampling: 32 bits minus 8 for the pixel and 2 for overshoot
const ALPHA_BITS = 7; // Pillow's alpha_composite: the blend coefficients' extra bits

/** Python's round() of a double: to the nearest integer, halves to the even one. */
export function roundHalfEven(x) {
  const floor = Math.floor(x);
  const fraction = x - floor; // exact for doubles
  if (fraction < 0.5) return floor;
  if (fraction > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

function checkImage(image, allowed = [1, 3, 4]) {
  const { data, width, height, channels } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`an image needs a positive integer width and height, not ${width}x${height}`);
  }
  if (!allowed.includes(channels)) {
    throw new RangeError(`images with ${channels} channels are not supported here (${allowed.join(", ")})`);
  }
  if (!data || data.length !== width * height * channels) {
    throw new RangeError(`the data holds ${data && data.length} bytes, not ${width}x${height}x${channels}`);
  }
}

function newImage(width, height, channels) {
  return { data: new Uint8Array(width * height * channels), width, height, channels };
}

function copyImage(image) {
  return { data: Uint8Array.from(image.data), width: image.width, height: image.height, channels: image.channels };
}

/** Pillow's L24: luma from RGB in 16-bit fixed point (Convert.c). */
function luma(r, g, b) {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

/** Pillow's SHIFTFORDIV255: a / 255 for a 16-bit a, by shifts. */
function shiftForDiv255(a) {
  return ((a >>> 8) + a) >>> 8;
}

/** RGBA bytes -> RGB bytes, each pixel composited over opaque white as Pillow's alpha_composite (scalar path). */
function overWhite(rgba, count) {
  const rgb = new Uint8Array(count * 3);
  const scale = 1 << ALPHA_BITS;
  for (let i = 0; i < count; i++) {
    const alpha = rgba[4 * i + 3];
    for (let c = 0; c < 3; c++) {
      let value = 255; // a fully transparent pixel shows the paper
      if (alpha !== 0) {
        const blend = 255 * (255 - alpha); // the paper's alpha is 255
        const outAlpha255 = alpha * 255 + blend;
        const coef1 = Math.floor((alpha * 255 * 255 * scale) / outAlpha255);
        const coef2 = 255 * scale - coef1;
        const mixed = rgba[4 * i + c] * coef1 + 255 * coef2;
        value = shiftForDiv255(mixed + (0x80 << ALPHA_BITS)) >>> ALPHA_BITS;
      }
      rgb[3 * i + c] = value;
    }
  }
  return rgb;
}

/** Pillow's convert to "RGB" (flatten false: alpha dropped) or _flattened's (flatten true: over white). */
function rgbOf(image, flatten) {
  checkImage(image);
  const { data, width, height, channels } = image;
  const count = width * height;
  if (channels === 3) return copyImage(image);
  if (channels === 4 && flatten) return { data: overWhite(data, count), width, height, channels: 3 };
  const rgb = new Uint8Array(count * 3);
  for (let i = 0; i < count; i++) {
    for (let c = 0; c < 3; c++) rgb[3 * i + c] = data[i * channels + (channels === 1 ? 0 : c)];
  }
  return { data: rgb, width, height, channels: 3 };
}

/** Pillow's convert to "L" (flatten false: alpha ignored) or _flattened's (flatten true: over white first). */
function greyOf(image, flatten) {
  checkImage(image);
  if (image.channels === 1) return copyImage(image);
  const rgb = image.channels === 4 && flatten ? rgbOf(image, true) : image;
  const { data, width, height, channels } = rgb;
  const grey = new Uint8Array(width * height);
  for (let i = 0; i < grey.length; i++) {
    grey[i] = luma(data[i * channels], data[i * channels + 1], data[i * channels + 2]);
  }
  return { data: grey, width, height, channels: 1 };
}

/** Any image -> RGB (3 channels), transparent parts over white paper (data/photos.py _flattened(image, "RGB")). */
export function toRgb(image) {
  return rgbOf(image, true);
}

/** Any image -> grey (1 channel), transparent parts over white paper (data/photos.py _flattened(image, "L")). */
export function toGrey(image) {
  return greyOf(image, true);
}

/** Pillow's Image.crop((left, top, right, bottom)): rounded half to even; what lies outside the image is zero. */
export function crop(image, left, top, right, bottom) {
  checkImage(image);
  if (right < left) throw new RangeError("Coordinate 'right' is less than 'left'");
  if (bottom < top) throw new RangeError("Coordinate 'lower' is less than 'upper'");
  [left, top, right, bottom] = [left, top, right, bottom].map(roundHalfEven);
  const { data, width, height, channels } = image;
  const out = newImage(right - left, bottom - top, channels);
  if (out.width === 0 || out.height === 0) return out; // Pillow allows an empty crop
  for (let y = Math.max(top, 0); y < Math.min(bottom, height); y++) {
    const from = (y * width + Math.max(left, 0)) * channels;
    const to = (y * width + Math.min(right, width)) * channels;
    if (to > from) out.data.set(data.subarray(from, to), ((y - top) * out.width + Math.max(left, 0) - left) * channels);
  }
  return out;
}

function sinc(x) {
  if (x === 0) return 1;
  x = x * Math.PI;
  return Math.sin(x) / x;
}

function lanczos(x) {
  return -LANCZOS_SUPPORT <= x && x < LANCZOS_SUPPORT ? sinc(x) * sinc(x / 3) : 0;
}

/**
 * Resample.c precompute_coeffs then normalize_coeffs_8bpc, for the whole input (box 0..inSize):
 * {bounds: Int32Array (outSize * 2) of [first input index, count], weights: Int32Array (outSize * taps), taps}.
 */
function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1); // shrinking widens the filter, enlarging does not narrow it
  const support = LANCZOS_SUPPORT * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * taps);
  const k = new Float64Array(taps);
  const one = 2 ** PRECISION_BITS;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const inverse = 1.0 / filterScale;
    let total = 0.0;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0); // C's (int) cast truncates
    const count = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    for (let x = 0; x < count; x++) {
      const w = lanczos((x + xmin - center + 0.5) * inverse);
      k[x] = w;
      total += w;
    }
    for (let x = 0; x < count; x++) {
      if (total !== 0.0) k[x] /= total;
      // Rounded half away from zero, as (int)(k * one +- 0.5).
      weights[xx * taps + x] = k[x] < 0 ? Math.trunc(-0.5 + k[x] * one) : Math.trunc(0.5 + k[x] * one);
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = count;
  }
  return { bounds, weights, taps };
}

/** Resample.c clip8: a fixed-point sum to a byte (the C code's sums fit 32 bits, so >> floors as there). */
function clip8(sum) {
  const value = sum >> PRECISION_BITS;
  return value < 0 ? 0 : value > 255 ? 255 : value;
}

/** Horizontal pass over rows [firstRow, firstRow + rows) of data (width x channels) -> outWidth per row. */
function horizontalPass(data, width, channels, firstRow, rows, outWidth, coeffs) {
  const { bounds, weights, taps } = coeffs;
  const out = new Uint8Array(outWidth * rows * channels);
  const half = 1 << (PRECISION_BITS - 1);
  for (let yy = 0; yy < rows; yy++) {
    const row = (yy + firstRow) * width;
    for (let xx = 0; xx < outWidth; xx++) {
      const xmin = bounds[2 * xx];
      const count = bounds[2 * xx + 1];
      const k = xx * taps;
      for (let c = 0; c < channels; c++) {
        let sum = half;
        for (let x = 0; x < count; x++) sum += data[(row + x + xmin) * channels + c] * weights[k + x];
        out[(yy * outWidth + xx) * channels + c] = clip8(sum);
      }
    }
  }
  return out;
}

/** Vertical pass: data (width x rows x channels) -> outHeight rows, bounds relative to data's first row. */
function verticalPass(data, width, channels, outHeight, coeffs) {
  const { bounds, weights, taps } = coeffs;
  const out = new Uint8Array(width * outHeight * channels);
  const half = 1 << (PRECISION_BITS - 1);
  const stride = width * channels;
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = bounds[2 * yy];
    const count = bounds[2 * yy + 1];
    const k = yy * taps;
    for (let i = 0; i < stride; i++) {
      let sum = half;
      for (let y = 0; y < count; y++) sum += data[(y + ymin) * stride + i] * weights[k + y];
      out[yy * stride + i] = clip8(sum);
    }
  }
  return out;
}

/**
 * Pillow's image.resize((newWidth, newHeight), Image.Resampling.LANCZOS) for a grey or RGB image (channels 1 or
 * 3; Pillow premultiplies RGBA, which this does not port) -> a new image of the same channels.
 */
export function resize(image, newWidth, newHeight) {
  checkImage(image, [1, 3]);
  if (!Number.isInteger(newWidth) || !Number.isInteger(newHeight) || newWidth < 1 || newHeight < 1) {
    throw new RangeError(`cannot resize to ${newWidth}x${newHeight}`);
  }
  const { data, width, height, channels } = image;
  if (newWidth === width && newHeight === height) return copyImage(image);
  let pixels = data;
  // Pillow 13 (pull request 9549) resamples vertically first when the height shrinks by more than twice as many
  // pixels as the width does; the two orders round differently between the passes. The rule was read off
  // Pillow 13.0.0's results on 614 size pairs (tests/web/test_pixels.py checks it on more).
  if (newHeight < height && height - newHeight > 2 * (width - newWidth)) {
    pixels = verticalPass(pixels, width, channels, newHeight, coefficients(height, newHeight));
    if (newWidth !== width) {
      pixels = horizontalPass(pixels, width, channels, 0, newHeight, newWidth, coefficients(width, newWidth));
    }
    return { data: pixels, width: newWidth, height: newHeight, channels };
  }
  const vertical = coefficients(height, newHeight);
  if (newWidth !== width) {
    // Only the rows the vertical pass reads are resampled horizontally.
    const firstRow = vertical.bounds[0];
    const lastRow = vertical.bounds[2 * newHeight - 2] + vertical.bounds[2 * newHeight - 1];
    for (let yy = 0; yy < newHeight; yy++) vertical.bounds[2 * yy] -= firstRow;
    pixels = horizontalPass(data, width, channels, firstRow, lastRow - firstRow, newWidth, coefficients(width, newWidth));
  }
  if (newHeight !== height) pixels = verticalPass(pixels, newWidth, channels, newHeight, vertical);
  return { data: pixels, width: newWidth, height: newHeight, channels };
}

/** np.pad(image, ((top, bottom), (left, right), (0, 0)), mode="edge"). */
function padEdge(image, top, bottom, left, right) {
  const { data, width, height, channels } = image;
  const out = newImage(width + left + right, height + top + bottom, channels);
  for (let y = 0; y < out.height; y++) {
    const from = Math.min(Math.max(y - top, 0), height - 1) * width;
    for (let x = 0; x < out.width; x++) {
      const source = (from + Math.min(Math.max(x - left, 0), width - 1)) * channels;
      const target = (y * out.width + x) * channels;
      for (let c = 0; c < channels; c++) out.data[target + c] = data[source + c];
    }
  }
  return out;
}

/**
 * data/framing.py placement: where fitToInput puts a (rows, columns) picture in a (height, width) input:
 * [newWidth, newHeight, top, left], in Python's order.
 */
export function placement(rows, columns, height, width) {
  const scale = Math.min(height / rows, width / columns);
  const newWidth = Math.max(1, Math.min(width, roundHalfEven(columns * scale)));
  const newHeight = Math.max(1, Math.min(height, roundHalfEven(rows * scale)));
  return [newWidth, newHeight, Math.floor((height - newHeight) / 2), Math.floor((width - newWidth) / 2)];
}

/** data/framing.py fit_to_input: a grey or RGB picture -> (height x width), aspect kept, centred, edges repeated. */
export function fitToInput(image, height, width) {
  checkImage(image, [1, 3]);
  const [newWidth, newHeight, top, left] = placement(image.height, image.width, height, width);
  const resized = resize(image, newWidth, newHeight);
  return padEdge(resized, top, height - newHeight - top, left, width - newWidth - left);
}

/** np.median of a float32 copy of byte-valued data, as numpy computes it (the two middle values' float32 mean). */
function medianOfBytes(values) {
  const counts = new Float64Array(256);
  for (let i = 0; i < values.length; i++) counts[values[i]]++;
  const at = (rank) => {
    let seen = 0;
    for (let v = 0; v < 256; v++) {
      seen += counts[v];
      if (seen > rank) return v;
    }
    return 255;
  };
  const n = values.length;
  return (at((n - 1) >> 1) + at(n >> 1)) / 2; // exact in float32: half-integers below 256
}

/**
 * The page's ink from a grey picture, in float32 as numpy: inverted if the median is light (above 127), the
 * excess over the median, divided by the strongest (at least 1) -> Float32Array in 0..1.
 */
function inkOverPaper(grey) {
  let values = grey.data;
  if (medianOfBytes(values) > 127) values = values.map((v) => 255 - v);
  const paper = medianOfBytes(values);
  const ink = new Float32Array(values.length);
  let strongest = 0;
  for (let i = 0; i < values.length; i++) {
    ink[i] = Math.max(values[i] - paper, 0);
    strongest = Math.max(strongest, ink[i]);
  }
  const divisor = Math.max(strongest, 1);
  for (let i = 0; i < ink.length; i++) ink[i] = Math.fround(ink[i] / divisor);
  return ink;
}

/**
 * data/photos.py prepare_number: a photo roughly cropped around a number -> the reader's input, inputShape
 * [H, W, C]: C 3 the RGB photo fitted; C 1 bright ink on black (median paper, inverted when light), fitted.
 * Colours are converted as Pillow's convert does there: an alpha channel is dropped, not composited.
 */
export function prepareNumber(image, inputShape) {
  const [height, width, channels] = inputShape;
  if (channels === 3) return fitToInput(rgbOf(image, false), height, width);
  if (channels !== 1) throw new RangeError(`readers with ${channels} input channels are not supported (1 or 3)`);
  const grey = greyOf(image, false);
  const ink = inkOverPaper(grey);
  const bytes = new Uint8Array(ink.length);
  for (let i = 0; i < ink.length; i++) bytes[i] = roundHalfEven(Math.fround(ink[i] * 255));
  return fitToInput({ data: bytes, width: grey.width, height: grey.height, channels: 1 }, height, width);
}

/**
 * data/photos.py frame_like_mnist: ink (Float32Array or Float64Array, height * width, row-major, in 0..1, zero
 * around the digit; float32 arithmetic for a Float32Array as numpy's) -> grey image outHeight x outWidth: the
 * ink's bounding box scaled so its longer side is round(digitShare * min(outHeight, outWidth)) pixels
 * (digitShare: data.photos.DIGIT_SHARE, 20 / 28 for MNIST), its centre of mass moved to pixel (H / 2, W / 2).
 */
export function frameLikeMnist(ink, width, height, outHeight, outWidth, digitShare) {
  if (ink.length !== width * height) throw new RangeError(`ink holds ${ink.length} values, not ${width}x${height}`);
  if (!(digitShare > 0)) throw new RangeError(`digitShare must be a positive share, not ${digitShare}`);
  const field = newImage(outWidth, outHeight, 1);
  let top = height, bottom = -1, left = width, right = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (ink[y * width + x] !== 0) {
        top = Math.min(top, y);
        bottom = Math.max(bottom, y);
        left = Math.min(left, x);
        right = Math.max(right, x);
      }
    }
  }
  if (bottom < 0) return field;
  const glyphWidth = right - left + 1;
  const glyphHeight = bottom - top + 1;
  const float32 = ink instanceof Float32Array;
  const glyph = newImage(glyphWidth, glyphHeight, 1);
  for (let y = 0; y < glyphHeight; y++) {
    for (let x = 0; x < glyphWidth; x++) {
      const scaled = ink[(y + top) * width + x + left] * 255;
      glyph.data[y * glyphWidth + x] = roundHalfEven(float32 ? Math.fround(scaled) : scaled);
    }
  }
  const box = Math.max(1, roundHalfEven(digitShare * Math.min(outHeight, outWidth)));
  const scale = box / Math.max(glyphHeight, glyphWidth);
  const small = resize(glyph, Math.max(1, roundHalfEven(glyphWidth * scale)),
    Math.max(1, roundHalfEven(glyphHeight * scale)));
  // scipy.ndimage.center_of_mass in float64: sums of integers, exact in any order.
  let mass = 0, rowMoment = 0, columnMoment = 0;
  for (let y = 0; y < small.height; y++) {
    for (let x = 0; x < small.width; x++) {
      const value = small.data[y * small.width + x];
      mass += value;
      rowMoment += value * y;
      columnMoment += value * x;
    }
  }
  if (mass === 0) return field; // Python fails here (a NaN centre); nothing is left to show
  const clip = (value, high) => Math.min(Math.max(value, 0), high);
  // The centre of mass goes to pixel (outHeight / 2, outWidth / 2), where MNIST's digits have it.
  const moveDown = clip(roundHalfEven(outHeight / 2 - rowMoment / mass), outHeight - small.height);
  const moveRight = clip(roundHalfEven(outWidth / 2 - columnMoment / mass), outWidth - small.width);
  for (let y = 0; y < small.height; y++) {
    field.data.set(small.data.subarray(y * small.width, (y + 1) * small.width), (y + moveDown) * outWidth + moveRight);
  }
  return field;
}

/**
 * data/photos.py to_street: any image -> RGB image shape [H, W]: flattened over white, shrunk first if the
 * padded square would exceed maxPixels (data.photos.MAX_PIXELS), padded to a square with its edge pixels, resized.
 */
export function toStreet(image, shape, maxPixels) {
  if (!(maxPixels > 0)) throw new RangeError(`maxPixels must be a positive number, not ${maxPixels}`);
  const [height, width] = shape;
  let rgb = toRgb(image);
  const longest = Math.max(rgb.width, rgb.height);
  if (longest * longest > maxPixels) {
    const scale = Math.sqrt(maxPixels) / longest;
    rgb = resize(rgb, Math.max(1, roundHalfEven(rgb.width * scale)), Math.max(1, roundHalfEven(rgb.height * scale)));
  }
  const side = Math.max(rgb.width, rgb.height);
  const above = Math.floor((side - rgb.height) / 2);
  const left = Math.floor((side - rgb.width) / 2);
  const square = padEdge(rgb, above, side - rgb.height - above, left, side - rgb.width - left);
  return resize(square, width, height);
}

/**
 * The page's rule for a photo read by a one-channel digit classifier (see the header): any image -> grey image
 * shape [H, W], white digit on black. inkFloor: data.photos.INK_FLOOR, the share of the strongest ink below
 * which ink is set to 0; digitShare: data.photos.DIGIT_SHARE.
 */
export function scanToMnist(image, shape, inkFloor, digitShare) {
  if (!(inkFloor >= 0)) throw new RangeError(`inkFloor must be a share of the strongest ink, not ${inkFloor}`);
  const grey = toGrey(image);
  const ink = inkOverPaper(grey);
  const floor = Math.fround(inkFloor); // numpy compares a float32 array with a Python float in float32
  for (let i = 0; i < ink.length; i++) if (ink[i] < floor) ink[i] = 0;
  return frameLikeMnist(ink, grey.width, grey.height, shape[0], shape[1], digitShare);
}

/**
 * A drawing, white (or any light colour) on black: RGBA bytes (height * width * 4, as getImageData) -> grey image
 * shape [H, W]: ink = the red channel / 255 in float32, framed by frameLikeMnist with digitShare.
 */
export function canvasToMnist(rgba, width, height, shape, digitShare) {
  if (rgba.length !== width * height * 4) throw new RangeError(`rgba holds ${rgba.length} bytes, not ${width}x${height}x4`);
  const ink = new Float32Array(width * height);
  for (let i = 0; i < ink.length; i++) ink[i] = Math.fround(rgba[4 * i] / 255);
  return frameLikeMnist(ink, width, height, shape[0], shape[1], digitShare);
}
