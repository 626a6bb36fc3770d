// Drives real y-websocket 3.1.0 clients (WebsocketProvider on the `ws` package) against a server
// for the interop tests of package yjs: `node driver.mjs <scenario> '<json args>'`. It prints one
// line of JSON with what the clients saw; the Go test asserts on it. A failed wait prints
// {"error": "..."} and exits with status 1.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const [scenario, rawArgs = '{}'] = process.argv.slice(2)
const args = JSON.parse(rawArgs)
const providers = []

const connect = (url, room, opts = {}) => {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(url, room, doc, {
    WebSocketPolyfill: WebSocket, disableBc: true, maxBackoffTime: 300, ...opts
  })
  providers.push(provider)
  return { doc, provider, awareness: provider.awareness, text: doc.getText('t'), map: doc.getMap('m') }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const waitUntil = async (what, cond, ms = 15000) => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what)
    await sleep(10)
  }
}

const synced = (c, what) => waitUntil(what + ' to sync', () => c.provider.synced)

// mapJSON renders a Y.Map as JSON with sorted keys, so two replicas compare as strings.
const mapJSON = (map) => {
  const o = map.toJSON()
  return JSON.stringify(Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]])))
}

const peerStates = (c) => {
  const out = {}
  c.awareness.getStates().forEach((state, id) => {
    if (id !== c.doc.clientID) out[id] = state
  })
  return out
}

const seesUser = (c, user) => Object.values(peerStates(c)).some((s) => s.user === user)

const same = (a, b) => a.text.toString() === b.text.toString() && mapJSON(a.map) === mapJSON(b.map)

const state = (c) => ({ text: c.text.toString(), map: mapJSON(c.map) })

// randomEdits makes n small edits, yielding to the event loop between them so that two clients'
// edits interleave on the wire.
const randomEdits = async (c, tag, n) => {
  for (let i = 0; i < n; i++) {
    const len = c.text.length
    if (len > 4 && i % 5 === 4) {
      c.text.delete(Math.floor(Math.random() * (len - 2)), 2)
    } else {
      c.text.insert(Math.floor(Math.random() * (len + 1)), tag + i + ' ')
    }
    c.map.set(tag + (i % 7), i)
    if (i % 3 === 0) await sleep(0)
  }
}

