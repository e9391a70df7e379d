// LiteRT.js: the page's only model runtime. A model file is loaded once and run on uint8 pixels.
//
//   await startRuntime(manifest.runtime);            // the WebAssembly build serve.py copied
//   const model = await loadModel("models/convnet_mnist/model.tflite");
//   const outputs = await run(model, pixels, [28, 28, 1]);   // {probabilities: Float32Array, digit: Int32Array}
//
// Every file is a serving signature written by serving/export.py: one uint8 input named "pixels"
// (1, H, W, C), outputs by name (float32 or int32: LiteRT.js refuses int64).

import {loadLiteRt, loadAndCompile, Tensor} from "@litertjs/core";

let runtime = null;

/** What the runtime printed (its INFO and WARNING lines), kept here rather than in the console. */
export const runtimeLog = [];

/** Load the WebAssembly runtime once; later calls return the same promise. */
export function startRuntime(script) {
  // Emscripten's module overrides (self.Module, read once by the runtime's loader): its own log lines
  // ("INFO: Created TensorFlow Lite XNNPACK delegate") would otherwise go to console.error.
  self.Module = {print: (line) => runtimeLog.push(line), printErr: (line) => runtimeLog.push(line)};
  runtime ??= loadLiteRt(script);
  return runtime;
}

/** A compiled model from a .tflite URL, run on the CPU (WebAssembly, XNNPack). */
export async function loadModel(url) {
  await runtime;
  return loadAndCompile(url, {accelerator: "wasm"});
}

/** Run `model` on uint8 `pixels` of shape [H, W, C]: {output name: typed array (a copy), ...}. */
export async function run(model, pixels, shape) {
  const input = new Tensor(pixels, [1, ...shape]);
  try {
    const outputs = await model.run({pixels: input});
    const result = {};
    for (const [name, tensor] of Object.entries(outputs)) {
      result[name] = tensor.toTypedArray().slice();  // a copy: the tensor's memory is freed next
      tensor.delete();
    }
    return result;
  } finally {
    input.delete();
  }
}
