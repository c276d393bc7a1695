// Runs make_cases.py's model.onnx in ONNX Runtime (onnxruntime-node, installed in DIR) and
// compares each case with torch's outputs; optionally also runs a second model (the kit's
// fallback onnx/char3x512.onnx) once. Exit status 1 on any mismatch above 1e-4.
//   node bench/device/onnx_check/check.js DIR [FALLBACK_ONNX]
const path = require('path');
const fs = require('fs');
const dir = path.resolve(process.argv[2]);
const ort = require(path.join(dir, 'node_modules', 'onnxruntime-node'));
const opts = {intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
              graphOptimizationLevel: 'all'};

function feeds(T, N, L, H, tokens, h, c) {
  return {tokens: new ort.Tensor('int64', BigInt64Array.from(tokens.map(BigInt)), [T, N]),
          h0: new ort.Tensor('float32', Float32Array.from(h), [L, N, H]),
          c0: new ort.Tensor('float32', Float32Array.from(c), [L, N, H])};
}

(async () => {
  const d = JSON.parse(fs.readFileSync(path.join(dir, 'cases.json')));
  const s = await ort.InferenceSession.create(path.join(dir, 'model.onnx'), opts);
  console.log(`onnxruntime-node ${require(path.join(dir, 'node_modules', 'onnxruntime-node',
      'package.json')).version}; inputs ${s.inputNames}; outputs ${s.outputNames}`);
  let worst = 0;
  for (const c of d.cases) {
    const r = await s.run(feeds(c.T, c.N, d.L, d.H, c.tokens, c.h, c.c));
    let md = 0;
    ['logprobs', 'h1', 'c1'].forEach((k, i) => {
      const a = r[k].data, b = c.out[i];
      if (a.length !== b.length) throw new Error(`${k}: ${a.length} values, torch ${b.length}`);
      for (let j = 0; j < a.length; ++j) md = Math.max(md, Math.abs(a[j] - b[j]));
    });
    worst = Math.max(worst, md);
    console.log(`T=${c.T} N=${c.N}: logprobs [${r.logprobs.dims}], h1 [${r.h1.dims}], ` +
                `c1 [${r.c1.dims}]; max |ORT - torch| ${md.toExponential(2)}`);
  }
  if (process.argv[3]) {
    const f = await ort.InferenceSession.create(process.argv[3], opts);
    const N = 4, z = new Array(d.L * N * d.H).fill(0);
    const r = await f.run(feeds(1, N, d.L, d.H, new Array(N).fill(0), z, z));
    console.log(`${process.argv[3]}: runs, logprobs [${r.logprobs.dims}]`);
  }
  process.exit(worst > 1e-4 ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(1); });
