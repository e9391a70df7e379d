// A photo file into RGBA pixels, with predict.py's limits (data/photos.py read_image), or a PhotoError
// whose message the page shows. The size is read from the file's header first, so a 20,000 x 20,000
// picture is refused before the browser tries to decode it.

export class PhotoError extends Error {}

const CHUNK = 1 << 16;  // bytes read at a time while looking for a size in a header

const text = (bytes, offset, expected) => [...expected].every((char, i) => bytes[offset + i] === char.charCodeAt(0));

/** {width, height} from the first bytes of a PNG, GIF, WebP or BMP file, null for another format. */
export function headerSize(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length >= 24 && bytes[0] === 0x89 && text(bytes, 1, "PNG") && text(bytes, 12, "IHDR")) {
    return {width: view.getUint32(16), height: view.getUint32(20)};
  }
  if (bytes.length >= 10 && text(bytes, 0, "GIF8")) {
    return {width: view.getUint16(6, true), height: view.getUint16(8, true)};
  }
  if (bytes.length >= 26 && text(bytes, 0, "BM")) {
    return {width: Math.abs(view.getInt32(18, true)), height: Math.abs(view.getInt32(22, true))};
  }
  if (bytes.length >= 30 && text(bytes, 0, "RIFF") && text(bytes, 8, "WEBP")) {
    const u24 = (offset) => bytes[offset] | bytes[offset + 1] << 8 | bytes[offset + 2] << 16;
    if (text(bytes, 12, "VP8X")) return {width: 1 + u24(24), height: 1 + u24(27)};
    if (text(bytes, 12, "VP8L")) {
      const bits = view.getUint32(21, true);
      return {width: 1 + (bits & 0x3fff), height: 1 + ((bits >>> 14) & 0x3fff)};
    }
    if (text(bytes, 12, "VP8 ")) return {width: view.getUint16(26, true) & 0x3fff, height: view.getUint16(28, true) & 0x3fff};
  }
  return null;
}

/**
 * {width, height} from a JPEG's first start-of-frame marker (C0-CF but C4, C8 and CC), walking its segments
 * through the file however large its metadata (EXIF, ICC, XMP), or null when it is not a JPEG.
 */
export async function jpegSize(blob) {
  const read = async (offset, length) => new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
  const start = await read(0, 2);
  if (start.length < 2 || start[0] !== 0xff || start[1] !== 0xd8) return null;
  let offset = 2;
  while (offset < blob.size) {
    const segment = await read(offset, 9);
    if (segment.length < 4 || segment[0] !== 0xff) return null;
    const marker = segment[1];
    if (marker === 0xff) {  // fill bytes before a marker
      offset += 1;
      continue;
    }
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
      if (segment.length < 9) return null;
      const view = new DataView(segment.buffer);
      return {width: view.getUint16(7), height: view.getUint16(5)};
    }
    offset += 2 + (segment[2] << 8 | segment[3]);
  }
  return null;
}

/** Refuse a picture too large to decode safely or too small to show a digit (predict.py's limits). */
export function checkSize({width, height}, limits) {
  if (width * height > limits.max_pixels) {
    throw new PhotoError(`${width}x${height} pixels is too large (at most ${limits.max_pixels.toLocaleString("en")} ` +
                         `pixels); crop or shrink it`);
  }
  if (Math.min(width, height) < limits.min_side) {
    throw new PhotoError(`${width}x${height} pixels is too small to show a digit (at least ${limits.min_side} ` +
                         `pixels each way)`);
  }
}

/**
 * A File or Blob -> {image: {data (RGBA bytes), width, height, channels: 4}, bitmap}: decoded as the file's
 * colours are stored (no colour-profile conversion, as Pillow reads them), turned upright as the camera saw it.
 * A format whose size this module cannot read from its header (AVIF, HEIC) is checked once decoded.
 */
export async function readPhoto(blob, limits) {
  if (blob.size === 0) throw new PhotoError("the file is empty");
  const header = headerSize(new Uint8Array(await blob.slice(0, CHUNK).arrayBuffer())) ?? await jpegSize(blob);
  if (header) checkSize(header, limits);
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, {colorSpaceConversion: "none", premultiplyAlpha: "none",
                                            imageOrientation: "from-image"});
  } catch {
    throw new PhotoError("not an image this browser can open (give a PNG or JPEG)");
  }
  checkSize(bitmap, limits);
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext("2d", {willReadFrequently: true});
  context.drawImage(bitmap, 0, 0);
  const {data} = context.getImageData(0, 0, bitmap.width, bitmap.height);
  return {image: {data, width: bitmap.width, height: bitmap.height, channels: 4}, bitmap};
}
