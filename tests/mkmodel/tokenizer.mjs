// tokenizer.mjs — loads a model folder's tokenizer.json + tokenizer_config.json with Hugging Face's
// own tokenizers.js (tests/node) and checks it works as a tokenizer: text round-trips through
// encode/decode, ids fit the model's vocab, special tokens are single tokens, the BOS is added when
// tokenizer_config says so, and (for pdserve-mkmodel's learned tokenizer) common words are merged.
// usage: node tests/mkmodel/tokenizer.mjs DIR [learned]
import fs from "node:fs";

const mod = await import(new URL("../node/node_modules/@huggingface/tokenizers/dist/tokenizers.mjs",
                                 import.meta.url));
const dir = process.argv[2];
const learned = process.argv[3] === "learned";
const read = (f) => JSON.parse(fs.readFileSync(`${dir}/${f}`, "utf8"));
const config = read("config.json"), tokConfig = read("tokenizer_config.json");
const tok = new mod.Tokenizer(read("tokenizer.json"), tokConfig);
let failures = 0;
const check = (ok, what) => {
  if (!ok) { failures++; console.log(`FAIL ${what}`); }
};

const samples = [
  "The morning train left the station at seven.",
  "Hello, world! It's 2026 and we're testing 12345 tokens.",
  "naïve café — 日本語 🙂 \t tabs\nand\r\nnewlines   spaces",
  "   leading spaces and trailing ones   ",
  "x",
];
for (const s of samples) {
  const e = tok.encode(s, { add_special_tokens: false });
  const back = tok.decode(e.ids);
  check(back === s, `round trip of ${JSON.stringify(s)} gave ${JSON.stringify(back)}`);
  check(e.ids.every((i) => i >= 0 && i < config.vocab_size), `ids of ${JSON.stringify(s)} within vocab`);
  console.log(`${JSON.stringify(s)} -> ${e.ids.length} tokens ${JSON.stringify(e.tokens)}`);
}

const eosName = typeof tokConfig.eos_token === "string" ? tokConfig.eos_token : tokConfig.eos_token?.content;
if (eosName) {
  const e = tok.encode(`a${eosName}b`, { add_special_tokens: false });
  check(e.tokens.includes(eosName), `${eosName} is one token in ${JSON.stringify(e.tokens)}`);
}
if (tokConfig.add_bos_token && config.bos_token_id != null) {
  const e = tok.encode("hi");
  check(e.ids[0] === config.bos_token_id, `BOS ${config.bos_token_id} is prepended: got ${e.ids}`);
}
if (learned) {
  // Merges learned from English: frequent words are one token, so English text compresses.
  const e = tok.encode(" the and", { add_special_tokens: false });
  check(e.ids.length === 2, `" the and" is two tokens, got ${JSON.stringify(e.tokens)}`);
  const text = samples[0] + " " + samples[1];
  const n = tok.encode(text, { add_special_tokens: false }).ids.length;
  check(n < 0.6 * Buffer.byteLength(text), `English compresses: ${n} tokens for ${Buffer.byteLength(text)} bytes`);
  const im = tok.encode("<|im_start|>user\nhi<|im_end|>", { add_special_tokens: false });
  check(im.tokens[0] === "<|im_start|>" && im.tokens.at(-1) === "<|im_end|>", `ChatML markers: ${im.tokens}`);
}
console.log(failures ? `${failures} checks failed` : "tokenizer ok");
process.exit(failures ? 1 : 0);
