// Drives the built app in headless Chromium (puppeteer-core with the system's Chromium; no
// browser is downloaded): the page is served by server.py, agentlog from another origin.
// After each step it waits until the chat is `ready` and what the page shows equals GET
// /messages (role, part types, texts, tool states, a subagent's parts inside its call), then
// records both.
//
// Input: one JSON line {"app", "base", "chatId", "apiToken", "chromium", "flags", "prompts":
// {"first", "edited", "slow", "publish", "subagent", "long", "steer", "steering", "attach"},
// "steps": ["steer", "attach"] (the optional steps to run)}.
// Output: one JSON line {"steps": [{"name", "rendered", "server", "status", "error",
// "imagesLoaded"}], "requests": [{"method", "url", "authorization"}], "responses": [{"method",
// "url", "status"}], "pageErrors"}, or
// {"crashed": "..."}.
import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';

const config = JSON.parse(readFileSync(0, 'utf8'));
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

async function serverMessages() {
  const response = await fetch(`${config.base}/v1/sessions/${config.chatId}/messages`, {
    headers: { Authorization: `Bearer ${config.apiToken}` },
  });
  if (!response.ok) throw new Error(`GET /messages: ${response.status}`);
  return (await response.json()).messages;
}

const textOf = parts =>
  parts.filter(p => p.type === 'text').map(p => p.text).join('');

// The form a page can show: role, part types, texts, tool states.
function normal(messages) {
  return messages.map(m => ({
    id: m.id,
    role: m.role,
    parts: m.parts.map(p => {
      const shown = { type: p.type };
      if ('toolCallId' in p) shown.state = p.state;
      if (p.type === 'text' || p.type === 'reasoning') shown.text = p.text;
      if (p.type === 'steering-message') shown.text = textOf(p.parts);
      const metadata = 'toolCallId' in p ? p.callProviderMetadata : p.providerMetadata;
      if (metadata?.agentlog?.parentToolCallId) shown.parent = metadata.agentlog.parentToolCallId;
      return shown;
    }),
  }));
}