const scenarios = {
  // Two clients (on one server or two) edit a Y.Text and a Y.Map concurrently, delete, and converge.
  async converge ({ urls, room }) {
    const a = connect(urls[0], room)
    const b = connect(urls[1] ?? urls[0], room)
    await synced(a, 'a')
    await synced(b, 'b')
    await Promise.all([randomEdits(a, 'A', 60), randomEdits(b, 'B', 60)])
    a.text.insert(0, 'HEAD ')
    b.map.set('shared', 'from-b')
    a.map.set('shared', 'from-a') // concurrent writes to one key: both replicas pick the same winner
    await waitUntil('convergence', () => same(a, b) && a.text.toString().includes('HEAD') && b.map.has('A0') && a.map.has('B0'))
    // Deletes propagate.
    b.text.delete(0, 5)
    a.map.delete('A0')
    await waitUntil('deletes to converge', () => same(a, b) && !a.text.toString().startsWith('HEAD') && !b.map.has('A0'))
    return { a: state(a), b: state(b) }
  },

  // Awareness both ways; a client killed without a close frame disappears from the others'
  // awareness because the server removed it (not by the clients' 30 s timeout).
  async awareness ({ urls, room }) {
    const a = connect(urls[0], room)
    const b = connect(urls[1] ?? urls[0], room)
    a.awareness.setLocalStateField('user', 'alice')
    b.awareness.setLocalStateField('user', 'bob')
    await synced(a, 'a')
    await synced(b, 'b')
    await waitUntil('a to see bob', () => seesUser(a, 'bob'))
    await waitUntil('b to see alice', () => seesUser(b, 'alice'))

    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'peer',
      JSON.stringify({ url: urls[urls.length - 1], room, user: 'victim' })], { stdio: ['ignore', 'pipe', 'inherit'] })
    let victim = null
    child.stdout.on('data', (d) => { victim = victim ?? Number(String(d).trim()) })
    await waitUntil('the victim to start', () => victim !== null)
    await waitUntil('a to see the victim', () => peerStates(a)[victim]?.user === 'victim')
    await waitUntil('b to see the victim', () => peerStates(b)[victim]?.user === 'victim')
    let removedBy = null
    a.awareness.on('change', ({ removed }, origin) => {
      if (removed.includes(victim)) removedBy = origin === 'timeout' ? 'timeout' : 'server'
    })
    child.kill('SIGKILL') // no close frame: the server sees the TCP connection drop
    await waitUntil('the victim to leave a\'s awareness', () => removedBy !== null, 40000)
    await waitUntil('the victim to leave b\'s awareness', () => !(victim in peerStates(b)), 40000)
    // The survivors still see each other.
    return { aSeesBob: seesUser(a, 'bob'), bSeesAlice: seesUser(b, 'alice'), victimRemovedBy: removedBy }
  },

  // A client edits while disconnected; its edits merge after it reconnects.
  async offline ({ urls, room }) {
    const a = connect(urls[0], room)
    const b = connect(urls[1] ?? urls[0], room)
    await synced(a, 'a')
    await synced(b, 'b')
    a.text.insert(0, 'shared ')
    await waitUntil('b to get the first edit', () => b.text.toString() === 'shared ')
    b.provider.disconnect()
    await waitUntil('b to disconnect', () => !b.provider.wsconnected)
    a.text.insert(a.text.length, 'online ')
    a.map.set('online', true)
    b.text.insert(0, 'offline ')
    b.map.set('offline', true)
    await sleep(100)
    const bWhileOffline = b.text.toString()
    b.provider.connect()
    await waitUntil('convergence after reconnecting', () => same(a, b) && a.map.has('offline') && b.map.has('online'))
    return { a: state(a), b: state(b), bWhileOffline }
  },

  // A client joins after another edited and published its awareness: it gets both from the server.
  async latejoin ({ urls, room }) {
    const a = connect(urls[0], room)
    a.awareness.setLocalStateField('user', 'early')
    await synced(a, 'a')
    a.text.insert(0, 'written before you came')
    a.map.set('k', 'v')
    await sleep(50)
    const c = connect(urls[1] ?? urls[0], room)
    await synced(c, 'the late joiner')
    await waitUntil('the late joiner to get the text', () => same(a, c))
    await waitUntil('the late joiner to see early', () => seesUser(c, 'early'))
    return { late: state(c), seesEarly: seesUser(c, 'early') }
  },

  // Writes text and a map entry, and returns once a second client has received them (so the
  // server holds them), then disconnects everybody.
  async write ({ url, room, text }) {
    const w = connect(url, room)
    await synced(w, 'the writer')
    w.text.insert(w.text.length, text)
    w.map.set(text, text.length)
    const o = connect(url, room)
    await synced(o, 'the observer')
    await waitUntil('the observer to get the edit', () => same(w, o))
    return state(w)
  },

  // Reads a room.
  async read ({ url, room }) {
    const r = connect(url, room)
    await synced(r, 'the reader')
    await sleep(50)
    return state(r)
  },

  // A read-only client's edit is refused with the permission-denied message and never reaches
  // the others; it still receives their edits.
  async readonly ({ url, room }) {
    const w = connect(url, room)
    const r = connect(url, room, { params: { view: '1' } })
    let denied = null
    const auth = r.provider.messageHandlers[2]
    r.provider.messageHandlers[2] = (encoder, decoder, provider, emitSynced, type) => {
      const warn = console.warn
      console.warn = (msg) => { denied = String(msg) }
      try { auth(encoder, decoder, provider, emitSynced, type) } finally { console.warn = warn }
    }
    await synced(w, 'the writer')
    await synced(r, 'the read-only client')
    r.text.insert(0, 'evil ')
    r.map.set('evil', true)
    await waitUntil('the permission-denied message', () => denied !== null)
    w.text.insert(0, 'good')
    await waitUntil('the read-only client to get the writer\'s edit', () => r.text.toString().includes('good'))
    return { denied, writer: state(w), readOnly: state(r) }
  },

  // n clients join one room one after the other (each once the previous one synced), each with a
  // user name in its awareness. Every stock client re-sends each remote awareness change it
  // applies, so a joiner relays the states of everybody already there. Returns, per client, how
  // many users it sees (itself included) once all see n or 20 s passed, and every close the
  // clients saw before the end.
  async crowd ({ url, room, n }) {
    const clients = []
    const closes = []
    for (let i = 0; i < n; i++) {
      const c = connect(url, room)
      c.awareness.setLocalStateField('user', 'u' + i)
      c.provider.on('connection-close', (event) => {
        if (event) closes.push({ client: i, code: event.code, reason: event.reason })
      })
      clients.push(c)
      await synced(c, 'client ' + i)
    }
    const users = (c) => [...c.awareness.getStates().values()].filter((s) => s.user).length
    const end = Date.now() + 20000
    while (Date.now() < end && !clients.every((c) => users(c) === n)) await sleep(20)
    await sleep(200) // a close that follows the last relays is still counted
    return { seen: clients.map(users), closes }
  },

  // Two clients see each other; then the Go test restarts the server (the same address, a new
  // process with the same store), and both reconnect. Returns, for each, the seconds from its
  // reconnection to the moment it sees the other again, and how many peers it sees then.
  async restart ({ url, room }) {
    const a = connect(url, room)
    const b = connect(url, room)
    a.awareness.setLocalStateField('user', 'alice')
    b.awareness.setLocalStateField('user', 'bob')
    await synced(a, 'a')
    await synced(b, 'b')
    await waitUntil('a to see bob', () => seesUser(a, 'bob'))
    await waitUntil('b to see alice', () => seesUser(b, 'alice'))
    // A change right before the restart: each client renews its state 15 s after its last change,
    // so a reconnection that waits for the renewal takes about that long.
    a.awareness.setLocalStateField('phase', 'before')
    b.awareness.setLocalStateField('phase', 'before')
    const phased = (c, user) => Object.values(peerStates(c)).some((s) => s.user === user && s.phase === 'before')
    await waitUntil('the change to cross', () => phased(a, 'bob') && phased(b, 'alice'))
    const track = (c, other) => {
      const t = { down: null, up: null, sees: null, peers: 0 }
      c.provider.on('status', ({ status }) => {
        if (status === 'disconnected' && t.down === null) t.down = Date.now()
        if (status === 'connected' && t.down !== null && t.up === null) t.up = Date.now()
      })
      const poll = setInterval(() => {
        if (t.up !== null && t.sees === null && seesUser(c, other)) {
          t.sees = Date.now()
          t.peers = Object.keys(peerStates(c)).length
        }
      }, 5)
      return { t, stop: () => clearInterval(poll) }
    }
    const ta = track(a, 'bob')
    const tb = track(b, 'alice')
    process.stdout.write(JSON.stringify({ ready: true }) + '\n')
    await waitUntil('both to reconnect and see each other again', () => ta.t.sees !== null && tb.t.sees !== null, 45000)
    ta.stop()
    tb.stop()
    const secs = (from, to) => (to - from) / 1000
    return {
      aReconnected: secs(ta.t.down, ta.t.up),
      bReconnected: secs(tb.t.down, tb.t.up),
      aSeesBob: secs(ta.t.up, ta.t.sees),
      bSeesAlice: secs(tb.t.up, tb.t.sees),
      aPeers: ta.t.peers,
      bPeers: tb.t.peers
    }
  },

  // Child process for `awareness`: connects, publishes its awareness, prints its client ID, and
  // waits to be killed.
  async peer ({ url, room, user }) {
    const p = connect(url, room)
    p.awareness.setLocalStateField('user', user)
    await synced(p, 'the peer')
    process.stdout.write(p.doc.clientID + '\n')
    await new Promise(() => {})
  }
}

const run = scenarios[scenario]
if (!run) {
  console.log(JSON.stringify({ error: 'unknown scenario ' + scenario }))
  process.exit(2)
}
try {
  const result = await run(args)
  providers.forEach((p) => p.destroy())
  console.log(JSON.stringify(result))
  process.exit(0)
} catch (err) {
  console.log(JSON.stringify({ error: String(err && err.message ? err.message : err) }))
  process.exit(1)
}
