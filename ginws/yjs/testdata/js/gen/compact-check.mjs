// Typing scenarios for yupdate.Compact, driven by the Go tests (yupdate/compact_test.go). Run
// from ginws/yjs/testdata/js so that yjs resolves. Prints
// {scenarios: [{name, roots, updates: [hex], state: hex, exact}]}: the updates a live Y.Doc
// emitted while typing, Y.encodeStateAsUpdate of every document once synced, and whether that
// encoding is one Compact must reproduce byte for byte (the document never split or deleted an
// item, so its own joins are exactly those an update can see). Deterministic.
import * as Y from 'yjs'

const hex = (u8) => Buffer.from(u8).toString('hex')

let seed = 7
const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }
const randInt = (n) => Math.floor(rand() * n)

const scenarios = []

const scenario = (name, exact, build) => {
  const updates = []
  const docs = []
  const mk = (clientID) => {
    const d = new Y.Doc()
    d.clientID = clientID
    d.on('update', (u, origin) => { if (origin !== 'sync') updates.push(u) })
    docs.push(d)
    return d
  }
  const sync = (a, b) => {
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)), 'sync')
    Y.applyUpdate(a, Y.encodeStateAsUpdate(b, Y.encodeStateVector(a)), 'sync')
  }
  build({ mk, sync })
  for (const d of docs.slice(1)) sync(docs[0], d)
  scenarios.push({ name, roots: { t: 'text' }, updates: updates.map(hex), state: hex(Y.encodeStateAsUpdate(docs[0])), exact })
}

// 3 000 keystrokes, one character per update, at the end: the benchmark's size figure.
scenario('typing-3000', true, ({ mk }) => {
  const t = mk(1234567).getText('t')
  const words = 'the quick brown fox jumps over the lazy dog '
  for (let i = 0; i < 3000; i++) t.insert(t.length, words[i % words.length])
})

scenario('typing-unicode', true, ({ mk }) => {
  const t = mk(2 ** 53 - 1).getText('t')
  const chars = Array.from('aé中😀 👍🏽ß')
  for (let i = 0; i < 600; i++) t.insert(t.length, chars[i % chars.length])
})

scenario('typing-in-turns', true, ({ mk, sync }) => {
  const a = mk(7); const b = mk(3)
  for (let round = 0; round < 4; round++) {
    const [w, other] = round % 2 === 0 ? [a, b] : [b, a]
    const t = w.getText('t')
    for (let i = 0; i < 100; i++) t.insert(t.length, String.fromCharCode(97 + (i + round) % 26))
    sync(w, other)
  }
})

// Backspaces and edits in the middle: the document deletes and splits items, so its encoding is
// not Compact's, but the sizes should be close.
scenario('typing-with-backspace', false, ({ mk }) => {
  const t = mk(99).getText('t')
  for (let i = 0; i < 3000; i++) {
    if (i % 10 === 9) t.delete(t.length - 1, 1)
    else t.insert(t.length, String.fromCharCode(97 + i % 26))
  }
})

scenario('typing-in-the-middle', false, ({ mk }) => {
  const t = mk(5).getText('t')
  for (let i = 0; i < 3000; i++) {
    if (i % 50 === 0 && t.length > 0) t.insert(randInt(t.length), '\n')
    else t.insert(t.length, String.fromCharCode(97 + i % 26))
  }
})

scenario('concurrent-typing', false, ({ mk, sync }) => {
  const a = mk(11); const b = mk(12)
  for (let round = 0; round < 20; round++) {
    for (const d of [a, b]) {
      const t = d.getText('t')
      const at = randInt(t.length + 1)
      for (let i = 0; i < 20; i++) t.insert(at + i, String.fromCharCode(65 + (round + i) % 26))
      if (t.length > 10 && round % 3 === 0) t.delete(randInt(t.length - 5), 3)
    }
    sync(a, b)
  }
})

process.stdout.write(JSON.stringify({ yjs: '13.6', scenarios }))
