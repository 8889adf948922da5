// loom's chat page: talks to this server's own OpenAI endpoints (GET /v1/models, streamed
// POST /v1/chat/completions). No library, nothing fetched from elsewhere. Markdown is rendered
// from escaped text, so model output can never inject markup.
'use strict';

const $ = (id) => document.getElementById(id);
const KEY = 'loom-api-key';
const state = {model: null, history: [], controller: null};

function authHeaders() {
  const key = sessionStorage.getItem(KEY);
  return key ? {Authorization: `Bearer ${key}`} : {};
}

// ---------------------------------------------------------------------------- markdown
function escapeHtml(s) {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

function inline(text) {
  // text is already escaped; code spans first so their contents stay literal.
  const parts = text.split(/(`[^`\n]+`)/g);
  return parts.map((p) => {
    if (p.length > 1 && p.startsWith('`') && p.endsWith('`')) return `<code>${p.slice(1, -1)}</code>`;
    return p
        .replace(/\*\*([^*\n]+)\*\*/g, '<strong>$1</strong>')
        .replace(/(^|[^*])\*([^*\n]+)\*/g, '$1<em>$2</em>')
        .replace(/\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/g,
                 '<a href="$2" target="_blank" rel="noopener noreferrer">$1</a>');
  }).join('');
}

function renderMarkdown(src) {
  const lines = escapeHtml(src).split('\n');
  const out = [];
  let para = [];
  let list = null;  // 'ul' | 'ol'
  const flushPara = () => {
    if (para.length) out.push(`<p>${inline(para.join('<br>'))}</p>`);
    para = [];
  };
  const closeList = () => {
    if (list) out.push(`</${list}>`);
    list = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = line.match(/^\s*```\s*([\w+-]*)\s*$/);
    if (fence) {
      flushPara();
      closeList();
      const code = [];
      for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]); i++) code.push(lines[i]);
      const lang = fence[1] ? ` class="language-${fence[1]}"` : '';
      out.push(`<pre><code${lang}>${code.join('\n')}</code></pre>`);
      continue;
    }
    const heading = line.match(/^(#{1,6})\s+(.*)$/);
    const bullet = line.match(/^\s*[-*+]\s+(.*)$/);
    const numbered = line.match(/^\s*\d+[.)]\s+(.*)$/);
    if (heading) {
      flushPara();
      closeList();
      const n = heading[1].length;
      out.push(`<h${n}>${inline(heading[2])}</h${n}>`);
    } else if (bullet || numbered) {
      flushPara();
      const kind = bullet ? 'ul' : 'ol';
      if (list !== kind) {
        closeList();
        out.push(`<${kind}>`);
        list = kind;
      }
      out.push(`<li>${inline((bullet || numbered)[1])}</li>`);
    } else if (!line.trim()) {
      flushPara();
      closeList();
    } else {
      closeList();
      para.push(line);
    }
  }
  flushPara();
  closeList();
  return out.join('');
}

// ---------------------------------------------------------------------------- page
function addMessage(role, text) {
  const div = document.createElement('div');
  div.className = `msg ${role}`;
  const body = document.createElement('div');
  body.className = 'body';
  div.appendChild(body);
  if (role === 'user') body.textContent = text;
  else body.innerHTML = renderMarkdown(text);
  $('messages').appendChild(div);
  div.scrollIntoView({block: 'end'});
  return div;
}

function setBusy(busy) {
  $('send').hidden = busy;
  $('stop').hidden = !busy;
  $('input').disabled = busy;
}

async function loadModel() {
  let res;
  try {
    res = await fetch('/v1/models', {headers: authHeaders()});
  } catch (e) {
    $('model').textContent = `cannot reach the server (${e.message})`;
    return;
  }
  if (res.status === 401) {
    $('key-form').hidden = false;
    $('model').textContent = 'API key needed';
    if (sessionStorage.getItem(KEY)) {
      $('key-error').hidden = false;
      $('key-error').textContent = 'The server refused that key.';
    }
    $('key').focus();
    return;
  }
  const body = await res.json();
  const m = body.data && body.data[0];
  if (!m) return;
  state.model = m.id;
  $('key-form').hidden = true;
  $('model').textContent = m.id;
  $('context').textContent = m.max_model_len ? `context ${m.max_model_len} tokens` : '';
  $('input').focus();
}

