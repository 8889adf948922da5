// The chat page `loom serve` serves at / in headless Chromium (Debian's chromium driven by
// puppeteer-core): it loads with nothing from outside, shows the model and its context, streams
// an answer through the server's own /v1/chat/completions with tokens/s, stops a generation,
// renders markdown from escaped text, asks for the API key once (session storage), and fits a
// phone-sized screen. Screenshots go to $LOOM_ARTIFACT_DIR.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {spawnSync} from 'node:child_process';
import {after, before, test} from 'node:test';

import puppeteer from 'puppeteer-core';

import {BIN, ROOT, startServer} from './serve_helper.mjs';

const CHROMIUM = process.env.LOOM_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.LOOM_ARTIFACT_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'loom-page-'));
const MODEL = path.join(ROOT, 'models/kjv-llama-6m');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-page-model-'));

let browser;
let server;
const outside = [];  // requests the page made to anywhere but the server

async function openPage(url, viewport = {width: 1280, height: 800}) {
  const page = await browser.newPage();
  await page.setViewport(viewport);
  await page.setRequestInterception(true);
  page.on('request', (r) => {
    if (!r.url().startsWith(url)) {
      outside.push(r.url());
      r.abort();
    } else {
      r.continue();
    }
  });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    // A 400 for a conversation past the context is expected: the page drops old turns and asks
    // again (checked through the answers below).
    if (m.type() === 'error' && !/status of 400/.test(m.text())) errors.push(m.text());
  });
  page.errors = errors;
  await page.goto(`${url}/`, {waitUntil: 'load'});
  return page;
}

async function modelShown(page) {
  await page.waitForFunction(() => {
    const t = document.getElementById('model').textContent;
    return t && t !== 'connecting…' && t !== 'API key needed';
  }, {timeout: 20000});
  return page.$eval('#model', (e) => e.textContent);
}

