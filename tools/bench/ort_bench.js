#!/usr/bin/env node
// ONNX Runtime baseline for `engine bench`:
//   node tools/bench/ort_bench.js model.onnx THREADS ITERATIONS SIZE
// Times the model's first input at batch 1 (latency) and batch 16 (throughput), median of
// ITERATIONS runs after 2 warm-up runs, and prints one JSON line:
//   {"infer_b1_ms": ..., "infer_b16_img_s": ...}
// The input is [N, 3, SIZE, SIZE] images (SIZE: engine bench's data.input_size, default 224).
// onnxruntime-node is looked up in EMT_ORT_DIR/node_modules when set, like tools/ort/run_model.js.
'use strict';

const path = require('path');

function loadOrt() {
  const dir = process.env.EMT_ORT_DIR;
  if (dir) return require(path.join(path.resolve(dir), 'node_modules', 'onnxruntime-node'));
  return require('onnxruntime-node');
}

async function medianSeconds(iterations, fn) {
  for (let i = 0; i < 2; ++i) await fn();
  const times = [];
  for (let i = 0; i < iterations; ++i) {
    const start = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function main([modelPath, threadsArg, iterationsArg, sizeArg]) {
  const ort = loadOrt();
  const threads = Number(threadsArg);
  const iterations = Number(iterationsArg);
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  const inputName = session.inputNames[0];
  // ORT for Node does not expose input shapes; EMT-Net models take [N, 3, SIZE, SIZE].
  const size = Number(sizeArg || 224);
  const feeds = (batch) => {
    const data = new Float32Array(batch * 3 * size * size).map((_, i) => ((i * 7919) % 1000) / 500 - 1);
    return {[inputName]: new ort.Tensor('float32', data, [batch, 3, size, size])};
  };
  const one = feeds(1);
  const sixteen = feeds(16);
  const b1 = await medianSeconds(iterations, () => session.run(one));
  const b16 = await medianSeconds(iterations, () => session.run(sixteen));
  console.log(JSON.stringify({infer_b1_ms: b1 * 1e3, infer_b16_img_s: 16 / b16}));
}

main(process.argv.slice(2)).catch((e) => {
  console.log(`ORT baseline failed: ${e.message}`);
  process.exit(1);
});
