#!/usr/bin/env node
// Runs an ONNX model through ONNX Runtime (CPU) on one float32 input, for checking our exports:
//   node tools/ort/run_model.js model.onnx input.bin N C H W out_prefix
// input.bin holds N*C*H*W raw float32 values (NCHW, native byte order) fed to the model's first
// input. Each output <name> is written as <out_prefix><name>.bin (raw float32) and
// <out_prefix><name>.shape (its dimensions, space separated, one line).
// onnxruntime-node is looked up in EMT_ORT_DIR/node_modules when set (tools/setup.sh installs it
// into <build>/ort), else the usual Node module resolution applies. ORT_THREADS (default 2) sets
// the intra-op thread count. Exit status 0 on success, 1 with a message on stderr otherwise.
'use strict';

const fs = require('fs');
const path = require('path');

function loadOrt() {
  const dir = process.env.EMT_ORT_DIR;
  if (dir) return require(path.join(path.resolve(dir), 'node_modules', 'onnxruntime-node'));
  return require('onnxruntime-node');
}

async function main(argv) {
  if (argv.length !== 7) {
    throw new Error('usage: run_model.js model.onnx input.bin N C H W out_prefix');
  }
  const [modelPath, inputPath] = argv;
  const dims = argv.slice(2, 6).map((s) => {
    const v = Number(s);
    if (!Number.isInteger(v) || v <= 0) throw new Error(`bad dimension '${s}'`);
    return v;
  });
  const outPrefix = argv[6];
  const count = dims.reduce((a, b) => a * b, 1);

  const bytes = fs.readFileSync(inputPath);
  if (bytes.length !== count * 4) {
    throw new Error(`${inputPath} holds ${bytes.length} bytes, [${dims}] float32 needs ${count * 4}`);
  }
  // Copy into a fresh, aligned buffer: a Buffer may be a view at any offset of a shared pool.
  const input = new Float32Array(count);
  new Uint8Array(input.buffer).set(bytes);

  const ort = loadOrt();
  const threads = Number(process.env.ORT_THREADS || 2);
  const session = await ort.InferenceSession.create(modelPath, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
  });
  const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', input, dims)};
  const results = await session.run(feeds);
  for (const name of session.outputNames) {
    const t = results[name];
    if (t.type !== 'float32') throw new Error(`output ${name} is ${t.type}, not float32`);
    const data = t.data;
    fs.writeFileSync(outPrefix + name + '.bin',
                     Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    fs.writeFileSync(outPrefix + name + '.shape', t.dims.join(' ') + '\n');
  }
}

main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`run_model.js: ${e && e.message ? e.message : e}\n`);
  process.exit(1);
});
