// Golden fixtures for ginws/yjs/yupdate, made with real Y.Doc's (the yjs version pinned in
// ../package.json). Run from ginws/yjs/testdata/js:
//
//   node gen/yupdate-fixtures.mjs > ../../yupdate/testdata/fixtures.json
//
// For every scenario the file holds the updates the documents emitted, the expected document
// (canonical JSON, see ydoc.mjs), Y.mergeUpdates over many orderings and subsets,
// Y.encodeStateVectorFromUpdate of every update, and Y.diffUpdate against many state vectors
// (of documents built from subsets of the updates, and synthetic ones that cut structs).
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import { docJSON, svHex, hex } from './ydoc.mjs'

const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'))

// A deterministic PRNG, so the fixtures only change when this script does.
let seed = 20261125
const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }
const randInt = (n) => Math.floor(rand() * n)

const BIG = 2 ** 53 - 1

const scenarios = []

const scenario = (name, roots, build) => {
  const updates = []
  const docs = []
  const mk = (clientID, opts = {}) => {
    const d = new Y.Doc(opts)
    d.clientID = clientID
    d.on('update', (u, origin) => { if (origin !== 'sync') updates.push(u) })
    docs.push(d)
    return d
  }
  const sync = (a, b) => {
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)), 'sync')
    Y.applyUpdate(a, Y.encodeStateAsUpdate(b, Y.encodeStateVector(a)), 'sync')
  }
  build({ mk, sync, raw: (u) => updates.push(u) })
  scenarios.push({ name, roots, updates })
}

scenario('text-basic', { t: 'text' }, ({ mk }) => {
  const t = mk(1).getText('t')
  t.insert(0, 'hello')
  t.insert(5, ' world')
  t.insert(0, '😀👍🏽 ')
  t.insert(3, '中文字')
  t.delete(1, 4)
  t.insert(t.length, ' 𝒳𝒴𝒵 end')
  t.delete(t.length - 6, 3)
  t.insert(2, 'x')
})

scenario('text-typing', { t: 'text' }, ({ mk }) => {
  const t = mk(12345).getText('t')
  const words = 'The quick brown fox 🦊 jumps over the lazy dog 🐶 — 日本語も少し。 '
  for (let i = 0; i < 240; i++) {
    const ch = Array.from(words)[i % Array.from(words).length]
    if (i % 37 === 36 && t.length > 3) t.delete(t.length - 2, 2)
    else t.insert(t.length, ch)
  }
})

scenario('text-concurrent-big-ids', { t: 'text' }, ({ mk, sync }) => {
  const a = mk(BIG); const b = mk(2 ** 32 + 7); const c = mk(3)
  a.getText('t').insert(0, 'shared 😀 base')
  sync(a, b); sync(b, c); sync(a, c)
  a.getText('t').insert(7, 'A-edit ')
  b.getText('t').insert(7, 'B-edit 👍🏽')
  c.getText('t').delete(0, 7)
  c.getText('t').insert(0, 'C:')
  sync(a, b); sync(b, c); sync(a, c)
  b.getText('t').delete(2, 10)
  a.getText('t').insert(a.getText('t').length, ' tail')
  sync(a, b)
  c.getText('t').insert(1, '中')
  sync(a, c); sync(b, c)
})

scenario('map', { m: 'map' }, ({ mk, sync }) => {
  const a = mk(7); const b = mk(8)
  const m = a.getMap('m')
  m.set('n', 1)
  m.set('s', 'string ü')
  m.set('o', { deep: { list: [1, 2, { x: null }] }, '1': 'int key' })
  m.set('n', 2)
  m.set('f', 3.25)
  m.set('big', 2 ** 40)
  m.set('neg', -(2 ** 31))
  m.set('bool', false)
  m.set('nul', null)
  m.delete('s')
  m.set('bin', new Uint8Array([1, 2, 3]))
  const nested = new Y.Map()
  m.set('nested', nested)
  nested.set('k', 'v')
  sync(a, b)
  b.getMap('m').set('n', 'from b')
  a.getMap('m').set('n', 'from a')
  b.getMap('m').delete('f')
  sync(a, b)
  a.getMap('m').set('bigint', { v: 1234567890123456789n, neg: -5n })
})

scenario('array-mixed', { a: 'array' }, ({ mk }) => {
  const arr = mk(42).getArray('a')
  arr.insert(0, [1, -1, 0.5, 2 ** 31, -(2 ** 45), 'two', null, true, false, { o: 1 }, [1, [2]], ''])
  arr.insert(3, [new Uint8Array([9, 8, 7])])
  arr.push(['pushed', 3.14159])
  arr.delete(1, 3)
  arr.insert(2, ['mid1', 'mid2', 'mid3'])
  arr.delete(4, 1)
  arr.unshift([new Uint8Array(0), { big: 10n }])
  const inner = new Y.Array()
  arr.push([inner])
  inner.push(['x', 'y'])
})

