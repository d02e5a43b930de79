// top_logprobs.mjs — real top_logprobs, logit_bias and best_of through the official `openai` npm client:
//  - chat top_logprobs (up to 20) and completions logprobs (integer) list the most likely tokens,
//    best first; at temperature 0 in the raw mode the chosen token is the first of them, with the same
//    logprob; the probabilities sum to at most 1; streamed and whole answers agree;
//  - logit_bias -100 on the greedy token makes the runner-up win, with exactly the logprob the
//    alternatives listed for it; +100 on one token makes every token that one (through the prefill
//    worker's first token and the decode worker's rest);
//  - best_of 4 with n 2 returns the two of the four candidates (the same as n 4 with the same seed)
//    whose tokens' logprobs sum highest, likeliest first, and usage counts all four;
//  - echo with logprobs scores the prompt's tokens too (the first null), each as the model scores that
//    token after the ones before it (checked against a request that forces it with logit_bias), with
//    text_offset counting on past the echoed prompt; streamed and whole alike;
//  - bad values are 400s naming the field.
// Prints the answers' logprobs as JSON lines on OUT so two deployments can be compared byte for byte.
// usage: node tests/frontend/top_logprobs.mjs BASE_URL MODEL OUT
import { OpenAI, connect, model, base, lines, check, post, done } from "./client.mjs";
const client = connect(60000);
const utf8 = (s) => [...Buffer.from(s, "utf8")];
const sameBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

const chat = { model, messages: [{ role: "user", content: "Tell me about foxes" }], max_tokens: 12,
               temperature: 0, ignore_eos: true, logprobs: true, top_logprobs: 5 };

// chat, whole and streamed
const whole = await client.chat.completions.create(chat);
const content = whole.choices[0].logprobs.content;
check(content.length === 12, `chat: 12 tokens with logprobs (${content.length})`);
let sorted = true, five = true, firstIsChosen = true, mass = true, bytesOk = true;
for (const e of content) {
  const top = e.top_logprobs;
  five &&= top.length === 5;
  for (let i = 1; i < top.length; i++) sorted &&= top[i - 1].logprob >= top[i].logprob;
  firstIsChosen &&= top[0].token === e.token && top[0].logprob === e.logprob && sameBytes(top[0].bytes, e.bytes);
  mass &&= top.reduce((s, t) => s + Math.exp(t.logprob), 0) <= 1 + 1e-6 && top.every((t) => t.logprob <= 0);
  for (const t of top.slice(1)) if (!t.token.includes("\ufffd")) bytesOk &&= sameBytes(t.bytes, utf8(t.token));
}
check(five, "chat: every token lists 5 alternatives");
check(sorted, "chat: alternatives best first");
check(firstIsChosen, "chat: at temperature 0 the chosen token is the first alternative, same logprob and bytes");
check(mass, "chat: the alternatives' probabilities sum to at most 1");
check(bytesOk, "chat: an alternative's bytes are its token's UTF-8");
lines.push(JSON.stringify(content));

const stream = await client.chat.completions.create({ ...chat, stream: true });
const streamed = [];
for await (const chunk of stream) streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
check(JSON.stringify(streamed) === JSON.stringify(content), "chat: streamed alternatives equal the whole answer's");

const twenty = await client.chat.completions.create({ ...chat, max_tokens: 3, top_logprobs: 20 });
check(twenty.choices[0].logprobs.content.every((e) => e.top_logprobs.length === 20), "chat: top_logprobs 20");
lines.push(JSON.stringify(twenty.choices[0].logprobs.content));
const none = await client.chat.completions.create({ ...chat, max_tokens: 3, top_logprobs: 0 });
check(none.choices[0].logprobs.content.every((e) => e.top_logprobs.length === 0), "chat: top_logprobs 0 lists none");

// completions: logprobs N gives N alternatives (and the chosen token, which greedy makes one of them);
// a dict, so alternatives whose text is the same (byte tokens all read "\ufffd") share one key
const comp = await client.completions.create({ model, prompt: "The quick brown fox", max_tokens: 10, temperature: 0,
                                              ignore_eos: true, logprobs: 3 });
