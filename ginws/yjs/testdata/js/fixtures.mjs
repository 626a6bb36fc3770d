// Prints the Yjs v1 updates the Go unit tests of package yjs embed (fixtures_test.go), made by
// the real yjs package: `node fixtures.mjs`.
import * as Y from 'yjs'

const a = new Y.Doc()
a.clientID = 1
const b = new Y.Doc()
b.clientID = 2
const updates = {}
const capture = (doc, name, fn) => {
  const got = []
  const h = (u) => got.push(u)
  doc.on('update', h)
  fn()
  doc.off('update', h)
  updates[name] = Buffer.from(Y.mergeUpdates(got)).toString('hex')
  return Y.mergeUpdates(got)
}
const hello = capture(a, 'hello', () => a.getText('t').insert(0, 'hello'))
Y.applyUpdate(b, hello)
const world = capture(b, 'world', () => b.getText('t').insert(5, ' world'))
Y.applyUpdate(a, world)
capture(a, 'mapSet', () => a.getMap('m').set('k', 'v'))
capture(b, 'deleteHello', () => b.getText('t').delete(0, 6))
Y.applyUpdate(a, Y.encodeStateAsUpdate(b))
updates.full = Buffer.from(Y.encodeStateAsUpdate(a)).toString('hex')
updates.fullText = a.getText('t').toString()
updates.svHello = Buffer.from(Y.encodeStateVectorFromUpdate(hello)).toString('hex')
console.log(JSON.stringify(updates, null, 2))