scenario('nested-and-gc', { root: 'array', meta: 'map' }, ({ mk }) => {
  const d = mk(5)
  const root = d.getArray('root')
  const m1 = new Y.Map(); const m2 = new Y.Map()
  root.push([m1, m2])
  const t = new Y.Text('inner text 😀')
  m1.set('text', t)
  const list = new Y.Array()
  m2.set('list', list)
  list.push(['a', 'b', 'c', 'd'])
  t.insert(0, '>> ')
  list.delete(1, 2)
  root.delete(0, 1) // deletes m1 and everything in it: GC structs
  d.getMap('meta').set('title', 'doc')
  d.getMap('meta').set('title', 'doc v2')
})

scenario('no-gc', { t: 'text', m: 'map' }, ({ mk }) => {
  const d = mk(77, { gc: false })
  const t = d.getText('t')
  t.insert(0, 'keep all history 😀')
  t.delete(0, 5)
  d.getMap('m').set('x', new Y.Text('nested'))
  d.getMap('m').delete('x')
  t.insert(0, 'again ')
})

scenario('xml', { x: 'xml' }, ({ mk }) => {
  const frag = mk(2 ** 31 + 1).getXmlFragment('x')
  const p = new Y.XmlElement('p')
  const txt = new Y.XmlText('para text')
  p.insert(0, [txt])
  frag.insert(0, [p])
  p.setAttribute('class', 'lead')
  txt.format(0, 4, { bold: true })
  const hook = new Y.XmlHook('widget')
  frag.push([hook])
  hook.set('cfg', 'on')
  const h1 = new Y.XmlElement('h1')
  frag.insert(0, [h1])
  h1.insert(0, [new Y.XmlText('Title 🏷️')])
  p.removeAttribute('class')
  frag.insert(3, [new Y.XmlElement('hr')])
  frag.delete(3, 1)
})

scenario('formatting-embeds', { rich: 'text' }, ({ mk, sync }) => {
  const a = mk(1001); const b = mk(1002)
  const t = a.getText('rich')
  t.insert(0, 'Bold and italic and link 😀', { bold: true })
  t.format(9, 6, { italic: true, bold: null })
  t.insertEmbed(5, { image: 'https://example.com/x.png', alt: 'ü' })
  t.format(0, 4, { link: { href: 'https://example.com' } })
  sync(a, b)
  b.getText('rich').format(2, 10, { color: '#ff0000' })
  a.getText('rich').insert(3, 'INS', { underline: true })
  sync(a, b)
  b.getText('rich').delete(4, 6)
})

scenario('subdocs', { docs: 'map', list: 'array' }, ({ mk }) => {
  const d = mk(31)
  d.getMap('docs').set('plain', new Y.Doc({ guid: 'sub-plain' }))
  d.getMap('docs').set('opts', new Y.Doc({ guid: 'sub-opts', autoLoad: true, gc: false, meta: { title: 'Sub ✓', n: 1 } }))
  d.getArray('list').push([new Y.Doc({ guid: 'in-array' }), 'after'])
  d.getMap('docs').delete('plain')
})

scenario('offline', { t: 'text', m: 'map' }, ({ mk, sync }) => {
  const a = mk(2 ** 53 - 2); const b = mk(11)
  a.getText('t').insert(0, 'online start ')
  sync(a, b)
  for (let i = 0; i < 20; i++) {
    a.getText('t').insert(randInt(a.getText('t').length + 1), 'a' + i)
    b.getText('t').insert(randInt(b.getText('t').length + 1), 'b' + i + (i % 5 === 0 ? '😀' : ''))
    if (i % 4 === 3) b.getText('t').delete(randInt(b.getText('t').length - 2), 2)
    a.getMap('m').set('k' + (i % 3), i)
    b.getMap('m').set('k' + (i % 4), 'b' + i)
  }
  sync(a, b)
  b.getText('t').insert(0, 'back online ')
})

scenario('many-clients', { t: 'text', a: 'array', m: 'map' }, ({ mk, sync }) => {
  const ids = [1, 2, 3, 100, 255, 256, 65535, 2 ** 21, 2 ** 31 - 1, 2 ** 32, 2 ** 40 + 3, BIG]
  const docs = ids.map(id => mk(id))
  for (let round = 0; round < 6; round++) {
    for (const d of docs) {
      const op = randInt(4)
      const t = d.getText('t')
      if (op === 0) t.insert(randInt(t.length + 1), String.fromCodePoint(0x1F600 + randInt(40)) + 'x')
      else if (op === 1 && t.length > 2) t.delete(randInt(t.length - 1), 1)
      else if (op === 2) d.getArray('a').insert(randInt(d.getArray('a').length + 1), [d.clientID % 1000, 'r' + round])
      else d.getMap('m').set('k' + randInt(5), round)
    }
    const x = docs[randInt(docs.length)]; const y = docs[randInt(docs.length)]
    if (x !== y) sync(x, y)
  }
  for (let i = 1; i < docs.length; i++) sync(docs[0], docs[i])
})

