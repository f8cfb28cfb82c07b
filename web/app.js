/*
 * wallex dashboard: plain standards-based JavaScript, no libraries, no
 * build step. Everything it shows comes from the server's own JSON API on
 * the same origin, called with the operator's bearer token (kept in
 * sessionStorage only: gone when the tab closes).
 *
 * Overview: GET /admin/stats once a second while the overview or the
 * operations section is on screen and the tab is visible. The server sends
 * cumulative counters and per-bucket histogram counts; rates and the
 * percentiles of the last interval are computed here from two samples,
 * divided by the server's own monotonic clock.
 *
 * Data from the server is only ever put into the page as text
 * (textContent), never as markup.
 */
'use strict';

(() => {
  const TOKEN_KEY = 'wallex.token';
  const POLL_MS = 1000;          // the overview's refresh period
  const HEALTH_MS = 5000;        // /readyz's
  const HISTORY_MAX = 60;        // points per sparkline: a minute at POLL_MS
  const PAGE_LIMIT = 20;         // rows per page in the browse views
  const TRAVEL_DEBOUNCE_MS = 150;
  // Amounts keep the exact decimal text the server sent ("100.00"): a
  // double would lose digits past 2^53 minor units and the trailing zeros.
  const MONEY_KEYS = new Set(['balance', 'amount', 'balanceBefore', 'balanceAfter', 'total',
    'unitPrice', 'lineTotal', 'initialBalance']);

  const $ = (id) => document.getElementById(id);

  /* el('td', {class: 'num', text: '3'}, child...) */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') node.textContent = String(v);
      else if (k === 'class') node.className = v;
      else if (k === 'on') for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  /* Writes only what changed: the overview redraws every second, and an
   * unchanged node costs the browser no layout or paint. */
  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  /* Replaces a container's children with `nodes` unless they show the same
   * thing already: same tags, classes and text, element by element. */
  function replaceIfChanged(box, nodes) {
    const old = box.children;
    const same = old.length === nodes.length && nodes.every((n, i) =>
      n.tagName === old[i].tagName && n.className === old[i].className && n.textContent === old[i].textContent);
    if (!same) box.replaceChildren(...nodes);
  }

  function setMsg(node, text, kind) {
    node.textContent = text || '';
    node.classList.toggle('bad', kind === 'bad');
    node.classList.toggle('ok', kind === 'ok');
  }

  /* ---------------- the API ---------------- */

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

  function parseJson(text) {
    try {
      return JSON.parse(text, function (key, value, context) {
        if (typeof value === 'number' && context && typeof context.source === 'string' &&
            (MONEY_KEYS.has(key) || /^[A-Z]{3}$/.test(key))) return context.source;
        return value;
      });
    } catch (e) {
      return null;
    }
  }

  /* Resolves to {status, ok, data}; status 0 when the server could not be
   * reached. Never rejects. */
  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const t = token();
    // Without a token every route but the open ones is 401: say so here
    // rather than ask (the browser logs each refused request as an error).
    // A server run with --auth off takes any text as a token.
    if (!t) {
      noteUnauthorized();
      return { status: 401, ok: false, data: null };
    }
    headers.Authorization = 'Bearer ' + t;
    const init = { method, headers, cache: 'no-store', credentials: 'omit' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let r;
    try {
      r = await fetch(path, init);
    } catch (e) {
      return { status: 0, ok: false, data: null };
    }
    const text = await r.text().catch(() => '');
    const res = { status: r.status, ok: r.ok, data: text ? parseJson(text) : null };
    if (r.status === 401) noteUnauthorized();
    return res;
  }

  /* What a failed call means, for a person. */
  function problemText(res, what) {
    if (res.status === 0) return 'The server cannot be reached.';
    if (res.status === 401) return 'The server wants a valid token (401): paste one above.';
    if (res.status === 403) return 'This token may not ' + (what || 'do this') + ' (403 forbidden).';
    const d = res.data || {};
    const detail = d.detail || d.title || ('HTTP ' + res.status);
    return detail + (d.code ? ' (' + d.code + ')' : '');
  }

  const enc = encodeURIComponent;

  /* ---------------- formatting ---------------- */

  const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  const oneFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

  function fmtRate(x) {
    if (x === null || x === undefined || !isFinite(x)) return '–';
    return x < 10 ? oneFmt.format(x) : intFmt.format(x);
  }
  function fmtInt(x) { return x === null || x === undefined ? '–' : intFmt.format(x); }
  function fmtUs(us) {
    if (us === null || us === undefined) return '–';
    if (us === Infinity) return '> 10 s';
    if (us < 1000) return (us / 1000).toFixed(2) + ' ms';
    if (us < 10000) return (us / 1000).toFixed(1) + ' ms';
    if (us < 1e6) return intFmt.format(us / 1000) + ' ms';
    return (us / 1e6).toFixed(1) + ' s';
  }
  function fmtMs(ms) {
    if (ms === null || ms === undefined) return '–';
    return ms < 1000 ? intFmt.format(ms) + ' ms' : fmtUs(ms * 1000);
  }
  function fmtBytes(b) {
    if (!b) return '–';
    return b >= 1 << 30 ? (b / (1 << 30)).toFixed(2) + ' GiB' : oneFmt.format(b / (1 << 20)) + ' MiB';
  }
  function fmtTime(rfc3339) {
    return rfc3339 ? String(rfc3339).replace('T', ' ').replace('Z', ' UTC') : '–';
  }

  /* ---------------- the token ---------------- */

  function showSession() {
    const t = token();
    $('login').hidden = !!t;
    $('session').hidden = !t;
    $('session-text').textContent = t ? 'Token in use (…' + t.slice(-4) + ')' : '';
  }

  let unauthorizedShown = false;
  function noteUnauthorized() {
    if (unauthorizedShown) return;
    unauthorizedShown = true;
    notice(token() ? 'The server refused this token (401): paste a valid one.'
      : 'Paste a token in the Token field (DATA_DIR/admin.token after a first start; any text when the server runs with --auth off).');
  }

  function notice(text) {
    const n = $('notice');
    n.textContent = text || '';
    n.hidden = !text;
  }

  $('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('token').value.trim();
    if (!t) return;
    sessionStorage.setItem(TOKEN_KEY, t);
    $('token').value = '';
    tokenChanged();
    $('logout').focus();
  });
  $('logout').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    tokenChanged();
    $('token').focus();
  });

  function tokenChanged() {
    unauthorizedShown = false;
    notice('');
    showSession();
    overview.prev = null;
    overview.blocked = false;
    operate.probed = false;
    schedulePoll(0);
    if (current === 'operate') enterOperate();
  }

  /* ---------------- sections ---------------- */

  const SECTIONS = ['overview', 'browse', 'operate'];
  let current = null;

  function showSection(name, focus) {
    if (!SECTIONS.includes(name)) name = 'overview';
    current = name;
    for (const s of SECTIONS) $(s).hidden = s !== name;
    for (const a of document.querySelectorAll('nav a')) {
      if (a.dataset.section === name) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    if (focus) $(name + '-h').focus();
    if (name === 'operate') enterOperate();
    schedulePoll(0);
  }
  window.addEventListener('hashchange', () => showSection(location.hash.slice(1), true));

  /* ---------------- overview ---------------- */

  const TILES = [
    ['commands', 'Commands/s'], ['queries', 'Queries/s'],
    ['cmd-latency', 'Command latency p99'], ['query-latency', 'Query latency p99'],
    ['events', 'Events appended/s'], ['batch', 'Commands per batch'],
    ['commit', 'Commit latency p99'], ['lag', 'Projection lag (max)'],
    ['connections', 'Open connections'], ['rss', 'Resident memory'],
    ['errors', 'Server errors/s'], ['delivery', 'Webhook dead letters'],
  ];

  const overview = { prev: null, history: {}, blocked: false, paused: false, timer: 0, inFlight: false };

  function buildTiles() {
    const box = $('tiles');
    for (const [id, title] of TILES) {
      const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
      svg.setAttribute('viewBox', '0 0 ' + (HISTORY_MAX - 1) + ' 30');
      svg.setAttribute('preserveAspectRatio', 'none');
      svg.setAttribute('aria-hidden', 'true');
      svg.setAttribute('focusable', 'false');
      svg.append(document.createElementNS('http://www.w3.org/2000/svg', 'polyline'));
      box.append(el('div', { class: 'tile', id: 'tile-' + id, role: 'group', 'aria-labelledby': 'tile-' + id + '-h' },
        el('h4', { id: 'tile-' + id + '-h', text: title }),
        el('div', { class: 'value', text: '–' }),
        el('div', { class: 'sub', text: '' }),
        svg));
    }
  }

  function setTile(id, value, sub, point) {
    const tile = $('tile-' + id);
    setText(tile.querySelector('.value'), value);
    setText(tile.querySelector('.sub'), sub || '');
    if (point === undefined || point === null || !isFinite(point)) return;
    const h = overview.history[id] || (overview.history[id] = []);
    h.push(point);
    if (h.length > HISTORY_MAX) h.shift();
    const max = Math.max(...h) || 1;
    const x0 = HISTORY_MAX - h.length;
    tile.querySelector('polyline').setAttribute('points',
      h.map((v, i) => (x0 + i) + ',' + (29 - 28 * v / max).toFixed(1)).join(' '));
  }

  /* Per-bucket differences of two histogram samples (null after a restart). */
  function histDelta(a, b) {
    if (!a || !b) return null;
    const counts = b.counts.map((c, i) => c - a.counts[i]);
    return counts.some((c) => c < 0) ? null : { le: b.le, counts };
  }

  /* The q-quantile of a histogram's counts, interpolated linearly inside
   * its bucket; Infinity when it falls above the last bound. */
  function quantile(h, q) {
    if (!h) return null;
    const total = h.counts.reduce((s, c) => s + c, 0);
    if (!total) return null;
    const rank = q * total;
    let seen = 0;
    for (let i = 0; i < h.counts.length; i++) {
      const c = h.counts[i];
      if (c > 0 && seen + c >= rank) {
        if (i >= h.le.length) return Infinity;
        const lo = i === 0 ? 0 : h.le[i - 1];
        return lo + (h.le[i] - lo) * ((rank - seen) / c);
      }
      seen += c;
    }
    return Infinity;
  }

  function schedulePoll(delay) {
    clearTimeout(overview.timer);
    overview.timer = setTimeout(poll, delay);
  }

  function polling() {
    return !overview.paused && !overview.blocked && document.visibilityState === 'visible' &&
      (current === 'overview' || current === 'operate');
  }

  async function poll() {
    if (!polling() || overview.inFlight) return;
    overview.inFlight = true;
    const res = await api('GET', '/admin/stats');
    overview.inFlight = false;
    if (res.ok && res.data) {
      setMsg($('overview-msg'), '');
      $('overview-msg').hidden = true;
      render(res.data);
    } else {
      const msg = problemText(res, 'see the live overview (it needs an admin token; a reader may browse)');
      setMsg($('overview-msg'), msg, 'bad');
      $('overview-msg').hidden = false;
      // 401/403 do not change by waiting: stop until the token changes.
      if (res.status === 401 || res.status === 403) overview.blocked = true;
    }
    if (polling()) schedulePoll(POLL_MS);
  }

  function render(s) {
    const p = overview.prev;
    const dt = p ? (s.monotonicMs - p.monotonicMs) / 1000 : 0;
    const restarted = p && (s.writer.batches < p.writer.batches || dt <= 0);
    const rate = (a, b) => (p && !restarted ? (a - b) / dt : null);
    const h = s.http;
    const ph = p && p.http;

    const cmdRate = rate(h.commands.requests, ph && ph.commands.requests);
    const qryRate = rate(h.queries.requests, ph && ph.queries.requests);
    setTile('commands', fmtRate(cmdRate), fmtInt(h.commands.requests) + ' in all', cmdRate);
    setTile('queries', fmtRate(qryRate), fmtInt(h.queries.requests) + ' in all', qryRate);

    for (const [tile, kind] of [['cmd-latency', 'commands'], ['query-latency', 'queries']]) {
      const d = p && !restarted ? histDelta(ph[kind].latencyUs, h[kind].latencyUs) : null;
      const p99 = quantile(d, 0.99);
      setTile(tile, fmtUs(p99), 'p50 ' + fmtUs(quantile(d, 0.5)), p99 === Infinity ? null : p99);
    }

    const w = s.writer;
    const pw = p && p.writer;
    const evRate = rate(w.events, pw && pw.events);
    setTile('events', fmtRate(evRate), 'head at ' + s.headPosition, evRate);
    const batches = p && !restarted ? w.batches - pw.batches : 0;
    const perBatch = batches > 0 ? (w.commands - pw.commands) / batches : null;
    setTile('batch', perBatch === null ? '–' : oneFmt.format(perBatch),
      fmtRate(rate(w.batches, pw && pw.batches)) + ' batches/s, queue ' + fmtInt(w.queueDepth), perBatch);
    const commit = p && !restarted ? histDelta(pw.commitUs, w.commitUs) : null;
    const c99 = quantile(commit, 0.99);
    setTile('commit', fmtUs(c99), 'p50 ' + fmtUs(quantile(commit, 0.5)), c99 === Infinity ? null : c99);

    let worst = null;
    for (const pr of s.projections) if (!worst || pr.lag > worst.lag || pr.lagMs > worst.lagMs) worst = pr;
    setTile('lag', worst ? fmtInt(worst.lag) + ' events' : '–',
      worst ? fmtMs(worst.lagMs) + ' behind (' + worst.name + ')' : '', worst ? worst.lag : null);

    setTile('connections', fmtInt(h.openConnections), 'in flight: ' + fmtInt(h.inFlight), h.openConnections);
    setTile('rss', fmtBytes(s.process.residentBytes), '', s.process.residentBytes);
    const errors = ['commands', 'queries', 'operations', 'unmatched'].reduce((sum, k) => sum + h[k].serverErrors, 0);
    const perrors = p ? ['commands', 'queries', 'operations', 'unmatched'].reduce((sum, k) => sum + ph[k].serverErrors, 0) : 0;
    const errRate = rate(errors, perrors);
    setTile('errors', fmtRate(errRate), fmtInt(errors) + ' in all', errRate);
    const wh = s.webhooks;
    setTile('delivery', wh ? fmtInt(wh.deadLetters) : '–',
      wh ? (wh.lag === null ? 'no active subscription' : 'delivery lag ' + fmtInt(wh.lag) + ' events') : 'no webhooks',
      wh ? wh.deadLetters : null);

    renderProjections(s.projections);
    renderBus(s);
    operateFromStats(s);
    $('folders').hidden = !(s.features && s.features.folders);
    setText($('updated'), 'updated ' + String(s.time).slice(11, 19) + ' UTC');
    overview.prev = s; // after a restart, the new baseline
  }

  function statusCell(status) {
    return el('td', { class: 'status-' + status, text: status });
  }

  function renderProjections(list) {
    const body = $('projections').tBodies[0];
    replaceIfChanged(body, list.map((pr) => el('tr', {},
      el('th', { scope: 'row', text: pr.name }),
      statusCell(pr.status),
      el('td', { class: 'num', text: fmtInt(pr.lag) }),
      el('td', { class: 'num', text: fmtMs(pr.lagMs) }),
      el('td', { class: 'wide', text: pr.position + (pr.lastError ? ' — ' + pr.lastError : '') }))));
  }

  function facts(dl, caption, rows) {
    replaceIfChanged(dl, [el('div', { class: 'caption', text: caption }),
      ...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })])]);
  }

  function renderBus(s) {
    const r = s.relay;
    facts($('relay'), 'Redis relay', r ? [['status', r.status + (r.connected ? '' : ' (disconnected)')],
      ['stream', r.name], ['lag', fmtInt(r.lag) + ' events'], ['published', fmtInt(r.published)],
      ['last error', r.lastError || 'none']] : [['status', 'not configured (--redis)']]);
    const w = s.webhooks;
    facts($('webhooks'), 'Webhooks', w ? [['subscriptions', fmtInt(w.subscriptions)],
      ['delivery lag', w.lag === null ? '–' : fmtInt(w.lag) + ' events'],
      ['dead letters', fmtInt(w.deadLetters)], ['retrying', fmtInt(w.retrying)],
      ['in flight', fmtInt(w.inFlight)], ['delivered', fmtInt(w.delivered)],
      ['failed attempts', fmtInt(w.failed)]] : [['status', 'not running']]);
  }

  $('live').addEventListener('click', () => {
    overview.paused = !overview.paused;
    $('live').setAttribute('aria-pressed', String(!overview.paused));
    $('live').textContent = overview.paused ? 'Resume updates' : 'Pause updates';
    if (!overview.paused) { overview.prev = null; schedulePoll(0); }
  });
  document.addEventListener('visibilitychange', () => {
    overview.prev = null; // the next rates start afresh, not across the gap
    schedulePoll(0);
  });

  async function health() {
    const res = await api('GET', '/readyz');
    const pill = $('health');
    pill.textContent = res.ok ? 'ready' : res.status === 0 ? 'unreachable'
      : 'not ready' + (res.data && res.data.detail ? ': ' + res.data.detail : '');
    pill.classList.toggle('ok', res.ok);
    pill.classList.toggle('bad', !res.ok);
    setTimeout(health, HEALTH_MS);
  }

  /* ---------------- browse ---------------- */

  const view = () => $('browse-view');
  const browseMsg = (text, kind) => setMsg($('browse-msg'), text, kind);

  function table(caption, head, rows, id) {
    return el('div', { class: 'table-wrap', role: 'region', 'aria-label': caption, tabindex: '0' },
      el('table', { id },
        el('caption', { class: 'muted', text: caption }),
        el('thead', {}, el('tr', {}, ...head.map(([t, cls]) => el('th', { scope: 'col', class: cls, text: t })))),
        el('tbody', {}, ...rows)));
  }

  function walletButton(id) {
    return el('button', { type: 'button', class: 'linkish', text: id, on: { click: () => openWallet(id) } });
  }
  function transferButton(id) {
    return id ? el('button', { type: 'button', class: 'linkish', text: id, on: { click: () => openTransfer(id) } }) : '–';
  }
  function pager(label, buttons) {
    return el('div', { class: 'pager', role: 'group', 'aria-label': label },
      ...buttons.map(([text, fn, disabled]) => el('button', { type: 'button', text, disabled, on: { click: fn } })));
  }

  /* One wallet: its balance, time travel over its versions, its ledger and
   * its events, each paged by version ("after version N"). */
  const wallet = { id: null, data: null, ledgerAfter: 0, eventsAfter: 0, travel: 0, travelTimer: 0 };

  async function openWallet(id) {
    $('wallet-id').value = id;
    browseMsg('Loading wallet ' + id + '…');
    const res = await api('GET', '/wallets/' + enc(id));
    if (!res.ok) { browseMsg(problemText(res, 'read this wallet'), 'bad'); return; }
    wallet.id = id;
    wallet.data = res.data;
    const v = res.data.version;
    wallet.ledgerAfter = Math.max(0, v - PAGE_LIMIT);
    wallet.eventsAfter = Math.max(0, v - PAGE_LIMIT);
    wallet.travel = v;
    browseMsg('');
    renderWallet();
    await Promise.all([loadLedger(), loadEvents(), travelTo(v)]);
    $('wallet-card-h').focus();
  }

  function renderWallet() {
    const w = wallet.data;
    const range = el('input', { id: 'travel', type: 'range', min: '1', max: String(w.version), step: '1',
      value: String(wallet.travel), 'aria-describedby': 'travel-out' });
    range.addEventListener('input', () => {
      clearTimeout(wallet.travelTimer);
      $('travel-label').textContent = 'Time travel: version ' + range.value + ' of ' + w.version;
      wallet.travelTimer = setTimeout(() => travelTo(Number(range.value)), TRAVEL_DEBOUNCE_MS);
    });
    view().replaceChildren(
      el('div', { class: 'card' },
        el('h3', { id: 'wallet-card-h', tabindex: '-1', text: 'Wallet ' + w.id }),
        el('div', { class: 'balance', id: 'wallet-balance', text: w.balance + ' ' + w.currency }),
        el('dl', { class: 'facts' },
          el('dt', { text: 'owner' }), el('dd', { text: w.ownerId }),
          el('dt', { text: 'version' }), el('dd', { text: String(w.version) }),
          el('dt', { text: 'created' }), el('dd', { text: fmtTime(w.createdAt) }),
          el('dt', { text: 'updated' }), el('dd', { text: fmtTime(w.updatedAt) })),
        el('div', { class: 'travel' },
          el('label', { for: 'travel', id: 'travel-label', text: 'Time travel: version ' + wallet.travel + ' of ' + w.version }),
          range,
          el('output', { id: 'travel-out', for: 'travel', 'aria-live': 'polite' }))),
      el('div', { id: 'ledger-box' }),
      el('div', { id: 'events-box' }));
  }

  async function travelTo(version) {
    wallet.travel = version;
    const id = wallet.id;
    const [state, ev] = await Promise.all([
      api('GET', '/wallets/' + enc(id) + '?atVersion=' + version),
      api('GET', '/wallets/' + enc(id) + '/events?fromVersion=' + version + '&limit=1')]);
    if (wallet.id !== id || wallet.travel !== version) return; // overtaken
    const out = $('travel-out');
    if (!state.ok) { out.textContent = problemText(state, 'read this wallet'); return; }
    const e = ev.ok && ev.data.data[0];
    out.textContent = 'At version ' + version + ': balance ' + state.data.balance + ' ' + state.data.currency +
      (e ? ' — after ' + e.type + ' at ' + fmtTime(e.metadata && e.metadata.occurredAt) : '');
    markTravel();
  }

  function markTravel() {
    const rows = document.querySelectorAll('#wallet-events tbody tr, #wallet-ledger tbody tr');
    for (const tr of rows) {
      const v = Number(tr.dataset.version);
      tr.classList.toggle('future', v > wallet.travel);
      tr.classList.toggle('current', v === wallet.travel);
    }
  }

  function versionPager(label, after, firstShown, lastShown, next, set) {
    const v = wallet.data.version;
    return pager(label, [
      ['Oldest', () => set(0), after === 0],
      ['Previous', () => set(Math.max(0, firstShown - 1 - PAGE_LIMIT)), after === 0],
      ['Next', () => set(lastShown), !next],
      ['Latest', () => set(Math.max(0, v - PAGE_LIMIT)), !next && after >= v - PAGE_LIMIT],
    ]);
  }

  async function loadLedger() {
    const after = wallet.ledgerAfter;
    // The ledger's cursor is "v<N>" (the last version seen): this page and
    // the server are one binary, so it may build one to jump to a version.
    const res = await api('GET', '/wallets/' + enc(wallet.id) + '/ledger?limit=' + PAGE_LIMIT +
      (after > 0 ? '&after=v' + after : ''));
    const box = $('ledger-box');
    if (!box) return;
    if (!res.ok) { box.replaceChildren(el('p', { class: 'msg bad', text: problemText(res, 'read the ledger') })); return; }
    const rows = res.data.data;
    const set = (n) => { wallet.ledgerAfter = n; loadLedger(); };
    box.replaceChildren(
      el('h3', { text: 'Ledger' }),
      versionPager('Ledger pages', after, rows.length ? rows[0].version : after + 1,
        rows.length ? rows[rows.length - 1].version : after, res.data.nextCursor, set),
      table('Ledger entries after version ' + after + ', oldest first',
        [['Version', 'num'], ['Type'], ['Amount', 'num'], ['Balance after', 'num'], ['Description'], ['Transfer'], ['Occurred']],
        rows.map((e) => el('tr', { 'data-version': e.version },
          el('td', { class: 'num', text: e.version }), el('td', { text: e.type }),
          el('td', { class: 'num', text: (e.type === 'DEBIT' ? '−' : '+') + e.amount }),
          el('td', { class: 'num', text: e.balanceAfter }),
          el('td', { class: 'wrap', text: e.description || '' }),
          el('td', {}, transferButton(e.transferId)), el('td', { text: fmtTime(e.occurredAt) }))),
        'wallet-ledger'));
    if (!rows.length) box.append(el('p', { class: 'muted', text: 'No entries on this page.' }));
    markTravel();
  }

  async function loadEvents() {
    const after = wallet.eventsAfter;
    const res = await api('GET', '/wallets/' + enc(wallet.id) + '/events?fromVersion=' + (after + 1) +
      '&limit=' + PAGE_LIMIT);
    const box = $('events-box');
    if (!box) return;
    if (!res.ok) { box.replaceChildren(el('p', { class: 'msg bad', text: problemText(res, 'read the events') })); return; }
    const rows = res.data.data;
    const set = (n) => { wallet.eventsAfter = n; loadEvents(); };
    box.replaceChildren(
      el('h3', { text: 'Events' }),
      versionPager('Event pages', after, rows.length ? rows[0].version : after + 1,
        rows.length ? rows[rows.length - 1].version : after, res.data.nextCursor, set),
      table('Events from version ' + (after + 1) + '; the time-travel version is highlighted',
        [['Version', 'num'], ['Type'], ['Position'], ['Occurred'], ['Data']],
        rows.map((e) => el('tr', { 'data-version': e.version },
          el('td', { class: 'num', text: e.version }), el('td', { text: e.type }),
          el('td', { text: e.position }), el('td', { text: fmtTime(e.metadata && e.metadata.occurredAt) }),
          el('td', { class: 'wrap' }, el('pre', { class: 'data', text: JSON.stringify(e.data) })))),
        'wallet-events'));
    markTravel();
  }

  async function openOwner(owner) {
    browseMsg('Loading wallets of ' + owner + '…');
    const res = await api('GET', '/wallets?ownerId=' + enc(owner) + '&limit=' + PAGE_LIMIT);
    if (!res.ok) { browseMsg(problemText(res, "list this owner's wallets"), 'bad'); return; }
    const rows = res.data.data;
    browseMsg(rows.length ? '' : 'No wallets for owner ' + owner + '.');
    view().replaceChildren(table('Wallets of ' + owner + (res.data.nextCursor ? ' (first ' + rows.length + ')' : ''),
      [['Wallet'], ['Balance', 'num'], ['Version', 'num'], ['Updated']],
      rows.map((w) => el('tr', {}, el('td', {}, walletButton(w.id)),
        el('td', { class: 'num', text: w.balance + ' ' + w.currency }),
        el('td', { class: 'num', text: w.version }), el('td', { text: fmtTime(w.updatedAt) }))),
      'owner-wallets'));
  }

  async function openTransfer(id) {
    $('transfer-id').value = id;
    browseMsg('Loading transfer ' + id + '…');
    const res = await api('GET', '/transfers/' + enc(id));
    if (!res.ok) { browseMsg(problemText(res, 'read this transfer'), 'bad'); return; }
    const t = res.data;
    browseMsg('');
    view().replaceChildren(el('div', { class: 'card' },
      el('h3', { id: 'transfer-h', tabindex: '-1', text: 'Transfer ' + t.transferId }),
      el('div', { class: 'balance', text: t.amount + ' ' + t.currency }),
      el('dl', { class: 'facts' },
        el('dt', { text: 'from' }), el('dd', {}, walletButton(t.fromWalletId)),
        el('dt', { text: 'to' }), el('dd', {}, walletButton(t.toWalletId)),
        el('dt', { text: 'description' }), el('dd', { text: t.description || '' }),
        el('dt', { text: 'created' }), el('dd', { text: fmtTime(t.createdAt) }))));
    $('transfer-h').focus();
  }

  /* Orders by status and customer, newest first, paged by cursor. */
  const orders = { query: '', cursors: [] };

  async function loadOrders(after) {
    const res = await api('GET', '/orders?limit=' + PAGE_LIMIT + orders.query + (after ? '&after=' + enc(after) : ''));
    if (!res.ok) { browseMsg(problemText(res, 'list orders'), 'bad'); return; }
    const rows = res.data.data;
    browseMsg(rows.length ? '' : 'No orders match.');
    const next = res.data.nextCursor;
    view().replaceChildren(
      pager('Order pages', [
        ['Previous', () => { orders.cursors.pop(); loadOrders(orders.cursors[orders.cursors.length - 1]); }, orders.cursors.length === 0],
        ['Next', () => { orders.cursors.push(next); loadOrders(next); }, !next]]),
      table('Orders, newest first', [['Order'], ['Customer'], ['Status'], ['Total', 'num'], ['Items', 'num'], ['Updated']],
        rows.map((o) => el('tr', {},
          el('td', {}, el('button', { type: 'button', class: 'linkish', text: o.orderId, on: { click: () => openOrder(o.orderId) } })),
          el('td', { text: o.customerId }), statusCell(o.status),
          el('td', { class: 'num', text: o.total + ' ' + o.currency }),
          el('td', { class: 'num', text: o.items.length }), el('td', { text: fmtTime(o.updatedAt) }))),
        'orders'));
  }

  async function openOrder(id) {
    const res = await api('GET', '/orders/' + enc(id));
    if (!res.ok) { browseMsg(problemText(res, 'read this order'), 'bad'); return; }
    const o = res.data;
    view().replaceChildren(el('div', { class: 'card' },
      el('h3', { id: 'order-h', tabindex: '-1', text: 'Order ' + o.orderId }),
      el('div', { class: 'balance', text: o.total + ' ' + o.currency }),
      el('dl', { class: 'facts' },
        el('dt', { text: 'status' }), el('dd', { class: 'status-' + o.status, text: o.status }),
        el('dt', { text: 'customer' }), el('dd', { text: o.customerId }),
        el('dt', { text: 'paid from' }), el('dd', {}, o.paidFrom ? walletButton(o.paidFrom) : '–'),
        el('dt', { text: 'version' }), el('dd', { text: o.version }),
        el('dt', { text: 'updated' }), el('dd', { text: fmtTime(o.updatedAt) })),
      table('Items', [['Product'], ['Quantity', 'num'], ['Unit price', 'num'], ['Line total', 'num']],
        o.items.map((i) => el('tr', {}, el('td', { text: i.productId }), el('td', { class: 'num', text: i.quantity }),
          el('td', { class: 'num', text: i.unitPrice }), el('td', { class: 'num', text: i.lineTotal }))))));
    $('order-h').focus();
  }

  /* The folder tree (API.md, Files and folders): shown only once the server
   * has the routes (features.folders in /admin/stats). */
  /* A folder below the root opens as the root in its turn (the tree
   * reaches three levels down); a file says its size and MIME type. */
  function treeNode(item, root) {
    const kids = item.children || [];
    const label = item.kind === 'folder' && !root
      ? el('button', { type: 'button', class: 'linkish', text: item.name, 'aria-label': 'Open folder ' + item.name, on: { click: () => { $('folder-id').value = item.id; openFolder(item.id); } } })
      : el('span', { text: item.name });
    const facts = item.kind === 'folder'
      ? 'folder' + (item.trashed ? ', in the trash' : '')
      : 'file, ' + item.size + ' bytes, ' + item.mimeType;
    return el('li', {}, label, el('span', { class: 'sub', text: ' (' + facts + ')' }),
      kids.length ? el('ul', {}, ...kids.map((k) => treeNode(k, false))) : null);
  }
  async function openFolder(id) {
    const res = await api('GET', '/folders/' + enc(id) + '/tree?depth=3');
    const box = $('folder-tree');
    if (!res.ok) { box.replaceChildren(el('p', { class: 'msg bad', text: problemText(res, 'read this folder') })); return; }
    box.replaceChildren(el('p', { id: 'folder-path', text: res.data.path }),
      el('ul', { class: 'tree', 'aria-label': 'Folder ' + res.data.path }, treeNode(res.data, true)));
  }

  function onSubmit(id, fn) {
    $(id).addEventListener('submit', (ev) => {
      ev.preventDefault();
      const form = ev.target;
      if (!form.reportValidity()) return;
      fn(form);
    });
  }
  onSubmit('wallet-form', () => openWallet($('wallet-id').value.trim()));
  onSubmit('owner-form', () => openOwner($('owner-id').value.trim()));
  onSubmit('transfer-form', () => openTransfer($('transfer-id').value.trim()));
  onSubmit('orders-form', () => {
    const status = $('order-status').value;
    const customer = $('order-customer').value.trim();
    orders.query = (status ? '&status=' + enc(status) : '') + (customer ? '&customerId=' + enc(customer) : '');
    orders.cursors = [];
    browseMsg('Loading orders…');
    loadOrders(null);
  });
  onSubmit('folder-form', () => openFolder($('folder-id').value.trim()));

  /* ---------------- operate ---------------- */

  /* Admin actions: rebuild a projection and watch it, run a drift check,
   * replay a dead letter. The section first asks GET /admin/projections
   * (admin only): refused, every action is disabled and says why. */
  const operate = { probed: false, allowed: false, watching: {} };

  function setAdminEnabled(on) {
    for (const b of document.querySelectorAll('#operate button.admin')) b.disabled = !on;
  }

  async function enterOperate() {
    if (operate.probed) return;
    operate.probed = true;
    const note = $('operate-note');
    setMsg(note, 'Checking what this token may do…');
    const res = await api('GET', '/admin/projections');
    operate.allowed = res.ok;
    if (res.ok) {
      setMsg(note, '');
      renderRebuilds(res.data.data);
    } else {
      setMsg(note, res.status === 403 ? 'Admin actions need an admin token: this token may not use them (403 forbidden).'
        : problemText(res, 'use the admin actions'), 'bad');
      $('rebuilds').tBodies[0].replaceChildren();
    }
    setAdminEnabled(res.ok);
    loadDeadLetters();
  }

  /* Rows are made once per set of read models and then updated in place
   * every second: a control that has the keyboard focus must not be
   * replaced under it. While a rebuild runs its button stays focusable but
   * says it is busy (aria-disabled), rather than losing the focus. */
  function renderRebuilds(list) {
    const body = $('rebuilds').tBodies[0];
    const same = body.rows.length === list.length &&
      list.every((pr, i) => body.rows[i].dataset.name === pr.name);
    if (!same) {
      body.replaceChildren(...list.map((pr) => el('tr', { 'data-name': pr.name },
        el('th', { scope: 'row', text: pr.name }), el('td', {}), el('td', { class: 'num' }),
        el('td', {},
          el('button', { type: 'button', class: 'admin', text: 'Rebuild', 'aria-label': 'Rebuild ' + pr.name,
            on: { click: (ev) => { if (ev.currentTarget.getAttribute('aria-disabled') !== 'true') rebuild(pr.name); } } }),
          ' ',
          el('progress', { max: '1', value: '0', hidden: true, 'aria-label': 'Rebuild of ' + pr.name }),
          el('span', { class: 'progress-text' })))));
    }
    list.forEach((pr, i) => {
      const [, status, lag, action] = body.rows[i].cells;
      setText(status, pr.status);
      status.className = 'status-' + pr.status;
      setText(lag, fmtInt(pr.lag));
      const button = action.querySelector('button');
      button.disabled = !operate.allowed;
      const busy = pr.status === 'rebuilding';
      if (busy) button.setAttribute('aria-disabled', 'true');
      else button.removeAttribute('aria-disabled');
      const w = operate.watching[pr.name];
      const bar = action.querySelector('progress');
      let note = '';
      if (busy && pr.rebuildLag !== undefined) {
        if (w && !w.start) w.start = Math.max(pr.rebuildLag, 1);
        const start = w && w.start ? w.start : Math.max(pr.rebuildLag, 1);
        bar.max = start;
        bar.value = Math.max(0, start - pr.rebuildLag);
        note = fmtInt(pr.rebuildLag) + ' events to go';
      } else if (w && w.done) {
        note = 'rebuilt';
      }
      bar.hidden = !busy;
      setText(action.querySelector('.progress-text'), note);
    });
  }

  /* Called with every stats sample: the rebuilds being watched move. */
  function operateFromStats(s) {
    if (current !== 'operate' || !operate.allowed) return;
    for (const pr of s.projections) {
      const w = operate.watching[pr.name];
      if (w && !w.done && pr.status !== 'rebuilding') {
        // A rebuild is registered before its 202: not rebuilding now means done.
        w.done = true;
        setMsg($('operate-note'), 'Rebuild of ' + pr.name + ' finished.', 'ok');
      }
    }
    renderRebuilds(s.projections);
  }

  async function rebuild(name) {
    setMsg($('operate-note'), 'Starting a rebuild of ' + name + '…');
    const res = await api('POST', '/admin/projections/' + enc(name) + '/rebuild');
    if (!res.ok) { setMsg($('operate-note'), problemText(res, 'rebuild projections'), 'bad'); return; }
    operate.watching[name] = { start: 0, done: false };
    setMsg($('operate-note'), 'Rebuilding ' + name + ': progress below.');
    schedulePoll(0);
  }

  $('drift-run').addEventListener('click', async () => {
    const msg = $('drift-msg');
    setMsg(msg, 'Checking every read model against the log…');
    $('drift-run').disabled = true;
    const res = await api('GET', '/admin/drift');
    $('drift-run').disabled = !operate.allowed;
    if (!res.ok) { setMsg(msg, problemText(res, 'run a drift check'), 'bad'); return; }
    const d = res.data;
    const n = d.driftedCount !== undefined ? d.driftedCount : d.drifted.length;
    setMsg(msg, 'Checked ' + fmtInt(d.checked) + ': ' + (n ? n + ' drifted' : 'no drift'), n ? 'bad' : 'ok');
    $('drift-result').replaceChildren(...(d.drifted.length ? [el('pre', { class: 'data card', text: JSON.stringify(d.drifted, null, 2) })] : []));
  });

  async function loadDeadLetters() {
    const msg = $('dead-msg');
    const body = $('dead-letters').tBodies[0];
    if (!operate.allowed) { body.replaceChildren(); setMsg(msg, ''); return; }
    const res = await api('GET', '/admin/dead-letters?limit=50');
    if (!res.ok) { setMsg(msg, problemText(res, 'list dead letters'), 'bad'); return; }
    const rows = res.data.data;
    setMsg(msg, rows.length ? rows.length + (res.data.nextCursor ? '+' : '') + ' dead letters' : 'No dead letters.');
    body.replaceChildren(...rows.map((d) => el('tr', {},
      el('td', { text: d.deadLetterId }), el('td', { text: d.subscriptionId }), el('td', { text: d.eventId }),
      el('td', { class: 'num', text: d.attempts }), el('td', { class: 'wrap', text: d.lastError }),
      el('td', { text: fmtTime(d.lastAttemptAt) }),
      el('td', {}, el('button', { type: 'button', class: 'admin', text: 'Replay',
        'aria-label': 'Replay dead letter ' + d.deadLetterId, on: { click: (ev) => replay(d.deadLetterId, ev.target) } })))));
  }

  async function replay(id, button) {
    button.disabled = true;
    const res = await api('POST', '/admin/dead-letters/' + enc(id) + '/replay');
    if (!res.ok) { button.disabled = false; setMsg($('dead-msg'), problemText(res, 'replay dead letters'), 'bad'); return; }
    button.textContent = 'Replay requested';
    setMsg($('dead-msg'), 'Dead letter ' + id + ' will be delivered again.', 'ok');
  }
  $('dead-refresh').addEventListener('click', loadDeadLetters);

  /* ---------------- start ---------------- */

  window.addEventListener('unhandledrejection', (ev) => {
    notice('Something went wrong in the page: ' + (ev.reason && ev.reason.message ? ev.reason.message : ev.reason));
    ev.preventDefault();
  });

  buildTiles();
  showSession();
  showSection(location.hash.slice(1) || 'overview', false);
  health();
})();
