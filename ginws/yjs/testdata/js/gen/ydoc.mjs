// Shared helpers for the yupdate fixture generator and checker: a canonical, comparable JSON
// view of a Y.Doc (map keys sorted, text as deltas with formatting, XML as strings, subdocuments
// as their guid, binary as hex).
import * as Y from 'yjs'

const hex = (u8) => Buffer.from(u8).toString('hex')

const canonValue = (v) => {
  if (v instanceof Y.Doc) return { subdoc: v.guid }
  if (v instanceof Uint8Array) return { binary: hex(v) }
  if (typeof v === 'bigint') return { bigint: String(v) }
  if (v === undefined) return { undefined: true }
  if (v instanceof Y.AbstractType) return canonType(v)
  if (Array.isArray(v)) return v.map(canonValue)
  if (v !== null && typeof v === 'object') {
    const out = {}
    for (const k of Object.keys(v).sort()) out[k] = canonValue(v[k])
    return out
  }
  return v
}

const canonType = (t) => {
  if (t instanceof Y.XmlText) return { xmltext: t.toDelta().map(canonValue) }
  if (t instanceof Y.XmlHook) return { hook: t.hookName, map: canonValue(Object.fromEntries(t.entries())) }
  if (t instanceof Y.XmlElement) return { element: t.nodeName, attributes: canonValue(t.getAttributes()), children: t.toArray().map(canonType) }
  if (t instanceof Y.XmlFragment) return { fragment: t.toArray().map(canonType) }
  if (t instanceof Y.Text) return { text: t.toDelta().map(canonValue) }
  if (t instanceof Y.Array) return { array: t.toArray().map(canonValue) }
  if (t instanceof Y.Map) {
    const out = {}
    for (const k of Array.from(t.keys()).sort()) out[k] = canonValue(t.get(k))
    return { map: out }
  }
  return { unknown: t.constructor.name }
}

// roots: { name: 'text' | 'map' | 'array' | 'xml' }
export const docJSON = (doc, roots) => {
  const out = {}
  for (const name of Object.keys(roots).sort()) {
    const kind = roots[name]
    const t = kind === 'text' ? doc.getText(name) : kind === 'map' ? doc.getMap(name) : kind === 'array' ? doc.getArray(name) : doc.getXmlFragment(name)
    out[name] = canonType(t)
  }
  out['~pending'] = doc.store.pendingStructs !== null || doc.store.pendingDs !== null
  return JSON.stringify(out)
}

export const svHex = (doc) => hex(Y.encodeStateVector(doc))
export { hex }
