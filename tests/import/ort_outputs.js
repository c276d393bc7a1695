// Runs each ONNX import fixture in ONNX Runtime (onnxruntime-node) on its expected.json probe
// and writes ort.json next to it: the log-probs ONNX Runtime computes, an implementation
// independent of the importer's own ONNX evaluator. tools/tools_test.py compares the exported
// packages with these committed outputs.
//   node tests/import/ort_outputs.js NODE_MODULES_DIR   (e.g. tools/npm/node_modules)
const path = require('path');
const fs = require('fs');
const modules = path.resolve(process.argv[2] || 'tools/npm/node_modules');
const ort = require(path.join(modules, 'onnxruntime-node'));
const version = require(path.join(modules, 'onnxruntime-node', 'package.json')).version;
const root = path.join(__dirname, 'fixtures');

(async () => {
  for (const name of fs.readdirSync(root).sort()) {
    const file = path.join(root, name, 'model.onnx');
    if (!fs.existsSync(file)) continue;
    const exp = JSON.parse(fs.readFileSync(path.join(root, name, 'expected.json')));
    const s = await ort.InferenceSession.create(file, {intraOpNumThreads: 1});
    const data = exp.onnx_input_type === 'int32' ? Int32Array.from(exp.ids)
                                                  : BigInt64Array.from(exp.ids.map(BigInt));
    const feeds = {[exp.onnx_input]: new ort.Tensor(exp.onnx_input_type, data,
                                                    exp.onnx_input_shape)};
    const out = (await s.run(feeds))[exp.onnx_output];
    const V = out.dims[out.dims.length - 1];
    const rows = [];
    let worst = 0;
    for (let t = 0; t < exp.ids.length; ++t) {
      const row = [];
      for (let v = 0; v < V; ++v) {
        const x = out.data[t * V + v];
        row.push(exp.onnx_output_is === 'probs' ? Math.log(x) : x);
        worst = Math.max(worst, Math.abs(row[v] - exp.logprobs[t][v]));
      }
      rows.push(row.map((x) => Number(x.toFixed(7))));
    }
    fs.writeFileSync(path.join(root, name, 'ort.json'), JSON.stringify(
        {onnxruntime_node: version, output_dims: out.dims, logprobs: rows}) + '\n');
    console.log(`${name}: ${out.dims} from ONNX Runtime ${version}; max |ORT - source| ` +
                `${worst.toExponential(2)}`);
  }
})().catch((e) => { console.error(e); process.exit(1); });
