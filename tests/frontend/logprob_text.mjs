// logprob_text.mjs — logprob token strings are each token's text in context (what the incremental
// detokenizer emitted for it), so they join up to the answer's text, text_offset counts along them,
// and chat's `bytes` concatenate to the content's UTF-8 — for completions and chat, streamed and not,
// through the official openai client. Issue 20: with SentencePiece tokenizers each token was decoded
// on its own and lost its leading space (" divisions" came back as "divisions").
// usage: node tests/frontend/logprob_text.mjs BASE_URL LABEL [--expect-space]
//   --expect-space: the tokenizer is SentencePiece-style: some token after the first must begin with
//   a space (the bug made that impossible).
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "../node/package.json"));
const OpenAI = require("openai");

const [base, label, flag] = process.argv.slice(2);
const expectSpace = flag === "--expect-space";
const client = new OpenAI({ baseURL: base + "/v1", apiKey: "none", maxRetries: 0, timeout: 60000 });
let failures = 0, checks = 0;
function check(cond, what) {
  checks++;
  if (!cond) { failures++; console.log(`FAIL [${label}] ${what}`); } else console.log(`ok   [${label}] ${what}`);
}
const chars = (s) => Array.from(s).length; // text_offset counts code points, as Python's len
const model = (await client.models.list()).data[0].id;
let sawSpace = false, sawSplit = false;

function checkCompletion(text, lp, what) {
  const joined = lp.tokens.join("");
  check(joined === text, `${what}: tokens join to the text (${lp.tokens.length} tokens)` +
    (joined === text ? "" : `\n     text   ${JSON.stringify(text)}\n     tokens ${JSON.stringify(lp.tokens)}`));
  let off = lp.text_offset[0], ok = off === 0;
  for (let i = 0; i < lp.tokens.length && ok; i++) {
    ok = lp.text_offset[i] === off && text.slice(0, 0) === "" &&
      Array.from(text).slice(off, off + chars(lp.tokens[i])).join("") === lp.tokens[i];
    off += chars(lp.tokens[i]);
  }
  check(ok && lp.text_offset.length === lp.tokens.length, `${what}: text_offset[i] is where token i starts in the text`);
  check(lp.token_logprobs.length === lp.tokens.length && lp.token_logprobs.every((x) => x <= 0), `${what}: one logprob <= 0 per token`);
  if (lp.tokens.slice(1).some((t) => t.startsWith(" "))) sawSpace = true;
}

function checkChat(content, entries, what) {
  const joined = entries.map((e) => e.token).join("");
  check(joined === content, `${what}: tokens join to the content (${entries.length} tokens)` +
    (joined === content ? "" : `\n     content ${JSON.stringify(content)}\n     tokens  ${JSON.stringify(entries.map((e) => e.token))}`));
  const bytes = Buffer.from(entries.flatMap((e) => e.bytes));
  // bytes of a token inside a split character are its raw bytes: they join to the content's UTF-8
  // wherever the decoder did not have to replace invalid bytes with U+FFFD
  const lossy = content.includes("\ufffd");
  check(lossy || bytes.equals(Buffer.from(content, "utf8")), `${what}: bytes concatenate to the content's UTF-8${lossy ? " (skipped: U+FFFD in the text)" : ""}`);
  check(entries.every((e) => e.bytes.length > 0 || e.token === "" || false) &&
        entries.every((e) => e.token === "" || !e.bytes.length || e.token.length > 0),
        `${what}: every non-empty token has bytes`);
  if (entries.some((e) => Buffer.from(e.token, "utf8").length !== e.bytes.length)) sawSplit = true;
  if (entries.slice(1).some((e) => e.token.startsWith(" "))) sawSpace = true;
}

async function collect(stream) {
  let text = "", lp = null, content = [];
  for await (const c of stream) {
    for (const ch of c.choices) {
      text += ch.text ?? ch.delta?.content ?? "";
      const l = ch.logprobs;
      if (!l) continue;
      if (l.content) content.push(...l.content);
      else if (!lp) lp = { ...l };
      else for (const k of ["tokens", "token_logprobs", "top_logprobs", "text_offset"]) lp[k].push(...l[k]);
    }
  }
  return { text, lp, content };
}

const prompts = ["The quick brown fox", "Once upon a time, in a land far away", "1, 2, 3,"];
for (const [i, prompt] of prompts.entries()) {
  for (const temperature of [0, 1.0, 2.0]) {
    const req = { model, prompt, max_tokens: 40, temperature, seed: 100 + i, ignore_eos: true, logprobs: 1 };
    const what = `completion ${i} T=${temperature}`;
    const r = await client.completions.create(req);
    checkCompletion(r.choices[0].text, r.choices[0].logprobs, what);
    const s = await collect(await client.completions.create({ ...req, stream: true }));
    check(s.text === r.choices[0].text, `${what} streamed: same text`);
    checkCompletion(s.text, s.lp, what + " streamed");
    check(JSON.stringify(s.lp.tokens) === JSON.stringify(r.choices[0].logprobs.tokens), `${what} streamed: same tokens`);

    const creq = { model, messages: [{ role: "user", content: prompt }], max_tokens: 40, temperature,
                   seed: 200 + i, ignore_eos: true, logprobs: true, top_logprobs: 1 };
    const c = await client.chat.completions.create(creq);
    checkChat(c.choices[0].message.content, c.choices[0].logprobs.content, `chat ${i} T=${temperature}`);
    const cs = await collect(await client.chat.completions.create({ ...creq, stream: true }));
    check(cs.text === c.choices[0].message.content, `chat ${i} T=${temperature} streamed: same content`);
    checkChat(cs.text, cs.content, `chat ${i} T=${temperature} streamed`);
  }
}
if (expectSpace) check(sawSpace, "some token after the first starts with a space (SentencePiece's ▁ kept in context)");
console.log(`[${label}] a token whose bytes differ from its text's (a split character) was seen: ${sawSplit}`);
console.log(`${checks} checks, ${failures} failed`);
process.exit(failures ? 1 : 0);
