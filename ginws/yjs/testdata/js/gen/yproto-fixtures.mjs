// Golden fixtures for ginws/yjs/yproto: frames written by the real y-protocols (the versions
// pinned in ../package.json). Run from ginws/yjs/testdata/js:
//
//   node gen/yproto-fixtures.mjs > ../../yproto/testdata/frames.json
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import * as authProtocol from 'y-protocols/auth'
import * as awarenessProtocol from 'y-protocols/awareness'

const hex = (u8) => Buffer.from(u8).toString('hex')
const frame = (f) => { const e = encoding.createEncoder(); f(e); return hex(encoding.toUint8Array(e)) }

const doc = new Y.Doc()
doc.clientID = 2 ** 53 - 1
doc.getText('t').insert(0, 'hello 😀 世界')
doc.getMap('m').set('k', { nested: [1, 2, 3] })
const sv = Y.encodeStateVector(doc)
const update = Y.encodeStateAsUpdate(doc)

const frames = []
frames.push({ name: 'step1', type: 0, syncType: 0, payload: hex(sv), hex: frame(e => { encoding.writeVarUint(e, 0); syncProtocol.writeSyncStep1(e, doc) }) })
frames.push({ name: 'step1-empty-doc', type: 0, syncType: 0, payload: hex(Y.encodeStateVector(new Y.Doc())), hex: frame(e => { encoding.writeVarUint(e, 0); syncProtocol.writeSyncStep1(e, new Y.Doc()) }) })
frames.push({ name: 'step2', type: 0, syncType: 1, payload: hex(Y.encodeStateAsUpdate(doc, new Uint8Array([0]))), hex: frame(e => { encoding.writeVarUint(e, 0); syncProtocol.writeSyncStep2(e, doc, new Uint8Array([0])) }) })
frames.push({ name: 'update', type: 0, syncType: 2, payload: hex(update), hex: frame(e => { encoding.writeVarUint(e, 0); syncProtocol.writeUpdate(e, update) }) })
frames.push({ name: 'query-awareness', type: 3, hex: frame(e => encoding.writeVarUint(e, 3)) })
for (const reason of ['', 'not allowed', 'пускать нельзя 🚫']) {
  frames.push({ name: 'auth-denied', type: 2, reason, hex: frame(e => { encoding.writeVarUint(e, 2); authProtocol.writePermissionDenied(e, reason) }) })
}

// Awareness: two clients with states, then one leaving.
const awarenessCases = []
const a = new awarenessProtocol.Awareness(doc)
a.setLocalState({ user: { name: 'Ann 😀', color: '#ff0000' }, cursor: null })
const other = new Y.Doc()
other.clientID = 7
const b = new awarenessProtocol.Awareness(other)
b.setLocalState({ user: { name: 'Bo' } })
b.setLocalStateField('cursor', { anchor: 3, head: 5 })
const both = awarenessProtocol.encodeAwarenessUpdate(a, [a.clientID])
awarenessProtocol.applyAwarenessUpdate(a, awarenessProtocol.encodeAwarenessUpdate(b, [b.clientID]), 'remote')
const entriesOf = (aw, ids) => ids.map(id => ({ clientID: String(id), clock: aw.meta.get(id).clock, state: JSON.stringify(aw.states.get(id) || null) }))
awarenessCases.push({ name: 'one', update: hex(both), entries: entriesOf(a, [a.clientID]) })
const two = awarenessProtocol.encodeAwarenessUpdate(a, [a.clientID, 7])
awarenessCases.push({ name: 'two', update: hex(two), entries: entriesOf(a, [a.clientID, 7]) })
awarenessProtocol.removeAwarenessStates(a, [7], 'left')
const removal = awarenessProtocol.encodeAwarenessUpdate(a, [7])
awarenessCases.push({ name: 'removal', update: hex(removal), entries: entriesOf(a, [7]) })
awarenessCases.push({ name: 'empty', update: hex(awarenessProtocol.encodeAwarenessUpdate(a, [])), entries: [] })
for (const c of awarenessCases) {
  frames.push({ name: 'awareness-' + c.name, type: 1, payload: c.update, hex: frame(e => { encoding.writeVarUint(e, 1); encoding.writeVarUint8Array(e, Buffer.from(c.update, 'hex')) }) })
}
a.destroy()
b.destroy()
process.stdout.write(JSON.stringify({ frames, awareness: awarenessCases }, null, 1) + '\n')