scenario('legacy-json', { legacy: 'array' }, ({ mk, raw }) => {
  // ContentJSON is no longer written by Yjs but still read; build one by hand.
  const enc = new Y.UpdateEncoderV1()
  encoding.writeVarUint(enc.restEncoder, 1)
  encoding.writeVarUint(enc.restEncoder, 1)
  enc.writeClient(99)
  encoding.writeVarUint(enc.restEncoder, 0)
  new Y.Item(Y.createID(99, 0), null, null, null, null, 'legacy', null, new Y.ContentJSON([1, { a: 'b' }, null, 'str', [true]])).write(enc, 0)
  encoding.writeVarUint(enc.restEncoder, 0)
  raw(enc.toUint8Array())
  const d = mk(100)
  Y.applyUpdate(d, enc.toUint8Array(), 'sync')
  d.getArray('legacy').insert(2, ['inserted'])
  d.getArray('legacy').delete(0, 1)
})

// ----- derive merges, state vectors and diffs with the real yjs -----

const buildDoc = (updates) => {
  const d = new Y.Doc()
  for (const u of updates) Y.applyUpdate(d, u)
  return d
}

const out = []
for (const s of scenarios) {
  const U = s.updates
  const n = U.length
  const all = buildDoc(U)
  const full = Y.encodeStateAsUpdate(all)
  const idx = [...Array(n).keys()]
  const evens = idx.filter(i => i % 2 === 0)
  const odds = idx.filter(i => i % 2 === 1)
  const half = idx.slice(0, Math.ceil(n / 2))
  const shuffled = idx.slice().sort(() => rand() - 0.5)

  // Inputs: the emitted updates, then derived ones referenced by index.
  const inputs = U.map(hex)
  const addInput = (u) => { inputs.push(hex(u)); return inputs.length - 1 }
  const iFull = addInput(full)
  const pick = (ix) => ix.map(i => unhex(inputs[i]))
  const iEvens = addInput(Y.mergeUpdates(pick(evens)))
  const iOdds = addInput(Y.mergeUpdates(pick(odds)))
  const iHalf = addInput(Y.mergeUpdates(pick(half)))

  // States: documents built from subsets of the updates.
  const subsets = [[], half, evens, odds, [0], idx.slice(0, n - 1), idx, shuffled.slice(0, Math.floor(n / 3))]
  const states = subsets.map(sub => ({ subset: sub, sv: svHex(buildDoc(pick(sub))) }))
  // Synthetic state vectors that cut structs at every kind of clock, including inside a
  // surrogate pair.
  const svMap = Y.decodeStateVector(Y.encodeStateVector(all))
  const synth = []
  for (const [client, clock] of svMap) {
    for (const c of new Set([1, 2, Math.floor(clock / 2), clock - 1, clock + 5])) {
      if (c >= 0) synth.push(new Map([[client, c]]))
    }
  }
  synth.push(new Map(Array.from(svMap, ([c, k]) => [c, Math.floor(k / 3)])))
  const writeSV = (m) => { const e = encoding.createEncoder(); encoding.writeVarUint(e, m.size); for (const [c, k] of m) { encoding.writeVarUint(e, c); encoding.writeVarUint(e, k) } return hex(encoding.toUint8Array(e)) }
  const svs = [...new Set([...states.map(x => x.sv), ...synth.map(writeSV), '00'])]

  const merges = []
  const addMerge = (ix) => merges.push({ inputs: ix, result: hex(Y.mergeUpdates(pick(ix))) })
  addMerge(idx)
  addMerge(idx.slice().reverse())
  addMerge(shuffled)
  addMerge([...idx, ...evens]) // duplicates
  addMerge([iFull, ...idx]) // overlap with the compacted state
  addMerge([...idx, iFull])
  addMerge([iEvens, iOdds]) // updates with gaps (Skip structs)
  addMerge([iOdds, iHalf])
  addMerge(odds)
  addMerge([])
  addMerge([0])
  if (n > 2) addMerge([n - 1, 0, 1])

  const diffs = []
  for (const input of [iFull, iEvens, merges.length]) {
    const u = input === merges.length ? Y.mergeUpdates(pick(idx)) : unhex(inputs[input])
    const i = input === merges.length ? addInput(u) : input
    for (const sv of svs) diffs.push({ input: i, sv, result: hex(Y.diffUpdate(u, unhex(sv))) })
  }
  // Diffs are inputs too: merge a diff with overlapping updates.
  const iDiff = addInput(unhex(diffs[Math.floor(diffs.length / 3)].result))
  addMerge([iDiff, ...half])
  addMerge([iHalf, iDiff, iFull])

  const stateVectors = inputs.map(h => hex(Y.encodeStateVectorFromUpdate(unhex(h))))
  out.push({
    name: s.name,
    roots: s.roots,
    updates: n,
    inputs,
    stateVectors,
    expected: docJSON(all, s.roots),
    expectedSV: svHex(all),
    merges,
    diffs,
    states
  })
}
process.stdout.write(JSON.stringify({ yjs: '13.6.33', scenarios: out }) + '\n')