// What the page shows, read from the DOM in the same form (src/Parts.tsx marks every part with
// its index, type, state and text; a subagent's parts sit inside its call's part).
function rendered() {
  return [...document.querySelectorAll('[data-message-id]')].map(m => ({
    id: m.dataset.messageId,
    role: m.dataset.role,
    parts: [...m.querySelectorAll('[data-part-index]')]
      .sort((a, b) => Number(a.dataset.partIndex) - Number(b.dataset.partIndex))
      .map(p => {
        const shown = { type: p.dataset.partType };
        if (p.dataset.state !== undefined) shown.state = p.dataset.state;
        const text = p.matches('[data-text]') ? p : p.querySelector(':scope > [data-text]');
        if (text) shown.text = text.textContent;
        // A subagent's part is shown inside the part of the call that started it.
        const call = p.parentElement.closest('[data-tool-call-id]');
        if (call) shown.parent = call.dataset.toolCallId;
        return shown;
      }),
  }));
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const running = messages => messages.at(-1)?.metadata?.status === 'running';

async function main() {
  const browser = await puppeteer.launch({
    executablePath: config.chromium,
    headless: true,
    args: config.flags,
  });
  try {
    return await drive(await browser.newPage());
  } finally {
    await browser.close();
  }
}

async function drive(page) {
  const steps = [];
  const requests = [];
  const responses = [];
  const pageErrors = [];
  page.on('pageerror', error => pageErrors.push(String(error)));
  page.on('response', response => {
    if (response.url().startsWith(config.base)) {
      responses.push({
        method: response.request().method(),
        url: response.url(),
        status: response.status(),
      });
    }
  });
  page.on('request', request => {
    if (request.url().startsWith(config.base)) {
      requests.push({
        method: request.method(),
        url: request.url(),
        authorization: request.headers().authorization ?? null,
      });
    }
  });
  const status = () => page.$eval('main', main => main.dataset.status).catch(() => null);
  let describe = '';

  // Until the chat is ready, the page shows what the log holds, and `done(server)` holds.
  async function settle(name, done) {
    for (const deadline = Date.now() + 90_000; Date.now() < deadline; ) {
      const [now, shown, server] = [await status(), await page.evaluate(rendered), await serverMessages()];
      describe = JSON.stringify({ name, now, shown, server: normal(server) });
      if (now === 'ready' && !running(server) && same(shown, normal(server)) && done(server)) {
        const error = await page.$eval('[data-error]', e => e.textContent).catch(() => null);
        const imagesLoaded = await page.$$eval('img', images =>
          images.every(image => image.complete && image.naturalWidth > 0),
        );
        steps.push({ name, rendered: shown, server, status: now, error, imagesLoaded });
        return server;
      }
      await sleep(100);
    }
    throw new Error(`step "${name}" never settled: ${describe}`);
  }

  async function setValue(selector, value) {
    await page.$eval(
      selector,
      (element, value) => {
        // React listens for `input` events; the value must go through the native setter.
        const setter = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;
        setter.call(element, value);
        element.dispatchEvent(new Event('input', { bubbles: true }));
      },
      value,
    );
  }

  async function send(text) {
    await setValue('textarea[name=prompt]', text);
    await page.click('button[name=send]');
  }

  const lastHas = selector => page.waitForSelector(`article[data-role=assistant]:last-of-type ${selector}`, { timeout: 60_000 });
  const { prompts } = config;
  const lastOf = messages => messages.at(-1);

  await page.goto(`${config.app}/?chat=${encodeURIComponent(config.chatId)}`);
  await page.waitForSelector('main[data-status]');
  await settle('opened', server => server.length === 0);

  await send(prompts.first);
  let server = await settle('sent', server => server.length === 2);

  const answered = lastOf(server).id;
  await page.click('button[name=regenerate]');
  server = await settle('regenerated', server => server.length === 2 && lastOf(server).id !== answered);

  await page.click('article[data-role=user] button[name=edit]');
  await setValue('textarea[name=edited]', prompts.edited);
  await page.click('button[name=save]');
  server = await settle('edited', server => server.length === 2 && textOf(server[0].parts) === prompts.edited);

  // A reload mid-stream: the new page resumes the run from GET /v1/chat/{id}/stream.
  await send(prompts.slow);
  await lastHas('[data-state=input-available]');
  await page.reload();
  server = await settle('reloaded mid-stream', server => server.length === 4);

  // The approval is answered on a page loaded after it was asked.
  await send(prompts.publish);
  await lastHas('button[name=approve]');
  await page.reload();
  // Enabled once the page's chat is ready (the resumed stream has been read).
  await page.waitForSelector('button[name=approve]:not([disabled])', { timeout: 60_000 });
  await page.click('button[name=approve]');
  server = await settle('approved after a reload', server =>
    server.length === 6 && lastOf(server).parts.some(p => p.state === 'output-available'));

  await send(prompts.publish);
  await lastHas('button[name=deny]:not([disabled])');
  await page.click('button[name=deny]');
  server = await settle('denied', server =>
    server.length === 8 && lastOf(server).parts.some(p => p.state === 'output-denied'));

  await send(prompts.subagent);
  server = await settle('subagent', server => server.length === 10);

  await send(prompts.long);
  await lastHas('[data-state=input-available]');
  await page.click('button[name=stop]');
  server = await settle('stopped', server => server.length === 12);

  await send(prompts.first);
  server = await settle('sent after the stop', server => server.length === 14);

  if (config.steps.includes('steer')) {
    // Sent while the run is active, with `steer`: delivered into the running turn.
    await send(prompts.steer);
    await lastHas('[data-state=input-available]');
    await page.click('input[name=steer]');
    await send(prompts.steering);
    const before = server.length;
    server = await settle('steered', server =>
      server.length === before + 2 && lastOf(server).parts.some(p => p.type === 'steering-message'));
    await page.click('input[name=steer]');
  }

  if (config.steps.includes('attach')) {
    const picture = join(mkdtempSync(join(tmpdir(), 'react-chat-')), 'dot.png');
    writeFileSync(picture, Buffer.from(PNG, 'base64'));
    const input = await page.$('input[name=attach]');
    await input.uploadFile(picture);
    await send(prompts.attach);
    const before = server.length;
    server = await settle('attached', server =>
      server.length === before + 2 && server.at(-2).parts.some(p => p.type === 'file'));
  }
  return { steps, requests, responses, pageErrors };
}

// A 1x1 PNG.
const PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

try {
  console.log(JSON.stringify(await main()));
} catch (error) {
  console.log(JSON.stringify({ crashed: String(error?.stack ?? error) }));
}
