#!/usr/bin/env node
// Hugging Face's tokenizer (@huggingface/tokenizers from tests/node) on one model folder, for script
// tests that compare pdserve-tokenize against it at test time (tokenizers generated during the test).
//   node tests/tok/hf.mjs encode DIR FILE [--add-special]    prints the ids, space-separated
//   node tests/tok/hf.mjs decode DIR FILE [--skip-special]   FILE holds ids; prints the text
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "node", "package.json"));
const { Tokenizer } = require("@huggingface/tokenizers");

const [mode, dir, file, ...flags] = process.argv.slice(2);
const read = (f) => (fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, "utf8")) : {});
const tok = new Tokenizer(read(path.join(dir, "tokenizer.json")), read(path.join(dir, "tokenizer_config.json")));
const input = fs.readFileSync(file);
if (mode === "encode") {
  const ids = tok.encode(input.toString("utf8"), { add_special_tokens: flags.includes("--add-special") }).ids;
  process.stdout.write(ids.join(" ") + "\n");
} else if (mode === "decode") {
  const ids = input.toString("utf8").trim().split(/\s+/).filter((x) => x).map(Number);
  const text = ids.length ? tok.decode(ids, { skip_special_tokens: flags.includes("--skip-special"),
                                              clean_up_tokenization_spaces: false }) : "";
  process.stdout.write(text);
} else {
  console.error("usage: hf.mjs encode|decode DIR FILE [flags]");
  process.exit(2);
}
