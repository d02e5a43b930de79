#!/usr/bin/env node
// scripted_server.js — a tiny OpenAI-shaped HTTP server with scripted timing, for testing
// pdserve-bench's measurements. Every request streams max_tokens tokens: the first after
//   ttft = --ttft-ms + --ttft-per-input-ms × prompt_tokens
// and each next one --itl-ms after the previous, scheduled against absolute deadlines so delays
// do not accumulate. So TTFT, TPOT, ITL and E2E of each request have exact expected values.
//
// --behaviours a,b,c is applied to requests in arrival order, cycling: normal, http500, reset
// (TCP RST after 2 tokens), truncate (response ends after 2 tokens, no [DONE]), cut (connection
// closed mid-body after 2 tokens), badjson (an invalid JSON event after 2 tokens), errorevent
// (an error object after 2 tokens), hang (2 tokens, then silence), onetoken (a 1-token answer),
// nousage (no usage block even when asked). --split-ms S sends each event in two writes S ms
// apart, the second at the token's deadline (so the client must reassemble events).
//
// --capacity K serves at most K requests at once, first come first served; the rest wait and
// their script starts when a slot frees, like a saturated engine, so latency grows with load
// and a rate sweep has a knee to find. 0 (default) is unlimited.
//
// Usage: node scripted_server.js --port-file F [--port 0] [--ttft-ms 200] [--itl-ms 50]
//          [--ttft-per-input-ms 0] [--behaviours normal] [--split-ms 0] [--capacity 0]
//          [--api-key KEY (then 401 without "Authorization: Bearer KEY")]
// GET /log returns every request received (JSON lines: n, id, behaviour, url, body, writes: when
// each token really left, in ms after the request arrived, and mono: the same on the machine's
// monotonic clock in ms, which pdserve-bench's start_monotonic_ns shares); GET /lateness how late
// the server's own timers were.
'use strict';
const http = require('http');
const fs = require('fs');

function parseArgs(argv) {
  const o = { port: 0, portFile: null, ttftMs: 200, itlMs: 50, ttftPerInputMs: 0,
              behaviours: ['normal'], splitMs: 0, capacity: 0 };
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i], v = argv[i + 1];
    if (v === undefined) throw new Error(`${k} needs a value`);
    if (k === '--port') o.port = Number(v);
    else if (k === '--port-file') o.portFile = v;
    else if (k === '--ttft-ms') o.ttftMs = Number(v);
    else if (k === '--itl-ms') o.itlMs = Number(v);
    else if (k === '--ttft-per-input-ms') o.ttftPerInputMs = Number(v);
    else if (k === '--behaviours') o.behaviours = v.split(',');
    else if (k === '--split-ms') o.splitMs = Number(v);
    else if (k === '--capacity') o.capacity = Number(v);
    else if (k === '--api-key') o.apiKey = v;
    else throw new Error(`unknown option ${k}`);
  }
  return o;
}

const opts = parseArgs(process.argv);
let served = 0;
// Every request received, served at GET /log as JSON lines. Kept in memory: a synchronous
// file write could stall the event loop (and so the scripted timing) when the disk is busy.
const requestLog = [];

function promptTokens(body, chat) {
  if (chat) {
    // One token per word of the messages: a stand-in tokenizer, exact for our own prompts.
    return body.messages.map((m) => String(m.content).split(/\s+/).filter(Boolean).length)
      .reduce((a, b) => a + b, 0);
  }
  if (Array.isArray(body.prompt)) return body.prompt.length;
  return String(body.prompt).split(/\s+/).filter(Boolean).length;
}

function chunk(id, chat, i, model) {
  const text = `tok${i} `;
  const choice = chat ? { index: 0, delta: { content: text }, finish_reason: null }
                      : { index: 0, text, finish_reason: null };
  return { id, object: chat ? 'chat.completion.chunk' : 'text_completion', created: 0, model,
           choices: [choice] };
}

// How late the server itself wrote tokens (timer and event-loop delays), served at GET /lateness,
// so a test that sees a late token can tell whether the server or the client was late.
const lateness = { count: 0, over10: 0, max: 0 };
function noteLateness(deadline) {
  const late = performance.now() - deadline;
  lateness.count++;
  if (late > 10) lateness.over10++;
  if (late > lateness.max) lateness.max = late;
  return deadline + late;
}

const sleepUntil = (t) => new Promise((r) => setTimeout(r, Math.max(0, t - performance.now())));

// Writes one SSE event whose last byte leaves at `deadline`; returns when it really left
// (performance.now()), or null once the client is gone.
async function sendEvent(res, payload, deadline) {
  const ev = `data: ${payload}\n\n`;
  if (opts.splitMs > 0) {
    await sleepUntil(deadline - opts.splitMs);
    if (res.destroyed) return null;
    res.write(ev.slice(0, ev.length >> 1));
    await sleepUntil(deadline);
    if (res.destroyed) return null;
    res.write(ev.slice(ev.length >> 1));
    return noteLateness(deadline);
  }
  await sleepUntil(deadline);
  if (res.destroyed) return null;
  res.write(ev);
  return noteLateness(deadline);
}

