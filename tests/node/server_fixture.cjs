// Test fixture for the Node.js tests: starts a real lstmserve (the shipped
// demo model models/shakespeare, reference engine) with gRPC and HTTP on
// loopback port 0, and asks lstmctl over gRPC for greedy text to compare
// with. Usage: const s = await startServer(buildDir); ...; await s.stop().
// Node packages come from tools/npm/node_modules (tools/install_deps.sh);
// when they are missing, requireNpm exits 77 (ctest: skipped, with the reason).
"use strict";
const { spawn, execFileSync } = require("node:child_process");
const path = require("node:path");
const fs = require("node:fs");

const root = path.resolve(__dirname, "..", "..");
const npmModules = path.join(root, "tools", "npm", "node_modules");
const model = "shakespeare";

function requireNpm(name) {
  const dir = path.join(npmModules, name);
  if (!fs.existsSync(dir)) {
    console.log(`SKIP: ${dir} missing; run tools/install_deps.sh (npm ci in tools/npm)`);
    process.exit(77);
  }
  return require(dir);
}

function startServer(build, extraArgs = []) {
  const binary = path.join(build, "server", "lstmserve");
  const args = [`--model=${model}=${path.join(root, "models", "shakespeare")}`, "--engine=reference",
                "--listen=127.0.0.1:0", "--http-listen=127.0.0.1:0", "--request-log=none",
                "--max-batch=8", ...extraArgs];
  const child = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "", started = false;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("lstmserve did not start:\n" + log)), 120000);
    child.on("exit", (code) => reject(new Error(`lstmserve exited ${code}:\n${log}`)));
    child.stderr.on("data", (d) => {
      log += d.toString();
      const grpc = /on port (\d+) with/.exec(log), http = /HTTP on port (\d+)/.exec(log);
      if (grpc && http && !started) {
        started = true;
        clearTimeout(timer);
        child.removeAllListeners("exit");
        resolve({
          grpcPort: Number(grpc[1]),
          httpPort: Number(http[1]),
          baseUrl: `http://127.0.0.1:${http[1]}`,
          model,
          // Greedy text over gRPC (lstmctl prints the text and a newline).
          grpcGreedy(prompt, maxTokens) {
            const out = execFileSync(path.join(build, "client", "lstmctl"), [
              "generate", `--server=127.0.0.1:${grpc[1]}`, `--model=${model}`, `--prompt=${prompt}`,
              `--max_tokens=${maxTokens}`, "--temperature=0"],
              { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
            return out.endsWith("\n") ? out.slice(0, -1) : out;
          },
          stop() {
            return new Promise((done) => {
              child.on("exit", () => done());
              child.kill("SIGTERM");
            });
          },
        });
      }
    });
  });
}

// Runs `main`, reporting failures with a non-zero exit.
function run(main) {
  main().then(() => { console.log("PASS"); process.exitCode = 0; },
              (e) => { console.error("FAIL:", e && e.stack ? e.stack : e); process.exitCode = 1; });
}

function assertEqual(actual, expected, what) {
  if (actual !== expected) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

module.exports = { requireNpm, startServer, run, assertEqual, root };