async function send(text) {
  const system = $('system').value.trim();
  state.history.push({role: 'user', content: text});
  addMessage('user', text);
  const bubble = addMessage('assistant', '');
  const body = bubble.querySelector('.body');
  const meta = document.createElement('div');
  meta.className = 'meta';
  bubble.appendChild(meta);
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  let answer = '';
  let chunks = 0;
  let usage = null;
  let finish = null;
  let dropped = false;
  const started = performance.now();
  let firstAt = null;
  const rate = () => {
    const secs = (performance.now() - (firstAt || started)) / 1000;
    const n = usage ? usage.completion_tokens : chunks;
    return secs > 0 && n > 1 ? `${(n / secs).toFixed(1)} tokens/s` : '';
  };
  try {
    let res;
    for (;;) {
      const messages = (system ? [{role: 'system', content: system}] : []).concat(state.history);
      res = await fetch('/v1/chat/completions', {
        method: 'POST',
        headers: {'Content-Type': 'application/json', ...authHeaders()},
        body: JSON.stringify({
          model: state.model, messages, stream: true, stream_options: {include_usage: true},
          temperature: Number($('temperature').value),
          // Unset: as many as the context leaves (the server's default).
          ...($('max-tokens').value ? {max_tokens: Number($('max-tokens').value)} : {}),
        }),
        signal: controller.signal,
      });
      if (res.ok) break;
      const err = await res.json().catch(() => ({}));
      const message = (err.error && err.error.message) || `HTTP ${res.status}`;
      // The conversation outgrew the context: drop the oldest exchange and ask again.
      if (res.status === 400 && /context length/.test(message) && state.history.length > 2) {
        state.history.splice(0, 2);
        dropped = true;
        continue;
      }
      throw new Error(message);
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split('\n')) {
          if (!line.startsWith('data:')) continue;
          const data = line.slice(5).trim();
          if (data === '[DONE]') continue;
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(chunk.error.message);
          if (chunk.usage) usage = chunk.usage;
          const choice = chunk.choices && chunk.choices[0];
          if (!choice) continue;
          if (choice.finish_reason) finish = choice.finish_reason;
          const delta = choice.delta && choice.delta.content;
          if (delta) {
            if (firstAt === null) firstAt = performance.now();
            answer += delta;
            chunks++;
            body.innerHTML = renderMarkdown(answer);
            $('rate').textContent = rate();
            bubble.scrollIntoView({block: 'end'});
          }
        }
      }
    }
  } catch (e) {
    if (e.name === 'AbortError') {
      finish = 'stopped';
    } else {
      finish = 'error';
      const p = document.createElement('p');
      p.className = 'error';
      p.textContent = e.message;
      bubble.appendChild(p);
    }
  } finally {
    state.controller = null;
    setBusy(false);
    $('input').focus();
  }
  const r = rate();
  $('rate').textContent = r || '–';
  meta.textContent = [dropped ? 'older messages dropped to fit the context' : '',
                      finish && finish !== 'stop' ? finish : '', r].filter(Boolean).join(' · ');
  bubble.dataset.finish = finish || '';
  if (answer) state.history.push({role: 'assistant', content: answer});
  else state.history.pop();
}

window.addEventListener('DOMContentLoaded', () => {
  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('input').value.trim();
    if (!text || state.controller || !state.model) return;
    $('input').value = '';
    send(text);
  });
  $('input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $('composer').requestSubmit();
    }
  });
  $('stop').addEventListener('click', () => state.controller && state.controller.abort());
  $('new-chat').addEventListener('click', () => {
    if (state.controller) state.controller.abort();
    state.history = [];
    $('messages').replaceChildren();
    $('rate').textContent = '–';
  });
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, $('key').value.trim());
    $('key').value = '';
    loadModel();
  });
  loadModel();
});
