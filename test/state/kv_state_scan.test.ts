import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { openKvState } from '../../src/state/kv_state.ts'
import { encodePin, newPin, storedPin } from '../../src/types/pin.ts'

async function cidFor(i: number): Promise<string> {
  return CID.createV1(0x55, await sha256.digest(new TextEncoder().encode(`pin ${i}`))).toString()
}

Deno.test('scan streams (CID, stored bytes) in key order and resumes after any CID', async () => {
  const s = await openKvState(':memory:')
  try {
    const pins = await Promise.all(
      Array.from({ length: 2500 }, async (_, i) => newPin(await cidFor(i))),
    )
    pins.push(newPin('QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG'))
    await s.apply(pins.map((pin) => ({ type: 'pin', pin })))
    const want = pins.map((p) => p.cid).sort()
    const byCid = new Map(pins.map((p) => [p.cid, p]))
    const all: string[] = []
    for await (const e of s.scan()) {
      all.push(e.cid)
      assert.equal(new TextDecoder().decode(e.value), encodePin(storedPin(byCid.get(e.cid)!)))
    }
    assert.deepEqual(all, want)
    // Resuming after a stored CID, after one that is not stored, and after the last one.
    const rest = async (after: string) => {
      const out: string[] = []
      for await (const e of s.scan({ after })) out.push(e.cid)
      return out
    }
    assert.deepEqual(await rest(want[1200]), want.slice(1201))
    const missing = want[1200] + 'a' // sorts between want[1200] and want[1201]
    assert.deepEqual(await rest(missing), want.slice(1201))
    assert.deepEqual(await rest(want.at(-1)!), [])
    const ac = new AbortController()
    let n = 0
    for await (const _ of s.scan({ signal: ac.signal })) if (++n === 5) ac.abort()
    assert.equal(n, 5)
  } finally {
    s.close()
  }
})
