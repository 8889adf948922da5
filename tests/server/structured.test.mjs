// Structured output and tool calling through the official OpenAI SDK: response_format
// json_object and json_schema (nested, recursive, enums, patterns, formats), loom's grammar and
// regex extensions, tools with each tool_choice, streamed and parallel tool calls, tool
// messages in the history, and 400s for schemas and grammars that cannot be used. Every
// finished output is validated against its schema with ajv.
//
// The model is the tiny random Qwen3 (real Qwen3 vocabulary and chat template) with its context
// raised to 4096, so its output is noise: only the grammar makes it JSON, which is the point.
// Schemas are bounded (maxLength, maxItems, enums) so that noise still finishes.
import {test, describe, before, after} from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import {startServer, modelPath} from './serve_helper.mjs';

function modelWithContext(name, context) {
  const src = modelPath(name);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-structured-'));
  for (const f of fs.readdirSync(src)) {
    if (f !== 'config.json') fs.symlinkSync(path.join(src, f), path.join(dir, f));
  }
  const config = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8'));
  config.max_position_embeddings = context;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

const ajv = new Ajv2020({strict: false, allErrors: true});
addFormats(ajv);
function assertValid(schema, value, what) {
  const validate = ajv.compile(schema);
  assert.ok(validate(value), `${what}: ${JSON.stringify(value)} fails: ${ajv.errorsText(validate.errors)}`);
}

const SEEDS = [1, 2, 3, 4, 5, 6];

const person = {
  type: 'object',
  properties: {
    name: {type: 'string', maxLength: 12},
    age: {type: 'integer', minimum: 0, maximum: 130},
    email: {type: 'string', format: 'email', maxLength: 24},
    role: {enum: ['admin', 'user', 'guest']},
    code: {type: 'string', pattern: '^[A-Z]{2}-\\d{3}$'},
    address: {
      type: 'object',
      properties: {city: {type: 'string', maxLength: 10}, zip: {type: 'string', pattern: '^\\d{5}$'}},
      required: ['city', 'zip'],
      additionalProperties: false,
    },
    tags: {type: 'array', items: {enum: ['a', 'b', 'c']}, maxItems: 3},
  },
  required: ['name', 'age', 'role', 'code', 'address'],
  additionalProperties: false,
};

const tree = {
  $defs: {
    node: {
      type: 'object',
      properties: {
        v: {enum: [1, 2, 3]},
        kids: {type: 'array', items: {$ref: '#/$defs/node'}, maxItems: 2},
      },
      required: ['v'],
      additionalProperties: false,
    },
  },
  $ref: '#/$defs/node',
};

const tools = [
  {type: 'function', function: {name: 'get_weather', description: 'Current weather in a city',
    parameters: {type: 'object', properties: {city: {type: 'string', maxLength: 10},
                                              unit: {enum: ['celsius', 'fahrenheit']}},
                 required: ['city', 'unit'], additionalProperties: false}}},
  {type: 'function', function: {name: 'add', description: 'Adds two numbers',
    parameters: {type: 'object', properties: {a: {type: 'integer', minimum: 0, maximum: 999},
                                              b: {type: 'integer', minimum: 0, maximum: 999}},
                 required: ['a', 'b'], additionalProperties: false}}},
];
const toolSchema = Object.fromEntries(tools.map((t) => [t.function.name, t.function.parameters]));

describe('structured output and tools with the OpenAI SDK', () => {
  let server, client, model, dir;
  before(async () => {
    dir = modelWithContext('qwen3-tiny-qwen3vocab', 4096);
    server = await startServer(['-m', dir, '--parallel', '8', '--max-queue', '64']);
    client = new OpenAI({apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0});
    model = (await client.models.list()).data[0].id;
  });
  after(async () => {
    assert.equal(await server.stop(), 0, 'SIGTERM exits cleanly');
    fs.rmSync(dir, {recursive: true, force: true});
  });

  const messages = [{role: 'user', content: 'Describe a person as JSON.'}];

  async function finishedOutputs(body, count = SEEDS.length) {
    const rs = await Promise.all(SEEDS.slice(0, count).map((seed) =>
      client.chat.completions.create({model, messages, max_tokens: 2000, seed, ...body})));
    const done = rs.filter((r) => r.choices[0].finish_reason === 'stop');
    assert.ok(done.length >= 1, `no output finished: ${rs.map((r) => r.choices[0].finish_reason)}`);
    return done.map((r) => r.choices[0].message.content);
  }

  test('json_schema: nested object with enums, patterns, formats and bounds', async () => {
    const outs = await finishedOutputs({
      response_format: {type: 'json_schema', json_schema: {name: 'person', schema: person, strict: true}},
    });
    for (const o of outs) assertValid(person, JSON.parse(o), 'person');
  });

  test('json_schema: recursive $ref', async () => {
    const outs = await finishedOutputs({
      response_format: {type: 'json_schema', json_schema: {name: 'tree', schema: tree}},
    });
    for (const o of outs) assertValid(tree, JSON.parse(o), 'tree');
  });

  test('json_schema: enum and const at the top level', async () => {
    const schema = {anyOf: [{enum: ['red', 'green', 'blue']}, {const: 42}]};
    const outs = await finishedOutputs({
      response_format: {type: 'json_schema', json_schema: {name: 'color', schema}},
    });
    for (const o of outs) assertValid(schema, JSON.parse(o), 'color');
  });

  test('json_object: an object, in chat and in completions', async () => {
    const schema = {type: 'object'};
    // Both at once, so that the two grammars share batches.
    const [chat, comp] = await Promise.all([
      client.chat.completions.create({
        model, messages, max_tokens: 1000, seed: 1, response_format: {type: 'json_object'}}),
      client.completions.create({
        model, prompt: 'JSON:', max_tokens: 300, seed: 2,
        response_format: {type: 'json_schema', json_schema: {name: 'p', schema: tree}}})]);
    if (chat.choices[0].finish_reason === 'stop') {
      assertValid(schema, JSON.parse(chat.choices[0].message.content), 'json_object');
    } else {
      // Unbounded JSON from noise may run to max_tokens; what came out is still a JSON prefix.
      assert.equal(chat.choices[0].finish_reason, 'length');
      assert.match(chat.choices[0].message.content.trimStart(), /^\{/);
    }
    if (comp.choices[0].finish_reason === 'stop') assertValid(tree, JSON.parse(comp.choices[0].text), 'completions');
  });

  test('streamed json_schema equals the whole response', async () => {
    const body = {model, messages, max_tokens: 2000, seed: 3,
                  response_format: {type: 'json_schema', json_schema: {name: 'person', schema: person}}};
    const whole = await client.chat.completions.create(body);
    const stream = await client.chat.completions.create({...body, stream: true});
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, whole.choices[0].message.content);
  });

  test('grammar (GBNF) and regex extensions', async () => {
    const grammar = 'root ::= "The answer is " [1-9] [0-9]{0,2} "." | "Yes" | "No"\n';
    for (const seed of SEEDS) {
      const r = await client.chat.completions.create({model, messages, max_tokens: 50, seed, grammar});
      assert.equal(r.choices[0].finish_reason, 'stop');
      assert.match(r.choices[0].message.content, /^(The answer is [1-9][0-9]{0,2}\.|Yes|No)$/);
    }
    for (const seed of SEEDS) {
      const r = await client.completions.create({model, prompt: 'Email:', max_tokens: 50, seed,
                                                 regex: '[a-z]{3,8}@(example|test)\\.(com|org)'});
      assert.equal(r.choices[0].finish_reason, 'stop');
      assert.match(r.choices[0].text, /^[a-z]{3,8}@(example|test)\.(com|org)$/);
    }
  });

  function checkCalls(calls, allowed) {
    assert.ok(calls.length >= 1);
    for (const c of calls) {
      assert.equal(c.type, 'function');
      assert.ok(c.id.length > 0);
      assert.ok(allowed.includes(c.function.name), c.function.name);
      assertValid(toolSchema[c.function.name], JSON.parse(c.function.arguments), c.function.name);
    }
  }

  test('tools: tool_choice required and a named function', async () => {
    const wmsgs = [{role: 'user', content: 'What is the weather in Paris?'}];
    for (const seed of SEEDS.slice(0, 4)) {
      const r = await client.chat.completions.create({model, messages: wmsgs, tools, seed, max_tokens: 1500,
                                                      tool_choice: 'required', parallel_tool_calls: false});
      const c = r.choices[0];
      assert.equal(c.finish_reason, 'tool_calls');
      assert.equal(c.message.tool_calls.length, 1);
      checkCalls(c.message.tool_calls, ['get_weather', 'add']);
    }
    const named = await client.chat.completions.create({
      model, messages: wmsgs, tools, seed: 9, max_tokens: 1500,
      tool_choice: {type: 'function', function: {name: 'add'}}, parallel_tool_calls: false});
    assert.equal(named.choices[0].finish_reason, 'tool_calls');
    assert.equal(named.choices[0].message.tool_calls[0].function.name, 'add');
    checkCalls(named.choices[0].message.tool_calls, ['add']);
  });

  test('tools: parallel calls', async () => {
    // All seeds at once: the server batches them (8 slots), as a busy client's calls would be.
    const rs = await Promise.all(SEEDS.map((seed) => client.chat.completions.create(
        {model, messages, tools, seed, max_tokens: 2500, tool_choice: 'required'})));
    let sawMany = false;
    for (const r of rs) {
      const c = r.choices[0];
      if (c.finish_reason !== 'tool_calls') continue;
      checkCalls(c.message.tool_calls, ['get_weather', 'add']);
      const ids = new Set(c.message.tool_calls.map((t) => t.id));
      assert.equal(ids.size, c.message.tool_calls.length, 'call ids are distinct');
      if (c.message.tool_calls.length > 1) sawMany = true;
    }
    assert.ok(sawMany, 'some answer made several calls');
  });

  test('tools: auto and none', async () => {
    const auto = await client.chat.completions.create({model, messages, tools, seed: 1, max_tokens: 40});
    const c = auto.choices[0];
    if (c.message.tool_calls) checkCalls(c.message.tool_calls, ['get_weather', 'add']);
    else assert.equal(typeof c.message.content, 'string');
    const none = await client.chat.completions.create({model, messages, tools, tool_choice: 'none',
                                                       seed: 1, max_tokens: 20});
    assert.equal(none.choices[0].message.tool_calls, undefined);
  });

  test('tools: streamed calls assemble to the whole response', async () => {
    const body = {model, messages, tools, seed: 4, max_tokens: 1500, tool_choice: 'required',
                  parallel_tool_calls: false};
    const whole = await client.chat.completions.create(body);
    const stream = await client.chat.completions.create({...body, stream: true});
    const calls = [];
    let finish = null, fragments = 0;
    for await (const chunk of stream) {
      const ch = chunk.choices[0];
      if (!ch) continue;
      if (ch.finish_reason) finish = ch.finish_reason;
      for (const d of ch.delta.tool_calls ?? []) {
        if (!calls[d.index]) calls[d.index] = {id: d.id, name: d.function.name, arguments: ''};
        calls[d.index].arguments += d.function.arguments ?? '';
        fragments++;
      }
    }
    assert.equal(finish, whole.choices[0].finish_reason);
    const expected = whole.choices[0].message.tool_calls ?? [];
    assert.equal(calls.length, expected.length);
    for (let i = 0; i < calls.length; i++) {
      assert.equal(calls[i].name, expected[i].function.name);
      assert.equal(calls[i].arguments, expected[i].function.arguments);
    }
    assert.ok(fragments > calls.length, 'arguments arrive in several fragments');
  });

  test('tool results in the history are rendered', async () => {
    const history = [
      {role: 'user', content: 'Weather in Oslo?'},
      {role: 'assistant', content: null, tool_calls: [{id: 'call_1', type: 'function',
        function: {name: 'get_weather', arguments: '{"city": "Oslo", "unit": "celsius"}'}}]},
      {role: 'tool', tool_call_id: 'call_1', content: '{"temperature": -3}'},
    ];
    const r = await client.chat.completions.create({model, messages: history, tools, max_tokens: 5, seed: 1});
    assert.equal(r.object, 'chat.completion');
    assert.ok(r.usage.prompt_tokens > 100);
  });

  test('schemas and grammars that cannot be used are 400s naming the reason', async () => {
    const bad = async (body, re) => {
      await assert.rejects(client.chat.completions.create({model, messages, max_tokens: 5, ...body}),
                           (e) => e.status === 400 && re.test(e.message));
    };
    const js = (schema) => ({response_format: {type: 'json_schema', json_schema: {name: 'x', schema}}});
    await bad(js({type: 'string', format: 'regex'}), /format/);
    await bad(js({$ref: '#/$defs/missing'}), /points nowhere/);
    await bad(js({type: 'string', pattern: '(a'}), /pattern/);
    await bad(js({type: 'string', pattern: '(?<=a)b'}), /pattern|lookbehind|supported/);
    await bad(js({type: 'array', minItems: 1000000}), /minItems|4096|limit|too/);
    await bad(js({type: 'integer', minimum: 5, maximum: 1}), /./);
    await bad({grammar: 'root ::= undefined-rule\n'}, /undefined-rule/);
    await bad({grammar: 'root ::= "a\n'}, /line 1/);
    await bad({regex: '(unclosed'}, /regex/);
    await bad({grammar: 'root ::= "a"\n', regex: 'a'}, /one of/);
    await bad({tools, tool_choice: {type: 'function', function: {name: 'nope'}}}, /nope/);
    await bad({tools: [{type: 'function', function: {name: 'f', parameters: {type: 'object',
      properties: {a: {$ref: '#/nowhere'}}}}}], tool_choice: 'required'}, /tools\[0\]/);
    // The server is still up and answers.
    const ok = await client.chat.completions.create({model, messages, max_tokens: 2});
    assert.equal(ok.object, 'chat.completion');
  });
});
