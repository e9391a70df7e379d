// A photo file into RGBA pixels, with predict.py's limits (data/photos.py read_image), or a PhotoError
// whose message the page shows. The size is read from the file's header first, so a 20,000 x 20,000
// picture is refused before the browser tries to decode it.

export class PhotoError extends Error {}

/** {width, height} from a PNG, JPEG or GIF header (the first bytes of the file), or null for another format. */
export function headerSize(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = (offset, text) => [...text].every((char, i) => bytes[offset + i] === char.charCodeAt(0));
  if (bytes.length >= 24 && bytes[0] === 0x89 && at(1, "PNG") && at(12, "IHDR")) {
    return {width: view.getUint32(16), height: view.getUint32(20)};
  }
  if (bytes.length >= 10 && at(0, "GIF8")) {
    return {width: view.getUint16(6, true), height: view.getUint16(8, true)};
  }
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    // JPEG: walk the segments to the first start-of-frame marker (C0-CF but C4, C8 and CC).
    let offset = 2;
    while (offset + 9 <= bytes.length) {
      if (bytes[offset] !== 0xff) return null;
      const marker = bytes[offset + 1];
      if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
        return {width: view.getUint16(offset + 7), height: view.getUint16(offset + 5)};
      }
      offset += 2 + view.getUint16(offset + 2);
    }
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
 */
export async function readPhoto(blob, limits) {
  if (blob.size === 0) throw new PhotoError("the file is empty");
  const header = headerSize(new Uint8Array(await blob.slice(0, 1 << 16).arrayBuffer()));
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
