// client.mjs — what the openai-client tests share: the official client for BASE_URL (argv[2]) with
// a timeout of the test's choosing (connect), the served MODEL (argv[3]), LINES for the OUT file
// (argv[4]) that two deployments' runs are compared by, ok/FAIL checks, a plain POST for pdserve's own
// endpoints, and done(), which writes OUT and exits non-zero on any failure. ajv, an independent JSON
// Schema validator, for the tests that validate answers.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "../node/package.json"));
export const OpenAI = require("openai");
export const Ajv = require("ajv");

export const [base, model, out] = process.argv.slice(2);
/* The client, no retries, each request given timeoutMs. */
export function connect(timeoutMs) {
  return new OpenAI({ baseURL: base + "/v1", apiKey: "none", maxRetries: 0, timeout: timeoutMs });
}
export const lines = [];
let failures = 0;

export function check(cond, what) {
  if (!cond) { failures++; console.log("FAIL " + what); } else console.log("ok   " + what);
}

export async function post(p, body) {
  const r = await fetch(base + p, { method: "POST", headers: { "Content-Type": "application/json" },
                                    body: JSON.stringify(body) });
  return r.json();
}

export function done() {
  fs.writeFileSync(out, lines.join("\n") + "\n");
  console.log(`${failures} failed`);
  process.exit(failures ? 1 : 0);
}
