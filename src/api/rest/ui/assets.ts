/**
 * The dashboard's page, stylesheet and browser modules, as text (see routes.ts for why they are
 * modules and not files). The browser code is plain ES2020 modules written for the browser: no
 * build step, no library, no CDN. It never writes HTML from data (`h()` builds nodes, text goes
 * in as text), so a pin name cannot inject markup, and the page's CSP allows only its own origin.
 *
 * The source is kept inside `String.raw` templates, so it avoids backticks and dollar-brace.
 *
 * @example
 * ```ts
 * new Response(INDEX_HTML, { headers: { 'Content-Type': 'text/html' } })
 * ```
 */

/** The page at `/ui`. Paths are relative to it: it works under a proxy prefix too. */
export const INDEX_HTML = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>IPFS Cluster</title>
<link rel="stylesheet" href="ui/style.css">
<script type="module" src="ui/app.js"></script>
</head>
<body>
<header>
  <h1>IPFS Cluster</h1>
  <span id="self" class="muted">connecting…</span>
  <nav>
    <a href="#peers" data-view="peers">Peers</a>
    <a href="#graph" data-view="graph">Graph</a>
    <a href="#pins" data-view="pins">Pins</a>
    <a href="#metrics" data-view="metrics">Metrics <span id="alert-count" class="badge" hidden></span></a>
  </nav>
</header>
<ul id="errors" role="alert"></ul>
<main>
<section id="view-peers" hidden>
  <h2>Peers <span id="peers-count" class="muted"></span> <button id="peers-refresh">Refresh</button></h2>
  <table id="peers-table">
    <thead><tr><th>Peer</th><th>Version</th><th>Cluster addresses</th><th>IPFS daemon</th><th>IPFS addresses</th></tr></thead>
    <tbody></tbody>
  </table>
</section>
<section id="view-graph" hidden>
  <h2>Connectivity <button id="graph-refresh">Refresh</button></h2>
  <p class="muted">Blue: cluster peers connected to each other. Green dashed: IPFS daemons connected to each other. Grey: a peer and its IPFS daemon. A ring marks a trusted peer.</p>
  <div id="graph"></div>
</section>
<section id="view-pins" hidden>
  <h2>Pins</h2>
  <div class="forms">
    <form id="pin-form">
      <h3>Pin a CID</h3>
      <input id="pin-cid" placeholder="CID" required size="50">
      <input id="pin-name" placeholder="name (optional)">
      <input id="pin-rmin" type="number" placeholder="repl. min" min="-1" class="num">
      <input id="pin-rmax" type="number" placeholder="repl. max" min="-1" class="num">
      <button id="pin-submit" type="submit">Pin</button>
    </form>
    <form id="add-form">
      <h3>Add a file</h3>
      <input id="add-file" type="file" required>
      <input id="add-name" placeholder="name (optional)">
      <button id="add-submit" type="submit">Add</button>
      <progress id="add-progress" max="1" value="0" hidden></progress>
      <span id="add-percent" class="muted"></span>
      <ul id="add-log"></ul>
    </form>
  </div>
  <form id="search-form" class="search">
    <input id="search-q" type="search" placeholder="search CID or name" size="40">
    <select id="search-type" title="pin type">
      <option value="">any type</option><option value="pin">pin</option>
      <option value="meta-pin">meta-pin</option><option value="clusterdag-pin">clusterdag-pin</option>
      <option value="shard-pin">shard-pin</option>
    </select>
    <select id="search-status" title="status on some peer">
      <option value="">any status</option><option value="pinned">pinned</option>
      <option value="pinning">pinning</option><option value="queued">queued</option>
      <option value="error">error</option><option value="pin_error">pin_error</option>
      <option value="unpin_error">unpin_error</option><option value="remote">remote</option>
      <option value="unexpectedly_unpinned">unexpectedly_unpinned</option>
    </select>
    <select id="search-limit" title="page size">
      <option>20</option><option selected>50</option><option>100</option><option>200</option>
    </select>
    <button id="search-go" type="submit">Search</button>
    <button id="pins-prev" type="button" disabled>‹ Previous</button>
    <button id="pins-next" type="button" disabled>Next ›</button>
    <span id="pins-info" class="muted"></span>
  </form>
  <table id="pins-table">
    <thead><tr><th>CID</th><th>Name</th><th>Type</th><th>Replication</th><th>Status on each peer</th><th></th></tr></thead>
    <tbody></tbody>
  </table>
