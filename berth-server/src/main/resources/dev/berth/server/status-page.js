// Berth's status page: reads GET /status/models every two seconds into the model table, and sends
// the test request of the form. Same-origin requests only (the page's Content-Security-Policy).
'use strict';

(() => {
  const POLL_MILLIS = 2000;
  const SAMPLE_TEXT = 'The quick brown fox jumps over the lazy dog.';
  const NONE = '\u2014';

  // Requests go to the page's origin, without the user:password an address may carry.
  const at = (path) => new URL(path, window.location.origin).href;
  const $ = (id) => document.getElementById(id);

  let updates = 0;
  let chosen = null; // the model whose example the form holds
  let path = null; // where the form's request goes
  const generatesText = new Map();

  function perSecond(v) {
    if (v === null || v === undefined) return NONE;
    return v >= 100 ? v.toFixed(0) : v.toFixed(v >= 10 ? 1 : 2);
  }

  function latency(seconds) {
    if (seconds === null || seconds === undefined) return NONE;
    const ms = seconds * 1000;
    if (ms >= 1000) return seconds.toFixed(2) + ' s';
    return (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2)) + ' ms';
  }

  function mean(v) {
    return v === null || v === undefined ? NONE : v.toFixed(1);
  }

  // A table cell whose first class names its column.
  function cell(row, value, classes) {
    const td = document.createElement('td');
    td.textContent = value;
    td.className = classes;
    row.appendChild(td);
    return td;
  }

  function renderTable(status) {
    const rows = [];
    for (const model of status.models) {
      generatesText.set(model.name, model.generates_text);
      for (const v of model.versions) {
        const tr = document.createElement('tr');
        tr.dataset.model = model.name;
        tr.dataset.version = v.version;
        cell(tr, model.name, 'model');
        cell(tr, v.version || NONE, 'version');
        cell(tr, v.state, 'state state-' + v.state.toLowerCase());
        cell(tr, perSecond(v.requests_per_second), 'rps num');
        cell(tr, perSecond(v.server_errors_per_second), 'errors num');
        cell(tr, latency(v.p99_latency_seconds), 'p99 num');
        cell(tr, mean(v.mean_batch_size), 'batch num');
        cell(tr, model.generates_text ? perSecond(v.tokens_per_second) : NONE, 'tokens num');
        cell(tr, v.reason, 'reason');
        rows.push(tr);
      }
    }
    if (rows.length === 0) {
      const tr = document.createElement('tr');
      cell(tr, 'No models are served.', 'empty').colSpan = 9;
      rows.push(tr);
    }
    const table = $('models');
    table.tBodies[0].replaceChildren(...rows);
    table.dataset.updates = String(++updates);

    const badge = $('server-state');
    badge.textContent = status.server.ready ? 'ready' : 'not ready';
    badge.className = 'badge ' + (status.server.ready ? 'ok' : 'bad');
    $('server-version').textContent = 'version ' + status.server.version;
    $('window').textContent =
      status.window_seconds === null
        ? 'Measuring: figures appear after the next update.'
        : 'Figures over the last ' + status.window_seconds.toFixed(1) + ' s, updated every ' +
          POLL_MILLIS / 1000 + ' s (' + new Date().toLocaleTimeString() + ').';
  }

  function renderChoices(status) {
    const select = $('try-model');
    const ready = status.models
      .filter((m) => m.versions.some((v) => v.state === 'READY'))
      .map((m) => m.name);
    const shown = Array.from(select.options, (o) => o.value);
    if (ready.join('\n') !== shown.join('\n')) {
      const keep = select.value;
      select.replaceChildren(...ready.map((name) => new Option(name, name)));
      if (ready.includes(keep)) select.value = keep;
    }
    if (select.value && select.value !== chosen) choose(select.value);
  }

  // A request the model takes, built from its metadata: its inputs with -1 dimensions as 1, zeros
  // (false, a sentence for BYTES) as data. Language models get a chat completion.
  async function example(name) {
    if (generatesText.get(name)) {
      return {
        path: '/v1/chat/completions',
        body: {
          model: name,
          messages: [{ role: 'user', content: 'Say hello in five words.' }],
          max_tokens: 32,
        },
      };
    }
    const model = encodeURIComponent(name);
    const r = await fetch(at('/v2/models/' + model), { cache: 'no-store' });
    if (!r.ok) throw new Error('GET /v2/models/' + name + ' answered ' + r.status);
    const metadata = await r.json();
    // A text input listed first stands for the token tensors after it: a request sends one or
    // the other (as berth bench does).
    const inputs =
      metadata.inputs.length > 1 && metadata.inputs[0].datatype === 'BYTES'
        ? metadata.inputs.slice(0, 1)
        : metadata.inputs;
    return {
      path: '/v2/models/' + model + '/infer',
      body: { inputs: inputs.map(exampleTensor) },
    };
  }

  function exampleTensor(spec) {
    const shape = spec.shape.map((d) => (d < 0 ? 1 : d));
    const size = shape.reduce((a, b) => a * b, 1);
    const value = spec.datatype === 'BYTES' ? SAMPLE_TEXT : spec.datatype === 'BOOL' ? false : 0;
    return { name: spec.name, shape, datatype: spec.datatype, data: new Array(size).fill(value) };
  }

  // JSON with each input tensor on one line, so that long data does not hide the others.
  function pretty(body) {
    if (!Array.isArray(body.inputs)) return JSON.stringify(body, null, 2);
    const tensors = body.inputs.map((t) => '    ' + JSON.stringify(t));
    return '{\n  "inputs": [\n' + tensors.join(',\n') + '\n  ]\n}';
  }

  async function choose(name) {
    chosen = name;
    path = null;
    const status = $('try-status');
    try {
      const e = await example(name);
      if (chosen !== name) return;
      path = e.path;
      $('try-path').textContent = 'POST ' + e.path;
      $('try-body').value = pretty(e.body);
      $('try').dataset.model = name;
      status.textContent = '';
    } catch (err) {
      status.textContent = 'No example: ' + err.message;
      if (chosen === name) chosen = null; // the next update tries again
    }
  }

  async function send(event) {
    event.preventDefault();
    const status = $('try-status');
    const answer = $('try-answer');
    if (path === null) {
      status.textContent = 'Choose a ready model first.';
      return;
    }
    status.textContent = 'Sending\u2026';
    delete status.dataset.status;
    answer.textContent = '';
    const started = performance.now();
    try {
      const r = await fetch(at(path), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: $('try-body').value,
        cache: 'no-store',
      });
      const body = await r.text();
      const ms = Math.round(performance.now() - started);
      status.textContent = r.status + ' ' + r.statusText + ' in ' + ms + ' ms';
      status.dataset.status = String(r.status);
      answer.textContent = body;
    } catch (err) {
      status.textContent = 'Not sent: ' + err.message;
      status.dataset.status = 'failed';
    }
  }

  async function poll() {
    const problem = $('load-error');
    try {
      const r = await fetch(at('/status/models'), {
        cache: 'no-store',
        headers: { Accept: 'application/json' },
      });
      if (!r.ok) throw new Error('GET /status/models answered ' + r.status);
      const status = await r.json();
      renderTable(status);
      renderChoices(status);
      problem.hidden = true;
    } catch (err) {
      problem.textContent = 'Cannot update: ' + err.message;
      problem.hidden = false;
      const badge = $('server-state');
      badge.textContent = 'unreachable';
      badge.className = 'badge bad';
    } finally {
      window.setTimeout(poll, POLL_MILLIS);
    }
  }

  $('try').addEventListener('submit', send);
  $('try-model').addEventListener('change', (e) => choose(e.target.value));
  poll();
})();
