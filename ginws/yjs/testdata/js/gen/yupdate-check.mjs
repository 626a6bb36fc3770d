// Semantic checker for ginws/yjs/yupdate, driven by the Go tests (yupdate/semantic_test.go).
// Reads {cases: [{name, roots, base: [hex], candidate: [hex], expect: [hex]}]} on stdin; for
// each case builds one Y.Doc from base then candidate and another from expect, and prints
// [{name, ok, got, want, gotSV, wantSV, error}] with the canonical document JSON and the state
// vectors of both. Run from ginws/yjs/testdata/js so that yjs resolves.
import * as Y from 'yjs'
import { docJSON, svHex } from './ydoc.mjs'

const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'))

const chunks = []
for await (const c of process.stdin) chunks.push(c)
const { cases } = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const build = (updates) => {
  const d = new Y.Doc()
  for (const u of updates) Y.applyUpdate(d, unhex(u))
  return d
}

const results = cases.map(c => {
  try {
    const got = build([...(c.base || []), ...(c.candidate || [])])
    const want = build(c.expect || [])
    const r = { name: c.name, got: docJSON(got, c.roots), want: docJSON(want, c.roots), gotSV: svHex(got), wantSV: svHex(want) }
    r.ok = r.got === r.want && r.gotSV === r.wantSV
    return r
  } catch (e) {
    return { name: c.name, ok: false, error: String(e && e.stack || e) }
  }
})
process.stdout.write(JSON.stringify(results))