// Sends a message and counts the updates of the answer while it streams.
async function sendMessage(page, text) {
  await page.evaluate(() => {
    window.__updates = 0;
    new MutationObserver(() => window.__updates++).observe(
        document.getElementById('messages'), {childList: true, subtree: true, characterData: true});
  });
  await page.click('#input');
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing (scripts/install-deps.sh installs chromium)`);
  fs.mkdirSync(ARTIFACTS, {recursive: true});
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  server = await startServer(['-m', MODEL]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  fs.rmSync(TMP, {recursive: true, force: true});
});

test('the page streams an answer with the model, its context and tokens/s', async () => {
  const page = await openPage(server.url);
  assert.equal(await modelShown(page), 'kjv-llama-6m');
  assert.match(await page.$eval('#context', (e) => e.textContent), /context \d+/);
  await sendMessage(page, 'Who created the heaven and the earth?');
  await page.waitForFunction(() => !document.getElementById('send').hidden &&
                                   document.querySelector('.msg.assistant .meta')?.textContent,
                             {timeout: 60000});
  const answer = await page.$eval('.msg.assistant .body', (e) => e.textContent);
  assert.ok(answer.trim().length > 0, 'an answer');
  assert.ok(await page.evaluate(() => window.__updates) > 3, 'the answer arrived in pieces');
  assert.match(await page.$eval('.msg.assistant .meta', (e) => e.textContent), /tokens\/s/);
  assert.match(await page.$eval('#rate', (e) => e.textContent), /tokens\/s/);
  // A second turn carries the history.
  await sendMessage(page, 'And then?');
  await page.waitForFunction(() => document.querySelectorAll('.msg.assistant .meta').length === 2 &&
                                   !document.getElementById('send').hidden, {timeout: 60000});
  assert.equal(await page.$$eval('.msg.assistant .error', (e) => e.length), 0);
  await page.screenshot({path: path.join(ARTIFACTS, 'chat-page-desktop.png')});
  assert.deepEqual(page.errors, []);
  assert.deepEqual(outside, [], 'the page fetched nothing from outside the server');
  await page.close();
});

test('markdown is rendered from escaped text', async () => {
  const page = await openPage(server.url);
  const html = await page.evaluate(() => renderMarkdown(
      '# Title\n**bold** and *it* and `a<b`\n\n- one\n- two\n\n```js\nif (a < b) {}\n```\n' +
      '<img src=x onerror=alert(1)> [ok](https://example.com) [bad](javascript:alert(1))'));
  assert.match(html, /<h1>Title<\/h1>/);
  assert.match(html, /<strong>bold<\/strong>/);
  assert.match(html, /<em>it<\/em>/);
  assert.match(html, /<code>a&lt;b<\/code>/);
  assert.match(html, /<ul><li>one<\/li><li>two<\/li><\/ul>/);
  assert.match(html, /<pre><code class="language-js">if \(a &lt; b\) \{\}<\/code><\/pre>/);
  assert.match(html, /&lt;img src=x onerror=alert\(1\)&gt;/);
  assert.match(html, /<a href="https:\/\/example.com"/);
  assert.doesNotMatch(html, /href="javascript/);
  await page.close();
});

test('the stop button ends a generation and the page goes on', async () => {
  // A larger random-weight model with the same tokenizer writes slowly enough to stop.
  const slow = path.join(TMP, 'slow');
  const synth = spawnSync(BIN, ['synth', '--hidden', '768', '--layers', '12', '--heads', '12',
                                '--ffn', '2048', '--context', '4096', '--vocab-from', MODEL,
                                '-o', slow], {encoding: 'utf8'});
  assert.equal(synth.status, 0, synth.stderr);
  const slowServer = await startServer(['-m', slow]);
  try {
    const page = await openPage(slowServer.url);
    await modelShown(page);
    await page.$eval('#max-tokens', (e) => (e.value = '3000'));
    await sendMessage(page, 'Tell me everything.');
    await page.waitForFunction(() => document.querySelector('.msg.assistant .body')?.textContent.length > 20,
                               {timeout: 60000});
    assert.equal(await page.$eval('#stop', (e) => e.hidden), false);
    await page.click('#stop');
    await page.waitForFunction(() => !document.getElementById('send').hidden, {timeout: 10000});
    assert.equal(await page.$eval('.msg.assistant', (e) => e.dataset.finish), 'stopped');
    const stopped = await page.$eval('.msg.assistant .body', (e) => e.textContent.length);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await page.$eval('.msg.assistant .body', (e) => e.textContent.length), stopped,
                 'no text after stop');
    assert.equal(await page.$eval('#input', (e) => e.disabled), false);
    await page.close();
  } finally {
    await slowServer.stop();
  }
});

test('the API key is asked once and kept for the session', async () => {
  const keyed = await startServer(['-m', MODEL, '--api-key', 'sesame']);
  try {
    const page = await openPage(keyed.url);
    await page.waitForSelector('#key-form:not([hidden])', {timeout: 20000});
    await page.type('#key', 'wrong');
    await page.click('#key-form button');
    await page.waitForSelector('#key-error:not([hidden])', {timeout: 10000});
    await page.type('#key', 'sesame');
    await page.click('#key-form button');
    assert.equal(await modelShown(page), 'kjv-llama-6m');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('loom-api-key')), 'sesame');
    // A reload in the same tab needs no key.
    await page.reload({waitUntil: 'load'});
    assert.equal(await modelShown(page), 'kjv-llama-6m');
    await sendMessage(page, 'In the beginning');
    await page.waitForFunction(() => document.querySelector('.msg.assistant .meta')?.textContent,
                               {timeout: 60000});
    assert.equal(await page.$$eval('.msg.assistant .error', (e) => e.length), 0);
    await page.close();
  } finally {
    await keyed.stop();
  }
});

test('the page fits a phone-sized screen', async () => {
  const page = await openPage(server.url, {width: 390, height: 844, deviceScaleFactor: 2,
                                           isMobile: true, hasTouch: true});
  await modelShown(page);
  await sendMessage(page, 'In the beginning God created');
  await page.waitForFunction(() => document.querySelector('.msg.assistant .meta')?.textContent,
                             {timeout: 60000});
  const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  assert.ok(fits, 'no horizontal scrolling');
  const composer = await page.$eval('#composer', (e) => e.getBoundingClientRect().bottom);
  assert.ok(composer <= 844, 'the message box is on screen');
  await page.screenshot({path: path.join(ARTIFACTS, 'chat-page-phone.png')});
  await page.close();
});