// What a misbehaving request does after its second token; true if the stream goes on.
function misbehave(res, behaviour) {
  switch (behaviour) {
    case 'reset': res.socket.resetAndDestroy(); return false;
    case 'truncate': res.end(); return false;
    case 'cut': res.socket.end(); return false;
    case 'badjson': res.write('data: {"choices": [{"text": oops\n\n'); return false;
    case 'errorevent':
      res.write('data: {"error": {"message": "scripted engine failure", "code": 500}}\n\n');
      res.write('data: [DONE]\n\n');
      res.end();
      return false;
    case 'hang': return false;
    default: return true;
  }
}

// Streams one response; entry.writes gets the time each token event really left, in ms after
// entry's request arrived, so tests can tell a late server from a wrong measurement.
async function stream(res, body, chat, behaviour, t0, entry) {
  const id = entry.id, model = body.model || 'scripted';
  const pt = promptTokens(body, chat);
  const maxTokens = behaviour === 'onetoken' ? 1 : Number(body.max_tokens || 16);
  const ttft = opts.ttftMs + opts.ttftPerInputMs * pt;
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  if (chat) {
    // OpenAI's first chat chunk carries only the role: not a token, and sent at once.
    res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', model,
      choices: [{ index: 0, delta: { role: 'assistant' }, finish_reason: null }] })}\n\n`);
  }
  for (let i = 0; i < maxTokens; i++) {
    if (i === 2 && !misbehave(res, behaviour)) return;
    const c = chunk(id, chat, i, model);
    if (i === maxTokens - 1) c.choices[0].finish_reason = 'length';
    const at = await sendEvent(res, JSON.stringify(c), t0 + ttft + i * opts.itlMs);
    if (at === null) return;
    entry.writes.push(Number((at - entry.arrived).toFixed(3)));
    entry.mono.push(Number(process.hrtime.bigint()) / 1e6); // uv_hrtime(), as the client's clock
  }
  const so = body.stream_options;
  if (so && so.include_usage && behaviour !== 'nousage') {
    res.write(`data: ${JSON.stringify({ id, object: chat ? 'chat.completion.chunk' : 'text_completion',
      model, choices: [], usage: { prompt_tokens: pt, completion_tokens: maxTokens,
        total_tokens: pt + maxTokens } })}\n\n`);
  }
  res.write('data: [DONE]\n\n');
  res.end();
}

function handle(req, res, raw, arrived) {
  const chat = req.url === '/v1/chat/completions';
  if (req.method === 'GET' && req.url === '/health') return res.end('ok');
  if (req.method === 'GET' && req.url === '/lateness') return res.end(JSON.stringify(lateness));
  if (req.method === 'GET' && req.url === '/log') {
    return res.end(requestLog.map((e) => JSON.stringify({ ...e, arrived: undefined }) + '\n').join(''));
  }
  if (req.method !== 'POST' || (!chat && req.url !== '/v1/completions')) {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    return res.end('{"error": {"message": "not found"}}');
  }
  if (opts.apiKey && req.headers.authorization !== `Bearer ${opts.apiKey}`) {
    res.writeHead(401, { 'Content-Type': 'application/json' });
    return res.end('{"error": {"message": "invalid API key"}}');
  }
  let body;
  try { body = JSON.parse(raw); } catch (e) {
    res.writeHead(400, { 'Content-Type': 'application/json' });
    return res.end(JSON.stringify({ error: { message: `bad JSON: ${e.message}` } }));
  }
  if (body.model === '__warmup__') {
    // The tests' warm-up (so a cold JIT does not delay the first measured requests): served
    // normally, but neither counted for --behaviours nor logged.
    const warm = { id: 'warmup', arrived, writes: [], mono: [] };
    return admit(() => stream(res, body, chat, 'normal', performance.now(), warm), res);
  }
  const n = served++;
  const behaviour = opts.behaviours[n % opts.behaviours.length];
  const entry = { n, id: `cmpl-${n}`, behaviour, url: req.url, body, arrived, writes: [], mono: [] };
  requestLog.push(entry);
  if (behaviour === 'http500') {
    res.writeHead(500, { 'Content-Type': 'application/json' });
    return res.end('{"error": {"message": "scripted internal error", "type": "server_error"}}');
  }
  admit(() => stream(res, body, chat, behaviour, performance.now(), entry)
    .catch((e) => { console.error(e); res.destroy(); }), res);
}

let busy = 0;
const waiting = [];

// Runs start() now or when a slot frees; the slot is held until the response is closed.
function admit(start, res) {
  if (opts.capacity > 0 && busy >= opts.capacity) {
    waiting.push([start, res]);
    return;
  }
  busy++;
  res.on('close', () => {
    busy--;
    while (waiting.length && (busy < opts.capacity)) {
      const [next, nres] = waiting.shift();
      if (nres.destroyed) continue;
      admit(next, nres);
    }
  });
  start();
}

const server = http.createServer({ noDelay: true }, (req, res) => {
  const parts = [];
  req.on('data', (d) => parts.push(d));
  // The script's clock starts when the request is admitted: once all of it has arrived and,
  // with --capacity, a slot is free.
  req.on('end', () => handle(req, res, Buffer.concat(parts).toString(), performance.now()));
});
server.keepAliveTimeout = 1000;
server.listen(opts.port, '127.0.0.1', () => {
  const port = server.address().port;
  if (opts.portFile) fs.writeFileSync(opts.portFile, `${port}\n`);
  console.log(`scripted server on 127.0.0.1:${port}`);
});
process.on('SIGTERM', () => process.exit(0));