const lp = comp.choices[0].logprobs;
let dictOk = true;
lp.top_logprobs.forEach((d, i) => {
  const vals = Object.values(d);
  dictOk &&= vals.length >= 1 && vals.length <= 4 && d[lp.tokens[i]] === lp.token_logprobs[i] &&
             Math.max(...vals) === lp.token_logprobs[i];
});
check(lp.top_logprobs.length === 10 && dictOk, "completions: logprobs 3 lists the top tokens, the greedy one first");
lines.push(JSON.stringify(lp));

// logit_bias: -100 on the greedy first token makes the runner-up the first token
const first = content[0], runnerUp = first.top_logprobs[1];
const ids = (await post("/tokenize", { prompt: first.token, add_special_tokens: false })).tokens;
const back = ids.length === 1 ? (await post("/detokenize", { tokens: ids })).prompt : null;
if (back === first.token) {
  const biased = await client.chat.completions.create({ ...chat, max_tokens: 2, logit_bias: { [ids[0]]: -100 } });
  const b0 = biased.choices[0].logprobs.content[0];
  check(b0.token === runnerUp.token && b0.logprob === runnerUp.logprob,
        `logit_bias -100 on "${first.token}" (${ids[0]}): the runner-up "${runnerUp.token}" is chosen, logprob ${b0.logprob}`);
  lines.push(JSON.stringify(b0));
} else {
  check(false, `the greedy first token "${first.token}" is not one token by itself (${ids}); pick another prompt`);
}

// +100 on one token: every token is that one
const target = 300;
const text = (await post("/detokenize", { tokens: [target] })).prompt;
const forced = await client.completions.create({ model, prompt: "The quick brown fox", max_tokens: 6, temperature: 0,
                                                ignore_eos: true, logit_bias: { [target]: 100 } });
const want = (await post("/detokenize", { tokens: Array(6).fill(target) })).prompt;
check(forced.choices[0].text === want, `logit_bias +100 on token ${target} ("${text}"): six of it`);
const forcedHot = await client.completions.create({ model, prompt: "The quick brown fox", max_tokens: 6, temperature: 1,
                                                   seed: 3, ignore_eos: true, logit_bias: { [target]: 100 } });
check(forcedHot.choices[0].text === want, "the same at temperature 1");

// best_of: the candidates are what n 4 with the same seed samples (sample j uses seed + j)
const cand = { model, prompt: "The quick brown fox", max_tokens: 8, temperature: 1, seed: 11, ignore_eos: true };
const four = await client.completions.create({ ...cand, n: 4, logprobs: 0 });
const sums = four.choices.map((c) => ({ text: c.text, sum: c.logprobs.token_logprobs.reduce((a, b) => a + b, 0) }));
const best = [...sums].sort((a, b) => b.sum - a.sum).slice(0, 2).map((c) => c.text);
const bo = await client.completions.create({ ...cand, n: 2, best_of: 4 });
check(JSON.stringify(bo.choices.map((c) => c.text)) === JSON.stringify(best) &&
      bo.choices.map((c) => c.index).join() === "0,1",
      `best_of 4, n 2: the two likeliest of the four candidates (sums ${sums.map((c) => c.sum.toFixed(2))})`);
check(bo.usage.completion_tokens === 32, `best_of: usage counts all four candidates (${bo.usage.completion_tokens})`);
const bo1 = await client.completions.create({ ...cand, best_of: 4, logprobs: 1 });
check(bo1.choices.length === 1 && bo1.choices[0].text === best[0] && bo1.choices[0].logprobs.tokens.length === 8,
      "best_of 4, n 1: the likeliest, with its logprobs");
lines.push(JSON.stringify(bo.choices.map((c) => c.text)));

// echo with logprobs: the prompt's tokens first
const echoReq = { model, prompt: "The quick brown fox", max_tokens: 4, temperature: 0, ignore_eos: true, echo: true,
                  logprobs: 2 };