</section>
<section id="view-metrics" hidden>
  <h2>Alerts <button id="metrics-refresh">Refresh</button></h2>
  <table id="alerts-table">
    <thead><tr><th>Peer</th><th>Metric</th><th>Triggered</th></tr></thead>
    <tbody></tbody>
  </table>
  <p id="alerts-none" class="muted" hidden>No alerts.</p>
  <h2>Metrics</h2>
  <div id="metrics"></div>
</section>
</main>
</body>
</html>
`

/** The stylesheet. */
export const STYLE_CSS = String.raw`
:root { --fg: #1d2330; --muted: #6b7385; --line: #d9dde5; --bg: #f6f7f9; --accent: #2563c9;
  --ok: #1b7f3b; --warn: #a86400; --bad: #b3261e; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); }
body { margin: 0; background: var(--bg); }
header { display: flex; align-items: baseline; gap: 1em; padding: .6em 1.2em; background: #11213d; color: #fff; flex-wrap: wrap; }
header h1 { font-size: 1.2em; margin: 0; }
header .muted { color: #b9c3d6; }
nav { margin-left: auto; display: flex; gap: .3em; }
nav a { color: #dbe4f5; text-decoration: none; padding: .3em .8em; border-radius: 4px; }
nav a.active { background: #2f4a7d; color: #fff; }
main { padding: 0 1.2em 2em; }
h2 { font-size: 1.1em; margin: 1.2em 0 .5em; }
h3 { font-size: 1em; margin: 0 0 .4em; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f6; font-weight: 600; }
td.mono, .mono { font-family: ui-monospace, monospace; font-size: .92em; word-break: break-all; }
.muted { color: var(--muted); }
.badge { background: var(--bad); color: #fff; border-radius: 9px; padding: 0 .5em; font-size: .85em; }
.chip { display: inline-block; margin: 0 .3em .2em 0; padding: 0 .45em; border-radius: 4px; background: #e8ebf1; font-size: .9em; }
.chip[data-status=pinned] { background: #d8f0df; color: var(--ok); }
.chip[data-status=pinning], .chip[data-status=queued], .chip[data-status=pin_queued],
.chip[data-status=unpinning], .chip[data-status=unpin_queued] { background: #fcefd9; color: var(--warn); }
.chip[data-status$=error], .chip[data-status=unexpectedly_unpinned] { background: #f9dedc; color: var(--bad); }
.chip[data-status=remote] { background: #eef1f6; color: var(--muted); }
#errors { list-style: none; margin: 0; padding: 0; }
#errors li { background: #f9dedc; color: var(--bad); padding: .5em 1.2em; border-bottom: 1px solid #efb8b3; }
#errors li button { margin-left: 1em; }
.forms { display: flex; gap: 1em; flex-wrap: wrap; }
.forms form { background: #fff; border: 1px solid var(--line); padding: .7em; flex: 1 1 22em; }
.search { margin: 1em 0 .6em; display: flex; gap: .4em; flex-wrap: wrap; align-items: center; }
input, select, button { font: inherit; padding: .25em .45em; }
input.num { width: 6.5em; }
button { cursor: pointer; }
#add-log { font-family: ui-monospace, monospace; font-size: .9em; padding-left: 1.2em; max-height: 9em; overflow: auto; }
#graph svg { background: #fff; border: 1px solid var(--line); max-width: 100%; height: auto; }
#graph text { font-size: 12px; fill: var(--fg); }
.error-text { color: var(--bad); }
`

/** The connectivity graph: `GET /health/graph` drawn as SVG, laid out on two circles. */
export const GRAPH_JS = String.raw`
const NS = 'http://www.w3.org/2000/svg'

function el(tag, attrs, text) {
  const e = document.createElementNS(NS, tag)
  for (const k of Object.keys(attrs)) e.setAttribute(k, String(attrs[k]))
  if (text !== undefined) e.textContent = text
  return e
}

function short(id) {
  return id.length > 12 ? id.slice(0, 4) + '…' + id.slice(-6) : id
}

/**
 * Cluster peers on an inner circle, each IPFS daemon just outside its peer; lines for cluster
 * links, IPFS links and peer-to-daemon links. Returns the SVG element.
 */
export function drawGraph(graph) {
  const peers = Object.keys(Object.assign({}, graph.id_to_peername, graph.cluster_links)).sort()
  const size = 560
  const c = size / 2
  const r1 = peers.length > 1 ? 150 : 0
  const r2 = r1 + 90
  const pos = {}
  peers.forEach(function (p, i) {
    const a = (2 * Math.PI * i) / Math.max(peers.length, 1) - Math.PI / 2
    pos[p] = { x: c + r1 * Math.cos(a), y: c + r1 * Math.sin(a), a: a }
  })
  const ipfsPos = {}
  for (const p of peers) {
    const ipfs = (graph.cluster_to_ipfs || {})[p]
    if (!ipfs) continue
    const a = pos[p].a
    ipfsPos[ipfs] = { x: c + r2 * Math.cos(a), y: c + r2 * Math.sin(a) }
  }
  const svg = el('svg', { viewBox: '0 0 ' + size + ' ' + size, width: size, height: size, role: 'img' })
  svg.appendChild(el('title', {}, 'cluster connectivity graph'))
  const line = function (a, b, attrs) {
    if (!a || !b) return
    svg.appendChild(el('line', Object.assign({ x1: a.x, y1: a.y, x2: b.x, y2: b.y }, attrs)))
  }
  for (const p of Object.keys(graph.cluster_to_ipfs || {})) {
    line(pos[p], ipfsPos[graph.cluster_to_ipfs[p]], { stroke: '#9aa3b5', 'stroke-width': 1.5, class: 'edge-own' })
  }
  for (const from of Object.keys(graph.ipfs_links || {})) {
    for (const to of graph.ipfs_links[from] || []) {
      if (from < to || !(graph.ipfs_links[to] || []).includes(from)) {
        line(ipfsPos[from], ipfsPos[to], { stroke: '#1b7f3b', 'stroke-width': 1.5, 'stroke-dasharray': '5 4', class: 'edge-ipfs' })
      }
    }
  }
  for (const from of Object.keys(graph.cluster_links || {})) {
    for (const to of graph.cluster_links[from] || []) {
      if (from < to || !(graph.cluster_links[to] || []).includes(from)) {
        line(pos[from], pos[to], { stroke: '#2563c9', 'stroke-width': 2.5, class: 'edge-cluster' })
      }
    }
  }
  for (const ipfs of Object.keys(ipfsPos)) {
    const q = ipfsPos[ipfs]
    const g = el('g', { class: 'node-ipfs', 'data-id': ipfs })
    g.appendChild(el('rect', { x: q.x - 9, y: q.y - 9, width: 18, height: 18, rx: 3, fill: '#d8f0df', stroke: '#1b7f3b' }))
    g.appendChild(el('title', {}, 'IPFS ' + ipfs))
    g.appendChild(el('text', { x: q.x, y: q.y + 24, 'text-anchor': 'middle' }, 'ipfs ' + short(ipfs)))
    svg.appendChild(g)
  }
  for (const p of peers) {
    const q = pos[p]
    const name = (graph.id_to_peername || {})[p] || short(p)
    const g = el('g', { class: 'node-peer', 'data-id': p })
    if ((graph.cluster_trust_links || {})[p]) {
      g.appendChild(el('circle', { cx: q.x, cy: q.y, r: 19, fill: 'none', stroke: '#2563c9', 'stroke-width': 1 }))
    }
    const self = p === graph.cluster_id
    g.appendChild(el('circle', { cx: q.x, cy: q.y, r: 14, fill: self ? '#2563c9' : '#dbe6fa', stroke: '#2563c9', 'stroke-width': 2 }))
    g.appendChild(el('title', {}, name + ' ' + p + (self ? ' (this peer)' : '')))
    g.appendChild(el('text', { x: q.x, y: q.y - 24, 'text-anchor': 'middle' }, name))
    svg.appendChild(g)
  }
  return svg
}
`

/** The page's logic: views, paging, streaming reads, pin/unpin/add. */
export const APP_JS = String.raw`
import { drawGraph } from './graph.js'

const REFRESH_MS = 3000
const $ = function (sel) { return document.querySelector(sel) }
const names = {}

/** An element: attributes (on* are listeners), then children (strings become text). */
function h(tag, attrs) {
  const e = document.createElement(tag)
  for (const k of Object.keys(attrs || {})) {
    const v = attrs[k]
    if (v === undefined || v === null || v === false) continue
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v)
    else if (k === 'text') e.textContent = v
    else e.setAttribute(k, v === true ? '' : String(v))
  }
  for (let i = 2; i < arguments.length; i++) {
    const c = arguments[i]
    if (c === undefined || c === null) continue
    e.append(typeof c === 'string' ? document.createTextNode(c) : c)
  }
  return e
}

function short(id) {
  return id && id.length > 14 ? id.slice(0, 6) + '…' + id.slice(-6) : (id || '')
}

function peerLabel(id) {
  return names[id] ? names[id] + ' (' + short(id) + ')' : short(id)
}

/** Shows an error until dismissed; the same message twice is shown once. */
function showError(err) {
  const msg = err instanceof Error ? err.message : String(err)
  for (const li of document.querySelectorAll('#errors li')) {
    if (li.dataset.msg === msg) return
  }
  const li = h('li', { 'data-msg': msg }, msg)
  li.append(h('button', { type: 'button', onclick: function () { li.remove() } }, 'Dismiss'))
  $('#errors').append(li)
}

/** The REST API's error body says what went wrong: keep its message. */
async function failure(res, what) {
  let msg = res.statusText
  try {
    const body = await res.json()
    if (body && body.message) msg = body.message
  } catch (_) { /* not JSON */ }
  return new Error(what + ': ' + msg + ' (HTTP ' + res.status + ')')
}

async function api(path, opts, what) {
  let res
  try {
    res = await fetch(path, Object.assign({ credentials: 'same-origin' }, opts || {}))
  } catch (err) {
    throw new Error((what || path) + ': cannot reach the peer (' + err.message + ')')
  }
  if (!res.ok) throw await failure(res, what || path)
  return res.status === 204 ? null : res.json()
}

/**
 * Reads an NDJSON stream item by item; stops (and cancels the download) once onItem returns
 * false. A stream cut short (an error after the first item) is an error.
 */
async function ndjson(path, what, onItem) {
  let res
  try {
    res = await fetch(path, { credentials: 'same-origin' })
  } catch (err) {
    throw new Error(what + ': cannot reach the peer (' + err.message + ')')
  }
  if (!res.ok) throw await failure(res, what)
  if (res.status === 204 || !res.body) return
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
  let buf = ''
  try {
    for (;;) {
      const r = await reader.read()
      if (r.done) break
      buf += r.value
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        if (line.trim() === '' ) continue
        if (onItem(JSON.parse(line)) === false) {
          reader.cancel().catch(function () {})
          return
        }
      }
    }
  } catch (err) {
    throw new Error(what + ': the stream broke off (' + err.message + ')')
  }
  if (buf.trim() !== '') onItem(JSON.parse(buf))
}

// ---- header and alert badge ----

async function loadSelf() {
  const id = await api('id', {}, 'this peer')
  names[id.id] = id.peername
  $('#self').textContent = (id.peername || '') + ' ' + short(id.id) + ' · v' + id.version
}

async function refreshAlertCount() {
  const alerts = await api('health/alerts', {}, 'alerts')
  const badge = $('#alert-count')
  badge.textContent = String((alerts || []).length)
  badge.hidden = !alerts || alerts.length === 0
}

// ---- peers ----

async function loadPeers() {
  const tbody = $('#peers-table tbody')
  tbody.replaceChildren()
  let n = 0
  $('#peers-count').textContent = 'loading…'
  try {
    await ndjson('peers', 'peers', function (p) {
      n++
      names[p.id] = p.peername
      const ipfs = p.ipfs || {}
      tbody.append(h('tr', { 'data-peer': p.id },
        h('td', {}, h('strong', {}, p.peername || ''), h('br'), h('span', { class: 'mono' }, p.id),
          p.error ? h('div', { class: 'error-text' }, p.error) : null),
        h('td', {}, p.version || ''),
        h('td', { class: 'mono' }, (p.addresses || []).join('\n')),
        h('td', { class: 'mono' }, ipfs.id || '', ipfs.error ? h('div', { class: 'error-text' }, ipfs.error) : null),
        h('td', { class: 'mono' }, (ipfs.addresses || []).join('\n'))))
    })
  } finally {
    $('#peers-count').textContent = '(' + n + ')'
  }
}

// ---- graph ----

async function loadGraph() {
  const g = await api('health/graph', {}, 'connectivity graph')
  Object.assign(names, g.id_to_peername || {})
  $('#graph').replaceChildren(drawGraph(g))
}

// ---- pins ----

const paging = { cursors: [''], index: 0, next: null, cids: [] }

function pinQuery(after) {
  const p = new URLSearchParams()
  const q = $('#search-q').value.trim()
  if (q) p.set('q', q)
  const t = $('#search-type').value
  if (t) p.set('type', t)
  p.set('limit', $('#search-limit').value)
  if (after) p.set('after', after)
  return p.toString()
}

function statusChips(gpi) {
  const label = (p) => (gpi.peer_map[p].peername || '') + ' ' + p
  const peers = Object.keys(gpi.peer_map || {}).sort((a, b) => label(a) < label(b) ? -1 : 1)
  return peers.map(function (peer) {
    const s = gpi.peer_map[peer]
    if (s.peername) names[peer] = s.peername
    return h('span', {
      class: 'chip', 'data-peer': peer, 'data-status': s.status,
      title: peer + (s.error ? ': ' + s.error : ''),
    }, (s.peername || short(peer)) + ': ' + s.status)
  })
}

function pinRow(pin) {
  const repl = pin.replication_factor_min === undefined ? '' :
    pin.replication_factor_min + ' / ' + pin.replication_factor_max
  return h('tr', { 'data-cid': pin.cid },
    h('td', { class: 'mono' }, pin.cid),
    h('td', {}, pin.name || ''),
    h('td', {}, pin.type || ''),
    h('td', {}, repl),
    h('td', { class: 'status' }, h('span', { class: 'muted' }, '…')),
    h('td', {}, h('button', { type: 'button', class: 'unpin', onclick: function () { unpin(pin.cid) } }, 'Unpin')))
}

function setStatus(gpi) {
  const row = document.querySelector('#pins-table tr[data-cid="' + CSS.escape(gpi.cid) + '"]')
  if (row) row.querySelector('td.status').replaceChildren(...statusChips(gpi))
}

/** Each shown pin's status on every peer (GET /pins?cids=…), streamed in as peers answer. */
async function refreshStatuses() {
  if (paging.cids.length === 0) return
  await ndjson('pins?cids=' + paging.cids.map(encodeURIComponent).join(','), 'pin status', function (g) { setStatus(g) })
}

async function loadPins() {
  const tbody = $('#pins-table tbody')
  const status = $('#search-status').value
  const limit = Number($('#search-limit').value)
  paging.cids = []
  if (status) {
    // No cursor over statuses: read the first page of the filtered stream, then hang up.
    const q = $('#search-q').value.trim().toLowerCase()
    const rows = []
    await ndjson('pins?filter=' + encodeURIComponent(status), 'pins by status', function (g) {
      if (q && !g.cid.toLowerCase().includes(q) && !(g.name || '').toLowerCase().includes(q)) return true
      const row = pinRow({ cid: g.cid, name: g.name, type: '' })
      row.querySelector('td.status').replaceChildren(...statusChips(g))
      rows.push(row)
      paging.cids.push(g.cid)
      return rows.length < limit
    })
    tbody.replaceChildren(...rows)
    paging.next = null
    $('#pins-info').textContent = rows.length + ' pins with status ' + status + (rows.length === limit ? ' (first ' + limit + ')' : '')
    updatePager()
    return
  }
  const page = await api('ui/api/pins?' + pinQuery(paging.cursors[paging.index]), {}, 'pins')
  tbody.replaceChildren(...page.pins.map(pinRow))
  paging.cids = page.pins.map(function (p) { return p.cid })
  paging.next = page.next
  $('#pins-info').textContent = 'page ' + (paging.index + 1) + ': ' + page.pins.length + ' pins' +
    (page.next && page.pins.length < limit ? ' (search goes on: Next)' : '')
  updatePager()
  await refreshStatuses()
}

function updatePager() {
  $('#pins-prev').disabled = paging.index === 0
  $('#pins-next').disabled = !paging.next
}

function newSearch() {
  paging.cursors = ['']
  paging.index = 0
  return loadPins()
}

async function pin(ev) {
  ev.preventDefault()
  const cid = $('#pin-cid').value.trim()
  const p = new URLSearchParams()
  if ($('#pin-name').value) p.set('name', $('#pin-name').value)
  if ($('#pin-rmin').value !== '') p.set('replication-min', $('#pin-rmin').value)
  if ($('#pin-rmax').value !== '') p.set('replication-max', $('#pin-rmax').value)
  await api('pins/' + encodeURIComponent(cid) + '?' + p.toString(), { method: 'POST' }, 'pin ' + cid)
  $('#pin-cid').value = ''
  $('#pin-name').value = ''
  await showPin(cid)
}

/** After pinning or adding: search for the CID, so its row (and status) is what the page shows. */
async function showPin(cid) {
  $('#search-q').value = cid
  $('#search-status').value = ''
  await newSearch()
}

async function unpin(cid) {
  await api('pins/' + encodeURIComponent(cid), { method: 'DELETE' }, 'unpin ' + cid)
  await refreshStatuses()
}

/** POST /add with progress: bytes sent from the upload, then each added block as it streams. */
function add(ev) {
  ev.preventDefault()
  const file = $('#add-file').files[0]
  if (!file) return Promise.reject(new Error('add: choose a file first'))
  const form = new FormData()
  form.append('file', file, file.name)
  const p = new URLSearchParams({ 'stream-channels': 'true' })
  if ($('#add-name').value) p.set('name', $('#add-name').value)
  const bar = $('#add-progress')
  const log = $('#add-log')
  log.replaceChildren()
  bar.hidden = false
  bar.value = 0
  $('#add-submit').disabled = true
  return new Promise(function (resolve, reject) {
    const xhr = new XMLHttpRequest()
    let seen = 0
    let last = null
    const readLines = function () {
      const text = xhr.responseText
      let nl
      while ((nl = text.indexOf('\n', seen)) >= 0) {
        const line = text.slice(seen, nl)
        seen = nl + 1
        if (line.trim() === '') continue
        const o = JSON.parse(line)
        last = o
        log.append(h('li', {}, (o.name || '') + ' ' + (o.cid || '') + (o.size ? ' (' + o.size + ' B)' : '')))
      }
    }
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) return
      bar.value = e.loaded / e.total
      $('#add-percent').textContent = Math.round((100 * e.loaded) / e.total) + '% sent'
    }
    xhr.onprogress = readLines
    xhr.onerror = function () { reject(new Error('add: the upload failed (network error)')) }
    xhr.onload = function () {
      $('#add-submit').disabled = false
      if (xhr.status >= 400) {
        let msg = xhr.statusText
        try { msg = JSON.parse(xhr.responseText).message || msg } catch (_) { /* not JSON */ }
        reject(new Error('add ' + file.name + ': ' + msg + ' (HTTP ' + xhr.status + ')'))
        return
      }
      readLines()
      bar.value = 1
      $('#add-percent').textContent = 'added'
      resolve(last && last.cid ? showPin(last.cid) : undefined)
    }
    xhr.open('POST', 'add?' + p.toString())
    xhr.send(form)
  }).finally(function () { $('#add-submit').disabled = false })
}

// ---- metrics and alerts ----

async function loadMetrics() {
  const alerts = (await api('health/alerts', {}, 'alerts')) || []
  const tbody = $('#alerts-table tbody')
  tbody.replaceChildren(...alerts.map(function (a) {
    return h('tr', { 'data-peer': a.peer, 'data-metric': a.name },
      h('td', {}, peerLabel(a.peer)), h('td', {}, a.name), h('td', {}, a.triggered_at))
  }))
  $('#alerts-none').hidden = alerts.length > 0
  const badge = $('#alert-count')
  badge.textContent = String(alerts.length)
  badge.hidden = alerts.length === 0
  const metricNames = (await api('monitor/metrics', {}, 'metric names')) || []
  const boxes = []
  for (const name of metricNames) {
    const ms = (await api('monitor/metrics/' + encodeURIComponent(name), {}, 'metric ' + name)) || []
    boxes.push(h('h3', {}, name))
    boxes.push(h('table', { 'data-metric': name },
      h('thead', {}, h('tr', {}, h('th', {}, 'Peer'), h('th', {}, 'Value'), h('th', {}, 'Valid'), h('th', {}, 'Expires'))),
      h('tbody', {}, ...ms.map(function (m) {
        return h('tr', { 'data-peer': m.peer },
          h('td', {}, peerLabel(m.peer)), h('td', { class: 'mono' }, m.value),
          h('td', {}, m.valid ? 'yes' : 'no'),
          h('td', {}, new Date(m.expire / 1e6).toISOString()))
      }))))
  }
  $('#metrics').replaceChildren(...boxes)
}

// ---- views ----

const VIEWS = {
  peers: { load: loadPeers },
  graph: { load: loadGraph },
  pins: { load: newSearch, refresh: refreshStatuses },
  metrics: { load: loadMetrics, refresh: loadMetrics },
}
let current = null
let busy = false

function guarded(fn) {
  return (...args) => Promise.resolve().then(() => fn(...args)).catch(showError)
}

function show() {
  const name = VIEWS[location.hash.slice(1)] ? location.hash.slice(1) : 'peers'
  current = name
  for (const v of Object.keys(VIEWS)) $('#view-' + v).hidden = v !== name
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.view === name)
  document.body.dataset.view = name
  return guarded(VIEWS[name].load)()
}

/**
 * Live data of the open view, every few seconds, only while the page is visible: the peer does
 * no work for the dashboard unless a browser asks.
 */
async function tick() {
  if (busy || document.hidden) return
  busy = true
  try {
    await refreshAlertCount()
    const r = VIEWS[current] && VIEWS[current].refresh
    if (r) await r()
  } catch (err) {
    showError(err)
  } finally {
    busy = false
  }
}

function init() {
  window.addEventListener('unhandledrejection', (ev) => showError(ev.reason))
  window.addEventListener('hashchange', show)
  $('#peers-refresh').addEventListener('click', guarded(loadPeers))
  $('#graph-refresh').addEventListener('click', guarded(loadGraph))
  $('#metrics-refresh').addEventListener('click', guarded(loadMetrics))
  $('#pin-form').addEventListener('submit', guarded(pin))
  $('#add-form').addEventListener('submit', guarded(add))
  $('#search-form').addEventListener('submit', guarded(function (ev) { ev.preventDefault(); return newSearch() }))
  $('#pins-next').addEventListener('click', guarded(function () {
    paging.cursors[paging.index + 1] = paging.next
    paging.index++
    return loadPins()
  }))
  $('#pins-prev').addEventListener('click', guarded(function () {
    paging.index = Math.max(0, paging.index - 1)
    return loadPins()
  }))
  guarded(loadSelf)()
  show()
  setInterval(tick, REFRESH_MS)
  document.body.dataset.ready = '1'
}

init()
`
