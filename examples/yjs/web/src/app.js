// The collaborative text page: one shared Y.Text bound to a <textarea>, the connection status,
// and who is here (awareness). Built into ../dist/app.js by ../../build.sh (esbuild); the Go
// server embeds the built file, so running the example needs no npm.

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const page = document.body.dataset
const room = page.room
const serverUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/yjs'

const doc = new Y.Doc()
const text = doc.getText('text')
// disableBc: tabs of one browser talk through the server, as tabs of different people do.
const provider = new WebsocketProvider(serverUrl, room, doc, { disableBc: true })

// ---- connection status
const statusEl = document.getElementById('status')
provider.on('status', ({ status }) => {
  statusEl.textContent = status
  statusEl.dataset.status = status
  page.connected = String(status === 'connected')
})
provider.on('sync', synced => { page.synced = String(synced) })
provider.on('connection-close', event => {
  if (event && event.code === 1008) statusEl.textContent = 'refused: ' + (event.reason || 'no access')
})

// ---- who is here: a name and a colour per tab, shared through awareness
const colours = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6', '#9a6324']
const animals = ['otter', 'lynx', 'heron', 'badger', 'gecko', 'puffin', 'marten', 'ibis']
const pick = list => list[Math.floor(Math.random() * list.length)]
const me = {
  name: page.user || pick(animals) + '-' + Math.floor(Math.random() * 1000),
  colour: pick(colours)
}
provider.awareness.setLocalStateField('user', me)

const usersEl = document.getElementById('users')
const renderUsers = () => {
  const items = []
  provider.awareness.getStates().forEach((state, clientID) => {
    if (!state.user || typeof state.user.name !== 'string') return
    const li = document.createElement('li')
    li.textContent = state.user.name + (clientID === doc.clientID ? ' (you)' : '')
    li.style.borderColor = /^#[0-9a-f]{6}$/i.test(state.user.colour) ? state.user.colour : '#888'
    li.dataset.client = String(clientID)
    items.push(li)
  })
  usersEl.replaceChildren(...items)
  usersEl.dataset.count = String(items.length)
}
provider.awareness.on('change', renderUsers)
renderUsers()

// ---- the textarea binding
// Local edits: compare the textarea with the shared text, and turn the one changed region into a
// delete and an insert. Remote edits: apply the Y.Text delta and move the caret with it.
const area = document.getElementById('editor')
const local = Symbol('textarea')
area.value = text.toString()

area.addEventListener('input', () => {
  const before = text.toString()
  const after = area.value
  if (before === after) return
  let start = 0
  while (start < before.length && start < after.length && before[start] === after[start]) start++
  let endBefore = before.length
  let endAfter = after.length
  while (endBefore > start && endAfter > start && before[endBefore - 1] === after[endAfter - 1]) {
    endBefore--
    endAfter--
  }
  doc.transact(() => {
    if (endBefore > start) text.delete(start, endBefore - start)
    if (endAfter > start) text.insert(start, after.slice(start, endAfter))
  }, local)
})

text.observe((event, tr) => {
  if (tr.origin === local) return
  let { selectionStart: s, selectionEnd: e } = area
  let pos = 0
  for (const op of event.delta) {
    if (op.retain !== undefined) {
      pos += op.retain
    } else if (op.insert !== undefined) {
      const n = op.insert.length
      if (pos < s) s += n
      if (pos < e) e += n
      pos += n
    } else if (op.delete !== undefined) {
      if (pos < s) s = Math.max(pos, s - op.delete)
      if (pos < e) e = Math.max(pos, e - op.delete)
    }
  }
  area.value = text.toString()
  if (document.activeElement === area) area.setSelectionRange(s, e)
})

// For tests and the curious: the document's current text.
window.ginwsYjs = { doc, text, provider }