const echo = await client.completions.create(echoReq);
const el = echo.choices[0].logprobs;
const promptIds = (await post("/tokenize", { prompt: echoReq.prompt })).tokens;
const np = promptIds.length;
check(el.tokens.length === np + 4 && el.token_logprobs[0] === null && el.top_logprobs[0] === null &&
      el.token_logprobs.slice(1).every((x) => x <= 0),
      `echo: ${np} prompt tokens (the first unscored) then 4 generated`);
check(echo.choices[0].text.startsWith(echoReq.prompt) && el.tokens.join("") === echo.choices[0].text,
      "echo: the tokens join up to the echoed prompt and the answer");
check(el.text_offset[0] === 0 && el.text_offset[np] === echoReq.prompt.length &&
      el.text_offset.every((o, i) => i === 0 || o === el.text_offset[i - 1] + [...el.tokens[i - 1]].length),
      `echo: text_offset runs through the prompt and on past it (${el.text_offset})`);
let scored = true;
for (const k of [1, Math.floor(np / 2), np - 1]) {
  const forced = await client.completions.create({ model, prompt: promptIds.slice(0, k), max_tokens: 1, temperature: 0,
                                                  logprobs: 0, logit_bias: { [promptIds[k]]: 100 } });
  const want = forced.choices[0].logprobs.token_logprobs[0];
  scored &&= Math.abs(want - el.token_logprobs[k]) < 1e-4;
  if (Math.abs(want - el.token_logprobs[k]) >= 1e-4) console.log(`  prompt token ${k}: ${el.token_logprobs[k]} vs ${want}`);
}
check(scored, "echo: a prompt token's logprob is the model's for it after the tokens before it");
// a prompt longer than one chunk of scored positions (64): every chunk's rows are scored
const longPrompt = "The quick brown fox jumps over the lazy dog. ".repeat(12);
const longIds = (await post("/tokenize", { prompt: longPrompt })).tokens;
const longEcho = (await client.completions.create({ ...echoReq, prompt: longPrompt, max_tokens: 1 })).choices[0].logprobs;
let longOk = longEcho.tokens.length === longIds.length + 1;
for (const k of [63, 64, 65, 130, longIds.length - 1]) {
  const forced = await client.completions.create({ model, prompt: longIds.slice(0, k), max_tokens: 1, temperature: 0,
                                                  logprobs: 0, logit_bias: { [longIds[k]]: 100 } });
  longOk &&= Math.abs(forced.choices[0].logprobs.token_logprobs[0] - longEcho.token_logprobs[k]) < 1e-4;
}
check(longOk, `echo: a ${longIds.length}-token prompt is scored across its chunks`);
const echoStream = await client.completions.create({ ...echoReq, stream: true });
const es = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
for await (const chunk of echoStream) {
  const l = chunk.choices[0]?.logprobs;
  if (l) for (const key of Object.keys(es)) es[key].push(...l[key]);
}
check(JSON.stringify(es) === JSON.stringify(el), "echo: streamed logprobs equal the whole answer's");
lines.push(JSON.stringify(el));

// refusals
async function refused(body, param, what) {
  try {
    await client.chat.completions.create({ ...chat, max_tokens: 2, ...body });
    check(false, `${what} refused`);
  } catch (e) {
    check(e instanceof OpenAI.BadRequestError && e.param === param, `${what}: 400 "${e.error?.message ?? e.message}"`);
  }
}
await refused({ top_logprobs: 21 }, "top_logprobs", "top_logprobs 21");
await refused({ logit_bias: { 5: 101 } }, "logit_bias", "a bias of 101");
await refused({ logit_bias: { abc: 1 } }, "logit_bias", "a key that is not a token id");
await refused({ logit_bias: { 99999999: 1 } }, "logit_bias", "a token id outside the vocabulary");

try {
  const st = await client.completions.create({ ...cand, best_of: 3, stream: true });
  for await (const _ of st) { /* drain */ }
  check(false, "best_of above n streamed");
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.param === "best_of", `best_of above n, streamed: 400 "${e.error?.message}"`);
}

done();
